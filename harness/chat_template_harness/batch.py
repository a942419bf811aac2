"""`sample_builder`: build_samples over a `datasets` dataset, as `ds.map(builder, batched=True, ...)`.

Each input row (OpenAI `messages`, ShareGPT or EAGLE `conversations`, content parts, reasoning fields or inline
`<think>`, `tools` beside the messages; a row that is one JSON string is read as JSON) becomes one output row per
sample (`build.TrainingSample.as_row`). A row it cannot use is dropped and counted, never silently:
- `builder.dropped` counts the rows this process dropped, by reason, and `builder.summary()` says so in one line;
- with `with_indices=True` every output row carries `cth_row`, the index of the row it came from, so the rows
  dropped are exactly those no output row names (exact with `num_proc` and with `datasets`' cache too, where the
  counters of this process see nothing).
A rule the template does not decide fails at construction (UndecidedRule): every row would depend on it.

    builder = sample_builder(tokenizer, think="off", max_length=4096)
    train = ds.map(builder, batched=True, with_indices=True, remove_columns=ds.column_names)
    print(builder.summary())
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chat_template_harness.build import TemplateChangedError, build_samples, resolve
from chat_template_harness.contract.sample import CellNotApplicable
from chat_template_harness.errors import FixtureError, HarnessError

COLUMNS = ("input_ids", "labels", "loss_mask", "length", "cth_turns", "cth_report")
# error class -> the reason a dropped row is counted under (codes, not messages)
REASONS = {FixtureError: "a row the harness cannot read", CellNotApplicable: "not applicable to this model and mode"}
RENDER = "the template cannot render it as its rules say"
MALFORMED = "malformed JSON text"
EXAMPLES = 3  # messages kept per reason, to show what was dropped
# the reference's note on a turn whose reasoning the mode drops (contract/turns.py; audit/row.py counts it alike)


@dataclass
class SampleBuilder:
    """A batched `datasets.map` function; see the module docstring. Options are build_samples' own."""

    tokenizer: Any
    think: str | bool | None = None
    tools: Sequence[Mapping[str, Any]] | None = None
    policy: str = "all"
    served_by: str = "transformers"
    max_length: int | None = None
    model: str | None = None
    name: str | None = field(default=None, init=False)  # the pinned model the tokenizer was loaded as, if it was
    rows: int = 0  # rows this process read
    samples: int = 0  # samples it wrote
    dropped_turns: int = 0  # turns left out by max_length, in rows that kept others or in samples left out whole
    dropped_samples: int = 0
    reasoning_dropped: int = 0  # turns whose reasoning the think mode drops (the mode does not think)
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> rows dropped whole
    examples: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        target = resolve(self.tokenizer, self.model)  # a name loads; an undecided rule raises now
        given_a_name = isinstance(self.tokenizer, str)
        self.tokenizer = target.tokenizer
        self.name = target.name if given_a_name else _pinned_name(target)

    def __reduce__(self) -> Any:
        """What `datasets` hashes for its cache and sends to `num_proc` workers: a pinned tokenizer by its name (it
        loads the same files there), not its whole vocabulary (seconds of hashing per `map`); any other by value."""
        if self.name is None:
            return object.__reduce__(self)
        options = (self.think, self.tools, self.policy, self.served_by, self.max_length, self.model)
        return (_by_name, (self.name, *options))

    def __call__(
        self, batch: Mapping[str, Sequence[Any]], indices: Sequence[int] | None = None
    ) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {c: [] for c in (*COLUMNS, *(("cth_row",) if indices is not None else ()))}
        for i, row in enumerate(_rows(batch)):
            self.rows += 1
            for sample in self._samples(row, i if indices is None else indices[i]):
                for key, value in sample.as_row().items():
                    out[key].append(value)
                if indices is not None:
                    out["cth_row"].append(indices[i])
        return out

    def _samples(self, row: Any, number: int) -> list[Any]:
        try:
            samples = build_samples(
                self.tokenizer,
                _decoded(row),
                think=self.think,
                tools=self.tools,
                policy=self.policy,
                served_by=self.served_by,
                max_length=self.max_length,
                model=self.model,
            )
        except json.JSONDecodeError as exc:
            return self._drop(MALFORMED, f"row {number}: {exc.msg}")
        except TemplateChangedError:
            raise  # the tokenizer's fault, not the row's: every row would be dropped under a reason that is not so
        except HarnessError as exc:
            reason = next((r for cls, r in REASONS.items() if isinstance(exc, cls)), RENDER)
            return self._drop(reason, f"row {number}: {exc}")
        self.samples += len(samples)
        self.dropped_turns += samples.dropped_turns
        self.dropped_samples += samples.dropped_samples
        self.reasoning_dropped += sum(any(n.drops_reasoning for n in t.notes) for t in samples.report)
        return list(samples)

    def _drop(self, reason: str, example: str) -> list[Any]:
        self.dropped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES:
            shown.append(example)
        return []

    def summary(self) -> str:
        """One line: rows read, samples written, what was dropped and why (this process's counts)."""
        parts = [f"{self.rows} rows -> {self.samples} samples"]
        parts += [f"{n} rows dropped: {reason}" for reason, n in self.dropped.most_common()]
        if self.reasoning_dropped:
            parts.append(f"{self.reasoning_dropped} turns' reasoning dropped: think-{self.think} does not think")
        if self.dropped_turns or self.dropped_samples:
            parts.append(
                f"max_length {self.max_length}: {self.dropped_turns} turns dropped "
                f"({self.dropped_samples} samples left out whole)"
            )
        return "; ".join(parts)


def sample_builder(
    tokenizer: Any,
    *,
    think: str | bool | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    policy: str = "all",
    served_by: str = "transformers",
    max_length: int | None = None,
    model: str | None = None,
) -> SampleBuilder:
    """A function for `ds.map(fn, batched=True, remove_columns=ds.column_names)` (add `with_indices=True` for the
    `cth_row` column): one output row per sample, with build_samples' options. See the module docstring."""
    return SampleBuilder(tokenizer, think, tools, policy, served_by, max_length, model)


def _pinned_name(target: Any) -> str | None:
    """The registered model name where the tokenizer is the very object the harness loads for it from local files
    (never a download to find out); None otherwise."""
    from chat_template_harness.models import source

    spec = source.registry().get(target.name)
    if spec is None:
        return None
    try:
        source.locate(spec, source.tokenizers_dir_from_env(), download=False)  # local files only
        return target.name if source.load(target.name).tokenizer is target.tokenizer else None
    except HarnessError:  # not local, or not loadable as pinned
        return None


def _by_name(name: str, *options: Any) -> SampleBuilder:
    return SampleBuilder(name, *options)


def _rows(batch: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    columns = list(batch)
    n = len(batch[columns[0]]) if columns else 0
    return [{c: batch[c][i] for c in columns} for i in range(n)]


def _decoded(row: dict[str, Any]) -> Any:
    """A row as build_samples reads it: a row holding one JSON string (a JSONL dump as text) is that JSON."""
    if len(row) == 1 and isinstance(text := next(iter(row.values())), str):
        return json.loads(text)
    return row
