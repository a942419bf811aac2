"""The one runner: a cell (or a dataset row, as a cell whose conversation comes from the data) in, a verdict out.

Without a preprocessor the cell's samples are the reference's (contract/sample.py), checked against the
invariants (`cth matrix`, goldens, `render`/`show`). With one, the preprocessor's samples are checked
against the reference's turn plans and compared with the reference's trained runs (`cth check`, the
plugin, the audit, the smoke step). Every verdict carries a code (CellResult.code) for the modules above.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import sys
from collections.abc import Callable, Iterable
from typing import Any

from chat_template_harness import external
from chat_template_harness.cells import guard
from chat_template_harness.cells.model import Cell, CellResult, Settings, Status, declared
from chat_template_harness.contract import conversation, dates, kinds
from chat_template_harness.contract.invariants import Violation, check_determinism, check_samples
from chat_template_harness.contract.sample import (
    CellNotApplicable,
    CellUndecided,
    Policy,
    Preprocessed,
    preprocess,
    resolve_mode,
)
from chat_template_harness.contract.tokens import decode
from chat_template_harness.errors import HarnessError, TemplateDriftError
from chat_template_harness.models import source
from chat_template_harness.models.rules import Family
from chat_template_harness.models.rules.registry import family_for
from chat_template_harness.serving import served

DEFAULT = Settings()


def run(
    cells: Iterable[Cell], settings: Settings = DEFAULT, *, workers: int = 1, tick: Callable[[int], None] | None = None
) -> list[CellResult]:
    """Every cell, in order. With `workers` > 1 the models' cells run in that many processes, a model's cells in one
    (each tokenizer is made once, where its cells run, while the other processes make theirs: loading is most of a
    matrix); the results come back with their provenance, not the tokenizer (`LoadedTokenizer.__reduce__`).
    `tick(n)` is called as n more cells are done."""
    cells = list(cells)
    groups: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        if declared(cell) is None:  # a cell the rules decide alone needs no tokenizer: it runs here
            groups.setdefault(cell.model, []).append(i)
    if workers <= 1 or len(groups) <= 1:
        out = []
        for c in cells:
            out.append(run_cell(c, settings))
            if tick:
                tick(1)
        return out
    results: list[CellResult | None] = [None] * len(cells)
    grouped = {i for g in groups.values() for i in g}
    here = [i for i in range(len(cells)) if i not in grouped]
    for i in here:
        results[i] = run_cell(cells[i], settings)
    if tick and here:
        tick(len(here))
    tasks = [
        (g, [cells[i] for i in g], settings)
        for g in sorted(groups.values(), key=lambda g: -_load_cost(cells[g[0]], settings))
    ]
    source.import_loaders()  # once here, not once per worker
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with context.Pool(min(workers, len(tasks))) as pool:
        for indices, done in pool.imap_unordered(_run_group, tasks):
            for i, result in zip(indices, done, strict=True):
                results[i] = result
            if tick:
                tick(len(done))
        pool.close()
        pool.join()  # the workers exit (and are counted in the caller's resource usage) before the results are used
    return [r for r in results if r is not None]


def _run_group(task: tuple[list[int], list[Cell], Settings]) -> tuple[list[int], list[CellResult]]:
    indices, group, settings = task
    return indices, [run_cell(c, settings) for c in group]


def _load_cost(cell: Cell, settings: Settings) -> int:
    """Bytes of the model's tokenizer files where they are already found (the largest loads go first), else 0."""
    base = source.absolute(settings.tokenizers_dir) if settings.tokenizers_dir else source.tokenizers_dir_from_env()
    try:
        directory, _ = source.locate(source.get_model(cell.model), base, download=False)
    except (HarnessError, OSError):
        return 0
    return sum(f.stat().st_size for f in directory.iterdir() if f.is_file())


def run_cell(cell: Cell, settings: Settings, preprocessor: external.Preprocessor | None = None) -> CellResult:
    """One cell of the matrix: N/A or UNDECIDED from the rules alone (no tokenizer loads), else run."""
    verdict = declared(cell)
    if verdict is not None:
        status, reason, code = verdict
        return CellResult(cell, status, reason, served_by=settings.served_by, code=code)
    loaded = source.load(cell.model, settings.tokenizers_dir, allow_drift=settings.allow_drift)
    return run_conversation(cell, loaded, conversation.load(cell.fixture), settings, preprocessor)


