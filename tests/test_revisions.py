"""Upgrade tests: a real earlier revision of one model's chat template, swapped into the pack, through `cth diff`.

Each revision is the pack's current template with the one textual edit that reproduces the published earlier
revision (the edit and where it was read are named with it; the pack's template is hash-pinned, so the old one
is too: `pack_with_template` checks the edited text occurs exactly once). For each, `cth diff` (the drift API)
against the committed goldens must flag exactly the cells the edit changes, name each cause once (the template's
hash, never again as "tokenizer file changed", never a false "harness changed"), and propose no golden that drops
the data's reasoning silently: where the new samples train less reasoning than the golden, the diff names
"reasoning dropped" as a cause of its own (or the cell is undecided, where the rules cannot tell).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.cells.model import Cell
from chat_template_harness.outputs import drift
from tests.helpers import pack_with_template

REPO = Path(__file__).resolve().parents[1]
GOLDENS = REPO / "goldens"


# the block the later gpt-oss revision added to its tool-call branch (the pack's text, removed for the earlier one)
FUTURE_FINAL = """\
            {#- We need very careful handling here - we want to drop the tool call analysis message if the model #}
            {#- has output a later <|final|> message, but otherwise we want to retain it. This is the only case #}
            {#- when we render CoT/analysis messages in inference. #}
            {%- set future_final_message = namespace(found=false) %}
            {%- for future_message in loop_messages[loop.index:] %}
                {%- if future_message.role == 'assistant' and "tool_calls" not in future_message %}
                    {%- set future_final_message.found = true %}
                {%- endif %}
            {%- endfor %}
"""


@dataclass(frozen=True)
class Revision:
    model: str
    folder: str  # the pack folder whose template is swapped
    edits: tuple[tuple[str, str], ...]  # (text of the current template, what the earlier revision has there)
    source: str  # where the earlier text was read
    changes: str  # which cells the edit changes: "served" (every cell with a served prompt), "none"
    probe: tuple[dict, ...] = ()  # for "none": a conversation the two revisions render otherwise (the edit is live)


REVISIONS = [
    Revision(
        "deepseek-r1",
        "deepseek-ai--DeepSeek-R1",
        (("{{'<｜Assistant｜><think>\\n'}}{% endif %}", "{{'<｜Assistant｜>'}}{% endif %}"),),
        "DeepSeek-R1's tokenizer_config.json before the February 2025 update that made the generation prompt open "
        "`<think>\\n` (deepseek-ai/DeepSeek-R1 issue 402 asks why it changed; vllm-project/vllm issue 13125 quotes the "
        "earlier template, whose generation prompt is `<｜Assistant｜>` alone)",
        "served",
    ),
    Revision(
        "qwen3-8b",
        "Qwen--Qwen3-8B",
        (
            (
                ' and message.role == "user" and message.content is string and not(',
                ' and message.role == "user" and not(',
            ),
        ),
        "Qwen3's first release (April 2025) finds the last user query without the `message.content is string` guard "
        "that the later revision added for content-part messages (the earlier loop, as vendored in many public copies "
        "of the template); with string contents it renders the same",
        "none",
        ({"role": "user", "content": [{"type": "text", "text": "Hi."}]},),
    ),
    Revision(
        "gpt-oss-20b",
        "openai--gpt-oss-20b",
        (
            (FUTURE_FINAL, ""),
            ("{%- elif message.content and not future_final_message.found %}", "{%- elif message.content %}"),
            ("{%- elif message.thinking and not future_final_message.found %}", "{%- elif message.thinking %}"),
        ),
        "gpt-oss's template as first published (August 2025): a tool call's analysis message is rendered whether or "
        "not a final answer follows; the later revision (openai/gpt-oss-120b commit bc75b44, which TRL's PR 4134 "
        "follows) drops it once a final message follows. The earlier tool-call branch, without that block, is quoted "
        "in openai/gpt-oss-120b discussion 69. The fixtures' tool call carries no analysis text: no cell changes",
        "none",
        (
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": "",
                "thinking": "Call the tool.",
                "tool_calls": [
                    {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
                ],
            },
            {"role": "tool", "content": "sunny"},
            {"role": "assistant", "content": "Sunny."},
        ),
    ),
]


def _expected(revision: Revision) -> set[Cell]:
    """The cells the edit changes, from the edit alone (no render): every cell with a served prompt, or none."""
    if revision.changes == "none":
        return set()
    return {c for c in cellmodel.cells([revision.model]) if cellmodel.na_reason(c) is None}


def _silent_drops(diffs: list[drift.CellDiff]) -> list[str]:
    """Changed cells whose new samples train less of the data's reasoning and say nothing about it."""
    return [d.cell.id for d in diffs if d.status == "changed" and d.reasoning[1] < d.reasoning[0] and not d.drops_data]


@pytest.mark.slow
@pytest.mark.parametrize("revision", REVISIONS, ids=lambda r: r.model)
def test_an_earlier_template_revision_through_cth_diff(revision: Revision, tmp_path: Path, pack_dir: Path):
    pack = pack_with_template(tmp_path, pack_dir, revision.folder, *revision.edits)
    diffs = drift.diff_all(cellmodel.cells([revision.model]), GOLDENS, pack)
    assert {d.cell for d in diffs if d.changed} == _expected(revision)
    for d in (d for d in diffs if d.changed):
        codes = [c.code for c in d.causes]
        assert len(codes) == len(set(codes)), (d.cell.id, codes)  # each cause once
        assert "template" in codes and not {"tokenizer_file", "harness", "unexplained"} & set(codes), (d.cell.id, codes)
    assert not _silent_drops(diffs)


@pytest.mark.parametrize("revision", [r for r in REVISIONS if r.changes == "none"], ids=lambda r: r.model)
def test_an_edit_that_changes_no_cell_still_changes_the_template(revision: Revision, load):
    """Positive control for the revisions no cell sees: the two revisions render the probe otherwise (or one raises)."""
    tokenizer = load(revision.model).tokenizer
    earlier = tokenizer.chat_template
    for old, new in revision.edits:
        assert earlier.count(old) == 1
        earlier = earlier.replace(old, new)

    def render(template: str) -> str:
        try:
            return tokenizer.apply_chat_template(list(revision.probe), chat_template=template, tokenize=False)
        except Exception as exc:  # a template that cannot render the probe: a difference too
            return f"raised {type(exc).__name__}"

    assert render(earlier) != render(tokenizer.chat_template)


@pytest.mark.slow
def test_r1s_earlier_template_names_reasoning_dropped_as_its_own_cause(tmp_path: Path, pack_dir: Path):
    """R1 before `<think>\\n` was in its generation prompt: the rules' opener is not served, so the data's reasoning
    would go untrained (46 -> 14 trained tokens in reasoning_last_turn). The diff says so, in the cell and in the
    summary, or the cell is undecided; never only inside the (capped) text diff."""
    (revision,) = [r for r in REVISIONS if r.model == "deepseek-r1"]
    pack = pack_with_template(tmp_path, pack_dir, revision.folder, *revision.edits)
    cells = [
        Cell("deepseek-r1", c.think, c.fixture)
        for c in cellmodel.cells(["deepseek-r1"])
        if cellmodel.na_reason(c) is None
    ]
    diffs = {d.cell.fixture: d for d in drift.diff_all(cells, GOLDENS, pack)}
    for fixture in ("reasoning_last_turn", "reasoning_every_turn"):
        d = diffs[fixture]
        assert d.drops_data or d.status == "undecided", (fixture, d.status, d.causes)
        if d.drops_data:
            (cause,) = [c for c in d.causes if c.code == drift.REASONING_DROPPED]
            assert cause.text.startswith("reasoning dropped: the generation prompt no longer opens a think block")
    summary = drift.summary(list(diffs.values()))
    if any(d.drops_data for d in diffs.values()):
        assert any(
            line.startswith("  reasoning dropped in ") and "no longer opens a think block" in line for line in summary
        )
