"""pytest plugin (entry point `pytest11`): command-line options, fixtures and report hooks only.

Inert unless used: nothing happens in a test session that requests none of its fixtures and
passes none of its options. The logic lives in chat_template_harness.cells, chat_template_harness.outputs.golden, chat_template_harness.outputs.snapshot
and chat_template_harness.external.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

RESULTS = pytest.StashKey[dict[Any, Any]]()
# from --cth-goldens; the golden snapshot extension reads it through the test item's config
GOLDENS_ROOT = pytest.StashKey[Path]()
PREPROCESSOR = pytest.StashKey[tuple[str, Any]]()
GOLDENS_ASSERTED = pytest.StashKey[set[Any]]()
NOT_SELECTED = pytest.StashKey[bool]()
BASELINE = pytest.StashKey[dict[str, Any]]()  # cell id -> recorded kinds and counts (checking/baseline.py)
# cell node ids given on the command line (`pytest "chat-template-harness::cth[qwen3-8b/think-off/single_turn]"`)
REQUESTED = pytest.StashKey[frozenset[str]]()
SETTINGS = pytest.StashKey[Any]()
MATRIX_NODE = "chat-template-harness"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's options, each with its ini key: one long declaration, in the order `pytest --help` lists them."""
    group = parser.getgroup("chat-template-harness")
    group.addoption(
        "--cth-tokenizers-dir", default=None, help="tokenizer pack (default: $CTH_TOKENIZERS_DIR, else the hub)"
    )
    group.addoption(
        "--cth-allow-drift",
        action="store_true",
        default=bool(os.environ.get("CTH_ALLOW_DRIFT")),
        help="run with tokenizer files that differ from the pins (default: $CTH_ALLOW_DRIFT); goldens then show what changed",
    )
    group.addoption(
        "--cth-goldens", default="goldens", help="goldens directory, relative to the rootdir (default: goldens)"
    )
    group.addoption(
        "--cth-preprocessor",
        default=None,
        metavar="MODULE:CALLABLE",
        help="check this preprocessor on every cell of the matrix (see README: add the harness to your repo's CI)",
    )
    group.addoption("--cth-model", action="append", default=[], help="with --cth-preprocessor: only these models")
    group.addoption(
        "--cth-fixture",
        action="append",
        default=[],
        metavar="NAME_OR_PATH",
        help="with --cth-preprocessor: only these fixtures (built-in names, or your own conversation files)",
    )
    group.addoption(
        "--cth-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with --cth-preprocessor: a cell whose preprocessor call takes longer fails (default 60)",
    )
    group.addoption(
        "--cth-served-by",
        default=None,
        choices=["transformers", "vllm", "sglang"],
        help="whose served prompt the cells replay (default: [tool.cth] served_by, else transformers, the contract's)",
    )
    group.addoption(
        "--cth-system-prompt", default=None, metavar="TEXT", help="the default system prompt your server adds"
    )
    group.addoption(
        "--cth-allow",
        action="append",
        default=[],
        metavar="NAME",
        help="accept a named deviation (trailer), or UNDECIDED cells (undecided), reported as allowed",
    )
    group.addoption(
        "--cth-update-goldens",
        action="store_true",
        help="write the goldens of the checked cells under [tool.cth] goldens instead of comparing them (never when CI is set)",
    )
    group.addoption(
        "--cth-baseline",
        default=None,
        metavar="FILE",
        help="cells known to fail: xfail; a listed cell that passes fails as stale",
    )
    parser.addini(
        "cth_preprocessor", "MODULE:CALLABLE checked on the matrix cells when they are selected (-m cth, -k cth)"
    )
    parser.addini(
        "cth_collect",
        "when to add the matrix cells: 'selected' (default: -m cth, -k cth, or CTH_CHECK=1) or 'always'",
        default="selected",
    )
    group.addoption(
        "--cth-think",
        action="append",
        default=[],
        choices=["on", "off"],
        help="with --cth-preprocessor: only this mode",
    )
    group.addoption(
        "--cth-policy",
        default="all",
        choices=["all", "last"],
        help="with --cth-preprocessor: all = every assistant turn must be trained (default, as everywhere); last = only the final turn",
    )


