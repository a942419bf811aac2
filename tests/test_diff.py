"""The upgrade check: `cth diff` names exactly the cells that changed, and why."""

from __future__ import annotations

from pathlib import Path

from chat_template_harness import cli
from chat_template_harness.cells import model as cellmodel
from chat_template_harness.cells.model import Cell
from chat_template_harness.models.rules import Think
from chat_template_harness.outputs import drift, golden

REPO = Path(__file__).resolve().parents[1]
GOLDENS = REPO / "goldens"


def test_nothing_differs_here(capsys):
    assert cli.main(["diff"]) == 0
    assert f"0 of {len(cellmodel.cells())} cells differ from the goldens" in capsys.readouterr().out


def test_one_changed_template_character_names_exactly_that_models_cells(drifted_pack: Path, tmp_path: Path, capsys):
    report = tmp_path / "upgrade.md"
    code = cli.main(["diff", "--tokenizers-dir", str(drifted_pack), "--markdown", str(report)])
    out = capsys.readouterr().out
    assert code == 1
    changed = {line.split()[1] for line in out.splitlines() if line.startswith("CHANGED ")}
    assert changed == {c.id for c in cellmodel.cells(["qwen3-8b"])}
    assert f"26 of {len(cellmodel.cells())} cells differ from the goldens" in out
    assert "  26 cell(s): chat template changed" in out
    text = report.read_text()
    assert text.count("- cause: chat template changed (sha256 a55ee1b16601 -> ") == 26
    assert "- first differing token: sample 0, token 2: golden 198 '\\n' -> now 197 '\\t'" in text
    assert "```diff" in text and "+<|im_start|>user⇥What is the capital of France?<|im_end|>↵" in text


def test_golden_ids_and_mask_read_back_exactly(cth_run):
    for cell in (Cell("qwen3-8b", Think.ON, "reasoning_every_turn"), Cell("gpt-oss-20b", Think.ON, "tool_call")):
        result = cth_run(cell)
        body = golden.parse(golden.path_for(GOLDENS, cell).read_text("utf-8")).body
        parsed = golden.parse_samples(body)
        assert [(s.ids, s.mask) for s in parsed] == [(s.input_ids, s.loss_mask) for s in result.result.samples]


def test_header_causes_are_named():
    old = {
        "sha256 chat template": "a" * 64,
        "sha256 tokenizer.json": "b" * 64,
        "versions": "transformers 4.57.6, tokenizers 0.22.2, jinja2 3.1.6, harness 0.1.0 (rules 111)",
    }
    new = {
        "sha256 chat template": "c" * 64,
        "sha256 tokenizer.json": "d" * 64,
        "versions": "transformers 5.23.0, tokenizers 0.23.3, jinja2 3.1.6, harness 0.1.0 (rules 222)",
    }
    assert golden.explain(old, new) == [
        "chat template changed (sha256 aaaaaaaaaaaa -> cccccccccccc)",
        "tokenizer file changed: tokenizer.json (bbbbbbbbbbbb -> dddddddddddd)",
        "library version changed: transformers 4.57.6 -> 5.23.0",
        "library version changed: tokenizers 0.22.2 -> 0.23.3",
        "harness changed (rules 111 -> 222)",
    ]
    assert golden.explain(old, old) == []


def test_a_template_change_is_one_cause_though_its_file_changed_with_it():
    old = {
        "sha256 chat template": "a" * 64,
        "sha256 tokenizer_config.json": "b" * 64,
        "sha256 tokenizer.json": "e" * 64,
    }
    new = {
        "sha256 chat template": "c" * 64,
        "sha256 tokenizer_config.json": "d" * 64,
        "sha256 tokenizer.json": "e" * 64,
    }
    assert golden.explain(old, new) == [
        "chat template changed (sha256 aaaaaaaaaaaa -> cccccccccccc; tokenizer_config.json changed with it)"
    ]
    # the same file changed while the template did not: that is a tokenizer file change, named as such
    assert golden.explain({**old, "sha256 chat template": "c" * 64}, new) == [
        "tokenizer file changed: tokenizer_config.json (bbbbbbbbbbbb -> dddddddddddd)"
    ]


def test_the_harness_is_named_only_where_its_digest_differs():
    line = "transformers 5.24.0, tokenizers 0.23.3, jinja2 3.1.6, harness 0.1.0 (rules {})"
    assert golden.explain({"versions": line.format("111")}, {"versions": line.format("111")}) == []
    assert golden.explain({"versions": line.format("111")}, {"versions": line.format("222")}) == [
        "harness changed (rules 111 -> 222)"
    ]


def test_the_summary_counts_each_cause_once_per_cell():
    cell = Cell("qwen3-8b", Think.ON, "single_turn")
    causes = golden.causes(
        {"versions": "transformers 4.57.6, tokenizers 0.22.2, jinja2 3.1.6, harness 0.1.0 (rules 1)"},
        {"versions": "transformers 5.24.0, tokenizers 0.23.3, jinja2 3.1.6, harness 0.1.0 (rules 1)"},
    )
    assert [c.code for c in causes] == ["library", "library"]
    assert drift.summary([drift.CellDiff(cell, "changed", tuple(causes))]) == [
        "1 of 1 cells differ from the goldens",
        "  1 cell(s): library version changed",
    ]


def test_an_error_cell_names_the_template_change_and_a_fix_at_the_template(tmp_path: Path, pack_dir: Path):
    """A new template that cannot render the cell: its cause is the template's hash change, its fix the template."""
    from tests.helpers import pack_with_template

    header = "{{- '<|im_start|>assistant\\n' }}\n    {%- if enable"
    broken = pack_with_template(
        tmp_path, pack_dir, "Qwen--Qwen3-8B", (header, header.replace("assistant", "assistant "))
    )
    d = drift.diff_cell(Cell("qwen3-8b", Think.OFF, "single_turn"), GOLDENS, broken)
    assert d.status == "error"
    assert [c.code for c in d.causes] == ["template", "error"], d.causes
    assert d.causes[0].text.startswith("chat template changed (sha256 ")
    assert d.causes[1].text.startswith("the new template cannot render the cell: ")
    assert "; fix:" not in d.causes[1].text and "rules" not in d.fix
    assert "the chat template changed" in d.fix and "cth derive qwen3-8b" in d.fix
