"""The house: import paths are file paths, and imports flow one way (no cycle, lazy imports included)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = "chat_template_harness"
SOURCE = Path(__file__).resolve().parents[1] / "harness"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted((SOURCE / PACKAGE).rglob("*.py"))}


def imported(path: Path, modules: dict[str, Path] = MODULES) -> set[str]:
    """Every `chat_template_harness…` name this file imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == PACKAGE
        ):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
    return names


def graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    # importing the package itself (for __version__) is no edge: its __init__ imports nothing
    return {
        name: {d for d in imported(path, modules) if d in modules and d not in (name, PACKAGE)}
        for name, path in modules.items()
    }


def test_every_import_path_is_a_file_path():
    files = sorted((SOURCE.parent / "tests").rglob("*.py")) + list(MODULES.values())  # tests/frameworks/ too
    missing = sorted(
        {(str(f.relative_to(SOURCE.parent)), name) for f in files for name in imported(f) if name not in MODULES}
    )
    assert not missing, f"imports that name no file under harness/: {missing}"


def test_no_import_cycle():
    try:
        tuple(graphlib.TopologicalSorter(graph(MODULES)).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


def test_a_cycle_is_caught(tmp_path: Path):
    """Negative control: two modules that import each other (one lazily) are reported."""
    (tmp_path / "a.py").write_text(f"from {PACKAGE}.b import x\n")
    (tmp_path / "b.py").write_text(f"def f():\n    from {PACKAGE} import a\n")
    modules = {f"{PACKAGE}.a": tmp_path / "a.py", f"{PACKAGE}.b": tmp_path / "b.py"}
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(graph(modules)).static_order())


# The rooms, lowest first: a conversation flows up through them, and a module may import only its own room or a
# lower one (a top-level module is a room of its own). Keep this list and the package docstring in the same order.
ROOMS = [
    "errors",
    "models",
    "contract",
    "serving",
    "external",
    "cells",
    "checking",
    "examples",
    "frameworks",
    "outputs",
    "audit",
    "build",
    "batch",
    "smoke",
    "bench_build",
    "bench",
    "cli",
    "plugin",
]


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def upward(modules: dict[str, Path], rooms: list[str] = ROOMS) -> list[tuple[str, str]]:
    """(importer, imported) for every import of a higher room by a lower one."""
    rank = {r: i for i, r in enumerate(rooms)}
    return sorted(
        (name, dep) for name, deps in graph(modules).items() for dep in deps if rank[room(dep)] > rank[room(name)]
    )


def test_every_module_lives_in_a_declared_room():
    assert sorted({room(m) for m in MODULES if room(m)} - set(ROOMS)) == []


def test_no_room_imports_a_higher_one():
    assert upward(MODULES) == []


def test_an_upward_import_is_caught(tmp_path: Path):
    """Negative control: a contract module that imports the CLI (a higher room) is reported."""
    (tmp_path / "low.py").write_text(f"def f():\n    from {PACKAGE}.cli import main\n")
    (tmp_path / "cli.py").write_text("def main(): ...\n")
    modules = {f"{PACKAGE}.contract.low": tmp_path / "low.py", f"{PACKAGE}.cli": tmp_path / "cli.py"}
    assert upward(modules) == [(f"{PACKAGE}.contract.low", f"{PACKAGE}.cli")]


def test_the_package_docstring_maps_every_subpackage():
    import chat_template_harness

    doc = chat_template_harness.__doc__ or ""
    subpackages = sorted(
        name.split(".")[1] for name, path in MODULES.items() if path.name == "__init__.py" and name.count(".") == 1
    )
    assert subpackages, "no subpackage found"
    assert [s for s in subpackages if f"`{s}/`" not in doc] == []
