"""End to end: one changed character in one chat template, with and without the drift opt-in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chat_template_harness.cells import model as cellmodel
from tests.helpers import without_xdist_env

REPO = Path(__file__).resolve().parents[1]
QWEN3_CELLS = {c.id for c in cellmodel.cells(["qwen3-8b"])}


def _pytest(pack: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**without_xdist_env(), "CTH_TOKENIZERS_DIR": str(pack)}
    env.pop("CTH_ALLOW_DRIFT", None)
    return subprocess.run(  # one process (-n 0): the hash check stops the run at collection, which no xdist worker reports as such
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_goldens.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "-rf",
            *args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_changed_template_stops_the_run_with_the_hash_mismatch_error(drifted_pack: Path):
    proc = _pytest(drifted_pack)
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "error: qwen3-8b:" in proc.stdout and "tokenizer_config.json sha256" in proc.stdout
    assert "fix: restore the pinned file, or re-run with --cth-allow-drift" in proc.stdout
    assert " passed" not in proc.stdout and " failed" not in proc.stdout


@pytest.mark.slow
def test_with_the_drift_opt_in_exactly_that_models_cells_fail_and_say_why(drifted_pack: Path):
    proc = _pytest(drifted_pack, "--cth-allow-drift")
    failed = {line.split("[", 1)[1].split("]", 1)[0] for line in proc.stdout.splitlines() if line.startswith("FAILED")}
    assert failed == QWEN3_CELLS, proc.stdout[-3000:]
    assert "header: chat template changed (sha256" in proc.stdout
    assert "tokenizer_config.json changed with it" in proc.stdout and "tokenizer file changed" not in proc.stdout
    assert "[- golden]   <|im_start|>user↵" in proc.stdout and "[+ received] <|im_start|>user⇥" in proc.stdout
    assert "update: nox -s update_goldens -- 'tests/test_goldens.py::test_golden[qwen3-8b/" in proc.stdout
    assert not list(REPO.joinpath("goldens").rglob("*.golden.new"))
