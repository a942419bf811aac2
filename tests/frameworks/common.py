"""What the framework tests share: one adapter's cell check, the installed version, a failing cell's report."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from importlib import metadata
from typing import Any

from chat_template_harness.cells.model import Cell, CellResult
from chat_template_harness.models.rules import Think
from chat_template_harness.outputs.view import report_lines
from tests.helpers import check_cell


def check(preprocess: Callable[..., Any], model: str, think: Think, fixture: str, **settings: Any) -> CellResult:
    """The harness's verdict on one cell of an adapter's output (settings as `cth check` takes them)."""
    return check_cell(preprocess, Cell(model, think, fixture), **settings)


def checker(preprocess: Callable[..., Any]) -> Callable[..., CellResult]:
    """`check` bound to one adapter: `checker(adapter)(model, think, fixture, **settings)`."""
    return partial(check, preprocess)


def assert_installed(distribution: str, version: str) -> None:
    """The installed framework is the version its adapter and its committed reports name."""
    assert metadata.version(distribution) == version


def shown(result: CellResult) -> str:
    """A cell's failure as `cth check` prints it: the message of an assertion on its status."""
    return "\n".join(report_lines(result))
