"""The upgrade check (`cth diff`): re-render every cell here and say what changed against the goldens, and why.

Per changed cell: the causes read off the two provenance headers (chat template changed, tokenizer
file changed, library version changed, harness changed), each once; what the change does to the data
where it drops some (the data's reasoning no longer trained: a cause of its own, never only in the
text diff); the first differing token, the change in the loss mask, and the diff of the marked text.
A cell the new template cannot render names the template change as its cause, with a fix that points
at the template. Tokenizers load with drift allowed: a new template revision is exactly what this is for.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chat_template_harness.cells.model import Cell, CellResult, Settings, Status
from chat_template_harness.cells.run import run_cell
from chat_template_harness.contract.turns import DROPPED_WHY, REASONING_DROPPED_NO_OPENER, Kind
from chat_template_harness.outputs import golden
from chat_template_harness.outputs.golden import Cause

MAX_TEXT_DIFF = 30
REASONING_DROPPED = "reasoning_dropped"  # the cause code of data the new samples no longer train
# why the reasoning is dropped now, per turn-note code, as an upgrade says it
NO_LONGER = {REASONING_DROPPED_NO_OPENER: "the generation prompt no longer opens a think block"}


@dataclass(frozen=True)
class CellDiff:
    cell: Cell
    status: str  # "unchanged", "changed", "new" (no golden yet), "error" (cannot be rendered here: the reason),
    # "undecided" (the cell needs a rule no render proves: the question and its fix; no golden is proposed)
    causes: tuple[Cause, ...] = ()
    first_token: str = ""
    mask: str = ""
    text_diff: tuple[str, ...] = ()
    fix: str = ""  # for a cell that cannot be rendered: what to do
    reasoning: tuple[int, int] = (0, 0)  # reasoning spans trained: in the golden, now

    @property
    def changed(self) -> bool:
        return self.status != "unchanged"

    @property
    def drops_data(self) -> bool:
        """Updating this golden would make the samples train less of the data (said as a cause of its own)."""
        return any(c.code == REASONING_DROPPED for c in self.causes)


def diff_cell(
    cell: Cell, root: Path, tokenizers_dir: Path | str | None = None, served_by: str = "transformers"
) -> CellDiff:
    result = run_cell(
        cell, Settings(tokenizers_dir=tokenizers_dir, allow_drift=True, determinism=False, served_by=served_by)
    )
    path = golden.path_for(root, cell)
    stored = golden.parse(golden.read(path)) if path.is_file() else None
    if result.result is None and result.status is not Status.NA:  # no samples: the template cannot make them
        return _unrendered(result, stored)
    received = golden.parse(golden.render(result))
    if stored is None:
        return CellDiff(cell, "new", (Cause("new", "no golden yet", "no golden yet"),))
    if stored.body == received.body:
        return CellDiff(cell, "unchanged")
    causes = golden.causes(stored.header, received.header) or [
        Cause("unexplained", "no provenance change", "no provenance change: the harness or its inputs changed")
    ]
    reasoning = (
        golden.span_kinds(stored.body)[Kind.REASONING.value],
        golden.span_kinds(received.body)[Kind.REASONING.value],
    )
    dropped = _reasoning_dropped(reasoning, result)
    old, new = golden.parse_samples(stored.body), golden.parse_samples(received.body)
    return CellDiff(
        cell,
        "changed",
        (*causes, *dropped),
        _first_token(old, new, result),
        _mask_change(old, new),
        _text_diff(stored.body, received.body),
        reasoning=reasoning,
    )


def _unrendered(result: CellResult, stored: golden.Golden | None) -> CellDiff:
    """A cell that renders no samples now: its causes read off the golden's header against this tokenizer's, and
    where the template changed, a fix that points at the template."""
    status = str(result.status) if result.status is not Status.FAIL else "error"
    if result.status is Status.UNDECIDED:  # no sample is made from a guessed rule: the question is the cause
        return CellDiff(
            result.cell, status, (Cause("undecided", "a rule no render proves is undecided", result.reason),)
        )
    message = result.raised.message if result.raised is not None else result.reason
    now = golden.header(result.cell, result.loaded, result.served_by) if result.loaded is not None else {}
    provenance = golden.causes(stored.header, now) if stored is not None and now else []
    template = next((c for c in provenance if c.code == "template"), None)
    headline = f"{'the new template' if template else 'the template'} cannot render the cell"
    what = Cause(status, headline, f"{headline}: {message}")
    if template is None:
        return CellDiff(result.cell, status, (*provenance, what), fix=result.raised.fix if result.raised else "")
    assert stored is not None  # a template cause is read off the stored golden's header (provenance is [] without one)
    old, new = stored.header.get("sha256 chat template", "")[:12], now.get("sha256 chat template", "")[:12]
    fix = (
        f"the chat template changed ({old} -> {new}) and the new one does not render this cell: restore the template "
        f"the goldens were made with, or read the new one with `cth derive {result.cell.model}`"
    )
    return CellDiff(result.cell, status, (*provenance, what), fix=fix)


def _reasoning_dropped(reasoning: tuple[int, int], result: CellResult) -> list[Cause]:
    """The data's reasoning that the golden trains and the new samples do not, where the mode now drops it."""
    assert result.result is not None
    before, after = reasoning
    notes = [(p.turn, n.code) for p in result.result.plans for n in p.notes if n.drops_reasoning]
    if after >= before or not notes:
        return []
    turns = ", ".join(str(t) for t, _ in notes)
    why = "; ".join(dict.fromkeys(NO_LONGER.get(code, DROPPED_WHY[code]) for _, code in notes))
    text = (
        f"reasoning dropped: {why} (turn {turns}: the data's reasoning is not trained; the proposed golden teaches "
        "the model to answer without it)"
    )
    return [Cause(REASONING_DROPPED, why, text)]


