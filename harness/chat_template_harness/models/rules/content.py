"""Reasoning a template reads from typed blocks of an assistant message's content, not from a field of its own;
and content as typed parts, for a template that reads no string content (`text_parts`).

The forms are data (data/reasoning_forms.toml); a family's `reasoning_field` names one where its template renders
reasoning only from such a block (Apertus's `thoughts` block, Mistral's `thinking` chunk). derive.py probes each
form; contract/render.py writes every assistant message of such a family in it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Form:
    name: str
    container: str  # "": content is the list of blocks; else content = {container: [blocks]}
    reasoning: Mapping[str, str]  # the block reasoning is written as; "{text}" stands for it
    answer: Mapping[str, str]

    def content(self, reasoning: str, answer: str | None) -> Any:
        """An assistant message's content in this form: the reasoning block where there is reasoning, then the
        answer block where there is an answer (an empty list where neither: a tool-call turn)."""
        blocks = [_filled(self.reasoning, reasoning)] if reasoning else []
        if answer:
            blocks.append(_filled(self.answer, answer))
        return {self.container: blocks} if self.container else blocks

    def split(self, content: Any) -> tuple[str, str] | None:
        """(reasoning, answer) of content written in this form (the inverse of `content`); None where it is not."""
        blocks = content.get(self.container) if self.container and isinstance(content, Mapping) else content
        if not isinstance(blocks, list) or not all(isinstance(b, Mapping) for b in blocks):
            return None
        texts = {"reasoning": "", "answer": ""}
        for block in blocks:
            for kind, shape in (("reasoning", self.reasoning), ("answer", self.answer)):
                if block.get("type") == shape.get("type"):
                    texts[kind] += next(str(block.get(k, "")) for k, v in shape.items() if v == "{text}")
        return texts["reasoning"], texts["answer"]


def text_parts(text: str) -> list[dict[str, str]]:
    """A string content as one text part, for a template that reads content only as typed parts (a family's
    `content_format = "parts"`), as vLLM and SGLang send string content to such a template."""
    return [{"type": "text", "text": text}]


def _filled(block: Mapping[str, str], text: str) -> dict[str, str]:
    return {k: v.replace("{text}", text) for k, v in block.items()}


@cache
def forms() -> Mapping[str, Form]:
    """data/reasoning_forms.toml, read once: form name -> form."""
    raw = tomllib.loads(
        resources.files("chat_template_harness").joinpath("data/reasoning_forms.toml").read_text("utf-8")
    )
    return MappingProxyType(
        {
            name: Form(name, f["container"], MappingProxyType(f["reasoning"]), MappingProxyType(f["answer"]))
            for name, f in raw["forms"].items()
        }
    )


def form(reasoning_field: str) -> Form | None:
    """The content form a `reasoning_field` names; None for a message field (or "inline")."""
    return forms().get(reasoning_field)
