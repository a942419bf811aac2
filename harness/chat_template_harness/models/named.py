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


def as_loaded(tokenizer: Any) -> Any:
    """The template the tokenizer's files gave it, as `from_pretrained` records it (`init_kwargs`), or None where they
    hold none. A template set on the tokenizer since (a training template, a user's own) differs from it: the files'
    one is what a server loads. The harness's own loaders record a template they set (`record_loaded`)."""
    kwargs = getattr(tokenizer, "init_kwargs", None)
    template = kwargs.get("chat_template") if isinstance(kwargs, Mapping) else None
    if isinstance(template, (list, tuple)):  # tokenizer_config.json's named form, as transformers reads it
        return {t["name"]: t["template"] for t in template}
    return template


def record_loaded(tokenizer: Any, template: Any) -> None:
    """Set a template that a loader reads from a file transformers does not (a processor file, a package, a
    mistral-common file), recorded as `from_pretrained` records its own: it is the one a server is given."""
    tokenizer.chat_template = template
    if isinstance(getattr(tokenizer, "init_kwargs", None), dict):
        tokenizer.init_kwargs["chat_template"] = template
