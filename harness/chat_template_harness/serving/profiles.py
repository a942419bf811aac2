"""A server is a profile: how it normalises a chat request before rendering, and how it renders each family.

`transformers` is the contract's served prompt: the template over the harness's messages
(`contract/render.py`). The servers take an OpenAI chat request (reasoning in `reasoning_content`, tool
arguments as a JSON string, call ids) and each rule below names where the server does it. Both servers
tokenize the rendered text with `add_special_tokens=False`, as the contract does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chat_template_harness.errors import HarnessError
from chat_template_harness.models.rules import content

Request = list[dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    says: str
    where: str  # server version, file, function

    def __str__(self) -> str:
        return f"{self.says} ({self.where})"


@dataclass(frozen=True)
class Profile:
    name: str
    rules: tuple[Rule, ...]
    normalise: Callable[[Request], Request]
    harmony_families: frozenset[str] = frozenset()  # families rendered by openai_harmony instead of the template
    # families the server renders with its own Python encoder, which the harness does not model: family -> what runs
    native_encoders: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # request options (`cth servers`' probes): how `continue_final_message` is served ("template": passed to the
    # template; "appended": the last message cut off and its text tokenized onto the generation prompt), whether a
    # request ending in an assistant message has it sent as a user message, whether a client's
    # `add_special_tokens: true` is read
    prefill: str = "template"
    trailing_assistant_as_user: bool = False
    client_special_tokens: bool = False


def _parsed_arguments(request: Request, *, invalid: Callable[[str], Any]) -> Request:
    out = []
    for msg in request:
        msg = dict(msg)
        if msg.get("tool_calls"):
            calls = []
            for call in msg["tool_calls"]:
                fn = dict(call.get("function", {}))
                if isinstance(fn.get("arguments"), str):
                    try:
                        fn["arguments"] = json.loads(fn["arguments"])
                    except json.JSONDecodeError:
                        fn["arguments"] = invalid(fn["arguments"])
                calls.append({**call, "function": fn})
            msg["tool_calls"] = calls
        out.append(msg)
    return out


def _vllm_arguments(arguments: Any) -> dict[str, Any]:
    """vLLM's rule: an object stays; a JSON string becomes the object it holds; anything else (invalid JSON, a JSON
    array or number, empty, None) becomes {}."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _vllm(request: Request) -> Request:
    out = []
    for msg in request:
        msg = dict(msg)
        if msg.get("role") == "assistant" and isinstance(msg.get("tool_calls"), list):
            if not msg["tool_calls"]:
                msg.pop("tool_calls")  # kept on the plain reply path
            else:
                msg["tool_calls"] = [
                    {**c, "function": {**c["function"], "arguments": _vllm_arguments(c["function"].get("arguments"))}}
                    for c in msg["tool_calls"]
                ]
        if msg.get("content") is None:
            msg["content"] = ""
        if (
            msg.get("role") == "tool"
            and isinstance(msg["content"], list)
            and all(isinstance(p, Mapping) and p.get("type") == "text" for p in msg["content"])
        ):
            msg["content"] = "\n".join(p.get("text", "") for p in msg["content"])
        if msg.get("role") == "assistant" and (msg.get("reasoning") or msg.get("reasoning_content")):
            msg["reasoning"] = msg["reasoning_content"] = msg.get("reasoning") or msg["reasoning_content"]
        out.append(msg)
    return out


def _sglang_invalid(text: str) -> Any:
    raise HarnessError(
        f"SGLang rejects tool-call arguments that are not JSON: {text[:60]!r}",
        "send the arguments as a JSON object string",
    )


def _sglang_tool_content(content: Any) -> Any:
    """SGLang's `normalize_tool_content`: a tool result's parts, all text, joined with a space; else unchanged."""
    if not isinstance(content, list) or not all(
        isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text") for p in content
    ):
        return content
    return " ".join(p if isinstance(p, str) else p.get("text", "") for p in content)


def _sglang(request: Request) -> Request:
    out = _parsed_arguments(request, invalid=_sglang_invalid)
    for msg in out:
        for call in msg.get("tool_calls") or ():
            if not isinstance(call.get("function", {}).get("arguments", {}), dict | type(None)):
                raise HarnessError(
                    "SGLang rejects tool-call arguments that are not a JSON object",
                    "send the arguments as a JSON object string",
                )
    return [{**m, "content": _sglang_tool_content(m.get("content"))} if m.get("role") == "tool" else m for m in out]


