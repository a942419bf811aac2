"""Allowances and baselines: the two escape hatches a real CI needs, both visible in every report.

- An allowance is a named kind of deviation a team accepts on purpose. Its violations are reported
  as "allowed", never hidden, and never cover an empty think block or a reply trained after a
  prompt the server does not send (CONTRACT.md, "What a deployment adds to the served prompt").
- A baseline is a committed file of the cells known to fail today, one cell id per line. With it, a
  run fails only on a failing cell that is not listed (new) and on a listed cell that now passes
  (stale: remove it); `--update-baseline` rewrites the file from the cells that fail now.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chat_template_harness.contract.invariants import Invariant, Violation
from chat_template_harness.errors import HarnessError

# name -> what the violation says of the tokens it covers (only injected-token findings may be allowed)
ALLOWANCES: dict[str, str] = {
    "trailer": "the template's text after the stop token",
}
# not a violation: UNDECIDED cells (a rule no render proves) pass a run, reported as allowed (outputs/matrix.py)
VERDICT_ALLOWANCES = ("undecided",)


def parse_allowances(names: Iterable[str]) -> frozenset[str]:
    names = frozenset(names)
    unknown = sorted(names - set(ALLOWANCES) - set(VERDICT_ALLOWANCES))
    if unknown:
        raise HarnessError(
            f"unknown allowance {', '.join(map(repr, unknown))}; known: {', '.join([*ALLOWANCES, *VERDICT_ALLOWANCES])}",
            "allow only a named, harmless deviation (empty think blocks and replay failures are never allowed)",
        )
    return names


def split_allowed(violations: Sequence[Violation], allow: frozenset[str]) -> tuple[list[Violation], list[Violation]]:
    """(violations that still fail, violations an allowance covers)."""
    failing, allowed = [], []
    for v in violations:
        covered = v.invariant is Invariant.NO_INJECTED_LOSS and any(ALLOWANCES[a] in v.detail for a in allow if a in ALLOWANCES)
        (allowed if covered else failing).append(v)
    return failing, allowed


HEADER = "# cth baseline: cells known to fail today, one id per line; rewritten by --update-baseline\n"


def read(path: Path | str) -> frozenset[str]:
    file = Path(path)
    if not file.is_file():
        raise HarnessError(f"baseline {path} does not exist", "create it with --update-baseline (it lists the cells that fail now)")
    try:
        lines = file.read_text("utf-8").splitlines()
    except UnicodeDecodeError:
        raise HarnessError(f"baseline {path} is not UTF-8 text", "rewrite it with --update-baseline") from None
    return frozenset(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


def write(path: Path | str, preprocessor: str, failing: Iterable[str]) -> None:
    body = "".join(f"{cell}\n" for cell in sorted(set(failing)))
    Path(path).write_text(f"{HEADER}# preprocessor: {preprocessor}\n{body}", "utf-8")


@dataclass(frozen=True)
class Verdict:
    new: tuple[str, ...]  # failing, not in the baseline: fail the run
    known: tuple[str, ...]  # failing and listed: reported, do not fail
    stale: tuple[str, ...]  # listed but passing now: fail the run until the entry is removed

    @property
    def ok(self) -> bool:
        return not self.new and not self.stale


def compare(failing: Iterable[str], passing: Iterable[str], listed: frozenset[str]) -> Verdict:
    failing, passing = set(failing), set(passing)
    return Verdict(
        new=tuple(sorted(failing - listed)),
        known=tuple(sorted(failing & listed)),
        stale=tuple(sorted(passing & listed)),
    )
