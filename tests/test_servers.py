"""The served prompt of real servers: vLLM serves gpt-oss through harmony; both servers normalise requests.

Every claim is read off decoded token ids. oss-harmony runs here (it embeds its vocabulary: no network).
"""

from __future__ import annotations

import dataclasses

import pytest

from chat_template_harness.cells.model import Cell
from chat_template_harness.cli import main
from chat_template_harness.errors import HarnessError
from chat_template_harness.models.rules import Think
from chat_template_harness.outputs import servers as compare
from chat_template_harness.serving import probes, profiles

TRANSFORMERS, VLLM, SGLANG = profiles.get("transformers"), profiles.get("vllm"), profiles.get("sglang")


def _turn(fixture: str, a=TRANSFORMERS, b=VLLM, turn: int = -1) -> compare.TurnDiff:
    return compare.compare_cell(Cell("gpt-oss-20b", Think.ON, fixture), a, b)[turn]


def test_vllm_serves_gpt_oss_a_single_turn_as_the_template_does():
    assert _turn("single_turn").same


def test_vllm_ends_gpt_oss_system_prompts_without_the_templates_blank_line():
    d = _turn("with_system")
    assert not d.same
    assert "Answer in one sentence.\n\n<|end|><|start|>user<|message|>Why" in d.mine
    assert "Answer in one sentence.<|end|><|start|>user<|message|>Why" in d.theirs


def test_vllm_writes_a_tool_results_recipient_after_its_channel():
    d = _turn("tool_call")
    assert "<|start|>functions.get_weather to=assistant<|channel|>commentary" in d.mine
    assert "<|start|>functions.get_weather<|channel|>commentary to=assistant" in d.theirs


def test_vllm_writes_an_earlier_tool_calls_header_as_gpt_oss_was_trained():
    """vLLM 0.33 rewrites oss-harmony 0.0.11's `assistant<|channel|>commentary to=functions.f <|constrain|>json`
    back to `assistant to=functions.f<|channel|>commentary json`, as the template writes it."""
    from chat_template_harness.serving import harmony

    enc = harmony.encoding()
    new = enc.encode(
        "<|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}", allowed_special="all"
    )
    assert (
        enc.decode(harmony.legacy_tool_call_headers(new))
        == "<|start|>assistant to=functions.f<|channel|>commentary json<|message|>{}"
    )
    assert harmony.legacy_tool_call_headers(
        enc.encode("<|start|>user<|message|>hi", allowed_special="all")
    ) == enc.encode("<|start|>user<|message|>hi", allowed_special="all")


def test_without_harmony_the_difference_is_gone():
    """Negative control: the differences come from the harmony renderer, not from the comparison itself."""
    no_harmony = dataclasses.replace(VLLM, harmony_families=frozenset())
    assert _turn("with_system", b=no_harmony).same and _turn("with_system", b=TRANSFORMERS).same


def test_vllm_parses_string_arguments_and_empties_none_content():
    request = [
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "R",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
                {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "not json"}},
                {"id": "call_3", "type": "function", "function": {"name": "h", "arguments": "[1]"}},
                {"id": "call_4", "type": "function", "function": {"name": "i", "arguments": None}},
            ],
        }
    ]
    (msg,) = VLLM.normalise(request)
    assert msg["content"] == "" and msg["reasoning"] == msg["reasoning_content"] == "R"
    assert [c["function"]["arguments"] for c in msg["tool_calls"]] == [{"a": 1}, {}, {}, {}]
    assert "tool_calls" not in VLLM.normalise([{"role": "assistant", "content": "x", "tool_calls": []}])[0]


def test_sglang_rejects_arguments_that_are_not_a_json_object_and_joins_tool_parts_with_a_space():
    """As SGLang 0.5.23's serving_chat.py does (scripts/check_sglang.py runs its functions against this profile)."""
    sglang = profiles.get("sglang")
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert sglang.normalise([{"role": "tool", "content": parts}])[0]["content"] == "a b"
    assert sglang.normalise([{"role": "user", "content": parts}])[0]["content"] == parts  # the template's business
    for arguments in ("{oops", "[1]", "42"):
        bad = [
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": arguments}}]}
        ]
        with pytest.raises(HarnessError, match="fix: send the arguments as a JSON object string"):
            sglang.normalise(bad)