VLLM = "vLLM 0.33.0"
SGLANG = "SGLang 0.5.23"
PROFILES: dict[str, Profile] = {
    "transformers": Profile(
        "transformers",
        (
            Rule(
                "the family's template over the harness's messages, in the mode's kwargs",
                "transformers apply_chat_template; the contract",
            ),
            Rule(
                "Mistral models (a mistral-common tokenizer file) are served by mistral-common's ids: "
                "ChatCompletionRequest.from_openai + encode_chat_completion (serving/mistral.py)",
                "transformers 5.24.0 transformers/tokenization_mistral_common.py MistralCommonBackend.apply_chat_template",
            ),
        ),
        lambda request: request,
    ),
    "vllm": Profile(
        "vllm",
        (
            Rule(
                "gpt-oss is rendered by openai_harmony, never its Jinja template",
                f"{VLLM} vllm/renderers/online_renderer.py _make_request_with_harmony; "
                "vllm/entrypoints/openai/parser/harmony_utils.py",
            ),
            Rule(
                "tool-call arguments sent as a JSON string are parsed into an object (invalid JSON, a non-object, "
                "empty or None become {}); an empty tool_calls list is dropped",
                f"{VLLM} vllm/renderers/chat_utils/chat_message.py _postprocess_messages",
            ),
            Rule("content None becomes ''", f"{VLLM} vllm/renderers/chat_utils/chat_message.py"),
            Rule(
                "an assistant's reasoning is written to both reasoning and reasoning_content",
                f"{VLLM} vllm/renderers/chat_utils/chat_message.py parse_chat_message_content",
            ),
            Rule(
                "a tool result's text parts are joined with a newline",
                f"{VLLM} vllm/renderers/chat_utils/chat_message.py parse_chat_message_content",
            ),
            Rule(
                "Mistral models (--tokenizer-mode mistral) are served by mistral-common's ids through transformers' "
                "MistralCommonBackend; tool-call ids over 9 characters are cut to their last 9",
                f"{VLLM} vllm/tokenizers/mistral.py MistralTokenizer.apply_chat_template, truncate_tool_call_ids "
                "(called from vllm/renderers/online_renderer.py)",
            ),
            Rule(
                "continue_final_message (with add_generation_prompt false) is passed to the template, as transformers "
                "does",
                f"{VLLM} vllm/entrypoints/openai/chat_completion/protocol.py ChatCompletionRequest.build_chat_params",
            ),
            Rule(
                "a client's add_special_tokens: true is read: the tokenizer's own special tokens (a BOS) are added on "
                "top of the template's",
                f"{VLLM} vllm/entrypoints/openai/chat_completion/protocol.py "
                "ChatCompletionRequest.add_special_tokens, build_tok_params",
            ),
            Rule(
                "DeepSeek V4 is served by vLLM's own Python encoder (--tokenizer-mode deepseek_v4; the checkpoint's "
                "tokenizer_config.json has no chat template), not the Jinja port: not modelled, its cells are reported "
                "as errors with this reason",
                f"{VLLM} vllm/tokenizers/deepseek_v4.py, deepseek_v4_encoding.py "
                "(read in third-party copies, not in the wheel)",
            ),
            Rule(
                "Qwen3.5/3.6 go through their Jinja template with the normalisation above; nothing family-specific",
                f"{VLLM} vllm/renderers/online_renderer.py",
            ),
        ),
        _vllm,
        frozenset({"gpt-oss"}),
        {
            "deepseek-v4": "vLLM serves DeepSeek V4 with its own Python encoder (--tokenizer-mode deepseek_v4, "
            "vllm/tokenizers/deepseek_v4_encoding.py), not a Jinja template"
        },
        client_special_tokens=True,
    ),
    "sglang": Profile(
        "sglang",
        (
            Rule(
                "tool-call arguments sent as a JSON string are parsed into an object (invalid JSON, or JSON that is "
                "not an object, is an error; Kimi-K3's encoding alone keeps them)",
                f"{SGLANG} sglang/srt/entrypoints/openai/serving_chat.py normalize_assistant_tool_call_arguments, "
                "parse_tool_call_arguments",
            ),
            Rule(
                "a tool result's text parts are joined with a space",
                f"{SGLANG} sglang/srt/entrypoints/openai/serving_chat.py normalize_tool_content",
            ),
            Rule(
                "gpt-oss goes through its Jinja template (reasoning_effort a template argument); harmony only parses "
                "its output (special tokens kept)",
                f"{SGLANG} sglang/srt/entrypoints/openai/chat_encoding.py resolve_chat_encoding_spec (no native encoder "
                "for gpt-oss); serving_chat.py _apply_jinja_template; is_gpt_oss read only in "
                "_process_messages (skip_special_tokens) and _convert_to_internal_request (reasoning_effort 'none' refused)",
            ),
            Rule(
                "Mistral models are loaded as transformers' MistralCommonTokenizer and served by mistral-common's ids "
                "where the text round trip loses control tokens",
                f"{SGLANG} sglang/srt/utils/hf_transformers/tokenizer.py; sglang/srt/entrypoints/openai/serving_chat.py "
                "_probe_prompt_text_round_trip",
            ),
            Rule(
                "continue_final_message: the final assistant message is cut off, the rest rendered with the generation "
                "prompt, and the message's text tokenized on its own (a leading BOS dropped) and appended; a reasoning "
                "parser's answer opener (ResponseTemplateReasoningDetector) is not modelled here",
                f"{SGLANG} sglang/srt/entrypoints/openai/serving_chat.py _handle_last_assistant_message, "
                "_append_assistant_prefix_to_prompt_ids",
            ),
            Rule(
                "a request ending in an assistant message, without continue_final_message, has that message sent as a "
                "user message",
                f"{SGLANG} sglang/srt/entrypoints/openai/serving_chat.py _handle_last_assistant_message",
            ),
            Rule(
                "a chat request's add_special_tokens is not read (ChatCompletionRequest has no such field; only "
                "/tokenize sets it)",
                f"{SGLANG} sglang/srt/entrypoints/openai/protocol.py "
                "ChatCompletionRequest._format_add_special_tokens, TokenizeRequest.to_chat_completion_request",
            ),
            Rule(
                "DeepSeek V4 (a DeepseekV4 architecture, or --tool-call-parser deepseekv4) is rendered by the "
                "deepseek-recipe package (DeepSeekRecipe.encode), never the Jinja template: not modelled, its cells are "
                "reported as errors with this reason",
                f"{SGLANG} sglang/srt/entrypoints/openai/chat_encoding.py resolve_chat_encoding_spec ('dsv4'), "
                "encode_simple_chat; sglang/srt/parser/deepseek_recipe_renderer.py",
            ),
            Rule(
                "Qwen3.5/3.6 have no native encoder (resolve_chat_encoding_spec returns None): their Jinja template "
                "with the normalisation above",
                f"{SGLANG} sglang/srt/entrypoints/openai/chat_encoding.py",
            ),
        ),
        _sglang,
        prefill="appended",
        trailing_assistant_as_user=True,
        native_encoders={
            "deepseek-v4": "SGLang serves DeepSeek V4 through the deepseek-recipe package "
            "(chat_encoding.py resolve_chat_encoding_spec -> 'dsv4'), not a Jinja template"
        },
    ),
}