def pytest_configure(config: pytest.Config) -> None:
    from chat_template_harness.models.source import pin_env_tokenizers_dir

    pin_env_tokenizers_dir()
    config.addinivalue_line("markers", "cth: a chat-template-harness matrix cell checked against --cth-preprocessor")
    spec = config.getoption("--cth-preprocessor") or config.getini("cth_preprocessor")
    if spec:
        # transformers says "PyTorch was not found" on import; checking cells needs no torch
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        from chat_template_harness.errors import HarnessError
        from chat_template_harness.external import load_callable

        try:
            config.stash[PREPROCESSOR] = (spec, load_callable(spec))
            from chat_template_harness.checking import baseline

            baseline.parse_allowances(config.getoption("--cth-allow"))
            if config.getoption("--cth-baseline"):
                config.stash[BASELINE] = baseline.read(config.rootpath / config.getoption("--cth-baseline"))
        except HarnessError as exc:
            raise pytest.UsageError(f"--cth-preprocessor: {exc}") from None
        _served_by(config)  # a bad [tool.cth] served_by is one usage error, before any cell runs
    # cells are no files: take their node ids out of the paths pytest collects, and select them ourselves
    requested = [a for a in config.args if a.startswith(f"{MATRIX_NODE}::")]
    config.stash[REQUESTED] = frozenset(a.split("::", 1)[1] for a in requested)
    if requested:
        config.args[:] = [a for a in config.args if a not in requested]
    config.stash[RESULTS] = {}
    config.stash[GOLDENS_ASSERTED] = set()
    config.stash[GOLDENS_ROOT] = config.rootpath / config.getoption("--cth-goldens")
    if config.getoption("--snapshot-update", default=False) or config.getoption("--cth-update-goldens"):
        from chat_template_harness.errors import HarnessError
        from chat_template_harness.outputs import golden

        try:
            golden.refuse_writing_under_ci("run the update locally (CI unset) and commit the goldens")
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from None


def _tokenizers_dir(config: pytest.Config) -> Path | None:
    from chat_template_harness.models import source

    given = config.getoption("--cth-tokenizers-dir")
    # relative to where pytest was started (its invocation dir), like every other path option
    return source.absolute(config.invocation_params.dir / given) if given else source.tokenizers_dir_from_env()


def _served_by(config: pytest.Config) -> str:
    from chat_template_harness.errors import HarnessError
    from chat_template_harness.serving.served import chosen

    try:
        return chosen(config.getoption("--cth-served-by"))
    except HarnessError as exc:
        raise pytest.UsageError(f"chat-template-harness: {exc}") from None


def _settings(config: pytest.Config) -> Any:
    """The run's settings (cells/model.py), built once per session from the options and `[tool.cth]`."""
    if SETTINGS not in config.stash:
        from chat_template_harness.cells.model import Settings
        from chat_template_harness.contract.sample import Policy

        config.stash[SETTINGS] = Settings(
            tokenizers_dir=_tokenizers_dir(config),
            allow_drift=bool(config.getoption("--cth-allow-drift")),
            served_by=_served_by(config),
            policy=Policy(config.getoption("--cth-policy")),
            timeout=config.getoption("--cth-timeout"),
            system_prompt=config.getoption("--cth-system-prompt"),
            allow=frozenset(config.getoption("--cth-allow")),
        )
    return config.stash[SETTINGS]


@pytest.fixture(scope="session")
def cth_run(pytestconfig: pytest.Config) -> Callable[..., Any]:
    """Run a matrix cell once per session (reference preprocessor + invariants); pins are checked first."""
    from chat_template_harness.cells.model import Cell, CellResult, Settings
    from chat_template_harness.cells.run import run_cell
    from chat_template_harness.errors import HarnessError
    from chat_template_harness.models import source

    base = _tokenizers_dir(pytestconfig)
    allow_drift = bool(pytestconfig.getoption("--cth-allow-drift"))
    if not allow_drift:
        try:
            source.check_pinned(list(source.registry()), base)
        except HarnessError as exc:
            pytest.exit(f"error: {exc}", returncode=2)
    cache = pytestconfig.stash[RESULTS]

    # the goldens' own run: the reference on transformers' served prompts, whatever --cth-served-by says for cth cells
    settings = Settings(tokenizers_dir=base, allow_drift=allow_drift)

    def run(cell: Cell) -> CellResult:
        if cell not in cache:
            cache[cell] = run_cell(cell, settings)
        result: CellResult = cache[cell]
        return result

    return run


@pytest.fixture(scope="session")
def goldens_root(pytestconfig: pytest.Config) -> Path:
    """Where the goldens live (--cth-goldens, relative to the rootdir)."""
    return pytestconfig.stash[GOLDENS_ROOT]


@pytest.fixture
def golden(snapshot: Any, request: pytest.FixtureRequest) -> Any:
    """A syrupy snapshot stored as goldens/<model>/think-<t>/<fixture>.golden (test must take a `cell` parameter)."""
    from chat_template_harness.outputs.snapshot import GoldenExtension

    request.config.stash[GOLDENS_ASSERTED].add(request.node.callspec.params["cell"])
    settings = {
        "goldens_root": request.config.stash[GOLDENS_ROOT],
        "refresh_headers": bool(request.config.getoption("--snapshot-update", default=False)),
    }
    return snapshot.use_extension(type("Golden", (GoldenExtension,), settings))


