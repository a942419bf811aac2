"""`--served-by` on every command that makes samples, the plugin's `--cth-served-by`, and `[tool.cth] served_by`.

The goldens hold transformers' served prompts; another server's samples are checked against the invariants and
compared with the goldens only by `cth diff`, which names the server as the cause.
"""

from __future__ import annotations

import json

import pytest

from chat_template_harness.cells.model import Cell
from chat_template_harness.cli import main
from chat_template_harness.errors import HarnessError
from chat_template_harness.models import userconfig
from chat_template_harness.models.rules import Think
from chat_template_harness.serving import served

GPT_OSS_SYSTEM = ["--model", "gpt-oss-20b", "--think", "on", "--fixture", "with_system"]


def test_matrix_served_by_vllm_checks_vllms_samples_and_leaves_the_goldens_alone(capsys):
    assert main(["matrix", *GPT_OSS_SYSTEM, "--served-by", "vllm"]) == 0
    out = capsys.readouterr().out
    assert "1 passed" in out and "served by vllm: invariants checked on its served prompts; goldens not compared" in out


def test_matrix_never_writes_goldens_of_another_server(tmp_path, capsys):
    assert (
        main(["matrix", *GPT_OSS_SYSTEM, "--served-by", "sglang", "--update-goldens", "--goldens", str(tmp_path)]) == 2
    )
    assert "goldens hold transformers' served prompts, not sglang's" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_diff_served_by_vllm_names_the_server_where_its_prompt_differs(capsys):
    """gpt-oss's system prompt differs under vLLM (harmony); Qwen3's single turn does not (the negative control)."""
    assert main(["diff", *GPT_OSS_SYSTEM, "--served-by", "vllm"]) == 1
    out = capsys.readouterr().out
    assert "CHANGED gpt-oss-20b/think-on/with_system" in out
    assert "cause: served by another server: transformers -> vllm" in out
    assert (
        main(["diff", "--model", "qwen3-8b", "--think", "off", "--fixture", "single_turn", "--served-by", "vllm"]) == 0
    )


def test_audit_served_by_vllm_fails_rows_whose_samples_vllm_never_serves(tmp_path, capsys):
    """The template's samples (the reference plug-in) on gpt-oss rows with a system prompt: right against the
    template, wrong against the prompt vLLM serves."""
    from pathlib import Path

    import chat_template_harness

    fixture = Path(chat_template_harness.__file__).parent / "data" / "fixtures" / "with_system.json"
    row = json.dumps(json.loads(fixture.read_text("utf-8")))
    rows = tmp_path / "rows.jsonl"
    rows.write_text(row + "\n" + row + "\n", "utf-8")
    audit = [
        "audit",
        str(rows),
        "--model",
        "gpt-oss-20b",
        "--think",
        "on",
        "--workers",
        "1",
        "--preprocessor",
        "chat_template_harness.examples.reference:preprocess",
    ]
    report = tmp_path / "report.json"
    assert main([*audit, "--json", str(report)]) == 0
    assert json.loads(report.read_text("utf-8"))["preprocessor"]["rows_wrong"] == 0
    assert main([*audit, "--served-by", "vllm", "--json", str(report)]) == 1
    assert json.loads(report.read_text("utf-8"))["preprocessor"]["rows_wrong"] == 2
    capsys.readouterr()


def test_smoke_samples_served_by_vllm_are_built_on_vllms_prompt(load):
    from chat_template_harness.smoke import _samples

    loaded = load("gpt-oss-20b")
    texts = {}
    for server in ("transformers", "vllm"):
        data = _samples(loaded, Think.ON, "reference", [], server)
        texts[server] = {name: loaded.tokenizer.decode(ids) for name, _, _, ids, _ in data}
    # vLLM writes a tool result's recipient after its channel (harmony); a single turn it serves as the template does
    assert texts["transformers"]["tool_call"] != texts["vllm"]["tool_call"]
    assert "<|channel|>commentary to=assistant" in texts["vllm"]["tool_call"]
    assert texts["transformers"]["single_turn"] == texts["vllm"]["single_turn"]