def get(name: str) -> Profile:
    if name not in PROFILES:
        raise HarnessError(f"unknown server {name!r}", f"use one of {', '.join(PROFILES)}")
    return PROFILES[name]


def last_assistant(profile: Profile, request: Request, continue_final_message: bool) -> tuple[Request, str | None]:
    """(the request to render, the prefix to append after it) for a request whose last message may be the
    assistant's: a prefill the profile appends is cut off; a trailing assistant message it renames becomes a user's."""
    last = request[-1] if request else {}
    if last.get("role") != "assistant" or not isinstance(last.get("content"), str):
        return request, None
    if continue_final_message and profile.prefill == "appended":
        return request[:-1], last["content"]
    if not continue_final_message and profile.trailing_assistant_as_user:
        return [*request[:-1], {"role": "user", "content": last["content"]}], None
    return request, None


def to_request(messages: Sequence[Mapping[str, Any]], reasoning_field: str) -> Request:
    """The harness's template messages as an OpenAI client sends them: reasoning in `reasoning_content`, tool
    arguments as a JSON string, every call with an id and every tool result naming the call it answers (the data's
    own ids where it gives them, `call_0000000000`, … where it does not)."""
    out: Request = []
    pending: list[str] = []
    count = 0
    blocks = content.form(reasoning_field)
    for msg in messages:
        msg = dict(msg)
        split = blocks.split(msg.get("content")) if blocks is not None and msg.get("role") == "assistant" else None
        if split is not None:  # a content form (typed blocks): the client's plain fields
            msg["content"] = split[1]
            if split[0]:
                msg["reasoning_content"] = split[0]
        if reasoning_field not in ("inline", "reasoning_content") and reasoning_field in msg:
            msg["reasoning_content"] = msg.pop(reasoning_field)
        if msg.get("tool_calls"):
            calls = []
            for call in msg["tool_calls"]:
                fn = dict(call["function"])
                if not isinstance(fn["arguments"], str):
                    fn["arguments"] = json.dumps(fn["arguments"], ensure_ascii=False)
                call_id, count = call.get("id") or f"call_{count:010d}", count + 1
                pending.append(call_id)
                calls.append({"id": call_id, "type": "function", "function": fn})
            msg["tool_calls"] = calls
        if msg.get("role") == "tool" and msg.get("tool_call_id") is not None:  # the data's own: kept as it is
            if msg["tool_call_id"] in pending:
                pending.remove(msg["tool_call_id"])
        elif msg.get("role") == "tool" and pending:
            msg["tool_call_id"] = pending.pop(0)
        out.append(msg)
    return out


def as_template_messages(
    request: Sequence[Mapping[str, Any]], reasoning_field: str, content_format: str = "string"
) -> Request:
    """A normalised request as the template reads it: reasoning under the family's field (or, for a content form,
    every assistant message's content written in it, as contract/render.py writes it); for a template that reads
    content only as parts, every string content as one text part (vLLM and SGLang detect such a template and send
    it so)."""
    out = []
    blocks = content.form(reasoning_field)
    for msg in request:
        msg = dict(msg)
        reasoning = msg.pop("reasoning_content", None) or msg.get("reasoning")
        if blocks is not None and msg.get("role") == "assistant" and isinstance(msg.get("content"), str | None):
            msg["content"] = blocks.content(reasoning or "", msg.get("content"))
        elif reasoning and reasoning_field not in ("inline", "reasoning"):
            msg[reasoning_field] = reasoning
        if content_format == "parts" and isinstance(msg.get("content"), str):
            msg["content"] = content.text_parts(msg["content"])
        out.append(msg)
    return out
