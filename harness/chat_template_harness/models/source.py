"""Tokenizer source: which tokenizers exist, where their files come from, and that they are the pinned ones.

Contract:
- Every model is pinned in `data/models.toml`: short name, hub id, revision, family and the
  sha256 of each file. Those hashes are the identity of what the goldens were made with.
- Files come from a local pack (one folder per hub repo, `<org>--<name>`) given by the
  `CTH_TOKENIZERS_DIR` environment variable or an explicit directory; with no pack they are
  downloaded with huggingface_hub at the pinned revision into the normal Hugging Face cache.
- Every file is hashed at load. A missing file or a mismatch raises HashMismatchError naming
  the file and the fix, unless `allow_drift=True` (the upgrade check and golden review): then
  the tokenizer loads anyway and the result records the hashes it saw.
- `trust_remote_code` is never enabled. Each (model, directory, allow_drift) loads once per process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from chat_template_harness.errors import HarnessError, HashMismatchError, MissingTokenizerError, UnknownModelError
from chat_template_harness.models import bundled, fetched, memo, named, packaged, userconfig

ENV_TOKENIZERS_DIR = "CTH_TOKENIZERS_DIR"
# The processor-side file where the hub keeps a chat template that tokenizer_config.json lacks (Llama 4).
PROCESSOR_TEMPLATE = "chat_template.json"


@dataclass(frozen=True)
class PinnedFile:
    name: str
    sha256: str
    status: str
    on_hub: bool = True

    @property
    def byte_exact(self) -> bool:
        """True where the pinned hash is known to equal the hub's file."""
        return self.status.startswith("exact")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hub_repo: str
    revision: str | None
    family: str  # a built-in family; "" when the rules come from `rules_file` or are derived
    files: tuple[PinnedFile, ...]
    folder: Path | None = None  # a user's local tokenizer folder (instead of the pack or the hub)
    rules_file: Path | None = None  # a user's rules file
    builtin: bool = True
    source: str = (
        "folder"  # "mistral-common": a tokenizer file that library ships (models/bundled.py); a package's name
    )
    package: packaged.Package | None = None  # the PyPI package whose files the model is (models/packaged.py)
    template: fetched.TemplatePin | None = None  # a chat template no tokenizer file carries (models/fetched.py)

    @property
    def pack_dir(self) -> str:
        return self.hub_repo.replace("/", "--")

    def file(self, name: str) -> PinnedFile | None:
        return next((f for f in self.files if f.name == name), None)


@dataclass(frozen=True)
class FileDrift:
    name: str
    pinned: str
    observed: str | None  # None: the file is missing

    def describe(self) -> str:
        if self.observed is None:
            return f"{self.name} is missing"
        return f"{self.name} sha256 {self.observed[:12]}… differs from the pinned {self.pinned[:12]}…"


@dataclass(frozen=True)
class LoadedTokenizer:
    spec: ModelSpec
    tokenizer: Any
    directory: Path
    origin: str  # "pack" or "hub"
    observed: Mapping[str, str | None]
    drift: tuple[FileDrift, ...] = ()
    load_warnings: tuple[str, ...] = field(default=())
    # where the files came from beyond the pins (a package, a rebuilt file, a fetched template): golden headers show it
    provenance: Mapping[str, str] = field(default_factory=dict)
    base: Path | None = None  # the pack folder it was loaded from (None: the environment's, else the hub)
    allowed_drift: bool = False

    @property
    def chat_template(self) -> str:
        """The template as one text (named templates each under its name: `named.text`)."""
        return named.text(self.tokenizer.chat_template)

    @property
    def template_sha256(self) -> str:
        return hashlib.sha256(self.chat_template.encode("utf-8")).hexdigest()

    def __reduce__(self) -> tuple[object, ...]:
        """Sent to another process (cells/run.py's workers send results back) without the tokenizer object, which
        costs most of a load to send: its provenance and chat template travel, and the tokenizer is made again
        there, once, only where something asks for more of it (`Deferred`)."""
        key = (self.spec, self.base, self.allowed_drift)
        deferred = self.tokenizer if isinstance(self.tokenizer, Deferred) else Deferred(key, self.chat_template)
        fields = (self.directory, self.origin, dict(self.observed), self.drift, self.load_warnings)
        return (LoadedTokenizer, (self.spec, deferred, *fields, dict(self.provenance), *key[1:]))