def test_gallery_served_by_vllm_says_whose_prompt_each_page_shows(tmp_path, monkeypatch):
    from chat_template_harness.outputs import gallery

    only = [Cell("gpt-oss-20b", Think.ON, "with_system")]
    monkeypatch.setattr(gallery, "all_cells", lambda *a, **k: only)
    results = gallery.build(tmp_path / "site", gallery.Path("goldens"), served_by="vllm")
    page = (tmp_path / "site" / "cells" / "gpt-oss-20b" / "think-on" / "with_system.html").read_text("utf-8")
    assert (
        results[0].served_by == "vllm" and "served by: vllm" in page and "token 77 · id 13 ·" in page
    )  # "." where the template writes ".\n\n" (id 364)
    gallery.build(tmp_path / "other", gallery.Path("goldens"))  # the default: transformers', equal to the golden
    page = (tmp_path / "other" / "cells" / "gpt-oss-20b" / "think-on" / "with_system.html").read_text("utf-8")
    assert "served by" not in page and "token 77 · id 364 ·" in page


def test_tool_cth_served_by_is_the_default_and_a_flag_wins(tmp_path, monkeypatch):
    config = tmp_path / "cth.toml"
    config.write_text('served_by = "vllm"\n', "utf-8")
    monkeypatch.setenv(userconfig.ENV_CONFIG, str(config))
    assert served.chosen(None) == "vllm" and served.chosen("sglang") == "sglang"
    config.write_text('served_by = "tgi"\n', "utf-8")
    userconfig._read.cache_clear()
    with pytest.raises(HarnessError, match="served_by = 'tgi' is not a server the harness knows"):
        served.chosen(None)
    monkeypatch.delenv(userconfig.ENV_CONFIG)
    userconfig._read.cache_clear()


def test_cli_reads_tool_cth_served_by(tmp_path, monkeypatch, capsys):
    config = tmp_path / "cth.toml"
    config.write_text('served_by = "vllm"\n', "utf-8")
    monkeypatch.setenv(userconfig.ENV_CONFIG, str(config))
    assert main(["render", "gpt-oss-20b", "with_system", "--think", "on", "--json"]) == 0
    assert "one sentence.<|end|><|start|>user" in json.loads(capsys.readouterr().out)[0]["text"]
    monkeypatch.delenv(userconfig.ENV_CONFIG)
    userconfig._read.cache_clear()


@pytest.mark.slow  # a pytest subprocess: ~10 s
def test_plugin_cells_served_by_vllm(pytester: pytest.Pytester):
    """The plug-in option: the reference's (template) samples fail gpt-oss's system-prompt cell under vLLM."""
    pytester.makeini("[pytest]\ncth_preprocessor = chat_template_harness.examples.reference:preprocess\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-m",
        "cth",
        "--cth-model",
        "gpt-oss-20b",
        "--cth-think",
        "on",
        "--cth-fixture",
        "with_system",
        "--cth-fixture",
        "single_turn",
        "--cth-served-by",
        "vllm",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*reproduce: cth check * --fixture with_system --served-by vllm"])


def test_the_gallery_shows_the_servers_report_as_a_page(tmp_path, monkeypatch):
    from pathlib import Path

    from chat_template_harness.outputs import gallery

    monkeypatch.setattr(gallery, "all_cells", lambda *a, **k: [Cell("qwen3-8b", Think.OFF, "single_turn")])
    report = Path(__file__).resolve().parents[1] / "reports" / "servers.md"
    gallery.build(tmp_path, gallery.Path("goldens"), servers_report=report)
    page = (tmp_path / "servers.html").read_text("utf-8")
    assert "<table>" in page and "gpt-oss-20b/think-on/with_system" in page and "generated-by" not in page
    assert 'href="servers.html"' in (tmp_path / "index.html").read_text("utf-8")
    gallery.build(tmp_path / "without", gallery.Path("goldens"))
    assert not (tmp_path / "without" / "servers.html").exists()
