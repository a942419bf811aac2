"""The per-row function: one dataset row -> what it is, what a correct preprocessor trains, and what the
user's preprocessor gets wrong. Both engines (local processes, Ray) call `audit_row`.

Heavy state (the tokenizer, the family, the preprocessor) is built once per process by `context()`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from chat_template_harness import external
from chat_template_harness.audit.rows import NOT_UTF8, Unreadable, decode
from chat_template_harness.cells import model as cells
from chat_template_harness.cells.run import run_conversation
from chat_template_harness.contract import conversation
from chat_template_harness.contract.invariants import check_samples, token_roles
from chat_template_harness.contract.sample import Policy
from chat_template_harness.errors import FixtureError
from chat_template_harness.models import memo, source
from chat_template_harness.models.rules import Family, Think
from chat_template_harness.models.rules.registry import family_for

# a FixtureError's code -> the reason a rejected row is counted under
REASONS = {
    "malformed-json": "malformed JSON line",
    "empty-conversation": "empty conversation",
    "unknown-role": "unknown role",
    "no-final-assistant": "no final assistant turn",
    "no-user-message": "no user message",
    "tool-result-without-call": "tool result without a call",
    "two-assistant-turns": "two assistant turns in a row",
    "unclosed-think": "unclosed <think> in a reply",
    "not-text": "content that is not text",
    "invalid-text": "invalid text (NUL, lone surrogate)",
    "bad-reasoning": "bad reasoning",
    "bad-tool-call": "bad tool call",
}


@dataclass(frozen=True)
class Job:
    """What one audit runs (pickled to every worker): the model and mode, the user's preprocessor, and the run's
    settings (cells/model.py), built once by the entry point."""

    model: str
    think: str
    preprocessor: str | None = None
    settings: cells.Settings = cells.Settings(determinism=False)

    @property
    def policy(self) -> str:
        return str(self.settings.policy)


@dataclass
class RowOutcome:
    row: int
    rejected: str = ""  # the reason category; "" for a usable row
    detail: str = ""  # the one-line error, or the first violation
    tokens: dict[str, int] = field(default_factory=dict)  # reference samples' tokens per kind
    samples: int = 0
    reasoning_dropped: bool = False  # the mode drops the data's reasoning (a turn note says so, `Note.drops_reasoning`)
    reference_violations: int = 0  # the harness's own samples breaking the contract: a harness bug
    violations: dict[str, int] = field(default_factory=dict)  # the preprocessor's, per invariant number
    wrong_tokens: dict[str, int] = field(default_factory=dict)  # trained by the preprocessor, not trainable, per kind
    preprocessor_error: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> RowOutcome:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Context:
    job: Job
    loaded: source.LoadedTokenizer
    family: Family
    think: Think
    preprocessor: Any


@memo.kept
@cache
def context(job: Job) -> Context:
    settings = job.settings
    loaded = source.load(job.model, settings.tokenizers_dir, allow_drift=settings.allow_drift)
    preprocessor = external.load_callable(job.preprocessor) if job.preprocessor else None
    return Context(job, loaded, family_for(loaded.spec, loaded.tokenizer), Think(job.think), preprocessor)


UNDECIDED_ROWS = "a rule the template does not prove is undecided"


def audit_row(job: Job, number: int, raw: Any) -> RowOutcome:
    """Never raises for a bad row: the row is counted under its reason. The row is a cell whose conversation comes
    from the data, run by the one runner."""
    ctx = context(job)
    if isinstance(raw, Unreadable):
        return RowOutcome(number, NOT_UTF8, raw.detail)
    try:
        conv = conversation.parse(decode(raw), name=f"row {number}", source=f"row {number}")
    except json.JSONDecodeError as exc:
        return RowOutcome(number, "malformed JSON line", f"line {number}: {exc.msg}")
    except RecursionError:
        return RowOutcome(number, "malformed JSON line", f"line {number}: nested too deeply")
    except FixtureError as exc:
        return RowOutcome(number, REASONS.get(exc.code, "other input error"), exc.message)
    cell = cells.Cell(job.model, ctx.think, f"row {number}")
    checked = run_conversation(cell, ctx.loaded, conv, job.settings, ctx.preprocessor, ctx.family)
    if checked.code == "na.rules":
        return RowOutcome(number, "not applicable to this model and mode", checked.reason)
    if checked.code == "undecided":  # never trained on a guessed rule; counted, with the question and the fix
        return RowOutcome(number, UNDECIDED_ROWS, checked.reason)
    if checked.code.startswith("error."):  # the template itself cannot render this conversation
        return RowOutcome(
            number, "the template cannot render it", checked.raised.message if checked.raised else checked.reason
        )
    out = RowOutcome(number)
    result = checked.result
    if result is not None:
        out.samples = len(result.samples)
        out.tokens = dict(_token_kinds(result))
        out.reasoning_dropped = any(n.drops_reasoning for p in result.plans for n in p.notes)
    if ctx.preprocessor is None:
        out.reference_violations = len(checked.violations)
        return out
    if result is not None:  # the reference's own samples breaking the contract: a harness bug, counted apart
        required = None if job.settings.policy is Policy.ALL else [result.plans[-1].turn]
        out.reference_violations = len(
            check_samples(ctx.loaded.tokenizer, result.plans, result.samples, required_turns=required)
        )
    _preprocessor_findings(ctx, checked, out)
    return out


def _preprocessor_findings(ctx: Context, checked: cells.CellResult, out: RowOutcome) -> None:
    if checked.code == "na.preprocessor":
        out.preprocessor_error = f"unsupported: {checked.error}"
        return
    if checked.code == "fail.raised":
        out.preprocessor_error = checked.error
        out.violations = {"error": 1}
        return
    out.violations = dict(Counter(str(v.invariant.number) for v in checked.violations))
    if checked.violations:
        out.detail = checked.violations[0].format().splitlines()[0]
    wrong: Counter[str] = Counter()
    assert checked.result is not None
    for sample in checked.samples:
        roles = token_roles(ctx.loaded.tokenizer, checked.result.plans, sample.input_ids)
        wrong.update(
            role.kind.value for role, m in zip(roles, sample.loss_mask, strict=True) if m and not role.trainable
        )
    out.wrong_tokens = dict(wrong)


def _token_kinds(result: Any) -> Counter[str]:
    counts: Counter[str] = Counter()
    for sample in result.samples:
        for span in sample.spans:
            counts[span.kind.value] += span.end_token - span.first_token
    return counts
