"""Checking someone else's preprocessor on the matrix: invariants 1-6 and a comparison with the reference.

Used by `cth check MODULE:CALLABLE` and by the pytest plugin's `--cth-preprocessor`. Each cell
runs the plug-in on the cell's conversation (pinned clock), checks its samples against the
reference turn plans, runs it again under two other clocks (determinism), and lists what it
trains that the reference does not, and the reverse. A plug-in may raise
chat_template_harness.external.Unsupported for a cell it does not handle: the cell is then N/A, with its reason.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chat_template_harness import external
from chat_template_harness.checking.baseline import split_allowed
from chat_template_harness.contract import conversation, kinds
from chat_template_harness.contract.invariants import Invariant, Violation, check_determinism, check_samples
from chat_template_harness.contract.sample import Policy, preprocess, resolve_mode
from chat_template_harness.contract.tokens import decode
from chat_template_harness.errors import HarnessError, TemplateDriftError
from chat_template_harness.models import source
from chat_template_harness.models.rules.registry import family_for
from chat_template_harness.outputs.matrix import Cell, Status, declared, error_reason, reasoning_dropped
from chat_template_harness.outputs.view import visible
from chat_template_harness.serving import served as serving


@dataclass(frozen=True)
class CheckResult:
    cell: Cell
    status: Status
    reason: str = ""
    violations: tuple[Violation, ...] = ()
    extra: tuple[str, ...] = ()  # trained by the plug-in, not by the reference (decoded runs)
    missing: tuple[str, ...] = ()  # trained by the reference, not by the plug-in
    error: str = ""  # the plug-in raised: its exception, one line
    allowed: tuple[Violation, ...] = ()  # covered by a named allowance: reported, not failing
    reasoning_dropped: bool = False  # the reference leaves out reasoning the data has (the mode does not think)


def trained_runs(tokenizer: Any, ids: Sequence[int], mask: Sequence[int]) -> list[str]:
    """The decoded text of each contiguous run of trained tokens."""
    runs, current = [], []
    for i, m in zip(ids, mask, strict=True):
        if m:
            current.append(i)
        elif current:
            runs.append(decode(tokenizer, current))
            current = []
    if current:
        runs.append(decode(tokenizer, current))
    return runs


def check_cell(
    plugin: external.Preprocessor,
    cell: Cell,
    tokenizers_dir: Path | str | None = None,
    *,
    allow_drift: bool = False,
    policy: Policy = Policy.ALL,
    timeout: float = external.DEFAULT_TIMEOUT,
    system_prompt: str | None = None,
    allow: frozenset[str] = frozenset(),
    served_by: str = "transformers",
) -> CheckResult:
    verdict = declared(cell)
    if verdict is not None:
        return CheckResult(cell, *verdict)
    loaded = source.load(cell.model, tokenizers_dir, allow_drift=allow_drift)
    fam = family_for(loaded.spec, loaded.tokenizer)
    conv = conversation.load(cell.fixture)
    # what the server really sends (a default system prompt where configured); the plug-in gets the data as it is
    served = conversation.with_system_prompt(conv, system_prompt)
    mode = resolve_mode(fam, cell.think, served)
    request = external.request_for(cell.model, conv, loaded.tokenizer, fam, cell.think, mode)
    vocab = len(loaded.tokenizer)

    def call() -> list[external.ExternalSample]:
        with external.deadline(timeout):
            return external.checked(external.call(plugin, request), vocab)

    try:
        with external.pinned_clock():
            samples = call()
        # 6. determinism: the plug-in again, under two other clocks; still inside the guard
        violations = check_determinism(call)
    except external.Unsupported as exc:
        return CheckResult(cell, Status.NA, f"the preprocessor does not support this cell: {exc}")
    except (Exception, SystemExit) as exc:  # the plug-in's own failure is a finding for this cell, not a crash of the run
        line = traceback.format_exception_only(type(exc), exc)[-1].strip()
        if not isinstance(exc, external.PreprocessorError):
            line += f" ({external.user_frame(exc)})"
        return CheckResult(cell, Status.FAIL, f"the preprocessor raised {line}", error=line)
    # the reference after the plug-in: a cell the plug-in does not support costs no reference render
    try:
        server = serving.served_by(served_by, loaded.tokenizer, fam, mode, served.tools)
        reference = preprocess(loaded.tokenizer, served, fam, cell.think, Policy.ALL, server)
    except TemplateDriftError as error:
        return CheckResult(cell, Status.ERROR, error_reason(cell, error))
    except HarnessError as error:  # the server cannot serve this conversation as sent (its own renderer's error)
        return CheckResult(cell, Status.ERROR, f"{cell.id}: {served_by} cannot serve it: {error}")
    required = [p.turn for p in reference.plans] if policy is Policy.ALL else [reference.plans[-1].turn]
    violations = check_samples(loaded.tokenizer, reference.plans, samples, required_turns=required) + [
        _with_clock_fix(v, loaded.chat_template) for v in violations
    ]
    ours = {_shown(r) for s in reference.samples for r in trained_runs(loaded.tokenizer, s.input_ids, s.loss_mask)}
    theirs = {_shown(r) for s in samples for r in trained_runs(loaded.tokenizer, s.input_ids, s.loss_mask)}
    extra = tuple(sorted(theirs - ours))
    # under `last`, a plug-in that trains only the final turn is right not to train the others
    missing = tuple(sorted(ours - theirs)) if policy is Policy.ALL else ()
    violations, allowed = split_allowed(kinds.by_severity(violations), allow)
    dropped = reasoning_dropped(reference)
    if violations:
        return CheckResult(
            cell, Status.FAIL, violations[0].format().splitlines()[0], tuple(violations), extra, missing, allowed=tuple(allowed),
            reasoning_dropped=dropped,
        )
    return CheckResult(cell, Status.PASS, "", (), extra, missing, allowed=tuple(allowed), reasoning_dropped=dropped)


def _with_clock_fix(violation: Violation, template: str) -> Violation:
    """A date the template takes from the clock with no variable to pin it (gpt-oss): say how to pin it anyway.
    A template that reads no clock at all: the date comes from the preprocessor's own code."""
    import dataclasses

    if violation.invariant is not Invariant.DETERMINISM:
        return violation
    if "strftime_now" not in template and "date_string" not in template:
        return dataclasses.replace(
            violation,
            detail=violation.detail.replace(
                "(pin the date: date_string, frozen clock)",
                "(the chat template reads no clock: your preprocessor writes the date itself, e.g. datetime.now(); "
                "pass a fixed date instead)",
            ),
        )
    if "strftime_now" not in template or "date_string" in template:
        return violation

    return dataclasses.replace(
        violation,
        detail=violation.detail.replace(
            "(pin the date: date_string, frozen clock)",
            "(this template writes strftime_now() with no variable to pin it: freeze the clock around your "
            "apply_chat_template call, e.g. `with time_machine.travel(datetime(2024, 7, 26), tick=False):`)",
        ),
    )


