"""Smoke training step: no loss and no gradient flow through tokens the model never generates.

For a model and think mode, a tiny randomly initialised causal LM of the family's architecture
(built in code from a small config and the tokenizer's real vocabulary size; seeded; no weights
downloaded) takes a step on samples from the matrix. Labels are the ids where loss_mask = 1 and
-100 elsewhere. The checks:
- the loss is finite;
- ∂loss/∂logits is exactly zero at every position whose next token is not trained, and non-zero at
  every position whose next token is;
- no gradient reaches a token the contract says is never trained (an empty think block, a header,
  the generation-prompt opener, a reply after a prompt the server never sends): each such token is
  named with its position;
- a few AdamW steps lower the trained loss.
On CUDA the model runs in bf16 (the loss in fp32); on CPU in fp32.
"""

from __future__ import annotations

import json
import math
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from chat_template_harness.contract import conversation
from chat_template_harness.contract.invariants import TokenRole, token_roles
from chat_template_harness.contract.sample import resolve_mode
from chat_template_harness.contract.tokens import token_strings
from chat_template_harness.contract.turns import Kind
from chat_template_harness.errors import HarnessError
from chat_template_harness.models import source
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family_for

# Conversations that exercise empty think blocks, rewritten history, tool calls and an empty reply.
FIXTURES = ("single_turn", "multi_turn", "reasoning_every_turn", "tool_call", "empty_assistant_content")
IGNORE = -100
SEED = 0


@dataclass(frozen=True)
class Architecture:
    """The tiny model a family trains on: transformers' config and model class names, and the config's values."""

    config: str
    model: str
    values: dict[str, Any]  # the common sizes, then the shared overrides it names, then its own


@cache
def architectures() -> dict[str, Architecture]:
    """data/architectures.toml, read once: family -> the architecture its models use."""
    raw = tomllib.loads(resources.files("chat_template_harness").joinpath("data/architectures.toml").read_text("utf-8"))
    shared = raw.get("shared", {})
    return {
        name: Architecture(
            entry["config"],
            entry["model"],
            {**raw["common"], **shared.get(entry.get("shared", ""), {}), **entry.get("overrides", {})},
        )
        for name, entry in raw["families"].items()
    }


@dataclass(frozen=True)
class Leak:
    """A position whose logits get gradient although the token they predict must not be trained."""

    fixture: str
    sample: int
    position: int  # of the token predicted (its logits sit at position - 1)
    token: str
    kind: Kind
    turn: int | None


@dataclass(frozen=True)
class EmptyThink:
    fixture: str
    sample: int
    positions: tuple[int, ...]
    tokens: tuple[str, ...]
    gradient: float  # largest |∂loss/∂logits| over the positions that predict them


@dataclass(frozen=True)
class SmokeResult:
    model: str
    think: Think
    device: str
    dtype: str
    preprocessor: str
    architecture: str
    vocab_size: int
    parameters: int
    samples: int
    tokens: int
    trained: int
    zero_gradient_ok: bool  # every untrained-next position has exactly zero gradient
    dead_trained: int  # trained-next positions with zero gradient (should be 0)
    losses: tuple[float, ...]  # before the first step, then after each step
    leaks: tuple[Leak, ...]
    empty_think: tuple[EmptyThink, ...]
    seconds: float
    errors: tuple[str, ...] = ()  # fixtures the preprocessor raised on (each fails the step)

    @property
    def ok(self) -> bool:
        return (
            not self.leaks
            and not self.errors
            and self.zero_gradient_ok
            and self.dead_trained == 0
            and all(math.isfinite(x) for x in self.losses)
            and self.losses[-1] < self.losses[0]
        )


def vocab_size(loaded: source.LoadedTokenizer) -> int:
    """The embedding rows of the real model: config.json's vocab_size (padding rows included) where known."""
    config = loaded.directory / "config.json"
    if config.is_file():
        data = json.loads(config.read_text("utf-8"))
        size = data.get("vocab_size") or data.get("text_config", {}).get("vocab_size")
        if size:
            return max(int(size), len(loaded.tokenizer))
    return len(loaded.tokenizer)


def tiny_model(family_name: str, vocab: int, device: str) -> Any:
    import torch
    import transformers

    # a user's family (derived or from a rules file) trains a plain Llama: the step checks the mask, not the architecture
    arch = architectures().get(family_name, architectures()["llama3"])
    if not hasattr(transformers, arch.config):  # a family newer than the installed transformers (4.57: no DeepSeek V4)
        arch = architectures()["llama3"]
    config = getattr(transformers, arch.config)(vocab_size=vocab, **arch.values)
    torch.manual_seed(SEED)
    model = getattr(transformers, arch.model)(config)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    return model.to(device=device, dtype=dtype).train()


