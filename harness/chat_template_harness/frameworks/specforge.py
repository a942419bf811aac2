"""SpecForge 0.2.0's EAGLE-3 data preprocessing, behind the plug-in interface: one adapter per template.

Each adapter calls SpecForge's own `specforge.data.preprocessing.preprocess_conversations`
unchanged, the way its `build_eagle3_dataset` does: the conversation's messages (with
`reasoning_content` and `tool_calls`), the tools, the registered `ChatTemplate`, and the think
switch the server would pass (`enable_thinking=False` for Qwen3 think-off, …) as a per-conversation
keyword (the think switch alone: no date a user would not set). A model that never thinks (no think mode) gets its
replies without reasoning (`frameworks/rows.py`). gpt-oss's parser reads its own roles (`assistant_analysis`, `assistant_final`), so that
adapter writes the messages in them. What SpecForge returns (lists of `[1, L]` tensors) is read as it is.

A template is only for the models it was written for (its assistant header and stop token); on
any other family the adapter raises Unsupported, so the cell is N/A with the reason.

Install SpecForge the safe way: its declared dependencies pull sglang and a CUDA torch, so
`pip install --no-deps specforge==0.2.0` beside the `specforge` extra (pydantic, datasets; torch
2.13.0 from the `train` extra). `scripts/setup` does this.

    cth check chat_template_harness.frameworks.specforge:qwen3_thinking --model qwen3-8b --think off
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from chat_template_harness.external import Unsupported, real_clock
from chat_template_harness.frameworks.rows import as_trained, user_kwargs

VERSION = "0.2.0"
DATA_SHAPE = (
    "messages with `reasoning_content` and `tool_calls` (gpt-oss: `assistant_analysis`/`assistant_final` roles); "
    "none for a model that never thinks"
)
# SpecForge template -> the (harness family, think mode) cells it is for, by its headers, stop token and
# think handling; None: both modes. `qwen3-instruct` is the non-thinking template, so think-off only.
TEMPLATES: dict[str, dict[str, str | None]] = {
    "qwen": {"qwen2.5": None, "qwen3": None},
    "qwen3-thinking": {"qwen3": None},
    "qwen3-instruct": {"qwen3": "off", "qwen3-instruct-2507": "off"},
    "qwen3-next-thinking": {"qwen3-thinking-2507": None, "qwq": None},
    "llama3": {"llama3": None, "nemotron-v1.5": None},
    "llama4": {"llama4": None},
    "deepseek-v3": {"deepseek-v3": None, "deepseek-v3.1": None},
    "deepseek-r1-distill": {"deepseek-r1": None},
    "gpt-oss": {"gpt-oss": None},
    "gemma": {"gemma3": None},
}
# SpecForge pads nothing here: one conversation per call, longer than any fixture
MAX_LENGTH = 1 << 20


def preprocess(template: str, request: Any) -> dict[str, Any]:
    """SpecForge's preprocessing of one conversation with its registered `template`."""
    if request.family not in TEMPLATES[template]:
        raise Unsupported(f"SpecForge's `{template}` template is for {_for(template)} models")
    if TEMPLATES[template][request.family] not in (None, request.think):
        raise Unsupported(f"SpecForge's `{template}` template is for think-{TEMPLATES[template][request.family]} only")
    try:
        from specforge.data.preprocessing import preprocess_conversations
        from specforge.data.template import TEMPLATE_REGISTRY
    except ImportError as exc:
        raise Unsupported(f"SpecForge is not installed ({exc}): pip install --no-deps specforge=={VERSION}") from None
    messages = _harmony(request) if template == "gpt-oss" else as_trained(request)
    # gpt-oss's HarmonyParser takes no template keywords; the others get the server's think switch
    kwargs = {} if template == "gpt-oss" else {key: [value] for key, value in user_kwargs(request).items()}
    with warnings.catch_warnings():  # SpecForge warns about every system message it keeps; not ours to judge
        warnings.simplefilter("ignore")
        processed: dict[str, Any] = preprocess_conversations(
            request.tokenizer,
            [messages],
            TEMPLATE_REGISTRY.get(template),
            max_length=MAX_LENGTH,
            tools=[request.tools or []],
            **kwargs,
        )
        return processed


def _for(template: str) -> str:
    return ", ".join(sorted(TEMPLATES[template]))


def _harmony(request: Any) -> list[dict[str, str]]:
    """Messages in the roles SpecForge's gpt-oss parser reads (its regenerated-data format):
    system, user, assistant_analysis (the reasoning) and assistant_final (the answer)."""
    if request.tools or any(m.get("tool_calls") or m["role"] == "tool" for m in request.messages):
        raise Unsupported("SpecForge's gpt-oss parser has no role for tool calls or tool results")
    out = []
    for m in request.messages:
        if m["role"] != "assistant":
            out.append({"role": m["role"], "content": m["content"]})
            continue
        if m.get("reasoning_content"):
            out.append({"role": "assistant_analysis", "content": m["reasoning_content"]})
        out.append({"role": "assistant_final", "content": m["content"]})
    return out


def _adapter(template: str) -> Callable[[Any], dict[str, Any]]:
    def adapter(request: Any) -> dict[str, Any]:
        return preprocess(template, request)

    adapter.__name__ = adapter.__qualname__ = template.replace("-", "_").replace(".", "_")
    adapter.__doc__ = f"SpecForge {VERSION}'s `{template}` template (for {_for(template)})."
    return real_clock(adapter)


qwen = _adapter("qwen")
qwen3_thinking = _adapter("qwen3-thinking")
qwen3_instruct = _adapter("qwen3-instruct")
qwen3_next_thinking = _adapter("qwen3-next-thinking")
llama3 = _adapter("llama3")
llama4 = _adapter("llama4")
deepseek_v3 = _adapter("deepseek-v3")
deepseek_r1_distill = _adapter("deepseek-r1-distill")
gpt_oss = _adapter("gpt-oss")
gemma = _adapter("gemma")
ADAPTERS = {name: globals()[name.replace("-", "_")] for name in TEMPLATES}
