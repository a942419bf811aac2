"""Benchmark (`python -m chat_template_harness.bench --only build`): build_samples against the frameworks' own
preprocessing, rows per second on one core, on the same generated rows (audit/generate.py).

Each framework is called the way its adapter in `frameworks/` calls it (TRL's `_tokenize` with its training
template, LLaMA-Factory's converter and supervised processor, axolotl's chat_template strategy), on the harness's
request for the row; building that request is not timed, while build_samples is timed from the row as the
dataset holds it (parsing included). Each path first runs a few rows untimed (imports, template compilation,
LLaMA-Factory's tokenizer copy), every path from the same cold start (`cold`: the harness's text caches and the
Rust tokenizer's word cache emptied, so no path splits the same rows' words after another already has).
A row a framework declines or fails on still counts in its time (the figure is
rows read per second) and is reported. The process is pinned to one core and timed in its own CPU seconds (so a
busy machine does not move the figures). Figures are printed, not asserted;
"met" means build_samples is at least as fast as the fastest framework.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MODEL, THINK = "qwen3-8b", "on"
WARMUP = 5


@dataclass(frozen=True)
class Figure:
    label: str
    rows_per_s: float
    rows: int
    failed: int  # rows the path declined or failed on (included in the time)
    samples: int  # samples written (build_samples: one per turn where the template rewrites history)
    tokens_per_s: float  # tokens of the samples written, per second


def frameworks() -> dict[str, Callable[[Any], Any]]:
    """label -> the adapter callable, as the conformance page names them."""
    from chat_template_harness.frameworks import axolotl, llamafactory, trl_sft

    return {
        "TRL 1.16 (_tokenize, training template)": trl_sft.preprocess,
        "LLaMA-Factory 0.9.5 (supervised, qwen3, sharegpt)": llamafactory.ADAPTERS["qwen3"],
        "axolotl 0.21.0 (chat_template, train_on_eos turn)": axolotl.turn,
    }


def requests(tokenizer: Any, rows: Sequence[Any]) -> list[Any]:
    """The harness's request for each usable row (what the adapters are given); unusable rows are left out."""
    from chat_template_harness import external
    from chat_template_harness.contract import conversation
    from chat_template_harness.errors import HarnessError
    from chat_template_harness.models.rules import Think, ThinkMode
    from chat_template_harness.models.rules.registry import for_model

    fam, think = for_model(MODEL), Think(THINK)
    mode = fam.mode(think)
    assert isinstance(mode, ThinkMode), f"{MODEL} think-{THINK}: the benchmark's model and mode must apply ({mode})"
    out = []
    for raw in rows:
        try:
            conv = conversation.parse(raw, name="bench", source="bench")
        except HarnessError:
            continue
        out.append(external.request_for(MODEL, conv, tokenizer, fam, think, mode))
    return out


def timed(
    label: str, call: Callable[[Any], Any], items: Sequence[Any], started: Callable[[], None] | None = None
) -> Figure:
    """`call` on every item, after a few untimed ones; `started` runs once those are done, as the clock starts."""
    for item in items[:WARMUP]:
        _attempt(call, item)
    if started is not None:
        started()
    start = time.process_time()  # CPU time of this process, pinned to one core: the figure other processes' load
    outputs = [_attempt(call, item) for item in items]  # on a shared machine does not move
    seconds = time.process_time() - start
    samples = [s for out in outputs if out is not None for s in _samples(out)]  # read after the clock stops
    return Figure(
        label,
        len(items) / seconds,
        len(items),
        outputs.count(None),
        len(samples),
        sum(len(s) for s in samples) / seconds,
    )


def _attempt(call: Callable[[Any], Any], item: Any) -> Any:
    try:
        return call(item)
    except Exception:  # a declined or failing row is the framework's finding, not the bench's
        return None


def _samples(out: Any) -> list[Sequence[int]]:
    from chat_template_harness.external import to_samples

    return [
        s.input_ids for s in (out if isinstance(out, list) and out and hasattr(out[0], "length") else to_samples(out))
    ]


def figures(tokenizer: Any, usable: Sequence[Any]) -> list[Figure]:
    """build_samples first, then each framework, on the same rows."""
    from chat_template_harness.build import build_samples  # the public `chat_template_harness.build_samples`

    reqs = requests(tokenizer, usable)
    paths: list[tuple[str, Callable[[Any], Any], Sequence[Any]]] = [
        ("build_samples", lambda r: build_samples(tokenizer, r, think=THINK), usable),
        *((label, adapter, reqs) for label, adapter in frameworks().items()),
        # one sample per row, as the frameworks write (the final turn alone is planned; the others are reported)
        ("build_samples, policy last", lambda r: build_samples(tokenizer, r, think=THINK, policy="last"), usable),
    ]
    out = []
    for label, call, items in paths:
        cold(tokenizer)  # every path, the frameworks' too, from the same cold start
        out.append(timed(label, call, items))
    return out


@dataclass(frozen=True)
class Breakdown:
    """Where build_samples' CPU time goes, per row: the real template's renders (each turn's served prompt and
    finished turn, the oracle's), the tokenization of the samples, and everything else."""

    renders_per_row: float
    render_ms: float
    tokenize_ms: float
    total_ms: float

    @property
    def rest_ms(self) -> float:
        return self.total_ms - self.render_ms - self.tokenize_ms


