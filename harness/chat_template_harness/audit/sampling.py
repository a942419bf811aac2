"""A statistical audit: a seeded random sample of a dataset's rows, and rates with 95% confidence intervals.

`--sample N` keeps N rows chosen uniformly at random from the whole stream (reservoir sampling,
Algorithm L: one pass, memory for N rows, whatever the format); `--sample 0.02` keeps each row
with probability 0.02 (streaming, nothing held). A sampled row keeps its real row number, so the
rows a report names are rows of the dataset. The summary then reports each rate as an estimate
with its Wilson score interval, which stays inside [0, 1] and behaves at rates of 0 and 1.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


@dataclass(frozen=True)
class Plan:
    """What to keep: `size` rows (an int >= 1) or a `fraction` of them (0 < f < 1), with `seed`."""

    size: int | None = None
    fraction: float | None = None
    seed: int = 0

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> Plan:
        """`2000` (rows) or `0.02` (a fraction); ValueError for anything else."""
        value = float(text)
        if value.is_integer() and value >= 1 and "." not in text:
            return cls(size=int(value), seed=seed)
        if 0 < value < 1:
            return cls(fraction=value, seed=seed)
        raise ValueError(f"{text!r} is neither a row count (>= 1) nor a fraction (between 0 and 1)")

    def describe(self) -> str:
        return f"{self.size} rows" if self.size is not None else f"a {self.fraction:g} fraction of the rows"


@dataclass
class Sampled:
    """The kept rows, and how many the stream held (known once the stream is consumed)."""

    rows: Iterator[tuple[int, Any]]
    population: int = 0


def sample(stream: Iterable[tuple[int, Any]], plan: Plan) -> Sampled:
    rng = random.Random(plan.seed)
    out = Sampled(iter(()))
    if plan.size is not None:
        kept = _reservoir(_counted(stream, out), plan.size, rng)
        out.rows = iter(sorted(kept, key=lambda row: row[0]))  # in dataset order, as a full run reads them
    else:
        assert plan.fraction is not None
        out.rows = (row for row in _counted(stream, out) if rng.random() < plan.fraction)
    return out


def _counted(stream: Iterable[tuple[int, Any]], into: Sampled) -> Iterator[tuple[int, Any]]:
    for row in stream:
        into.population += 1
        yield row


def _reservoir(stream: Iterator[tuple[int, Any]], k: int, rng: random.Random) -> list[tuple[int, Any]]:
    """k rows uniformly at random from a stream of unknown length (Li 1994, Algorithm L)."""
    kept = [row for _, row in zip(range(k), stream, strict=False)]
    if len(kept) < k:
        return kept
    w = math.exp(math.log(rng.random()) / k)
    while True:
        skip = math.floor(math.log(rng.random()) / math.log(1 - w))
        row = next(_nth(stream, skip), None)
        if row is None:
            return kept
        kept[rng.randrange(k)] = row
        w *= math.exp(math.log(rng.random()) / k)


def _nth(stream: Iterator[tuple[int, Any]], skip: int) -> Iterator[tuple[int, Any]]:
    for _ in range(skip):
        if next(stream, None) is None:
            return
    row = next(stream, None)
    if row is not None:
        yield row


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion hits/n ((0, 1) when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # the bounds are exact at the ends: no rounding may put a rate of 0 or 1 outside its own interval
    return (0.0 if hits == 0 else max(0.0, centre - half)), (1.0 if hits == n else min(1.0, centre + half))
