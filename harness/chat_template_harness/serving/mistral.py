"""Mistral models as every server serves them: ids from mistral-common, never a Jinja template's text.

vLLM 0.33.0 (`--tokenizer-mode mistral`: vllm/tokenizers/mistral.py `MistralTokenizer.apply_chat_template`),
SGLang 0.5.23 (sglang/srt/utils/hf_transformers/tokenizer.py loads `MistralCommonTokenizer`;
serving_chat.py `_probe_prompt_text_round_trip` then encodes straight to ids) and transformers 5.24.0 all
call transformers' `MistralCommonBackend.apply_chat_template`
(transformers/tokenization_mistral_common.py): `ChatCompletionRequest.from_openai(messages, tools)`, then
`MistralTokenizer.encode_chat_completion`. That is what this module runs, on the same bundled file.
vLLM first cuts tool-call ids longer than 9 characters to their last 9
(vllm/tokenizers/mistral.py `truncate_tool_call_ids`, called from renderers/online_renderer.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from chat_template_harness.errors import HarnessError


@cache
def _tokenizer(path: str, finished: bool = False) -> Any:
    """`finished`: the finetuning mode, which encodes a conversation ending in an assistant turn (its reply and
    `</s>`); serving (MistralCommonBackend's test mode) refuses one. The finetuning one shares the served one's
    instruct tokenizer and normaliser (as `MistralTokenizer.from_file` builds them), with the finetuning
    validator: reading a tekken file costs seconds."""
    from mistral_common.protocol.instruct.validator import ValidationMode, get_validator
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    if not finished:
        return MistralTokenizer.from_file(path, mode=ValidationMode.test)
    served = _tokenizer(path)
    version = served.instruct_tokenizer.tokenizer.version
    return MistralTokenizer(
        served.instruct_tokenizer,
        validator=get_validator(version, mode=ValidationMode.finetuning),
        request_normalizer=served._instruct_request_normalizer,
    )


def file_of(tokenizer: Any) -> str | None:
    """The mistral-common file a tokenizer was built from (models/bundled.py), or None."""
    return getattr(tokenizer, "mistral_common_file", None)


def truncated_ids(request: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """vLLM's `truncate_tool_call_ids`: a tool-call id (and a tool result's tool_call_id) over 9 characters keeps
    its last 9."""
    out = []
    for msg in request:
        msg = dict(msg)
        if msg.get("tool_calls"):
            msg["tool_calls"] = [
                {**c, "id": c["id"][-9:]} if len(c.get("id", "")) > 9 else c for c in msg["tool_calls"]
            ]
        if msg.get("role") == "tool" and len(msg.get("tool_call_id", "")) > 9:
            msg["tool_call_id"] = msg["tool_call_id"][-9:]
        out.append(msg)
    return out


def prompt_ids(
    path: str, request: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]], *, finished: bool = False
) -> list[int]:
    """The ids served for a request ending before an assistant turn; `finished`: the library's encoding of a
    conversation that ends with the assistant turn (what the model generates is what follows the served prompt)."""
    from mistral_common.exceptions import MistralCommonException
    from mistral_common.protocol.instruct.request import ChatCompletionRequest

    try:
        chat = ChatCompletionRequest.from_openai(
            messages=[dict(m) for m in request], tools=[dict(t) for t in tools] or None
        )
        return list(_tokenizer(path, finished).encode_chat_completion(chat).tokens)
    except (AssertionError, ValueError, MistralCommonException) as exc:  # pydantic's ValidationError is a ValueError
        raise HarnessError(
            f"mistral-common cannot serve this conversation: {str(exc).splitlines()[0]}",
            "declare the cell N/A in the family's rules (`unsupported`), or fix the conversation",
        ) from exc