def breakdown(tokenizer: Any, rows: Sequence[Any]) -> Breakdown:
    """build_samples (policy all) on `rows` again, caches emptied, with the time inside the template's renders and
    inside the samples' tokenization summed apart (one clock read on each side of each call)."""
    from chat_template_harness.build import build_samples
    from chat_template_harness.contract import sample, turns

    spent = {"render": 0.0, "tokenize": 0.0}
    calls = {"render": 0, "tokenize": 0}

    def clocked(kind: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return call(*args, **kwargs)
            finally:
                spent[kind] += time.process_time() - start
                calls[kind] += 1

        return wrapper

    def started() -> None:  # the untimed rows' calls are not counted
        spent.update(render=0.0, tokenize=0.0)
        calls.update(render=0, tokenize=0)

    names = [
        (turns, "render", "render"),
        *((sample, n, "tokenize") for n in ("encode_segments", "ids_sides", "token_ids")),
    ]
    saved = [getattr(module, name) for module, name, _ in names]
    for module, name, kind in names:
        setattr(module, name, clocked(kind, getattr(module, name)))
    try:
        cold(tokenizer)
        whole = timed("breakdown", lambda r: build_samples(tokenizer, r, think=THINK), rows, started)
    finally:
        for (module, name, _), original in zip(names, saved, strict=True):
            setattr(module, name, original)
    per_row = 1000 / max(len(rows), 1)
    return Breakdown(
        calls["render"] / max(len(rows), 1),
        spent["render"] * per_row,
        spent["tokenize"] * per_row,
        1000 / whole.rows_per_s,
    )


def source_tokenizer() -> Any:
    from chat_template_harness.models import source

    return source.load(MODEL).tokenizer


def usable_rows(n: int, seed: int = 0) -> list[Any]:
    """The n generated rows that parse as JSON (a truncated line is no path's)."""
    from chat_template_harness.audit import generate

    rows = [_json(line) for line in generate.lines(n, seed=seed)]
    return [r for r in rows if r is not None]


def cold(tokenizer: Any = None) -> None:
    """Start a path cold: a dataset's rows are read once, so no path may find the same rows' work left by the one
    before it. The harness's caches of texts and their tokens are emptied, and so is the word cache of the Rust
    tokenizer's model (BPE keeps every word it has split until its cache is full) of `tokenizer` and of the copies
    LLaMA-Factory's adapter keeps: a path run after another on the same rows would otherwise split none of their
    words again."""
    from chat_template_harness.contract import tokens
    from chat_template_harness.frameworks import llamafactory

    tokens._encode.cache_clear()
    tokens._pieces.cache_clear()
    for each in (tokenizer, *llamafactory.tokenizer_copies()):
        # `_clear_cache`: tokenizers' own method on its BPE model (none on a model without a word cache)
        clear = getattr(getattr(getattr(each, "backend_tokenizer", None), "model", None), "_clear_cache", None)
        if clear is not None:
            clear()


def _json(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None  # a truncated line: no path gets it


def one_core() -> None:
    """Pin this process (and the tokenizers' threads) to one core."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def build_figures(console: Any, rows: int = 2_000) -> list[tuple[str, float, str]]:
    """Print rows/s per path and whether build_samples is at least as fast as the fastest framework; returns, per
    policy (`all`, the default, then `last`), its name in the targets table, its ratio (target: at least 1) and the
    figure as that table shows it."""
    one_core()
    tokenizer, usable = source_tokenizer(), usable_rows(rows)
    found = figures(tokenizer, usable)
    ours, theirs, last = found[0], found[1:-1], found[-1]
    console.print(f"build_samples against the frameworks: {rows} generated rows, {MODEL} think-{THINK}, one core")
    for f in found:
        failed = f", {f.failed} rows declined or failed" if f.failed else ""
        console.print(
            f"  {f.label:52s} {f.rows_per_s:7.1f} rows/s {f.tokens_per_s:9.0f} tokens/s  ({f.samples} samples{failed})"
        )
    fastest = max(theirs, key=lambda f: f.rows_per_s)
    name = fastest.label.split(" (")[0]
    per_policy = [
        (f"policy all: every turn, {ours.samples / max(ours.rows, 1):.1f} samples a row", ours),
        (f"policy last: the final turn, {last.samples / max(last.rows, 1):.1f} sample a row", last),
    ]
    out = []
    for what, f in per_policy:
        ratio = f.rows_per_s / fastest.rows_per_s
        console.print(
            f"build_samples ({what}) / fastest framework ({name}): {ratio:.2f}  "
            f"({'met' if ratio >= 1 else 'not met'}: target >= 1)"
        )
        figure = f"{f.rows_per_s:.0f} / {fastest.rows_per_s:.0f} rows/s ({name}) = {ratio:.2f}"
        out.append((f"build_samples ({what}) / fastest framework, rows/s on 1 core", ratio, figure))
    parts = breakdown(tokenizer, usable)
    console.print(
        f"where build_samples' time goes, CPU ms per row (policy all): the template's renders {parts.render_ms:.2f} "
        f"({parts.renders_per_row:.1f} renders a row: each turn's served prompt and finished turn, the oracle's), "
        f"tokenization {parts.tokenize_ms:.2f}, the rest {parts.rest_ms:.2f}; total {parts.total_ms:.2f}, against "
        f"{1000 / fastest.rows_per_s:.2f} for the fastest framework's whole row"
    )
    return out
