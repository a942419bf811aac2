"""Fetch the template corpus named in provenance.toml: `python -m tests.corpus.fetch [DIR]`.

llama.cpp keeps real chat templates in models/templates; the llama-cpp-python sdist on PyPI vendors llama.cpp,
so the templates come from the package registry (reachable where the Hugging Face Hub and GitHub are not).
The sdist's hash is checked, then each named template's; nothing else is kept. Default folder: $CTH_CORPUS_DIR,
else .cache/corpus in the repository (git ignores it).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def provenance() -> dict:
    return tomllib.loads((HERE / "provenance.toml").read_text("utf-8"))


def corpus_dir() -> Path:
    return Path(os.environ.get("CTH_CORPUS_DIR") or ROOT / ".cache" / "corpus")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def missing(folder: Path) -> list[str]:
    """The templates not in `folder` with their recorded hash."""
    wanted = provenance()["templates"]
    return [name for name, digest in wanted.items()
            if not (folder / name).is_file() or sha256((folder / name).read_bytes()) != digest]


def fetch(folder: Path) -> None:
    source, wanted = provenance()["source"], provenance()["templates"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", tmp,
             source["package"]],
            check=True,
        )
        sdist = Path(tmp) / source["sdist"]
        if sha256(sdist.read_bytes()) != source["sdist_sha256"]:
            raise SystemExit(f"{sdist.name}: hash mismatch (expected {source['sdist_sha256']}); fix: check the "
                             "package index you install from, or update provenance.toml with the new sdist")
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as tar:
            for name, digest in wanted.items():
                data = tar.extractfile(source["member"] + name).read()  # type: ignore[union-attr]
                if sha256(data) != digest:
                    raise SystemExit(f"{name}: hash mismatch in {sdist.name}; fix: update provenance.toml and the "
                                     "template's ground truth in tests/test_corpus.py together")
                (folder / name).write_bytes(data)


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else corpus_dir()
    if not missing(folder):
        print(f"corpus: {len(provenance()['templates'])} templates in {folder}, hashes checked")
        return 0
    fetch(folder)
    print(f"corpus: fetched {len(provenance()['templates'])} templates into {folder}, hashes checked")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
