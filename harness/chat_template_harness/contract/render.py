"""Rendering with the real chat template, deterministically.

`template_messages` maps a canonical conversation to what the family's template reads
(reasoning field, tool-call argument form, the content a tool-call turn needs). `render`
calls the tokenizer's own `apply_chat_template` with the mode's kwargs, the family's pinned
kwargs (Llama's `date_string`) and the clock frozen at PINNED_CLOCK, because Llama 3.2/4 and
gpt-oss write today's date with `strftime_now`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import time_machine

from chat_template_harness.contract.conversation import Conversation, Message
from chat_template_harness.errors import TemplateDriftError
from chat_template_harness.models.rules import Family, ThinkMode

# The date Llama 3.1's template writes by default, so every family agrees on "today".
PINNED_CLOCK = datetime(2024, 7, 26, 12, 0, tzinfo=UTC)


def inline_reasoning(reasoning: str) -> str:
    """Reasoning as the harness writes it into content for a template that reads no reasoning field (QwQ).

    This is the harness's text, not the template's: the template oracle never counts it as verified.
    """
    return f"<think>\n{reasoning}\n</think>\n\n"


def template_message(message: Message, family: Family, *, with_reasoning: bool) -> dict[str, Any]:
    """One canonical message as this family's template reads it."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    reasoning = message.reasoning if with_reasoning else ""
    if message.role == "assistant" and reasoning:
        if family.reasoning_field == "inline":
            out["content"] = inline_reasoning(reasoning) + message.content
        else:
            out[family.reasoning_field] = reasoning
    if message.tool_calls:
        out["content"] = family.tool_call_content if not message.content else message.content
        out["tool_calls"] = [
            {
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": json.dumps(dict(call.arguments), ensure_ascii=False)
                    if family.tool_arguments == "json"
                    else dict(call.arguments),
                },
            }
            for call in message.tool_calls
        ]
    return out


def with_system_flag(messages: Sequence[Mapping[str, Any]], flag: str) -> list[Mapping[str, Any]]:
    """The messages a server sends for a mode switched by a system-message flag (Nemotron's `/no_think`)."""
    if not flag:
        return list(messages)
    if messages and messages[0].get("role") == "system" and messages[0].get("content"):
        return [{**messages[0], "content": f"{messages[0]['content']}\n{flag}"}, *messages[1:]]
    rest = messages[1:] if messages and messages[0].get("role") == "system" else messages
    return [{"role": "system", "content": flag}, *rest]


def template_messages(conversation: Conversation, family: Family, mode: ThinkMode) -> list[dict[str, Any]]:
    """The whole conversation for the template; reasoning only where the mode thinks."""
    return [template_message(m, family, with_reasoning=mode.thinks) for m in conversation.messages]


def render(
    tokenizer: Any,
    messages: Sequence[Mapping[str, Any]],
    *,
    family: Family,
    mode: ThinkMode,
    tools: Sequence[Mapping[str, Any]] = (),
    add_generation_prompt: bool,
) -> str:
    """The template's text for these messages, with the clock frozen and dates pinned."""
    kwargs = {**family.template_kwargs, **mode.kwargs}
    messages = with_system_flag(messages, mode.system_flag)
    try:
        with time_machine.travel(PINNED_CLOCK, tick=False):
            text = tokenizer.apply_chat_template(
                list(messages),
                tools=list(tools) or None,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                **kwargs,
            )
    except Exception as exc:  # jinja2 TemplateError/UndefinedError, or a template's raise_exception
        raise TemplateDriftError(
            f"the {family.title} template failed to render ({type(exc).__name__}: {exc})",
            "declare the cell N/A in the family's rules file (`unsupported`, see `cth derive`) if the template cannot express this conversation, "
            "or fix the conversation",
        ) from exc
    if not isinstance(text, str):
        raise TypeError(f"apply_chat_template returned {type(text).__name__}")
    return text


def served_prompt(
    tokenizer: Any, conversation: Conversation, message_index: int, family: Family, mode: ThinkMode
) -> str:
    """What a server feeds the model before it writes message `message_index` (contract: served prompt)."""
    msgs = template_messages(conversation, family, mode)[:message_index]
    return render(tokenizer, msgs, family=family, mode=mode, tools=conversation.tools, add_generation_prompt=True)
