"""Where the per-row function runs: local processes (every core of this machine) or Ray Data (a cluster).

Both call `chat_template_harness.audit.row.audit_row` on every row and hand back RowOutcomes as they finish, so
the summary is built while the data streams; neither holds the dataset in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from itertools import islice
from typing import Any

from chat_template_harness.audit.row import Job, RowOutcome, audit_row
from chat_template_harness.audit.rows import Unreadable

CHUNK = 32  # rows per task: large enough to amortise the hand-off, small enough to keep every core busy


def _chunk(job: Job, rows: list[tuple[int, Any]]) -> list[RowOutcome]:
    return [audit_row(job, number, raw) for number, raw in rows]


def local(job: Job, rows: Iterable[tuple[int, Any]], workers: int) -> Iterator[RowOutcome]:
    """`workers` processes (1: this process), at most 4 chunks per worker in flight."""
    if workers <= 1:
        for number, raw in rows:
            yield audit_row(job, number, raw)
        return
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one tokenizer thread per process
    import multiprocessing

    source = iter(rows)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        pending: set[Future[list[RowOutcome]]] = set()
        while True:
            while len(pending) < workers * 4 and (chunk := list(islice(source, CHUNK))):
                pending.add(pool.submit(_chunk, job, chunk))
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield from future.result()


def ray(job: Job, rows: Iterable[tuple[int, Any]], workers: int) -> Iterator[RowOutcome]:
    """The same per-row function with Ray Data: on the cluster at $RAY_ADDRESS, else a local Ray instance."""
    import json

    import ray as ray_module

    if not ray_module.is_initialized():
        ray_module.init(
            address=os.environ.get("RAY_ADDRESS") or None,
            num_cpus=None if os.environ.get("RAY_ADDRESS") else workers,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    batch_fn = _batch_function(job)
    source = iter(rows)
    # blocks of rows go to the cluster as they are read; each block's outcomes come back before the next is read
    while block := list(islice(source, CHUNK * 64)):
        # a row that is not text is counted here: it has nothing for the cluster to check
        yield from (audit_row(job, n, raw) for n, raw in block if isinstance(raw, Unreadable))
        items = [
            {"row": n, "raw": raw if isinstance(raw, str) else json.dumps(raw, default=str)}
            for n, raw in block
            if not isinstance(raw, Unreadable)
        ]
        if not items:
            continue
        ds = ray_module.data.from_items(items).map_batches(batch_fn, batch_size=CHUNK, batch_format="numpy")
        for record in ds.iter_rows():
            yield RowOutcome.from_json(record["outcome"])


def _batch_function(job: Job) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def audit_batch(batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        outcomes = [
            audit_row(job, int(n), str(raw)).to_json() for n, raw in zip(batch["row"], batch["raw"], strict=True)
        ]
        return {"outcome": np.array(outcomes, dtype=object)}

    return audit_batch


ENGINES = {"local": local, "ray": ray}
