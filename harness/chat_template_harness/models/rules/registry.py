"""Which rules a model gets: one path for built-ins and users' models alike.

- A model with a rules file (`rules = ...` in the user's registration, or `cth-rules.toml` in its
  folder) gets that file.
- A built-in family gets its file in `builtin/` (the same reader).
- Any other model gets rules derived from its own template on the fly (`derive.py`), and the
  command says so, with the line that saves them for review.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from chat_template_harness.errors import UnknownModelError
from chat_template_harness.models import memo, source
from chat_template_harness.models.rules import files
from chat_template_harness.models.rules.model import Family

BUILTIN = "models/rules/builtin"
_derived_notes: set[str] = set()


def builtin_names() -> list[str]:
    folder = resources.files("chat_template_harness").joinpath(BUILTIN)
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


@cache
def builtin(name: str) -> Family:
    path = resources.files("chat_template_harness").joinpath(f"{BUILTIN}/{name}.toml")
    if not path.is_file():
        raise UnknownModelError(
            f"no built-in rules for family {name!r}; built-in: {', '.join(builtin_names())}",
            "name a built-in family, or give the model a rules file (`rules = ...`) or none, to derive them",
        )
    return files.family_from_mapping(_toml(path.read_text("utf-8")), f"built-in rules {name}.toml")


def _toml(text: str) -> Mapping[str, Any]:
    import tomllib

    return tomllib.loads(text)


def family_for(spec: source.ModelSpec, tokenizer: Any = None) -> Family:
    """The rules this model is checked with."""
    if spec.rules_file is not None:
        return _from_file(str(spec.rules_file))
    if spec.family:
        return builtin(spec.family)
    return _derived(spec, tokenizer)


@cache
def _from_file(path: str) -> Family:
    return files.read(path)


def registered_rules(spec: source.ModelSpec) -> Family | None:
    """The rules a model is registered with (a built-in family or a rules file); None when they would be derived."""
    if spec.rules_file is not None:
        return _from_file(str(spec.rules_file))
    return builtin(spec.family) if spec.family else None


def family(name: str) -> Family:
    """A built-in family by name (a user's model: use `family_for(spec)`)."""
    return builtin(name)


def for_model(name: str) -> Family:
    return family_for(source.get_model(name))


def _derived(spec: source.ModelSpec, tokenizer: Any) -> Family:
    if tokenizer is None:
        tokenizer = source.load(spec.name, allow_drift=True).tokenizer
    family = _derive_cached(spec, tokenizer)
    if spec.name not in _derived_notes:
        _derived_notes.add(spec.name)
        print(
            f"note: no rules file for {spec.name}: rules derived from its chat template "
            f"(review and keep them: cth derive {spec.name} --write {spec.name}.toml)",
            file=sys.stderr,
        )
    return family


@memo.kept
@cache
def _derive_cached(spec: source.ModelSpec, tokenizer: Any) -> Family:
    from chat_template_harness.models.rules import derive

    return derive.derive(tokenizer, spec.name, derive.eos_tokens(tokenizer, generation_config(spec, tokenizer))).family


def generation_config(spec: source.ModelSpec, tokenizer: Any) -> Mapping[str, Any] | None:
    folder = getattr(tokenizer, "name_or_path", "")
    path = source.absolute(folder) / "generation_config.json" if folder else None
    if path is not None and path.is_file():
        config: Mapping[str, Any] = json.loads(path.read_text("utf-8"))
        return config
    return None


def families() -> dict[str, Family]:
    """Every registered model's family, in registry order (built-ins first)."""
    out: dict[str, Family] = {}
    for spec in source.registry().values():
        fam = family_for(spec)
        out.setdefault(fam.name, fam)
    return out
