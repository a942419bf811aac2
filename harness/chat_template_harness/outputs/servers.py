"""Where servers disagree: the served prompt of every assistant turn, as two profiles serve it, token by token.

For each cell (model, think mode, fixture) and each assistant turn k, the messages before k are served by
profile A and by profile B; then each server probe (serving/probes.py: requests with content parts and request
options) on each model and think mode. Every differing region of the two id lists (difflib's alignment) is
reported with the tokens around it, decoded from both id lists (never from the rendered strings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from chat_template_harness.cells.model import Cell, na_reason
from chat_template_harness.contract import conversation
from chat_template_harness.contract.render import template_messages
from chat_template_harness.contract.sample import CellNotApplicable, resolve_mode
from chat_template_harness.errors import HarnessError
from chat_template_harness.models import source
from chat_template_harness.models.rules import Family, NotApplicable, Think, ThinkMode
from chat_template_harness.models.rules.registry import family_for
from chat_template_harness.outputs.reportfile import versions, with_header
from chat_template_harness.serving import probes, profiles, served

WINDOW = 6  # tokens shown either side of a difference; differences closer than twice this are shown as one


@dataclass(frozen=True)
class Region:
    at: int  # the region's first token in profile A's list
    mine: str  # decoded tokens around it, profile A
    theirs: str  # profile B


@dataclass(frozen=True)
class TurnDiff:
    cell: Cell
    turn: int  # the assistant turn; -1 for a probe (one prompt)
    same: bool
    regions: tuple[Region, ...] = ()  # every differing region, in order
    na: str = ""  # why the cell is not compared (its think mode is N/A)
    error: str = ""  # a profile could not serve this prompt: what its renderer said

    @property
    def at(self) -> int:
        return self.regions[0].at if self.regions else -1

    @property
    def mine(self) -> str:
        return self.regions[0].mine if self.regions else ""

    @property
    def theirs(self) -> str:
        return self.regions[0].theirs if self.regions else ""


def regions(mine: list[int], theirs: list[int], decode: Callable[[list[int]], str]) -> tuple[Region, ...]:
    """Every place the two id lists part (difflib's alignment), neighbouring ones merged, decoded from both."""
    spans: list[list[int]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, mine, theirs, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if spans and i1 - spans[-1][1] < 2 * WINDOW:
            spans[-1][1], spans[-1][3] = i2, j2
        else:
            spans.append([i1, i2, j1, j2])
    return tuple(
        Region(i1, decode(mine[max(0, i1 - WINDOW) : i2 + WINDOW]), decode(theirs[max(0, j1 - WINDOW) : j2 + WINDOW]))
        for i1, i2, j1, j2 in spans
    )


def _diff(cell: Cell, turn: int, mine: list[int], theirs: list[int], decode: Callable[[list[int]], str]) -> TurnDiff:
    return TurnDiff(cell, turn, True) if mine == theirs else TurnDiff(cell, turn, False, regions(mine, theirs, decode))


def _ids(
    profile: profiles.Profile,
    loaded: source.LoadedTokenizer,
    msgs: list[dict[str, Any]],
    tools: Sequence[Mapping[str, Any]],
    fam: Family,
    mode: ThinkMode,
) -> list[int]:
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
        ids = []
        for p in (a, b):
            try:
                ids.append(_ids(p, loaded, msgs[:index], conv.tools, fam, mode))
            except HarnessError as err:
                out.append(TurnDiff(cell, k, False, error=f"{p.name}: {err.message}"))
                break
        if len(ids) == 2:
            out.append(_diff(cell, k, ids[0], ids[1], loaded.tokenizer.decode))
    return out


def compare_probe(model: str, think: Think, probe: probes.Probe, a: profiles.Profile, b: profiles.Profile) -> TurnDiff:
    cell = Cell(model, think, f"probe:{probe.name}")
    loaded = source.load(model)
    fam = family_for(loaded.spec, loaded.tokenizer)
    try:
        mode = resolve_mode(fam, think, probe.conversation)
    except CellNotApplicable as na:
        return TurnDiff(cell, -1, True, na=na.reason)
    ids = []
    for p in (a, b):
        try:
            ids.append(probes.prompt_ids(probe, p, loaded.tokenizer, fam, mode))
        except HarnessError as err:
            return TurnDiff(cell, -1, False, error=f"{p.name}: {err.message}")
    return _diff(cell, -1, ids[0], ids[1], loaded.tokenizer.decode)


def compare(
    cells: Iterable[Cell], a: str, b: str, *, probe_models: Sequence[str] = (), thinks: Sequence[Think] = tuple(Think)
) -> list[TurnDiff]:
    """The cells' served prompts, then every probe on each of `probe_models` and `thinks`."""
    pa, pb = profiles.get(a), profiles.get(b)
    out = [d for cell in cells for d in compare_cell(cell, pa, pb)]
    return out + [compare_probe(m, t, p, pa, pb) for m in probe_models for t in thinks for p in probes.probes()]


def summary(diffs: Sequence[TurnDiff], a: str, b: str) -> list[str]:
    compared = [d for d in diffs if not d.na and not d.error]
    differ = [d for d in compared if not d.same]
    cells = {d.cell for d in differ}
    errors = [d for d in diffs if d.error]
    return [
        f"{a} vs {b}: {len(compared)} served prompts compared, {len(differ)} differ "
        f"(in {len(cells)} cells), {len(errors)} cannot be served by one of them, "
        f"{len({d.cell for d in diffs if d.na})} cells N/A"
    ]


def markdown(diffs: Sequence[TurnDiff], a: str, b: str) -> str:
    pb = profiles.get(b)
    lines = [f"## {a} vs {b}", "", *summary(diffs, a, b), "", f"What {b} does differently:", ""]
    lines += [f"- {rule}" for rule in pb.rules] + [""]
    errors = [d for d in diffs if d.error]
    if errors:
        lines += [
            "Prompts one of them cannot serve, or that the harness does not model (which one, and its renderer's own error):",
            "",
            "| cell | turn | error |",
            "|---|---|---|",
        ]
        lines += [f"| {d.cell.id} | {_turn(d)} | {_cell_text(d.error)} |" for d in errors] + [""]
    for title, part in (
        ("The matrix's cells", [d for d in diffs if d.turn >= 0]),
        ("The probes", [d for d in diffs if d.turn < 0]),
    ):
        differ = [d for d in part if not d.same and not d.na and not d.error]
        if not part:
            continue
        lines += [f"### {title}", ""]
        if not differ:
            lines += ["Every served prompt that both serve is the same, token for token.", ""]
            continue
        lines += [
            f"Each place the two id lists part (one row each), at its token in {a}'s list:",
            "",
            f"| cell | turn | token | {a} | {b} |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {d.cell.id} | {_turn(d)} | {r.at} | `{_cell_text(r.mine)}` | `{_cell_text(r.theirs)}` |"
            for d in differ
            for r in d.regions
        ] + [""]
    return "\n".join(lines)


def _turn(d: TurnDiff) -> str:
    return str(d.turn) if d.turn >= 0 else "probe"


def report(sections: Sequence[str]) -> str:
    """reports/servers.md: the comparisons, under the provenance header every report has."""
    intro = [
        "# Where servers disagree",
        "",
        "The served prompt of every assistant turn of every cell, as transformers' template renders it (the",
        "contract's) and as vLLM and SGLang serve the same chat request, then the server probes below on every",
        "model; every place the two id lists part, with the tokens around it decoded from both id lists.",
        "Made by `cth servers --markdown reports/servers.md`.",
        "",
        "The probes (harness/chat_template_harness/data/server_probes.json): requests as a client sends them;",
        "transformers reads their messages as the harness reads any conversation.",
        "",
    ]
    intro += [
        f"- `probe:{p.name}`: {p.shows} ({p.options}; {'the request as it stands' if p.whole else 'the prompt before the last assistant message'})"
        for p in probes.probes()
    ] + [""]
    fields = {"generated-by": "cth servers --markdown FILE", **versions(["oss-harmony"])}
    return with_header("\n".join([*intro, *sections]), fields)


def _cell_text(text: str) -> str:
    return text.replace("\n", "↵").replace("|", "\\|").replace("`", "'")
