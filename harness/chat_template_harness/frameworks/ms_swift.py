"""ms-swift 4.6.0's SFT encoding (`swift sft`), behind the plug-in interface.

Each cell runs ms-swift's own code unchanged, as `swift sft --model <hub id>` does for one row: its model
registry matches the hub id to a model type and template (`get_matched_model_meta`), `get_template` builds
that template on the tokenizer with the server's think switch (`enable_thinking`), and `Template.encode` in
`train` mode returns `input_ids` and `labels` (-100 where untrained), read as they are.

The data shape fed is ms-swift 4.6.0's documented `messages` format (`docs/source_en/Customization/Custom-dataset.md`:
OpenAI-style `messages`, tool calls as OpenAI `tool_calls` with JSON-string arguments, which ms-swift converts to
its `tool_call` messages, and `tools` beside the messages). ms-swift has no reasoning field: its templates read
reasoning inline in the reply, in the model's own words (`swift/template/base.py`: `thinking_prefix`,
`non_thinking_prefix` and the history stripping of `<think>`…`</think>`; `swift/template/templates/llm.py`:
`GptTemplate` keeps a gpt-oss reply that starts with `<|channel|>` as written and prefixes any other with the
final channel). So reasoning is written `<think>\\n…\\n</think>\\n\\n` before the answer, and for gpt-oss as its
analysis channel (`<|channel|>analysis<|message|>…<|end|><|start|>assistant<|channel|>final<|message|>…`). A model
that never thinks (no think mode: Qwen2.5, Llama, DeepSeek-V3, Qwen3-Instruct-2507) gets its replies without
reasoning, as its users' data holds them (`frameworks/rows.py`).

One step cannot run as `swift sft` runs it: reading the model's config.json (dtype, context length, rope
scaling), which the offline pack does not hold for every model; ms-swift's own `ModelInfo` is built with the
matched model type, bf16 and an unbounded length instead (none of which the text encoding reads). A hub id
ms-swift's registry does not match, or a multimodal template (it wants the image processor), is N/A.

Install the safe way (never its declared dependencies): `pip install --no-deps ms-swift==4.6.0` with what
`swift.template` imports at load beyond the lock (modelscope, modelscope-hub, cryptography, cffi, pycparser,
json-repair; scripts/setup pins them). Nothing is stubbed.

    cth check chat_template_harness.frameworks.ms_swift:preprocess --model qwen3-8b
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

from chat_template_harness.external import Unsupported, real_clock
from chat_template_harness.frameworks.rows import as_trained, json_arguments
from chat_template_harness.models import memo

VERSION = "4.6.0"
DATA_SHAPE = (
    "`messages` as ms-swift 4.6.0's Custom-dataset.md documents them; reasoning inline (`<think>\\n…\\n</think>\\n\\n`, "
    "gpt-oss: its analysis channel), none for a model that never thinks"
)
_TEMPLATES: dict[tuple[int, str, str], Any] = memo.kept({})


def _import() -> Any:
    import logging

    logging.getLogger("swift").setLevel(logging.WARNING)  # it logs every template setting at INFO
    try:
        with warnings.catch_warnings():  # import-time deprecations of its dependencies are not its preprocessing
            warnings.simplefilter("ignore")
            import torch
            from swift.model.model_meta import ModelInfo, get_matched_model_meta
            from swift.template import get_template
    except ImportError as exc:
        raise Unsupported(
            f"ms-swift is not installed ({exc}): pip install --no-deps ms-swift=={VERSION} and what "
            "scripts/setup installs beside it"
        ) from None
    logging.getLogger("swift").setLevel(logging.WARNING)  # again: its get_logger resets the level while importing
    return torch, ModelInfo, get_matched_model_meta, get_template


def _template(request: Any) -> Any:
    """ms-swift's template for this model and think mode (made once: it copies the tokenizer)."""
    from chat_template_harness.models import source

    key = (id(request.tokenizer), request.model, request.think)
    if key in _TEMPLATES:
        return _TEMPLATES[key][1]
    torch, model_info, matched_meta, get_template = _import()
    spec = source.get_model(request.model)
    meta = matched_meta(spec.hub_repo)
    if meta is None:
        raise Unsupported(
            f"ms-swift {VERSION}'s model registry does not match {spec.hub_repo} (a user names "
            "--model_type and --template)"
        )
    if meta.is_multimodal:
        raise Unsupported(f"ms-swift's `{meta.template}` template is multimodal: it needs the model's image processor")
    processor = copy.deepcopy(request.tokenizer)
    processor.model_info = model_info(
        meta.model_type, spec.hub_repo, torch.bfloat16, 1 << 20, None, 0, task_type="causal_lm"
    )
    processor.model_meta = meta
    enable = request.chat_template_kwargs.get("enable_thinking")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        template = get_template(processor, max_length=1 << 20, enable_thinking=enable)
    template.set_mode("train")
    _TEMPLATES[key] = (request.tokenizer, template)  # the tokenizer kept with it, so its id is not reused
    return template


# how a reply carries its reasoning, per ms-swift template type (the default: inline think tags)
REASONING_WORDS = {
    "gpt_oss": ("<|channel|>analysis<|message|>", "<|end|><|start|>assistant<|channel|>final<|message|>")
}
THINK_WORDS = ("<think>\n", "\n</think>\n\n")


def row(request: Any, template_type: str = "") -> dict[str, Any]:
    opening, closing = REASONING_WORDS.get(template_type, THINK_WORDS)
    messages = []
    for m in as_trained(request):
        out: dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
        reasoning = m.get("reasoning_content") or ""
        if m["role"] == "assistant" and reasoning:
            out["content"] = f"{opening}{reasoning}{closing}{out['content']}"
        if m.get("tool_calls"):
            out["tool_calls"] = json_arguments(m)["tool_calls"]
        messages.append(out)
    return {"messages": messages, **({"tools": request.tools} if request.tools else {})}


@real_clock
def preprocess(request: Any) -> dict[str, Any]:
    """ms-swift's training encoding of one row with the template its registry picks for the model."""
    template = _template(request)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = template.encode(row(request, template.template_meta.template_type))
    return {"input_ids": out["input_ids"], "labels": out["labels"]}
