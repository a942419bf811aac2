"""The SFT preprocessor as many repos first write it: render the whole conversation once, then train
everything from each assistant header to its stop token. It trains Qwen3's empty think block in think-off,
and every reply after a history the template rewrites."""

from __future__ import annotations

import re
from typing import Any

REPLIES = (
    re.compile(r"<\|im_start\|>assistant\n(.*?<\|im_end\|>)", re.S),
    re.compile(r"<\|start_header_id\|>assistant<\|end_header_id\|>\n\n(.*?<\|eot_id\|>)", re.S),
)


def build(request: Any) -> dict[str, list[int]]:
    tokenizer = request.tokenizer
    text = tokenizer.apply_chat_template(
        request.messages, tools=request.tools, tokenize=False, **request.chat_template_kwargs
    )
    pattern = next((p for p in REPLIES if p.search(text)), REPLIES[0])
    trained = [(m.start(1), m.end(1)) for m in pattern.finditer(text)]
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(s <= a and b <= e for s, e in trained)) for a, b in enc["offset_mapping"]]
    return {"input_ids": list(enc["input_ids"]), "loss_mask": mask}
