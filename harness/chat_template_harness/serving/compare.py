"""Where servers disagree: the served prompt of every assistant turn, as two profiles serve it, token by token.

For each cell (model, think mode, fixture) and each assistant turn k, the messages before k are served by
profile A and by profile B; the first differing token is reported with the text around it, decoded from
both id lists (never from the rendered strings).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chat_template_harness.contract import conversation
from chat_template_harness.contract.render import template_messages
from chat_template_harness.errors import HarnessError
from chat_template_harness.models import source
from chat_template_harness.models.rules import NotApplicable
from chat_template_harness.models.rules.registry import family_for
from chat_template_harness.outputs.matrix import Cell, na_reason
from chat_template_harness.outputs.reportfile import versions, with_header
from chat_template_harness.serving import profiles, served

WINDOW = 6  # tokens shown either side of the first difference


@dataclass(frozen=True)
class TurnDiff:
    cell: Cell
    turn: int
    same: bool
    at: int = -1  # the first differing token (index in both lists)
    mine: str = ""  # decoded tokens around it, profile A
    theirs: str = ""  # profile B
    na: str = ""  # why the cell is not compared (its think mode is N/A)
    error: str = ""  # a profile could not serve this prompt: what its renderer said


def _ids(profile: profiles.Profile, loaded: source.LoadedTokenizer, msgs: list[dict], tools: Sequence, fam, mode) -> list[int]:
    return served.prompt_ids(profile, loaded.tokenizer, msgs, tools, fam, mode)


def compare_cell(cell: Cell, a: profiles.Profile, b: profiles.Profile) -> list[TurnDiff]:
    loaded = source.load(cell.model)
    fam = family_for(loaded.spec, loaded.tokenizer)
    mode = fam.mode(cell.think)
    if isinstance(mode, NotApplicable):
        return [TurnDiff(cell, -1, True, na=mode.reason)]
    if (reason := na_reason(cell)) is not None:  # the rules declare the template cannot write it (Gemma 3's tools)
        return [TurnDiff(cell, -1, True, na=reason)]
    conv = conversation.fixture(cell.fixture)
    msgs = template_messages(conv, fam, mode)
    out = []
    for k, index in enumerate(conv.assistant_indices):
        served = []
        for p in (a, b):
            try:
                served.append(_ids(p, loaded, msgs[:index], conv.tools, fam, mode))
            except HarnessError as err:
                out.append(TurnDiff(cell, k, False, error=f"{p.name}: {err.message}"))
                break
        if len(served) < 2:
            continue
        mine, theirs = served
        at = next((i for i, (x, y) in enumerate(zip(mine, theirs, strict=False)) if x != y), min(len(mine), len(theirs)))
        if mine == theirs:
            out.append(TurnDiff(cell, k, True))
            continue
        lo = max(0, at - WINDOW)
        decode = loaded.tokenizer.decode
        out.append(TurnDiff(cell, k, False, at, decode(mine[lo:at + WINDOW]), decode(theirs[lo:at + WINDOW])))
    return out


def compare(cells: Iterable[Cell], a: str, b: str) -> list[TurnDiff]:
    pa, pb = profiles.get(a), profiles.get(b)
    return [d for cell in cells for d in compare_cell(cell, pa, pb)]


def summary(diffs: Sequence[TurnDiff], a: str, b: str) -> list[str]:
    compared = [d for d in diffs if not d.na and not d.error]
    differ = [d for d in compared if not d.same]
    cells = {d.cell for d in differ}
    errors = [d for d in diffs if d.error]
    return [f"{a} vs {b}: {len(compared)} served prompts compared, {len(differ)} differ "
            f"(in {len(cells)} cells), {len(errors)} cannot be served by one of them, "
            f"{len({d.cell for d in diffs if d.na})} cells N/A"]


def markdown(diffs: Sequence[TurnDiff], a: str, b: str) -> str:
    pb = profiles.get(b)
    lines = [f"## {a} vs {b}", "", *summary(diffs, a, b), "", f"What {b} does differently:", ""]
    lines += [f"- {rule}" for rule in pb.rules] + [""]
    differ = [d for d in diffs if not d.same and not d.na and not d.error]
    errors = [d for d in diffs if d.error]
    if errors:
        lines += ["Prompts one of them cannot serve (which one, and its renderer's own error):", "",
                  "| cell | turn | error |", "|---|---|---|"]
        lines += [f"| {d.cell.id} | {d.turn} | {_cell_text(d.error)} |" for d in errors] + [""]
    if not differ:
        return "\n".join([*lines, "Every other served prompt is the same, token for token.", ""])
    lines += [f"| cell | turn | first differing token | {a} | {b} |", "|---|---|---|---|---|"]
    for d in differ:
        lines.append(f"| {d.cell.id} | {d.turn} | {d.at} | `{_cell_text(d.mine)}` | `{_cell_text(d.theirs)}` |")
    return "\n".join([*lines, ""])


def report(sections: Sequence[str]) -> str:
    """reports/servers.md: the comparisons, under the provenance header every report has."""
    intro = [
        "# Where servers disagree", "",
        "The served prompt of every assistant turn of every cell, as transformers' template renders it (the",
        "contract's) and as vLLM and SGLang serve the same chat request; the first differing token of each, with",
        "the tokens around it decoded from both id lists. Made by `cth servers --markdown reports/servers.md`.", "",
    ]
    fields = {"generated-by": "cth servers --markdown FILE", **versions(["oss-harmony"])}
    return with_header("\n".join([*intro, *sections]), fields)


def _cell_text(text: str) -> str:
    return text.replace("\n", "↵").replace("|", "\\|").replace("`", "'")
