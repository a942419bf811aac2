"""gpt-oss as vLLM serves it: the chat request becomes harmony messages, rendered to ids by `openai_harmony`.

vLLM 0.33.0 never runs gpt-oss's Jinja template for chat completions: vllm/entrypoints/harmony_utils.py
(`build_harmony_preamble`, `parse_chat_input_to_harmony_message`, `auto_drop_analysis_messages`,
`render_for_completion`) maps the request and `oss-harmony` 0.0.11 (pinned; it embeds its vocabulary,
so this runs offline) renders it. The mapping, rule by rule, as that file does it:

- a system message (always): the default model identity and knowledge cutoff, the request's
  reasoning effort, the conversation start date (the harness pins it: the template's clock);
- the request's leading system message becomes a developer message's instructions, and the request's
  function tools that message's tool list (a developer message is written only where there is either);
- an assistant turn with tool calls: its content on `commentary`, its reasoning on `analysis`, then
  each call on `commentary` to `functions.NAME`, content type `json`, the arguments string as sent;
- a tool result: author `functions.NAME` (the name of the call its `tool_call_id` names), on
  `commentary` to `assistant`, content as sent (not JSON-quoted);
- any other assistant turn: its reasoning on `analysis`, its content on `final`;
- `analysis` messages before the last `final` one are dropped;
- the prompt: `render_conversation_for_completion(…, Role.ASSISTANT)`.

Requests carry reasoning as `reasoning` (vLLM copies `reasoning_content` there) and tool arguments as a
JSON string, as an OpenAI client sends them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from chat_template_harness.errors import HarnessError

CITATION = "vLLM 0.33.0 vllm/entrypoints/harmony_utils.py (parse_chat_input_to_harmony_message, build_harmony_preamble)"


def _harmony() -> Any:
    try:
        import openai_harmony
    except ImportError as exc:  # pragma: no cover - the lock installs it
        raise HarnessError(
            "gpt-oss as vLLM serves it needs oss-harmony",
            "pip install oss-harmony==0.0.11 (scripts/setup installs it)",
        ) from exc
    return openai_harmony


@cache
def encoding() -> Any:
    h = _harmony()
    return h.load_harmony_encoding(h.HarmonyEncodingName.HARMONY_GPT_OSS)


def _preamble(request: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]], effort: str | None,
              date: str) -> tuple[list[Any], list[Mapping[str, Any]]]:
    h = _harmony()
    system = h.SystemContent.new().with_conversation_start_date(date)
    if effort:
        system = system.with_reasoning_effort(h.ReasoningEffort(effort.capitalize()))
    out = [h.Message.from_role_and_content(h.Role.SYSTEM, system)]
    rest = list(request)
    instructions = None
    if rest and rest[0].get("role") in ("system", "developer"):
        instructions, rest = rest[0].get("content") or "", rest[1:]
    functions = [t["function"] for t in tools if t.get("type") == "function"]
    if instructions is not None or functions:
        developer = h.DeveloperContent.new()
        if instructions is not None:
            developer = developer.with_instructions(instructions)
        if functions:
            developer = developer.with_function_tools([
                h.ToolDescription.new(f["name"], f.get("description") or "", f.get("parameters")) for f in functions
            ])
        out.append(h.Message.from_role_and_content(h.Role.DEVELOPER, developer))
    return out, rest


def _assistant(h: Any, text: str, channel: str) -> Any:
    return h.Message.from_role_and_content(h.Role.ASSISTANT, text).with_channel(channel)


def _message(h: Any, msg: Mapping[str, Any], call_names: Mapping[str, str]) -> list[Any]:
    role, content = msg.get("role"), msg.get("content") or ""
    reasoning = msg.get("reasoning") or msg.get("reasoning_content") or ""
    if role == "assistant":
        out = []
        if msg.get("tool_calls"):
            if content:
                out.append(_assistant(h, content, "commentary"))
            if reasoning:
                out.append(_assistant(h, reasoning, "analysis"))
            for call in msg["tool_calls"]:
                fn = call.get("function", {})
                out.append(_assistant(h, fn.get("arguments") or "", "commentary")
                           .with_recipient(f"functions.{fn.get('name', '')}").with_content_type("json"))
            return out
        if reasoning:
            out.append(_assistant(h, reasoning, "analysis"))
        if content:
            out.append(_assistant(h, content, "final"))
        return out
    if role == "tool":
        name = call_names.get(msg.get("tool_call_id", ""), "")
        author = h.Author.new(h.Role.TOOL, f"functions.{name}")
        return [h.Message.from_author_and_content(author, content).with_channel("commentary").with_recipient("assistant")]
    return [h.Message.from_role_and_content(h.Role(role), content)]


def prompt_ids(request: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] = (), *,
               effort: str | None = None, date: str) -> list[int]:
    """The ids vLLM serves for a chat request (OpenAI messages) to gpt-oss."""
    h = _harmony()
    messages, rest = _preamble(request, tools, effort, date)
    names = {c.get("id", ""): c.get("function", {}).get("name", "") for m in rest for c in m.get("tool_calls") or []}
    for msg in rest:
        messages.extend(_message(h, msg, names))
    last_final = max((i for i, m in enumerate(messages) if m.author.role == h.Role.ASSISTANT and m.channel == "final"),
                     default=-1)
    messages = [m for i, m in enumerate(messages) if not (i < last_final and m.channel == "analysis")]
    return list(encoding().render_conversation_for_completion(h.Conversation.from_messages(messages), h.Role.ASSISTANT))
