"""Family rules: what each family's real chat template does, per think mode.

Every statement here was read off the pack's templates and is checked against them by
tests/test_families.py; a changed template that breaks a rule fails there (and in the
goldens) instead of silently changing what gets trained.

Words (see ../shared/CONTRACT.md):
- `opener`: what the generation prompt writes after the assistant header in this mode, which
  the model therefore never generates (QwQ/R1 `<think>\n`, V3.1 `<think>` / `</think>`,
  Qwen3 think-off's empty block). Not every served prompt has it: DeepSeek writes no
  generation prompt at all after a tool result.
- `think`: how the model writes reasoning it generated, `{reasoning}` standing for the text;
  None where the mode does not think, so reasoning in the data is dropped (and reported).
- `empty_think`: what is written, never trained, when the mode thinks but the turn has none.
- `final_marker`: what the template writes at the head of a final assistant turn rendered
  without reasoning that the model does not generate as part of its answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class Think(StrEnum):
    ON = "on"
    OFF = "off"


@dataclass(frozen=True)
class NotApplicable:
    """A cell that cannot exist for this family, and why; reported, never skipped silently."""

    reason: str


@dataclass(frozen=True)
class ThinkMode:
    kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    opener: str = ""
    think: str | None = None
    empty_think: str = ""
    final_marker: str = ""
    # a flag the template reads from the system message instead of a kwarg (Nemotron's `/no_think`)
    system_flag: str = ""
    # fixture feature -> why this mode cannot train such a conversation
    unsupported: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def thinks(self) -> bool:
        return self.think is not None

    @property
    def opener_is_empty_think(self) -> bool:
        """The opener closes a think block with nothing in it (Qwen3 / V3.1 think-off)."""
        return "</think>" in self.opener


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    stop_tokens: tuple[str, ...]
    on: ThinkMode | NotApplicable
    off: ThinkMode | NotApplicable
    # what the template writes after the stop token (never generated)
    trailer: str = ""
    # where the template reads reasoning: a message field, or "inline" in content (QwQ)
    reasoning_field: str = "reasoning_content"
    # characters stripped from both ends of reasoning, as the template does
    reasoning_strip: str | None = "\n"
    # tool-call arguments as the template concatenates them: "object" (tojson) or "json" (a JSON string)
    tool_arguments: str = "object"
    # what a tool-call turn's content must be for the template to render the calls
    tool_call_content: str | None = ""
    # whether rendering the conversation with this turn last shows the reasoning the model generated
    template_shows_final_reasoning: bool = False
    # how the template rewrites earlier turns in later prompts (plain words, for reports)
    history: str = "earlier turns are rendered as they were generated"
    template_kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def mode(self, think: Think) -> ThinkMode | NotApplicable:
        return self.on if think is Think.ON else self.off


def _kw(**kwargs: Any) -> Mapping[str, Any]:
    return MappingProxyType(kwargs)


NO_THINKING = NotApplicable("no thinking mode: the template has no think switch and no think tokens")
# Llama 3.1/3.3 default to this date; 3.2 and 4 write today's date unless it is given.
LLAMA_DATE = "26 Jul 2024"

QWEN3_EMPTY = "<think>\n\n</think>\n\n"
TOOL_ONLY_IN_NON_THINKING = (
    "DeepSeek-V3.1 writes tool-call turns in non-thinking form (`<｜Assistant｜></think>` whatever `thinking` is); "
    "its model card supports tool calls in non-thinking mode only"
)
NO_SWITCH_THINKS = NotApplicable("no off switch: the generation prompt always opens <think>")
GEMMA_TOOLS = (
    "Gemma 3's template has no tool support: it drops `tool_calls` and raises on a `tool` message "
    "(roles must alternate user/assistant)"
)
R1_TOOL_ROUNDS = (
    "DeepSeek-R1's template writes only the first tool-call message with its `<｜Assistant｜><｜tool▁calls▁begin｜>` "
    "header (its `is_first` flag is never reset), so a later tool call is written differently as history and as a "
    "reply (found by the property tests)"
)
V3_TOOLS = (
    "DeepSeek-V3's template closes a single tool call with no `<｜tool▁calls▁end｜><｜end▁of▁sentence｜>` "
    "(no stop token to train), and renders the calls only for content=None, which transformers 5 drops"
)

FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        f.name: f
        for f in (
            Family(
                name="qwen2.5",
                title="Qwen2.5",
                stop_tokens=("<|im_end|>",),
                trailer="\n",
                on=NO_THINKING,
                off=ThinkMode(),
            ),
            Family(
                name="qwen3",
                title="Qwen3 (hybrid thinking)",
                stop_tokens=("<|im_end|>",),
                trailer="\n",
                on=ThinkMode(
                    kwargs=_kw(enable_thinking=True),
                    think="<think>\n{reasoning}\n</think>\n\n",
                    empty_think=QWEN3_EMPTY,
                    final_marker=QWEN3_EMPTY,
                ),
                off=ThinkMode(kwargs=_kw(enable_thinking=False), opener=QWEN3_EMPTY, final_marker=QWEN3_EMPTY),
                template_shows_final_reasoning=True,
                history=(
                    "reasoning is kept only for assistant turns after the last user query; the final assistant "
                    "turn always gets a <think> block, empty when it has no reasoning"
                ),
            ),
            Family(
                name="qwq",
                title="QwQ (always thinks)",
                stop_tokens=("<|im_end|>",),
                trailer="\n",
                on=ThinkMode(opener="<think>\n", think="{reasoning}\n</think>\n\n", empty_think="</think>\n\n"),
                off=NotApplicable("no off switch: the generation prompt always opens <think>"),
                reasoning_field="inline",
                template_shows_final_reasoning=True,
                history="earlier assistant turns are cut at </think> (their reasoning is dropped)",
            ),
            Family(
                name="llama3",
                title="Llama 3.x",
                stop_tokens=("<|eot_id|>",),
                on=NO_THINKING,
                off=ThinkMode(),
                template_kwargs=_kw(date_string=LLAMA_DATE),
                history="content is trimmed of surrounding whitespace in every turn",
            ),
            Family(
                name="llama4",
                title="Llama 4",
                stop_tokens=("<|eot|>",),
                on=NO_THINKING,
                off=ThinkMode(),
                template_kwargs=_kw(date_string=LLAMA_DATE),
            ),
            Family(
                name="deepseek-v3",
                title="DeepSeek-V3",
                stop_tokens=("<｜end▁of▁sentence｜>",),
                on=NO_THINKING,
                off=ThinkMode(unsupported=_kw(tools=V3_TOOLS)),
                tool_arguments="json",
                tool_call_content=None,
            ),
            Family(
                name="deepseek-r1",
                title="DeepSeek-R1 (always thinks)",
                stop_tokens=("<｜end▁of▁sentence｜>",),
                on=ThinkMode(
                    opener="<think>\n",
                    think="{reasoning}\n</think>\n\n",
                    empty_think="</think>\n\n",
                    unsupported=_kw(repeated_tools=R1_TOOL_ROUNDS),
                ),
                off=NotApplicable("no off switch: the generation prompt always opens <think>"),
                tool_arguments="json",
                history="every assistant turn is cut at </think>, so no rendered turn keeps its reasoning",
            ),
            Family(
                name="deepseek-v3.1",
                title="DeepSeek-V3.1 (hybrid thinking)",
                stop_tokens=("<｜end▁of▁sentence｜>",),
                on=ThinkMode(
                    kwargs=_kw(thinking=True),
                    opener="<think>",
                    think="{reasoning}</think>",
                    empty_think="</think>",
                    final_marker="</think>",
                    unsupported=_kw(tools=TOOL_ONLY_IN_NON_THINKING),
                ),
                off=ThinkMode(kwargs=_kw(thinking=False), opener="</think>", final_marker="</think>"),
                tool_arguments="json",
                history="earlier assistant turns are written as `</think>` + content (reasoning dropped)",
            ),
            Family(
                name="gpt-oss",
                title="gpt-oss (harmony; always reasons)",
                stop_tokens=("<|return|>", "<|call|>"),
                on=ThinkMode(think="<|channel|>analysis<|message|>{reasoning}<|end|><|start|>assistant"),
                off=NotApplicable(
                    "always reasons: reasoning_effort low/medium/high sets how much, there is no off switch"
                ),
                reasoning_field="thinking",
                reasoning_strip=None,
                template_shows_final_reasoning=True,
                history=(
                    "earlier turns drop their analysis and end with <|end|> instead of <|return|>; a tool call's "
                    "analysis is kept only until a later final answer"
                ),
            ),
            Family(
                name="gemma3",
                title="Gemma 3",
                stop_tokens=("<end_of_turn>",),
                trailer="\n",
                on=NO_THINKING,
                off=ThinkMode(unsupported=_kw(tools=GEMMA_TOOLS)),
                history=(
                    "no system role: the system message is written at the head of the first user turn, followed by "
                    "a blank line; content is trimmed of surrounding whitespace in every turn"
                ),
            ),
            Family(
                name="qwen3-thinking-2507",
                title="Qwen3 2507 Thinking (always thinks)",
                stop_tokens=("<|im_end|>",),
                trailer="\n",
                on=ThinkMode(
                    opener="<think>\n",
                    think="{reasoning}\n</think>\n\n",
                    # The template's final turn reads `<think>\n\n</think>`: that `\n\n` is one token across the
                    # served prompt's `\n`, which no replay allows. Untrained either way, so close right after the opener.
                    empty_think="</think>\n\n",
                    final_marker=QWEN3_EMPTY,
                ),
                off=NO_SWITCH_THINKS,
                template_shows_final_reasoning=True,
                history=(
                    "reasoning is kept only for assistant turns after the last user query; the generation prompt "
                    "always opens <think>\n, so the model writes only the reasoning and the closing </think>"
                ),
            ),
            Family(
                name="qwen3-instruct-2507",
                title="Qwen3 2507 Instruct (never thinks)",
                stop_tokens=("<|im_end|>",),
                trailer="\n",
                on=NotApplicable(
                    "no thinking mode: the model never thinks and the generation prompt opens no think block "
                    "(the template still writes an empty one into a final assistant turn: never trained)"
                ),
                off=ThinkMode(final_marker=QWEN3_EMPTY),
                history=(
                    "the final assistant turn is written with an empty <think>\n\n</think>\n\n block the model never "
                    "generates; earlier turns are written as generated"
                ),
            ),
            Family(
                name="nemotron-v1.5",
                title="Nemotron Super v1.5 (thinks unless /no_think)",
                stop_tokens=("<|eot_id|>",),
                on=ThinkMode(think="<think>\n{reasoning}\n</think>\n\n"),
                off=ThinkMode(system_flag="/no_think", opener=QWEN3_EMPTY, final_marker=""),
                reasoning_field="inline",
                history=(
                    "the switch is `/no_think` in the system message (removed from the text); a system header is "
                    "always written; every assistant turn, the last included, is cut after </think>, so the template "
                    "never shows reasoning"
                ),
            ),
        )
    }
)


def family(name: str) -> Family:
    return FAMILIES[name]
