"""The GitHub Action (action.yml, its step scripts/action_check) and the pre-commit hook (.pre-commit-hooks.yaml)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NAIVE = "chat_template_harness.examples.naive:preprocess"
REFERENCE = "chat_template_harness.examples.reference:preprocess"
ONE_CELL = '[tool.cth.cells]\nthink = ["off"]\nfixtures = ["single_turn"]\n'


def test_the_action_is_composite_with_its_inputs():
    action = yaml.safe_load((ROOT / "action.yml").read_text("utf-8"))
    assert action["runs"]["using"] == "composite"
    assert {"models", "preprocessor", "baseline"} <= set(action["inputs"])
    assert action["inputs"]["preprocessor"]["required"] is True
    step = action["runs"]["steps"][-1]
    assert "scripts/action_check" in step["run"] and step["env"]["INPUT_MODELS"] == "${{ inputs.models }}"


def _action(tmp_path: Path, preprocessor: str, **inputs: str) -> tuple[subprocess.CompletedProcess[str], str]:
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "pyproject.toml").write_text(ONE_CELL, "utf-8")
    summary = tmp_path / "summary.md"
    summary.write_text("## earlier step\n", "utf-8")
    env = {
        **os.environ,
        "GITHUB_STEP_SUMMARY": str(summary),
        "INPUT_PREPROCESSOR": preprocessor,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        **{f"INPUT_{k.upper()}": v for k, v in inputs.items()},
    }
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "action_check")], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )
    return done, summary.read_text("utf-8")


@pytest.mark.slow  # cth in a subprocess: about 25 s on 2 cores
def test_the_actions_step_fails_a_finding_and_writes_the_summary(tmp_path):
    done, summary = _action(tmp_path, NAIVE, models="qwen3-8b")
    assert done.returncode == 1, done.stderr
    assert summary.startswith("## earlier step\n")  # appended, never overwritten
    assert f"## `{NAIVE}` on the chat-template-harness matrix" in summary and "qwen3-8b" in summary
    assert (tmp_path / "repo" / "cth-junit.xml").is_file()


@pytest.mark.slow  # cth in a subprocess
def test_negative_control_the_reference_passes_the_action(tmp_path):
    done, summary = _action(tmp_path, REFERENCE, models="qwen3-8b, llama-3.1-8b")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "llama-3.1-8b" in summary


def test_the_action_without_a_preprocessor_is_one_error(tmp_path):
    done, _ = _action(tmp_path, "")
    assert done.returncode == 2 and done.stderr.startswith("error: the action needs a preprocessor; fix:")


def test_the_hook_watches_templates_tokenizer_configs_and_modules():
    import re

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text("utf-8"))
    files = re.compile(hook["files"])
    for changed in ("models/my-qwen/chat_template.jinja", "tokenizer_config.json", "sft/preprocess.py"):
        assert files.search(changed), changed
    assert not files.search("README.md") and not files.search("data/train.jsonl")  # negative control
    assert hook["entry"].startswith("pytest -m cth") and hook["pass_filenames"] is False


@pytest.mark.slow  # pre-commit builds the hook's environment from PyPI: minutes
def test_the_hook_runs_with_pre_commit_try_repo(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "tests" / "sample_repo", repo)
    (repo / "pyproject.toml").write_text(
        (repo / "pyproject.toml")
        .read_text("utf-8")
        .replace('models = ["qwen3-8b", "llama-3.1-8b"]', 'models = ["qwen3-8b"]'),
        "utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "sample"], cwd=repo, check=True)
    pre_commit = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "cth-check", "--all-files"]
    buggy = subprocess.run(pre_commit, cwd=repo, env=env, capture_output=True, text=True, timeout=1200)
    assert buggy.returncode == 1 and "cth[qwen3-8b/think-off/single_turn]" in buggy.stdout, buggy.stdout[-3000:]
    shutil.copy(repo / "sft" / "preprocess_fixed.py", repo / "sft" / "preprocess.py")
    fixed = subprocess.run(pre_commit, cwd=repo, env=env, capture_output=True, text=True, timeout=1200)
    assert fixed.returncode == 0, fixed.stdout[-3000:]
