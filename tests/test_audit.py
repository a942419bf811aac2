"""`cth audit` on generated, realistic datasets: rejected rows by reason, the naive example's violations,
the reference's clean bill, Parquet = JSONL, 1 worker = 2 workers = Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chat_template_harness import cli
from chat_template_harness.audit import audit, generate
from chat_template_harness.audit.row import REASONS, Job, audit_row

NAIVE = "chat_template_harness.examples.naive:preprocess"
REFERENCE = "chat_template_harness.examples.reference:preprocess"
ROWS = 300


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("audit")
    jsonl = generate.write_jsonl(folder / "rows.jsonl", ROWS, seed=7)
    # a few broken rows of every kind, at known places, beside the generator's own ~1%
    lines = jsonl.read_text("utf-8").splitlines()
    lines[9] = '{"messages": [{"role": "user", "content": "hi"}'  # row 10: truncated
    lines[19] = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]})  # row 20
    lines[29] = json.dumps({"messages": [{"role": "user", "content": "hi"}]})  # row 30: no final assistant turn
    lines[39] = json.dumps({"messages": []})  # row 40: empty
    jsonl.write_text("\n".join(lines) + "\n", "utf-8")
    return {"jsonl": jsonl, "parquet": generate.write_parquet(jsonl, folder / "rows.parquet"), "folder": folder}


def _audit(capsys, path: Path, *args: str) -> tuple[int, dict]:
    out = path.parent / f"report-{abs(hash((str(path), args)))}.json"
    code = cli.main(["audit", str(path), "--model", "qwen3-8b", "--think", "off", "--json", str(out), *args])
    capsys.readouterr()
    return code, json.loads(out.read_text("utf-8"))


def test_the_naive_preprocessor_fails_with_counts_and_row_numbers(capsys, dataset):
    code, report = _audit(capsys, dataset["jsonl"], "--preprocessor", NAIVE, "--workers", "2")
    assert code == 1
    rejected = report["rejected"]
    assert {10} <= {e["row"] for e in rejected["malformed JSON line"]["examples"]}
    assert {20} <= {e["row"] for e in rejected["unknown role"]["examples"]}
    assert {30} <= {e["row"] for e in rejected["no final assistant turn"]["examples"]}
    assert {40} <= {e["row"] for e in rejected["empty conversation"]["examples"]}
    assert report["rows"]["total"] == ROWS and report["rows"]["usable"] == ROWS - report["rows"]["rejected"]
    plugin = report["preprocessor"]
    assert plugin["rows_wrong"] > 0.9 * plugin["rows_checked"]
    assert plugin["violations"]["1"] > 0 and plugin["violations"]["2"] > 0  # replay and empty-think
    assert plugin["wrong_tokens"]["empty_think"] > 0 and plugin["wrong_tokens_rows"]["empty_think"] > 0
    assert len(plugin["worst"]) == 10 and all(w["row"] >= 1 for w in plugin["worst"])
    assert report["reference"]["rows_violating"] == 0


def test_the_reference_passes_and_strict_fails_on_rejected_rows(capsys, dataset):
    code, report = _audit(capsys, dataset["jsonl"], "--preprocessor", REFERENCE, "--workers", "2")
    assert code == 0 and report["preprocessor"]["rows_wrong"] == 0
    assert report["reference"]["tokens"]["empty_think"] > 0  # Qwen3 think-off: the served opener, never trained
    assert report["reference"]["rows_with_reasoning_dropped"] > 0
    assert _audit(capsys, dataset["jsonl"], "--strict", "--workers", "2")[0] == 1


def test_parquet_and_jsonl_and_one_or_two_workers_give_the_same_report(capsys, dataset):
    reports = [
        _audit(capsys, dataset["jsonl"], "--workers", "1", "--limit", "120")[1],
        _audit(capsys, dataset["jsonl"], "--workers", "2", "--limit", "120")[1],
        _audit(capsys, dataset["parquet"], "--workers", "2", "--limit", "120")[1],
    ]
    for r in reports:
        r.pop("source")
    assert reports[0] == reports[1] == reports[2]


@pytest.mark.ray
@pytest.mark.slow  # starts a local Ray (~30 s)
def test_ray_data_gives_the_same_counts(capsys, dataset):
    local = _audit(capsys, dataset["jsonl"], "--workers", "2", "--limit", "60")[1]
    on_ray = _audit(capsys, dataset["jsonl"], "--engine", "ray", "--workers", "2", "--limit", "60")[1]
    assert local == on_ray


def test_the_audit_keeps_the_collector_off_what_was_alive_at_its_start_and_gives_it_back(dataset):
    """The audit freezes the objects alive when it starts (imports, tokenizer) so that full collections do not walk
    them row after row (bench: 1 worker about 1.14 times the rows per second), and leaves the collector as it was."""
    import gc

    job, seen = Job("qwen3-8b", "off"), []
    assert gc.get_freeze_count() == 0
    audit(str(dataset["jsonl"]), job, limit=3, progress=lambda _: seen.append(gc.get_freeze_count()))
    assert seen and min(seen) > 0  # frozen while rows run
    assert gc.get_freeze_count() == 0  # and given back
    gc.freeze()  # a caller that froze its own objects first keeps them frozen
    try:
        audit(str(dataset["jsonl"]), job, limit=3)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_every_generated_broken_kind_has_a_named_reason():
    settings = Job("qwen3-8b", "off")
    import random

    for kind in generate.BROKEN:
        line = generate._broken(random.Random(1), kind, generate._messages(random.Random(2)))
        outcome = audit_row(settings, 1, line)
        assert outcome.rejected in set(REASONS.values()), (kind, outcome)


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "is empty"), ("{broken\n[1, 2\n", "no readable row"), (None, "does not exist")],
    ids=["empty-file", "only-broken-rows", "missing-file"],
)
def test_unusable_input_is_one_error_and_exit_2(capsys, tmp_path: Path, content, message):
    path = tmp_path / "d.jsonl"
    if content is not None:
        path.write_text(content)
    code = cli.main(["audit", str(path), "--model", "qwen3-8b", "--think", "off"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("error:") == 1


def test_the_generator_is_seeded_and_mixes_formats():
    first, second = list(generate.lines(200, seed=3)), list(generate.lines(200, seed=3))
    assert first == second
    shapes = {next(iter(json.loads(line)), None) for line in first if line.startswith("{") and line.endswith("}")}
    assert {"messages", "conversations", "id"} <= shapes


@pytest.fixture(scope="module")
def columnar(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same mixed-shape rows as JSONL, as pandas-written Parquet (one column per key, null where a row has
    none, nested nulls inside messages) and as `datasets`-written Parquet."""
    import datasets
    import pandas as pd

    folder = tmp_path_factory.mktemp("columnar")
    rows = []
    for line in generate.lines(80, seed=3):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a truncated line has no columns
        for message in row.get("messages") or row.get("conversations") or []:
            for call in message.get("tool_calls", []):  # Parquet holds one type per column: arguments as JSON text
                call["function"]["arguments"] = (
                    json.dumps(call["function"]["arguments"])
                    if not isinstance(call["function"]["arguments"], str)
                    else call["function"]["arguments"]
                )
        rows.append(row)
    jsonl = folder / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    pd.DataFrame(rows).to_parquet(folder / "pandas.parquet")
    datasets.Dataset.from_json(str(jsonl)).to_parquet(folder / "datasets.parquet")
    assert {"messages", "conversations", "id"} <= set(pd.read_parquet(folder / "pandas.parquet").columns)
    return {"jsonl": jsonl, "pandas": folder / "pandas.parquet", "datasets": folder / "datasets.parquet"}


def test_a_null_column_is_an_absent_column(capsys, columnar):
    """Datasets merged from several shapes: Parquet of mixed rows reads exactly as its JSONL."""
    reports = {name: _audit(capsys, path, "--workers", "1")[1] for name, path in columnar.items()}
    for r in reports.values():
        r.pop("source")
    assert reports["jsonl"]["rows"]["usable"] > 70  # negative control: without null handling most rows are rejected
    assert reports["pandas"] == reports["jsonl"] and reports["datasets"] == reports["jsonl"]


def test_nested_nulls_are_absent_fields():
    from chat_template_harness.audit.rows import decode
    from chat_template_harness.contract import conversation

    row = {
        "id": None,
        "messages": None,
        "conversations": [
            {"from": "human", "value": "hi", "role": None, "content": None, "tool_calls": None, "name": None},
            {
                "from": None,
                "value": None,
                "role": "assistant",
                "content": "hello",
                "reasoning_content": None,
                "tool_calls": None,
            },
        ],
    }
    conv = conversation.parse(decode(row), name="row 1", source="row 1")
    assert [(m.role, m.content, m.reasoning, m.tool_calls) for m in conv.messages] == [
        ("user", "hi", "", ()),
        ("assistant", "hello", "", ()),
    ]
