"""The matrix report: model x think mode x fixture, for terminals and for CI summaries (Markdown)."""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

from rich.table import Table
from rich.text import Text

from chat_template_harness.cells.model import Cell, CellResult, Status

if TYPE_CHECKING:
    from chat_template_harness.contract.sample import Policy


class _Result(Protocol):
    """What a report reads of a cell's result (CellResult, frozen: read-only)."""

    @property
    def cell(self) -> Cell: ...
    @property
    def status(self) -> Status: ...
    @property
    def reason(self) -> str: ...


MARK = {
    Status.PASS: "pass",
    Status.FAIL: "FAIL",
    Status.NA: "n/a",
    Status.ERROR: "ERROR",
    Status.UNDECIDED: "UNDECIDED",
}
STYLE = {
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.NA: "grey50",
    Status.ERROR: "bold magenta",
    Status.UNDECIDED: "bold yellow",
}


def _grid(results: Sequence[_Result]) -> tuple[list[str], list[tuple[str, str]], dict[tuple[str, str, str], _Result]]:
    fixtures = list(dict.fromkeys(r.cell.fixture for r in results))
    rows = list(dict.fromkeys((r.cell.model, str(r.cell.think)) for r in results))
    cells = {(r.cell.model, str(r.cell.think), r.cell.fixture): r for r in results}
    return fixtures, rows, cells


def _na_reasons(results: Sequence[_Result]) -> dict[str, list[str]]:
    """Each distinct N/A reason with the cells it covers (a whole mode, or some fixtures)."""
    reasons: dict[str, list[str]] = {}
    for r in results:
        if r.status is Status.NA:
            reasons.setdefault(r.reason, []).append(r.cell.id)
    return reasons


def matrix_table(results: Sequence[CellResult]) -> Table:
    fixtures, rows, cells = _grid(results)
    table = Table(title="matrix: model × think mode × fixture", title_justify="left")
    table.add_column("model", no_wrap=True)
    table.add_column("think", no_wrap=True)
    for f in fixtures:
        table.add_column(f.replace("_", " "), justify="center", overflow="fold")
    for model, think in rows:
        table.add_row(
            model,
            think,
            *(
                Text(MARK[c.status], style=STYLE[c.status]) if (c := cells.get((model, think, f))) else Text("")
                for f in fixtures
            ),
        )
    return table


def counts_line(counts: Counter[Status]) -> str:
    """`N passed, N failed, N n/a`, `, N error(s)` where a cell errs, `, N undecided` where a rule is not proven."""
    line = f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, {counts[Status.NA]} n/a"
    errors = counts[Status.ERROR]
    line += f", {errors} error{'s' if errors > 1 else ''}" if errors else ""
    return line + (f", {counts[Status.UNDECIDED]} undecided" if counts[Status.UNDECIDED] else "")


def undecided_line(results: Sequence[_Result], allow: frozenset[str] | set[str]) -> str:
    """Whether the UNDECIDED cells fail the run: "" when there are none."""
    from chat_template_harness.cells.model import ALLOW_UNDECIDED

    n = sum(r.status is Status.UNDECIDED for r in results)
    if not n:
        return ""
    if ALLOW_UNDECIDED in allow:
        return f"{n} undecided cell(s) allowed (--allow undecided): reported, not failing"
    return (
        f"{n} undecided cell(s) fail the run: write the rules they name (each line above says which), "
        "or accept them with --allow undecided"
    )


def kind_tally(results: Sequence[CellResult]) -> str:
    """Failing cells per kind, worst first: `cells by kind: E 10 (an empty think block is trained), …`."""
    from chat_template_harness.contract import kinds

    per_kind = Counter(k for r in results for k in kinds.of_result(r))
    shown = [f"{k} {per_kind[k]} ({meaning})" for k, meaning in kinds.KINDS if per_kind[k]]
    return ("cells by kind, worst first: " + "; ".join(shown)) if shown else ""


def reasoning_dropped(results: Sequence[_Result]) -> str:
    """`reasoning dropped in N cells: model/think-off (k), …`: cells whose mode drops the data's reasoning, per
    model and mode; "" where none does. Never silent: the samples of such a cell train no reasoning."""
    dropping = [r for r in results if _drops_reasoning(r)]
    if not dropping:
        return ""
    per_mode = Counter(f"{r.cell.model}/think-{r.cell.think}" for r in dropping)
    return f"reasoning dropped in {len(dropping)} cells: " + ", ".join(f"{m} ({n})" for m, n in per_mode.items())


def _drops_reasoning(result: _Result) -> bool:
    """A cell whose reference samples drop the data's reasoning (CellResult.reasoning_dropped, from turn-note codes)."""
    return bool(getattr(result, "reasoning_dropped", False))


