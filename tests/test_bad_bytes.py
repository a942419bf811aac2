"""Bytes that are not UTF-8 never stop `cth audit`: the row that holds them is rejected with its reason (the
byte and where it sits), counted, and every other row is audited. The same for a JSONL line, a Parquet
string and a dataset read through `datasets`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chat_template_harness import cli
from chat_template_harness.audit import rows
from chat_template_harness.audit.rows import NOT_UTF8, Unreadable

GOOD = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}).encode()
BAD = GOOD.replace(b"yo", b"y\xff")


def _parquet(path: Path, values: list[bytes]) -> Path:
    """A string column holding exactly these bytes: Arrow's `view` skips the UTF-8 validation a writer does."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": pa.array(values, type=pa.binary()).view(pa.string())}), path)
    return path


def _audit(capsys, path: Path) -> tuple[int, dict]:
    out = path.with_suffix(".report.json")
    code = cli.main(["audit", str(path), "--model", "qwen3-8b", "--think", "off", "--workers", "1", "--json", str(out)])
    capsys.readouterr()
    return code, json.loads(out.read_text())


@pytest.fixture(params=["jsonl", "parquet"])
def bad_file(request, tmp_path: Path) -> Path:
    values = [GOOD, BAD, GOOD]
    if request.param == "jsonl":
        path = tmp_path / "d.jsonl"
        path.write_bytes(b"\n".join(values) + b"\n")
        return path
    return _parquet(tmp_path / "d.parquet", values)


def test_a_row_that_is_not_utf8_is_rejected_and_counted(capsys, bad_file: Path):
    code, report = _audit(capsys, bad_file)
    assert code == 0
    assert report["rows"] == {**report["rows"], "total": 3, "usable": 2, "rejected": 1}
    (example,) = report["rejected"][NOT_UTF8]["examples"]
    assert example["row"] == 2 and "0xff" in example["detail"]


def test_negative_control_the_good_file_has_no_such_row(capsys, tmp_path: Path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(GOOD + b"\n" + GOOD + b"\n")
    code, report = _audit(capsys, path)
    assert code == 0 and report["rows"]["usable"] == 2 and NOT_UTF8 not in report["rejected"]


def test_the_reader_names_the_byte_and_its_place(tmp_path: Path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(GOOD + b"\n" + BAD + b"\n")
    read = list(rows.read(str(path)))
    assert read[0] == (1, GOOD.decode())
    column = BAD.index(b"\xff") + 1
    assert read[1] == (2, Unreadable(f"line 2: byte 0xff at column {column} is not UTF-8"))


def test_through_datasets_a_bad_string_is_one_row(tmp_path: Path):
    """`datasets` raises UnicodeDecodeError for the whole batch; the reader finds the row and its column."""
    path = _parquet(tmp_path / "d.parquet", [GOOD] * 300 + [BAD] + [GOOD] * 10)
    read = list(rows.read(str(path)))
    assert len(read) == 311 and [n for n, _ in read] == list(range(1, 312))
    bad = [(n, raw) for n, raw in read if isinstance(raw, Unreadable)]
    assert len(bad) == 1 and bad[0][0] == 301
    assert "column 'text'" in bad[0][1].detail and "0xff" in bad[0][1].detail