def _first_token(old: list[golden.GoldenSample], new: list[golden.GoldenSample], result: CellResult) -> str:
    if len(old) != len(new):
        return f"{len(old)} samples in the golden, {len(new)} now"
    tokenizer = result.loaded.tokenizer if result.loaded is not None else None
    for index, (a, b) in enumerate(zip(old, new, strict=True)):
        if a.ids == b.ids:
            continue
        at = next(
            (i for i, (x, y) in enumerate(zip(a.ids, b.ids, strict=False)) if x != y), min(len(a.ids), len(b.ids))
        )
        was = a.ids[at] if at < len(a.ids) else None
        now = b.ids[at] if at < len(b.ids) else None

        def show(token: int | None) -> str:
            if token is None:
                return "(end)"
            return f"{token} {tokenizer.decode([token])!r}" if tokenizer is not None else str(token)

        return (
            f"sample {index}, token {at}: golden {show(was)} -> now {show(now)} ({len(a.ids)} -> {len(b.ids)} tokens)"
        )
    return "ids unchanged"


def _mask_change(old: list[golden.GoldenSample], new: list[golden.GoldenSample]) -> str:
    before, after = sum(sum(s.mask) for s in old), sum(sum(s.mask) for s in new)
    if [s.mask for s in old] == [s.mask for s in new]:
        return f"loss mask unchanged ({after} trained tokens)"
    return f"trained tokens {before} -> {after}"


def _text_diff(old: str, new: str) -> tuple[str, ...]:
    lines = [
        line
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), "golden", "now", lineterm="", n=1)
        if not line.startswith(("---", "+++"))
    ]
    if len(lines) > MAX_TEXT_DIFF:
        lines = [*lines[:MAX_TEXT_DIFF], f"… {len(lines) - MAX_TEXT_DIFF} more lines"]
    return tuple(lines)


def diff_all(
    cells: Sequence[Cell], root: Path, tokenizers_dir: Path | str | None = None, served_by: str = "transformers"
) -> list[CellDiff]:
    return [diff_cell(c, root, tokenizers_dir, served_by) for c in cells]


def summary(diffs: Sequence[CellDiff]) -> list[str]:
    """The counts: cells that differ; data the new samples drop, first; then each cause with its cells."""
    changed = [d for d in diffs if d.changed]
    lines = [f"{len(changed)} of {len(diffs)} cells differ from the goldens"]
    dropping = [d for d in changed if d.drops_data]
    if dropping:
        whys = dict.fromkeys(c.headline for d in dropping for c in d.causes if c.code == REASONING_DROPPED)
        lines.append(f"  reasoning dropped in {len(dropping)} cells: {'; '.join(whys)}")
    counts = Counter(
        h for d in changed for h in dict.fromkeys(c.headline for c in d.causes if c.code != REASONING_DROPPED)
    )
    lines += [f"  {n} cell(s): {headline}" for headline, n in counts.most_common()]
    return lines


def markdown(diffs: Sequence[CellDiff], context: str, header: dict[str, str] | None = None) -> str:
    """The report; `context` is body text (what was compared), `header` the provenance (versions), never compared."""
    from chat_template_harness.outputs.reportfile import versions, with_header

    changed = [d for d in diffs if d.changed]
    out = ["## chat-template-harness upgrade check", "", context, "", *summary(diffs), ""]
    if not changed:
        out += ["Nothing differs: every cell renders, tokenizes and masks exactly as its golden says.", ""]
    for d in changed:
        out += [f"### `{d.cell.id}`: {d.status}", "", *(f"- cause: {c.text}" for c in d.causes)]
        if d.fix:
            out.append(f"- fix: {d.fix}")
        if d.first_token:
            out.append(f"- first differing token: {d.first_token}")
        if d.mask:
            out.append(f"- {d.mask}")
        if d.text_diff:
            out += ["", "```diff", *d.text_diff, "```"]
        out.append("")
    return with_header("\n".join(out), {"generated-by": "cth diff --markdown FILE", **versions(), **(header or {})})
