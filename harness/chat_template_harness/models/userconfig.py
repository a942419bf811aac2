"""A user's own models, registered in their repo: `[tool.cth]` in pyproject.toml (or `$CTH_CONFIG`).

    [tool.cth]
    goldens = "tests/goldens"            # optional: where `--goldens` defaults for their models
    served_by = "vllm"                   # optional: whose served prompt samples replay (transformers, vllm, sglang)

    [tool.cth.models.my-qwen]
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
            raise ConfigError(f"{ENV_CONFIG}={explicit}: no such file", f"point {ENV_CONFIG} at your pyproject.toml or models file")
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


@cache
def _read(path: Path) -> Mapping[str, Any]:
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc})", "correct the file") from None
    return raw.get("tool", {}).get("cth", {}) if path.name == "pyproject.toml" else raw


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
            raise ConfigError(f"{where} needs exactly one of `folder` or `hub_repo`", "add `folder = \"path\"` or `hub_repo = \"org/name\"`")
        unknown = set(entry) - {"folder", "hub_repo", "revision", "family", "rules", "files"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}", "keep folder, hub_repo, revision, family, rules, files")
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
        raise ConfigError(f"{path}: served_by = {value!r} is not a server the harness knows", f"use one of {', '.join(SERVERS)}")
    return str(value)
