"""Reading a dataset as numbered rows, streaming: JSONL lines as text (so a malformed line is a counted
row, not a failed read), Parquet rows as dicts, or a hub dataset id at a revision.

Memory does not grow with the dataset: `datasets` streams (`streaming=True`), and callers consume
the iterator as they go.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chat_template_harness.errors import HarnessError

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


def read(source: str, *, revision: str | None = None, split: str = "train") -> Iterator[tuple[int, Any]]:
    """(row number from 1, raw row): a str for a JSONL line, a dict for a Parquet or hub row."""
    import datasets

    path = Path(source)
    datasets.disable_progress_bars()
    if path.is_dir():
        raise HarnessError(f"{source} is a directory", "pass one .jsonl or .parquet file (or a hub dataset id)")
    if path.suffix in JSONL_SUFFIXES or path.suffix == ".parquet":
        if not path.is_file():
            raise HarnessError(f"dataset file {source} does not exist", "check the path")
        if path.stat().st_size == 0:
            raise HarnessError(f"dataset file {source} is empty", "point at a file with rows")
        builder, column = ("text", "text") if path.suffix in JSONL_SUFFIXES else ("parquet", None)
        stream = datasets.load_dataset(builder, data_files=str(path), split="train", streaming=True)
    elif path.exists():
        raise HarnessError(f"{source}: unknown dataset format {path.suffix!r}", "use .jsonl or .parquet")
    else:  # a hub dataset id; the hub is asked at the pinned revision
        try:
            stream = datasets.load_dataset(source, revision=revision, split=split, streaming=True)
        except Exception as exc:  # unreachable hub, unknown id, gated repo
            raise HarnessError(
                f"cannot open dataset {source!r} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                "pass a local .jsonl/.parquet file, or a hub id (with --revision) the hub can serve",
            ) from None
        column = None
    for number, row in enumerate(stream, start=1):
        if column:
            yield number, row[column]
        elif len(row) == 1 and isinstance(next(iter(row.values())), str):
            yield number, next(iter(row.values()))  # one JSON text column (e.g. a JSONL dump stored as Parquet)
        else:
            yield number, row


def decode(raw: Any) -> Any:
    """A row as JSON data: a JSONL line is parsed (json.JSONDecodeError for a malformed one); a columnar row
    (Parquet, a `datasets` Dataset) loses its nulls."""
    if isinstance(raw, str):
        return json.loads(raw)
    return without_nulls(raw)


def without_nulls(value: Any) -> Any:
    """A columnar row as the JSON it was written from: a null field is an absent field, at every depth.

    Parquet has one schema per file, so a dataset merged from several shapes (OpenAI `messages`,
    ShareGPT `conversations`, EAGLE `id`) holds every key of every shape in every row, null where
    the row had none, and likewise inside messages (`reasoning_content`, `tool_calls`, `name`, `from`)
    and tool-call arguments. A JSONL line keeps its nulls: there a null is what the writer wrote.
    """
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value
