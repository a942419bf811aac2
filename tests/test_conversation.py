"""Conversation fixtures and input validation: bad input is one clear error that names the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import conversation
from harness.errors import FixtureError


def test_at_least_twelve_fixtures_cover_the_required_cases():
    names = conversation.fixture_names()
    assert len(names) >= 12
    fixtures = {n: conversation.fixture(n) for n in names}
    assistant_turns = {n: len(f.assistant_indices) for n, f in fixtures.items()}
    assert fixtures["single_turn"].messages[0].role == "user" and assistant_turns["single_turn"] == 1
    assert fixtures["with_system"].messages[0].role == "system"
    assert assistant_turns["multi_turn"] >= 3
    every = fixtures["reasoning_every_turn"]
    assert assistant_turns["reasoning_every_turn"] >= 3 and all(every.messages[i].reasoning for i in every.assistant_indices)
    last = fixtures["reasoning_last_turn"]
    assert [bool(last.messages[i].reasoning) for i in last.assistant_indices] == [False] * (len(last.assistant_indices) - 1) + [True]
    assert "tools" in fixtures["tool_call"].features
    assert any(ord(ch) > 0x3000 for m in fixtures["cjk_emoji"].messages for ch in m.content)
    assert any(ord(ch) > 0x1F000 for m in fixtures["cjk_emoji"].messages for ch in m.content)
    user = fixtures["special_token_lookalikes"].messages[0].content
    assert all(tok in user for tok in ("<|im_end|>", "</think>", "<|eot_id|>"))
    assert fixtures["empty_assistant_content"].messages[-1].content == ""
    edges = fixtures["whitespace_edges"].messages[-1].content
    assert edges != edges.strip() and edges.startswith("\n") and edges.endswith(" \n\n")
    assert "```" in fixtures["markdown_code"].messages[-1].content
    assert sum(len(m.content) for m in fixtures["long_conversation"].messages) > 12_000  # ~4k tokens


def test_inline_think_is_moved_to_reasoning():
    msg = conversation.fixture("inline_think").messages[-1]
    assert msg.reasoning == "91 = 7 × 13, so it has divisors other than 1 and itself."
    assert msg.content == "No, 91 is not prime: 91 = 7 × 13."


def test_reasoning_aliases_are_accepted():
    conv = conversation.parse(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "thinking": "t"}], name="x", source="x"
    )
    assert conv.messages[-1].reasoning == "t"


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "conv.json"
    path.write_text(text, "utf-8")
    return str(path)


BAD = {
    "malformed JSON": ('[{"role": "user", "content": "hi"', r"is not valid JSON \(line 1, column \d+"),
    "unknown role": (
        json.dumps([{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]),
        r"message 1 has unknown role 'bot'; fix: use one of system, user, assistant, tool",
    ),
    "ends with user": (
        json.dumps([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "?"}]),
        r"ends with a 'user' message, not an assistant turn; fix: end the conversation with the assistant reply",
    ),
    "content not a string": (
        json.dumps([{"role": "user", "content": 3}, {"role": "assistant", "content": "yo"}]),
        r"message 0 \(user\) has content of type int",
    ),
    "empty list": ("[]", r"expected a non-empty list of messages"),
    "two reasonings": (
        json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>a</think>b", "reasoning_content": "c"}]),
        r"both a reasoning field and an inline <think> block",
    ),
    "tool result without call": (
        json.dumps([{"role": "user", "content": "q"}, {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "a"}]),
        r"tool result with no earlier tool call",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_conversation_files_raise_one_error_with_the_fix(case: str, tmp_path: Path):
    text, pattern = BAD[case]
    with pytest.raises(FixtureError, match=pattern) as err:
        conversation.load(_write(tmp_path, text))
    assert "fix:" in str(err.value) and "\n" not in str(err.value)


def test_missing_file_and_unknown_fixture_name(tmp_path: Path):
    with pytest.raises(FixtureError, match="does not exist"):
        conversation.load(str(tmp_path / "nope.json"))
    with pytest.raises(FixtureError, match="unknown fixture 'nope'"):
        conversation.load("nope")


def test_a_file_may_be_a_bare_list_of_messages(tmp_path: Path):
    conv = conversation.load(_write(tmp_path, json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])))
    assert conv.name == "conv" and len(conv.messages) == 2
