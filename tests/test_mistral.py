"""Mistral models as every server serves them: mistral-common's ids (run here: it ships its tokenizer files).

Two built-ins: Mistral-Nemo-Instruct-2407 (tekken_240718.json, tekken v3) and Mistral-Large-Instruct-2411
(SentencePiece v7). Each sample's served prompt is mistral-common's `encode_chat_completion` (what vLLM, SGLang
and transformers 5 call), and each sample is mistral-common's encoding of the conversation through its turn.
"""

from __future__ import annotations

import dataclasses

import pytest

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.contract import conversation
from chat_template_harness.contract.sample import preprocess
from chat_template_harness.errors import HarnessError
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family_for
from chat_template_harness.serving import mistral, profiles, served
from tests.helpers import run_cell

MODELS = ("mistral-nemo-2407", "mistral-large-2411")


def _library(loaded, messages, *, finished: bool = False, tools=None) -> list[int]:
    """mistral-common itself, called as transformers' MistralCommonBackend calls it."""
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.validator import ValidationMode
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    mode = ValidationMode.finetuning if finished else ValidationMode.test
    tok = MistralTokenizer.from_file(loaded.tokenizer.mistral_common_file, mode=mode)
    return tok.encode_chat_completion(ChatCompletionRequest.from_openai(messages=messages, tools=tools)).tokens


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    "server",
    ["transformers", pytest.param("vllm", marks=pytest.mark.slow), pytest.param("sglang", marks=pytest.mark.slow)],
)
def test_every_sample_is_mistral_commons_encoding_under_every_server(model, server, load):
    """multi_turn has a system prompt: tekken v3 writes it into the last user turn, so each turn rewrites the
    history and gets a sample of its own; each sample's ids are the library's, token for token."""
    loaded = load(model)
    fam = family_for(loaded.spec, loaded.tokenizer)
    conv = conversation.fixture("multi_turn")
    server_prompt = served.for_conversation(server, loaded.tokenizer, fam, Think.OFF, conv)
    result = preprocess(loaded.tokenizer, conv, fam, Think.OFF, served=server_prompt)
    messages = [{"role": m.role, "content": m.content} for m in conv.messages]
    for sample in result.samples:
        last = result.plans[sample.turns[-1]].message_index
        assert list(sample.input_ids) == _library(loaded, messages[: last + 1], finished=True)
    expected = 3 if model == "mistral-nemo-2407" else 1  # v7 keeps the system prompt at the head: one shared sample
    assert len(result.samples) == expected


def _with_ids(call_id: str) -> conversation.Conversation:
    """The tool_call fixture with the call and its result carrying `call_id` (the fixture has no ids)."""
    conv = conversation.fixture("tool_call")
    msgs = list(conv.messages)
    msgs[1] = dataclasses.replace(msgs[1], tool_calls=(dataclasses.replace(msgs[1].tool_calls[0], id=call_id),))
    msgs[2] = dataclasses.replace(msgs[2], tool_call_id=call_id)
    return dataclasses.replace(conv, messages=tuple(msgs))


@pytest.mark.parametrize("model", MODELS)
def test_tool_data_whose_calls_carry_ids_is_mistral_commons_encoding(model, load):
    """Tool cells are N/A only for calls without ids (the fixtures'): data whose calls and results carry 9-character
    ids gets samples, each mistral-common's own encoding of the conversation through its turn (the request keeps the
    data's ids; it replaced them with `call_0000000000`, which mistral-common refuses). The control: the same data
    without ids stays N/A, with the reason."""
    loaded = load(model)
    fam = family_for(loaded.spec, loaded.tokenizer)
    with pytest.raises(HarnessError, match="with tools_without_ids: .*9-character alphanumeric id"):
        preprocess(loaded.tokenizer, conversation.fixture("tool_call"), fam, Think.OFF)
    conv = _with_ids("a9B8c7D6e")
    server_prompt = served.for_conversation("transformers", loaded.tokenizer, fam, Think.OFF, conv)
    result = preprocess(loaded.tokenizer, conv, fam, Think.OFF, served=server_prompt)
    request = profiles.to_request([dict(m) for m in _template_messages(conv, fam)], fam.reasoning_field)
    assert request[1]["tool_calls"][0]["id"] == "a9B8c7D6e" and request[2]["tool_call_id"] == "a9B8c7D6e"
    for sample in result.samples:
        last = result.plans[sample.turns[-1]].message_index
        tools = [dict(t) for t in conv.tools]
        assert list(sample.input_ids) == _library(loaded, request[: last + 1], finished=True, tools=tools)
    assert "a9B8c7D6e" in loaded.tokenizer.decode(result.samples[-1].input_ids)


def test_a_request_keeps_the_datas_ids_and_numbers_only_the_missing_ones():
    """An OpenAI request needs every call to have an id and every result to name one: the data's own are kept (a
    result naming no call of the data's is not rewritten), and only missing ones are written, in order."""
    call = {"type": "function", "function": {"name": "f", "arguments": {}}}
    msgs = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": [{**call, "id": "a9B8c7D6e"}, call]},
        {"role": "tool", "content": "r1", "tool_call_id": "zzzzzzzzz"},
        {"role": "tool", "content": "r2"},
    ]
    request = profiles.to_request(msgs, "reasoning_content")
    assert [c["id"] for c in request[1]["tool_calls"]] == ["a9B8c7D6e", "call_0000000001"]
    assert [m.get("tool_call_id") for m in request[2:]] == ["zzzzzzzzz", "a9B8c7D6e"]


def _template_messages(conv, fam):
    from chat_template_harness.contract.render import template_messages

    return template_messages(conv, fam, fam.off)


