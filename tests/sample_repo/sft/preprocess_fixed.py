"""The SFT preprocessor, fixed: one sample per assistant turn. The served prompt is messages[:k] rendered with
add_generation_prompt, exactly as the server sends it; the trained reply is what the template writes for that
turn after it, through the stop token. Not trained: an empty think block the template writes before a reply
without reasoning, and the text after the stop token. Think-off drops the data's reasoning, as the server's
model never writes it."""

from __future__ import annotations

import re
from typing import Any

STOPS = ("<|im_end|>", "<|eot_id|>")
EMPTY_THINK = re.compile(r"<think>\s*</think>\s*")


def build(request: Any) -> list[dict[str, list[int]]]:
    tokenizer, kwargs = request.tokenizer, request.chat_template_kwargs
    messages = request.messages
    if request.think == "off":
        messages = [{k: v for k, v in m.items() if k != "reasoning_content"} for m in messages]

    def render(upto: int, opener: bool) -> str:
        return tokenizer.apply_chat_template(
            messages[:upto], tools=request.tools, tokenize=False, add_generation_prompt=opener, **kwargs
        )

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    samples = []
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt, full = render(k, True), render(k + 1, False)
        if not full.startswith(prompt):
            raise ValueError(f"turn {k}: the template rewrites the served prompt")
        reply = full[len(prompt) :]
        empty = EMPTY_THINK.match(reply)
        untrained, reply = (empty.group(), reply[empty.end() :]) if empty else ("", reply)
        end = min((reply.index(s) + len(s) for s in STOPS if s in reply), default=len(reply))
        head, trained = ids(prompt) + ids(untrained), ids(reply[:end])
        samples.append({"input_ids": head + trained, "loss_mask": [0] * len(head) + [1] * len(trained)})
    return samples
