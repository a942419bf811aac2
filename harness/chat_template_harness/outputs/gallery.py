"""The onboarding gallery: a static HTML site of what every template trains (`cth gallery --out DIR`).

It shows the committed goldens. Each cell is derived again with the pinned tokenizer (for token
boundaries and ids on hover) and must equal its golden, or the build stops with the command that
explains the difference; the provenance shown is the golden file's header. No server, no network,
no script from elsewhere: the pages work from file://.

Pages: index.html (the matrix with status and N/A reasons), cells/<model>/think-<t>/<fixture>.html
(coloured spans, legend, token hover, turn report, provenance), compare/<fixture>.html (one
fixture across every family side by side), families/<family>.html (what the template does in each
think mode, in plain words from the family rules, with the smallest example).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from chat_template_harness.cells.model import CellResult, Settings, Status
from chat_template_harness.cells.model import cells as all_cells
from chat_template_harness.cells.run import run_cell
from chat_template_harness.contract.sample import Sample
from chat_template_harness.contract.tokens import encode_sides, token_strings
from chat_template_harness.contract.turns import Kind
from chat_template_harness.errors import HarnessError
from chat_template_harness.models import source
from chat_template_harness.models.rules import Family
from chat_template_harness.models.rules.registry import families, family_for
from chat_template_harness.outputs import golden, overview
from chat_template_harness.outputs.view import LABELS, visible_chars

if TYPE_CHECKING:
    from chat_template_harness.outputs.conformance import Column

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5rem auto; padding: 0 1.5rem; max-width: 1400px; color: #1d1d1f; }
.wide { overflow-x: auto; } table.matrix { font-size: 13px; } table.matrix th { white-space: nowrap; }
a { color: #0b5cad; } h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .25rem .5rem; vertical-align: top; }
th { background: #f3f3f3; } td.pass a { color: #17692f; } td.fail { background: #fde2e2; } td.na a { color: #999; }
pre.sample { white-space: pre-wrap; word-break: break-all; background: #fafafa; border: 1px solid #ddd; padding: .8rem; font: 13px/1.6 ui-monospace, monospace; }
.tok:hover { outline: 1px solid #333; }
.k-prompt { color: #6e6e73; }
.k-injected { color: #fff; background: #9b2fae; }
.k-empty_think { color: #000; background: #ffd60a; text-decoration: underline wavy #b00; }
.k-reasoning { color: #000; background: #9ee8f5; }
.k-content { color: #000; background: #a9e7a2; }
.k-stop { color: #000; background: #4cc04a; font-weight: 600; }
.legend span { display: inline-block; padding: .1rem .5rem; margin: .15rem .3rem .15rem 0; border-radius: 3px; }
.provenance { font: 12px ui-monospace, monospace; color: #555; background: #f6f6f6; padding: .5rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1rem; }
.card { border: 1px solid #ddd; padding: .5rem; } .card h3 { font-size: 1rem; margin: .2rem 0; }
.card h2 { font-size: .85rem; font-weight: normal; color: #555; margin: .3rem 0; }
.note { color: #555; }
"""


def _page(title: str, body: str, depth: int) -> str:
    up = "../" * depth
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f'<nav><a href="{up}index.html">matrix</a> · families: '
        + " ".join(f'<a href="{up}families/{f}.html">{html.escape(f)}</a>' for f in families())
        + f"</nav><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def legend() -> str:
    return (
        '<p class="legend" data-testid="legend">'
        + "".join(f'<span class="k-{k.value}">{html.escape(LABELS[k])}</span>' for k in Kind)
        + "</p>"
    )


def sample_html(sample: Sample, tokenizer: object, index: int) -> str:
    """The sample text, one span per token, coloured by the kind of the span it starts in."""
    ids, offsets = encode_sides(tokenizer, sample.text, sample.edges)
    if tuple(ids) != sample.input_ids:
        raise HarnessError("token ids differ from the golden's", "run `cth diff` and update the goldens")
    strings = token_strings(tokenizer, ids)
    shown = visible_chars(sample.text)
    starts = [(s.start, s.end, s.kind) for s in sample.spans]
    out, cursor = [], 0
    for t, (a, b) in enumerate(offsets):
        kind = next((k for s, e, k in starts if s <= a < e), Kind.PROMPT)
        text = "".join(shown[max(a, cursor) : b])  # a character split across tokens shows with the first
        cursor = max(cursor, b)
        trained = " trained" if sample.loss_mask[t] else ""
        injected = ' data-injected="true"' if kind in (Kind.INJECTED, Kind.EMPTY_THINK) else ""
        tip = f"token {t} · id {ids[t]} · {strings[t]!r} · {kind.value}{' · trained' if trained else ''}"
        out.append(
            f'<span class="tok k-{kind.value}{trained}" data-kind="{kind.value}"{injected} title="{html.escape(tip)}">'
            f"{html.escape(text)}</span>"
        )
    n_trained = sum(sample.loss_mask)
    return (
        f"<h2>sample {index}: trains turn {', '.join(map(str, sample.turns))} · {len(ids)} tokens, {n_trained} trained</h2>"
        f'<pre class="sample" data-testid="sample-{index}">{"".join(out)}</pre>'
    )