def summary_line(results: Sequence[_Result], *, failures: bool = True) -> Text:
    counts = Counter(r.status for r in results)
    text = Text(counts_line(counts))
    dropped = reasoning_dropped(results)
    if dropped:
        text.append(f"\n  {dropped}", style="yellow")
    for reason, ids in _na_reasons(results).items():
        text.append(f"\n  n/a ({len(ids)} cells): {reason}", style="grey50")
    for r in results if failures else ():
        if r.status.failing:
            text.append(f"\n  {MARK[r.status]} {r.cell.id}: {r.reason}", style="red")
    return text


def _markdown_grid(results: Sequence[_Result]) -> list[str]:
    """The model x think x fixture table, the counts and the N/A reasons, as Markdown lines."""
    fixtures, rows, cells = _grid(results)
    icon = {Status.PASS: "✅", Status.FAIL: "❌", Status.NA: "—", Status.ERROR: "💥", Status.UNDECIDED: "❓"}
    lines = [
        "| model | think | " + " | ".join(f.replace("_", " ") for f in fixtures) + " |",
        "|---|---|" + "---|" * len(fixtures),
    ]
    for model, think in rows:
        marks = [_mark(icon, c) if (c := cells.get((model, think, f))) else "" for f in fixtures]
        lines.append(f"| `{model}` | {think} | " + " | ".join(marks) + " |")
    counts = Counter(r.status for r in results)
    lines += ["", counts_line(counts), ""]
    dropped = reasoning_dropped(results)
    if dropped:
        lines += [dropped + ".", ""]
    reasons = _na_reasons(results)
    if reasons:
        lines += ["### N/A cells", ""]
        lines += [f"- {reason} ({len(ids)} cells)" for reason, ids in reasons.items()]
        lines.append("")
    return lines


def _mark(icon: dict[Status, str], result: _Result) -> str:
    """A grid entry: the status, and for a failing cell its kinds, worst first (`❌ E P`)."""
    from chat_template_harness.contract import kinds

    letters = " ".join(kinds.of_result(result)) if result.status.failing else ""
    return icon[result.status] + (f" {letters}" if letters else "")


def matrix_markdown(results: Sequence[CellResult]) -> str:
    lines = ["## chat-template-harness matrix", "", *_markdown_grid(results)]
    if dropped := reasoning_dropped(results):
        lines += [dropped + ".", ""]
    failures = [r for r in results if r.status.failing]
    if failures:
        lines += ["### Failures", ""]
        for r in failures:
            lines.append(f"- `{r.cell.id}`: {r.reason}")
            lines += [f"  - {v.format().splitlines()[0]}" for v in r.violations[1:5]]
        lines.append("")
    return "\n".join(lines)


@cache
def frameworks() -> dict[str, Any]:
    """data/frameworks.toml, read once: the frameworks' packages, the conformance page's columns and what it leaves out."""
    return tomllib.loads(resources.files("chat_template_harness").joinpath("data/frameworks.toml").read_text("utf-8"))


def provenance(preprocessor: str) -> dict[str, str]:
    """The header of a `cth check` report: the command, and the versions that decide it (the plug-in's package too)."""
    from chat_template_harness.outputs.reportfile import versions

    module = preprocessor.partition(":")[0]
    extra = tuple(dist for name, dist in frameworks()["packages"].items() if name in module) or (module.split(".")[0],)
    return {"generated-by": f"cth check {preprocessor} --markdown FILE", **versions(extra)}


def _data_shape(preprocessor: str) -> str:
    """What shape of data a framework adapter feeds (its module's DATA_SHAPE), for the report's reader; "" elsewhere."""
    import importlib

    try:
        return str(getattr(importlib.import_module(preprocessor.partition(":")[0]), "DATA_SHAPE", ""))
    except Exception:  # a module that cannot be imported has no report to write either
        return ""


def check_markdown(preprocessor: str, results: Sequence[CellResult], policy: Policy) -> str:
    """The per-cell report of `cth check` for a pull request or a committed report."""
    from chat_template_harness.outputs.reportfile import with_header
    from chat_template_harness.outputs.view import report_lines

    lines = [
        f"## `{preprocessor}` on the chat-template-harness matrix",
        "",
        f"Policy `{policy}`: {'every assistant turn' if str(policy) == 'all' else 'the final assistant turn'} must be "
        "trained; every trained token must be a generated token after its served prompt (invariants 1-8).",
        "",
        *([f"Data fed: {shape}.", ""] if (shape := _data_shape(preprocessor)) else []),
        *_markdown_grid(results),
    ]
    tally = kind_tally(results)
    if tally:
        lines += [tally + ".", ""]
    failures = [r for r in results if r.status.failing]
    if failures:
        lines += ["### What fails, cell by cell", ""]
        for r in failures:
            lines.append(f"#### `{r.cell.id}`")
            lines.append("")
            lines.append("```")
            lines += report_lines(r)
            lines.append("```")
            lines.append("")
    return with_header("\n".join(lines), provenance(preprocessor))
