"""TRL's assistant-only-loss path (SFTTrainer with `assistant_only_loss=True`), behind the plug-in interface.

It does what TRL 1.x's SFTTrainer does for a conversational language-modeling example: if the
tokenizer's template has no `{% generation %}` markers, swap in TRL's shipped training template
(`trl.chat_template_utils.get_training_chat_template`), then tokenize with TRL's own `_tokenize`
(apply_chat_template with `return_assistant_tokens_mask=True`); labels are the ids where
`assistant_masks` is 1. The example's `chat_template_kwargs` column carries the think switch
(`enable_thinking`, `thinking`) as TRL's dataset format allows (the think switch alone: no date a user would
not set); reasoning in `reasoning_content`, the field the templates read. A model that never thinks (no think mode) gets its replies without reasoning (`frameworks/rows.py`).

Where TRL ships no training template for a family, TRL raises; that cell is N/A ("TRL does not
support it"). Needs `pip install trl` (the `examples` extra).

    cth check chat_template_harness.frameworks.trl_sft:preprocess --markdown reports/trl-assistant-only-loss.md
"""

from __future__ import annotations

from typing import Any

from chat_template_harness.external import Unsupported, real_clock
from chat_template_harness.frameworks.rows import as_trained, user_kwargs

DATA_SHAPE = "conversational `messages` with `chat_template_kwargs`; reasoning in `reasoning_content`, none for a model that never thinks"


@real_clock
def preprocess(request: Any) -> dict[str, Any]:
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers
    from trl.data_utils import _tokenize  # the function SFTTrainer's tokenize_fn calls

    tokenizer = request.tokenizer
    template = None
    if not has_generation_markers(tokenizer.chat_template):
        try:
            template = get_training_chat_template(tokenizer)
        except ValueError as exc:  # TRL ships no training template for this chat template
            raise Unsupported(f"TRL has no training template for it ({str(exc).split('(')[0].strip()})") from None
    kwargs = {"chat_template": template, "tools": request.tools, **user_kwargs(request)}
    out = _tokenize(tokenizer, as_trained(request), return_assistant_tokens_mask=True, **kwargs)
    return {"input_ids": list(out["input_ids"]), "assistant_masks": list(out["assistant_masks"])}
