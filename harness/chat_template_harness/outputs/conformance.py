"""Conformance: which framework trains what. Rows are the matrix cells, columns the preprocessors.

Each column is one preprocessor run through the one runner (`chat_template_harness.cells.run`) on every cell (no allowance, no
system prompt: what the code does out of the box). Where a preprocessor cannot be imported (TRL or
SpecForge not installed) its column says so instead of guessing. The same table is written as
Markdown (docs/conformance.md, checked current by the tests) and as a gallery page whose entries
link to the violations of each failing cell.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chat_template_harness import external
from chat_template_harness.cells.model import Cell, CellResult, Settings, Status, na_reason
from chat_template_harness.cells.run import run_cell
from chat_template_harness.contract import kinds
from chat_template_harness.errors import HarnessError
from chat_template_harness.models import source
from chat_template_harness.models.rules.registry import family_for
from chat_template_harness.outputs.view import report_lines

SPECFORGE = ("qwen", "qwen3_thinking", "qwen3_instruct", "qwen3_next_thinking", "llama3", "llama4", "deepseek_v3",
             "deepseek_r1_distill", "gpt_oss", "gemma")
# label -> MODULE:CALLABLE, in the page's column order
PREPROCESSORS: dict[str, str] = {
    "reference": "chat_template_harness.examples.reference:preprocess",
    "build_samples": "chat_template_harness.build:preprocess",
    "naive": "chat_template_harness.examples.naive:preprocess",
    "trl 1.16.0": "chat_template_harness.frameworks.trl_sft:preprocess",
    **{f"specforge {t.replace('_', '-')}": f"chat_template_harness.frameworks.specforge:{t}" for t in SPECFORGE},
    # LLaMA-Factory with the template its own model table names for each model (reports/llamafactory-*.md: every template alone)
    "llamafactory sharegpt": "chat_template_harness.frameworks.llamafactory:by_family_sharegpt",
    "llamafactory openai": "chat_template_harness.frameworks.llamafactory:by_family_openai",
    "axolotl 0.21.0 turn": "chat_template_harness.frameworks.axolotl:turn",
    "axolotl 0.21.0 last": "chat_template_harness.frameworks.axolotl:last",
    "speculators 0.9.0": "chat_template_harness.frameworks.speculators:preprocess",
    "ms-swift 4.6.0": "chat_template_harness.frameworks.ms_swift:preprocess",
    "openrlhf 0.11.2": "chat_template_harness.frameworks.openrlhf:sft",
    "openrlhf 0.11.2 multiturn": "chat_template_harness.frameworks.openrlhf:multiturn",
    "verl 0.9.1": "chat_template_harness.frameworks.verl:preprocess",
    "nemo-automodel 0.7.0": "chat_template_harness.frameworks.nemo_automodel:preprocess",
}
# frameworks with no column, and why (docs/frameworks.md has the errors in full)
NOT_COVERED = (
    ("Megatron-Bridge", "every release with its SFT path (0.4.0 to 0.6.2) requires Python >=3.12,<3.13; the harness "
                        "runs 3.11: `No matching distribution found for megatron-bridge==0.6.2`"),
    ("unsloth train_on_responses_only", "installs --no-deps and imports on CPU, but `import unsloth` replaces "
                                        "trl.SFTTrainer in the running process (it would change the TRL column); it "
                                        "needs an adapter in a process of its own"),
)
ICON = {Status.PASS: "✅", Status.FAIL: "❌", Status.NA: "—", Status.ERROR: "💥", Status.UNDECIDED: "❓"}
# the HTML page uses words: a headless browser or a terminal may have no emoji font
WORD = {Status.PASS: "pass", Status.FAIL: "FAIL", Status.NA: "n/a", Status.ERROR: "ERROR", Status.UNDECIDED: "UNDECIDED"}


@dataclass(frozen=True)
class Column:
    label: str
    spec: str
    results: dict[Cell, CellResult] = field(default_factory=dict)
    unavailable: str = ""  # why the preprocessor could not be loaded

    @property
    def slug(self) -> str:
        return self.label.replace(" ", "-").replace(".", "_")


def run(
    cells: Sequence[Cell], preprocessors: dict[str, str] | None = None, tokenizers_dir: Path | None = None,
    served_by: str = "transformers",
) -> list[Column]:
    columns = []
    settings = Settings(tokenizers_dir=tokenizers_dir, served_by=served_by)
    for label, spec in (preprocessors or PREPROCESSORS).items():
        try:
            plugin = external.load_callable(spec)
        except HarnessError as exc:
            columns.append(Column(label, spec, unavailable=exc.message))
            continue
        columns.append(Column(label, spec, {c: run_cell(c, settings, plugin) for c in cells}))
    return columns


def markdown(columns: Sequence[Column], cells: Sequence[Cell]) -> str:
    """The table for docs/conformance.md: applicable cells only (a cell N/A for the reference is N/A everywhere)."""
    rows = [c for c in cells if na_reason(c) is None]
    lines = [
        "# Conformance: what each preprocessor trains",
        "",
        "Generated by `cth gallery --conformance docs/conformance.md` (`nox -s docs`); never edit by hand.",
        "Every preprocessor runs out of the box on every cell (no allowance, no system prompt): ✅ trains",
        "exactly the generated spans after the served prompt, ❌ breaks the contract, followed by the kinds",
        "of what it gets wrong, worst first (the reports in `reports/` say how, cell by cell), — the",
        "preprocessor does not support the model.",
        "",
        "Kinds, worst first: " + "; ".join(f"**{k}** {meaning}" for k, meaning in kinds.KINDS) + ".",
        "",
        *summary_grid(columns, rows),
        "## Cell by cell",
        "",
        "| cell | " + " | ".join(f"`{col.label}`" for col in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for cell in rows:
        marks = [_mark(col.results[cell]) if col.results else "?" for col in columns]
        lines.append(f"| `{cell.id}` | " + " | ".join(marks) + " |")
    lines += ["", "| preprocessor | pass | fail | n/a |", "|---|---|---|---|"]
    for col in columns:
        if not col.results:
            lines.append(f"| `{col.label}` | not installed: {col.unavailable} | | |")
            continue
        counts = [sum(col.results[c].status is s or (s is Status.FAIL and col.results[c].status.failing) for c in rows)
                  for s in (Status.PASS, Status.FAIL, Status.NA)]
        lines.append(f"| `{col.label}` (`{col.spec}`) | " + " | ".join(map(str, counts)) + " |")
    lines += ["", "Not covered: " + "; ".join(f"**{name}**: {why}" for name, why in NOT_COVERED) + "."]
    return "\n".join(lines) + "\n"


def _mark(result: CellResult) -> str:
    letters = " ".join(kinds.of_result(result))
    return ICON[result.status] + (f" {letters}" if letters else "")


def summary_grid(columns: Sequence[Column], rows: Sequence[Cell]) -> list[str]:
    """Preprocessor x family: clean cells of those the preprocessor supports, then failing cells per kind."""
    families = list(dict.fromkeys(family_for(source.get_model(c.model)).name for c in rows))
    lines = [
        "## Summary: preprocessor × family",
        "",
        "Clean cells of the cells the preprocessor supports, then how many cells show each kind.",
        "",
        "| preprocessor | " + " | ".join(f"`{f}`" for f in families) + " |",
        "|---|" + "---|" * len(families),
    ]
    for col in columns:
        if not col.results:
            continue
        entries = []
        for fam in families:
            results = [col.results[c] for c in rows if family_for(source.get_model(c.model)).name == fam]
            supported = [r for r in results if r.status is not Status.NA]
            if not supported:
                entries.append("—")
                continue
            clean = sum(r.status is Status.PASS for r in supported)
            per_kind = Counter(k for r in supported for k in kinds.of_result(r))
            shown = " ".join(f"{k}{per_kind[k]}" for k, _ in kinds.KINDS if per_kind[k])
            entries.append(f"{clean}/{len(supported)}" + (f" · {shown}" if shown else ""))
        lines.append(f"| `{col.label}` | " + " | ".join(entries) + " |")
    return [*lines, ""]


def page(columns: Sequence[Column], cells: Sequence[Cell]) -> str:
    """conformance.html's body: the grid, each entry linking to that cell's violations."""
    rows = [c for c in cells if na_reason(c) is None]
    head = "".join(f"<th>{html.escape(col.label)}</th>" for col in columns)
    body = []
    for cell in rows:
        entries = []
        for col in columns:
            if not col.results:
                entries.append('<td class="na" data-status="unavailable">?</td>')
                continue
            result = col.results[cell]
            status = result.status.value.replace("/", "")
            link = f"conformance/{col.slug}.html#{_anchor(cell)}"
            letters = " ".join(kinds.of_result(result))
            entries.append(
                f'<td class="{status}" data-status="{status}"><a href="{link}" title="{html.escape(result.reason)}">'
                f"{WORD[result.status]}{' ' + letters if letters else ''}</a></td>"
            )
        body.append(f'<tr><th><a href="cells/{cell.model}/think-{cell.think}/{cell.fixture}.html">{html.escape(cell.id)}</a></th>{"".join(entries)}</tr>')
    return (
        '<p>Rows are the applicable cells, columns the preprocessors, each run out of the box. Click an entry for its '
        'violations.</p><div class="wide"><table class="matrix" data-testid="conformance"><tr><th>cell</th>'
        f"{head}</tr>{''.join(body)}</table></div>"
    )


def detail_page(column: Column, cells: Sequence[Cell]) -> str:
    """conformance/<preprocessor>.html's body: every cell, with its violations where it fails."""
    if not column.results:
        return f"<p>not installed: {html.escape(column.unavailable)}</p>"
    parts = [f"<p><code>{html.escape(column.spec)}</code></p>"]
    for cell in cells:
        result = column.results[cell]
        lines = "\n".join(report_lines(result)) if result.status.failing else result.reason
        parts.append(
            f'<h2 id="{_anchor(cell)}">{WORD[result.status]} {html.escape(cell.id)}</h2>'
            + (f'<pre class="sample">{html.escape(lines)}</pre>' if lines else "")
        )
    return "".join(parts)


def _anchor(cell: Cell) -> str:
    return cell.id.replace("/", "--")