def test_every_profile_rule_names_the_server_version_and_file():
    for profile in profiles.PROFILES.values():
        assert profile.rules and all(rule.where for rule in profile.rules)
    assert all("0.33.0" in r.where for r in VLLM.rules)


def test_cth_servers_prints_each_difference_decoded(capsys):
    assert (
        main(
            [
                "servers",
                "--model",
                "gpt-oss-20b",
                "--fixture",
                "with_system",
                "--fixture",
                "single_turn",
                "--against",
                "vllm",
                "--no-probes",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "gpt-oss-20b/think-on/with_system turn 0: the lists part at token 77" in out
    assert "transformers vs vllm: 2 served prompts compared, 1 differ (in 1 cells), 0 cannot be served" in out


def test_an_unknown_server_is_one_clear_error():
    with pytest.raises(HarnessError, match="fix: use one of transformers, vllm, sglang"):
        profiles.get("tgi")


@pytest.mark.slow
def test_the_committed_servers_report_is_what_the_code_produces(tmp_path):
    from pathlib import Path

    from chat_template_harness.outputs.reportfile import body

    out = tmp_path / "servers.md"
    assert main(["servers", "--markdown", str(out)]) == 0
    committed = Path(__file__).parent.parent / "reports" / "servers.md"
    assert body(out.read_text("utf-8")) == body(committed.read_text("utf-8")), (
        "regenerate: cth servers --markdown reports/servers.md"
    )


def _checked(fixture: str, served_by: str, model: str = "gpt-oss-20b"):
    from chat_template_harness.examples import reference
    from tests.helpers import check_cell

    return check_cell(reference.preprocess, Cell(model, Think.ON, fixture), served_by=served_by)


def test_the_reference_checked_served_by_vllm_fails_where_vllm_serves_another_prompt():
    """The template's samples, checked against the prompt vLLM serves: named where the prompts part, passing where
    they agree (and passing everywhere against the template itself: the negative control)."""
    result = _checked("with_system", "vllm")
    assert result.status.name == "FAIL"
    assert (
        "from token 77 the sample has '.\\n\\n<|end|><|start|>', the served prompt '.<|end|><|start|>'" in result.reason
    )
    tool = _checked("tool_call", "vllm")
    assert (
        tool.status.name == "FAIL"
        and "the sample has ' to=assistant', the served prompt '<|channel|>commentary'" in tool.reason
    )
    assert _checked("single_turn", "vllm").status.name == "PASS"
    assert _checked("with_system", "transformers").status.name == "PASS"


def test_checked_served_by_sglang_a_family_it_serves_as_the_template_passes():
    assert _checked("tool_call", "sglang", "qwen3-8b").status.name == "PASS"


def test_cth_render_served_by_vllm_makes_samples_on_vllms_prompt(capsys):
    """The samples themselves, not only the check: the reference rebuilt on the prompt vLLM serves."""
    import json

    assert main(["render", "gpt-oss-20b", "with_system", "--think", "on", "--served-by", "vllm", "--json"]) == 0
    (sample,) = json.loads(capsys.readouterr().out)
    assert "one sentence.<|end|><|start|>user<|message|>" in sample["text"]
    assert main(["render", "gpt-oss-20b", "with_system", "--think", "on", "--json"]) == 0
    assert "one sentence.\n\n<|end|><|start|>user<|message|>" in json.loads(capsys.readouterr().out)[0]["text"]


# --- every differing region, and the probes: requests with content parts and request options ----------------------


def test_regions_are_every_place_two_id_lists_part_neighbours_merged():
    decode = lambda ids: " ".join(map(str, ids))  # noqa: E731
    base = list(range(100))
    far = base[:10] + [900] + base[11:80] + [901, 902] + base[80:]  # one replaced token, two inserted ones
    assert [r.at for r in compare.regions(base, far, decode)] == [10, 80]
    assert "901 902" in compare.regions(base, far, decode)[1].theirs
    near = base[:10] + [900] + base[11:15] + [901] + base[16:]
    assert [r.at for r in compare.regions(base, near, decode)] == [10]
    assert compare.regions(base, list(base), decode) == ()


def _probe(name: str, model: str, think: Think, b=VLLM, a=TRANSFORMERS) -> compare.TurnDiff:
    (probe,) = [p for p in probes.probes() if p.name == name]
    return compare.compare_probe(model, think, probe, a, b)


def test_vllm_puts_gpt_oss_text_before_a_tool_call_on_commentary_and_writes_tool_results_unquoted():
    d = _probe("tool_call_with_text", "gpt-oss-20b", Think.ON)
    first, second = d.regions
    assert "<|channel|>analysis<|message|>Let me check" in first.mine
    assert "<|channel|>commentary<|message|>Let me check" in first.theirs
    assert '<|message|>"21C and sunny"<|end|>' in second.mine and "<|message|>21C and sunny<|end|>" in second.theirs


def test_vllm_prints_gpt_oss_tool_schemas_otherwise():
    mine = " ".join(r.mine for r in _probe("tool_schemas", "gpt-oss-20b", Think.ON).regions)
    theirs = " ".join(r.theirs for r in _probe("tool_schemas", "gpt-oss-20b", Think.ON).regions)
    assert "type get_time = () => any;" in mine and "type get_time = (_: {\n}) => any;" in theirs
    assert 'default: "19:00",\n' in mine and 'default: "19:00"\n' in theirs


def test_tool_result_parts_are_joined_by_each_server_its_own_way():
    """The harness joins text parts with a newline (as vLLM's template path); SGLang with a space; vLLM's
    harmony path with nothing."""
    assert _probe("tool_result_parts", "qwen3-8b", Think.OFF).same
    sglang = _probe("tool_result_parts", "qwen3-8b", Think.OFF, b=SGLANG)
    assert "21C\nsunny" in sglang.mine and "21C sunny" in sglang.theirs
    assert "<|message|>21Csunny<|end|>" in _probe("tool_result_parts", "gpt-oss-20b", Think.ON).theirs


def test_sglang_appends_a_prefill_after_the_generation_prompt_where_the_template_writes_an_empty_think_block():
    d = _probe("prefill", "qwen3-8b", Think.ON, b=SGLANG)
    assert d.mine.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\nThe colour is")
    assert d.theirs.endswith("<|im_start|>assistant\nThe colour is")
    assert _probe("prefill", "qwen3-8b", Think.ON).same  # vLLM passes continue_final_message to the template


def test_sglang_sends_a_trailing_assistant_message_as_a_user_message():
    d = _probe("trailing_assistant", "qwen2.5-7b", Think.OFF, b=SGLANG)
    assert "<|im_start|>assistant\nHello." in d.mine and "<|im_start|>user\nHello." in d.theirs
    assert _probe("trailing_assistant", "qwen2.5-7b", Think.OFF).same
    renamed_never = dataclasses.replace(SGLANG, trailing_assistant_as_user=False)  # negative control
    assert _probe("trailing_assistant", "qwen2.5-7b", Think.OFF, b=renamed_never).same


def test_vllm_reads_a_clients_add_special_tokens_and_serves_a_double_bos():
    d = _probe("client_special_tokens", "llama-3.1-8b", Think.OFF)
    assert d.at == 0 and d.theirs.startswith("<|begin_of_text|><|begin_of_text|><|start_header_id|>")
    assert _probe("client_special_tokens", "llama-3.1-8b", Think.OFF, b=SGLANG).same
    assert _probe("client_special_tokens", "qwen3-8b", Think.OFF).same  # no BOS to add
    unread = dataclasses.replace(VLLM, client_special_tokens=False)  # negative control
    assert _probe("client_special_tokens", "llama-3.1-8b", Think.OFF, b=unread).same


def test_a_probe_the_harness_does_not_model_is_reported_not_guessed():
    d = _probe("prefill", "gpt-oss-20b", Think.ON)
    assert not d.same and "harmony path with continue_final_message: true is not modelled" in d.error
