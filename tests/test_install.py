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
    assert err == "error: cth smoke needs torch, which is not installed; fix: pip install 'chat-template-harness[train]'"


@pytest.mark.parametrize(("module", "extra"), [("torch", "train"), ("datasets", "audit"), ("ray", "ray"), ("trl", "examples")])
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
