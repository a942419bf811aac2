"""Bring your own preprocessor: the plug-in interface and adapters for common output shapes.

A preprocessor is any callable taking a Request and returning one or several samples. What it
returns may be, per sample or batched along the first axis:
- a mapping with `input_ids` and `loss_mask` (or `assistant_masks`, or `labels` with -100 for
  untrained positions, aligned with input_ids as in Hugging Face models);
- an object with those attributes; a pair `(input_ids, loss_mask)`;
- a list of any of these.
Padding is dropped where an `attention_mask` is given. Values may be lists, tuples, numpy arrays or torch tensors.

`load_callable("package.module:function")` imports one; `run` calls it for a cell under the
pinned clock, so invariants 1-5 compare like with like, and invariant 6 checks it separately
under two other clocks. A plug-in marked `real_clock` (the framework adapters) is called under the real clock
instead, as its users run it: a date it writes that is not the served prompt's is D (`contract/dates.py`).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import numbers
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from chat_template_harness.contract.conversation import Conversation
from chat_template_harness.contract.render import call_dict, result_fields
from chat_template_harness.errors import HarnessError
from chat_template_harness.models.rules import Family, Think, ThinkMode
from chat_template_harness.models.rules.pinned import frozen_clock, with_system_flag

IGNORE_INDEX = -100
# seconds one call of a plug-in may take on one cell before the cell fails (the run goes on)
DEFAULT_TIMEOUT = 60.0
MASK_KEYS = ("loss_mask", "assistant_masks", "assistant_mask")


@dataclass(frozen=True)
class Request:
    """One cell's input, as a training repo's preprocessor would see it."""

    model: str
    think: str  # "on" or "off"
    messages: list[dict[str, Any]]  # role, content, reasoning_content, tool_calls (arguments as objects)
    tools: list[dict[str, Any]] | None
    tokenizer: Any
    # what a server passes for this think mode, plus the family's pinned date (e.g. enable_thinking=False)
    chat_template_kwargs: dict[str, Any]
    family: str = ""  # the harness's family name for this model (e.g. "qwen3"), for plug-ins that dispatch on it


class Preprocessor(Protocol):
    def __call__(self, request: Request, /) -> Any: ...


@dataclass(frozen=True)
class ExternalSample:
    input_ids: tuple[int, ...]
    loss_mask: tuple[int, ...]
    # where the plug-in returned `labels` (no explicit mask): the ids it trains each position to predict
    labels: tuple[int, ...] | None = None


class PreprocessorError(HarnessError):
    """The plug-in could not be imported, raised, or returned something unreadable."""


class Unsupported(Exception):
    """Raised by a plug-in for a cell it does not support (e.g. a family with no training template): N/A, with why."""


def load_callable(spec: str) -> Preprocessor:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise PreprocessorError(
            f"preprocessor {spec!r} is not of the form package.module:callable", "write e.g. mypkg.data:preprocess"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and not module_name.startswith(missing):  # the module is there; something it imports is not
            raise PreprocessorError(
                f"{module_name!r} imports {missing!r}, which is not installed ({user_frame(exc)})",
                f"install {missing.split('.')[0]!r} in this environment (pip install …), or make the import optional",
            ) from None
        raise PreprocessorError(
            f"cannot import {module_name!r} ({exc})", "install the package or add it to PYTHONPATH"
        ) from exc
    except SyntaxError as exc:
        raise PreprocessorError(
            f"{module_name!r} has a syntax error at {exc.filename}:{exc.lineno} ({exc.msg})", "fix the module"
        ) from None
    except Exception as exc:  # the module itself raised while importing: show where, in the user's file
        raise PreprocessorError(
            f"importing {module_name!r} raised {type(exc).__name__}: {exc} ({user_frame(exc)})",
            "fix the module's import-time code",
        ) from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise PreprocessorError(f"{module_name!r} has no attribute {attr!r}", "check the callable's name")
        target = getattr(target, part)
    if not callable(target):
        raise PreprocessorError(f"{spec} is not callable", "point at a function or a callable object")
    preprocessor: Preprocessor = target
    return preprocessor


def user_frame(exc: BaseException) -> str:
    """Where in the user's code an exception was raised: the deepest frame outside the harness and site-packages."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    mine = [
        f
        for f in frames
        if "/harness/" not in f.filename and "site-packages" not in f.filename and "<frozen" not in f.filename
    ]
    shown = mine or list(frames)
    frame = shown[-1] if shown else None
    return f"at {_shown_path(frame.filename)}:{frame.lineno}" if frame else "no traceback"