def test_tekken_v3_moves_the_system_prompt_into_the_last_user_turn(load):
    loaded = load("mistral-nemo-2407")
    text = loaded.tokenizer.decode(
        _library(
            loaded,
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Why?"},
            ],
        )
    )
    assert text == "<s>[INST]Hi[/INST]Hello!</s>[INST]Be brief.\n\nWhy?[/INST]"


@pytest.mark.slow  # the goldens hold every cell; this runs them again, determinism included
@pytest.mark.parametrize("model", MODELS)
def test_the_matrix_passes_on_mistral_commons_ids(model):
    results = [run_cell(c) for c in cellmodel.cells([model])]
    assert [r.cell.id for r in results if r.status.failing] == []
    assert sum(r.status is cellmodel.Status.PASS for r in results) >= 9


def test_a_template_that_writes_a_turn_otherwise_than_the_library_is_an_error(load):
    """Negative control: the finished-turn check reads the library's encoding, not the template's."""
    loaded = load("mistral-nemo-2407")
    fam = family_for(loaded.spec, loaded.tokenizer)
    conv = conversation.fixture("single_turn")
    server = served.for_conversation("transformers", loaded.tokenizer, fam, Think.OFF, conv)
    msgs = [{"role": m.role, "content": m.content} for m in conv.messages]
    text = loaded.tokenizer.decode(_library(loaded, msgs, finished=True))
    server.finished(msgs, text)  # the library's own text passes
    with pytest.raises(HarnessError, match="mistral-common writes this finished turn otherwise than the template"):
        server.finished(msgs, text.replace("</s>", "</s>\n"))


def test_mistral_cells_that_mistral_common_refuses_are_na_with_the_reason():
    na = {c.fixture: cellmodel.na_reason(c) for c in cellmodel.cells(["mistral-large-2411"], [Think.OFF])}
    assert "9-character alphanumeric id, which the built-in fixtures' calls do not have" in na["tool_call"]
    # the reason holds: no fixture's call carries an id (a fixture that gets one makes this reason false)
    from chat_template_harness.contract import conversation

    calls = [c for f in conversation.fixture_names() for m in conversation.fixture(f).messages for c in m.tool_calls]
    assert calls and all(c.id is None for c in calls)
    assert "InvalidAssistantMessageException" in na["empty_assistant_content"]
    assert "'▁', '▁Please'" in na["whitespace_edges"] and na["markdown_code"] == na["whitespace_edges"]
    assert na["single_turn"] is None
    on = cellmodel.na_reason(cellmodel.Cell("mistral-nemo-2407", Think.ON, "single_turn"))
    assert on is not None and "no thinking mode" in on


def test_the_sentencepiece_conversion_splits_leading_spaces_otherwise(load):
    """Why whitespace_edges is N/A on v7 (and not on tekken): under transformers 5 the served ids are not the text's
    tokenization (transformers 4.57 converts from the slow SentencePiece tokenizer and splits as SentencePiece does)."""
    import transformers

    loaded = load("mistral-large-2411")
    fam = family_for(loaded.spec, loaded.tokenizer)
    conv = conversation.fixture("whitespace_edges")
    mode = dataclasses.replace(fam.off, unsupported={})
    server = served.Served(profiles.get("vllm"), loaded.tokenizer, fam, mode, ())
    msgs = [{"role": "user", "content": conv.messages[0].content}]
    if int(transformers.__version__.split(".")[0]) >= 5:
        with pytest.raises(HarnessError, match=r"from token 5: served \['▁', '▁Please'"):
            server(msgs, "")
    else:
        assert "Please" in server(msgs, "")
    tekken = load("mistral-nemo-2407")
    ids = mistral.prompt_ids(tekken.tokenizer.mistral_common_file, msgs, ())
    assert tekken.tokenizer.encode(tekken.tokenizer.decode(ids), add_special_tokens=False) == ids


def test_a_sample_whose_ids_are_not_the_librarys_is_an_error_under_transformers_5(load):
    """The finished-turn check compares ids, not only text: v7's indented code (N/A by its rules) shows it."""
    import transformers

    loaded = load("mistral-large-2411")
    fam = family_for(loaded.spec, loaded.tokenizer)
    fam = dataclasses.replace(fam, off=dataclasses.replace(fam.off, unsupported={}))
    conv = conversation.fixture("markdown_code")
    server = served.for_conversation("sglang", loaded.tokenizer, fam, Think.OFF, conv)
    if int(transformers.__version__.split(".")[0]) >= 5:
        with pytest.raises(
            HarnessError, match=r"other ids than its text's tokenization: from token \d+, \['▁▁▁', '▁return'"
        ):
            preprocess(loaded.tokenizer, conv, fam, Think.OFF, served=server)
    else:
        assert preprocess(loaded.tokenizer, conv, fam, Think.OFF, served=server).samples


def test_vllm_cuts_long_tool_call_ids_to_their_last_nine_characters():
    request = [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_0000000001", "function": {}}]},
        {"role": "tool", "tool_call_id": "call_0000000001", "content": "21C"},
        {"role": "tool", "tool_call_id": "abc", "content": "x"},
    ]
    out = mistral.truncated_ids(request)
    assert out[0]["tool_calls"][0]["id"] == "000000001" and out[1]["tool_call_id"] == "000000001"
    assert out[2]["tool_call_id"] == "abc" and request[0]["tool_calls"][0]["id"] == "call_0000000001"


def test_a_tokenizer_that_is_not_mistral_commons_cannot_be_served_as_mistral(load):
    qwen = load("qwen3-8b")
    fam = dataclasses.replace(family_for(load("mistral-nemo-2407").spec), renderer="mistral-common")
    with pytest.raises(HarnessError, match="not one of its files"):
        served.prompt_ids(profiles.get("vllm"), qwen.tokenizer, [{"role": "user", "content": "x"}], (), fam, fam.off)
