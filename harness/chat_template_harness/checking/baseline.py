"""Allowances and baselines: the two escape hatches a real CI needs, both visible in every report.

- An allowance is a named kind of deviation a team accepts on purpose. Its violations are reported
  as "allowed", never hidden, and never cover an empty think block or a reply trained after a
  prompt the server does not send (docs/contract.md, "What a deployment adds").
- A baseline is a committed file of the cells known to fail today, one per line: the cell id and what is
  wrong there, as kinds and counts (`qwen3-8b/think-off/multi_turn  E×1 P×2`). With it, a run fails on a
  failing cell that is not listed (new), on a listed cell that gets worse (a kind it did not have, or more
  of one: a preprocessor that starts training every token is not "known"), and on a listed cell that now
  passes (stale: remove it); `--update-baseline` rewrites the file from the cells that fail now. A line with
  the id alone (the old format) records no counts: any failure there is known, and the report says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chat_template_harness.contract import kinds
from chat_template_harness.contract.kinds import ALLOWANCES
from chat_template_harness.errors import HarnessError

# not a violation: UNDECIDED cells (a rule no render proves) pass a run, reported as allowed (cells/model.py)
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


HEADER = "# cth baseline: cells known to fail today, with their kinds and counts; rewritten by --update-baseline\n"
Counts = dict[str, int]  # kind letter -> violations (X: the preprocessor raised)


def counts_of(result: Any) -> Counts:
    """A checked cell's kinds and counts, as the baseline records them."""
    found = dict(kinds.counts(result.violations))
    return {"X": 1, **found} if getattr(result, "error", "") else found


def read(path: Path | str) -> dict[str, Counts | None]:
    """cell id -> its recorded counts (None: an id-only line, which records none)."""
    file = Path(path)
    if not file.is_file():
        raise HarnessError(
            f"baseline {path} does not exist", "create it with --update-baseline (it lists the cells that fail now)"
        )
    try:
        lines = file.read_text("utf-8").splitlines()
    except UnicodeDecodeError:
        raise HarnessError(f"baseline {path} is not UTF-8 text", "rewrite it with --update-baseline") from None
    out: dict[str, Counts | None] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cell, *fields = line.split()
        try:
            counts = {k: int(n) for k, _, n in (f.partition("×") for f in fields)} if fields else None
        except ValueError:
            raise HarnessError(
                f"baseline {path}, line {number}: {line.strip()!r} is not `<cell id>  <kind>×<count> …`",
                "rewrite it with --update-baseline",
            ) from None
        out[cell] = counts
        if counts and not set(counts) <= set(kinds.ORDER):
            raise HarnessError(
                f"baseline {path}, line {number}: unknown kind in {line.strip()!r}", "rewrite it with --update-baseline"
            )
    return out


def write(path: Path | str, preprocessor: str, failing: Mapping[str, Counts]) -> None:
    body = "".join(f"{cell}  {_counts_text(failing[cell])}\n".rstrip() + "\n" for cell in sorted(failing))
    Path(path).write_text(f"{HEADER}# preprocessor: {preprocessor}\n{body}", "utf-8")


def _counts_text(counts: Counts) -> str:
    return " ".join(f"{k}×{n}" for k, n in sorted(counts.items(), key=lambda kv: kinds.ORDER[kv[0]]))


@dataclass(frozen=True)
class Verdict:
    new: tuple[str, ...]  # failing, not in the baseline: fail the run
    known: tuple[str, ...]  # failing and listed, no worse than recorded: reported, do not fail
    stale: tuple[str, ...]  # listed but passing now: fail the run until the entry is removed
    worse: tuple[tuple[str, str], ...] = ()  # (cell, what grew): listed, failing worse than recorded: fail the run
    uncounted: tuple[str, ...] = ()  # listed with no counts (old format): known whatever fails there

    @property
    def ok(self) -> bool:
        return not self.new and not self.stale and not self.worse


def worse_than(now: Counts, recorded: Counts | None) -> str:
    """What grew since the baseline, `E×1→3, P×0→2` ("" when nothing did, or nothing was recorded)."""
    if recorded is None:
        return ""
    grew = [
        f"{k}×{recorded.get(k, 0)}→{n}"
        for k, n in sorted(now.items(), key=lambda kv: kinds.ORDER[kv[0]])
        if n > recorded.get(k, 0)
    ]
    return ", ".join(grew)


def compare(failing: Mapping[str, Counts], passing: Iterable[str], listed: Mapping[str, Counts | None]) -> Verdict:
    passing = set(passing)
    listed_failing = sorted(set(failing) & set(listed))
    worse = tuple((c, grew) for c in listed_failing if (grew := worse_than(failing[c], listed[c])))
    return Verdict(
        new=tuple(sorted(set(failing) - set(listed))),
        known=tuple(c for c in listed_failing if c not in dict(worse)),
        stale=tuple(sorted(passing & set(listed))),
        worse=worse,
        uncounted=tuple(c for c in listed_failing if listed[c] is None),
    )