class CellCheckFailure(Exception):
    """A cell whose samples break the contract; carries the check result."""


class MatrixNode(pytest.Collector):
    """The parent of the cell checks, so they read `chat-template-harness::cth[<cell>]` in reports."""

    def collect(self) -> list[pytest.Item]:
        return []


class CellCheck(pytest.Item):
    """One matrix cell checked against the user's preprocessor: `cth[<model>/think-<t>/<fixture>]`."""

    def __init__(self, *, cell: Any, na: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell
        self.na = na
        self.grew = ""  # what got worse than the baseline records, for the report
        self.golden = ""  # why the repo's own golden of this cell differs (outputs/repo_goldens.py)

    def runtest(self) -> None:
        from chat_template_harness.cells.model import Status
        from chat_template_harness.cells.run import run_cell

        if self.na is not None:  # declared, visible in every report (JUnit included), never a silent skip
            pytest.skip(f"N/A: {self.na}")
        spec, preprocessor = self.config.stash[PREPROCESSOR]
        result = run_cell(self.cell, _settings(self.config), preprocessor)
        from chat_template_harness.outputs import repo_goldens

        self.golden = (
            repo_goldens.compare(
                self.cell,
                _tokenizers_dir(self.config),
                allow_drift=bool(self.config.getoption("--cth-allow-drift")),
                update=bool(self.config.getoption("--cth-update-goldens")),
            )
            or ""
        )
        listed = self.config.stash.get(BASELINE, {})
        if result.status is Status.NA:
            self.config.stash[RESULTS][self.cell] = result
            pytest.skip(f"N/A: {result.reason}")
        self.config.stash[RESULTS][self.cell] = result
        if result.status is Status.UNDECIDED and "undecided" in self.config.getoption("--cth-allow"):
            pytest.skip(f"UNDECIDED (allowed: --cth-allow undecided): {result.reason}")
        known = self.cell.id in listed
        if result.status.failing and known:
            from chat_template_harness.checking.baseline import counts_of, worse_than

            grew = worse_than(counts_of(result), listed[self.cell.id])
            if not grew and not self.golden:
                pytest.xfail(f"known failure (baseline): {result.reason}")
            self.grew = grew  # shown by repr_failure: a known cell that got worse fails
        if result.status.failing or self.golden:
            raise CellCheckFailure(result)
        if known:
            pytest.fail(
                f"stale baseline entry: {self.cell.id} passes now; remove it from {self.config.getoption('--cth-baseline')}"
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if not isinstance(excinfo.value, CellCheckFailure):
            return str(super().repr_failure(excinfo))
        from chat_template_harness.contract import kinds
        from chat_template_harness.outputs.repo_goldens import UPDATE
        from chat_template_harness.outputs.view import report_lines

        result = excinfo.value.args[0]
        spec = self.config.stash[PREPROCESSOR][0]
        c = self.cell
        policy = self.config.getoption("--cth-policy")
        extra = f" --policy {policy}" if policy != "all" else ""
        server = _served_by(self.config)
        extra += f" --served-by {server}" if server != "transformers" else ""
        worse = [f"worse than the baseline: {self.grew}"] if self.grew else []
        if self.golden:  # the template (or the harness) changed what a right sample is: review, then update
            worse += [f"{self.golden}; fix: review with `cth diff --model {c.model}`, then `{UPDATE}`"]
        return "\n".join(
            [
                *worse,
                *report_lines(result),
                *kinds.fix_lines(kinds.of_result(result)),
                f"reproduce: cth check {spec} --model {c.model} --think {c.think} --fixture {c.fixture}{extra}",
            ]
        )

    def reportinfo(self) -> tuple[str, int | None, str]:
        return (self.config.stash[PREPROCESSOR][0], None, self.name)


def _cells_selected(config: pytest.Config) -> bool:
    """Cells run only when asked for: an explicit --cth-preprocessor, -m/-k naming cth, CTH_CHECK=1, or cth_collect=always.

    A `cth_preprocessor` in the ini file alone adds nothing to `pytest tests/test_unrelated.py::test_x`.
    """
    given = config.invocation_params.args
    if config.stash.get(REQUESTED, frozenset()):
        return True
    if any(str(a).startswith("--cth-preprocessor") for a in given) or os.environ.get("CTH_CHECK") == "1":
        return True
    if config.getini("cth_collect") == "always":
        return True
    return any("cth" in (config.getoption(opt) or "") for opt in ("markexpr", "keyword"))


def _verified_pack(config: pytest.Config, models: list[str]) -> None:
    """Check the tokenizers once, before any cell runs: one error line and exit 2, not a traceback per cell."""
    from chat_template_harness.errors import HarnessError
    from chat_template_harness.models import source

    base = _tokenizers_dir(config)
    try:
        if config.getoption("--cth-allow-drift"):
            for name in models:  # the files must still be there
                source.locate(source.get_model(name), base)
        else:
            source.check_pinned(models, base)
    except HarnessError as exc:
        pytest.exit(
            f"error: {exc.message}; fix: {exc.fix} (options: --cth-tokenizers-dir DIR or $CTH_TOKENIZERS_DIR, "
            "--cth-model, --cth-allow-drift)",
            returncode=2,
        )


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection, which then applies to these items too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if PREPROCESSOR not in config.stash:
        return
    from chat_template_harness.cells.model import CellResult, Status, cells, na_reason
    from chat_template_harness.errors import HarnessError
    from chat_template_harness.models.rules import Think

    if not _cells_selected(config):
        config.stash[NOT_SELECTED] = True
        return
    # what is not named comes from [tool.cth.cells], else every model, mode and fixture (cells.model.cells)
    models = config.getoption("--cth-model") or None
    thinks = [Think(t) for t in config.getoption("--cth-think")] or None
    fixtures = config.getoption("--cth-fixture") or None
    try:
        selected = cells(models, thinks, fixtures)
        reasons = {cell: na_reason(cell) for cell in selected}
    except HarnessError as exc:
        raise pytest.UsageError(f"chat-template-harness: {exc}") from None
    _verified_pack(config, sorted({c.model for c in selected}))
    requested = config.stash[REQUESTED]
    if requested:
        unknown = requested - {f"cth[{c.id}]" for c in selected}
        if unknown:
            raise pytest.UsageError(
                f"chat-template-harness: no such cell {sorted(unknown)[0]}; the cells read cth[<model>/think-<on|off>/<fixture>]"
            )
        selected = [c for c in selected if f"cth[{c.id}]" in requested]
    parent = MatrixNode.from_parent(session, name=MATRIX_NODE, nodeid=MATRIX_NODE)
    added: list[pytest.Item] = []
    for cell in selected:
        reason = reasons[cell]
        if reason is not None:
            config.stash[RESULTS][cell] = CellResult(cell, Status.NA, reason, code="na.rules")
        # an explicit node id parses as the one the cache and the command line hold (names ("cth",), params = cell)
        name = f"cth[{cell.id}]"
        item = CellCheck.from_parent(parent, name=name, nodeid=f"{MATRIX_NODE}::{name}", cell=cell, na=reason)
        item.add_marker("cth")
        added.append(item)
    items.extend(added)
    # report them as collected, so "collected N items", --lf and the deselected count include the cells
    config.hook.pytest_collectreport(report=pytest.CollectReport(parent.nodeid, "passed", None, result=list(added)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After an update over the whole matrix, remove goldens that no cell maps to."""
    asserted = session.config.stash.get(GOLDENS_ASSERTED, set())
    if not asserted or not session.config.getoption("--snapshot-update", default=False):
        return  # (under CI an update stopped at the start: pytest_configure)
    from chat_template_harness.cells.model import cells as all_cells
    from chat_template_harness.outputs.snapshot import stale_goldens

    cells = all_cells()
    if asserted != set(cells):
        return  # a subset ran: never touch other cells' goldens
    for path in stale_goldens(session.config.stash[GOLDENS_ROOT], cells):
        path.unlink()
        print(f"\nremoved unused golden {path}")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from chat_template_harness.cells.model import Status

    if config.stash.get(NOT_SELECTED, False):
        terminalreporter.write_line(
            "chat-template-harness: matrix cells not collected; select them with -m cth (or -k cth, or CTH_CHECK=1)"
        )

    results = config.stash.get(RESULTS, {})
    undecided = [r for r in results.values() if r.status is Status.UNDECIDED]
    if undecided:
        allowed = "undecided" in config.getoption("--cth-allow")
        terminalreporter.section("chat-template-harness: UNDECIDED cells" + (" (allowed)" if allowed else ""))
        for r in undecided:
            terminalreporter.write_line(f"{r.cell.id}: {r.reason}")
    na = [r for r in results.values() if r.status is Status.NA]
    if not na:
        return
    terminalreporter.section("chat-template-harness: N/A cells")
    reasons: dict[str, list[str]] = {}
    for r in na:
        reasons.setdefault(r.reason, []).append(r.cell.id)
    for reason, ids in reasons.items():
        terminalreporter.write_line(f"{len(ids)} cell(s): {reason}")
