"""The `cth` command line: output people read, JSON machines read, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chat_template_harness import cli
from chat_template_harness.contract import conversation
from chat_template_harness.contract.sample import preprocess
from chat_template_harness.contract.turns import Kind
from chat_template_harness.models import source
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family
from chat_template_harness.outputs.view import STYLES, sample_text, visible


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_lists_every_tokenizer_with_its_provenance(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    for name in source.registry():
        assert name in out
    assert out.count("all sha256 match") == len(source.registry())
    assert "not registered" not in out


def test_models_without_local_files_says_so_in_a_word_and_gives_the_fix_once(capsys, monkeypatch):
    import huggingface_hub

    def not_cached(*args, **kwargs):
        raise OSError("Cannot find an appropriate cached snapshot folder for the specified revision")

    monkeypatch.delenv("CTH_TOKENIZERS_DIR", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_cached)
    code, out, _ = run(capsys, "models")
    assert code == 0 and "cached snapshot" not in out  # the hub's own exception stays out of every row
    fixes = [line for line in out.splitlines() if line.startswith("no local files for")]
    missing = out.count("not available")  # the hub's models (those a package ships stay available)
    assert missing >= 15 and len(fixes) == 1 and "set CTH_TOKENIZERS_DIR" in fixes[0]
    assert f"for {missing} model(s) (qwen2.5-7b, qwen3-8b," in fixes[0]


def test_models_lists_pack_folders_without_rules(capsys, pack_dir, tmp_path):
    from tests.helpers import writable_pack

    pack = writable_pack(tmp_path, pack_dir, ["Qwen--Qwen3-8B"])
    (pack / "acme--my-finetune").mkdir()
    code, out, _ = run(capsys, "models", "--tokenizers-dir", str(pack))
    assert code == 0
    assert "not registered (no cells by default; `cth derive" in out and "acme--my-finetune" in out


def test_show_qwen3_think_off_shows_the_empty_think_block_as_untrained_prompt(capsys):
    code, out, _ = run(capsys, "show", "qwen3-8b", "single_turn", "--think", "off")
    assert code == 0
    assert "empty think, injected by the template (not trained)" in out
    assert "<|im_start|>assistant↵\n<think>↵\n↵\n</think>↵\n↵\nThe capital" in out
    loaded = source.load("qwen3-8b")
    (sample,) = preprocess(loaded.tokenizer, conversation.fixture("single_turn"), family("qwen3"), Think.OFF).samples
    styled = sample_text(sample)
    empty = [styled.plain[s.start : s.end] for s in styled.spans if s.style == STYLES[Kind.EMPTY_THINK]]
    assert empty == [visible("<think>\n\n</think>\n\n")]
    trained = [
        styled.plain[s.start : s.end] for s in styled.spans if s.style in (STYLES[Kind.CONTENT], STYLES[Kind.STOP])
    ]
    assert "".join(trained) == "The capital of France is Paris.<|im_end|>"


def test_render_json_is_a_list_of_samples(capsys):
    code, out, _ = run(capsys, "render", "qwen3-8b", "multi_turn", "--think", "off", "--json")
    samples = json.loads(out)
    assert code == 0 and len(samples) == 3
    for s in samples:
        assert set(s) >= {"text", "input_ids", "loss_mask"} and len(s["input_ids"]) == len(s["loss_mask"])
        assert s["text"].endswith("<|im_end|>")


def test_render_accepts_a_hub_id_and_a_conversation_file(capsys, tmp_path: Path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]))
    code, out, _ = run(capsys, "render", "meta-llama/Llama-3.1-8B-Instruct", str(path), "--think", "off", "--json")
    assert code == 0 and json.loads(out)[0]["text"].endswith("hello<|eot_id|>")


def test_visible_whitespace():
    assert visible("a b\n  c\td ") == "a b↵\n··c⇥d·"


BAD_INPUT = {
    "malformed fixture": ('[{"role": "user"', "is not valid JSON"),
    "unknown role": ('[{"role": "user", "content": "q"}, {"role": "robot", "content": "a"}]', "unknown role 'robot'"),
    "not ending in assistant": ('[{"role": "user", "content": "q"}]', "ends with a 'user' message"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_conversation_is_one_line_with_no_traceback(case: str, capsys, tmp_path: Path):
    text, expected = BAD_INPUT[case]
    path = tmp_path / "bad.json"
    path.write_text(text)
    code, out, err = run(capsys, "show", "qwen3-8b", str(path), "--think", "off")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and expected in err and "fix:" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unknown_model_is_one_line(capsys):
    code, _, err = run(capsys, "show", "llama-9", "single_turn", "--think", "off")
    assert code == 2 and err.startswith("error: unknown model 'llama-9'") and err.count("\n") == 1


def test_missing_tokenizer_directory_is_one_line_from_the_installed_script(tmp_path: Path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chat_template_harness.cli",
            "show",
            "qwen3-8b",
            "single_turn",
            "--think",
            "off",
            "--tokenizers-dir",
            str(tmp_path / "missing"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: tokenizer directory") and "fix:" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_na_cell_is_one_line_with_the_reason(capsys):
    code, _, err = run(capsys, "show", "qwq-32b", "single_turn", "--think", "off")
    assert code == 2 and "N/A" in err and "no off switch" in err


def test_matrix_is_all_pass_or_declared_na_here(capsys, tmp_path: Path):
    summary = tmp_path / "matrix.md"
    code = cli.main(["matrix", "--model", "qwen3-8b", "--model", "qwq-32b", "--markdown", str(summary)])
    out = capsys.readouterr().out
    assert code == 0
    assert "39 passed, 0 failed, 13 n/a" in out
    assert "n/a (13 cells): QwQ (always thinks) think-off: no off switch" in out
    text = summary.read_text()
    assert "| `qwen3-8b` | off | ✅ |" in text and "### N/A cells" in text


def test_matrix_fails_cells_whose_golden_differs_and_says_why(capsys, drifted_pack: Path, tmp_path: Path):
    summary = tmp_path / "matrix.md"
    code = cli.main(
        [
            "matrix",
            "--model",
            "qwen3-8b",
            "--fixture",
            "single_turn",
            "--tokenizers-dir",
            str(drifted_pack),
            "--allow-drift",
            "--markdown",
            str(summary),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL qwen3-8b/think-off/single_turn: golden differs: chat template changed" in out
    assert "- `qwen3-8b/think-off/single_turn`: golden differs: chat template changed" in summary.read_text()
