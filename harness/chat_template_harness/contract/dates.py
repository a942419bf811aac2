"""A date a preprocessor writes that is not the served prompt's date: kind D, the same way for every preprocessor.

The served prompt carries the pinned date (`contract/render.py`'s PINNED_CLOCK, Llama's `date_string`, gpt-oss's
"Current date"). A framework is called under the real clock (`external.real_clock`), as its users run it; where it
writes a date of its own (the day it runs, or the day it was imported: ms-swift computes Llama 3.2's "Today Date"
once, at import), its prompt differs from the served one only by that date. That is one finding, D, not a
prompt the server never sends: the plans are re-dated with the sample's date and everything else is judged as
usual.

A date is recognised only where the served prompt has the pinned date, after the same text, in the same format.
Where the sample's date is the day of the run (today, or yesterday for a run or an import that crossed midnight),
the finding names the day and its format, not its value: the same preprocessor gives the same finding, and a
committed report the same body, on any day it runs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from chat_template_harness.contract.invariants import Invariant, SampleLike, Violation
from chat_template_harness.contract.tokens import decode
from chat_template_harness.contract.turns import TurnPlan
from chat_template_harness.models.rules.pinned import PINNED_CLOCK

# the formats templates and frameworks write dates in (Llama's `%d %b %Y`, gpt-oss's ISO date), and each field's shape
FORMATS = ("%d %b %Y", "%d %B %Y", "%Y-%m-%d", "%B %d, %Y")
FIELDS = {"%d": r"\d{1,2}", "%b": r"[A-Z][a-z]{2}", "%B": r"[A-Z][a-z]+", "%Y": r"\d{4}", "%m": r"\d{2}"}
CONTEXT = 16  # characters before the served date that must precede the sample's date


@dataclasses.dataclass(frozen=True)
class Dated:
    served: str  # the date as the served prompt writes it
    written: str  # the date the sample writes in its place
    sample: int
    fmt: str = ""  # the format both are written in
    of_the_run: bool = False  # the written date is the day of the run (today, or yesterday across midnight)


def _pattern(fmt: str) -> str:
    return "".join(FIELDS.get(part, re.escape(part)) for part in re.split(r"(%[a-zA-Z])", fmt) if part)


def _served(plans: Sequence[TurnPlan]) -> list[tuple[str, str, str]]:
    """(format, the served date, the text just before it) for each pinned date the served prompts write."""
    prompt = plans[0].prompt if plans else ""
    out = []
    for fmt in FORMATS:
        served = PINNED_CLOCK.strftime(fmt)
        at = prompt.find(served)
        if at > 0:
            out.append((fmt, served, prompt[max(0, at - CONTEXT) : at]))
    return out


def _valid(text: str, fmt: str) -> bool:
    try:
        datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True


def _of_the_run(text: str, fmt: str) -> bool:
    today = date.today()
    return datetime.strptime(text, fmt).date() in (today, today - timedelta(days=1))


def written_dates(tokenizer: Any, plans: Sequence[TurnPlan], samples: Sequence[SampleLike]) -> list[Dated]:
    """Each sample's date where the served prompt has the pinned one and the sample another."""
    found = []
    served = _served(plans)
    for index, sample in enumerate(samples if served else ()):
        text = decode(tokenizer, list(sample.input_ids))
        for fmt, pinned, before in served:
            match = re.search(re.escape(before) + f"({_pattern(fmt)})", text)
            if match and match.group(1) != pinned and _valid(match.group(1), fmt):
                written = match.group(1)
                found.append(Dated(pinned, written, index, fmt, _of_the_run(written, fmt)))
    return found


def redated(plans: Sequence[TurnPlan], dated: Sequence[Dated]) -> list[TurnPlan]:
    """The plans with the served date replaced by the date the samples write (the first sample's, per format)."""
    out = list(plans)
    for served, written in dict((d.served, d.written) for d in dated).items():
        out = [
            dataclasses.replace(
                p,
                prompt=p.prompt.replace(served, written),
                header_start=p.header_start + p.prompt[: p.header_start].count(served) * (len(written) - len(served)),
            )
            for p in out
        ]
    return out


def _what(d: Dated) -> str:
    return f"the day it runs (as {d.fmt!r})" if d.of_the_run else f"the date {d.written!r}"


def violations(dated: Sequence[Dated]) -> list[Violation]:
    return [
        Violation(
            Invariant.DETERMINISM,
            f"the sample writes {_what(d)} where the served prompt has {d.served!r}: the preprocessor dates "
            "its data itself (the day it runs, or the day it was imported), not as the server does (pass the served "
            "date, e.g. the template's `date_string`)",
            sample=d.sample,
        )
        for d in dated
    ]
