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
    continue_final_message: bool = False,
) -> str:
    """The template's text for these messages, with the clock frozen and dates pinned. `continue_final_message`
    leaves the last (assistant) message open, as transformers does (`cth servers`' prefill probe)."""
    kwargs = {**family.template_kwargs, **mode.kwargs}
    if continue_final_message:
        kwargs["continue_final_message"] = True
    messages = with_system_flag(messages, mode.system_flag)
    try:
        renderer = _renderer(tokenizer) if FAST and not continue_final_message else None
        if renderer is not None:
            text = renderer.render(list(messages), list(tools) or None, add_generation_prompt, kwargs)
        else:
            with time_machine.travel(PINNED_CLOCK, tick=False):
                text = _apply(tokenizer, list(messages), list(tools) or None, add_generation_prompt, kwargs)
    except Exception as exc:  # jinja2 TemplateError/UndefinedError, or a template's raise_exception
        raise TemplateDriftError(
            f"the {family.title} template failed to render ({type(exc).__name__}: {exc})",
            "declare the cell N/A in the family's rules file (`unsupported`, see `cth derive`) if the template cannot express this conversation, "
            "or fix the conversation",
        ) from exc
    if not isinstance(text, str):
        raise TypeError(f"apply_chat_template returned {type(text).__name__}")
    return text


def _apply(tokenizer: Any, messages: list[Any], tools: list[Any] | None, gen: bool, kwargs: Mapping[str, Any]) -> Any:
    return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=gen, **kwargs)


# tests turn the compiled-template path off to compare it with `apply_chat_template` on every cell
FAST = True


class CompiledTemplate:
    """A tokenizer's chat template rendered as `apply_chat_template(..., tokenize=False)` renders it, less its
    per-call work.

    `apply_chat_template` picks the template, rebuilds the special-tokens map, converts every message to
    plain data and then calls transformers' `render_jinja_template` (the template compiled once, in
    transformers' sandboxed environment). This calls that same function with the template picked and the
    special-tokens map built once; the clock is frozen only for a template that reads it (`strftime_now`).
    Used only where the tokenizer's class does not override `apply_chat_template`, and only after it renders
    a probe conversation exactly as `apply_chat_template` does (`_renderer`); tests compare both on every cell.
    """

    def __init__(self, tokenizer: Any) -> None:
        from transformers.utils.chat_template_utils import render_jinja_template

        self._render_jinja = render_jinja_template
        self.tokenizer = tokenizer
        self.special = dict(tokenizer.special_tokens_map)
        self.templates = {False: tokenizer.get_chat_template(None, None), True: tokenizer.get_chat_template(None, [{}])}

    def render(self, messages: list[Any], tools: list[Any] | None, gen: bool, kwargs: Mapping[str, Any]) -> str:
        template = self.templates[bool(tools)]
        chat = [{k: v for k, v in m.items() if v is not None} for m in messages]  # as apply_chat_template drops None
        call = lambda: self._render_jinja(  # noqa: E731
            conversations=[chat], tools=tools, chat_template=template, add_generation_prompt=gen, **{**self.special, **kwargs}
        )[0][0]
        if "strftime_now" not in template:
            return call()
        with time_machine.travel(PINNED_CLOCK, tick=False):
            return call()


def _renderer(tokenizer: Any) -> CompiledTemplate | None:
    if getattr(tokenizer, "chat_template", None) is None:
        return None
    key = id(tokenizer)
    if key not in _RENDERERS or _RENDERERS[key][0] is not tokenizer:  # the tokenizer is kept, so its id is not reused
        _RENDERERS[key] = (tokenizer, _checked_renderer(tokenizer))
    return _RENDERERS[key][1]


_RENDERERS: dict[int, tuple[Any, CompiledTemplate | None]] = {}


def _checked_renderer(tokenizer: Any) -> CompiledTemplate | None:
    """The compiled path where it is exact on a probe conversation (with and without tools), else None."""
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    if type(tokenizer).apply_chat_template is not PreTrainedTokenizerBase.apply_chat_template:
        return None
    try:
        fast = CompiledTemplate(tokenizer)
    except Exception:  # no template, or a transformers without `render_jinja_template`
        return None
    probe = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
             {"role": "assistant", "content": "Hello.", "reasoning_content": "Greet."}, {"role": "user", "content": "Bye"}]
    tool = [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}}]
    for tools in (None, tool):
        for gen in (True, False):
            try:
                with time_machine.travel(PINNED_CLOCK, tick=False):
                    expected = _apply(tokenizer, probe, tools, gen, {})
            except Exception:
                continue  # the template cannot render the probe: nothing to compare here
            try:
                if fast.render(probe, tools, gen, {}) != expected:
                    return None
            except Exception:
                return None
    return fast


def served_prompt(
    tokenizer: Any, conversation: Conversation, message_index: int, family: Family, mode: ThinkMode
) -> str:
    """What a server feeds the model before it writes message `message_index` (contract: served prompt)."""
    msgs = template_messages(conversation, family, mode)[:message_index]
    return render(tokenizer, msgs, family=family, mode=mode, tools=conversation.tools, add_generation_prompt=True)
