"""`cth audit`: a whole training dataset checked row by row, streaming, on every core or on a Ray cluster.

The flow, one module per stage: rows (read a JSONL/Parquet file or a hub dataset with Hugging Face
`datasets`, streaming; every row keeps its 1-based number) -> row (the per-row function both
engines call: parse, reference preprocessor, invariants, the user's preprocessor) -> engines (local
processes or Ray Data) -> summary (counts, examples, table, JSON, Markdown); `sampling` makes it a
statistical audit (a seeded random sample, rates with 95% intervals). `generate` writes
realistic test and bench data. A bad row is counted with its reason and row number, never a crash.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice

from chat_template_harness.audit.row import Job, RowOutcome
from chat_template_harness.audit.sampling import Plan
from chat_template_harness.audit.summary import Summary
from chat_template_harness.errors import HarnessError


def audit(
    source: str,
    job: Job,
    *,
    engine: str = "local",
    workers: int = 1,
    limit: int | None = None,
    revision: str | None = None,
    progress: Callable[[RowOutcome], None] | None = None,
    sample: Plan | None = None,
) -> Summary:
    """Stream `source` through the per-row function on `engine`; the summary of every row (or of a seeded
    random sample of them, whose rates the summary gives with 95% confidence intervals)."""
    from chat_template_harness.audit import engines, rows, sampling
    from chat_template_harness.audit.row import context

    context(job)  # load the tokenizer and the preprocessor once here: their errors are the user's, not a row's
    stream = rows.read(source, revision=revision)
    if limit is not None:
        stream = islice(stream, limit)
    sampled = sampling.sample(stream, sample) if sample is not None else None
    summary = Summary(job, source, plan=sample)
    with collector_frozen():
        for outcome in engines.ENGINES[engine](job, sampled.rows if sampled else stream, workers):
            summary.add(outcome)
            if progress is not None:
                progress(outcome)
    if sampled is not None:
        summary.population = sampled.population
    if summary.total == 0:
        raise HarnessError(f"{source} has no rows", "point at a dataset with at least one conversation")
    if summary.usable == 0:
        reasons = ", ".join(f"{r} ({n})" for r, n in summary.rejected.most_common(3))
        raise HarnessError(
            f"no readable row in {source}: {reasons}", "check the file's format (see `cth audit --help`)"
        )
    return summary


@contextmanager
def collector_frozen() -> Iterator[None]:
    """Keep Python's garbage collector off the objects alive when the audit starts (the imports, the tokenizer,
    the caller's own) for its length: each full collection walks every tracked object, and transformers alone
    makes some 250,000, while the audit's rows make and drop their own by the million. `gc.freeze()` is the
    standard library's tool for a long run after a large start-up (and before a fork: the local engine's workers
    inherit it). The caller's collector is given back as it was; a caller that froze its own objects first keeps
    them frozen and the audit does not touch them."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