def _turns_table(result: CellResult) -> str:
    assert result.result is not None
    rows = "".join(
        f"<tr><td>{r.turn}</td><td>{r.message_index}</td><td>{r.sample if r.sample >= 0 else '-'}</td>"
        f"<td>{r.prompt_tokens}</td><td>{'yes' if r.shared else 'no'}</td><td>{html.escape(r.template_render)}</td>"
        f"<td>{'<br>'.join(html.escape(str(n)) for n in [*r.notes, *([r.split_reason] if r.split_reason else [])])}</td></tr>"
        for r in result.result.report
    )
    return (
        '<h2>turns</h2><table data-testid="turns"><tr><th>turn</th><th>message</th><th>sample</th>'
        "<th>served prompt tokens</th><th>shared</th><th>template renders it</th><th>notes</th></tr>"
        f"{rows}</table>"
    )


def cell_page(result: CellResult, stored: golden.Golden) -> str:
    cell = result.cell
    provenance = "<br>".join(html.escape(f"{k}: {v}") for k, v in stored.header.items())
    parts = [f'<p class="provenance" data-testid="provenance">{provenance}</p>']
    if result.status is Status.NA:
        parts.append(f'<p data-testid="na">N/A: {html.escape(result.reason)}</p>')
    elif result.result is None:
        parts.append(f'<p data-testid="error">{html.escape(result.reason)}</p>')
    else:
        assert result.result is not None and result.loaded is not None
        parts.append(legend())
        parts += [sample_html(s, result.loaded.tokenizer, i) for i, s in enumerate(result.result.samples)]
        parts.append(_turns_table(result))
    family = family_for(source.get_model(cell.model)).name
    parts.append(
        f'<p>family: <a href="../../../families/{family}.html">{html.escape(family)}</a> · same fixture everywhere: '
        f'<a href="../../../compare/{cell.fixture}.html">compare</a></p>'
    )
    return _page(cell.id, "".join(parts), 3)


def servers_page(report: str) -> str:
    """The committed `cth servers` report (reports/servers.md, made by the harness) as a gallery page."""
    from markdown_it import MarkdownIt  # rich's own Markdown parser

    from chat_template_harness.outputs.reportfile import body

    page: str = MarkdownIt("commonmark").enable("table").render(body(report))
    return page


def index_page(results: Sequence[CellResult], *, with_conformance: bool = False, with_servers: bool = False) -> str:
    fixtures = list(dict.fromkeys(r.cell.fixture for r in results))
    rows = list(dict.fromkeys((r.cell.model, r.cell.think) for r in results))
    by = {(r.cell.model, r.cell.think, r.cell.fixture): r for r in results}
    head = "".join(f'<th><a href="compare/{f}.html">{html.escape(f.replace("_", " "))}</a></th>' for f in fixtures)
    body = []
    for model, think in rows:
        cells = []
        for f in fixtures:
            r = by[(model, think, f)]
            href = f"cells/{model}/think-{think}/{f}.html"
            label = {
                Status.PASS: "pass",
                Status.FAIL: "FAIL",
                Status.NA: "n/a",
                Status.ERROR: "ERROR",
                Status.UNDECIDED: "UNDECIDED",
            }[r.status]
            tip = f' title="{html.escape(r.reason)}"' if r.reason else ""
            cells.append(f'<td class="{r.status.name.lower()}"{tip}><a href="{href}">{label}</a></td>')
        body.append(f"<tr><th>{html.escape(model)}</th><td>{think}</td>{''.join(cells)}</tr>")
    reasons: dict[str, int] = {}
    for r in results:
        if r.status is Status.NA:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
    na = "".join(f"<li>{html.escape(reason)} ({n} cells)</li>" for reason, n in reasons.items())
    intro = (
        "<p>What each chat template really trains, per tokenizer, think mode and conversation. Every cell is a "
        "committed golden; open one to see the trained spans (hover a token for its id).</p>"
        + (
            '<p><a href="conformance.html">Conformance</a>: which framework (TRL, SpecForge, …) trains what, cell by '
            "cell.</p>"
            if with_conformance
            else ""
        )
        + (
            '<p><a href="servers.html">Servers</a>: where transformers, vLLM and SGLang serve another prompt for the '
            "same request, first differing token decoded.</p>"
            if with_servers
            else ""
        )
    )
    table = (
        f'<div class="wide"><table class="matrix" data-testid="matrix"><tr><th>model</th><th>think</th>{head}</tr>'
        f"{''.join(body)}</table></div>"
    )
    return _page("chat-template-harness gallery", f"{intro}{legend()}{table}<h2>N/A cells</h2><ul>{na}</ul>", 0)


