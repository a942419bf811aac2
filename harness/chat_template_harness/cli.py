"""`cth`: the command line. Each command is a thin wrapper over the package's functions.

Bad input and environment problems print one line, `error: <what>; fix: <how>`, and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from chat_template_harness.cells import model as cells
from chat_template_harness.cells.run import run as run_cells
from chat_template_harness.cells.run import run_cell, run_conversation
from chat_template_harness.contract import conversation
from chat_template_harness.contract.sample import Policy, resolve_mode
from chat_template_harness.errors import HarnessError, MissingTokenizerError
from chat_template_harness.models import source
from chat_template_harness.models.rules import NotApplicable, Think
from chat_template_harness.models.rules.registry import family_for

if TYPE_CHECKING:  # derive is imported where it runs: `cth --version` and `cth models` start without it
    from chat_template_harness.checking.baseline import Verdict
    from chat_template_harness.models.rules import Family
    from chat_template_harness.models.rules.derive import Derivation

Command = Callable[[argparse.Namespace, Console], int]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        COMMANDS[name] = fn
        return fn

    return register


def _tokenizers_dir(args: argparse.Namespace) -> Path | None:
    return source.absolute(args.tokenizers_dir) if args.tokenizers_dir else source.tokenizers_dir_from_env()


@overload
def _goldens(args: argparse.Namespace, *, required: Literal[True] = ...) -> Path: ...
@overload
def _goldens(args: argparse.Namespace, *, required: bool) -> Path | None: ...
def _goldens(args: argparse.Namespace, *, required: bool = True) -> Path | None:
    """The goldens directory for every cell: --goldens if given (it must exist), else [tool.cth] goldens, else
    ./goldens, else the built-in goldens shipped with the package."""
    from chat_template_harness.models import userconfig

    if args.goldens is None and userconfig.goldens_dir() is not None:
        args.goldens = str(userconfig.goldens_dir())
    if args.goldens is None:
        found = _builtin_goldens()
        if found is None and required:
            raise HarnessError("no goldens directory ./goldens here", "pass --goldens DIR")
        return found
    given = Path(args.goldens)
    if not given.is_dir():
        raise HarnessError(
            f"--goldens {args.goldens}: no such directory",
            "check the path (it is the folder holding <model>/think-<t>/*.golden)",
        )
    return given


def _builtin_goldens() -> Path | None:
    """The built-in models' goldens: ./goldens (a clone of the harness), else those shipped with the package
    (`chat_template_harness/goldens` in the wheel; `goldens/` beside `harness/` in a source tree)."""
    import chat_template_harness

    here = Path(chat_template_harness.__file__).resolve().parent
    return next((p for p in (Path("goldens"), here / "goldens", here.parents[1] / "goldens") if p.is_dir()), None)


def _user_goldens(args: argparse.Namespace) -> Path:
    """Where `--update-goldens` writes: --goldens DIR, else [tool.cth] goldens (a user's models live in their repo)."""
    from chat_template_harness.models import userconfig
    from chat_template_harness.outputs import golden

    golden.refuse_writing_under_ci("run `cth matrix --update-goldens` locally and commit them")
    root = Path(args.goldens) if args.goldens else userconfig.goldens_dir()
    if root is None:
        raise HarnessError(
            "--update-goldens needs a place for them", 'pass --goldens DIR (or set goldens = "DIR" under [tool.cth])'
        )
    return root


def _golden_root(args: argparse.Namespace, cell: cells.Cell) -> Path | None:
    """The goldens a cell is compared with: --goldens; a user's model: [tool.cth] goldens; a built-in: ./goldens,
    else the package's own."""
    from chat_template_harness.models import userconfig

    if args.goldens:
        return _goldens(args)
    if not source.get_model(cell.model).builtin:
        return userconfig.goldens_dir()
    return _builtin_goldens()


def _compared(args: argparse.Namespace, result: cells.CellResult) -> cells.CellResult:
    from chat_template_harness.outputs import golden

    root = _golden_root(args, result.cell)
    if root is None or result.status in (cells.Status.ERROR, cells.Status.UNDECIDED):  # no samples to compare
        return result
    return _with_golden(result, golden.check(result, root))


def _write(path: str, text: str) -> None:
    """Write a report the user asked for; a path that cannot be written is an input error, not a traceback."""
    target = Path(path)
    if not target.parent.is_dir():
        raise HarnessError(
            f"cannot write {path}: directory {target.parent} does not exist",
            f"create it (mkdir -p {target.parent}) or pick another path",
        )
    if target.is_dir():
        raise HarnessError(f"cannot write {path}: it is a directory", "give a file name, e.g. report.md")
    try:
        target.write_text(text, "utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot write {path} ({exc.strerror})", "pick a writable path") from exc


class _Progress:
    """Outside a terminal (CI logs), one line to stderr every $CTH_PROGRESS_SECONDS (default 30): `cth check:
    40/221 cells, 52 s`. On a terminal nothing: the commands that draw a bar draw it there."""

    def __init__(self, what: str, total: int | None, unit: str) -> None:
        self.what, self.total, self.unit, self.done = what, total, unit, 0
        self.every = float(os.environ.get("CTH_PROGRESS_SECONDS", "30"))
        self.started = self.last = time.monotonic()
        self.on = not sys.stderr.isatty()

    def __call__(self, done: int = 1) -> None:
        self.done += done
        now = time.monotonic()
        if self.on and now - self.last >= self.every:
            self.last = now
            of = f"/{self.total}" if self.total else ""
            print(
                f"cth {self.what}: {self.done}{of} {self.unit}, {now - self.started:.0f} s", file=sys.stderr, flush=True
            )


def _allow_drift(args: argparse.Namespace) -> bool:
    return bool(args.allow_drift or os.environ.get("CTH_ALLOW_DRIFT"))


def _settings(args: argparse.Namespace, **overrides: Any) -> cells.Settings:
    """The run's settings, built once from the command line (and `[tool.cth]`, which `main` folded into args)."""
    given = {
        "tokenizers_dir": _tokenizers_dir(args),
        "allow_drift": _allow_drift(args),
        "served_by": getattr(args, "served_by", "transformers"),
        "policy": Policy(getattr(args, "policy", Policy.ALL.value)),
        "timeout": getattr(args, "timeout", cells.DEFAULT_TIMEOUT),
        "system_prompt": getattr(args, "system_prompt", None),
    }
    return cells.Settings(**{**given, **overrides})


def _selected(args: argparse.Namespace) -> list[cells.Cell]:
    return cells.cells(args.model or None, [Think(t) for t in args.think] or None, args.fixture or None)


def _cell(args: argparse.Namespace) -> tuple[source.LoadedTokenizer, Any, conversation.Conversation]:
    """One cell's reference samples for `render` and `show`: the runner's, without the checks' second and third clocks."""
    spec = source.get_model(args.model)
    conv = conversation.load(args.fixture)
    think = Think(args.think)
    resolve_mode(family_for(spec), think, conv)  # N/A cells stop here with their reason, before any tokenizer loads
    loaded = source.load(spec.name, _tokenizers_dir(args), allow_drift=_allow_drift(args))
    result = run_conversation(
        cells.Cell(spec.name, think, args.fixture), loaded, conv, _settings(args, determinism=False)
    )
    if result.raised is not None:  # the template (or the server) cannot render this cell: its one line, and the fix
        raise result.raised
    assert result.result is not None
    return loaded, result.result, conv


@command("models")
def cmd_models(args: argparse.Namespace, console: Console) -> int:
    """Registered tokenizers with their pins and whether the local files match them."""
    base = _tokenizers_dir(args)
    table = Table(title=f"tokenizers ({'pack: ' + str(base) if base else 'hub cache'})", title_justify="left")
    for column in (
        "model",
        "hub id",
        "revision",
        "family",
        "think on",
        "think off",
        "files",
        "provenance",
        "chat template",
    ):
        table.add_column(column)
    missing: dict[str, list[str]] = {}  # the fix -> the models it applies to (printed once, under the table)
    for spec in source.registry().values():
        fam = family_for(spec)
        try:
            directory, origin = source.locate(spec, base, download=False)
            _, drift = source.verify(spec, directory, origin)
            files = "all sha256 match" if not drift else "; ".join(d.describe() for d in drift)
        except MissingTokenizerError as exc:
            files = "not available"
            missing.setdefault(exc.fix, []).append(spec.name)
        except HarnessError as exc:
            files = f"not available ({exc.message})"
        statuses = sorted({f.status.split(" (")[0] for f in spec.files})
        table.add_row(
            spec.name,
            spec.hub_repo,
            (spec.revision or "unpinned")[:12],
            fam.title,
            "N/A" if isinstance(fam.on, NotApplicable) else "yes",
            "N/A" if isinstance(fam.off, NotApplicable) else "yes",
            files,
            ", ".join(statuses),
            source.template_origin(spec),
        )
    console.print(table)
    for fix, names in missing.items():
        console.print(f"no local files for {len(names)} model(s) ({', '.join(names)}): {fix}", markup=False)
    extra = source.unregistered_folders(base) if base is not None else []
    if extra:
        console.print(
            f"not registered (no cells by default; `cth derive {base}/<folder>` reads their rules, and any command "
            f"takes the folder as MODEL): {', '.join(extra)}",
            markup=False,
        )
    return 0


@command("derive")
def cmd_derive(args: argparse.Namespace, console: Console) -> int:
    """Read a model's family rules off its own chat template, with the renders each rule was read from."""
    from chat_template_harness.models.rules import derive, files
    from chat_template_harness.models.rules.registry import generation_config, registered_rules

    spec = source.get_model(f"{args.model}@{args.revision}" if args.revision else args.model)
    loaded = source.load(spec.name, _tokenizers_dir(args), allow_drift=True)
    if not loaded.tokenizer.chat_template:
        raise HarnessError(
            f"{spec.name} has no chat template",
            "give a tokenizer whose tokenizer_config.json (or chat_template.jinja) has one",
        )
    eos = derive.eos_tokens(loaded.tokenizer, generation_config(spec, loaded.tokenizer))
    found = derive.derive(loaded.tokenizer, spec.name, eos)
    _print_named_templates(loaded.tokenizer, console)
    _print_findings(found, f"rules read off {spec.name}'s template ({loaded.directory})", console)
    shipped = registered_rules(spec)
    family = found.family if shipped is None else derive.reviewed(found.family, shipped)
    console.print(files.dumps(family), markup=False, soft_wrap=True)
    unexplained = 0 if shipped is None else _print_differences(found.family, shipped, spec.name, console)
    if args.write:
        header = f"Rules for {spec.name}, derived by `cth derive` from {spec.hub_repo}; review before use."
        _write(args.write, files.dumps(family, header=header))
        console.print(f"wrote {args.write}", markup=False)
    return 1 if unexplained or found.undecided or found.family.undecided else 0


def _print_named_templates(tokenizer: Any, console: Console) -> None:
    """Which of a repository's named templates transformers applies to which request, and which it never reads."""
    from chat_template_harness.models import named

    used = named.used(tokenizer)
    for request, name in used.items():
        console.print(f"named template {name!r}: the one transformers applies to {request}", markup=False)
    for name in sorted(set(named.names(tokenizer.chat_template)) - set(used.values())):
        console.print(
            f"named template {name!r}: applied only where a caller asks for it by name (not read)", markup=False
        )


def _print_findings(found: Derivation, title: str, console: Console) -> None:
    """Each rule with the render it was read from (a rule read the same way in both modes once), then what is
    undecided, each with its fix."""
    table = Table(title=title, title_justify="left")
    for column in ("rule", "value", "read from"):
        table.add_column(column, overflow="fold")
    shown: set[tuple[str, str, str]] = set()
    for f in found.findings:
        # Text, never markup: templates are full of brackets ([gMASK], [TOOL_CALLS], [get_weather(...)])
        row = (f.rule, repr(f.value) if f.decided else "UNDECIDED", f.evidence + (f" ({f.note})" if f.note else ""))
        if row not in shown:
            shown.add(row)
            table.add_row(*(Text(cell) for cell in row))
    console.print(table)
    for f in found.undecided:
        console.print(f"undecided: {f.rule}; fix: {f.note}", markup=False)
    for u in found.family.undecided:  # the same line render, show, matrix, check, audit, diff and pytest print
        console.print(u.line(), markup=False, soft_wrap=True)


def _print_differences(derived: Family, shipped: Family, name: str, console: Console) -> int:
    """The derived rules against a registered model's: each difference, kept by hand (with why) or not explained.
    Returns how many are not explained."""
    from chat_template_harness.models.rules import derive

    diffs = derive.differences(derived, shipped)
    for d in diffs:
        why = (
            f"kept by hand: {d.why}"
            if d.why
            else "NOT EXPLAINED: fix the rules file or add the reason under [reviewed]"
        )
        console.print(
            f"differs from the registered rules: {d.rule}: derived {d.derived!r}, registered {d.shipped!r} ({why})",
            markup=False,
            soft_wrap=True,
        )
    unexplained = sum(1 for d in diffs if not d.why)
    summary = (
        "equal to the derived ones"
        if not diffs
        else f"{len(diffs) - unexplained} explained difference(s), {unexplained} unexplained"
    )
    console.print(f"registered rules for {name}: {summary}", markup=False)
    return unexplained


@command("show")
def cmd_show(args: argparse.Namespace, console: Console) -> int:
    """Terminal view of a cell: trained spans coloured, whitespace visible, the turn report."""
    from chat_template_harness.outputs.view import show

    loaded, result, conv = _cell(args)
    show(
        console,
        f"{loaded.spec.name} · think {args.think} · {conv.name} ({loaded.spec.hub_repo}, {loaded.origin})",
        result,
    )
    return 0


@command("render")
def cmd_render(args: argparse.Namespace, console: Console) -> int:
    """Machine-readable samples: a JSON list of {text, input_ids, loss_mask}."""
    _, result, _ = _cell(args)
    samples = [
        {"text": s.text, "input_ids": list(s.input_ids), "loss_mask": list(s.loss_mask), "turns": list(s.turns)}
        for s in result.samples
    ]
    sys.stdout.write(json.dumps(samples, ensure_ascii=False, indent=None if args.json else 2) + "\n")
    return 0


@command("matrix")
def cmd_matrix(args: argparse.Namespace, console: Console) -> int:
    """Every model x think mode x fixture: pass, fail or N/A (with the reason)."""
    from chat_template_harness.outputs import golden, report

    selected = _selected(args)
    allow = baseline_allowances(args.allow)
    served_by = args.served_by
    if args.update_goldens and served_by != "transformers":
        raise HarnessError(
            f"goldens hold transformers' served prompts, not {served_by}'s", "drop --served-by to update them"
        )
    settings = _settings(args)
    tick = _Progress("matrix", len(selected), "cells")
    results = run_cells(selected, settings, workers=args.jobs or (os.cpu_count() or 1), tick=tick)
    # a user's own conversation file has no golden; another server's samples are not transformers' goldens
    builtin = set(conversation.fixture_names()) if served_by == "transformers" else set()
    if args.update_goldens:
        root = _user_goldens(args)
        for r in results:
            if r.cell.fixture in builtin and not r.status.failing:
                path = golden.path_for(root, r.cell)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(golden.render(r), "utf-8")
        console.print(f"wrote the goldens of {len(results)} cell(s) under {root}", markup=False)
    else:
        results = [_compared(args, r) if r.cell.fixture in builtin else r for r in results]
    console.print(report.matrix_table(results))
    console.print(report.summary_line(results))
    if line := report.undecided_line(results, allow):
        console.print(line, markup=False)
    if served_by != "transformers":
        console.print(
            f"served by {served_by}: invariants checked on its served prompts; goldens not compared (they hold "
            f"transformers' prompts: `cth diff --served-by {served_by}` lists where they differ)",
            markup=False,
        )
    if args.markdown:
        _write(args.markdown, report.matrix_markdown(results))
    return 1 if any(cells.fails_run(r.status, allow) for r in results) else 0


def baseline_allowances(names: Sequence[str]) -> frozenset[str]:
    from chat_template_harness.checking import baseline

    return baseline.parse_allowances(names)


@command("smoke")
def cmd_smoke(args: argparse.Namespace, console: Console) -> int:
    """Tiny training step: exits 1 when gradient reaches a position that must not be trained."""
    from chat_template_harness.smoke import report_lines, run_smoke

    result = run_smoke(
        args.model,
        Think(args.think),
        device=args.device,
        preprocessor=args.preprocessor,
        steps=args.steps,
        tokenizers_dir=_tokenizers_dir(args),
        served_by=args.served_by,
    )
    if args.served_by != "transformers":
        console.print(f"served by {args.served_by}: the reference's samples replay its served prompts", markup=False)
    for line in report_lines(result):
        console.print(line, markup=False)
    return 0 if result.ok else 1


@command("check")
def cmd_check(args: argparse.Namespace, console: Console) -> int:
    """Check your preprocessor (MODULE:CALLABLE) on every cell: invariants 1-8 and a comparison with the reference."""
    from chat_template_harness import external
    from chat_template_harness.checking import baseline

    preprocessor = external.load_callable(args.preprocessor)
    allow = baseline.parse_allowances(args.allow)
    listed = baseline.read(args.baseline) if args.baseline and not args.update_baseline else {}
    selected = _selected(args)
    settings = _settings(args, allow=allow)
    results = []
    tick = _Progress("check", len(selected), "cells")
    for cell in selected:
        result = run_cell(cell, settings, preprocessor)
        results.append(result)
        tick()
        known = cell.id in listed and not baseline.worse_than(baseline.counts_of(result), listed[cell.id])
        _print_check(console, result, known=known, verbose=args.verbose)
    _check_outputs(args, results, allow, set(listed), console)
    failing = {r.cell.id: baseline.counts_of(r) for r in results if cells.fails_run(r.status, allow)}
    if args.update_baseline:
        if not args.baseline:
            raise HarnessError(
                "--update-baseline needs --baseline FILE", "name the file to write, e.g. --baseline cth-baseline.txt"
            )
        baseline.write(args.baseline, args.preprocessor, failing)
        console.print(f"baseline: {len(failing)} failing cell(s) written to {args.baseline}", markup=False)
        return 0
    if not args.baseline:
        return 1 if failing else 0
    passing = [r.cell.id for r in results if r.status is cells.Status.PASS]
    return _against_baseline(args.baseline, baseline.compare(failing, passing, listed), console)


def _check_outputs(
    args: argparse.Namespace, results: list[cells.CellResult], allow: frozenset[str], known: set[str], console: Console
) -> None:
    """The check's summary lines, and the files asked for (Markdown, JSON, JUnit)."""
    from chat_template_harness.outputs import report

    console.print(report.summary_line(results, failures=False))
    if line := report.undecided_line(results, allow):
        console.print(line, markup=False)
    tally = report.kind_tally(results)
    if tally:
        console.print(tally, markup=False, soft_wrap=True)
    if args.markdown:
        _write(args.markdown, report.check_markdown(args.preprocessor, results, Policy(args.policy)))
    if args.json or args.junit:
        from chat_template_harness.outputs import cifile

        if args.json:
            _write(args.json, cifile.check_json(args.preprocessor, args.policy, results, known=known))
        if args.junit:
            _write(args.junit, cifile.check_junit(args.preprocessor, results))


def _against_baseline(path: str, verdict: Verdict, console: Console) -> int:
    """The failures against a baseline's: known, new, stale (passes now) and worse; 1 where any is not known."""
    console.print(
        f"baseline {path}: {len(verdict.known)} known failure(s), {len(verdict.new)} new, "
        f"{len(verdict.stale)} stale, {len(verdict.worse)} worse",
        markup=False,
    )
    for cell_id in verdict.stale:
        console.print(
            f"  stale: {cell_id} passes now; remove it from the baseline (or --update-baseline)", markup=False
        )
    for cell_id in verdict.new:
        console.print(f"  new failure: {cell_id}", markup=False)
    for cell_id, grew in verdict.worse:
        console.print(
            f"  worse: {cell_id}: {grew} (recorded in the baseline: fix it, or accept with --update-baseline)",
            markup=False,
        )
    for cell_id in verdict.uncounted:
        console.print(f"  no counts recorded for {cell_id}: rewrite the baseline with --update-baseline", markup=False)
    return 0 if verdict.ok else 1


def _print_check(console: Console, result: cells.CellResult, *, known: bool, verbose: bool) -> None:
    from chat_template_harness.contract import kinds
    from chat_template_harness.outputs.view import report_lines

    if result.status is cells.Status.NA:
        return
    if result.status in (cells.Status.UNDECIDED, cells.Status.ERROR):  # one line: the question (or error) and its fix
        console.print(f"[bold yellow]{result.status.value.upper()}[/] {escape(result.cell.id)}")
        console.print(f"  {result.reason}", markup=False, soft_wrap=True)
        return
    failed = result.status is cells.Status.FAIL
    label = "KNOWN" if failed and known else result.status.value.upper()
    style = "yellow" if failed and known else "bold red" if failed else "green"
    console.print(
        f"[{style}]{label:<4}[/] {escape(result.cell.id)}"
        + (f" ({len(result.allowed)} allowed)" if result.allowed else "")
    )
    if failed or (verbose and result.allowed):
        fixes = kinds.fix_lines(kinds.of_result(result)) if failed else []
        for line in [*report_lines(result, verbose=verbose), *fixes]:
            console.print("  " + line.replace("\n", "\n  "), markup=False)


@command("audit")
def cmd_audit(args: argparse.Namespace, console: Console) -> int:
    """Audit a whole dataset (JSONL, Parquet, hub id): rejected rows by reason, what is trained, what your preprocessor gets wrong."""
    import json as _json

    from rich.markdown import Markdown
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from chat_template_harness.audit import audit
    from chat_template_harness.audit.row import Job

    spec = source.get_model(args.model)
    allow = baseline_allowances(args.allow)
    mode = family_for(spec).mode(Think(args.think))
    if isinstance(mode, NotApplicable):
        raise HarnessError(f"{spec.name} think-{args.think} is N/A: {mode.reason}", "choose the other think mode")
    if args.preprocessor:
        from chat_template_harness import external

        external.load_callable(args.preprocessor)  # a broken preprocessor is one error before any row is read
    job = Job(spec.name, args.think, args.preprocessor, _settings(args, determinism=False))
    stderr = Console(stderr=True)
    columns = (
        TextColumn("auditing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} rows/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr, disable=not stderr.is_terminal, transient=True) as bar:
        task = bar.add_task("audit", total=args.limit, rate="-")
        started = time.perf_counter()

        log = _Progress("audit", args.limit, "rows")

        def tick(_: object) -> None:
            done = bar.tasks[0].completed + 1
            bar.update(task, completed=done, rate=f"{done / max(time.perf_counter() - started, 1e-9):.0f}")
            log()

        summary = audit(
            args.path,
            job,
            engine=args.engine,
            workers=args.workers,
            limit=args.limit,
            revision=args.revision,
            progress=tick,
            sample=dataclasses.replace(args.sample, seed=args.seed) if args.sample else None,
        )
    console.print(Markdown(summary.markdown()))
    if args.json:
        _write(args.json, _json.dumps(summary.to_json(), ensure_ascii=False, indent=2) + "\n")
    if args.markdown:
        _write(args.markdown, summary.markdown())
    if summary.undecided:
        from chat_template_harness.audit.row import UNDECIDED_ROWS

        questions = sorted({detail for _, detail in summary.examples.get(UNDECIDED_ROWS, [])})
        for question in questions:  # the question and its fix, as every command says it
            console.print(question, markup=False, soft_wrap=True)
        console.print(report_undecided_audit(summary.undecided, allow), markup=False)
    if summary.failed or (args.strict and summary.rejected):
        return 1
    if summary.undecided and "undecided" not in allow:
        return 1
    return 0


def report_undecided_audit(rows: int, allow: frozenset[str]) -> str:
    if "undecided" in allow:
        return f"{rows} row(s) need a rule the template does not prove: allowed (--allow undecided), not trained"
    return (
        f"{rows} row(s) need a rule the template does not prove (listed above): the run fails; write the rule, "
        "or accept it with --allow undecided"
    )


@command("diff")
def cmd_diff(args: argparse.Namespace, console: Console) -> int:
    """Re-render every cell here (or with --tokenizers-dir) against the goldens: what changed, and why."""
    from chat_template_harness.outputs import drift

    selected = _selected(args)
    diffs = []
    for cell in selected:  # each cell against its own goldens: a built-in's ship with the package, yours in your repo
        root = _golden_root(args, cell)
        if root is None:
            raise HarnessError(
                f"no goldens for {cell.id}", 'pass --goldens DIR (or set goldens = "DIR" under [tool.cth])'
            )
        diffs.append(drift.diff_cell(cell, root, _tokenizers_dir(args), args.served_by))
    for d in diffs:
        if not d.changed:
            continue
        console.print(f"[bold red]{d.status.upper()}[/] {escape(d.cell.id)}")
        fix = (f"fix: {d.fix}",) if d.fix else ()
        for line in (*(f"cause: {c.text}" for c in d.causes), *fix, d.first_token, d.mask, *d.text_diff):
            if line:
                console.print(f"  {line}", markup=False)
    for line in drift.summary(diffs):
        console.print(line, markup=False)
    if args.markdown:
        base = _tokenizers_dir(args)
        context = (
            f"Goldens in `{args.goldens or 'goldens'}` against this environment's libraries (versions in the header); "
            f"tokenizer files from {'the pinned hub revisions' if base is None else 'a local pack'}."
            + (
                f" Samples served by {args.served_by} (the goldens hold transformers' served prompts)."
                if args.served_by != "transformers"
                else ""
            )
        )
        _write(args.markdown, drift.markdown(diffs, context))
    return 1 if any(d.changed for d in diffs) else 0


@command("servers")
def cmd_servers(args: argparse.Namespace, console: Console) -> int:
    """Where servers disagree: every served prompt (cells, then server probes) as two servers serve it, every differing region."""
    from chat_template_harness.outputs import servers as compare

    a = args.served_by
    texts = []
    for b in args.against or [p for p in ("vllm", "sglang") if p != a]:
        probe_models = [] if args.no_probes else args.model or source.default_models()
        diffs = compare.compare(
            _selected(args), a, b, probe_models=probe_models, thinks=[Think(t) for t in args.think] or tuple(Think)
        )
        for d in diffs:
            if d.error:
                console.print(f"[bold]{escape(d.cell.id)}[/] turn {d.turn}: cannot be served by one of them:")
                console.print(f"  {d.error}", markup=False)
            for r in d.regions:
                console.print(f"[bold]{escape(d.cell.id)}[/] turn {d.turn}: the lists part at token {r.at}")
                console.print(f"  {a}: {r.mine!r}", markup=False)
                console.print(f"  {b}: {r.theirs!r}", markup=False)
        for line in compare.summary(diffs, a, b):
            console.print(line, markup=False)
        texts.append(compare.markdown(diffs, a, b))
    if args.markdown:
        _write(args.markdown, compare.report(texts))
    return 0


@command("gallery")
def cmd_gallery(args: argparse.Namespace, console: Console) -> int:
    """Build the static HTML gallery from the committed goldens (and optionally the Markdown overview)."""
    from chat_template_harness.outputs import gallery, overview

    out = Path(args.out)
    columns = []
    if args.conformance:
        from chat_template_harness.outputs import conformance

        console.print("conformance: running every preprocessor on every cell …", markup=False)
        columns = conformance.run(cells.cells(), tokenizers_dir=_tokenizers_dir(args), served_by=args.served_by)
    servers = Path(args.servers) if args.servers else None
    if servers is not None and not servers.is_file():
        raise HarnessError(
            f"no servers report at {servers}", "make it with `cth servers --markdown FILE`, then pass --servers FILE"
        )
    results = gallery.build(
        out,
        _goldens(args),
        _tokenizers_dir(args),
        conformance=columns,
        served_by=args.served_by,
        servers_report=servers,
        progress=_Progress("gallery", len(cells.cells()), "cells"),
    )
    if args.conformance:
        _write(args.conformance, conformance.markdown(columns, [r.cell for r in results]))
        console.print(f"conformance -> {out / 'conformance.html'}, {args.conformance}", markup=False)
    console.print(f"gallery: {len(results)} cells -> {out / 'index.html'}", markup=False)
    if args.markdown:
        _write(args.markdown, overview.templates_markdown(results))
        console.print(f"overview -> {args.markdown}", markup=False)
    return 0


def _with_golden(result: cells.CellResult, problem: str | None) -> cells.CellResult:
    if problem is None or result.status.failing:
        return result
    return dataclasses.replace(result, status=cells.Status.FAIL, reason=problem)


def _add_cell_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="short name (qwen3-8b) or hub id (Qwen/Qwen3-8B)")
    parser.add_argument("fixture", help="built-in fixture name or path to a JSON conversation")
    parser.add_argument("--think", choices=[t.value for t in Think], required=True)
    parser.add_argument("--policy", choices=[p.value for p in Policy], default=Policy.ALL.value)
    _add_served_by(parser)


def _add_served_by(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--served-by",
        default=None,
        choices=["transformers", "vllm", "sglang"],
        help="whose served prompt the samples replay: transformers' template (the contract's; the default unless "
        "[tool.cth] served_by says otherwise), or the prompt vLLM / SGLang serve for the same chat request "
        "(gpt-oss under vllm: harmony's ids)",
    )


def _sample_plan(text: str) -> Any:
    """An argparse type for --sample: a row count or a fraction (the seed is set from --seed)."""
    from chat_template_harness.audit.sampling import Plan

    try:
        return Plan.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(kind: type) -> Callable[[str], Any]:
    """An argparse type: a number above zero, else the usual one-line usage error (exit 2)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    """Every command's arguments, declared in the order `cth --help` lists them. It is one long declaration, not
    logic: each command's lines read as its help does, and its `cmd_*` function holds what it does."""
    from chat_template_harness import __version__

    top = argparse.ArgumentParser(prog="cth", description="chat-template harness: what each template trains")
    top.add_argument("--version", action="version", version=f"cth (chat-template-harness) {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tokenizers-dir", help="local tokenizer pack (default: $CTH_TOKENIZERS_DIR, else the hub)")
    common.add_argument("--allow-drift", action="store_true", help="load tokenizers whose files differ from the pins")
    selection = argparse.ArgumentParser(add_help=False)
    selection.add_argument("--model", action="append", help="only this model (repeatable)")
    selection.add_argument("--think", action="append", default=[], choices=[t.value for t in Think])
    selection.add_argument("--fixture", action="append", help="only this fixture (repeatable)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("models", parents=[common], help=cmd_models.__doc__)
    derive_p = sub.add_parser("derive", parents=[common], help=cmd_derive.__doc__)
    derive_p.add_argument(
        "model", metavar="MODEL", help="a tokenizer folder, a hub id (org/name), or a registered model"
    )
    derive_p.add_argument("--revision", help="the hub revision (commit) of an org/name hub id")
    derive_p.add_argument("--write", metavar="FILE", help="save the rules as a readable TOML rules file")
    show_p = sub.add_parser("show", parents=[common], help=cmd_show.__doc__)
    _add_cell_arguments(show_p)
    render_p = sub.add_parser("render", parents=[common], help=cmd_render.__doc__)
    _add_cell_arguments(render_p)
    render_p.add_argument("--json", action="store_true", help="one compact JSON line")
    matrix_p = sub.add_parser("matrix", parents=[common, selection], help=cmd_matrix.__doc__)
    matrix_p.add_argument("--markdown", metavar="FILE", help="also write the matrix as Markdown (CI summary)")
    matrix_p.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="processes (default: one per core, at most one per model); each model's tokenizer is made in one",
    )
    matrix_p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="NAME",
        help="undecided: UNDECIDED cells (a rule no render proves) do not fail the run; still listed and counted",
    )
    matrix_p.add_argument(
        "--goldens",
        default=None,
        help="compare with these goldens (default: ./goldens for built-in models, [tool.cth] goldens for yours)",
    )
    matrix_p.add_argument(
        "--update-goldens",
        action="store_true",
        help="write the goldens of the selected cells (your models' goldens, kept in your repo) under --goldens DIR",
    )
    _add_served_by(matrix_p)
    check_p = sub.add_parser("check", parents=[common, selection], help=cmd_check.__doc__)
    check_p.add_argument("preprocessor", metavar="MODULE:CALLABLE")
    check_p.add_argument(
        "--policy",
        choices=[p.value for p in Policy],
        default=Policy.ALL.value,
        help="all: every assistant turn must be trained (default, as for render, matrix and audit); last: only the final turn",
    )
    check_p.add_argument("--markdown", metavar="FILE", help="also write the per-cell report as Markdown")
    check_p.add_argument(
        "--json", metavar="FILE", help="also write every cell's status and kinds as JSON (schema: outputs/cifile.py)"
    )
    check_p.add_argument(
        "--junit", metavar="FILE", help="also write JUnit XML (one testcase per cell) for CI test reports"
    )
    _add_served_by(check_p)
    check_p.add_argument(
        "--system-prompt",
        metavar="TEXT",
        help="the default system prompt your server adds to conversations that have none: served prompts include it",
    )
    check_p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="NAME",
        help="accept a named deviation, reported as allowed (trailer: the template's text after the stop token; "
        "undecided: cells that need a rule no render proves)",
    )
    check_p.add_argument(
        "--baseline", metavar="FILE", help="cells known to fail: only new failures and stale entries fail"
    )
    check_p.add_argument(
        "--update-baseline", action="store_true", help="write the cells that fail now to --baseline FILE"
    )
    check_p.add_argument("--verbose", action="store_true", help="show every trained run in full")
    check_p.add_argument(
        "--timeout",
        type=_positive(float),
        default=60.0,
        metavar="SECONDS",
        help="a cell whose preprocessor call takes longer fails, named in the report, and the run goes on (default 60)",
    )
    audit_p = sub.add_parser("audit", parents=[common], help=cmd_audit.__doc__)
    audit_p.add_argument("path", help="a .jsonl or .parquet file, or a hub dataset id (with --revision)")
    audit_p.add_argument("--model", required=True, help="short name or hub id of the tokenizer to audit for")
    audit_p.add_argument("--think", choices=[t.value for t in Think], required=True)
    audit_p.add_argument("--preprocessor", metavar="MODULE:CALLABLE", help="also check your preprocessor on every row")
    audit_p.add_argument("--policy", choices=[p.value for p in Policy], default=Policy.ALL.value)
    audit_p.add_argument("--limit", type=_positive(int), help="only the first N rows")
    audit_p.add_argument(
        "--sample",
        metavar="N|FRACTION",
        type=_sample_plan,
        help="a statistical audit: N rows (or a fraction, 0.02) drawn at random with --seed; rates with 95%% intervals",
    )
    audit_p.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    audit_p.add_argument(
        "--workers", type=_positive(int), default=os.cpu_count() or 1, help="processes (default: every core)"
    )
    audit_p.add_argument(
        "--engine", choices=["local", "ray"], default="local", help="ray: Ray Data on $RAY_ADDRESS (else a local Ray)"
    )
    audit_p.add_argument("--revision", help="the hub dataset's revision")
    audit_p.add_argument(
        "--json",
        metavar="FILE",
        help="the machine-readable report (schema in harness/chat_template_harness/audit/summary.py)",
    )
    audit_p.add_argument("--markdown", metavar="FILE", help="the report as Markdown (e.g. $GITHUB_STEP_SUMMARY)")
    audit_p.add_argument("--strict", action="store_true", help="exit 1 when any row was rejected, too")
    audit_p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="NAME",
        help="undecided: rows that need a rule no render proves do not fail the run (still counted)",
    )
    _add_served_by(audit_p)
    diff_p = sub.add_parser("diff", parents=[common, selection], help=cmd_diff.__doc__)
    diff_p.add_argument("--goldens", default=None, help="the goldens to compare with (default: ./goldens)")
    diff_p.add_argument("--markdown", metavar="FILE", help="also write the report as Markdown")
    _add_served_by(diff_p)
    servers_p = sub.add_parser("servers", parents=[common, selection], help=cmd_servers.__doc__)
    servers_p.add_argument(
        "--served-by",
        default="transformers",
        choices=["transformers", "vllm", "sglang"],
        help="the server whose prompts are compared (default: transformers, the contract's)",
    )
    servers_p.add_argument(
        "--against",
        action="append",
        choices=["transformers", "vllm", "sglang"],
        help="the other server (repeatable; default: vllm and sglang)",
    )
    servers_p.add_argument("--markdown", metavar="FILE", help="also write the comparison as Markdown")
    servers_p.add_argument(
        "--no-probes",
        action="store_true",
        help="compare the selected cells only, not the server probes (data/server_probes.json)",
    )
    gallery_p = sub.add_parser("gallery", parents=[common], help=cmd_gallery.__doc__)
    gallery_p.add_argument("--out", required=True, help="directory for the site (index.html and pages)")
    gallery_p.add_argument("--goldens", default=None, help="the committed goldens (default: ./goldens)")
    gallery_p.add_argument("--markdown", metavar="FILE", help="also write the overview, e.g. docs/templates.md")
    gallery_p.add_argument(
        "--conformance",
        metavar="FILE",
        help="also run every worked preprocessor (reference, naive, TRL, SpecForge) on every cell: conformance.html "
        "and this Markdown table, e.g. docs/conformance.md",
    )
    gallery_p.add_argument(
        "--servers",
        metavar="FILE",
        default="reports/servers.md" if Path("reports/servers.md").is_file() else None,
        help="the `cth servers --markdown` report to show as servers.html (default: reports/servers.md, where present)",
    )
    _add_served_by(gallery_p)
    smoke_p = sub.add_parser("smoke", parents=[common], help=cmd_smoke.__doc__)
    smoke_p.add_argument("model")
    smoke_p.add_argument("--think", choices=[t.value for t in Think], required=True)
    smoke_p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if present, else cpu")
    smoke_p.add_argument(
        "--preprocessor",
        default="reference",
        help="reference (default), naive (the worked wrong example) or MODULE:CALLABLE",
    )
    smoke_p.add_argument(
        "--steps", type=_positive(int), default=3, help="AdamW steps after the checked one (default 3)"
    )
    _add_served_by(smoke_p)
    return top


