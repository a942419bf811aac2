"""Rows as the datasets users train on hold them, shared by the framework adapters.

Two facts about the cell decide what a row holds beyond the conversation, the same for every adapter:
- a model that never thinks (no think mode in its rules: Qwen2.5, Llama, DeepSeek-V3, Qwen3-Instruct-2507) never
  generated reasoning, so its users' data holds none: the fixtures' reasoning is left out of its rows
  (`as_trained`);
- a framework's user sets the think switch, never the harness's date pins (`date_string` is pinned only so the
  reference's goldens do not move): `user_kwargs` is the think switch alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def json_arguments(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message as an OpenAI-format dataset holds it: tool-call arguments as JSON strings (the harness's request
    carries them as objects)."""
    out = dict(message)
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {
                **c,
                "function": {**c["function"], "arguments": json.dumps(c["function"]["arguments"], ensure_ascii=False)},
            }
            for c in message["tool_calls"]
        ]
    return out


def family(request: Any) -> Any:
    """The harness's rules for the cell's model."""
    from chat_template_harness.models import source
    from chat_template_harness.models.rules.registry import family_for

    return family_for(source.get_model(request.model), request.tokenizer)


def never_thinks(request: Any) -> bool:
    """The cell's model has no think mode at all: nothing it generates is reasoning."""
    from chat_template_harness.models.rules import ThinkMode

    rules = family(request)
    return not any(isinstance(mode, ThinkMode) and mode.thinks for mode in (rules.on, rules.off))


def as_trained(request: Any) -> list[dict[str, Any]]:
    """The request's messages as a user's dataset for this model holds them: no reasoning for a model that never
    thinks (it never generated any), else the reasoning as the conversation carries it."""
    if not never_thinks(request):
        return [dict(m) for m in request.messages]
    return [{k: v for k, v in m.items() if k != "reasoning_content"} for m in request.messages]


def user_kwargs(request: Any) -> dict[str, Any]:
    """The template keywords a framework's user sets: the server's think switch, without the harness's date pins."""
    pins = family(request).template_kwargs
    return {k: v for k, v in request.chat_template_kwargs.items() if k not in pins}
