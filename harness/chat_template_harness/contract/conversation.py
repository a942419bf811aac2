"""Conversations: the canonical input, its validation, and the built-in fixtures.

A conversation is JSON in one of the shapes training data really comes in:
- a list of messages, or an object with `messages` (optionally `tools`, `description`): OpenAI style;
- an object with `conversations` (ShareGPT: `from`/`value` with roles human, gpt, system, tool;
  or the EAGLE/SpecForge row `{"id", "conversations": [{role, content}]}`).
A message has `role` (system, user, assistant, tool) and `content`: a string, or OpenAI content
parts (`[{"type": "text", "text": ...}]`, joined with a newline; other part types are rejected).
An assistant message may carry `reasoning_content` (the canonical reasoning field; `reasoning` and
`thinking` are aliases) and `tool_calls` (`[{"type": "function", "function": {"name", "arguments"}}]`,
arguments as an object or a JSON string). Reasoning written inline as `<think>…</think>` is moved to
`reasoning_content`; an assistant reply that opens `<think>` and never closes it is rejected.

Bad input raises FixtureError: one line naming the file, the message and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from chat_template_harness.errors import FixtureError

ROLES = ("system", "user", "assistant", "tool")
REASONING_ALIASES = ("reasoning_content", "reasoning", "thinking")
# ShareGPT's `from` values (as written by FastChat, EAGLE and the datasets built on them)
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
}


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any]
    id: str | None = None  # as the data gives it: templates that print ids (Mistral's, Kimi's) render it


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    # the content as the data holds it, where it carried the reasoning inline (`<think>…</think>answer`):
    # a plug-in gets this, so its own parsing of inline reasoning is what is checked
    given_content: str | None = None
    # a tool result's `tool_call_id`, and any message's `name` (a speaker's, or the tool's), as the data gives them:
    # templates that print them render them (Kimi K2 writes a user's name as its role header)
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Conversation:
    name: str
    messages: tuple[Message, ...]
    tools: tuple[Mapping[str, Any], ...] = ()
    description: str = ""
    source: str = ""

    @property
    def assistant_indices(self) -> tuple[int, ...]:
        return tuple(i for i, m in enumerate(self.messages) if m.role == "assistant")

    @property
    def features(self) -> frozenset[str]:
        """What the conversation exercises, for N/A rules (e.g. `tools`)."""
        found = set()
        if self.tools or any(m.tool_calls or m.role == "tool" for m in self.messages):
            found.add("tools")
        if any(c.id is None for m in self.messages for c in m.tool_calls) or any(
            m.role == "tool" and m.tool_call_id is None for m in self.messages
        ):
            found.add("tools_without_ids")  # a template that wants ids of its own form cannot render these
        if any(m.reasoning for m in self.messages):
            found.add("reasoning")
        if sum(bool(m.tool_calls) for m in self.messages) > 1:
            found.add("repeated_tools")
        if self.messages[0].role == "system":
            found.add("system")
        if any(m.role == "assistant" and not m.content and not m.tool_calls for m in self.messages):
            found.add("empty_reply")
        if any("  " in m.content for m in self.messages):
            found.add("space_runs")
        return frozenset(found)


def with_system_prompt(conversation: Conversation, text: str | None) -> Conversation:
    """The conversation as a server that adds a default system prompt serves it (none added if one is there)."""
    if not text or conversation.messages[0].role == "system":
        return conversation
    import dataclasses

    return dataclasses.replace(conversation, messages=(Message("system", text), *conversation.messages))


@dataclass(frozen=True)
class _Where:
    source: str
    index: int | None = None

    def __str__(self) -> str:
        return self.source if self.index is None else f"{self.source}: message {self.index}"


FIX_FORMAT = (
    "write a JSON list of {role, content} messages (or an object with `messages`); "
    "see a built-in fixture with `cth render qwen3-8b single_turn --think off`"
)


def parse(data: Any, *, name: str, source: str) -> Conversation:
    """Validate decoded JSON (any supported shape) and build a Conversation."""
    where = _Where(source)
    data, tools, description = _unwrap(data, where)
    if not isinstance(data, list) or not data:
        raise FixtureError(
            f"{where}: expected a non-empty list of messages, got {_kind(data)}", FIX_FORMAT, code="empty-conversation"
        )
    if not isinstance(tools, list) or not all(isinstance(t, Mapping) for t in tools):
        raise FixtureError(f"{where}: `tools` must be a list of function schemas", FIX_FORMAT, code="other")
    messages = tuple(_message(raw, _Where(source, i)) for i, raw in enumerate(data))
    _check_order(messages, source)
    return Conversation(name, messages, tuple(tools), description, source)


def _unwrap(data: Any, where: _Where) -> tuple[Any, Any, str]:
    """(messages, tools, description) of an OpenAI list, a `messages` object or a ShareGPT/EAGLE row."""
    if not isinstance(data, Mapping):
        return data, [], ""
    key = next((k for k in ("messages", "conversations") if data.get(k) is not None), None)
    if key is None:
        keys = ", ".join(sorted(map(str, data))[:6]) or "none"
        raise FixtureError(
            f"{where}: object has no `messages` or `conversations` list (keys: {keys})",
            FIX_FORMAT,
            code="empty-conversation",
        )
    return data[key], data.get("tools") or [], str(data.get("description", ""))


def _kind(value: Any) -> str:
    return "an empty list" if value == [] else type(value).__name__


def _message(raw: Any, where: _Where) -> Message:
    if not isinstance(raw, Mapping):
        raise FixtureError(f"{where} is a {type(raw).__name__}, not an object", FIX_FORMAT, code="other")
    raw = _from_sharegpt(raw, where) if "from" in raw and "role" not in raw else raw
    role = raw.get("role")
    if role not in ROLES:
        raise FixtureError(
            f"{where} has unknown role {role!r}",
            f"use one of {', '.join(ROLES)} (map e.g. 'bot' to 'assistant')",
            code="unknown-role",
        )
    content = raw.get("content")
    if content is None and raw.get("tool_calls"):
        content = ""
    content = _text_of(content, role, where)
    reasoning = _reasoning(raw, where)
    tool_calls = tuple(_tool_call(c, where) for c in _list_of_calls(raw.get("tool_calls"), where))
    if role != "assistant" and (reasoning or tool_calls):
        raise FixtureError(
            f"{where} ({role}) carries reasoning or tool calls",
            "only assistant messages may have them",
            code="bad-reasoning",
        )
    given: str | None = None
    if role == "assistant" and "</think>" in content:
        if reasoning:
            raise FixtureError(
                f"{where} has both a reasoning field and an inline <think> block in content",
                "keep the reasoning in one place: `reasoning_content` or inline <think>…</think>, not both",
                code="bad-reasoning",
            )
        given = content
        reasoning, content = _split_inline_think(content)
    elif role == "assistant" and content.lstrip().startswith("<think>"):
        raise FixtureError(
            f"{where} opens <think> in its content and never closes it (a truncated reasoning trace?)",
            "close the block with </think>, move the reasoning to `reasoning_content`, or drop the row",
            code="unclosed-think",
        )
    if re.search(r"</?think>", reasoning):
        raise FixtureError(
            f"{where}: the reasoning itself holds a <think> or </think> tag, so no template can tell where it ends",
            "remove the tags from the reasoning text (a reasoning field holds only the thoughts)",
            code="bad-reasoning",
        )
    for label, text in (("content", content), ("reasoning", reasoning)):
        _check_text(text, f"{where} ({role}) {label}")
    call_id = _optional_text(raw, "tool_call_id", where) if role == "tool" else None
    return Message(role, content, reasoning, tool_calls, given, call_id, _optional_text(raw, "name", where))


def _optional_text(raw: Mapping[str, Any], key: str, where: _Where) -> str | None:
    """An id or name the data gives (None where it gives none): a string, else one error."""
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise FixtureError(
        f"{where} has a {key} of type {type(value).__name__}",
        f"give `{key}` as a string",
        code="other" if key == "name" else "bad-tool-call",
    )


def _from_sharegpt(raw: Mapping[str, Any], where: _Where) -> dict[str, Any]:
    """A ShareGPT `{from, value}` message as `{role, content}`."""
    speaker = raw.get("from")
    if speaker not in SHAREGPT_ROLES:
        raise FixtureError(
            f"{where} has unknown ShareGPT speaker {speaker!r}",
            f"use one of {', '.join(SHAREGPT_ROLES)} in `from` (human/gpt are user/assistant)",
            code="unknown-role",
        )
    out = {k: v for k, v in raw.items() if k not in ("from", "value")}
    return {**out, "role": SHAREGPT_ROLES[speaker], "content": raw.get("value", raw.get("content"))}


def _text_of(content: Any, role: str, where: _Where) -> str:
    """Content as one string: a string, or OpenAI text parts joined with a newline."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, Mapping) for p in content):
        kinds = {p.get("type") for p in content}
        if kinds <= {"text"} and all(isinstance(p.get("text"), str) for p in content):
            return "\n".join(p["text"] for p in content)
        raise FixtureError(
            f"{where} ({role}) has content parts of type {', '.join(sorted(map(str, kinds - {'text'}))) or 'text without a string'}",
            'only text parts are supported: [{"type": "text", "text": "..."}]',
            code="not-text",
        )
    raise FixtureError(
        f"{where} ({role}) has content of type {type(content).__name__}, not a string",
        "give every message a string `content` (an empty string is allowed) or a list of text parts",
        code="not-text",
    )


