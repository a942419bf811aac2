"""The matrix's prefetch: tokenizers made in a background process are the ones the caller would make, and a model
that fails there fails in the caller with its own error (models/source.py `prefetch`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_template_harness.errors import HashMismatchError
from chat_template_harness.models import source

TEXT = "<|im_start|>user\nça va? 123 <think>\n</think>\n\n<|im_end|>\n"


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the machine: one background process beside the caller (a test below says one core)."""
    monkeypatch.setattr(source, "_cores", lambda: 2)


def test_a_prefetched_tokenizer_comes_from_the_background_and_equals_one_made_here():
    # allow_drift=True: a key no other test loads, so this process has not made it yet
    first, later = source._key("qwen3-8b", None, True), source._key("llama-3.2-3b", None, True)
    assert later not in source._LOADED
    with source.prefetch(["qwen3-8b", "llama-3.2-3b"], allow_drift=True):
        assert first not in source._PREFETCHED  # the caller makes the first itself
        assert later in source._PREFETCHED
        loaded = source.load("llama-3.2-3b", allow_drift=True)
        assert later not in source._PREFETCHED and source._LOADED[later] is loaded
    here = source._load(*later)
    assert loaded.tokenizer(TEXT, return_offsets_mapping=True).data == here.tokenizer(TEXT, return_offsets_mapping=True).data
    assert (loaded.chat_template, loaded.observed, loaded.drift) == (here.chat_template, here.observed, here.drift)
    assert source.load("llama-3.2-3b", allow_drift=True) is loaded  # once per process


def test_the_caller_makes_a_model_no_process_has_started():
    # one background process: the third model waits its turn
    second, third = source._key("deepseek-r1", None, True), source._key("mistral-large-2411", None, True)
    with source.prefetch(["qwen3-8b", "deepseek-r1", "mistral-large-2411"], allow_drift=True):
        assert second in source._PREFETCHED and third in source._QUEUE
        loaded = source.load("mistral-large-2411", allow_drift=True)  # taken from the queue, made here
        assert third not in source._QUEUE and third not in source._PREFETCHED and source._LOADED[third] is loaded
        assert source.load("deepseek-r1", allow_drift=True).spec.name == "deepseek-r1"  # waited for
    assert not source._QUEUE and not source._PREFETCHED


def test_on_one_core_nothing_is_prefetched(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(source, "_cores", lambda: 1)  # a background process would only compete with the caller
    with source.prefetch(["qwen3-8b", "qwq-32b"], allow_drift=True):
        assert not source._PREFETCHED and not source._QUEUE


def test_a_model_that_fails_in_the_background_raises_its_own_error_in_the_caller(drifted_pack: Path):
    with source.prefetch(["llama-3.2-3b", "qwen3-8b"], drifted_pack):
        assert source._key("qwen3-8b", drifted_pack, False) in source._PREFETCHED
        with pytest.raises(HashMismatchError, match="qwen3-8b: .*tokenizer_config.json sha256"):
            source.load("qwen3-8b", drifted_pack)
    assert source._key("qwen3-8b", drifted_pack, False) not in source._LOADED
