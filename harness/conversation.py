"""Conversations: the canonical input, its validation, and the built-in fixtures.

A conversation file is JSON: either a list of messages, or an object with `messages` and
optionally `tools` (function schemas) and `description`. A message has `role` (system, user,
assistant, tool) and `content` (a string); an assistant message may carry `reasoning_content`
(the canonical reasoning field; `reasoning` and `thinking` are accepted as aliases) and
`tool_calls` (`[{"type": "function", "function": {"name": ..., "arguments": {...}}}]`).
Reasoning written inline in content as `<think>…</think>` is moved to `reasoning_content`.

Bad input raises FixtureError: one line naming the file, the message and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from harness.errors import FixtureError

ROLES = ("system", "user", "assistant", "tool")
REASONING_ALIASES = ("reasoning_content", "reasoning", "thinking")


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


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
        if any(m.reasoning for m in self.messages):
            found.add("reasoning")
        if self.messages[0].role == "system":
            found.add("system")
        return frozenset(found)


@dataclass(frozen=True)
class _Where:
    source: str
    index: int | None = None

    def __str__(self) -> str:
        return self.source if self.index is None else f"{self.source}: message {self.index}"


FIX_FORMAT = (
    "write a JSON list of {role, content} messages (or an object with `messages`); "
    "see harness/data/fixtures/ for examples"
)


def parse(data: Any, *, name: str, source: str) -> Conversation:
    """Validate decoded JSON and build a Conversation."""
    where = _Where(source)
    tools: Any = []
    description = ""
    if isinstance(data, Mapping):
        if "messages" not in data:
            raise FixtureError(f"{where}: object has no `messages` list", FIX_FORMAT)
        tools = data.get("tools", [])
        description = str(data.get("description", ""))
        data = data["messages"]
    if not isinstance(data, list) or not data:
        raise FixtureError(f"{where}: expected a non-empty list of messages, got {type(data).__name__}", FIX_FORMAT)
    if not isinstance(tools, list) or not all(isinstance(t, Mapping) for t in tools):
        raise FixtureError(f"{where}: `tools` must be a list of function schemas", FIX_FORMAT)
    messages = tuple(_message(raw, _Where(source, i)) for i, raw in enumerate(data))
    _check_order(messages, source)
    return Conversation(name, messages, tuple(tools), description, source)


def _message(raw: Any, where: _Where) -> Message:
    if not isinstance(raw, Mapping):
        raise FixtureError(f"{where} is a {type(raw).__name__}, not an object", FIX_FORMAT)
    role = raw.get("role")
    if role not in ROLES:
        raise FixtureError(
            f"{where} has unknown role {role!r}", f"use one of {', '.join(ROLES)} (map e.g. 'bot' to 'assistant')"
        )
    content = raw.get("content")
    if content is None and raw.get("tool_calls"):
        content = ""
    if not isinstance(content, str):
        raise FixtureError(
            f"{where} ({role}) has content of type {type(content).__name__}, not a string",
            "give every message a string `content` (an empty string is allowed)",
        )
    reasoning = _reasoning(raw, where)
    tool_calls = tuple(_tool_call(c, where) for c in raw.get("tool_calls") or ())
    if role != "assistant" and (reasoning or tool_calls):
        raise FixtureError(f"{where} ({role}) carries reasoning or tool calls", "only assistant messages may have them")
    if role == "assistant" and "</think>" in content:
        if reasoning:
            raise FixtureError(
                f"{where} has both a reasoning field and an inline <think> block in content",
                "keep the reasoning in one place: `reasoning_content` or inline <think>…</think>, not both",
            )
        reasoning, content = _split_inline_think(content)
    return Message(role, content, reasoning, tool_calls)


def _reasoning(raw: Mapping[str, Any], where: _Where) -> str:
    given = [(k, raw[k]) for k in REASONING_ALIASES if raw.get(k) is not None]
    if len({v for _, v in given}) > 1:
        raise FixtureError(
            f"{where} has different reasoning under {', '.join(k for k, _ in given)}",
            "keep one reasoning field (`reasoning_content`)",
        )
    value = given[0][1] if given else ""
    if not isinstance(value, str):
        raise FixtureError(f"{where}: reasoning must be a string", "write reasoning_content as a string")
    return value


def _split_inline_think(content: str) -> tuple[str, str]:
    """`<think>r</think>c` (opening tag optional, as R1 writes it) -> (r, c), stripped as Qwen3's template does."""
    head, _, tail = content.partition("</think>")
    reasoning = head.split("<think>")[-1].strip("\n")
    return reasoning, tail.lstrip("\n")


def _tool_call(raw: Any, where: _Where) -> ToolCall:
    fn = raw.get("function", raw) if isinstance(raw, Mapping) else None
    if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
        raise FixtureError(f"{where} has a tool call without a function name", 'write {"function": {"name", "arguments"}}')
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError as exc:
            raise FixtureError(f"{where}: tool call arguments are not valid JSON ({exc})", "fix the arguments") from exc
    if not isinstance(args, Mapping):
        raise FixtureError(f"{where}: tool call arguments must be an object", "give arguments as a JSON object")
    return ToolCall(fn["name"], args)


def _check_order(messages: Sequence[Message], source: str) -> None:
    last = messages[-1]
    if last.role != "assistant":
        raise FixtureError(
            f"{source}: conversation ends with a {last.role!r} message, not an assistant turn",
            "end the conversation with the assistant reply to train on, or drop the trailing messages",
        )
    for i, m in enumerate(messages):
        if m.role == "system" and i != 0:
            raise FixtureError(f"{_Where(source, i)}: system message after the start", "put the system message first")
        if m.role == "tool" and not any(p.tool_calls for p in messages[:i]):
            raise FixtureError(f"{_Where(source, i)}: tool result with no earlier tool call", "add the assistant tool call")
    if not any(m.role == "user" for m in messages):
        raise FixtureError(f"{source}: conversation has no user message", "add the user message the assistant answers")


# --- loading -------------------------------------------------------------------------------------------------------

FIXTURES = "data/fixtures"


@cache
def fixture_names() -> tuple[str, ...]:
    folder = resources.files("harness").joinpath(FIXTURES)
    return tuple(sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")))


@cache
def fixture(name: str) -> Conversation:
    """A built-in fixture by name."""
    if name not in fixture_names():
        raise FixtureError(f"unknown fixture {name!r}; built-in: {', '.join(fixture_names())}", "pass a built-in name or a path to a JSON file")
    text = resources.files("harness").joinpath(f"{FIXTURES}/{name}.json").read_text("utf-8")
    return _decode(text, name=name, source=f"fixture {name}")


def load(ref: str) -> Conversation:
    """A built-in fixture name, or a path to a JSON conversation file."""
    path = Path(ref)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise FixtureError(f"conversation file {path} does not exist", "check the path, or pass a built-in fixture name")
        return _decode(path.read_text("utf-8"), name=path.stem, source=str(path))
    return fixture(ref)


def _decode(text: str, *, name: str, source: str) -> Conversation:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FixtureError(f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", FIX_FORMAT) from exc
    return parse(data, name=name, source=source)