def run_conversation(
    cell: Cell,
    loaded: source.LoadedTokenizer,
    conv: conversation.Conversation,
    settings: Settings,
    preprocessor: external.Preprocessor | None = None,
    family: Family | None = None,
) -> CellResult:
    """One conversation on a loaded tokenizer: the reference's samples, or the preprocessor's, judged."""
    fam = family or family_for(loaded.spec, loaded.tokenizer)
    # what the server really sends (a default system prompt where configured); a preprocessor gets the data as it is
    sent = conversation.with_system_prompt(conv, settings.system_prompt)
    base = CellResult(cell, Status.NA, loaded=loaded, served_by=settings.served_by)
    try:
        mode = resolve_mode(fam, cell.think, sent)
    except CellNotApplicable as na:
        return dataclasses.replace(base, reason=na.reason, code="na.rules")
    except CellUndecided as undecided:  # the samples need a rule no render proves: the question, never a guess
        return dataclasses.replace(base, status=Status.UNDECIDED, reason=str(undecided), code="undecided")
    called: tuple[list[external.ExternalSample], list[Violation]] | None = None
    if preprocessor is not None:
        request = external.request_for(cell.model, conv, loaded.tokenizer, fam, cell.think, mode)
        outcome = _call(preprocessor, request, loaded, settings, base)
        if isinstance(outcome, CellResult):
            return outcome
        called = outcome
    # the reference after the preprocessor: a cell it declines costs no reference render
    policy = settings.policy if preprocessor is None else Policy.ALL

    def produce() -> Preprocessed:
        server = served.served_by(settings.served_by, loaded.tokenizer, fam, mode, sent.tools)
        return preprocess(loaded.tokenizer, sent, fam, cell.think, policy, server)

    reference = _reference(produce, base, settings)
    if isinstance(reference, CellResult):
        return reference
    base = dataclasses.replace(base, result=reference)
    if called is None:
        required = None if settings.policy is Policy.ALL else [reference.plans[-1].turn]
        found = check_samples(loaded.tokenizer, reference.plans, reference.samples, required_turns=required)
        if settings.determinism:
            found += check_determinism(lambda: produce().samples)
        return _verdict(base, found, settings)
    return _judge(base, loaded, reference, called, settings)


def _call(
    preprocessor: external.Preprocessor,
    request: external.Request,
    loaded: source.LoadedTokenizer,
    settings: Settings,
    base: CellResult,
) -> tuple[list[external.ExternalSample], list[Violation]] | CellResult:
    """The preprocessor's samples and the clock's findings, or the cell's verdict where it declines or raises."""
    try:
        return guard.call(
            preprocessor,
            request,
            vocab=len(loaded.tokenizer),
            timeout=settings.timeout,
            determinism=settings.determinism,
        )
    except external.Unsupported as exc:
        reason = f"the preprocessor does not support this cell: {exc}"
        return dataclasses.replace(base, reason=reason, error=str(exc), code="na.preprocessor")
    except (Exception, SystemExit) as exc:  # the preprocessor's own failure is a finding for this cell, not a crash
        line = guard.raised_line(exc)
        reason = f"the preprocessor raised {line}"
        return dataclasses.replace(base, status=Status.FAIL, reason=reason, error=line, code="fail.raised")


def _reference(produce: Callable[[], Preprocessed], base: CellResult, settings: Settings) -> Preprocessed | CellResult:
    """The reference's samples, or the ERROR verdict where the template or the server's renderer refuses them."""
    try:
        return produce()
    except TemplateDriftError as error:
        reason = f"the template does not render this cell as the rules say: {error}"
        return dataclasses.replace(base, status=Status.ERROR, code="error.drift", raised=error, reason=reason)
    except HarnessError as error:  # the server's own renderer refuses this conversation as sent
        reason = f"{settings.served_by} cannot serve it: {error}"
        return dataclasses.replace(base, status=Status.ERROR, code="error.server", raised=error, reason=reason)


def _judge(
    base: CellResult,
    loaded: source.LoadedTokenizer,
    reference: Preprocessed,
    called: tuple[list[external.ExternalSample], list[Violation]],
    settings: Settings,
) -> CellResult:
    """A preprocessor's samples against the reference's plans, and its trained runs against the reference's."""
    theirs, clock = called
    required = [p.turn for p in reference.plans] if settings.policy is Policy.ALL else [reference.plans[-1].turn]
    # a date of the preprocessor's own where the served prompt has the pinned one: D, and judged otherwise as re-dated
    dated = dates.written_dates(loaded.tokenizer, reference.plans, theirs)
    plans = dates.redated(reference.plans, dated)
    found = (
        dates.violations(dated)
        + check_samples(loaded.tokenizer, plans, theirs, required_turns=required)
        + [_with_clock_source(v, loaded.chat_template) for v in clock]
    )
    ours = {r for s in reference.samples for r in trained_runs(loaded.tokenizer, s.input_ids, s.loss_mask)}
    runs = {r for s in theirs for r in trained_runs(loaded.tokenizer, s.input_ids, s.loss_mask)}
    # under `last`, a preprocessor that trains only the final turn is right not to train the others
    base = dataclasses.replace(
        base,
        samples=tuple(theirs),
        extra=tuple(sorted(runs - ours)),
        missing=tuple(sorted(ours - runs)) if settings.policy is Policy.ALL else (),
    )
    return _verdict(base, found, settings)


def _verdict(base: CellResult, found: list[Violation], settings: Settings) -> CellResult:
    failing, allowed = kinds.split_allowed(kinds.by_severity(found), settings.allow)
    if failing:
        return dataclasses.replace(
            base,
            status=Status.FAIL,
            reason=failing[0].format().splitlines()[0],
            violations=tuple(failing),
            allowed=tuple(allowed),
            code="fail.violations",
        )
    return dataclasses.replace(base, status=Status.PASS, allowed=tuple(allowed), code="pass")


def _with_clock_source(violation: Violation, template: str) -> Violation:
    """Where a preprocessor's date moves with the clock, name where the date comes from (a code; the text is the
    reader's): the template's clock with no variable to pin it, or the preprocessor's own code."""
    if violation.code != "clock":
        return violation
    if "strftime_now" not in template and "date_string" not in template:
        return dataclasses.replace(violation, code="clock.own-code")
    if "strftime_now" in template and "date_string" not in template:
        return dataclasses.replace(violation, code="clock.unpinnable")
    return violation


def trained_runs(tokenizer: Any, ids: Any, mask: Any) -> list[str]:
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
