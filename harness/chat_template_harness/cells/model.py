"""The vocabulary of a run: Cell, Status (every verdict), Settings (built once, at the entry point), CellResult."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from chat_template_harness.contract import conversation
from chat_template_harness.contract.sample import CellNotApplicable, CellUndecided, Policy, resolve_mode
from chat_template_harness.errors import HarnessError, TemplateDriftError
from chat_template_harness.models import source, userconfig
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family_for

if TYPE_CHECKING:
    from chat_template_harness.contract.invariants import Violation
    from chat_template_harness.contract.sample import Preprocessed
    from chat_template_harness.external import ExternalSample
    from chat_template_harness.models.source import LoadedTokenizer

# seconds one call of a user's preprocessor may take on one cell before the cell fails (the run goes on)
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True, order=True)
class Cell:
    model: str
    think: Think
    fixture: str  # a built-in fixture's name, or a path to a conversation file

    @property
    def id(self) -> str:
        return f"{self.model}/think-{self.think}/{self.fixture}"


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NA = "n/a"
    ERROR = "error"  # the template cannot render this cell as the rules say (drift, a raise): named, the run goes on
    UNDECIDED = "undecided"  # the cell needs a rule no render proves: the question and its fix, never a guess

    @property
    def failing(self) -> bool:
        return self in (Status.FAIL, Status.ERROR, Status.UNDECIDED)


# the allowance that lets UNDECIDED cells through a run (reported as allowed, still counted)
ALLOW_UNDECIDED = "undecided"


def fails_run(status: Status, allow: frozenset[str] | set[str] = frozenset()) -> bool:
    """Whether this verdict fails a CI run: FAIL and ERROR always, UNDECIDED unless allowed."""
    return status.failing and not (status is Status.UNDECIDED and ALLOW_UNDECIDED in allow)


@dataclass(frozen=True)
class Settings:
    """How every cell of one run is run; built once by the entry point (CLI command, plugin, audit)."""

    tokenizers_dir: Path | str | None = None
    allow_drift: bool = False
    served_by: str = "transformers"  # whose served prompt the samples replay (serving/profiles.py)
    policy: Policy = Policy.ALL
    determinism: bool = True  # invariant 6: run again under two other clocks
    timeout: float = DEFAULT_TIMEOUT  # per call of a user's preprocessor
    system_prompt: str | None = None  # the server's default system prompt, where it adds one
    allow: frozenset[str] = frozenset()  # named allowances (checking/baseline.py ALLOWANCES)


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    status: Status
    reason: str = ""  # the N/A reason, or a one-line summary of the failure
    result: Preprocessed | None = None  # the reference's samples (the cell's own, when no preprocessor ran)
    violations: tuple[Violation, ...] = ()
    loaded: LoadedTokenizer | None = None  # provenance for reports and golden headers
    served_by: str = "transformers"
    # where a user's preprocessor ran: the decoded runs it trains that the reference does not, and the reverse
    extra: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    error: str = ""  # the preprocessor raised: its exception, one line
    allowed: tuple[Violation, ...] = ()  # covered by a named allowance: reported, not failing
    samples: tuple[ExternalSample, ...] = ()  # the preprocessor's samples, where one ran
    # what the verdict is, for the modules above (never read off `reason`): pass, na.rules, na.preprocessor,
    # undecided, fail.violations, fail.raised, error.rules, error.drift, error.server
    code: str = ""
    raised: HarnessError | None = None  # an ERROR cell's own error (message and fix), for commands that stop on it

    @property
    def reasoning_dropped(self) -> bool:
        """The reference's samples drop the data's reasoning here (a turn note's code says why): never silent."""
        return self.result is not None and any(n.drops_reasoning for p in self.result.plans for n in p.notes)


def cells(
    models: Sequence[str] | None = None, thinks: Sequence[Think] | None = None, fixtures: Sequence[str] | None = None
) -> list[Cell]:
    """The cells selected; what is not named comes from [tool.cth.cells], else every model, mode and fixture."""
    names = [source.get_model(m).name for m in models] if models else source.default_models()
    chosen = userconfig.cells()
    return [
        Cell(m, t, f)
        for m in names
        for t in (thinks or [Think(t) for t in chosen.think or ()] or list(Think))
        for f in (fixtures or chosen.fixtures or conversation.fixture_names())
    ]


def na_reason(cell: Cell) -> str | None:
    """The declared reason this cell cannot exist, or None (needs no tokenizer)."""
    try:
        fam = family_for(source.get_model(cell.model))
        resolve_mode(fam, cell.think, conversation.load(cell.fixture))
    except CellNotApplicable as na:
        return na.reason
    except (CellUndecided, TemplateDriftError):  # not N/A: `declared` says what it is
        return None
    return None


def undecided_reason(cell: Cell) -> str | None:
    """The question (and the line that answers it) of a rule this cell needs and no render proves, or None."""
    fam = family_for(source.get_model(cell.model))
    try:
        resolve_mode(fam, cell.think, conversation.load(cell.fixture))
    except CellUndecided as undecided:
        return str(undecided)
    except CellNotApplicable:
        return None
    return None


def declared(cell: Cell) -> tuple[Status, str, str] | None:
    """A verdict the rules give before any sample is made (status, reason, code): N/A, UNDECIDED, or ERROR where the
    rules cannot be read."""
    try:
        reason = na_reason(cell)
        if reason is not None:
            return Status.NA, reason, "na.rules"
        reason = undecided_reason(cell)
    except TemplateDriftError as error:  # derivation found no exchange the template renders
        return Status.ERROR, f"the template's rules cannot be read: {error}", "error.rules"
    return (Status.UNDECIDED, reason, "undecided") if reason is not None else None