def _shown(text: str) -> str:
    return visible(text).replace("\n", "")


# how much of a decoded run a terminal line shows (`--verbose`: all of it)
MAX_RUN_CHARS = 160
MAX_RUNS = 8


def report_lines(result: CheckResult, *, verbose: bool = False) -> list[str]:
    """The cell's failure, readable: its kinds (worst first), violations with positions and tokens, allowed findings,
    then the comparison."""
    lines = [f"kinds: {kinds.summary(result.violations)}"] if result.violations else []
    lines += [f"{kinds.kind_of(v)} {v.format()}" for v in result.violations] if result.violations else (
        [result.reason] if result.reason else [])
    lines += [f"allowed: {kinds.kind_of(v)} {v.format()}" for v in result.allowed]
    for label, runs in (("trained here, not by the reference", result.extra), ("trained by the reference, not here", result.missing)):
        shown = runs if verbose else runs[:MAX_RUNS]
        lines += [f"{label}: {_cut(r, verbose)}" for r in shown]
        if len(runs) > len(shown):
            lines.append(f"{label}: … {len(runs) - len(shown)} more run(s) (--verbose shows all)")
    return lines


def _cut(run: str, verbose: bool) -> str:
    if verbose or len(run) <= MAX_RUN_CHARS:
        return repr(run)
    return f"{run[:MAX_RUN_CHARS]!r} … (+{len(run) - MAX_RUN_CHARS} characters; --verbose shows all)"
