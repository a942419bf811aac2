"""The syrupy extension that stores goldens as `goldens/<model>/think-<t>/<fixture>.golden`.

- Location: from the test's `cell` parameter, under the goldens root the plugin configures.
- Comparison: bodies only (see chat_template_harness.outputs.golden); the header explains a difference. An update run
  also refreshes stale headers, so committed provenance is always that of the committed body.
- Diff: `[- golden] / [+ received]` lines of the body, headed by the causes read off the two
  headers and ended by the commands that review and update the golden.
- Writing: only with `--snapshot-update`, never when the CI environment variable is set.
- Unused goldens: decided by the harness (a file no matrix cell maps to), not by syrupy's
  name matching, so an update over a subset of cells never deletes other cells' goldens.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from chat_template_harness.cells.model import Cell
from chat_template_harness.outputs import golden

if TYPE_CHECKING:
    from syrupy.data import SnapshotCollection, SnapshotCollections
    from syrupy.location import PyTestLocation


UPDATE_ALL = "nox -s update_goldens"
MAX_DIFF_LINES = 40


def review_command(cell_id: str) -> str:
    model = cell_id.split("/")[0]
    return f"cth diff --model {model}"


def update_command(cell_id: str) -> str:
    return f"{UPDATE_ALL} -- 'tests/test_goldens.py::test_golden[{cell_id}]'"


class GoldenExtension(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    file_extension = golden.EXTENSION

    @staticmethod
    def _cell(test_location: PyTestLocation) -> Cell:
        # pytest sets `callspec` on a parametrised Function only; the Item type does not declare it
        cell: Cell = test_location.item.callspec.params["cell"]  # type: ignore[attr-defined]
        return cell

    # Where the goldens live; the plugin's `golden` fixture makes a subclass with it set (--cth-goldens),
    # so this module needs nothing from the plugin.
    goldens_root: Path | None = None

    @classmethod
    def _root(cls, test_location: PyTestLocation) -> Path:
        if cls.goldens_root is None:
            raise TypeError("use GoldenExtension through the `golden` fixture, which sets goldens_root")
        return cls.goldens_root

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(golden.path_for(cls._root(test_location), cls._cell(test_location)).parent)

    @classmethod
    def discovery_dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(cls._root(test_location))

    @classmethod
    def get_file_basename(cls, *, test_location: PyTestLocation, index: Any) -> str:
        return cls._cell(test_location).fixture

    @classmethod
    def matches_test_location(cls, *, test_location: PyTestLocation, snapshot_location: str) -> bool:
        return Path(snapshot_location) == golden.path_for(cls._root(test_location), cls._cell(test_location))

    def discover_snapshots(
        self, *, test_location: PyTestLocation, ignore_extensions: list[str] | None = None
    ) -> SnapshotCollections:
        from syrupy.data import SnapshotCollections

        return SnapshotCollections()  # unused goldens are the harness's call (module docstring)

    # An update run also rewrites goldens whose body matches but whose provenance header is stale,
    # so a committed header always says what produced its body (the plugin sets this on update).
    refresh_headers = False

    def matches(self, *, serialized_data: Any, snapshot_data: Any) -> bool:
        if self.refresh_headers:
            return str(serialized_data) == str(snapshot_data)
        return golden.same_body(str(serialized_data), str(snapshot_data))

    def diff_lines(self, serialized_data: Any, snapshot_data: Any) -> Iterator[str]:
        received, stored = golden.parse(str(serialized_data)), golden.parse(str(snapshot_data))
        cell_id = received.header.get("cell", "?")
        if not str(snapshot_data):
            yield f"no golden for {cell_id}"
        else:
            causes = golden.explain(stored.header, received.header) or [
                "no provenance change: the harness or its inputs changed"
            ]
            yield f"golden body for {cell_id} differs; header: " + "; ".join(causes)
            lines = list(_body_diff(stored.body, received.body))
            yield from lines[:MAX_DIFF_LINES]
            if len(lines) > MAX_DIFF_LINES:
                yield f"… {len(lines) - MAX_DIFF_LINES} more diff lines (see the review command)"
        yield f"review: {review_command(cell_id)}"
        yield f"update: {update_command(cell_id)}"

    @classmethod
    def write_snapshot_collection(
        cls, *, snapshot_collection: SnapshotCollection, name_order: dict[str, int] | None = None
    ) -> None:
        golden.refuse_writing_under_ci(f"update them locally with {UPDATE_ALL}")
        super().write_snapshot_collection(snapshot_collection=snapshot_collection, name_order=name_order)


def _body_diff(stored: str, received: str) -> Iterator[str]:
    for line in difflib.unified_diff(stored.splitlines(), received.splitlines(), lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            yield line
        elif line.startswith("-"):
            yield f"[- golden]   {line[1:]}"
        elif line.startswith("+"):
            yield f"[+ received] {line[1:]}"
        else:
            yield f"             {line[1:]}"


def stale_goldens(root: Path, cells: list[Cell]) -> list[Path]:
    """Golden files that no cell of the matrix maps to."""
    wanted = {golden.path_for(root, c) for c in cells}
    return sorted(p for p in root.rglob(f"*.{golden.EXTENSION}") if p not in wanted)
