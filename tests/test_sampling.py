"""Statistical audits: the sample is seeded, uniform and keeps real row numbers; Wilson intervals are right;
a sampled audit's intervals contain the full audit's rates."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from chat_template_harness import cli
from chat_template_harness.audit import generate
from chat_template_harness.audit.sampling import Plan, sample, wilson

NAIVE = "chat_template_harness.examples.naive:preprocess"


@pytest.mark.parametrize(
    ("hits", "n", "low", "high"),
    [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0), (1, 100, 0.0018, 0.0545)],
)
def test_wilson_matches_published_values(hits, n, low, high):
    got = wilson(hits, n)
    assert got == pytest.approx((low, high), abs=5e-4)


def test_a_plan_is_a_count_or_a_fraction():
    assert Plan.parse("2000") == Plan(size=2000) and Plan.parse("0.02") == Plan(fraction=0.02)
    for bad in ("0", "1.5", "-3", "x"):
        with pytest.raises(ValueError):
            Plan.parse(bad)


def test_the_reservoir_is_seeded_uniform_and_keeps_row_numbers():
    rows = [(n, f"row {n}") for n in range(1, 1001)]
    first = sample(iter(rows), Plan(size=50, seed=1))
    kept = list(first.rows)
    assert first.population == 1000 and len(kept) == 50 and all(raw == f"row {n}" for n, raw in kept)
    assert kept == list(sample(iter(rows), Plan(size=50, seed=1)).rows)  # seeded
    assert kept != list(sample(iter(rows), Plan(size=50, seed=2)).rows)
    # uniform: over many seeds every decile of the stream is drawn about equally often
    deciles = Counter(
        (n - 1) // 100 for seed in range(200) for n, _ in sample(iter(rows), Plan(size=10, seed=seed)).rows
    )
    assert max(deciles.values()) / min(deciles.values()) < 1.35, deciles


def test_a_short_stream_is_kept_whole_and_a_fraction_streams():
    assert [n for n, _ in sample(iter([(1, "a"), (2, "b")]), Plan(size=5)).rows] == [1, 2]
    result = sample(iter([(n, n) for n in range(1, 2001)]), Plan(fraction=0.1, seed=0))
    kept = list(result.rows)
    assert result.population == 2000 and 150 < len(kept) < 250


def _audit(capsys, path: Path, out: Path, *args: str) -> dict:
    code = cli.main(
        [
            "audit",
            str(path),
            "--model",
            "qwen3-8b",
            "--think",
            "off",
            "--preprocessor",
            NAIVE,
            "--workers",
            "2",
            "--json",
            str(out),
            *args,
        ]
    )
    assert code == 1  # the naive example breaks the contract
    capsys.readouterr()
    return json.loads(out.read_text("utf-8"))


def test_a_sampled_audit_brackets_the_full_audits_rates(capsys, tmp_path: Path):
    data = generate.write_jsonl(tmp_path / "rows.jsonl", 300, seed=11)
    full = _audit(capsys, data, tmp_path / "full.json")
    sampled = _audit(capsys, data, tmp_path / "sampled.json", "--sample", "100", "--seed", "3")
    assert full["sample"] is None and sampled["rows"]["total"] == 100 and sampled["sample"]["population"] == 300
    rates = {  # the full run's rates, read off its own report
        "rejected": full["rows"]["rejected"] / full["rows"]["total"],
        "preprocessor_wrong": full["preprocessor"]["rows_wrong"] / full["preprocessor"]["rows_checked"],
        "reasoning_dropped": full["reference"]["rows_with_reasoning_dropped"] / full["rows"]["usable"],
    }
    for name, rate in rates.items():
        e = sampled["sample"]["estimates"][name]
        assert e["low"] <= rate <= e["high"], (name, rate, e)
    rows = {w["row"] for w in sampled["preprocessor"]["worst"]}
    assert rows and all(1 <= r <= 300 for r in rows)


def test_the_report_says_the_figures_are_estimates(capsys, tmp_path: Path):
    data = generate.write_jsonl(tmp_path / "rows.jsonl", 60, seed=2)
    assert cli.main(
        ["audit", str(data), "--model", "qwen3-8b", "--think", "off", "--sample", "0.5", "--workers", "1"]
    ) in (0, 1)
    out = capsys.readouterr().out
    assert "These figures are estimates" in out and "95% confidence interval (Wilson)" in out