class Deferred:
    """A tokenizer made on first use from its load's key (spec, folder, drift allowed), in the process a result was
    sent to; its chat template is known without it (golden headers read only that)."""

    def __init__(self, key: tuple[ModelSpec, Path | None, bool], chat_template: str) -> None:
        self.key, self.chat_template = key, chat_template

    @property
    def made(self) -> Any:
        return _cached(*self.key).tokenizer

    def __reduce__(self) -> tuple[object, ...]:
        return (Deferred, (self.key, self.chat_template))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("key", "chat_template"):  # not set yet (copying, unpickling)
            raise AttributeError(name)
        return getattr(self.made, name)

    def __len__(self) -> int:
        return len(self.made)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.made(*args, **kwargs)


@cache
def builtin_registry() -> Mapping[str, ModelSpec]:
    """The models this package pins, by short name, in the registry's order."""
    raw = tomllib.loads(resources.files("chat_template_harness").joinpath("data/models.toml").read_text("utf-8"))
    specs: dict[str, ModelSpec] = {}
    for name, entry in raw["models"].items():
        files = tuple(
            PinnedFile(fname, f["sha256"], f["status"], f.get("hub", True)) for fname, f in entry["files"].items()
        )
        origin = entry.get("source", "folder")
        specs[name] = ModelSpec(
            name,
            entry["hub_repo"],
            entry.get("revision"),
            entry["family"],
            files,
            source=origin,
            package=packaged.package(origin, entry["package"]) if "package" in entry else None,
            template=fetched.pin(entry["template"]) if "template" in entry else None,
        )
    return specs


def registry() -> Mapping[str, ModelSpec]:
    """Every model a command can name: the built-ins, then the user's own (`[tool.cth]`, see userconfig)."""
    users = {}
    for name, entry in userconfig.models().items():
        pins = tuple(PinnedFile(f, v["sha256"], v.get("status", "user pin")) for f, v in entry.get("files", {}).items())
        users[name] = ModelSpec(
            name,
            entry.get("hub_repo") or f"local/{name}",
            entry.get("revision"),
            entry.get("family", ""),
            pins,
            entry["folder"],
            entry["rules"],
            builtin=False,
        )
    return {**builtin_registry(), **users}


def template_origin(spec: ModelSpec) -> str:
    """Where a model's chat template comes from, in words (`cth models`)."""
    if spec.template is not None:
        return f"{spec.template.describe()}, sha256 {spec.template.sha256[:12]}…"
    if spec.source == bundled.MISTRAL_COMMON:
        return "generated by mistral-common for the file"
    return "the tokenizer files' own (tokenizer_config.json / chat_template.*)"


def default_models() -> list[str]:
    """What runs when no model is named: [tool.cth.cells] models, else every built-in and every model a repo
    registers ([tool.cth.models]): registering adds, it never drops the built-ins."""
    chosen = userconfig.cells().models
    if chosen is not None:
        return [get_model(name).name for name in chosen]
    return list(registry())


# models named by folder or unregistered hub id during this process (see get_model)
_adhoc: dict[str, ModelSpec] = {}
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
)


def get_model(name: str) -> ModelSpec:
    """A model by short name (`qwen3-8b`), hub id (`Qwen/Qwen3-8B`, registered or not, `@revision` optional)
    or local tokenizer folder; names are case-insensitive."""
    specs = {**registry(), **_adhoc}  # a folder named once stays known by its name (cells carry the name)
    if name in specs:
        return specs[name]
    wanted = name.lower()
    for known in specs.values():
        if wanted in (known.name.lower(), known.hub_repo.lower(), known.pack_dir.lower()):
            return known
    spec = _unregistered(name)
    if spec is None:
        raise UnknownModelError(
            f"unknown model {name!r}: not a registered name, a tokenizer folder or a hub id (org/name); "
            f"known: {', '.join(registry())}",
            "use a name that `cth models` lists, a folder holding tokenizer_config.json, or register the model "
            "under [tool.cth.models] in your pyproject.toml",
        )
    _adhoc[spec.name] = spec
    return spec