def _shown_path(filename: str) -> str:
    """An installed package's file by its import path (`swift/template/base.py`), the harness's own likewise: the
    same on every machine, so committed reports do not name where a checkout lives. The user's own code stays as is."""
    for marker, keep in (("site-packages/", ""), ("/harness/chat_template_harness/", "chat_template_harness/")):
        if marker in filename:
            return keep + filename.split(marker, 1)[1]
    return filename


def request_for(
    model: str, conversation: Conversation, tokenizer: Any, family: Family, think: Think, mode: ThinkMode
) -> Request:
    # copies all the way down: the conversation (a cached fixture) is what the reference renders after the
    # preprocessor, for this cell and the next, so nothing the preprocessor changes in place may reach it
    return Request(
        model=model,
        think=str(think),
        # as the server sends them: a mode switched in the system message (Nemotron `/no_think`) carries its flag
        messages=[
            dict(m)
            for m in copy.deepcopy(with_system_flag([_canonical(m) for m in conversation.messages], mode.system_flag))
        ],
        tools=[dict(t) for t in copy.deepcopy(conversation.tools)] or None,
        tokenizer=tokenizer,
        chat_template_kwargs={**family.template_kwargs, **mode.kwargs},
        family=family.name,
    )


def run(preprocessor: Preprocessor, request: Request) -> list[ExternalSample]:
    """Call the plug-in under its clock (`clock_for`) and read its output."""
    with clock_for(preprocessor):
        return call(preprocessor, request)


def pinned_clock() -> Any:
    """The clock every reference render uses: the plug-in renders under it too, so dates compare like with like."""
    return frozen_clock()


REAL_CLOCK = "cth_real_clock"


_Marked = TypeVar("_Marked")


def real_clock(preprocessor: _Marked) -> _Marked:
    """Mark a plug-in to be imported and called under the real clock, as its users run it (the framework adapters):
    a date it writes of its own, at import or per call, then shows as D instead of passing under the frozen clock."""
    setattr(preprocessor, REAL_CLOCK, True)
    return preprocessor


def clock_for(preprocessor: Any) -> Any:
    """The clock a plug-in is called under: the real one where it is marked `real_clock`, else the pinned one."""
    return contextlib.nullcontext() if getattr(preprocessor, REAL_CLOCK, False) else pinned_clock()


def call(preprocessor: Preprocessor, request: Request) -> list[ExternalSample]:
    """Call the plug-in under whatever clock is running (the determinism check sets two) and read its output."""
    return to_samples(preprocessor(request))


