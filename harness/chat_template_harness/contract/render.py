"""Rendering with the real chat template, deterministically.

`template_messages` maps a canonical conversation to what the family's template reads
(reasoning field, tool-call argument form, the content a tool-call turn needs, content as typed parts). `render`
calls the tokenizer's own `apply_chat_template` with the mode's kwargs, the family's pinned
kwargs (Llama's `date_string`) and the clock frozen at PINNED_CLOCK, because Llama 3.2/4 and
gpt-oss write today's date with `strftime_now`.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chat_template_harness.contract.conversation import Conversation, Message, ToolCall
from chat_template_harness.errors import TemplateDriftError
from chat_template_harness.models import memo
from chat_template_harness.models.rules import Family, ThinkMode, content
from chat_template_harness.models.rules.pinned import frozen_clock, with_system_flag

# The date Llama 3.1's template writes by default, so every family agrees on "today".


def inline_reasoning(reasoning: str) -> str:
    """Reasoning as the harness writes it into content for a template that reads no reasoning field (QwQ).

    This is the harness's text, not the template's: the template oracle never counts it as verified.
    """
    return f"<think>\n{reasoning}\n</think>\n\n"


def template_message(message: Message, family: Family, *, with_reasoning: bool) -> dict[str, Any]:
    """One canonical message as this family's template reads it."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    reasoning = message.reasoning if with_reasoning else ""
    blocks = content.form(family.reasoning_field)
    if message.role == "assistant" and blocks is not None:  # every assistant turn in the form: templates may not mix
        out["content"] = blocks.content(reasoning, message.content)
    elif message.role == "assistant" and reasoning:
        if family.reasoning_field == "inline":
            out["content"] = inline_reasoning(reasoning) + message.content
        else:
            out[family.reasoning_field] = reasoning
    if message.tool_calls and blocks is None:
        out["content"] = family.tool_call_content if not message.content else message.content
    if message.tool_calls:
        out["tool_calls"] = [
            call_dict(
                call,
                json.dumps(dict(call.arguments), ensure_ascii=False)
                if family.tool_arguments == "json"
                else dict(call.arguments),
            )
            for call in message.tool_calls
        ]
    out.update(result_fields(message))
    if family.content_format == "parts" and isinstance(out["content"], str):
        out["content"] = content.text_parts(out["content"])
    return out


def call_dict(call: ToolCall, arguments: Any) -> dict[str, Any]:
    """A tool call in the chat format, with its id where the data gives one."""
    head = {"id": call.id} if call.id is not None else {}
    return {**head, "type": "function", "function": {"name": call.name, "arguments": arguments}}


