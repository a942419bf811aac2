"""Showing samples to people: visible whitespace, span colours, the turn report."""

from __future__ import annotations

import re
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.sample import Preprocessed, Sample
from harness.turns import Kind

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
    Kind.INJECTED: "injected opener (not trained)",
    Kind.EMPTY_THINK: "empty think (not trained)",
    Kind.REASONING: "reasoning (trained)",
    Kind.CONTENT: "content (trained)",
    Kind.STOP: "stop (trained)",
}
_SPACES = re.compile(r"(?<=\S) (?=\S)")


def visible(text: str) -> str:
    """Whitespace made visible: newline as ↵ (then a real line break), tab as ⇥, and every space
    that is not a single space between two visible characters as ·."""
    out = []
    for line in text.split("\n"):
        kept = _SPACES.sub("\x00", line.replace("\t", "⇥")).replace(" ", "·").replace("\x00", " ")
        out.append(kept)
    return "↵\n".join(out)


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
            str(r.prompt_tokens),
            "yes" if r.shared else "no",
            r.template_render,
            "\n".join([*r.notes, *([r.split_reason] if r.split_reason else [])]),
        )
    return table


def show(console: Console, title: str, result: Preprocessed) -> None:
    console.print(Text(title, style="bold"))
    console.print(legend())
    for i, sample in enumerate(result.samples):
        trained = sum(sample.loss_mask)
        turns = ", ".join(str(t) for t in sample.turns)
        console.rule(f"sample {i} · trains turn {turns} · {len(sample.input_ids)} tokens ({trained} trained)", align="left")
        console.print(sample_text(sample), soft_wrap=True)
    console.print(turn_table(result))

