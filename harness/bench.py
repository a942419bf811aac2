"""Benchmarks (`nox -s bench`): figures printed, not asserted; targets live in the README.

- matrix: the bare cost of loading each tokenizer once (AutoTokenizer.from_pretrained), then,
  in the same process, the full golden + invariant run over every cell (hash checks, loads,
  reference preprocessing, invariants 1-6, golden comparison). The figure is their ratio
  (target: at most 1.5).
- smoke: the training step per family, on CPU, and on CUDA where one is present.
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

    from harness import source

    times = {}
    for spec in source.registry().values():
        directory, _ = source.locate(spec, tokenizers_dir)
        start = time.perf_counter()
        AutoTokenizer.from_pretrained(str(directory))
        times[spec.name] = time.perf_counter() - start
    return times


def full_run(tokenizers_dir: Path | None, goldens: Path) -> tuple[float, int, int]:
    from harness import golden, matrix

    start = time.perf_counter()
    cells = matrix.cells()
    results = [matrix.run_cell(c, tokenizers_dir) for c in cells]
    problems = sum(r.status is matrix.Status.FAIL or golden.check(r, goldens) is not None for r in results)
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


def main(argv: Sequence[str] | None = None) -> int:
    from harness import source

    parser = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizers-dir", default=None)
    parser.add_argument("--goldens", default="goldens")
    parser.add_argument("--only", choices=["matrix", "smoke"], default=None)
    args = parser.parse_args(argv)
    base = Path(args.tokenizers_dir) if args.tokenizers_dir else source.tokenizers_dir_from_env()
    console = Console(highlight=False)
    if args.only in (None, "matrix"):
        matrix_figures(console, base, Path(args.goldens))
    if args.only in (None, "smoke"):
        from harness.smoke import bench_figures

        bench_figures(console, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
