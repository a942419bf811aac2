"""Hypothesis strategies: random valid conversations of the kinds training data holds.

Unicode (CJK, emoji, combining marks), whitespace-only and empty content, `<think>`/`</think>`
and special-token lookalikes as plain text, reasoning present or absent (whitespace-only too),
tool calls with their results, 1-8 assistant turns, an optional system message.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

LOOKALIKES = [
    "<think>",
    "</think>",
    "<|im_end|>",
    "<|eot_id|>",
    "<｜end▁of▁sentence｜>",
    "<|return|>",
    "<tool_call>",
    "```",
]
PIECES = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
    st.sampled_from(["你好，世界", "😀🎉", "e\u0301", "\uf900", " ", "\n", "\n\n", "  x  ", "2+2=4.", "**bold**"]),
    st.sampled_from(LOOKALIKES),
)
TEXT = st.lists(PIECES, max_size=5).map("".join)
# replies and reasoning with think tags are input the harness rejects or re-reads (inline reasoning):
# keep most examples valid, so the run spends its time on conversations that are checked
REPLY = TEXT.filter(lambda t: "think>" not in t)
REASONING = st.one_of(st.just(""), st.sampled_from([" ", "\n", "Let me think."]), REPLY)


@st.composite
def conversations(draw: Any) -> list[dict[str, Any]]:
    """A JSON conversation (list of messages) that ends with an assistant turn."""
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(TEXT)})
    for _ in range(draw(st.integers(1, 8))):
        messages.append({"role": "user", "content": draw(TEXT)})
        if draw(st.integers(0, 5)) == 0:
            call = {"type": "function", "function": {"name": "lookup", "arguments": {"q": draw(TEXT)}}}
            messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
            messages.append({"role": "tool", "content": draw(TEXT)})
        reply: dict[str, Any] = {"role": "assistant", "content": draw(REPLY)}
        reasoning = draw(REASONING)
        if reasoning:
            reply["reasoning_content"] = reasoning
        messages.append(reply)
    return messages
