"""gpt-oss as vLLM serves it: the chat request becomes harmony messages, rendered to ids by `openai_harmony`.

vLLM 0.33.0 never runs gpt-oss's Jinja template for chat completions: vllm/renderers/online_renderer.py
(`_make_request_with_harmony`) calls vllm/entrypoints/openai/parser/harmony_utils.py
(`extract_instructions_from_messages`, `build_harmony_preamble`, `parse_chat_inputs_to_harmony_messages`,
`render_for_completion`), which maps the request and `oss-harmony` 0.0.11 (pinned; it embeds its vocabulary,
so this runs offline) renders it. The mapping, rule by rule, as that file does it:

- a system message (always): the default model identity and knowledge cutoff, the request's
  reasoning effort, the conversation start date (the harness pins it: the template's clock);
- the request's leading system message becomes a developer message's instructions, and the request's
  function tools that message's tool list (a developer message is written only where there is either,
  non-empty);
- an assistant turn with tool calls: its content on `commentary`, its reasoning on `analysis`, then
  each call on `commentary` to `functions.NAME`, content type `json`, the arguments string as sent;
- a tool result: author `functions.NAME` (the name of the call its `tool_call_id` names), on
  `commentary` to `assistant`, content as sent (not JSON-quoted);
- any other assistant turn: its reasoning on `analysis`, its content on `final`;
- `analysis` messages before the last `final` one are dropped;
- the prompt: `render_conversation_for_completion(…, Role.ASSISTANT)`, then an earlier tool call's header
  rewritten to the form gpt-oss was trained on (`_use_legacy_tool_call_headers`).

Requests carry reasoning as `reasoning` (vLLM copies `reasoning_content` there) and tool arguments as a
JSON string, as an OpenAI client sends them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from chat_template_harness.errors import HarnessError

CITATION = "vLLM 0.33.0 vllm/entrypoints/openai/parser/harmony_utils.py (build_harmony_preamble, render_for_completion)"


def _harmony() -> Any:
    try:
        import openai_harmony
    except ImportError as exc:  # pragma: no cover - the lock installs it
        raise HarnessError(
            "gpt-oss as vLLM serves it needs oss-harmony",
            "pip install oss-harmony==0.0.11 (a dependency of chat-template-harness: reinstall it)",
        ) from exc
    return openai_harmony


@cache
def encoding() -> Any:
    h = _harmony()
    return h.load_harmony_encoding(h.HarmonyEncodingName.HARMONY_GPT_OSS)


def _preamble(
    request: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]], effort: str | None, date: str
) -> tuple[list[Any], list[Mapping[str, Any]]]:
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
    if instructions or functions:
        developer = h.DeveloperContent.new()
        if instructions is not None:
            developer = developer.with_instructions(instructions)
        if functions:
            developer = developer.with_function_tools(
                [h.ToolDescription.new(f["name"], f.get("description") or "", f.get("parameters")) for f in functions]
            )
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
                out.append(
                    _assistant(h, fn.get("arguments") or "", "commentary")
                    .with_recipient(f"functions.{fn.get('name', '')}")
                    .with_content_type("json")
                )
            return out
        if reasoning:
            out.append(_assistant(h, reasoning, "analysis"))
        if content:
            out.append(_assistant(h, content, "final"))
        return out
    if role == "tool":  # text parts joined with nothing between (vLLM's flatten_input_text_content)
        if isinstance(content, list):
            content = "".join(p if isinstance(p, str) else p.get("text") or "" for p in content)
        name = call_names.get(msg.get("tool_call_id", ""), "")
        author = h.Author.new(h.Role.TOOL, f"functions.{name}")
        return [
            h.Message.from_author_and_content(author, content).with_channel("commentary").with_recipient("assistant")
        ]
    return [h.Message.from_role_and_content(h.Role(role), content)]


def prompt_ids(
    request: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] = (),
    *,
    effort: str | None = None,
    date: str,
) -> list[int]:
    """The ids vLLM serves for a chat request (OpenAI messages) to gpt-oss."""
    h = _harmony()
    messages, rest = _preamble(request, tools, effort, date)
    names = {c.get("id", ""): c.get("function", {}).get("name", "") for m in rest for c in m.get("tool_calls") or []}
    for msg in rest:
        messages.extend(_message(h, msg, names))
    last_final = max(
        (i for i, m in enumerate(messages) if m.author.role == h.Role.ASSISTANT and m.channel == "final"), default=-1
    )
    messages = [m for i, m in enumerate(messages) if not (i < last_final and m.channel == "analysis")]
    ids = encoding().render_conversation_for_completion(
        h.Conversation.from_messages(messages),
        h.Role.ASSISTANT,
        config=h.RenderConversationConfig(auto_drop_analysis=False),
    )
    return legacy_tool_call_headers(list(ids))


def legacy_tool_call_headers(ids: list[int]) -> list[int]:
    """vLLM 0.33 writes an earlier tool call's header the way gpt-oss was trained on, not oss-harmony 0.0.11's way:
    `<|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json<|message|>` becomes
    `<|start|>assistant to=functions.f<|channel|>commentary json<|message|>` (`_use_legacy_tool_call_headers`)."""
    enc = encoding()
    special = {
        name: enc.encode(name, allowed_special="all")[0]
        for name in ("<|start|>", "<|channel|>", "<|constrain|>", "<|message|>")
    }
    out: list[int] = []
    i = 0
    while i < len(ids):
        header = _tool_call_header(enc, special, ids, i)
        if header is None:
            out.append(ids[i])
            i += 1
            continue
        end, recipient, channel, content_type = header
        out += [
            special["<|start|>"],
            *enc.encode(f"assistant to={recipient}"),
            special["<|channel|>"],
            *enc.encode(f"{channel} {content_type}"),
            special["<|message|>"],
        ]
        i = end + 1
    return out


def _tool_call_header(enc: Any, special: Mapping[str, int], ids: list[int], i: int) -> tuple[int, str, str, str] | None:
    """(index of <|message|>, recipient, channel, content type) where an assistant tool-call header starts at i."""
    if ids[i] != special["<|start|>"] or special["<|message|>"] not in ids[i + 1 :]:
        return None
    end = ids.index(special["<|message|>"], i + 1)
    head = ids[i + 1 : end]
    if special["<|channel|>"] not in head or special["<|constrain|>"] not in head:
        return None
    channel_at = head.index(special["<|channel|>"])
    constrain_at = head.index(special["<|constrain|>"], channel_at)
    author = enc.decode(head[:channel_at])
    channel_to = enc.decode(head[channel_at + 1 : constrain_at])
    content_type = enc.decode(head[constrain_at + 1 :])
    if author != "assistant" or " to=" not in channel_to or not channel_to.endswith(" ") or not content_type:
        return None
    channel, recipient = channel_to[:-1].split(" to=", 1)
    return (end, recipient, channel, content_type) if channel and recipient else None
