"""What family rules say: what a family's real chat template does, per think mode.

The rules themselves are data (`builtin/*.toml`, or a user's rules file, or derived from a
template by `derive.py`); this module is their shape. tests/test_families.py checks every
built-in rule against the pack's real templates, so a changed template fails there (and in the
goldens) instead of silently changing what gets trained.

Words (see docs/contract.md):
- `opener`: what the generation prompt writes after the assistant header in this mode, which
  the model therefore never generates (QwQ/R1 `<think>\n`, V3.1 `<think>` / `</think>`,
  Qwen3 think-off's empty block). Not every served prompt has it: DeepSeek writes no
  generation prompt at all after a tool result.
- `think`: how the model writes reasoning it generated, `{reasoning}` standing for the text;
  None where the mode does not think, so reasoning in the data is dropped (and reported).
- `empty_think`: what is written, never trained, when the mode thinks but the turn has none.
- `final_marker`: what the template writes at the head of a final assistant turn rendered
  without reasoning that the model does not generate as part of its answer.
- `before_answer`: what the model writes after a prompt that closes an empty think block, before
  its answer (trained), where no render shows a turn going on from that block (llama.cpp's QwQ
  think-off ends the prompt `<think>\n</think>`, and its finished turn drops the block).
- `undecided`: the rules no render proves (derive.py), each with its question and the rules-file line
  that answers it. Such a rule is never defaulted: a cell that needs it is UNDECIDED (`needs`).
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
class Undecided:
    """A rule the template's renders do not prove: never guessed; the question, and the line that answers it."""

    rule: str  # the rules-file key: `stop_tokens`, `think.on.think`, `tool_arguments`
    code: str  # what kind of question, for code: one of ANSWERS' keys
    question: str

    @property
    def answer(self) -> str:
        """The rules-file line a person writes to decide it (under the table its key names)."""
        table, _, key = self.rule.rpartition(".")
        example = ANSWERS[self.code]
        return f"[{table}] {key} = {example}" if table else f"{key} = {example}"

    @property
    def message(self) -> str:
        return f"undecided {self.rule}: {self.question}"

    @property
    def fix(self) -> str:
        return (
            f"write `{self.answer}` in the model's rules file (`cth derive MODEL --write FILE`, then "
            f'`rules = "FILE"` under [tool.cth.models.NAME]) and delete `{self.rule}` from its [undecided] table'
        )

    def line(self) -> str:
        """One line, the same in every command: the question and the fix."""
        return f"{self.message}; fix: {self.fix}"


# code -> an example value of the line that answers it (the person writes the model's real one)
ANSWERS: Mapping[str, str] = MappingProxyType(
    {
        "stop": '["<the token the model ends a turn with>"]',
        "reasoning-format": '"<open>{reasoning}<close>"',
        "reasoning-field": '"reasoning_content"   # the field the template reads; and each mode\'s think = "<open>{reasoning}<close>"',
        "self-opening": '"<open>{reasoning}<close>"   # the model opens its think block itself: its format',
        "tool-form": '"object"   # or "json"',
        "answer-start": '"\\n\\n"   # what the model writes after the served prompt, before its answer ("" for nothing)',
    }
)


@dataclass(frozen=True)
class ThinkMode:
    kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    opener: str = ""
    think: str | None = None
    empty_think: str = ""
    final_marker: str = ""
    # what the model writes after the prompt's closed empty block before its answer, where no render shows it
    before_answer: str = ""
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
    # where the template reads reasoning: a message field, "inline" in content (QwQ), or a content form (typed blocks
    # of content, data/reasoning_forms.toml: Apertus's "blocks:thoughts")
    reasoning_field: str = "reasoning_content"
    # characters stripped from both ends of reasoning, as the template does
    reasoning_strip: str | None = "\n"
    # tool-call arguments as the template concatenates them: "object" (tojson) or "json" (a JSON string)
    tool_arguments: str = "object"
    # how the template reads a message's content: "string", or "parts" (a list of typed parts, text as
    # {"type": "text", "text": ...}: Idefics3's, SmolVLM's and LLaVA-Next's templates write nothing of a string,
    # and vLLM and SGLang send such a template every string content as one text part)
    content_format: str = "string"
    # what a tool-call turn's content must be for the template to render the calls
    tool_call_content: str | None = ""
    # whether rendering the conversation with this turn last shows the reasoning the model generated
    template_shows_final_reasoning: bool = False
    # how the template rewrites earlier turns in later prompts (plain words, for reports)
    history: str = "earlier turns are rendered as they were generated"
    template_kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # a family whose turns end with no token of their own: the model stops by generating the next turn's
    # header (GLM: `<|user|>` after a reply, `<|observation|>` after a tool call), which is then its stop token.
    # Keys "reply" and "tool_call"; empty: a turn ends with one of `stop_tokens`, as the template writes it.
    next_header: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # who renders the served prompt in every server: "template" (transformers' apply_chat_template, the contract's),
    # or "mistral-common" (ids from encode_chat_completion, as vLLM, SGLang and transformers 5 serve Mistral models)
    renderer: str = "template"
    # rules kept by hand where derivation (rules/derive.py) reads the template differently: rule -> why
    reviewed: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # rules no render proves: never defaulted; a cell that needs one is UNDECIDED (see `needs`)
    undecided: tuple[Undecided, ...] = ()

    def mode(self, think: Think) -> ThinkMode | NotApplicable:
        return self.on if think is Think.ON else self.off


def needs(family: Family, think: Think, features: frozenset[str], mode: ThinkMode) -> tuple[Undecided, ...]:
    """The undecided rules a cell's samples would use: by what the conversation needs, not all of them.

    Every sample trains a stop token; reasoning needs the mode's format, and so does a prompt that leaves a
    block open for the model to close (or a model that opens its block itself: every turn writes one);
    tool calls need the tool forms.
    """
    prefix = f"think.{think}."
    opens = bool(mode.opener.strip()) and not mode.opener_is_empty_think
    wanted: list[Undecided] = []
    for u in family.undecided:
        if u.rule == "stop_tokens" or (u.code == "answer-start" and u.rule.startswith(prefix)):
            wanted.append(u)  # every sample trains a stop, and every answer in a mode that closes a block starts so
        elif (
            (u.rule.startswith(prefix) or u.rule == "reasoning_field")
            and mode.thinks
            and ("reasoning" in features or opens or u.code == "self-opening")
        ):
            wanted.append(u)
        elif u.rule in ("tool_arguments", "tool_call_content") and "tools" in features:
            wanted.append(u)
    return tuple(wanted)