def result_fields(message: Message) -> dict[str, str]:
    """A tool result's `tool_call_id` and any message's `name`, where the data gives them."""
    return {k: v for k, v in (("tool_call_id", message.tool_call_id), ("name", message.name)) if v is not None}


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
            with frozen_clock():
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
        from transformers.utils import chat_template_utils

        # transformers' own steps, bound here so that a transformers without them fails now (the slow path then)
        self._plain, self._alias = chat_template_utils._plain_template_data, chat_template_utils._alias_reasoning_fields
        self.tokenizer = tokenizer
        self.special = dict(tokenizer.special_tokens_map)
        self.templates = {False: tokenizer.get_chat_template(None, None), True: tokenizer.get_chat_template(None, [{}])}
        # the last messages rendered, their values then, and their plain copies
        self._last_messages: tuple[list[Any], list[dict[str, Any]], list[dict[str, Any]]] = ([], [], [])
        self._last_tools: tuple[Any, Any] = (None, None)
        self._kwargs: dict[str, dict[str, Any]] = {}
        by_source: dict[str, Any] = {}  # one compile per distinct template (with and without tools: mostly one)
        for source in self.templates.values():
            if source not in by_source:
                by_source[source] = memoised_sandbox(chat_template_utils._compile_jinja_template(source), source)
        self.compiled = {tools: by_source[source] for tools, source in self.templates.items()}

    def render(self, messages: list[Any], tools: list[Any] | None, gen: bool, kwargs: Mapping[str, Any]) -> str:
        """`render_jinja_template`'s work for one conversation without a continued final message: every value the
        template sees made plain data, reasoning aliased, then the template rendered."""
        chat = self._plain_messages(messages)
        call: Callable[[], str] = lambda: self.compiled[bool(tools)].render(  # noqa: E731
            messages=chat,
            tools=self._plain_tools(tools),
            documents=None,
            add_generation_prompt=gen,
            **self._plain_kwargs(kwargs),
        )
        if "strftime_now" not in self.templates[bool(tools)]:
            return call()
        with frozen_clock():
            return call()

    def _plain_messages(self, messages: list[Any]) -> list[dict[str, Any]]:
        """Each message as plain data with its reasoning aliased (None values dropped, as apply_chat_template
        does), made once per message: a conversation's served prompts and samples are prefixes of one list of
        messages. A message is reused only while it is the same object with the same top-level values; the
        template cannot change what it is given (the sandbox is immutable)."""
        # compared in C, not message by message in Python: a render's history is most of its messages
        objects, copies, plain = self._last_messages
        kept = [*map(operator.is_, objects, messages), False].index(False)  # the same objects, in order,
        unchanged = [*map(operator.eq, copies[:kept], messages), False]  # with the same values as then
        kept = unchanged.index(False)
        objects, copies, plain = objects[:kept], copies[:kept], plain[:kept]
        for message in messages[kept:]:
            chat = self._alias(self._plain([{k: v for k, v in message.items() if v is not None}]))
            objects.append(message)
            copies.append(dict(message))
            plain.append(chat[0])
        self._last_messages = (objects, copies, plain)
        return plain[: len(messages)]

    def _plain_kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The special tokens and kwargs as plain data, made once per distinct kwargs (a family's mode passes the
        same ones to every render; the sandbox is immutable, so the template cannot change them)."""
        key = repr(sorted(kwargs.items()))
        if key not in self._kwargs:
            self._kwargs[key] = self._plain({**self.special, **kwargs})
        return self._kwargs[key]

    def _plain_tools(self, tools: list[Any] | None) -> Any:
        if tools is None:
            return None
        if self._last_tools[0] is not tools:
            self._last_tools = (tools, self._plain(tools))
        return self._last_tools[1]


_DICT_ATTRIBUTES = frozenset(dir(dict))
_STR_FORMAT = frozenset({"format", "format_map"})  # the sandbox wraps these on strings


def memoised_sandbox(template: Any, source: str) -> Any:
    """The template compiled again in an overlay of its own sandboxed environment that remembers the sandbox's
    decisions instead of making each again: the same template, the same sandbox, the same answers.

    `is_safe_attribute` (jinja2's ImmutableSandboxedEnvironment) decides from the object's type and the
    attribute's name alone (a leading underscore, an internal attribute of functions, methods, frames and
    generators, a method that mutates a list, dict, set or deque), so its answer is kept per (type, name), and
    an attribute once found safe on a type is read straight away (except a string's `format`, which the sandbox
    wraps). `getattr` on a plain dict asks for an attribute first and falls back to the item; a name that is not
    an attribute of `dict` cannot be one of a plain dict's, so the item is read straight away, as the fallback
    does. An environment whose `is_safe_attribute` is not jinja2's own is left as it is.
    """
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if type(template.environment).is_safe_attribute is not ImmutableSandboxedEnvironment.is_safe_attribute:
        return template
    env = template.environment.overlay()
    decided: dict[tuple[type, str], bool] = {}
    is_safe, sandboxed_getattr = env.is_safe_attribute, env.getattr

    def is_safe_attribute(obj: Any, attr: str, value: Any) -> bool:
        key = (type(obj), attr)
        if key not in decided:
            decided[key] = is_safe(obj, attr, value)
        return decided[key]

    def getattr_(obj: Any, attribute: str) -> Any:
        kind = type(obj)
        if kind is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except LookupError:
                return env.undefined(obj=obj, name=attribute)
        if decided.get((kind, attribute)) and not (attribute in _STR_FORMAT and isinstance(obj, str)):
            try:
                return getattr(obj, attribute)
            except AttributeError:
                pass
        return sandboxed_getattr(obj, attribute)

    env.is_safe_attribute, env.getattr = is_safe_attribute, getattr_
    return env.from_string(source)


def _renderer(tokenizer: Any) -> CompiledTemplate | None:
    if getattr(tokenizer, "chat_template", None) is None:
        return None
    key, template = id(tokenizer), tokenizer.chat_template
    # the tokenizer is kept, so its id is not reused; a template set on it since (a library user's) compiles anew
    if key not in _RENDERERS or _RENDERERS[key][0] is not tokenizer or _RENDERERS[key][1] != template:
        _RENDERERS[key] = (tokenizer, template, _checked_renderer(tokenizer))
    return _RENDERERS[key][2]


_RENDERERS: dict[int, tuple[Any, Any, CompiledTemplate | None]] = memo.kept({})


def _checked_renderer(tokenizer: Any) -> CompiledTemplate | None:
    """The compiled path where it is exact on a probe conversation (with and without tools), else None."""
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    if type(tokenizer).apply_chat_template is not PreTrainedTokenizerBase.apply_chat_template:
        return None
    try:
        fast = CompiledTemplate(tokenizer)
    except Exception:  # no template, or a transformers without `render_jinja_template`
        return None
    probe = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello.", "reasoning_content": "Greet."},
        {"role": "user", "content": "Bye"},
    ]
    tool = [
        {
            "type": "function",
            "function": {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    for tools in (None, tool):
        for gen in (True, False):
            try:
                with frozen_clock():
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
