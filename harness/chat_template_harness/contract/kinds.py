"""What a violation means for training, as one letter, and the one severity order every report uses.

The invariants say which check failed; a kind says what the preprocessor got wrong in a way a
reader acts on ("it trains the empty think block", "it never trains the stop token"). `cth
check`, the plugin, the committed reports and the conformance page all list kinds in this
order, worst first, and count them per kind.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from chat_template_harness.contract.invariants import Invariant, Violation

# worst first; the letter, and what it means
KINDS: tuple[tuple[str, str], ...] = (
    ("X", "the preprocessor raised or returned nothing readable: no sample to judge"),
    ("O", "the rules disagree with the template (the verdict itself is in doubt)"),
    ("E", "an empty think block is trained"),
    ("P", "a reply is trained after a prompt the server never sends"),
    (
        "N",
        "a trained span runs past its stop token into the next message (another role's text: the next user turn, a tool result)",
    ),
    ("H", "a header, opener or other template-injected text is trained"),
    ("L", "label ids are wrong"),
    ("S", "the stop token is not trained"),
    ("R", "reasoning is not trained as generated"),
    ("C", "generated text is not trained whole"),
    (
        "K",
        "ids are not the tokenization of each side of the prompt edge whole (served prompt, then reply), or a token crosses a mask edge",
    ),
    ("D", "samples change with the clock"),
    ("T", "the template's text after the stop token is trained"),
)
ORDER = {letter: rank for rank, (letter, _) in enumerate(KINDS)}
MEANING = dict(KINDS)
BY_INVARIANT = {
    Invariant.TEMPLATE: "O",
    Invariant.REPLAY: "P",
    Invariant.NO_INJECTED_LOSS: "H",
    Invariant.LABELS: "L",
    Invariant.COMPLETE: "C",
    Invariant.WHOLE_STRING: "K",
    Invariant.NO_STRADDLE: "K",
    Invariant.DETERMINISM: "D",
}


# a named allowance -> the one kind it may cover (only injected text the model never reaches: never E or P)
ALLOWANCES: dict[str, str] = {
    "trailer": "T",  # the template's text after the stop token
}


def split_allowed(violations: Sequence[Violation], allow: frozenset[str]) -> tuple[list[Violation], list[Violation]]:
    """(violations that still fail, violations a named allowance covers)."""
    covered = {ALLOWANCES[a] for a in allow if a in ALLOWANCES}  # `undecided` allows a verdict, not a kind
    failing = [v for v in violations if kind_of(v) not in covered]
    return failing, [v for v in violations if kind_of(v) in covered]


def kind_of(violation: Violation) -> str:
    """The violation's kind: the one the check set where it knew more (E, T, S, R), else its invariant's."""
    return violation.kind or BY_INVARIANT[violation.invariant]


def by_severity(violations: Iterable[Violation]) -> list[Violation]:
    """Worst kind first; within a kind, the order the checks found them."""
    return sorted(violations, key=lambda v: ORDER[kind_of(v)])


def counts(violations: Iterable[Violation]) -> list[tuple[str, int]]:
    """(kind, violations) for every kind present, worst first."""
    found = Counter(kind_of(v) for v in violations)
    return sorted(found.items(), key=lambda kv: ORDER[kv[0]])


def of_result(result: Any) -> list[str]:
    """The kinds of a checked cell (anything with `violations`, and the code `fail.raised` where the plug-in raised),
    worst first."""
    letters = [k for k, _ in counts(result.violations)]
    return ["X", *letters] if getattr(result, "code", "") == "fail.raised" else letters


def summary(violations: Sequence[Violation]) -> str:
    """`E×1 P×2`: the kinds of a cell, worst first ("" when clean)."""
    return " ".join(f"{k}×{n}" for k, n in counts(violations))


def legend() -> list[str]:
    return [f"{letter}: {meaning}" for letter, meaning in KINDS]


@cache
def _fixes() -> dict[str, Any]:
    """data/fixes.toml: what to change in the preprocessor, per kind (facts in data, read once)."""
    return tomllib.loads(resources.files("chat_template_harness").joinpath("data/fixes.toml").read_text("utf-8"))


def fix(letter: str) -> str:
    """What to change in the preprocessor for this kind."""
    return str(_fixes()["fixes"][letter])


def fix_lines(letters: Iterable[str]) -> list[str]:
    """`fix E: …` for each kind given (worst first), then where to get right samples; [] for none."""
    present = sorted(set(letters), key=ORDER.__getitem__)
    if not present:
        return []
    return [*(f"fix {k}: {fix(k)}" for k in present), f"  {_fixes()['library']['text']}"]