def _samples(
    loaded: source.LoadedTokenizer, think: Think, preprocessor: str, errors: list[str], served_by: str = "transformers"
) -> list[tuple[str, int, list[Any], list[int], list[int]]]:
    """(fixture, sample index, reference plans, input_ids, loss_mask) for every applicable smoke fixture, each
    through the one runner (a user's preprocessor behind its guard).

    A preprocessor that raises on a fixture is recorded in `errors` (and fails the step), never skipped silently."""
    from chat_template_harness import external
    from chat_template_harness.cells.model import Cell, Settings
    from chat_template_harness.cells.run import run_conversation

    preprocess = None  # the callable; `preprocessor` names it
    if preprocessor == "naive":
        preprocess = external.load_callable("chat_template_harness.examples.naive:preprocess")
    elif preprocessor != "reference":
        preprocess = external.load_callable(preprocessor)
    settings = Settings(served_by=served_by, determinism=False)
    out = []
    for name in FIXTURES:
        result = run_conversation(
            Cell(loaded.spec.name, think, name), loaded, conversation.fixture(name), settings, preprocess
        )
        if result.code == "na.rules":
            continue
        if result.result is None:  # the preprocessor raised or declined, or the template cannot render the fixture
            errors.append(f"{name}: {result.reason}")
            continue
        produced = [
            (list(s.input_ids), list(s.loss_mask)) for s in (result.samples if preprocess else result.result.samples)
        ]
        out += [(name, i, list(result.result.plans), ids, mask) for i, (ids, mask) in enumerate(produced)]
    return out


def run_smoke(
    model: str,
    think: Think,
    *,
    device: str | None = None,
    preprocessor: str = "reference",
    steps: int = 3,
    tokenizers_dir: Path | str | None = None,
    served_by: str = "transformers",
) -> SmokeResult:
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise HarnessError("CUDA is not available on this machine", "run with --device cpu")
    loaded = source.load(model, tokenizers_dir)
    fam = family_for(loaded.spec, loaded.tokenizer)
    resolve_mode(fam, think, conversation.fixture("single_turn"))  # N/A modes stop here, with the reason
    errors: list[str] = []
    data = _samples(loaded, think, preprocessor, errors, served_by)
    if not data:
        raise HarnessError(
            f"the preprocessor gave no usable sample for {model} think-{think} ({errors[0] if errors else 'no fixture applies'})",
            f"run `cth check {preprocessor} --model {model} --think {think}` to see each cell",
        )
    vocab = vocab_size(loaded)
    start = time.perf_counter()
    net = tiny_model(fam.name, vocab, device)

    batch = [
        (
            torch.tensor([ids], device=device),
            torch.tensor([[i if m else IGNORE for i, m in zip(ids, mask, strict=True)]], device=device),
        )
        for *_, ids, mask in data
    ]
    n_trained = sum(int((labels[0, 1:] != IGNORE).sum()) for _, labels in batch)
    loss, logits_all = _full_loss(net, batch, n_trained)
    loss.backward()
    losses = [loss.item()]
    zero_ok, dead, leaks, empties = _gradients(loaded, data, batch, logits_all)

    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    del logits_all
    for _ in range(steps):
        optimizer.step()
        optimizer.zero_grad()
        loss = _trained_loss(net, batch, n_trained)
        loss.backward()
        losses.append(loss.item())

    return SmokeResult(
        model=loaded.spec.name,
        think=think,
        device=device,
        dtype="bfloat16" if device == "cuda" else "float32",
        preprocessor=preprocessor,
        architecture=type(net).__name__,
        vocab_size=vocab,
        parameters=sum(p.numel() for p in net.parameters()),
        samples=len(data),
        tokens=sum(len(ids) for *_, ids, _ in data),
        trained=n_trained,
        zero_gradient_ok=zero_ok,
        dead_trained=dead,
        losses=tuple(losses),
        leaks=tuple(leaks),
        empty_think=tuple(empties),
        seconds=time.perf_counter() - start,
        errors=tuple(errors),
    )


def _full_loss(net: Any, batch: list[tuple[Any, Any]], n_trained: int) -> tuple[Any, list[Any]]:
    """The mean loss over the trained positions, with the logits at every position kept (to read ∂loss/∂logits
    everywhere)."""
    import torch

    total, logits_all = None, []
    for ids, labels in batch:
        logits = net(input_ids=ids).logits
        logits.retain_grad()
        logits_all.append(logits)
        part = torch.nn.functional.cross_entropy(
            logits[0, :-1].float(), labels[0, 1:], ignore_index=IGNORE, reduction="sum"
        )
        total = part if total is None else total + part
    assert total is not None  # the caller's batch holds a sample
    return total / max(n_trained, 1), logits_all


def _trained_loss(net: Any, batch: list[tuple[Any, Any]], n_trained: int) -> Any:
    """The same loss, with logits computed only where the next token is trained (the optimizer steps)."""
    import torch

    total = None
    for ids, labels in batch:
        hidden = net.model(input_ids=ids).last_hidden_state[0, :-1]
        keep = labels[0, 1:] != IGNORE
        logits = net.get_output_embeddings()(hidden[keep])
        part = torch.nn.functional.cross_entropy(logits.float(), labels[0, 1:][keep], reduction="sum")
        total = part if total is None else total + part
    assert total is not None  # the caller's batch holds a sample
    return total / max(n_trained, 1)


