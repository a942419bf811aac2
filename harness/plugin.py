"""pytest plugin (entry point `pytest11`): command-line options and fixtures only; logic lives elsewhere."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chat-template-harness")
    group.addoption(
        "--cth-tokenizers-dir",
        default=None,
        help="tokenizer pack for the harness (default: $CTH_TOKENIZERS_DIR, else the hub)",
    )
