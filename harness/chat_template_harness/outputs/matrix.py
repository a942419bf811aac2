"""The matrix: every registered tokenizer x think mode x fixture, each cell run and judged.

A cell is N/A when the family rules say so (no such think mode, or the mode cannot express
something the fixture needs); that is decided from the rules alone, before any tokenizer loads,
so the N/A list is the same on every machine. Every other cell is preprocessed by the reference
and checked against the invariants; a cell whose template errs or drifts from the rules is an
ERROR cell, named, and the run goes on to the next one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from chat_template_harness.contract import conversation, kinds
from chat_template_harness.contract.invariants import Violation, check_determinism, check_samples
from chat_template_harness.contract.sample import CellNotApplicable, Policy, Preprocessed, preprocess, resolve_mode
from chat_template_harness.errors import HarnessError, TemplateDriftError
from chat_template_harness.models import source
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family_for
from chat_template_harness.models.source import LoadedTokenizer
from chat_template_harness.serving import served


@dataclass(frozen=True, order=True)
class Cell:
    model: str
    think: Think
    fixture: str

    @property
    def id(self) -> str:
        return f"{self.model}/think-{self.think}/{self.fixture}"


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NA = "n/a"
    ERROR = "error"  # the template cannot render this cell as the rules say (drift, a raise): named, the run goes on

    @property
    def failing(self) -> bool:
        return self in (Status.FAIL, Status.ERROR)


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    status: Status
    reason: str = ""  # the N/A reason, or a one-line summary of the failure
    result: Preprocessed | None = None
    violations: tuple[Violation, ...] = ()
    loaded: LoadedTokenizer | None = None  # provenance for reports and golden headers
    served_by: str = "transformers"  # whose served prompt the samples replay (serving/profiles.py)


def cells(
    models: Sequence[str] | None = None, thinks: Sequence[Think] | None = None, fixtures: Sequence[str] | None = None
) -> list[Cell]:
    names = [source.get_model(m).name for m in models] if models else source.default_models()
    return [
        Cell(m, t, f)
        for m in names
        for t in (thinks or list(Think))
        for f in (fixtures or conversation.fixture_names())
    ]


def na_reason(cell: Cell) -> str | None:
    """The declared reason this cell cannot exist, or None (needs no tokenizer)."""
    fam = family_for(source.get_model(cell.model))
    try:
        resolve_mode(fam, cell.think, conversation.load(cell.fixture))
    except CellNotApplicable as na:
        return na.reason
    return None


def run_cell(
    cell: Cell,
    tokenizers_dir: Path | str | None = None,
    *,
    allow_drift: bool = False,
    policy: Policy = Policy.ALL,
    determinism: bool = True,
    served_by: str = "transformers",
) -> CellResult:
    """One cell: the reference's samples (on `served_by`'s served prompt) checked against the invariants."""
    reason = na_reason(cell)
    if reason is not None:
        return CellResult(cell, Status.NA, reason, served_by=served_by)
    loaded = source.load(cell.model, tokenizers_dir, allow_drift=allow_drift)
    fam = family_for(loaded.spec, loaded.tokenizer)
    conv = conversation.load(cell.fixture)
    server = served.for_conversation(served_by, loaded.tokenizer, fam, cell.think, conv)

    def produce() -> tuple:
        return preprocess(loaded.tokenizer, conv, fam, cell.think, policy, server).samples

    try:
        result = preprocess(loaded.tokenizer, conv, fam, cell.think, policy, server)
    except TemplateDriftError as error:
        return CellResult(cell, Status.ERROR, error_reason(cell, error), loaded=loaded, served_by=served_by)
    except HarnessError as error:  # the server's own renderer refuses this conversation as sent
        return CellResult(cell, Status.ERROR, f"{served_by} cannot serve it: {error}", loaded=loaded, served_by=served_by)
    required = None if policy is Policy.ALL else [result.plans[-1].turn]
    violations = check_samples(loaded.tokenizer, result.plans, result.samples, required_turns=required)
    if determinism:
        violations += check_determinism(produce)
    if violations:
        violations = kinds.by_severity(violations)
        first = violations[0].format().splitlines()[0]
        return CellResult(cell, Status.FAIL, first, result, tuple(violations), loaded, served_by)
    return CellResult(cell, Status.PASS, "", result, (), loaded, served_by)


def error_reason(cell: Cell, error: TemplateDriftError) -> str:
    """One line for a cell the template cannot render as the rules say: which cell, what, and the fix."""
    return f"the template does not render this cell as the rules say: {error}"


def run(
    cells_: Iterable[Cell], tokenizers_dir: Path | str | None = None, *, allow_drift: bool = False, served_by: str = "transformers"
) -> list[CellResult]:
    return [run_cell(c, tokenizers_dir, allow_drift=allow_drift, served_by=served_by) for c in cells_]
