"""A repo's own goldens, compared by the pytest plugin the way syrupy compares snapshots.

A training repo keeps the goldens of its registered models under `[tool.cth] goldens`. Each matrix cell the
plugin checks is also rendered by the reference preprocessor and compared with its golden (body only; the
header explains a difference): a template edit fails `pytest -m cth` even when the preprocessor keeps up
with it. `--cth-update-goldens` writes them instead (never when CI is set). Built-in models' cells are
compared only where the repo keeps a golden for them: their own goldens ship with the package.
"""

from __future__ import annotations

from pathlib import Path

from chat_template_harness.cells.model import Cell, Settings, Status
from chat_template_harness.cells.run import run_cell
from chat_template_harness.contract import conversation
from chat_template_harness.models import source, userconfig
from chat_template_harness.outputs import golden

UPDATE = "pytest -m cth --cth-update-goldens"


def root() -> Path | None:
    """Where the repo keeps its goldens ([tool.cth] goldens), or None: nothing to compare."""
    return userconfig.goldens_dir()


def compare(cell: Cell, tokenizers_dir: Path | None, *, allow_drift: bool, update: bool) -> str | None:
    """None when the cell's golden matches (or it is not kept, or was just written); otherwise why not."""
    where = root()
    if where is None or cell.fixture not in conversation.fixture_names():
        return None  # a user's own conversation file has no golden
    path = golden.path_for(where, cell)
    if source.get_model(cell.model).builtin and not path.is_file():
        return None
    result = run_cell(cell, Settings(tokenizers_dir=tokenizers_dir, allow_drift=allow_drift, determinism=False))
    if result.status is not Status.PASS:
        return None  # N/A, or the reference cannot render it: the cell's check says so
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(golden.render(result), "utf-8")
        return None
    return golden.check(result, where)
