"""Goldens: every cell's rendered text, ids and trained spans, compared with goldens/ (bodies only).

Update them only with `nox -s update_goldens` (or `pytest tests/test_goldens.py --snapshot-update`),
never by hand, never under CI; say why in the commit message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.cells.model import Cell
from chat_template_harness.outputs import golden as golden_format
from chat_template_harness.outputs.snapshot import stale_goldens

CELLS = cellmodel.cells()


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.id)
def test_golden(cell: Cell, golden, cth_run):
    assert golden == golden_format.render(cth_run(cell))


def test_no_unused_goldens(goldens_root: Path):
    stale = stale_goldens(goldens_root, CELLS)
    assert not stale, (
        f"goldens that no cell maps to: {[str(p) for p in stale]}; fix: nox -s update_goldens (removes them)"
    )
