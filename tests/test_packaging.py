"""The package as released: every subpackage listed, the version in one place, the wheel and sdist hold what
the commands need (fixtures, rules, built-in goldens) and pass `twine check`."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def test_every_subpackage_is_listed():
    """The goldens mapping needs an explicit package list: a new room missing from it would not ship."""
    package = ROOT / "harness" / "chat_template_harness"
    found = {"chat_template_harness"} | {
        "chat_template_harness." + ".".join(p.relative_to(package).parts)
        for p in package.rglob("*")
        if p.is_dir() and p.name != "__pycache__" and any(p.glob("*.*"))
    }
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert listed == found | {"chat_template_harness.goldens"}
    assert PYPROJECT["tool"]["setuptools"]["package-dir"]["chat_template_harness.goldens"] == "goldens"


def test_the_version_lives_in_one_place():
    assert "version" not in PYPROJECT["project"] and PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "chat_template_harness.__version__"}
    from chat_template_harness import __version__

    assert f"## {__version__}" in (ROOT / "CHANGELOG.md").read_text("utf-8")


def test_builtin_goldens_are_found_outside_a_clone(tmp_path, monkeypatch):
    from chat_template_harness import cli

    monkeypatch.chdir(tmp_path)  # no ./goldens here: the source tree's (in a wheel: the package's) are used
    found = cli._builtin_goldens()
    assert found is not None and (found / "qwen3-8b" / "think-off" / "single_turn.golden").is_file()


@pytest.mark.slow
def test_the_wheel_and_sdist_hold_what_the_commands_need(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(tmp_path), str(ROOT)], check=True, capture_output=True
    )
    wheel = next(tmp_path.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    goldens = sorted((ROOT / "goldens").rglob("*.golden"))
    assert {f"chat_template_harness/goldens/{p.relative_to(ROOT / 'goldens').as_posix()}" for p in goldens} <= names
    assert "chat_template_harness/data/fixtures/single_turn.json" in names
    assert "chat_template_harness/models/rules/builtin/qwen3.toml" in names
    assert "chat_template_harness/data/models.toml" in names
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, tmp_path.iterdir())],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
