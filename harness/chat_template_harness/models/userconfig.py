"""A user's own models, registered in their repo: `[tool.cth]` in pyproject.toml (or `$CTH_CONFIG`).

    [tool.cth]
    goldens = "tests/goldens"            # optional: where `--goldens` defaults for their models
    served_by = "vllm"                   # optional: whose served prompt samples replay (transformers, vllm, sglang)

    [tool.cth.cells]                     # optional: which cells run by default (plugin and every command)
    models = ["qwen3-8b", "my-qwen"]     # default: every built-in and every model registered below
    think = ["off"]                      # default: on and off
    fixtures = ["single_turn", "data/my-case.json"]   # built-in names or conversation files; default: every built-in

    [tool.cth.models.my-qwen]            # registering a model adds it to the built-ins (cells.models narrows)
    folder = "models/my-qwen"            # a local tokenizer folder, or:
    # hub_repo = "me/my-qwen"  revision = "<commit>"
    family = "qwen3"                     # optional: a built-in family, or:
    rules = "rules/my-qwen.toml"         # optional: a rules file (`cth derive ... --write`); neither: derived
    files."tokenizer_config.json" = { sha256 = "..." }   # optional pins, checked at every load

Relative paths are read from the file's folder. The nearest pyproject.toml with a `[tool.cth]`
table, from the current directory upwards, is used; `$CTH_CONFIG` names one explicitly (a
pyproject.toml, or a TOML file with the same tables at top level: `[models.my-qwen]`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from chat_template_harness.errors import HarnessError

ENV_CONFIG = "CTH_CONFIG"


class ConfigError(HarnessError):
    """A user's `[tool.cth]` that cannot be used."""


def config_file() -> Path | None:
    explicit = os.environ.get(ENV_CONFIG, "").strip()
    if explicit:
        path = Path(explicit).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(
                f"{ENV_CONFIG}={explicit}: no such file", f"point {ENV_CONFIG} at your pyproject.toml or models file"
            )
        return path
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and b"[tool.cth" in candidate.read_bytes():
            return candidate
    return None


def table() -> tuple[Mapping[str, Any], Path | None]:
    path = config_file()
    return (_read(path), path) if path is not None else ({}, None)


# every key [tool.cth] may hold, with the shape its value must have (checked once, when the file is read)
KEYS = {
    "goldens": "a folder path (a string)",
    "served_by": "a server name (a string)",
    "models": "tables of registrations ([tool.cth.models.NAME])",
    "cells": "a table ([tool.cth.cells]) of lists: models, think, fixtures",
}
CELL_KEYS = ("models", "think", "fixtures")


@cache
def _read(path: Path) -> Mapping[str, Any]:
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc})", "correct the file") from None
    table = raw.get("tool", {}).get("cth", {}) if path.name == "pyproject.toml" else raw
    _validate(table, path)
    return table


def _validate(table: Any, path: Path) -> None:
    """One line for the first value of the wrong shape: never an AttributeError three modules later."""
    where = f"{path}: [tool.cth]" if path.name == "pyproject.toml" else str(path)
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} is not a table", "write it as a [tool.cth] table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}", f"keep to {', '.join(KEYS)}")
    for key in ("goldens", "served_by"):
        if key in table and not isinstance(table[key], str):
            raise ConfigError(f"{where}: {key} = {table[key]!r} is not {KEYS[key]}", f'write {key} = "..."')
    if "models" in table and not (
        isinstance(table["models"], Mapping) and all(isinstance(v, Mapping) for v in table["models"].values())
    ):
        raise ConfigError(
            f"{where}: models = {table['models']!r} is not {KEYS['models']}",
            'to choose which models run, write [tool.cth.cells] models = [...]; to register one, [tool.cth.models.NAME] folder = "..."',
        )
    cells = table.get("cells", {})
    if not isinstance(cells, Mapping):
        raise ConfigError(f"{where}: cells = {cells!r} is not {KEYS['cells']}", "write a [tool.cth.cells] table")
    for key, value in cells.items():
        if key not in CELL_KEYS:
            raise ConfigError(f"{where}: unknown key cells.{key}", f"keep to {', '.join(CELL_KEYS)}")
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ConfigError(
                f"{where}: cells.{key} = {value!r} is not a non-empty list of strings", f'write {key} = ["...", ...]'
            )
    bad = [t for t in cells.get("think", []) if t not in ("on", "off")]
    if bad:
        raise ConfigError(f"{where}: cells.think holds {bad[0]!r}", 'use "on" and/or "off"')


def models() -> dict[str, dict[str, Any]]:
    """The user's model entries by name, paths made absolute (empty without a configuration)."""
    raw, path = table()
    return _models(path) if path is not None else {}


@cache
def _models(path: Path) -> dict[str, dict[str, Any]]:
    base = path.parent
    out: dict[str, dict[str, Any]] = {}
    for name, entry in _read(path).get("models", {}).items():
        where = f"{path}: models.{name}"
        if not isinstance(entry, Mapping) or ("folder" in entry) == ("hub_repo" in entry):
            raise ConfigError(
                f"{where} needs exactly one of `folder` or `hub_repo`",
                'add `folder = "path"` or `hub_repo = "org/name"`',
            )
        unknown = set(entry) - {"folder", "hub_repo", "revision", "family", "rules", "files"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown keys {sorted(unknown)}", "keep folder, hub_repo, revision, family, rules, files"
            )
        out[name] = {
            **entry,
            "folder": (base / entry["folder"]).resolve() if "folder" in entry else None,
            "rules": (base / entry["rules"]).resolve() if "rules" in entry else None,
        }
    return out


def goldens_dir() -> Path | None:
    raw, path = table()
    return (path.parent / raw["goldens"]).resolve() if path is not None and "goldens" in raw else None


SERVERS = ("transformers", "vllm", "sglang")


def served_by() -> str | None:
    """`served_by = "vllm"` under [tool.cth]: whose served prompt the samples replay when no flag says so."""
    raw, path = table()
    if path is None or "served_by" not in raw:
        return None
    value = raw["served_by"]
    if value not in SERVERS:
        raise ConfigError(
            f"{path}: served_by = {value!r} is not a server the harness knows", f"use one of {', '.join(SERVERS)}"
        )
    return str(value)


@dataclass(frozen=True)
class CellSelection:
    """[tool.cth.cells]: the default selection of every command and of the plugin; None where not set (all)."""

    models: tuple[str, ...] | None = None
    think: tuple[str, ...] | None = None
    fixtures: tuple[str, ...] | None = None  # built-in names, or conversation files made absolute


def cells() -> CellSelection:
    raw, path = table()
    if path is None or "cells" not in raw:
        return CellSelection()
    given = raw["cells"]
    fixtures = given.get("fixtures")
    return CellSelection(
        tuple(given["models"]) if "models" in given else None,
        tuple(given["think"]) if "think" in given else None,
        tuple(str((path.parent / f).resolve()) if f.endswith(".json") or "/" in f else f for f in fixtures)
        if fixtures
        else None,
    )
