"""The per-row function: one dataset row -> what it is, what a correct preprocessor trains, and what the
user's preprocessor gets wrong. Both engines (local processes, Ray) call `audit_row`.

Heavy state (the tokenizer, the family, the plug-in) is built once per process by `context()`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from chat_template_harness import external
from chat_template_harness.audit.rows import decode
from chat_template_harness.contract import conversation
from chat_template_harness.contract.invariants import check_samples, token_roles
from chat_template_harness.contract.sample import CellNotApplicable, CellUndecided, Policy, preprocess
from chat_template_harness.contract.turns import REASONING_DROPPED
from chat_template_harness.errors import FixtureError, HarnessError
from chat_template_harness.models import source
from chat_template_harness.models.rules import Family, Think
from chat_template_harness.models.rules.registry import family_for
from chat_template_harness.serving import served

# FixtureError / render failures -> the reason a row is counted under (the first pattern that matches)
REASONS = (
    ("malformed JSON line", r"not valid JSON|nests JSON too deeply"),
    ("empty conversation", r"non-empty list|no `messages` or `conversations`|an empty list"),
    ("unknown role", r"unknown role|unknown ShareGPT speaker"),
    ("no final assistant turn", r"not an assistant turn"),
    ("no user message", r"has no user message"),
    ("tool result without a call", r"tool result with no earlier tool call"),
    ("two assistant turns in a row", r"two assistant messages in a row"),
    ("unclosed <think> in a reply", r"never closes it"),
    ("content that is not text", r"content of type|content parts of type"),
    ("invalid text (NUL, lone surrogate)", r"NUL character|lone surrogate"),
    ("bad reasoning", r"reasoning"),
    ("bad tool call", r"tool call|tool_calls"),
)


@dataclass(frozen=True)
class Settings:
    model: str
    think: str
    policy: str = "all"
    preprocessor: str | None = None
    tokenizers_dir: str | None = None
    allow_drift: bool = False
    served_by: str = "transformers"  # whose served prompt the reference replays (serving/profiles.py)


@dataclass
class RowOutcome:
    row: int
    rejected: str = ""  # the reason category; "" for a usable row
    detail: str = ""  # the one-line error, or the first violation
    tokens: dict[str, int] = field(default_factory=dict)  # reference samples' tokens per kind
    samples: int = 0
    reasoning_dropped: bool = False
    whitespace_dropped: bool = False
    reference_violations: int = 0  # the harness's own samples breaking the contract: a harness bug
    violations: dict[str, int] = field(default_factory=dict)  # the plug-in's, per invariant number
    wrong_tokens: dict[str, int] = field(default_factory=dict)  # trained by the plug-in, not trainable, per kind
    plugin_error: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> RowOutcome:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Context:
    settings: Settings
    tokenizer: Any
    family: Family
    think: Think
    plugin: Any


@cache
def context(settings: Settings) -> Context:
    loaded = source.load(settings.model, settings.tokenizers_dir, allow_drift=settings.allow_drift)
    plugin = external.load_callable(settings.preprocessor) if settings.preprocessor else None
    return Context(settings, loaded.tokenizer, family_for(loaded.spec, loaded.tokenizer), Think(settings.think), plugin)


UNDECIDED_ROWS = "a rule the template does not prove is undecided"


def audit_row(settings: Settings, number: int, raw: Any) -> RowOutcome:
    """Never raises for a bad row: the row is counted under its reason."""
    ctx = context(settings)
    try:
        conv = conversation.parse(decode(raw), name=f"row {number}", source=f"row {number}")
    except json.JSONDecodeError as exc:
        return RowOutcome(number, "malformed JSON line", f"line {number}: {exc.msg}")
    except RecursionError:
        return RowOutcome(number, "malformed JSON line", f"line {number}: nested too deeply")
    except FixtureError as exc:
        return RowOutcome(number, _reason(exc.message), exc.message)
    try:
        server = served.for_conversation(settings.served_by, ctx.tokenizer, ctx.family, ctx.think, conv)
        result = preprocess(ctx.tokenizer, conv, ctx.family, ctx.think, Policy(settings.policy), server)
    except CellNotApplicable as na:
        return RowOutcome(number, "not applicable to this model and mode", na.reason)
    except CellUndecided as undecided:  # never trained on a guessed rule; counted, with the question and the fix
        return RowOutcome(number, UNDECIDED_ROWS, str(undecided))
    except HarnessError as exc:  # the template itself cannot render this conversation
        return RowOutcome(number, "the template cannot render it", exc.message)
    out = RowOutcome(number, samples=len(result.samples))
    out.tokens = dict(_token_kinds(result))
    notes = [n for p in result.plans for n in p.notes]
    out.reasoning_dropped = any(n.startswith(REASONING_DROPPED) for n in notes)
    out.whitespace_dropped = any(n.startswith("leading whitespace") for n in notes)
    required = None if settings.policy == "all" else [result.plans[-1].turn]
    out.reference_violations = len(check_samples(ctx.tokenizer, result.plans, result.samples, required_turns=required))
    if ctx.plugin is not None:
        _check_plugin(ctx, conv, result, out)
    return out


def _check_plugin(ctx: Context, conv: conversation.Conversation, result: Any, out: RowOutcome) -> None:
    mode = ctx.family.mode(ctx.think)
    request = external.request_for(ctx.settings.model, conv, ctx.tokenizer, ctx.family, ctx.think, mode)
    try:
        with external.deadline(external.DEFAULT_TIMEOUT):
            samples = external.checked(external.run(ctx.plugin, request), len(ctx.tokenizer))
    except external.Unsupported as exc:
        out.plugin_error = f"unsupported: {exc}"
        return
    except (Exception, SystemExit) as exc:
        out.plugin_error = f"{type(exc).__name__}: {exc}"
        out.violations = {"error": 1}
        return
    required = [p.turn for p in result.plans] if ctx.settings.policy == "all" else [result.plans[-1].turn]
    found = check_samples(ctx.tokenizer, result.plans, samples, required_turns=required)
    out.violations = dict(Counter(str(v.invariant.number) for v in found))
    if found:
        out.detail = found[0].format().splitlines()[0]
    wrong: Counter[str] = Counter()
    for sample in samples:
        roles = token_roles(ctx.tokenizer, result.plans, sample.input_ids)
        wrong.update(role.kind.value for role, m in zip(roles, sample.loss_mask, strict=True) if m and not role.trainable)
    out.wrong_tokens = dict(wrong)


def _token_kinds(result: Any) -> Counter[str]:
    counts: Counter[str] = Counter()
    for sample in result.samples:
        for span in sample.spans:
            counts[span.kind.value] += span.end_token - span.first_token
    return counts


def _reason(message: str) -> str:
    return next((name for name, pattern in REASONS if re.search(pattern, message)), "other input error")
