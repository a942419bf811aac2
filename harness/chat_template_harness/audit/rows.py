"""Reading a dataset as numbered rows, streaming: JSONL lines as text (so a malformed line is a counted
row, not a failed read), Parquet rows as dicts, or a hub dataset id at a revision.

Memory does not grow with the dataset: JSONL is read line by line, `datasets` streams Parquet and hub
datasets (`streaming=True`) in Arrow batches, and callers consume the iterator as they go. Bytes that are
not UTF-8 (in a JSONL line, a Parquet string, a hub dataset's string) make that one row `Unreadable`,
never a failed read: the audit counts it under its reason with the byte and where it sits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chat_template_harness.errors import HarnessError

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
NOT_UTF8 = "text that is not UTF-8"  # the reason an Unreadable row is counted under


@dataclass(frozen=True)
class Unreadable:
    """A row whose bytes are not text: `detail` says which byte and where."""

    detail: str


def read(source: str, *, revision: str | None = None, split: str = "train") -> Iterator[tuple[int, Any]]:
    """(row number from 1, raw row): a str for a JSONL line, a dict for a Parquet or hub row, `Unreadable`
    for a row whose bytes are not UTF-8."""
    path = Path(source)
    if path.is_dir():
        raise HarnessError(f"{source} is a directory", "pass one .jsonl or .parquet file (or a hub dataset id)")
    if path.suffix in JSONL_SUFFIXES or path.suffix == ".parquet":
        if not path.is_file():
            raise HarnessError(f"dataset file {source} does not exist", "check the path")
        if path.stat().st_size == 0:
            raise HarnessError(f"dataset file {source} is empty", "point at a file with rows")
        if path.suffix in JSONL_SUFFIXES:
            yield from _jsonl(path)
            return
    elif path.exists():
        raise HarnessError(f"{source}: unknown dataset format {path.suffix!r}", "use .jsonl or .parquet")
    yield from _columnar(source, path.suffix == ".parquet", revision, split)


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """Every line, `\n`-separated (a JSON string may hold U+2028 and friends), as text or `Unreadable`."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip(b"\r\n")
            try:
                yield number, line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                byte = line[exc.start]
                yield number, Unreadable(f"line {number}: byte 0x{byte:02x} at column {exc.start + 1} is not UTF-8")


def _columnar(source: str, local: bool, revision: str | None, split: str) -> Iterator[tuple[int, Any]]:
    """Parquet or a hub dataset through `datasets`, as Arrow batches: a batch converts to Python as a whole,
    and only a batch holding bytes that are not UTF-8 is converted row by row, to find the row."""
    try:
        import datasets
    except ModuleNotFoundError:
        raise HarnessError(
            f"reading {source} needs the `datasets` package", "pip install 'chat-template-harness[audit]'"
        ) from None
    datasets.disable_progress_bars()
    try:
        if local:
            stream = datasets.load_dataset("parquet", data_files=source, split="train", streaming=True)
        else:  # a hub dataset id; the hub is asked at the pinned revision
            stream = datasets.load_dataset(source, revision=revision, split=split, streaming=True)
    except Exception as exc:  # unreachable hub, unknown id, gated repo
        raise HarnessError(
            f"cannot open dataset {source!r} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            "pass a local .jsonl/.parquet file, or a hub id (with --revision) the hub can serve",
        ) from None
    number, features = 0, stream.features  # the types `datasets` wrote (e.g. Json columns) decode each row
    for batch in stream.with_format("arrow").iter(batch_size=256):
        for row in _batch_rows(batch, number):
            number += 1
            if features is not None and not isinstance(row, Unreadable):
                row = features.decode_example(row)
            yield number, _one_text_column(row)


def _batch_rows(batch: Any, before: int) -> list[Any]:
    try:
        rows: list[Any] = batch.to_pylist()
        return rows
    except UnicodeDecodeError:
        return [_row(batch.slice(i, 1), before + i + 1) for i in range(batch.num_rows)]


def _row(table: Any, number: int) -> Any:
    try:
        return table.to_pylist()[0]
    except UnicodeDecodeError:
        for name in table.column_names:
            try:
                table.column(name).to_pylist()
            except UnicodeDecodeError as exc:
                return Unreadable(
                    f"row {number}: column {name!r} holds byte 0x{exc.object[exc.start]:02x}, "
                    f"which is not UTF-8 (at byte {exc.start + 1} of its value)"
                )
        raise


def _one_text_column(row: Any) -> Any:
    """One JSON text column (e.g. a JSONL dump stored as Parquet) is that text; otherwise the row itself."""
    if isinstance(row, dict) and len(row) == 1 and isinstance(next(iter(row.values())), str):
        return next(iter(row.values()))
    return row


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