class PreprocessorTimeout(PreprocessorError):
    """The plug-in did not return within the per-cell time limit."""


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Stop a plug-in call that runs longer than `seconds` (SIGALRM; only in the main thread, elsewhere no limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise PreprocessorTimeout(
            f"the preprocessor did not return within {seconds:g} s on this cell", "fix the hang, or raise --timeout"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def checked(samples: list[ExternalSample], vocab: int) -> list[ExternalSample]:
    """Samples whose ids the tokenizer can decode: every id in [0, vocab), every mask value 0 or 1."""
    for index, sample in enumerate(samples):
        for field, ids in (("id", sample.input_ids), ("label id", sample.labels or ())):
            bad = next(
                ((p, i) for p, i in enumerate(ids) if not 0 <= i < vocab and (field == "id" or i != IGNORE_INDEX)), None
            )
            if bad is not None:
                raise PreprocessorError(
                    f"sample {index} has {field} {bad[1]} at position {bad[0]}, outside the tokenizer's vocabulary [0, {vocab})",
                    "return ids from this cell's tokenizer",
                )
    return samples


def to_samples(raw: Any) -> list[ExternalSample]:
    """Read any supported output shape (see module docstring) into samples."""
    if isinstance(raw, Mapping) or _has_fields(raw):
        ids = _get(raw, "input_ids")
        mask = _mask_of(raw)
        ids_rows, mask_rows = _rows(ids, "input_ids"), _rows(mask, "loss_mask")
        labels = _labels_of(raw)
        label_rows = _rows(labels, "labels") if labels is not None else [None] * len(ids_rows)
        if len(label_rows) != len(ids_rows) or any(
            r is not None and len(r) != len(i) for r, i in zip(label_rows, ids_rows, strict=False)
        ):
            raise PreprocessorError(
                "labels and input_ids differ in shape", "return one label per token, aligned with input_ids"
            )
        if len(ids_rows) != len(mask_rows):
            raise PreprocessorError(
                f"{len(ids_rows)} rows of input_ids but {len(mask_rows)} of masks", "return one mask per sample"
            )
        attention = raw.get("attention_mask") if isinstance(raw, Mapping) else getattr(raw, "attention_mask", None)
        keep_rows = _rows(attention, "attention_mask") if attention is not None else [[1] * len(r) for r in ids_rows]
        for row, mrow, keep in zip(ids_rows, mask_rows, keep_rows, strict=True):
            if not len(row) == len(mrow) == len(keep):
                raise PreprocessorError(
                    f"a sample has {len(row)} input_ids but {len(mrow)} mask values"
                    + (f" and {len(keep)} attention_mask values" if attention is not None else ""),
                    "return one mask value per token",
                )
        return [
            ExternalSample(
                tuple(i for i, k in zip(row, keep, strict=True) if k),
                tuple(int(bool(m)) for m, k in zip(mrow, keep, strict=True) if k),
                None if lrow is None else tuple(v for v, k in zip(lrow, keep, strict=True) if k),
            )
            for row, mrow, keep, lrow in zip(ids_rows, mask_rows, keep_rows, label_rows, strict=True)
        ]
    if isinstance(raw, tuple) and len(raw) == 2 and not _is_sample_container(raw[0]):
        return to_samples({"input_ids": raw[0], "loss_mask": raw[1]})
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        return [s for item in raw for s in to_samples(item)]
    raise PreprocessorError(
        f"cannot read a sample from {type(raw).__name__}",
        "return a dict with input_ids and loss_mask (or labels), a list of them, or (input_ids, loss_mask)",
    )


def _canonical(message: Any) -> dict[str, Any]:
    """A message as the data holds it: inline reasoning stays inline in the content, else `reasoning_content`."""
    if message.given_content is not None:
        out: dict[str, Any] = {"role": message.role, "content": message.given_content}
    else:
        out = {"role": message.role, "content": message.content}
        if message.reasoning:
            out["reasoning_content"] = message.reasoning
    if message.tool_calls:
        out["tool_calls"] = [call_dict(c, dict(c.arguments)) for c in message.tool_calls]
    out.update(result_fields(message))
    return out


def _has_fields(raw: Any) -> bool:
    return hasattr(raw, "input_ids") and any(hasattr(raw, k) for k in (*MASK_KEYS, "labels"))


def _is_sample_container(value: Any) -> bool:
    return isinstance(value, Mapping) or _has_fields(value)


def _get(raw: Any, key: str) -> Any:
    return raw[key] if isinstance(raw, Mapping) else getattr(raw, key)


def _labels_of(raw: Any) -> Any:
    """The labels, where they are what says what is trained (no explicit mask key)."""
    if any((raw.get(k) if isinstance(raw, Mapping) else getattr(raw, k, None)) is not None for k in MASK_KEYS):
        return None
    return raw.get("labels") if isinstance(raw, Mapping) else getattr(raw, "labels", None)


def _mask_of(raw: Any) -> Any:
    for key in MASK_KEYS:
        value = raw.get(key) if isinstance(raw, Mapping) else getattr(raw, key, None)
        if value is not None:
            return value
    labels = raw.get("labels") if isinstance(raw, Mapping) else getattr(raw, "labels", None)
    if labels is None:
        raise PreprocessorError("sample has input_ids but no loss_mask, assistant_masks or labels", "return a mask")
    return [[int(v != IGNORE_INDEX) for v in row] for row in _rows(labels, "labels")]


def _plain(value: Any) -> list[Any]:
    if value is None or isinstance(value, str | bytes | Mapping):
        raise PreprocessorError(
            f"expected a list of token ids, got {type(value).__name__}", "return lists, arrays or tensors of ints"
        )
    try:
        return value.tolist() if hasattr(value, "tolist") else list(value)
    except TypeError:
        raise PreprocessorError(
            f"expected a list of token ids, got {type(value).__name__}", "return lists, arrays or tensors of ints"
        ) from None


def _rows(value: Any, field: str) -> list[list[int]]:
    """Rows of ints: one row, a batch, or SpecForge's list of [1, L] tensors. Floats and bools are rejected, never cast."""
    plain = [r.tolist() if hasattr(r, "tolist") and not isinstance(r, numbers.Number) else r for r in _plain(value)]
    if plain and all(isinstance(r, list | tuple) for r in plain):
        rows = [_flat_row(r) for r in plain]
    else:
        rows = [plain]
    for row in rows:
        bad = next((v for v in row if not isinstance(v, numbers.Integral) or isinstance(v, bool)), None)
        if bad is not None or (row is not None and any(v is None for v in row)):
            raise PreprocessorError(
                f"{field} holds {bad!r} ({type(bad).__name__}), not an integer",
                "return integer ids and 0/1 masks (a float id would be truncated silently: convert it yourself)",
            )
    return [[int(v) for v in row] for row in rows]


def _flat_row(row: Any) -> list[Any]:
    """A row, unwrapping a [1, L] tensor's inner list (SpecForge returns those)."""
    items = list(row)
    if len(items) == 1 and isinstance(items[0], list | tuple):
        return list(items[0])
    return items