def _gradients(
    loaded: source.LoadedTokenizer, data: list[Any], batch: list[tuple[Any, Any]], logits_all: list[Any]
) -> tuple[bool, int, list[Leak], list[EmptyThink]]:
    """What the first backward pass shows, per position: whether every untrained position got no gradient, how many
    trained ones got none (dead), where gradient reached a token no right sample trains (leaks), and each empty think
    block's largest gradient."""
    zero_ok, dead, leaks, empties = True, 0, [], []
    for (fixture, sample_index, plans, ids, _), (_, labels), logits in zip(data, batch, logits_all, strict=True):
        grad = logits.grad[0].float().abs().amax(dim=-1)  # per position, over the vocabulary
        roles: list[TokenRole] = token_roles(loaded.tokenizer, plans, ids)
        strings = token_strings(loaded.tokenizer, ids)
        for t in range(1, len(ids)):
            g = float(grad[t - 1])
            if labels[0, t] == IGNORE:
                zero_ok &= g == 0.0
            elif g == 0.0:
                dead += 1
            if g != 0.0 and not roles[t].trainable:
                leaks.append(Leak(fixture, sample_index, t, strings[t], roles[t].kind, roles[t].turn))
        for run in _empty_think_runs(roles):
            empties.append(
                EmptyThink(
                    fixture,
                    sample_index,
                    tuple(run),
                    tuple(strings[t] for t in run),
                    max(float(grad[t - 1]) for t in run),
                )
            )
    return zero_ok, dead, leaks, empties


def _empty_think_runs(roles: Sequence[TokenRole]) -> list[list[int]]:
    runs: list[list[int]] = []
    for t, role in enumerate(roles):
        if role.kind is Kind.EMPTY_THINK and t > 0:
            if runs and runs[-1][-1] == t - 1:
                runs[-1].append(t)
            else:
                runs.append([t])
    return runs


def report_lines(result: SmokeResult) -> list[str]:
    steps = len(result.losses) - 1
    lines = [
        f"smoke {result.model} think-{result.think} · {result.preprocessor} preprocessor · {result.device} {result.dtype} · "
        f"{result.architecture} (vocab {result.vocab_size}, {result.parameters / 1e6:.1f}M parameters, seed {SEED})",
        f"samples {result.samples} · tokens {result.tokens} · trained {result.trained} · {result.seconds:.2f} s",
        f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f} after {steps} AdamW steps "
        f"({'lower' if result.losses[-1] < result.losses[0] else 'NOT lower'}; finite: "
        f"{'yes' if all(math.isfinite(x) for x in result.losses) else 'NO'})",
        "∂loss/∂logits: "
        + ("exactly 0" if result.zero_gradient_ok else "NOT 0")
        + " wherever the next token is untrained; "
        + (
            "non-zero at every trained position"
            if result.dead_trained == 0
            else f"0 at {result.dead_trained} trained positions"
        ),
    ]
    if result.empty_think:
        lines.append("empty think blocks (template-injected):")
        for e in result.empty_think:
            toks = " ".join(repr(t) for t in e.tokens)
            lines.append(
                f"  {e.fixture} sample {e.sample} positions {e.positions[0]}-{e.positions[-1]} {toks}: max |∂loss/∂logits| {e.gradient:g}"
            )
    if result.leaks:
        lines.append(f"gradient reaches {len(result.leaks)} token(s) that must never be trained:")
        for leak in result.leaks[:40]:
            turn = f", turn {leak.turn}" if leak.turn is not None else ""
            lines.append(
                f"  {leak.fixture} sample {leak.sample} position {leak.position} {leak.token!r} ({leak.kind.value}{turn})"
            )
        if len(result.leaks) > 40:
            lines.append(f"  … and {len(result.leaks) - 40} more")
    lines += [f"not checked, the preprocessor failed: {e}" for e in result.errors]
    lines.append("result: " + ("PASS" if result.ok else "FAIL"))
    return lines


def bench_figures(console: Any, tokenizers_dir: Path | None) -> None:
    """Smoke step time per family (one model each), CPU and, where present, CUDA."""
    import torch
    from rich.table import Table

    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    table = Table(title="smoke step per family (tiny model, reference samples, 3 AdamW steps)", title_justify="left")
    for column in ("family", "model", "think", *(f"{d} s" for d in devices), "tokens"):
        table.add_column(column)
    seen: set[str] = set()
    total = dict.fromkeys(devices, 0.0)
    for spec in source.registry().values():
        if spec.family in seen:
            continue
        seen.add(spec.family)
        fam = family_for(spec)
        think = next(t for t in (Think.OFF, Think.ON) if _applicable(fam, t))
        row = [fam.name, spec.name, str(think)]
        tokens = 0
        for d in devices:
            result = run_smoke(spec.name, think, device=d, tokenizers_dir=tokenizers_dir)
            total[d] += result.seconds
            row.append(f"{result.seconds:.2f}")
            tokens = result.tokens
        table.add_row(*row, str(tokens))
    console.print(table)
    for d in devices:
        console.print(f"smoke step, all families, {d}: {total[d]:.2f} s")


def _applicable(fam: Any, think: Think) -> bool:
    from chat_template_harness.models.rules import NotApplicable

    return not isinstance(fam.mode(think), NotApplicable)
