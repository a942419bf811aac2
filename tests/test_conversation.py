"""Conversation fixtures and input validation: bad input is one clear error that names the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chat_template_harness.contract import conversation
from chat_template_harness.errors import FixtureError


def test_at_least_twelve_fixtures_cover_the_required_cases():
    names = conversation.fixture_names()
    assert len(names) >= 12
    fixtures = {n: conversation.fixture(n) for n in names}
    assistant_turns = {n: len(f.assistant_indices) for n, f in fixtures.items()}
    assert fixtures["single_turn"].messages[0].role == "user" and assistant_turns["single_turn"] == 1
    assert fixtures["with_system"].messages[0].role == "system"
    assert assistant_turns["multi_turn"] >= 3
    every = fixtures["reasoning_every_turn"]
    assert assistant_turns["reasoning_every_turn"] >= 3 and all(
        every.messages[i].reasoning for i in every.assistant_indices
    )
    last = fixtures["reasoning_last_turn"]
    assert [bool(last.messages[i].reasoning) for i in last.assistant_indices] == [False] * (
        len(last.assistant_indices) - 1
    ) + [True]
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
        json.dumps(
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
                {"role": "user", "content": "?"},
            ]
        ),
        r"ends with a 'user' message, not an assistant turn; fix: end the conversation with the assistant reply",
    ),
    "content not a string": (
        json.dumps([{"role": "user", "content": 3}, {"role": "assistant", "content": "yo"}]),
        r"message 0 \(user\) has content of type int",
    ),
    "empty list": ("[]", r"expected a non-empty list of messages"),
    "two reasonings": (
        json.dumps(
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "<think>a</think>b", "reasoning_content": "c"},
            ]
        ),
        r"both a reasoning field and an inline <think> block",
    ),
    "tool result without call": (
        json.dumps(
            [{"role": "user", "content": "q"}, {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "a"}]
        ),
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
    conv = conversation.load(
        _write(tmp_path, json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]))
    )
    assert conv.name == "conv" and len(conv.messages) == 2


# --- the shapes training data really comes in ------------------------------------------------------------------------

PLAIN = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]


@pytest.mark.parametrize(
    "data",
    [
        {"messages": PLAIN},
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
        {"id": "row-7", "conversations": PLAIN},  # EAGLE / SpecForge rows
        [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}, {"role": "assistant", "content": "Hello!"}],
    ],
    ids=["messages-wrapper", "sharegpt", "eagle-row", "openai-content-parts"],
)
def test_every_common_shape_reads_as_the_same_conversation(data):
    conv = conversation.parse(data, name="x", source="x")
    assert [(m.role, m.content) for m in conv.messages] == [("user", "Hi"), ("assistant", "Hello!")]


def test_sharegpt_roles_map_to_the_canonical_ones():
    data = {
        "conversations": [
            {"from": "system", "value": "s"},
            {"from": "human", "value": "q"},
            {"from": "gpt", "value": "", "tool_calls": [{"function": {"name": "f", "arguments": '{"a": 1}'}}]},
            {"from": "tool", "value": "1"},
            {"from": "gpt", "value": "done"},
        ]
    }
    conv = conversation.parse(data, name="x", source="x")
    assert [m.role for m in conv.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert conv.messages[2].tool_calls[0].arguments == {"a": 1}


def test_text_parts_are_joined_with_a_newline():
    data = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}, PLAIN[1]]
    assert conversation.parse(data, name="x", source="x").messages[0].content == "a\nb"


def test_tool_call_arguments_as_object_or_json_string_are_the_same():
    def call(args):
        return (
            conversation.parse(
                [
                    PLAIN[0],
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [{"function": {"name": "f", "arguments": args}}],
                    },
                    {"role": "tool", "content": "1"},
                    {"role": "assistant", "content": "ok"},
                ],
                name="x",
                source="x",
            )
            .messages[1]
            .tool_calls
        )

    assert call({"city": "Paris"}) == call('{"city": "Paris"}')


BAD_SHAPES = {
    "image part": (
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}, PLAIN[1]],
        "content parts of type image_url",
    ),
    "unknown sharegpt speaker": ({"conversations": [{"from": "bot", "value": "x"}]}, "unknown ShareGPT speaker 'bot'"),
    "no messages key": ({"rows": []}, r"no `messages` or `conversations` list \(keys: rows\)"),
    "reasoning as a list": (
        [PLAIN[0], {"role": "assistant", "content": "a", "reasoning_content": ["x"]}],
        r"reasoning \(reasoning_content\) is a list",
    ),
    "NUL": ([{"role": "user", "content": "a\x00b"}, PLAIN[1]], "NUL character"),
    "lone surrogate": ([{"role": "user", "content": "a\ud800"}, PLAIN[1]], "lone surrogate"),
    "truncated think": (
        [PLAIN[0], {"role": "assistant", "content": "<think>\nlet me see"}],
        "opens <think> in its content and never closes it",
    ),
    "tool_calls not a list": (
        [PLAIN[0], {"role": "assistant", "content": "a", "tool_calls": {"name": "f"}}],
        "`tool_calls` must be a list",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SHAPES))
def test_bad_shapes_are_one_line_with_the_fix(case: str):
    data, pattern = BAD_SHAPES[case]
    with pytest.raises(FixtureError, match=pattern) as err:
        conversation.parse(data, name="x", source="x")
    assert "fix:" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b'[{"role": "user", "content": "caf\xe9"}]', r"not valid UTF-8 \(byte 33: b.\\xe9."),
        (b"[" * 100_000 + b"]" * 100_000, "nests JSON too deeply"),
    ],
    ids=["zero-bytes", "whitespace-only", "latin1", "deep-nesting"],
)
def test_unreadable_files_are_one_line_with_the_fix(tmp_path: Path, content: bytes, pattern: str):
    path = tmp_path / "conv.json"
    path.write_bytes(content)
    with pytest.raises(FixtureError, match=pattern):
        conversation.load(str(path))


def test_a_directory_is_named_as_a_directory(tmp_path: Path):
    with pytest.raises(FixtureError, match="is a directory, not a conversation file"):
        conversation.load(str(tmp_path))
