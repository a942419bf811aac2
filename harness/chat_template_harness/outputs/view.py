"""Showing samples to people: visible whitespace, span colours, the turn report."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from chat_template_harness.cells.model import CellResult
from chat_template_harness.contract import kinds
from chat_template_harness.contract.sample import Preprocessed, Sample
from chat_template_harness.contract.turns import Kind

STYLES = {
    Kind.PROMPT: "grey50",
    Kind.INJECTED: "bold magenta",
    Kind.EMPTY_THINK: "bold black on yellow",
    Kind.REASONING: "black on cyan",
    Kind.CONTENT: "black on green",
    Kind.STOP: "bold black on bright_green",
}
LABELS = {
    Kind.PROMPT: "prompt (not trained)",
    Kind.INJECTED: "injected by the template (not trained)",
    Kind.EMPTY_THINK: "empty think, injected by the template (not trained)",
    Kind.REASONING: "reasoning (trained)",
    Kind.CONTENT: "content (trained)",
    Kind.STOP: "stop (trained)",
}


def visible_chars(text: str) -> list[str]:
    """Each character's visible form: newline as ↵ (then a real line break), tab as ⇥, and a space as ·
    unless it is a single space between two visible characters on the same line."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\n":
            out.append("↵\n")
        elif ch == "\t":
            out.append("⇥")
        elif ch == " ":
            before = text[i - 1] if i > 0 else "\n"
            after = text[i + 1] if i + 1 < len(text) else "\n"
            out.append(" " if before not in " \n" and after not in " \n" else "·")
        else:
            out.append(ch)
    return out


def visible(text: str) -> str:
    """Whitespace made visible (see visible_chars)."""
    return "".join(visible_chars(text))


def legend() -> Text:
    text = Text("legend: ")
    for kind in Kind:
        text.append(f" {LABELS[kind]} ", style=STYLES[kind])
        text.append(" ")
    return text


def sample_text(sample: Sample) -> Text:
    text = Text()
    for span in sample.spans:
        text.append(visible(sample.text[span.start : span.end]), style=STYLES[span.kind])
    return text


def turn_table(result: Preprocessed) -> Table:
    table = Table(title="turns", title_justify="left", show_lines=False)
    for column in ("turn", "message", "sample", "prompt tokens", "shared", "template render", "notes"):
        table.add_column(column)
    for r in result.report:
        table.add_row(
            str(r.turn),
            str(r.message_index),
            str(r.sample) if r.sample >= 0 else "-",
            str(r.prompt_tokens) if r.prompt_tokens >= 0 else "-",
            "yes" if r.shared else "no",
            r.template_render,
            "\n".join([*map(str, r.notes), *([r.split_reason] if r.split_reason else [])]),
        )
    return table


def show(console: Console, title: str, result: Preprocessed) -> None:
    console.print(Text(title, style="bold"))
    console.print(legend())
    for i, sample in enumerate(result.samples):
        trained = sum(sample.loss_mask)
        turns = ", ".join(str(t) for t in sample.turns)
        console.rule(
            f"sample {i} · trains turn {turns} · {len(sample.input_ids)} tokens ({trained} trained)", align="left"
        )
        console.print(sample_text(sample), soft_wrap=True)
    console.print(turn_table(result))


def _shown(text: str) -> str:
    return visible(text).replace("\n", "")


# how much of a decoded run a terminal line shows (`--verbose`: all of it)
MAX_RUN_CHARS = 160
MAX_RUNS = 8


def report_lines(result: CellResult, *, verbose: bool = False) -> list[str]:
    """The cell's failure, readable: its kinds (worst first), violations with positions and tokens, allowed findings,
    then the comparison."""
    lines = [f"kinds: {kinds.summary(result.violations)}"] if result.violations else []
    lines += (
        [f"{kinds.kind_of(v)} {v.format()}" for v in result.violations]
        if result.violations
        else ([result.reason] if result.reason else [])
    )
    lines += [f"allowed: {kinds.kind_of(v)} {v.format()}" for v in result.allowed]
    for label, raw in (
        ("trained here, not by the reference", result.extra),
        ("trained by the reference, not here", result.missing),
    ):
        runs = sorted({_shown(r) for r in raw})
        shown = runs if verbose else runs[:MAX_RUNS]
        lines += [f"{label}: {_cut(r, verbose)}" for r in shown]
        if len(runs) > len(shown):
            lines.append(f"{label}: … {len(runs) - len(shown)} more run(s) (--verbose shows all)")
    return lines


def _cut(run: str, verbose: bool) -> str:
    if verbose or len(run) <= MAX_RUN_CHARS:
        return repr(run)
    return f"{run[:MAX_RUN_CHARS]!r} … (+{len(run) - MAX_RUN_CHARS} characters; --verbose shows all)"
