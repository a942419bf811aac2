"""[tool.cth] in a user's repo: `[tool.cth.cells]` chooses the default cells of every command and the plugin,
registering a model adds it to the built-ins, and every value of the wrong shape is one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_template_harness import cli
from chat_template_harness.cells import model as cellmodel
from chat_template_harness.models import source, userconfig


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def write(text: str) -> Path:
        path = tmp_path / "pyproject.toml"
        path.write_text(text, "utf-8")
        monkeypatch.setenv(userconfig.ENV_CONFIG, str(path))
        userconfig._read.cache_clear()
        userconfig._models.cache_clear()
        return path

    yield write
    userconfig._read.cache_clear()
    userconfig._models.cache_clear()


def test_cells_table_is_the_default_selection(config, tmp_path):
    (tmp_path / "case.json").write_text('[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]')
    config(
        '[tool.cth.cells]\nmodels = ["qwen3-8b", "Qwen/Qwen2.5-7B-Instruct"]\nthink = ["off"]\n'
        'fixtures = ["single_turn", "case.json"]\n'
    )
    ids = [c.id for c in cellmodel.cells()]
    assert ids == [
        "qwen3-8b/think-off/single_turn",
        f"qwen3-8b/think-off/{tmp_path / 'case.json'}",
        "qwen2.5-7b/think-off/single_turn",
        f"qwen2.5-7b/think-off/{tmp_path / 'case.json'}",
    ]
    assert len(cellmodel.cells(["llama-3.1-8b"])) == 2  # a flag still wins over the table, field by field


def test_negative_control_without_the_table_every_cell_runs(config):
    config('[tool.cth]\nserved_by = "transformers"\n')
    assert {c.model for c in cellmodel.cells()} == set(source.builtin_registry())


def test_registering_a_model_adds_it_and_keeps_the_builtins(config, pack_dir, tmp_path):
    config(f'[tool.cth.models.my-qwen]\nfolder = "{pack_dir / "Qwen--Qwen3-8B"}"\n')
    assert source.default_models() == [*source.builtin_registry(), "my-qwen"]
    config(
        f'[tool.cth.cells]\nmodels = ["my-qwen"]\n\n[tool.cth.models.my-qwen]\nfolder = "{pack_dir / "Qwen--Qwen3-8B"}"\n'
    )
    assert source.default_models() == ["my-qwen"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[tool.cth]\nmodels = ["qwen3-8b"]\n', "is not tables of registrations"),
        ("[tool.cth]\ngoldens = 3\n", "goldens = 3 is not a folder path"),
        ('[tool.cth]\nmodel = "x"\n', "unknown key 'model'"),
        ('[tool.cth.cells]\nmodels = "qwen3-8b"\n', "cells.models = 'qwen3-8b' is not a non-empty list"),
        ('[tool.cth.cells]\nthink = ["yes"]\n', "cells.think holds 'yes'"),
        ('[tool.cth.cells]\nmodel = ["qwen3-8b"]\n', "unknown key cells.model"),
        ("[tool.cth]\ncells = 1\n", "cells = 1 is not a table"),
        ('[tool.cth.cells]\nmodels = ["no-such-model"]\n', "unknown model 'no-such-model'"),
    ],
    ids=[
        "models-as-list",
        "goldens-not-str",
        "unknown-key",
        "cells-not-list",
        "bad-think",
        "unknown-cells-key",
        "cells-not-table",
        "unknown-model",
    ],
)
def test_a_bad_value_is_one_line_and_exit_2(config, capsys, text, message):
    config(text)
    assert cli.main(["matrix", "--fixture", "single_turn", "--think", "off"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "; fix: " in err and "Traceback" not in err
