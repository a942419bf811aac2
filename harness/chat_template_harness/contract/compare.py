"""Where two texts or id sequences part: the length of their common prefix, found by halving.

Samples run to thousands of characters and tokens and are compared many times per conversation
(grouping turns, explaining a split, every replay check): slice comparisons run in C, so halving
costs a few of them instead of a Python step per element.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def first_difference(a: Sequence[Any], b: Sequence[Any]) -> int:
    """The first index where `a` and `b` differ; the shorter length where one is a prefix of the other."""
    if not (isinstance(a, str) and isinstance(b, str)):
        a, b = list(a), list(b)  # a list never equals a tuple: compare like with like
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo
