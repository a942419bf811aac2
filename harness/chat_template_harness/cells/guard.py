"""The one guard around a user's preprocessor, wherever it runs (check, audit, smoke, the plugin).

The call is bounded by a deadline, its ids must lie in the tokenizer's vocabulary, and it runs under
the clock every reference render uses, so dates compare like with like, or, for a framework adapter
(`external.real_clock`), under the real clock as its users run it (a date of its own is then D,
contract/dates.py); invariant 6 then calls it again under two other clocks (inside the same guard).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chat_template_harness import external
from chat_template_harness.contract.invariants import Violation, check_determinism


def call(
    preprocessor: external.Preprocessor,
    request: external.Request,
    *,
    vocab: int,
    timeout: float | None,
    determinism: bool,
) -> tuple[list[external.ExternalSample], list[Violation]]:
    """The preprocessor's samples for one request, and invariant 6's findings (none when `determinism` is off).

    Raises what the preprocessor raises (external.Unsupported for a cell it declines)."""

    def once() -> list[external.ExternalSample]:
        with external.deadline(timeout), tokenizer_kept(request.tokenizer):
            return external.checked(external.call(preprocessor, request), vocab)

    with external.clock_for(preprocessor):
        samples = once()
    return samples, (check_determinism(once) if determinism else [])


@contextmanager
def tokenizer_kept(tokenizer: Any) -> Iterator[None]:
    """The tokenizer's chat template and named special tokens as they were before the call, whatever the
    preprocessor set on it.

    The tokenizer is shared: the reference renders every served prompt with it after the preprocessor runs, and the
    next cells too. A preprocessor that swaps a training template onto it in place (TRL's
    `get_training_chat_template`, `SFTConfig(chat_template_path=...)`) made the reference render its history that
    way too, and a wrong sample then passed; one that sets `eos_token` or `bos_token` (a training script's habit)
    changes what a template writes for them, and the stop a derivation reads. Its own samples are still judged as
    they are."""
    special = _special(tokenizer)  # read from the map: an unset token's attribute logs a warning in transformers 4
    before = getattr(tokenizer, "chat_template", None)
    try:
        yield
    finally:
        if getattr(tokenizer, "chat_template", None) is not before:
            tokenizer.chat_template = before
        after = _special(tokenizer)
        for name in special.keys() | after.keys():
            if after.get(name) != special.get(name):
                setattr(tokenizer, name, special.get(name))


def _special(tokenizer: Any) -> dict[str, Any]:
    """The named special tokens that are set (`bos_token`, `eos_token`, `pad_token`, ...), excluding the lists."""
    found = getattr(tokenizer, "special_tokens_map", None)
    return {k: v for k, v in found.items() if k.endswith("_token")} if isinstance(found, dict) else {}


def raised_line(exc: BaseException) -> str:
    """The preprocessor's exception as one line, with the user's own frame where it is not the harness's error."""
    line = traceback.format_exception_only(type(exc), exc)[-1].strip()
    if not isinstance(exc, external.PreprocessorError):
        line += f" ({external.user_frame(exc)})"
    return line
