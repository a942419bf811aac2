"""Benchmarks (`nox -s bench`): figures printed, not asserted; targets live in the README.

- matrix: the bare cost of loading each tokenizer once (AutoTokenizer.from_pretrained), then,
  in the same process, the full golden + invariant run over every cell (hash checks, loads,
  reference preprocessing, invariants 1-8, golden comparison). The figure is their ratio
  (target: at most 1.5).
- smoke: the training step per family, on CPU, and on CUDA where one is present.
- audit: `cth audit`'s throughput (reference + invariants 1-5 per row, no user preprocessor) against
  the floor measured in the same run on the same rows: one chat-template render plus one
  tokenization per conversation, in one process (target: audit on every core / floor >= 0.5), and the
  contract's floor: one render plus one tokenization of each assistant turn's served prompt;
  1 against 2 workers; the same audit without its shortcuts (piecewise tokenization, the compiled template,
  the direct decode: `_audit_rows_per_s(shortcuts=False)`), the obvious way; peak memory of the audit
  process tree at 10k and `--audit-rows` rows (flat; 100k by default, 1M with `--audit-rows 1000000`).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bare_loads(tokenizers_dir: Path | None) -> dict[str, float]:
    from transformers import AutoTokenizer

    from chat_template_harness.models import source

    times = {}
    for spec in source.registry().values():
        directory, _ = source.locate(spec, tokenizers_dir)
        start = time.perf_counter()
        AutoTokenizer.from_pretrained(str(directory))
        times[spec.name] = time.perf_counter() - start
    return times


def full_run(tokenizers_dir: Path | None, goldens: Path) -> tuple[float, int, int]:
    from chat_template_harness.cells.model import Settings, Status
    from chat_template_harness.cells.model import cells as all_cells
    from chat_template_harness.cells.run import run_cell
    from chat_template_harness.outputs import golden

    start = time.perf_counter()
    cells = all_cells()
    settings = Settings(tokenizers_dir=tokenizers_dir)
    results = [run_cell(c, settings) for c in cells]
    problems = sum(r.status is Status.FAIL or golden.check(r, goldens) is not None for r in results)
    return time.perf_counter() - start, len(cells), problems


def matrix_figures(console: Console, tokenizers_dir: Path | None, goldens: Path) -> float:
    import transformers  # noqa: F401  (import cost is not a tokenizer load)

    loads = bare_loads(tokenizers_dir)
    bare = sum(loads.values())
    full, n_cells, problems = full_run(tokenizers_dir, goldens)
    table = Table(title="bare tokenizer loads (AutoTokenizer.from_pretrained, once each)", title_justify="left")
    table.add_column("model")
    table.add_column("seconds", justify="right")
    for name, seconds in loads.items():
        table.add_row(name, f"{seconds:.2f}")
    console.print(table)
    ratio = full / bare
    console.print(f"bare loads, all tokenizers:        {bare:6.2f} s")
    console.print(f"full golden + invariant run:       {full:6.2f} s  ({n_cells} cells, {problems} failing)")
    console.print(f"ratio full / bare:                 {ratio:6.2f}   (target <= 1.5)")
    console.print(f"peak resident memory:              {_peak_rss_mib():6.0f} MiB")
    return ratio


def _floor_rows_per_s(
    path: Path, model: str, think: str, limit: int, per_turn: bool = False, shortcuts: bool = True
) -> tuple[float, float]:
    """(rows/s, assistant turns per usable row) of the least an audit must do.

    The issue's floor: one render plus one tokenization per conversation. With `per_turn`, the contract's
    floor: one render plus one tokenization of every assistant turn's served prompt, which any preprocessor
    that trains every turn after the prompt the server sends must make (policy `all`). Without `shortcuts`,
    each render goes through `apply_chat_template` and each text is tokenized whole: the obvious way.
    """
    import chat_template_harness.contract.render as render_module
    import chat_template_harness.contract.tokens as tokens_module

    saved = render_module.FAST, tokens_module.SHORTCUTS
    render_module.FAST = tokens_module.SHORTCUTS = shortcuts
    try:
        return _floor_pass(path, model, think, limit, per_turn)
    finally:
        render_module.FAST, tokens_module.SHORTCUTS = saved


def _floor_pass(path: Path, model: str, think: str, limit: int, per_turn: bool) -> tuple[float, float]:
    from chat_template_harness.audit import rows
    from chat_template_harness.contract import conversation
    from chat_template_harness.contract.render import render, template_messages
    from chat_template_harness.contract.tokens import encode
    from chat_template_harness.models import source
    from chat_template_harness.models.rules import Think, ThinkMode
    from chat_template_harness.models.rules.registry import family_for

    loaded = source.load(model)
    fam = family_for(loaded.spec, loaded.tokenizer)
    mode = fam.mode(Think(think))
    assert isinstance(mode, ThinkMode), f"{model} think-{think}: the benchmark's model and mode must apply ({mode})"
    start, n, usable, turns = time.perf_counter(), 0, 0, 0
    for _, raw in rows.read(str(path)):
        if n >= limit:
            break
        n += 1
        try:
            conv = conversation.parse(rows.decode(raw), name="bench", source="bench")
            msgs = template_messages(conv, fam, mode)
            ends = conv.assistant_indices if per_turn else [len(msgs)]
            texts = [
                render(loaded.tokenizer, msgs[:end], family=fam, mode=mode, tools=conv.tools, add_generation_prompt=per_turn)
                for end in ends
            ]
        except Exception:  # broken rows cost a parse here too
            continue
        usable += 1
        turns += len(conv.assistant_indices)
        for text in texts:
            encode(loaded.tokenizer, text)  # the audit's own tokenization, so both sides pay the same per call
    return n / (time.perf_counter() - start), turns / max(usable, 1)


def _audit_rows_per_s(
    path: Path, model: str, think: str, workers: int, limit: int, engine: str = "local", shortcuts: bool = True
) -> tuple[float, float]:
    """(rows/s, peak RSS MiB of the audit and its worker processes) in a fresh interpreter, the tokenizer loaded
    before the clock starts as the floors load it (worker processes start inside the time); `engine` "ray" runs
    Ray Data in local mode (its start-up is part of the time: that is its overhead on one machine). Without
    `shortcuts`, every text is tokenized whole, decoded through the tokenizer, and every render goes through
    `apply_chat_template`: the obvious way, and what the audit did before them."""
    import json
    import subprocess

    off = "" if shortcuts else (
        "import chat_template_harness.contract.render as R,chat_template_harness.contract.tokens as T;R.FAST=False;T.SHORTCUTS=False;"
    )
    code = off + (
        "import json,resource,sys,time;from chat_template_harness.audit import audit;from chat_template_harness.audit.row import Job,context;"
        f"context(Job({model!r},{think!r}));"  # the one-off load (imports, tokenizer), outside the time as for the floors
        f"t=time.perf_counter();s=audit({str(path)!r},Job({model!r},{think!r}),engine={engine!r},workers={workers},limit={limit});"
        "d=time.perf_counter()-t;"
        "m=max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        "print(json.dumps([s.total/d,m/1024]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    rate, rss = json.loads(out.strip().splitlines()[-1])
    return rate, rss


def audit_figures(console: Console, rows_small: int = 10_000, rows_large: int = 100_000) -> float:
    import tempfile

    from chat_template_harness.audit import generate

    model, think = "qwen3-8b", "off"
    with tempfile.TemporaryDirectory() as tmp:
        path = generate.write_jsonl(Path(tmp) / "rows.jsonl", rows_large, seed=0)
        sample = min(rows_small, 2_000)
        floor, turns = _floor_rows_per_s(path, model, think, sample)
        obvious, _ = _floor_rows_per_s(path, model, think, sample, per_turn=True, shortcuts=False)
        one, _ = _audit_rows_per_s(path, model, think, 1, sample)
        two, _ = _audit_rows_per_s(path, model, think, 2, sample)
        plain_one, _ = _audit_rows_per_s(path, model, think, 1, sample, shortcuts=False)
        plain_two, _ = _audit_rows_per_s(path, model, think, 2, sample, shortcuts=False)
        on_ray, _ = _audit_rows_per_s(path, model, think, 2, sample, engine="ray")
        _, rss_small = _audit_rows_per_s(path, model, think, 2, rows_small)
        _, rss_large = _audit_rows_per_s(path, model, think, 2, rows_large)
    console.print(f"audit floor (render + tokenize, 1 process): {floor:7.1f} rows/s  ({sample} rows, {model} think-{think}, "
                  f"{turns:.1f} assistant turns per row)")
    console.print(f"the obvious way (each served prompt through apply_chat_template, tokenized whole, 1 process): "
                  f"{obvious:7.1f} rows/s")
    console.print(f"audit, 1 worker:                           {one:7.1f} rows/s  ratio {one / floor:.2f}  "
                  f"(the obvious way: {one / obvious:.2f})")
    console.print(f"audit, 2 workers:                          {two:7.1f} rows/s  ratio {two / floor:.2f}   (target >= 0.5)  "
                  f"(the obvious way: {two / obvious:.2f})")
    console.print(f"audit without the shortcuts, 1 worker:     {plain_one:7.1f} rows/s  (the shortcuts: x{one / plain_one:.2f})")
    console.print(f"audit without the shortcuts, 2 workers:    {plain_two:7.1f} rows/s  (the shortcuts: x{two / plain_two:.2f}; "
                  f"floor ratio without them {plain_two / floor:.2f})")
    console.print(f"audit, Ray Data (local mode, 2 workers):   {on_ray:7.1f} rows/s  ratio {on_ray / floor:.2f}  "
                  f"(overhead against the local engine: {1 - on_ray / two:.0%})")
    console.print(f"audit peak memory, {rows_small:,} rows:            {rss_small:7.0f} MiB")
    console.print(f"audit peak memory, {rows_large:,} rows:           {rss_large:7.0f} MiB   (flat: no growth with rows)")
    return two / floor


def main(argv: Sequence[str] | None = None) -> int:
    from chat_template_harness.models import source

    parser = argparse.ArgumentParser(prog="python -m chat_template_harness.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizers-dir", default=None)
    parser.add_argument("--goldens", default="goldens")
    parser.add_argument("--only", choices=["matrix", "smoke", "audit", "build"], default=None)
    parser.add_argument("--build-rows", type=int, default=2_000, help="rows of build_samples against the frameworks")
    parser.add_argument("--audit-rows", type=int, default=100_000, help="rows of the large audit memory figure")
    args = parser.parse_args(argv)
    base = Path(args.tokenizers_dir) if args.tokenizers_dir else source.tokenizers_dir_from_env()
    console = Console(highlight=False, soft_wrap=True)  # figures one per line, whatever the terminal width
    if args.only in (None, "matrix"):
        matrix_figures(console, base, Path(args.goldens))
    if args.only in (None, "smoke"):
        from chat_template_harness.smoke import bench_figures

        bench_figures(console, base)
    if args.only in (None, "audit"):
        audit_figures(console, rows_large=args.audit_rows)
    if args.only in (None, "build"):
        from chat_template_harness.bench_build import build_figures

        build_figures(console, args.build_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
