"""What an installed user meets: a missing optional extra is one line naming the extra to install, and the
commands print no transformers advisories."""

from __future__ import annotations

import sys

import pytest

from chat_template_harness import cli


def test_smoke_without_torch_names_the_train_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ModuleNotFoundError, as without the extra
    code = cli.main(["smoke", "qwen3-8b", "--think", "off", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert (
        err == "error: cth smoke needs torch, which is not installed; fix: pip install 'chat-template-harness[train]'"
    )


@pytest.mark.parametrize(
    ("module", "extra"), [("torch", "train"), ("datasets", "audit"), ("ray", "ray"), ("trl", "examples")]
)
def test_the_extra_is_read_from_the_package_metadata(module, extra):
    assert cli._extra_for(module) == extra


def test_negative_control_a_module_no_extra_declares_is_named_itself():
    assert cli._extra_for("numpy") is None
    assert cli._missing_module("audit", ModuleNotFoundError("x", name="numpy.core")).endswith("fix: pip install numpy")


def test_commands_silence_transformers_advisories(capsys, monkeypatch):
    monkeypatch.delenv("TRANSFORMERS_NO_ADVISORY_WARNINGS", raising=False)
    cli.main(["models"])
    capsys.readouterr()
    import os

    assert os.environ.get("TRANSFORMERS_NO_ADVISORY_WARNINGS") == "1"


def test_error_fixes_name_no_repository_path():
    """An installed user has no scripts/, reports/, noxfile or source tree: a fix that names one cannot be followed."""
    import ast
    import re
    from pathlib import Path

    import chat_template_harness

    repository_only = re.compile(r"scripts/|harness/chat_template_harness|nox -s|reports/|tests/|docs/")
    found = []
    for path in sorted(Path(chat_template_harness.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            name = getattr(node, "func", None)
            name = getattr(name, "id", getattr(name, "attr", "")) if name is not None else ""
            if isinstance(node, ast.Call) and name.endswith("Error") and len(node.args) >= 2:
                if repository_only.search(ast.unparse(node.args[1])):
                    found.append(f"{path.name}:{node.lineno}")
    assert not found
    assert repository_only.search("'see scripts/setup'")  # negative control: the pattern catches one
