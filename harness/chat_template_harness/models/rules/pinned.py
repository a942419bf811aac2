"""What every render pins, whoever renders: the clock, and a mode switched by a flag in the system message.

Both are facts about how a served prompt is made (the reference, derive's probes, a user's preprocessor and the
server profiles all use them), so they sit low enough for each of those rooms to import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

# the wall clock every render runs under (templates that write today's date: Llama 3.2, gpt-oss)
PINNED_CLOCK = datetime(2024, 7, 26, 12, 0, tzinfo=UTC)


def frozen_clock() -> Any:
    """The clock every render runs under, stopped at PINNED_CLOCK (a context manager)."""
    import time_machine  # imported when a clock is frozen: it imports pytest (0.3-0.6 s at `cth` start-up)

    return time_machine.travel(PINNED_CLOCK, tick=False)


def with_system_flag(messages: Sequence[Mapping[str, Any]], flag: str) -> list[Mapping[str, Any]]:
    """The messages a server sends for a mode switched by a system-message flag (Nemotron's `/no_think`)."""
    if not flag:
        return list(messages)
    if messages and messages[0].get("role") == "system" and messages[0].get("content"):
        return [{**messages[0], "content": f"{messages[0]['content']}\n{flag}"}, *messages[1:]]
    rest = messages[1:] if messages and messages[0].get("role") == "system" else messages
    return [{"role": "system", "content": flag}, *rest]
