"""Rows as the datasets users train on hold them, shared by the framework adapters."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def json_arguments(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message as an OpenAI-format dataset holds it: tool-call arguments as JSON strings (the harness's request
    carries them as objects)."""
    out = dict(message)
    if message.get("tool_calls"):
        out["tool_calls"] = [{**c, "function": {**c["function"],
                                                "arguments": json.dumps(c["function"]["arguments"], ensure_ascii=False)}}
                             for c in message["tool_calls"]]
    return out
