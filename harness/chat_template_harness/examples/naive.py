"""A naive preprocessor, written the way many training repos do it: render the whole conversation
once with the chat template, find assistant replies with a header regex, and train everything
between a header and the stop token.

It is wrong wherever the template injects text into the last turn or rewrites history: Qwen3
trains its empty `<think>\\n\\n</think>\\n\\n`, DeepSeek-V3.1 trains `</think>`, QwQ and R1 train
replies whose served prompt ended in `<think>\\n`. `cth check chat_template_harness.examples.naive:preprocess`
shows where; the test suite uses it as a negative control.
"""

from __future__ import annotations

import re
from typing import Any

# From an assistant header to its stop token, per template family (first group: the trained text).
HEADERS = (
    re.compile(r"<\|im_start\|>assistant\n(.*?<\|im_end\|>)", re.S),
    re.compile(r"<\|start_header_id\|>assistant<\|end_header_id\|>\n\n(.*?<\|eot_id\|>)", re.S),
    re.compile(r"<\|header_start\|>assistant<\|header_end\|>\n\n(.*?<\|eot\|>)", re.S),
    re.compile(r"<｜Assistant｜>(.*?<｜end▁of▁sentence｜>)", re.S),
    re.compile(r"<\|start\|>assistant(.*?(?:<\|return\|>|<\|call\|>|<\|end\|>))", re.S),
    re.compile(r"<start_of_turn>model\n(.*?<end_of_turn>)", re.S),
)


def preprocess(request: Any) -> dict[str, list[int]]:
    """One sample: the full render, trained from each assistant header to its stop token."""
    tokenizer = request.tokenizer
    text = tokenizer.apply_chat_template(
        request.messages, tools=request.tools, tokenize=False, **request.chat_template_kwargs
    )
    pattern = next((p for p in HEADERS if p.search(text)), HEADERS[0])
    trained = [(m.start(1), m.end(1)) for m in pattern.finditer(text)]
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(s <= a and b <= e for s, e in trained)) for a, b in enc["offset_mapping"]]
    return {"input_ids": list(enc["input_ids"]), "loss_mask": mask}
