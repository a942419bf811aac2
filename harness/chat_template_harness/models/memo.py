"""What a process keeps per tokenizer, and how it lets go of all of it.

The harness loads each tokenizer once per process (`source.load`) and keeps what it works out from one (its
derived rules, its token pieces, recent encodings) in caches keyed by it. A process that goes through many models
in turn (the template corpus, a notebook) calls `source.unload()`, which empties every cache registered here: each
cache that holds a tokenizer, or something made from one, is registered with `kept` where it is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

_Cache = TypeVar("_Cache", bound=Any)
_CLEARS: list[Callable[[], None]] = []


def kept(cache: _Cache) -> _Cache:
    """Register a cache (a `functools` cache, or a dict) to be emptied by `source.unload()`."""
    _CLEARS.append(cache.cache_clear if hasattr(cache, "cache_clear") else cache.clear)
    return cache


def forget_all() -> None:
    """Empty every registered cache."""
    for clear in _CLEARS:
        clear()
