"""A tokenizer's chat template as one text, named templates included.

A model repository may ship several templates by name (`"chat_template": [{"name": "default", ...},
{"name": "tool_use", ...}, ...]`, Cohere's Command R+ and NousResearch's Hermes among them); transformers then holds
them as a dict and applies `tool_use` to a request with tools (where it exists) and `default` to any other
(`get_chat_template`). The renders go through transformers, so they pick as a server does. What reads the template's
source (derive's checks, provenance hashes, caches) reads this text: every named template, each under its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def text(template: Any) -> str:
    """The template as one text: itself, or each named template under a `{#- chat template NAME -#}` line, in name
    order ("" for none)."""
    if template is None:
        return ""
    if isinstance(template, Mapping):
        return "".join(f"{{#- chat template {name} -#}}\n{template[name]}\n" for name in sorted(template))
    return str(template)


def names(template: Any) -> tuple[str, ...]:
    """The named templates, in name order (none for a single template)."""
    return tuple(sorted(template)) if isinstance(template, Mapping) else ()


def used(tokenizer: Any) -> dict[str, str]:
    """Which named template transformers applies to which request, asked of transformers itself
    (`get_chat_template`, as `apply_chat_template` picks); empty for a single template."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, Mapping):
        return {}
    out = {}
    for request, tools in (("a request without tools", None), ("a request with tools", [{}])):
        try:
            picked = tokenizer.get_chat_template(None, tools)
        except ValueError:  # no `default`: transformers applies none
            continue
        out[request] = next(name for name in sorted(template) if template[name] == picked)
    return out