def compare_page(fixture: str, results: Sequence[CellResult]) -> str:
    cards = []
    for r in results:
        if r.cell.fixture != fixture:
            continue
        link = f'<a href="../cells/{r.cell.model}/think-{r.cell.think}/{fixture}.html">{html.escape(r.cell.id)}</a>'
        if r.status is Status.NA or r.result is None:
            why = f"N/A: {r.reason}" if r.status is Status.NA else r.reason
            cards.append(f'<div class="card"><h3>{link}</h3><p class="note">{html.escape(why)}</p></div>')
            continue
        assert r.result is not None and r.loaded is not None
        last = r.result.samples[-1]
        cards.append(
            f'<div class="card"><h3>{link}</h3>{sample_html(last, r.loaded.tokenizer, len(r.result.samples) - 1)}</div>'
        )
    note = "<p>The last sample of each cell (the one that ends with the final assistant turn).</p>"
    return _page(
        f"{fixture}: every family side by side", note + legend() + f'<div class="grid">{"".join(cards)}</div>', 1
    )


def family_page(family: Family, results: Sequence[CellResult]) -> str:
    words = "".join(f"<p>{_code(html.escape(line))}</p>" for line in overview.family_words(family))
    examples = []
    for r in results:
        if r.cell.fixture != overview.EXAMPLE or family_for(source.get_model(r.cell.model)).name != family.name:
            continue
        if r.status is Status.NA or r.result is None or r.loaded is None:
            continue
        examples.append(f"<h2>{html.escape(r.cell.id)}</h2>" + sample_html(r.result.samples[-1], r.loaded.tokenizer, 0))
        if len(examples) == 2:
            break
    return _page(f"{family.title}", words + legend() + "".join(examples), 1)


def _code(escaped: str) -> str:
    """`x` spans (written for Markdown) as <code> in HTML."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def build(
    out: Path,
    goldens_root: Path,
    tokenizers_dir: Path | None = None,
    conformance: Sequence[Column] = (),
    served_by: str = "transformers",
    servers_report: Path | None = None,
    progress: Callable[[], None] | None = None,
) -> list[CellResult]:
    """Write the site into `out`; stop if any cell differs from its committed golden.

    `conformance`: columns from chat_template_harness.outputs.conformance.run, for conformance.html and its detail pages.
    `servers_report`: the committed `cth servers --markdown` report, shown as servers.html.
    `served_by`: another server's served prompts; the goldens hold transformers', so its pages are not compared
    with them (`cth diff --served-by` lists where they differ) and their provenance says whose prompt it is."""
    results = []
    settings = Settings(tokenizers_dir=tokenizers_dir, determinism=False, served_by=served_by)
    for cell in all_cells():
        result = run_cell(cell, settings)
        problem = golden.check(result, goldens_root) if served_by == "transformers" else None
        if problem is not None:
            raise HarnessError(f"{cell.id}: {problem}", "see what changed and why with `cth diff`")
        results.append(result)
        if progress is not None:
            progress()
    for result in results:
        shown = (
            golden.read(golden.path_for(goldens_root, result.cell))
            if served_by == "transformers"
            else golden.render(result)
        )
        stored = golden.parse(shown)
        _write(
            out / "cells" / result.cell.model / f"think-{result.cell.think}" / f"{result.cell.fixture}.html",
            cell_page(result, stored),
        )
    for fixture in dict.fromkeys(r.cell.fixture for r in results):
        _write(out / "compare" / f"{fixture}.html", compare_page(fixture, results))
    for family in families().values():
        _write(out / "families" / f"{family.name}.html", family_page(family, results))
    if conformance:
        from chat_template_harness.outputs import conformance as conf

        checked = {c for column in conformance for c in getattr(column, "results", {})}
        cells = [r.cell for r in results if r.cell in checked]
        _write(
            out / "conformance.html",
            _page("conformance: what each preprocessor trains", conf.page(conformance, cells), 0),
        )
        for column in conformance:
            _write(out / "conformance" / f"{column.slug}.html", _page(column.label, conf.detail_page(column, cells), 1))
    if servers_report is not None:
        _write(
            out / "servers.html", _page("where servers disagree", servers_page(servers_report.read_text("utf-8")), 0)
        )
    _write(
        out / "index.html",
        index_page(results, with_conformance=bool(conformance), with_servers=servers_report is not None),
    )
    return results


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
