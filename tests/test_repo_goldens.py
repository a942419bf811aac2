"""The plugin compares a repo's own goldens like syrupy: written with --cth-update-goldens (never under CI),
then compared body by body; a changed golden fails `pytest -m cth` with the commands that review and update."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REFERENCE = "chat_template_harness.examples.reference:preprocess"


@pytest.mark.slow  # four pytest runs in subprocesses (about 90 s on 2 cores)
def test_the_repo_goldens_are_written_then_compared(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CI", raising=False)  # a developer's run writes them; CI (set below) refuses to
    shutil.copytree(Path(os.environ["CTH_TOKENIZERS_DIR"]) / "Qwen--Qwen3-8B", pytester.path / "models" / "my-qwen")
    pytester.makepyprojecttoml(
        '[tool.cth]\ngoldens = "chat-goldens"\n\n[tool.cth.cells]\nmodels = ["my-qwen"]\nthink = ["off"]\n'
        'fixtures = ["single_turn", "multi_turn"]\n\n[tool.cth.models.my-qwen]\nfolder = "models/my-qwen"\n\n'
        f'[tool.pytest.ini_options]\ncth_preprocessor = "{REFERENCE}"\n'
    )
    run = ("-p", "no:cacheprovider", "-m", "cth")
    written = pytester.runpytest_subprocess(*run, "--cth-update-goldens")
    written.assert_outcomes(passed=2)
    golden = pytester.path / "chat-goldens" / "my-qwen" / "think-off" / "single_turn.golden"
    assert golden.is_file() and len(list((pytester.path / "chat-goldens").rglob("*.golden"))) == 2
    pytester.runpytest_subprocess(*run).assert_outcomes(passed=2)  # negative control: unchanged, green
    golden.write_text(golden.read_text("utf-8").replace("Paris", "Lyon"), "utf-8")
    changed = pytester.runpytest_subprocess(*run)
    changed.assert_outcomes(passed=1, failed=1)
    changed.stdout.fnmatch_lines(
        ["*golden differs*fix: review with `cth diff --model my-qwen`, then `pytest -m cth --cth-update-goldens`*"]
    )
    monkeypatch.setenv("CI", "true")
    refused = pytester.runpytest_subprocess(*run, "--cth-update-goldens")
    refused.stderr.fnmatch_lines(["*goldens are never written when CI is set*"])