def _check_text(text: str, where: str) -> None:
    """Text a tokenizer can take: valid Unicode, no NUL."""
    if "\x00" in text:
        raise FixtureError(
            f"{where} holds a NUL character at {text.index(chr(0))}",
            "remove the NUL bytes (a binary file or a bad export?)",
            code="invalid-text",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FixtureError(
            f"{where} holds a lone surrogate ({text[exc.start]!r} at {exc.start}), which is not valid Unicode",
            "fix the escape (a surrogate pair split in two?) or drop the character",
            code="invalid-text",
        ) from None


def _list_of_calls(calls: Any, where: _Where) -> list[Any]:
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise FixtureError(
            f"{where}: `tool_calls` must be a list, got {type(calls).__name__}",
            'write [{"function": {"name", "arguments"}}]',
            code="bad-tool-call",
        )
    return calls


def _reasoning(raw: Mapping[str, Any], where: _Where) -> str:
    given = [(k, raw[k]) for k in REASONING_ALIASES if raw.get(k) is not None]
    if len({json.dumps(v, sort_keys=True, default=str) for _, v in given}) > 1:
        raise FixtureError(
            f"{where} has different reasoning under {', '.join(k for k, _ in given)}",
            "keep one reasoning field (`reasoning_content`)",
            code="bad-reasoning",
        )
    value = given[0][1] if given else ""
    if not isinstance(value, str):
        raise FixtureError(
            f"{where}: reasoning ({given[0][0]}) is a {type(value).__name__}, not a string",
            "write reasoning_content as a string",
            code="bad-reasoning",
        )
    return value


def _split_inline_think(content: str) -> tuple[str, str]:
    """`<think>r</think>c` (opening tag optional, as R1 writes it) -> (r, c), stripped as Qwen3's template does."""
    head, _, tail = content.partition("</think>")
    reasoning = head.split("<think>")[-1].strip("\n")
    return reasoning, tail.lstrip("\n")


def _tool_call(raw: Any, where: _Where) -> ToolCall:
    fn = raw.get("function", raw) if isinstance(raw, Mapping) else None
    if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
        raise FixtureError(
            f"{where} has a tool call without a function name",
            'write {"function": {"name", "arguments"}}',
            code="bad-tool-call",
        )
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError as exc:
            raise FixtureError(
                f"{where}: tool call arguments are not valid JSON ({exc})", "fix the arguments", code="bad-tool-call"
            ) from exc
    if not isinstance(args, Mapping):
        raise FixtureError(
            f"{where}: tool call arguments must be an object", "give arguments as a JSON object", code="bad-tool-call"
        )
    return ToolCall(fn["name"], args, _optional_text(raw, "id", where))


def _check_order(messages: Sequence[Message], source: str) -> None:
    last = messages[-1]
    if last.role != "assistant":
        raise FixtureError(
            f"{source}: conversation ends with a {last.role!r} message, not an assistant turn",
            "end the conversation with the assistant reply to train on, or drop the trailing messages",
            code="no-final-assistant",
        )
    for i, m in enumerate(messages):
        if m.role == "assistant" and i and messages[i - 1].role == "assistant":
            raise FixtureError(
                f"{_Where(source, i)}: two assistant messages in a row (messages {i - 1} and {i})",
                "merge them into one reply, or put the user or tool message that came between them back",
                code="two-assistant-turns",
            )
        if m.role == "system" and i != 0:
            raise FixtureError(
                f"{_Where(source, i)}: system message after the start", "put the system message first", code="other"
            )
        if m.role == "tool" and not any(p.tool_calls for p in messages[:i]):
            raise FixtureError(
                f"{_Where(source, i)}: tool result with no earlier tool call",
                "add the assistant tool call",
                code="tool-result-without-call",
            )
    if not any(m.role == "user" for m in messages):
        raise FixtureError(
            f"{source}: conversation has no user message",
            "add the user message the assistant answers",
            code="no-user-message",
        )


# --- loading -------------------------------------------------------------------------------------------------------

FIXTURES = "data/fixtures"


@cache
def fixture_names() -> tuple[str, ...]:
    folder = resources.files("chat_template_harness").joinpath(FIXTURES)
    return tuple(sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")))


@cache
def fixture(name: str) -> Conversation:
    """A built-in fixture by name."""
    if name not in fixture_names():
        raise FixtureError(
            f"unknown fixture {name!r}; built-in: {', '.join(fixture_names())}",
            "pass a built-in name, or a path to a JSON file (e.g. ./my_conversation.json)",
            code="other",
        )
    text = resources.files("chat_template_harness").joinpath(f"{FIXTURES}/{name}.json").read_text("utf-8")
    return _decode(text, name=name, source=f"fixture {name}")


def load(ref: str) -> Conversation:
    """A built-in fixture name, or a path to a JSON conversation file."""
    path = Path(ref)
    if path.suffix == ".json" or path.exists() or "/" in ref:
        return _decode(_read(path), name=path.stem, source=str(path))
    return fixture(ref)


def _read(path: Path) -> str:
    """A conversation file's text, or one FixtureError that says what is wrong with the file itself."""
    if path.is_dir():
        raise FixtureError(
            f"{path} is a directory, not a conversation file", "pass a .json file inside it", code="other"
        )
    if not path.exists():
        raise FixtureError(
            f"conversation file {path} does not exist", "check the path, or pass a built-in fixture name", code="other"
        )
    if not path.is_file():
        raise FixtureError(f"{path} is not a regular file", "pass a .json file holding one conversation", code="other")
    data = path.read_bytes()
    if not data.strip():
        raise FixtureError(f"{path} is empty", f"write a JSON list of messages into it ({FIX_FORMAT})", code="other")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FixtureError(
            f"{path} is not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r})",
            "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
            code="other",
        ) from None


def _decode(text: str, *, name: str, source: str) -> Conversation:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FixtureError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            FIX_FORMAT,
            code="malformed-json",
        ) from exc
    except RecursionError:
        raise FixtureError(f"{source} nests JSON too deeply to read", FIX_FORMAT, code="malformed-json") from None
    return parse(data, name=name, source=source)
