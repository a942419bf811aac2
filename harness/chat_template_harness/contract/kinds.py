"""What a violation means for training, as one letter, and the one severity order every report uses.

The invariants say which check failed; a kind says what the preprocessor got wrong in a way a
reader acts on ("it trains the empty think block", "it never trains the stop token"). `cth
check`, the plugin, the committed reports and the conformance page all list kinds in this
order, worst first, and count them per kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from chat_template_harness.contract.invariants import Invariant, Violation

# worst first; the letter, and what it means
KINDS: tuple[tuple[str, str], ...] = (
    ("X", "the preprocessor raised or returned nothing readable: no sample to judge"),
    ("O", "the rules disagree with the template (the verdict itself is in doubt)"),
    ("E", "an empty think block is trained"),
    ("P", "a reply is trained after a prompt the server never sends"),
    ("N", "a trained span runs past its stop token into the next message (another role's text: the next user turn, a tool result)"),
    ("H", "a header, opener or other template-injected text is trained"),
    ("L", "label ids are wrong"),
    ("S", "the stop token is not trained"),
    ("R", "reasoning is not trained as generated"),
    ("C", "generated text is not trained whole"),
    ("K", "ids are not the whole string's tokenization, or a token crosses a mask edge"),
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
    """The kinds of a checked cell (anything with `violations`, and `error` where the plug-in raised), worst first."""
    letters = [k for k, _ in counts(result.violations)]
    return ["X", *letters] if getattr(result, "error", "") else letters


def summary(violations: Sequence[Violation]) -> str:
    """`E×1 P×2`: the kinds of a cell, worst first ("" when clean)."""
    return " ".join(f"{k}×{n}" for k, n in counts(violations))


def legend() -> list[str]:
    return [f"{letter}: {meaning}" for letter, meaning in KINDS]
