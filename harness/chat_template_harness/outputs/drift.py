"""The upgrade check (`cth diff`): re-render every cell here and say what changed against the goldens, and why.

Per changed cell: the cause read off the two provenance headers (chat template changed, tokenizer
file changed, library version changed, harness changed), the first differing token, the change in
the loss mask, and the diff of the marked text. Tokenizers load with drift allowed: a new template
revision is exactly what this is for.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chat_template_harness.outputs import golden, matrix
from chat_template_harness.outputs.matrix import Cell

MAX_TEXT_DIFF = 30


@dataclass(frozen=True)
class CellDiff:
    cell: Cell
    status: str  # "unchanged", "changed", "new" (no golden yet), "error" (cannot be rendered here: the reason),
    # "undecided" (the cell needs a rule no render proves: the question and its fix; no golden is proposed)
    causes: tuple[str, ...] = ()
    first_token: str = ""
    mask: str = ""
    text_diff: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.status != "unchanged"


def diff_cell(cell: Cell, root: Path, tokenizers_dir: Path | str | None = None, served_by: str = "transformers") -> CellDiff:
    result = matrix.run_cell(cell, tokenizers_dir, allow_drift=True, determinism=False, served_by=served_by)
    if result.status is matrix.Status.ERROR:  # no samples to compare: the template (or server) cannot make them
        return CellDiff(cell, "error", (result.reason,))
    if result.status is matrix.Status.UNDECIDED:  # no sample is made from a guessed rule, so no golden is proposed
        return CellDiff(cell, "undecided", (result.reason,))
    received = golden.parse(golden.render(result))
    path = golden.path_for(root, cell)
    if not path.is_file():
        return CellDiff(cell, "new", ("no golden yet",))
    stored = golden.parse(golden.read(path))
    if stored.body == received.body:
        return CellDiff(cell, "unchanged")
    causes = tuple(golden.explain(stored.header, received.header)) or ("no provenance change: the harness or its inputs changed",)
    old, new = golden.parse_samples(stored.body), golden.parse_samples(received.body)
    return CellDiff(cell, "changed", causes, _first_token(old, new, result), _mask_change(old, new), _text_diff(stored.body, received.body))


def _first_token(old: list[golden.GoldenSample], new: list[golden.GoldenSample], result: matrix.CellResult) -> str:
    if len(old) != len(new):
        return f"{len(old)} samples in the golden, {len(new)} now"
    tokenizer = result.loaded.tokenizer if result.loaded is not None else None
    for index, (a, b) in enumerate(zip(old, new, strict=True)):
        if a.ids == b.ids:
            continue
        at = next((i for i, (x, y) in enumerate(zip(a.ids, b.ids, strict=False)) if x != y), min(len(a.ids), len(b.ids)))
        was = a.ids[at] if at < len(a.ids) else None
        now = b.ids[at] if at < len(b.ids) else None
        def show(token: int | None) -> str:
            if token is None:
                return "(end)"
            return f"{token} {tokenizer.decode([token])!r}" if tokenizer is not None else str(token)
        return f"sample {index}, token {at}: golden {show(was)} -> now {show(now)} ({len(a.ids)} -> {len(b.ids)} tokens)"
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
    changed = [d for d in diffs if d.changed]
    lines = [f"{len(changed)} of {len(diffs)} cells differ from the goldens"]
    causes = Counter(c.split(" (")[0].split(":")[0] for d in changed for c in d.causes)
    lines += [f"  {n} cell(s): {cause}" for cause, n in causes.most_common()]
    return lines


def markdown(diffs: Sequence[CellDiff], context: str, header: dict[str, str] | None = None) -> str:
    """The report; `context` is body text (what was compared), `header` the provenance (versions), never compared."""
    from chat_template_harness.outputs.reportfile import versions, with_header

    changed = [d for d in diffs if d.changed]
    out = ["## chat-template-harness upgrade check", "", context, "", *summary(diffs), ""]
    if not changed:
        out += ["Nothing differs: every cell renders, tokenizes and masks exactly as its golden says.", ""]
    for d in changed:
        out += [f"### `{d.cell.id}`: {d.status}", "", *(f"- cause: {c}" for c in d.causes)]
        if d.first_token:
            out.append(f"- first differing token: {d.first_token}")
        if d.mask:
            out.append(f"- {d.mask}")
        if d.text_diff:
            out += ["", "```diff", *d.text_diff, "```"]
        out.append("")
    return with_header("\n".join(out), {"generated-by": "cth diff --markdown FILE", **versions(), **(header or {})})