def _extra_for(module: str) -> str | None:
    """The smallest optional extra (pyproject's `[project.optional-dependencies]`) that installs `module`, read
    from the installed package's own metadata, so the hint names what this version declares."""
    from importlib import metadata

    try:
        requirements = metadata.requires("chat-template-harness") or []
    except metadata.PackageNotFoundError:
        return None
    extras: dict[str, list[str]] = {}
    for line in requirements:
        spec, _, marker = line.partition(";")
        if "extra ==" in marker:
            name = re.split(r"[\[=<>!~ ]", spec.strip(), maxsplit=1)[0].lower().replace("-", "_")
            extras.setdefault(marker.split("extra ==")[1].strip().strip("'\""), []).append(name)
    having = [extra for extra, names in extras.items() if module.lower() in names]
    return min(having, key=lambda e: len(extras[e])) if having else None


def _missing_module(command_name: str, exc: ModuleNotFoundError) -> str:
    module = (exc.name or "").split(".")[0]
    extra = _extra_for(module)
    fix = f"pip install 'chat-template-harness[{extra}]'" if extra else f"pip install {module}"
    return f"cth {command_name} needs {module}, which is not installed; fix: {fix}"


def main(argv: Sequence[str] | None = None) -> int:
    # transformers says "PyTorch was not found" on import; the commands that need torch say so themselves
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if os.getcwd() not in sys.path:  # a repo's MODULE:CALLABLE imports from where cth runs, as with `python -m`
        sys.path.insert(0, os.getcwd())
    args = parser().parse_args(argv)
    source.pin_env_tokenizers_dir()
    # Logs and pipes have no width; tables and reports read better wide than folded to 80 columns, and a
    # message is never broken mid-line there (grep finds it whole).
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
    console = Console(highlight=False, width=width, soft_wrap=not sys.stdout.isatty())
    try:
        if args.command != "servers" and hasattr(args, "served_by"):
            from chat_template_harness.serving.served import chosen

            args.served_by = chosen(args.served_by)  # the flag, else [tool.cth] served_by, else transformers
        return COMMANDS[args.command](args, console)
    except HarnessError as exc:
        Console(stderr=True, highlight=False).print(f"error: {exc}", markup=False, soft_wrap=True)
        return 2
    except ModuleNotFoundError as exc:  # an optional extra that is not installed (torch for smoke, ray, datasets)
        if not exc.name:
            raise
        Console(stderr=True, highlight=False).print(
            f"error: {_missing_module(args.command, exc)}", markup=False, soft_wrap=True
        )
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
