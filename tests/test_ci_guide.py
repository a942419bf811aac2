"""docs/ci-guide.md's outside-user section is short and is what scripts/wheel_check runs, line for line."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "ci-guide.md").read_text("utf-8")


def _script():
    loader = importlib.machinery.SourceFileLoader("wheel_check", str(ROOT / "scripts" / "wheel_check"))
    spec = importlib.util.spec_from_loader("wheel_check", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _section() -> list[str]:
    lines = GUIDE.splitlines()
    start = lines.index("## Outside users")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def test_the_outside_user_section_is_at_most_40_lines():
    assert len(_section()) <= 40


def test_the_script_runs_the_guides_commands():
    from chat_template_harness import __version__

    commands = _script().recipe(GUIDE)
    assert commands == [
        f'pip install "./chat_template_harness-{__version__}-py3-none-any.whl[test]"',  # the wheel this version builds
        "pytest -m cth",
        "cth check sft.preprocess:build --junit cth-junit.xml --markdown cth-report.md",
        "cth diff",
    ]
    assert all(c in "\n".join(_section()) for c in commands)


def test_the_guides_config_is_the_sample_repos():
    """The TOML the guide shows is the sample repo's configuration, so following it is what CI tests."""
    shown = tomllib.loads(re.search(r"```toml\n(.*?)```", GUIDE, re.S).group(1))
    sample = tomllib.loads((ROOT / "tests" / "sample_repo" / "pyproject.toml").read_text("utf-8"))
    assert shown["tool"]["cth"] == sample["tool"]["cth"]
    assert shown["tool"]["pytest"]["ini_options"] == sample["tool"]["pytest"]["ini_options"]


def test_the_verdict_needs_red_then_green():
    script = _script()
    lines = script.recipe(GUIDE)
    red = {
        "exit codes": {line: (1 if line.startswith(("pytest", "cth check")) else 0) for line in lines},
        "kinds": ["E", "P"],
    }
    green = {"exit codes": dict.fromkeys(lines, 0), "kinds": []}
    assert script.judged({"buggy": red, "fixed": green}, lines)
    assert not script.judged({"buggy": green, "fixed": green}, lines)  # negative control: a buggy run that passes
    assert not script.judged({"buggy": {**red, "kinds": ["E"]}, "fixed": green}, lines)  # the replay kind missing
    assert not script.judged({"buggy": red, "fixed": red}, lines)


def test_a_guide_without_the_recipe_block_is_one_error():
    with pytest.raises(SystemExit, match="no recipe block"):
        _script().recipe("# nothing here\n")
