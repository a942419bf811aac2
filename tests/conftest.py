"""Shared fixtures. Tokenizers come from the offline pack; without it the run fails (never skips)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from chat_template_harness.models import source
from chat_template_harness.models.source import ENV_TOKENIZERS_DIR

pytest_plugins = ["pytester"]

# Property-test profiles: a short, reproducible one for every run; `fuzz` for `nox -s fuzz`.
settings.register_profile("default", max_examples=8, derandomize=True, print_blob=True)
settings.register_profile("fuzz", max_examples=int(os.environ.get("CTH_FUZZ_EXAMPLES", "10000")), print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REPO = Path(__file__).resolve().parents[1]
# Every developer and CI has the pack beside the checkout (see README).
DEFAULT_PACK = REPO.parent / "shared" / "tokenizers"


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which turns the worker count into workers
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Goldens are written in one process (`-n auto` is in addopts): an update removes unused goldens only where
    one process saw every cell (plugin.py's pytest_sessionfinish), which no xdist worker does. xdist does the
    same for --pdb."""
    if config.getoption("update_snapshots", False) and config.pluginmanager.hasplugin("xdist"):
        config.option.numprocesses = 0


def pytest_configure(config: pytest.Config) -> None:
    _share_the_cores_with_the_other_workers()
    if not os.environ.get(ENV_TOKENIZERS_DIR) and DEFAULT_PACK.is_dir():
        os.environ[ENV_TOKENIZERS_DIR] = str(DEFAULT_PACK)
    source.pin_env_tokenizers_dir()  # the README exports a relative path; pytester runs elsewhere
    pack = os.environ.get(ENV_TOKENIZERS_DIR)
    if not pack or not Path(pack).is_dir():
        raise pytest.UsageError(
            f"the tokenizer pack is missing: set {ENV_TOKENIZERS_DIR} to it (e.g. ../shared/tokenizers); "
            "the suite checks real tokenizers and does not skip without them"
        )


def _share_the_cores_with_the_other_workers() -> None:
    """An xdist worker's torch takes this worker's share of the cores, not every core: two workers each running
    the smoke step's matmuls on two threads on two cores spent half their time contending (tests/test_smoke.py: 173 s
    against 90 s with one thread each, -n 2 on 2 cores). A thread count the user set is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if not os.environ.get("PYTEST_XDIST_WORKER") or workers < 1 or "OMP_NUM_THREADS" in os.environ:
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch when it is first imported
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def pack_dir() -> Path:
    return Path(os.environ[ENV_TOKENIZERS_DIR])


@pytest.fixture(scope="session")
def load():
    """Load a pinned tokenizer from the pack: once per process (chat_template_harness.models.source caches it), so once
    per xdist worker, whichever tests the worker runs."""

    def _load(name: str) -> source.LoadedTokenizer:
        return source.load(name)

    return _load


@pytest.fixture(autouse=True)
def terminal_as_in_a_serial_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """An xdist worker runs with COLUMNS=80 and LINES=24 in its environment, which a serial run has not; `cth`
    takes COLUMNS for the user's chosen width (cli.main), so its tables would fold at 80 columns there only."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        monkeypatch.delenv("COLUMNS", raising=False)
        monkeypatch.delenv("LINES", raising=False)


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An inner pytest run is a session of its own, never an xdist worker: syrupy (and xdist) read these variables,
    which a worker of the outer run has set, and would leave out the inner run's snapshot summary."""
    for name in [n for n in os.environ if n.startswith("PYTEST_XDIST_")]:
        monkeypatch.delenv(name)
    return pytester


@pytest.fixture(scope="session")
def drifted_pack(tmp_path_factory: pytest.TempPathFactory, pack_dir: Path) -> Path:
    """The pack with one character of Qwen3's chat template changed (other folders linked, not copied)."""
    from tests.helpers import change_one_template_character, writable_pack

    pack = writable_pack(tmp_path_factory.mktemp("drifted"), pack_dir, ["Qwen--Qwen3-8B"])
    for folder in pack_dir.iterdir():
        if folder.is_dir() and not (pack / folder.name).exists():
            (pack / folder.name).symlink_to(folder)
    change_one_template_character(pack)
    return pack