def _unregistered(name: str) -> ModelSpec | None:
    """A folder with a tokenizer, or an `org/name[@revision]` hub id: rules from a rules file beside it, else derived."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "tokenizer_config.json").is_file():
            raise MissingTokenizerError(
                f"{path} has no tokenizer_config.json", "point at a folder holding a tokenizer with a chat template"
            )
        folder = path.resolve()
        rules = folder / RULES_FILE
        return ModelSpec(
            folder.name, f"local/{folder.name}", None, "", (), folder, rules if rules.is_file() else None, builtin=False
        )
    repo, _, revision = name.partition("@")
    if repo.count("/") == 1 and all(repo.split("/")) and not repo.startswith((".", "/")):
        return ModelSpec(repo.split("/")[1], repo, revision or None, "", (), None, None, builtin=False)
    return None


# a rules file kept beside a tokenizer folder is used for it (written by `cth derive FOLDER --write`)
RULES_FILE = "cth-rules.toml"


def absolute(path: Path | str) -> Path:
    """A user-given directory as an absolute path, resolved against the current directory once."""
    return Path(path).expanduser().resolve()


def unregistered_folders(base: Path) -> list[str]:
    """Folders of a pack that no registered model uses: models to derive rules for, never an error."""
    known = {spec.pack_dir for spec in builtin_registry().values()}
    return sorted(p.name for p in base.iterdir() if p.is_dir() and p.name not in known) if base.is_dir() else []


def tokenizers_dir_from_env() -> Path | None:
    value = os.environ.get(ENV_TOKENIZERS_DIR, "").strip()
    return absolute(value) if value else None


def pin_env_tokenizers_dir() -> Path | None:
    """Resolve $CTH_TOKENIZERS_DIR to an absolute path in the environment itself, at start-up.

    A relative value (the README's `../shared/tokenizers`) means the directory the user typed it in;
    pytest runs, `cth` subprocesses and tests that change directory must all see that same folder.
    """
    base = tokenizers_dir_from_env()
    if base is not None:
        os.environ[ENV_TOKENIZERS_DIR] = str(base)
    return base


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(name: str, tokenizers_dir: Path | str | None = None, *, allow_drift: bool = False) -> LoadedTokenizer:
    """Load a pinned tokenizer once per process; see the module docstring for the contract."""
    base = absolute(tokenizers_dir) if tokenizers_dir is not None else tokenizers_dir_from_env()
    return _cached(get_model(name), base, allow_drift)


def import_loaders() -> None:
    """Import what making a tokenizer imports (transformers' tokenizer classes import torch where it is installed:
    about 4 s), so that the processes forked after this (cells/run.py's workers) do not each import it again."""
    import transformers.utils.chat_template_utils  # noqa: F401
    from transformers import AutoTokenizer  # noqa: F401

    with contextlib.suppress(ImportError):  # the Mistral built-ins' loader, where its extra is installed
        import mistral_common.integrations.chat_templates.chat_templates  # noqa: F401


def _cached(spec: ModelSpec, base: Path | None, allow_drift: bool) -> LoadedTokenizer:
    key = (spec, base, allow_drift)
    if key not in _LOADED:
        _LOADED[key] = replace(_load(*key), base=base, allowed_drift=allow_drift)
    return _LOADED[key]


_LOADED: dict[tuple[ModelSpec, Path | None, bool], LoadedTokenizer] = {}


def unload() -> None:
    """Let go of every tokenizer this process loaded and of all the harness keeps per tokenizer (`memo`): for a
    process that goes through many models in turn, whose memory would otherwise grow by each one (about 90 MiB for
    a Qwen3-sized vocabulary). The next `load` of a model makes it again."""
    _LOADED.clear()
    memo.forget_all()


def _load(spec: ModelSpec, base: Path | None, allow_drift: bool) -> LoadedTokenizer:
    """Locate, hash-check and make one tokenizer (uncached: `load` keeps it)."""
    directory, origin = locate(spec, base)
    observed, drift = verify(spec, directory, origin)
    if drift and not allow_drift:
        first = drift[0]
        pinned = spec.file(first.name)
        why = "" if pinned is None or pinned.byte_exact else " (the pinned file is not byte-verified against the hub)"
        raise HashMismatchError(
            f"{spec.name}: {directory / first.name}: {first.describe()}{why}",
            "restore the pinned file, or re-run with --allow-drift (CTH_ALLOW_DRIFT=1) to render anyway "
            "and see what changed with `cth diff`",
        )
    if spec.package is not None:
        return _load_packaged(spec, spec.package, directory, origin, observed, drift)
    with _captured_transformers_warnings() as warnings:
        tokenizer = instantiate(spec, directory, origin)
    return LoadedTokenizer(spec, tokenizer, directory, origin, observed, drift, tuple(warnings))


def instantiate(spec: ModelSpec, directory: Path, origin: str) -> Any:
    """The tokenizer object from its files, as every load makes it (no hash check, no cache): a folder through
    AutoTokenizer, a mistral-common file through models/bundled.py, a package's vocabulary through
    models/packaged.py with its pinned template. The benchmark's bare loads call this too."""
    if spec.package is not None:
        assert spec.template is not None, f"{spec.name}: a packaged model names its chat template (data/models.toml)"
        made = packaged.load(spec.package, directory, spec.files[0].name)
        named.record_loaded(made, fetched.text(spec.template))
        return made
    tokenizer = (
        bundled.load(directory / spec.files[0].name)
        if origin == bundled.MISTRAL_COMMON
        else _from_pretrained(directory)
    )
    if tokenizer.chat_template is None and (directory / PROCESSOR_TEMPLATE).is_file():
        # The hub keeps Llama 4's template in the processor file only; the tokenizer does not read it.
        named.record_loaded(tokenizer, json.loads((directory / PROCESSOR_TEMPLATE).read_text("utf-8"))["chat_template"])
    return tokenizer


def _load_packaged(
    spec: ModelSpec,
    pkg: packaged.Package,
    directory: Path,
    origin: str,
    observed: Mapping[str, str | None],
    drift: tuple[FileDrift, ...],
) -> LoadedTokenizer:
    """A model whose files a PyPI package ships: its template fetched (pinned), a rebuilt vocabulary checked."""
    assert spec.template is not None, f"{spec.name}: a packaged model names its chat template (data/models.toml)"
    with _captured_transformers_warnings() as warnings:
        tokenizer = instantiate(spec, directory, origin)
    if pkg.rebuild:
        packaged.check(tokenizer, pkg, tokenizer.chat_template)
    return LoadedTokenizer(
        spec,
        tokenizer,
        directory,
        origin,
        observed,
        drift,
        tuple(warnings),
        packaged.provenance(pkg, spec.files, spec.template, tokenizer),
    )


def locate(spec: ModelSpec, base: Path | None, *, download: bool = True) -> tuple[Path, str]:
    """The folder holding the model's files: the user's folder, the pack's, the hub snapshot (downloaded if allowed),
    or the library that ships them (mistral-common, a pinned PyPI package)."""
    if spec.source == bundled.MISTRAL_COMMON:
        return bundled.data_dir(), bundled.MISTRAL_COMMON
    if spec.package is not None:
        return packaged.data_dir(spec.package), spec.package.name
    if spec.folder is not None:
        if not spec.folder.is_dir():
            raise MissingTokenizerError(f"{spec.name}: no folder {spec.folder}", "correct the model's `folder` path")
        return spec.folder, "folder"
    if base is not None and (spec.builtin or (base / spec.pack_dir).is_dir()):
        return _pack_folder(spec, base), "pack"
    return _download(spec, local_only=not download), "hub"


def verify(spec: ModelSpec, directory: Path, origin: str) -> tuple[dict[str, str | None], tuple[FileDrift, ...]]:
    """Hash every pinned file (a hub snapshot lacks the pack-only additions, so those are not expected there)."""
    expected = [f for f in spec.files if origin in ("pack", bundled.MISTRAL_COMMON) or spec.package or f.on_hub]
    observed = {f.name: sha256_file(directory / f.name) if (directory / f.name).is_file() else None for f in expected}
    drift = tuple(FileDrift(f.name, f.sha256, observed[f.name]) for f in expected if observed[f.name] != f.sha256)
    return observed, drift


def check_pinned(names: Sequence[str], base: Path | None) -> None:
    """Locate and hash every named model's files before any cell runs: the first problem (a missing folder, a file
    that is not the pinned one) is one HarnessError with its fix."""
    for name in names:
        spec = get_model(name)
        directory, origin = locate(spec, base)
        _, drift = verify(spec, directory, origin)
        if drift:
            raise HashMismatchError(
                f"{spec.name}: {directory / drift[0].name}: {drift[0].describe()}",
                "restore the pinned file, or re-run with --cth-allow-drift (CTH_ALLOW_DRIFT=1) to see which cells change",
            )


def _pack_folder(spec: ModelSpec, base: Path) -> Path:
    if not base.is_dir():
        raise MissingTokenizerError(
            f"tokenizer directory {base} does not exist",
            f"point {ENV_TOKENIZERS_DIR} (or --tokenizers-dir) at the offline pack, e.g. ../shared/tokenizers, "
            "or unset it to download from the hub",
        )
    folder = base / spec.pack_dir
    if not folder.is_dir():
        raise MissingTokenizerError(
            f"no folder {spec.pack_dir} for {spec.name} in tokenizer directory {base}",
            f"add the {spec.hub_repo} tokenizer files there, or point {ENV_TOKENIZERS_DIR} at a complete pack",
        )
    return folder


def _download(spec: ModelSpec, *, local_only: bool = False) -> Path:
    from huggingface_hub import snapshot_download

    wanted = [f.name for f in spec.files if f.on_hub] or list(TOKENIZER_FILES)
    try:
        path = snapshot_download(
            spec.hub_repo, revision=spec.revision, allow_patterns=wanted, local_files_only=local_only
        )
    except Exception as exc:  # network, auth (gated meta-llama repos) and missing revisions all land here
        if local_only:
            raise MissingTokenizerError(
                f"{spec.hub_repo}@{spec.revision or 'main'} is not in the local hub cache",
                f"set {ENV_TOKENIZERS_DIR} to a local tokenizer pack, or run any command on the model with the hub "
                "reachable to download it",
            ) from exc
        raise MissingTokenizerError(
            f"could not download {spec.hub_repo}@{spec.revision or 'main'} from the hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})",
            f"set {ENV_TOKENIZERS_DIR} to a local tokenizer pack, or log in with `hf auth login` for gated repos",
        ) from exc
    return Path(path)


def _from_pretrained(directory: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory), trust_remote_code=False)
    except ValueError as exc:  # transformers refuses a tokenizer class that is the repository's own code
        if "trust_remote_code" not in str(exc) and "custom code" not in str(exc):
            raise
        raise HarnessError(
            f"{directory}: its tokenizer is custom code (ChatGLM3's ChatGLMTokenizer, for one), which the harness "
            "never runs (trust_remote_code stays off)",
            'where the folder has a tokenizer.json, set "tokenizer_class": "PreTrainedTokenizerFast" in its '
            "tokenizer_config.json, once you have checked that it tokenizes as the model's own class does",
            code="custom-code",
        ) from None


@contextmanager
def _captured_transformers_warnings() -> Iterator[list[str]]:
    """Collect what transformers logs while loading (e.g. DeepSeek's TokenizersBackend notice) instead of printing it."""
    collected: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            collected.append(record.getMessage())

    logger = logging.getLogger("transformers")
    handler = _Collect(level=logging.WARNING)
    saved = logger.propagate, list(logger.handlers)
    logger.addHandler(handler)
    for h in saved[1]:
        logger.removeHandler(h)
    logger.propagate = False
    try:
        yield collected
    finally:
        logger.removeHandler(handler)
        for h in saved[1]:
            logger.addHandler(h)
        logger.propagate = saved[0]
