"""pytest plugin (entry point `pytest11`): command-line options, fixtures and report hooks only.

Inert unless used: nothing happens in a test session that requests none of its fixtures and
passes none of its options. The logic lives in chat_template_harness.outputs.matrix, chat_template_harness.outputs.golden, chat_template_harness.outputs.snapshot
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
PLUGIN = pytest.StashKey[tuple[str, Any]]()
GOLDENS_ASSERTED = pytest.StashKey[set[Any]]()
NOT_SELECTED = pytest.StashKey[bool]()
BASELINE = pytest.StashKey[frozenset[str]]()
# cell node ids given on the command line (`pytest "chat-template-harness::cth[qwen3-8b/think-off/single_turn]"`)
REQUESTED = pytest.StashKey[frozenset[str]]()
MATRIX_NODE = "chat-template-harness"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chat-template-harness")
    group.addoption("--cth-tokenizers-dir", default=None, help="tokenizer pack (default: $CTH_TOKENIZERS_DIR, else the hub)")
    group.addoption(
        "--cth-allow-drift",
        action="store_true",
        default=bool(os.environ.get("CTH_ALLOW_DRIFT")),
        help="run with tokenizer files that differ from the pins (default: $CTH_ALLOW_DRIFT); goldens then show what changed",
    )
    group.addoption("--cth-goldens", default="goldens", help="goldens directory, relative to the rootdir (default: goldens)")
    group.addoption(
        "--cth-preprocessor",
        default=None,
        metavar="MODULE:CALLABLE",
        help="check this preprocessor on every cell of the matrix (see README: add the harness to your repo's CI)",
    )
    group.addoption("--cth-model", action="append", default=[], help="with --cth-preprocessor: only these models")
    group.addoption(
        "--cth-fixture", action="append", default=[], metavar="NAME_OR_PATH",
        help="with --cth-preprocessor: only these fixtures (built-in names, or your own conversation files)",
    )
    group.addoption(
        "--cth-timeout", type=float, default=60.0, metavar="SECONDS",
        help="with --cth-preprocessor: a cell whose preprocessor call takes longer fails (default 60)",
    )
    group.addoption(
        "--cth-served-by", default=None, choices=["transformers", "vllm", "sglang"],
        help="whose served prompt the cells replay (default: [tool.cth] served_by, else transformers, the contract's)",
    )
    group.addoption("--cth-system-prompt", default=None, metavar="TEXT", help="the default system prompt your server adds")
    group.addoption("--cth-allow", action="append", default=[], metavar="NAME", help="accept a named deviation (trailer), or UNDECIDED cells (undecided), reported as allowed")
    group.addoption("--cth-baseline", default=None, metavar="FILE", help="cells known to fail: xfail; a listed cell that passes fails as stale")
    parser.addini("cth_preprocessor", "MODULE:CALLABLE checked on the matrix cells when they are selected (-m cth, -k cth)")
    parser.addini(
        "cth_collect", "when to add the matrix cells: 'selected' (default: -m cth, -k cth, or CTH_CHECK=1) or 'always'",
        default="selected",
    )
    group.addoption("--cth-think", action="append", default=[], choices=["on", "off"], help="with --cth-preprocessor: only this mode")
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
        from chat_template_harness.errors import HarnessError
        from chat_template_harness.external import load_callable

        try:
            config.stash[PLUGIN] = (spec, load_callable(spec))
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
    if os.environ.get("CI") and config.getoption("--snapshot-update", default=False):
        raise pytest.UsageError("goldens are never written when CI is set: run `nox -s update_goldens` locally")


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


@pytest.fixture(scope="session")
def cth_run(pytestconfig: pytest.Config) -> Callable[..., Any]:
    """Run a matrix cell once per session (reference preprocessor + invariants); pins are checked first."""
    from chat_template_harness.errors import HarnessError
    from chat_template_harness.models import source
    from chat_template_harness.outputs import matrix

    base = _tokenizers_dir(pytestconfig)
    allow_drift = bool(pytestconfig.getoption("--cth-allow-drift"))
    if not allow_drift:
        for spec in source.registry().values():
            try:
                directory, origin = source.locate(spec, base)
                _, drift = source.verify(spec, directory, origin)
            except HarnessError as exc:
                pytest.exit(f"error: {exc}", returncode=2)
            if drift:
                pytest.exit(
                    f"error: {spec.name}: {directory / drift[0].name}: {drift[0].describe()}; fix: restore the pinned "
                    "file, or re-run with --cth-allow-drift to see which goldens change",
                    returncode=2,
                )
    cache = pytestconfig.stash[RESULTS]

    def run(cell: matrix.Cell) -> matrix.CellResult:
        if cell not in cache:
            cache[cell] = matrix.run_cell(cell, base, allow_drift=allow_drift)
        return cache[cell]

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
    """One matrix cell checked against the plug-in preprocessor: `cth[<model>/think-<t>/<fixture>]`."""

    def __init__(self, *, cell: Any, na: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell
        self.na = na

    def runtest(self) -> None:
        from chat_template_harness.checking.check import check_cell
        from chat_template_harness.contract.sample import Policy
        from chat_template_harness.outputs.matrix import Status

        if self.na is not None:  # declared, visible in every report (JUnit included), never a silent skip
            pytest.skip(f"N/A: {self.na}")
        spec, plugin = self.config.stash[PLUGIN]
        result = check_cell(
            plugin,
            self.cell,
            _tokenizers_dir(self.config),
            allow_drift=bool(self.config.getoption("--cth-allow-drift")),
            policy=Policy(self.config.getoption("--cth-policy")),
            timeout=self.config.getoption("--cth-timeout"),
            system_prompt=self.config.getoption("--cth-system-prompt"),
            allow=frozenset(self.config.getoption("--cth-allow")),
            served_by=_served_by(self.config),
        )
        listed = self.config.stash.get(BASELINE, frozenset())
        if result.status is Status.NA:
            self.config.stash[RESULTS][self.cell] = result
            pytest.skip(f"N/A: {result.reason}")
        self.config.stash[RESULTS][self.cell] = result
        if result.status is Status.UNDECIDED and "undecided" in self.config.getoption("--cth-allow"):
            pytest.skip(f"UNDECIDED (allowed: --cth-allow undecided): {result.reason}")
        known = self.cell.id in listed
        if result.status.failing and known:
            pytest.xfail(f"known failure (baseline): {result.reason}")
        if result.status.failing:
            raise CellCheckFailure(result)
        if known:
            pytest.fail(f"stale baseline entry: {self.cell.id} passes now; remove it from {self.config.getoption('--cth-baseline')}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if not isinstance(excinfo.value, CellCheckFailure):
            return str(super().repr_failure(excinfo))
        from chat_template_harness.checking.check import report_lines

        result = excinfo.value.args[0]
        spec = self.config.stash[PLUGIN][0]
        c = self.cell
        policy = self.config.getoption("--cth-policy")
        extra = f" --policy {policy}" if policy != "all" else ""
        server = _served_by(self.config)
        extra += f" --served-by {server}" if server != "transformers" else ""
        return "\n".join(
            [*report_lines(result), f"reproduce: cth check {spec} --model {c.model} --think {c.think} --fixture {c.fixture}{extra}"]
        )

    def reportinfo(self) -> tuple[str, int | None, str]:
        return (self.config.stash[PLUGIN][0], None, self.name)


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
        for name in models:
            spec = source.get_model(name)
            directory, origin = source.locate(spec, base)
            _, drift = source.verify(spec, directory, origin)
            if drift and not config.getoption("--cth-allow-drift"):
                raise HarnessError(
                    f"{spec.name}: {directory / drift[0].name}: {drift[0].describe()}",
                    "restore the pinned files, or pass --cth-allow-drift to check against them anyway",
                )
    except HarnessError as exc:
        pytest.exit(
            f"error: {exc.message}; fix: {exc.fix} (options: --cth-tokenizers-dir DIR or $CTH_TOKENIZERS_DIR, "
            "--cth-model, --cth-allow-drift)",
            returncode=2,
        )


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection, which then applies to these items too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if PLUGIN not in config.stash:
        return
    from chat_template_harness.errors import HarnessError
    from chat_template_harness.models.rules import Think
    from chat_template_harness.outputs import matrix

    if not _cells_selected(config):
        config.stash[NOT_SELECTED] = True
        return
    # a repo that registers its own models ([tool.cth]) checks those by default (matrix.cells)
    models = config.getoption("--cth-model") or None
    thinks = [Think(t) for t in config.getoption("--cth-think")] or None
    fixtures = config.getoption("--cth-fixture") or None
    try:
        selected = matrix.cells(models, thinks, fixtures)
        reasons = {cell: matrix.na_reason(cell) for cell in selected}
    except HarnessError as exc:
        raise pytest.UsageError(f"chat-template-harness: {exc}") from None
    _verified_pack(config, sorted({c.model for c in selected}))
    requested = config.stash[REQUESTED]
    if requested:
        unknown = requested - {f"cth[{c.id}]" for c in selected}
        if unknown:
            raise pytest.UsageError(f"chat-template-harness: no such cell {sorted(unknown)[0]}; the cells read cth[<model>/think-<on|off>/<fixture>]")
        selected = [c for c in selected if f"cth[{c.id}]" in requested]
    parent = MatrixNode.from_parent(session, name=MATRIX_NODE, nodeid=MATRIX_NODE)
    added: list[pytest.Item] = []
    for cell in selected:
        reason = reasons[cell]
        if reason is not None:
            config.stash[RESULTS][cell] = matrix.CellResult(cell, matrix.Status.NA, reason)
        # an explicit node id parses as the one the cache and the command line hold (names ("cth",), params = cell)
        name = f"cth[{cell.id}]"
        item = CellCheck.from_parent(parent, name=name, nodeid=f"{MATRIX_NODE}::{name}", cell=cell, na=reason)
        item.add_marker("cth")
        added.append(item)
    items.extend(added)
    # report them as collected, so "collected N items", --lf and the deselected count include the cells
    config.hook.pytest_collectreport(report=pytest.CollectReport(parent.nodeid, "passed", None, result=added))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After an update over the whole matrix, remove goldens that no cell maps to."""
    asserted = session.config.stash.get(GOLDENS_ASSERTED, set())
    if not asserted or not session.config.getoption("--snapshot-update", default=False) or os.environ.get("CI"):
        return
    from chat_template_harness.outputs import matrix
    from chat_template_harness.outputs.snapshot import stale_goldens

    cells = matrix.cells()
    if asserted != set(cells):
        return  # a subset ran: never touch other cells' goldens
    for path in stale_goldens(session.config.stash[GOLDENS_ROOT], cells):
        path.unlink()
        print(f"\nremoved unused golden {path}")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from chat_template_harness.outputs.matrix import Status

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
