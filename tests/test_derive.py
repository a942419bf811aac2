"""Rules as data, and rules derived from a template (`cth derive`).

- Every built-in family: derivation from its real template reproduces its shipped rules file; each
  difference is one the file keeps by hand under `[reviewed]`, with its reason.
- Never-seen templates, built here from the pack's files: derived, then the whole matrix runs on
  them with the derived rules, and the trained span is asserted, decoded.
- Rules files: round trip, and one clear error for a bad file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.cli import main
from chat_template_harness.contract import conversation
from chat_template_harness.contract.sample import preprocess
from chat_template_harness.models import source
from chat_template_harness.models.rules import NotApplicable, Think, ThinkMode, derive, files
from chat_template_harness.models.rules.registry import builtin, builtin_names, family_for, generation_config
from tests.helpers import fixture_json, run_cells

R, C = "Two plus two is four.", "4"
THINKING = conversation.parse(
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": C, "reasoning_content": R}],
    name="thinking",
    source="test",
)
# one registered model per built-in family
FIRST_MODEL = {}
for _spec in source.builtin_registry().values():
    FIRST_MODEL.setdefault(_spec.family, _spec.name)


def _derived(name: str) -> derive.Derivation:
    loaded = source.load(name)
    eos = derive.eos_tokens(loaded.tokenizer, generation_config(loaded.spec, loaded.tokenizer))
    return derive.derive(loaded.tokenizer, name, eos)


@pytest.mark.parametrize("family_name", sorted(FIRST_MODEL))
def test_derivation_reproduces_the_shipped_rules(family_name):
    shipped = builtin(family_name)
    found = _derived(FIRST_MODEL[family_name])
    # a rule the template does not prove stays undecided, and only the rules file's hand (with its reason) decides it
    assert all(derive._why(shipped.reviewed, u.rule) for u in found.family.undecided), found.undecided
    diffs = derive.differences(found.family, shipped)
    # every difference is one the rules file keeps by hand, and says why; nothing else differs
    # a reason for a table (`think.on`) covers the rules in it; no reason is kept for a rule that neither differs nor
    # is left undecided by derivation (a value derive would give only as a default: Nemotron v1.5's before_answer)
    asked = [d.rule for d in diffs] + [u.rule for u in found.family.undecided]
    kept = {k for k in shipped.reviewed if any(r == k or r.startswith(k + ".") for r in asked)}
    assert kept == set(shipped.reviewed), [(d.rule, d.derived, d.shipped) for d in diffs]
    assert all(d.why for d in diffs)
    assert derive.reviewed(found.family, shipped) == shipped


def test_every_builtin_rules_file_is_used_by_a_model():
    assert set(builtin_names()) == set(FIRST_MODEL)


@pytest.mark.parametrize("family_name", sorted(FIRST_MODEL))
def test_rules_files_round_trip(family_name, tmp_path):
    shipped = builtin(family_name)
    files.write(shipped, tmp_path / "rules.toml", header="a header\n\nwith a blank line")
    assert files.read(tmp_path / "rules.toml") == shipped


def test_a_difference_without_a_reason_is_reported_as_such():
    """Negative control: a shipped rule edited by hand without saying why is caught."""
    shipped = builtin("qwen3")
    edited = files.family_from_mapping({**files.to_mapping(shipped), "trailer": ""}, "edited")
    diffs = derive.differences(_derived("qwen3-8b").family, edited)
    assert [(d.rule, d.derived, d.shipped, d.why) for d in diffs] == [("trailer", "\n", "", "")]
    assert derive.reviewed(_derived("qwen3-8b").family, edited) != edited


@pytest.mark.parametrize(
    "text, message",
    [
        ("name = ", "is not valid TOML"),
        ('title = "x"\nstop_tokens = []\n[think.on]\n[think.off]\n', "missing name"),
        ('name = "x"\ntitle = "x"\nstop_tokens = []\nopner = "x"\n[think.on]\n[think.off]\n', "unknown keys ['opner']"),
        ('name = "x"\ntitle = "x"\nstop_tokens = []\n[think.on]\n', "needs both [think.on] and [think.off]"),
        (
            'name = "x"\ntitle = "x"\nstop_tokens = []\n[think.on]\nopener = "<think>"\nnot_applicable = "no"\n[think.off]\n',
            "stands alone",
        ),
    ],
)
def test_a_bad_rules_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "rules.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(files.RulesError) as err:
        files.read(path)
    assert message in str(err.value) and str(path) in str(err.value) and "fix:" in str(err.value)


# --- never-seen templates, made from the pack's files ----------------------------------------------------------------


def _pack() -> Path:
    base = source.tokenizers_dir_from_env()
    assert base is not None, "conftest points CTH_TOKENIZERS_DIR at the pack"
    return base


def _folder(tmp_path: Path, name: str, template: str | list[dict[str, str]], base: str = "Qwen--Qwen3-8B") -> Path:
    """The Qwen3 tokenizer under a new name with another chat template (a list: named templates)."""
    folder = tmp_path / name
    shutil.copytree(_pack() / base, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
    config["chat_template"] = template
    (folder / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False), "utf-8")
    return folder


def _template_of(pack_folder: str) -> str:
    return json.loads((_pack() / pack_folder / "tokenizer_config.json").read_text("utf-8"))["chat_template"]


DATED = (
    "{%- for message in messages %}"
    "{%- if loop.first and message.role != 'system' %}<|im_start|>system\nToday is {{ strftime_now('%d %B %Y') }}.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _whole_matrix(folder: Path) -> list[cellmodel.CellResult]:
    results = run_cells(cellmodel.cells([str(folder)]))
    failed = [(r.cell.id, r.reason) for r in results if r.status is cellmodel.Status.FAIL]
    assert not failed
    return results


def _trained(name: str, think: Think) -> tuple[str, str]:
    """(served prompt end, decoded trained span) of THINKING's sample."""
    loaded = source.load(name)
    result = preprocess(loaded.tokenizer, THINKING, family_for(loaded.spec, loaded.tokenizer), think)
    sample = result.samples[-1]
    trained = [t for t, m in zip(sample.input_ids, sample.loss_mask, strict=True) if m]
    return result.plans[-1].prompt, loaded.tokenizer.decode(trained)


def test_a_thinking_only_template_is_derived_and_trains_after_its_opener(tmp_path):
    folder = _folder(tmp_path, "qwen3-thinking-only", _template_of("Qwen--Qwen3-4B-Thinking-2507"))
    rules = _derived(str(folder)).family
    assert rules.on.opener == "<think>\n" and rules.on.think == "{reasoning}\n</think>\n\n"
    assert isinstance(rules.off, NotApplicable) and "no off switch" in rules.off.reason
    results = _whole_matrix(folder)
    assert sum(r.status is cellmodel.Status.PASS for r in results) == 13  # every fixture, think on
    prompt, trained = _trained("qwen3-thinking-only", Think.ON)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n")
    assert trained == f"{R}\n</think>\n\n{C}<|im_end|>"  # starts after the opener: never `<think>`


def test_a_template_that_writes_todays_date_is_derived_with_the_clock_frozen(tmp_path):
    folder = _folder(tmp_path, "chatml-dated", DATED)
    found = _derived(str(folder))
    assert any(f.rule == "date" for f in found.findings)
    rules = found.family
    assert isinstance(rules.on, NotApplicable) and rules.stop_tokens == ("<|im_end|>",) and rules.trailer == "\n"
    assert "tools" in rules.off.unsupported  # it drops tool calls: declared, not trained wrong
    results = _whole_matrix(folder)
    na = [r for r in results if r.status is cellmodel.Status.NA and r.cell.think is Think.OFF]
    assert [r.cell.fixture for r in na] == ["tool_call"] and na[0].reason.endswith(rules.off.unsupported["tools"])
    prompt, trained = _trained("chatml-dated", Think.OFF)
    assert "Today is 26 July 2024." in prompt and trained == f"{C}<|im_end|>"


def test_a_chatml_template_without_think_support_is_derived(tmp_path):
    folder = _folder(tmp_path, "qwen3-plain-chatml", _template_of("Qwen--Qwen2.5-7B-Instruct"))
    rules = _derived(str(folder)).family
    assert derive.differences(rules, builtin("qwen2.5")) == []
    _whole_matrix(folder)
    prompt, trained = _trained("qwen3-plain-chatml", Think.OFF)
    assert prompt.endswith("<|im_start|>assistant\n") and trained == f"{C}<|im_end|>"  # reasoning dropped


def _named(default: bool = True) -> list[dict[str, str]]:
    """Named templates as a model repository ships them: Qwen2.5's as `default`, and two that say when they run."""
    out = [
        {"name": "tool_use", "template": "{{ raise_exception('the tool_use template ran') }}"},
        {"name": "rag", "template": "{{ raise_exception('the rag template ran') }}"},
    ]
    return [{"name": "default", "template": _template_of("Qwen--Qwen2.5-7B-Instruct")}, *out] if default else out


def test_named_templates_are_read_as_transformers_applies_them(tmp_path, capsys):
    """Command R+'s tokenizer_config.json holds `default`, `tool_use` and `rag` (it was a traceback): a request
    without tools gets `default`, one with tools `tool_use`, and `rag` only by name."""
    folder = _folder(tmp_path, "named", _named())
    assert main(["derive", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "named template 'default': the one transformers applies to a request without tools" in out
    assert "named template 'tool_use': the one transformers applies to a request with tools" in out
    assert "named template 'rag': applied only where a caller asks for it by name (not read)" in out
    rules = _derived(str(folder)).family
    assert isinstance(rules.off, ThinkMode) and "the tool_use template ran" in rules.off.unsupported["tools"]
    differences = {d.rule for d in derive.differences(rules, builtin("qwen2.5"))}  # the rest is `default`'s, read
    assert "think.off.unsupported.tools" in differences and all("tool" in d for d in differences), differences
    _whole_matrix(folder)
    prompt, trained = _trained("named", Think.OFF)
    assert prompt.endswith("<|im_start|>assistant\n") and trained == f"{C}<|im_end|>"
    assert source.load(str(folder)).chat_template.startswith("{#- chat template default -#}\n")


def test_named_templates_without_a_default_are_one_clear_error(tmp_path, capsys):
    folder = _folder(tmp_path, "named-no-default", _named(default=False))
    assert main(["derive", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "has named chat templates (rag, tool_use) and none is `default`" in err and "fix: save the template" in err


# ChatML whose generation prompt ends with `gap` after the header, where a finished turn writes one newline (vLLM's
# DeepSeek-V3 tool template and Granite 20B FC's differ so in their own whitespace)
def _gap_in_prompt(gap: str) -> str:
    return (
        "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant" + gap + "{% endif %}"
    )


@pytest.mark.parametrize("gap", ["\n\n", "\n"])
def test_a_prompt_that_differs_from_the_finished_turn_in_whitespace_leaves_the_answer_start_undecided(tmp_path, gap):
    """The served prompt ends `assistant\n\n`, a finished turn writes `assistant\n` then the answer: no render shows
    what the model writes after the prompt, so `before_answer` is undecided and no span is trained (the harness
    trained the finished turn's own text after the prompt). The control: the prompt writes what the turn writes."""
    found = _derived(str(_folder(tmp_path, "gap", _gap_in_prompt(gap)))).family
    rules = [u.rule for u in found.undecided]
    if gap == "\n":
        assert rules == [] and _trained("gap", Think.OFF)[1] == f"{C}<|im_end|>"
        return
    assert rules == ["think.off.before_answer"], rules
    assert "the served prompt is not the start of the finished turn" in found.undecided[0].question


OFF = "enable_thinking is defined and not enable_thinking"


def _switch_in_prompt(final_too: bool) -> str:
    """ChatML whose think-off generation prompt ends with a switch token of its own (`<|nothought|>`); with
    `final_too`, a finished reply writes the switch before its answer as well."""
    writes = "{% if loop.last and m.role == 'assistant' and " + OFF + " %}<|nothought|>{% endif %}" if final_too else ""
    return (
        "{%- for m in messages %}<|im_start|>{{ m.role }}\n" + writes + "{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% if " + OFF + " %}<|nothought|>{% endif %}{% endif %}"
    )


@pytest.mark.parametrize("final_too", [False, True])
def test_a_switch_the_prompt_writes_and_the_finished_turn_drops_leaves_the_answer_start_undecided(tmp_path, final_too):
    """No real template of the corpus does it, but one may: the think-off prompt ends `assistant\n<|nothought|>` and a
    finished turn writes `assistant\n` then the answer. No render shows what the model writes after the switch, so
    `before_answer` is undecided (the answer was trained right after it, a guess). The control: a finished turn that
    writes the switch too shows the answer after it."""
    found = _derived(str(_folder(tmp_path, "switch", _switch_in_prompt(final_too)))).family
    rules = [u.rule for u in found.undecided]
    if final_too:
        assert "think.off.before_answer" not in rules and _trained("switch", Think.OFF)[1] == f"{C}<|im_end|>"
        return
    assert "think.off.before_answer" in rules, rules
    (question,) = [u.question for u in found.undecided if u.rule == "think.off.before_answer"]
    assert "ends with '<|nothought|>' after the turn header" in question


# --- the command line ----------------------------------------------------------------------------------------------


def test_cth_derive_on_a_builtin_says_the_rules_are_equal(capsys):
    assert main(["derive", "qwen3-8b"]) == 0
    out = capsys.readouterr().out
    assert "registered rules for qwen3-8b: equal to the derived ones" in out
    assert files.dumps(builtin("qwen3")) in out


def test_cth_derive_writes_rules_that_a_folder_then_uses(tmp_path, capsys):
    folder = tmp_path / "my-qwen"
    shutil.copytree(_pack() / "Qwen--Qwen3-8B", folder)
    assert main(["derive", str(folder), "--write", str(folder / source.RULES_FILE)]) == 0
    written = files.read(folder / source.RULES_FILE)
    assert derive.differences(written, builtin("qwen3")) == []
    capsys.readouterr()
    assert main(["matrix", "--model", str(folder), "--fixture", "single_turn"]) == 0
    captured = capsys.readouterr()
    assert "2 passed, 0 failed" in captured.out and "rules derived" not in captured.err  # the file was used


@pytest.mark.parametrize(
    ("think", "fixture"),
    [
        ("off", "single_turn"),
        # the turn's reasoning shown as the rules write it: the answer is read off that render (no render without
        # it), and the error still quotes the turn's end (it raised UnboundLocalError there)
        ("on", "reasoning_every_turn"),
    ],
)
def test_a_wrong_rules_file_fails_the_matrix(tmp_path, capsys, think, fixture):
    """Negative control: the rules beside a folder are really what the cells run with."""
    folder = tmp_path / "my-wrong-qwen"
    shutil.copytree(_pack() / "Qwen--Qwen3-8B", folder)
    wrong = files.to_mapping(builtin("qwen3"))
    wrong["trailer"] = ""  # forgets the newline Qwen writes after <|im_end|>
    (folder / source.RULES_FILE).write_text(files.tomli_w.dumps(wrong), "utf-8")
    assert main(["matrix", "--model", str(folder), "--think", think, "--fixture", fixture]) == 1
    out = capsys.readouterr().out
    assert "0 passed, 0 failed, 0 n/a, 1 error" in out
    assert (
        f"ERROR my-wrong-qwen/think-{think}/{fixture}: the template does not render this cell as the rules say: " in out
    )
    assert (
        "does not end with a stop token (<|im_end|>) and the trailer '': it ends '" in out
        and "<|im_end|>\\n'; fix" in out
        and "fix: update the family rule" in out
    )


# a ChatML template that refuses an empty reply: one fixture (and the tool call's empty content) cannot render
REFUSES_EMPTY = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and not message.content %}{{ raise_exception('no empty replies') }}{% endif %}"
    "<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_a_cell_that_cannot_render_is_an_error_cell_and_the_run_goes_on(tmp_path, capsys):
    """Every cell gets a verdict: the broken ones are named by model, think mode and fixture; the others still run."""
    folder = _folder(tmp_path, "refuses-empty", REFUSES_EMPTY)
    assert main(["matrix", "--model", str(folder), "--think", "off"]) == 1
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if line.lstrip().startswith("ERROR refuses-empty/")]
    assert [line.split()[1].rstrip(":") for line in errors] == ["refuses-empty/think-off/empty_assistant_content"], out
    assert all("no empty replies" in line and "fix: " in line for line in errors)
    assert "11 passed, 0 failed, 1 n/a, 1 error\n" in out  # derivation saw the refusal in its tool probe: N/A


# ChatML that writes tool calls, but (as Mistral's templates do) raises unless each call's id is 9 characters long
IDS_OF_NINE = (
    "{%- for message in messages %}"
    "{%- for call in message.tool_calls or [] %}"
    "{%- if call.id is not defined or call.id | length != 9 %}{{ raise_exception('ids must be 9 long') }}{% endif %}"
    "{%- endfor %}"
    "<|im_start|>{{ message.role }}\n{{ message.content }}"
    "{%- for call in message.tool_calls or [] %}{{ call.function.name }}{{ call.function.arguments | tojson }}{% endfor %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.parametrize("checks_ids", [True, False])
def test_a_template_that_wants_tool_call_ids_of_its_own_form_checks_data_that_has_them(tmp_path, checks_ids):
    """Mistral Nemo's own template raises on any tool call id but 9 alphanumeric characters: its tool rules are read
    off renders with such an id, and only conversations whose calls carry no ids (the fixtures') are N/A, with that
    reason. Data whose calls and results carry 9-character ids is rendered and checked (it was N/A whatever its
    ids). The control: a template that raises on every tool call keeps "cannot write a tool conversation"."""
    from chat_template_harness.contract.sample import CellNotApplicable

    template = IDS_OF_NINE if checks_ids else IDS_OF_NINE.replace("call.id | length != 9", "true")
    folder = str(_folder(tmp_path, "ids-of-nine", template))
    rules = _derived(folder).family
    assert isinstance(rules.off, ThinkMode)
    if not checks_ids:
        why = rules.off.unsupported["tools"]
        assert why.startswith("the template cannot write a tool conversation") and "ids must be 9 long" in why
        return
    assert "tools" not in rules.off.unsupported
    why = rules.off.unsupported["tools_without_ids"]
    assert why.startswith("the template writes a tool conversation only where each call has an id of its own")
    assert "ids must be 9 long" in why and "calls or results carry no ids (the fixtures') cannot be rendered" in why
    loaded = source.load(folder)
    data = fixture_json("tool_call")
    with pytest.raises(CellNotApplicable, match="tools_without_ids"):
        preprocess(loaded.tokenizer, conversation.parse(data, name="t", source="t"), rules, Think.OFF)
    data["messages"][1]["tool_calls"][0]["id"] = "a9B8c7D6e"
    data["messages"][2]["tool_call_id"] = "a9B8c7D6e"
    result = preprocess(loaded.tokenizer, conversation.parse(data, name="t", source="t"), rules, Think.OFF)
    served = loaded.tokenizer.apply_chat_template(data["messages"][:3], tokenize=False, add_generation_prompt=True)
    assert result.plans[-1].prompt == served and 'get_weather{"city": "Paris"}' in served


def test_cth_matrix_on_a_renamed_pack_folder_derives_its_rules(tmp_path, capsys):
    folder = tmp_path / "renamed-llama"
    shutil.copytree(_pack() / "meta-llama--Llama-3.1-8B-Instruct", folder)
    assert main(["matrix", "--model", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "note: no rules file for renamed-llama: rules derived from its chat template" in captured.err
    assert "13 passed, 0 failed, 13 n/a" in captured.out


def test_a_folder_without_a_tokenizer_is_one_clear_error(tmp_path, capsys):
    assert main(["derive", str(tmp_path)]) == 2
    assert "has no tokenizer_config.json; fix:" in capsys.readouterr().err


def test_a_tokenizer_that_is_custom_code_is_one_clear_error_and_never_runs(tmp_path, capsys):
    """ChatGLM3's repository names its own tokenizer class (`auto_map`): the harness never runs it (the control: the
    module would leave a file behind if it ran), and says how to give the folder a tokenizer it can load."""
    folder = _folder(tmp_path, "custom-code", _template_of("Qwen--Qwen2.5-7B-Instruct"))
    ran = tmp_path / "ran"
    (folder / "tokenization_mine.py").write_text(f"open({str(ran)!r}, 'w').close()\n", "utf-8")
    config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
    config.update(tokenizer_class="MyTokenizer", auto_map={"AutoTokenizer": ["tokenization_mine.MyTokenizer", None]})
    (folder / "tokenizer_config.json").write_text(json.dumps(config), "utf-8")
    (folder / "config.json").unlink()  # as in ChatGLM3's package: no model type that names a built-in class
    assert main(["derive", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "its tokenizer is custom code" in err and '"tokenizer_class": "PreTrainedTokenizerFast"' in err, err
    assert "Traceback" not in err and not ran.exists()


# --- a user's repo registers its own model -------------------------------------------------------------------------


def test_an_outside_repo_registers_its_model_in_pyproject_and_pytest_runs_its_cells(pytester: pytest.Pytester):
    shutil.copytree(_pack() / "Qwen--Qwen3-8B", pytester.path / "models" / "my-qwen")
    pytester.makepyprojecttoml(
        '[tool.cth.cells]\nmodels = ["my-qwen"]\n\n[tool.cth.models.my-qwen]\nfolder = "models/my-qwen"\n\n'
        '[tool.pytest.ini_options]\ncth_preprocessor = "chat_template_harness.examples.reference:preprocess"\n'
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "cth and (single_turn or tool_call)")
    result.assert_outcomes(passed=4)  # its own model only ([tool.cth.cells]): 2 fixtures x think on/off, rules derived
    result.stdout.fnmatch_lines(["collected 26 items / 22 deselected / 4 selected"])  # its 26 cells; none of ours
    naive = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-k",
        "cth and single_turn",
        "--cth-preprocessor",
        "chat_template_harness.examples.naive:preprocess",
    )
    naive.assert_outcomes(failed=2)  # negative control: the empty think block Qwen3 writes, in both modes


def test_a_users_goldens_are_written_then_compared(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    folder = tmp_path / "golden-qwen"
    shutil.copytree(_pack() / "Qwen--Qwen3-8B", folder)
    goldens = tmp_path / "goldens"
    args = ["matrix", "--model", str(folder), "--fixture", "single_turn", "--goldens", str(goldens)]
    assert main([*args, "--update-goldens"]) == 0
    written = goldens / "golden-qwen" / "think-off" / "single_turn.golden"
    assert "empty_think  turn 0  [15, 19)  not trained  '<think>↵↵</think>↵↵'" in written.read_text("utf-8")
    assert main(args) == 0
    # negative control: an edited golden body fails the comparison
    written.write_text(written.read_text("utf-8").replace("Paris", "Lyon"), "utf-8")
    capsys.readouterr()
    assert main(args) == 1
    assert "golden differs" in capsys.readouterr().out
    monkeypatch.setenv("CI", "true")
    assert main([*args, "--update-goldens"]) == 2


@pytest.mark.slow
def test_every_command_works_on_a_users_registered_model(tmp_path):
    """In a user's repo: matrix writes and compares their goldens, diff and gallery use them, check runs on them."""
    import subprocess
    import sys

    repo = tmp_path / "their-repo"
    shutil.copytree(_pack() / "Qwen--Qwen3-8B", repo / "models" / "my-qwen")
    (repo / "pyproject.toml").write_text(
        '[tool.cth]\ngoldens = "chat-goldens"\n\n[tool.cth.cells]\nmodels = ["my-qwen"]\n\n'
        '[tool.cth.models.my-qwen]\nfolder = "models/my-qwen"\n',
        "utf-8",
    )

    def cth(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in __import__("os").environ.items() if k != "CI"}
        return subprocess.run(
            [sys.executable, "-m", "chat_template_harness.cli", *args],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    assert "my-qwen" in cth("models").stdout
    assert cth("matrix", "--update-goldens").returncode == 0
    assert len(list((repo / "chat-goldens" / "my-qwen").rglob("*.golden"))) == 26  # theirs only, none of ours
    matrix = cth("matrix")
    assert matrix.returncode == 0 and "26 passed, 0 failed" in matrix.stdout
    assert "0 of 26 cells differ" in cth("diff").stdout
    gallery = cth("gallery", "--out", "site")
    assert gallery.returncode == 0 and (repo / "site" / "cells" / "my-qwen").is_dir()
    naive = cth("check", "chat_template_harness.examples.naive:preprocess", "--fixture", "single_turn")
    assert naive.returncode == 1 and "my-qwen" in naive.stdout


def test_what_cannot_be_read_off_a_template_is_said_with_the_fix(tmp_path, capsys):
    """Never a silent guess: a template that ends turns with no special token leaves the stop token undecided."""
    plain = (
        "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    folder = _folder(tmp_path, "no-stop-token", plain)
    found = _derived(str(folder))
    assert [f.rule for f in found.undecided] == ["stop_tokens"]
    assert [u.rule for u in found.family.undecided] == ["stop_tokens"]  # kept in the rules: its cells say UNDECIDED
    assert main(["derive", str(folder)]) == 1
    out = capsys.readouterr().out
    assert (
        "undecided: stop_tokens; fix: no special token ends an assistant turn, and no eos token opens the next one "
        "(eos and generation_config: <|im_end|>"
    ) in out and "; write `stop_tokens` (and `next_header`) by hand" in out
    assert 'fix: write `stop_tokens = ["<the token the model ends a turn with>"]` in the model\'s rules file' in out
    results = run_cells(cellmodel.cells([str(folder)], [Think.OFF], ["single_turn"]))
    assert [r.status for r in results] == [cellmodel.Status.UNDECIDED]


# --- templates of this year's families, by their behaviour (hand-written; the real ones are not copied) -----------

# A budget switch with its own markers (Seed-OSS's behaviour): thinking unless `thinking_budget` is 0, reasoning as
# `<seed:think>…</seed:think>`, read from `reasoning_content`.
BUDGET = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' and m.reasoning_content %}<seed:think>{{ m.reasoning_content }}</seed:think>{% endif %}"
    "{{ m.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if thinking_budget is defined and thinking_budget == 0 %}<seed:think></seed:think>{% endif %}{% endif %}"
)
# A template that prints content as it is and reads no reasoning field, under a generation prompt that opens
# `<think>\n` (the Nemotron-Nano-v2 failure: the probe's own inline block used to pass for the format).
ECHOES_CONTENT = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
)
# Reasoning shown only in a tool-call turn (Kimi-K2-Thinking's and DeepSeek-V3.2's behaviour), under a `<think>` opener.
TOOL_TURNS_SHOW = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' and m.tool_calls and m.reasoning_content %}<think>{{ m.reasoning_content }}</think>{% endif %}"
    "{{ m.content }}{% for c in m.tool_calls or [] %}<tool_call>{{ c.function.name }} {{ c.function.arguments | tojson }}</tool_call>{% endfor %}"
    "<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n<think>{% endif %}"
)


def test_a_budget_switch_of_any_name_and_its_own_markers_are_read_off_renders(tmp_path):
    folder = _folder(tmp_path, "budget-think", BUDGET)
    found = _derived(str(folder))
    rules = found.family
    assert not found.undecided
    assert dict(rules.on.kwargs) == {} and dict(rules.off.kwargs) == {"thinking_budget": 0}
    assert rules.on.think == "<seed:think>{reasoning}</seed:think>" and rules.reasoning_field == "reasoning_content"
    assert rules.off.opener == "<seed:think></seed:think>" and not rules.off.thinks
    _whole_matrix(folder)
    prompt, trained = _trained("budget-think", Think.ON)
    assert prompt.endswith("<|im_start|>assistant\n") and trained == f"<seed:think>{R}</seed:think>{C}<|im_end|>"
    prompt, trained = _trained("budget-think", Think.OFF)
    assert prompt.endswith("assistant\n<seed:think></seed:think>") and trained == f"{C}<|im_end|>"


def test_a_setting_whose_value_is_printed_is_not_a_switch(tmp_path):
    """`Reasoning: {{ effort }}` changes the prompt with its value: a setting, never mistaken for an on/off switch."""
    effort = BUDGET.replace(
        "<|im_start|>assistant\n{% if",
        "<|im_start|>system\nReasoning: {{ effort }}<|im_end|>\n<|im_start|>assistant\n{% if",
    )
    found = _derived(str(_folder(tmp_path, "effort", effort)))
    assert next(f.value for f in found.findings if f.rule == "think switch") == "kwarg thinking_budget"


def test_content_printed_as_it_is_proves_no_reasoning_format(tmp_path, capsys):
    folder = _folder(tmp_path, "echoes-content", ECHOES_CONTENT)
    found = _derived(str(folder))
    assert [f.rule for f in found.undecided] == ["reasoning_field"]  # never the probe's own inline block
    assert main(["derive", str(folder)]) == 1
    assert "undecided: reasoning_field; fix: no render shows reasoning in any field" in capsys.readouterr().out


def test_a_field_shown_only_in_tool_call_turns_is_read_there(tmp_path):
    found = _derived(str(_folder(tmp_path, "tool-turns-show", TOOL_TURNS_SHOW)))
    field_ = next(f for f in found.findings if f.rule == "reasoning_field")
    assert field_.value == "reasoning_content" and "a tool-call turn shows it" in field_.evidence
    assert found.family.on.think == "{reasoning}</think>" and "read off that turn" in next(
        f.note for f in found.findings if f.rule == "think"
    )


def _derived_with(tmp_path: Path, name: str, template: str, **settings: object) -> derive.Derivation:
    """A never-seen template with its own variables set at its top (`{% set shows = true %}`), derived."""
    head = "".join("{%- set " + k + " = " + json.dumps(v) + " %}" for k, v in settings.items())
    return _derived(str(_folder(tmp_path, name, head + template)))


# QwQ's shape: the prompt opens `<think>\n`, history is cut at `</think>`, no render writes reasoning; with
# `shows`, history turns write the reasoning field in a block of the template's own
OPENS_ONLY = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' and not loop.last and shows %}{% if m.reasoning_content %}"
    "<think>\n{{ m.reasoning_content }}\n</think>\n\n{% endif %}{{ m.content }}"
    "{% elif m.role == 'assistant' and not loop.last %}{{ m.content.split('</think>')[-1].lstrip('\\n') }}"
    "{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
)


@pytest.mark.parametrize("shows", [False, True])
def test_an_opener_alone_leaves_the_reasoning_format_undecided(tmp_path, shows):
    """`<think>\\n` shows nothing of what the model writes before `</think>` or after it: never the usual
    `\\n</think>\\n\\n` by default; a history turn that writes the block proves it (the control)."""
    found = _derived_with(tmp_path, "opens-only", OPENS_ONLY, shows=shows)
    undecided = {u.rule for u in found.family.undecided}
    if shows:
        assert found.family.on.think == "{reasoning}\n</think>\n\n" and "think.on.think" not in undecided
    else:
        assert found.family.on.think == "" and "think.on.think" in undecided


# LFM2.5's shape: no switch, nothing opened; only replies before the last one are cut at `</think>`
CUTS_EARLIER_REPLIES = (
    "{%- set ns = namespace(last=-1) %}{%- for m in messages %}{% if m.role == 'assistant' %}{% set ns.last = loop.index0 %}"
    "{% endif %}{% endfor %}{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' and loop.index0 != ns.last and cuts %}{{ m.content.split('</think>')[-1] | trim }}"
    "{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.parametrize("cuts", [True, False])
def test_a_cut_of_earlier_replies_only_says_the_model_reasons(tmp_path, cuts):
    found = _derived_with(tmp_path, "cuts-earlier", CUTS_EARLIER_REPLIES, cuts=cuts)
    if cuts:  # the model opens its block itself: its format is undecided, never "no thinking mode"
        assert isinstance(found.family.on, ThinkMode) and found.family.on.opener == ""
        assert "think.on.think" in {u.rule for u in found.family.undecided}
    else:
        assert isinstance(found.family.on, NotApplicable) and "no thinking mode" in found.family.on.reason


def test_the_derive_table_shows_brackets_and_lists_a_rule_once(tmp_path, capsys):
    bracketed = BUDGET.replace("<|im_start|>{{ m.role }}\n", "[gMASK]<|im_start|>{{ m.role }}\n", 1)
    main(["derive", str(_folder(tmp_path, "bracketed", bracketed))])
    out = capsys.readouterr().out
    assert "[gMASK]" in out
    rows = [line for line in out.splitlines() if line.startswith("│ stop_tokens")]
    assert len(rows) == len(set(rows))


# GLM-4.5/4.6's behaviour (hand-written): nothing ends an assistant turn; the model stops by generating the next
# header, `<|user|>` after a reply and `<|observation|>` after a tool call, both eos ids in generation_config.
# Think-off closes an empty block in the generation prompt; the model then writes `\n` and its answer.
NEXT_HEADER = (
    "[gMASK]<sop>{% for m in messages %}"
    "{% if m.role == 'user' %}<|user|>\n{{ m.content }}"
    "{% elif m.role == 'system' %}<|system|>\n{{ m.content }}"
    "{% elif m.role == 'tool' %}<|observation|>\n{{ m.content }}"
    "{% else %}<|assistant|>\n<think>{{ m.reasoning_content or '' }}</think>\n{{ m.content }}"
    "{% for c in m.tool_calls or [] %}<tool_call>{{ c.function.name }}{{ c.function.arguments | tojson }}</tool_call>{% endfor %}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% if enable_thinking is defined and not enable_thinking %}{{ '\\n<think></think>' }}{% endif %}{% endif %}"
)
HEADERS = ["<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"]


def _next_header_folder(tmp_path: Path) -> Path:
    """The Qwen3 pack tokenizer with GLM's role headers added as special tokens (the pack has no GLM tokenizer),
    and a generation_config whose eos ids are the headers the model stops on."""
    from transformers import AutoTokenizer

    folder = tmp_path / "next-header"
    tok = AutoTokenizer.from_pretrained(_pack() / "Qwen--Qwen3-8B")
    tok.add_special_tokens({"additional_special_tokens": HEADERS})
    tok.chat_template = NEXT_HEADER
    tok.save_pretrained(folder)
    ids = tok.convert_tokens_to_ids(["<|user|>", "<|observation|>"])
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": ids}), "utf-8")
    return folder


def test_a_turn_that_ends_with_the_next_header_is_derived_and_its_cells_pass(tmp_path):
    folder = _next_header_folder(tmp_path)
    found = _derived(str(folder))
    rules = found.family
    assert not found.undecided
    assert dict(rules.next_header) == {"reply": "<|user|>", "tool_call": "<|observation|>"}
    assert rules.stop_tokens == ("<|user|>", "<|observation|>") and rules.trailer == ""
    results = _whole_matrix(folder)
    assert {r.status for r in results} == {cellmodel.Status.PASS}, [(r.cell.id, r.reason) for r in results if r.reason]
    prompt, trained = _trained("next-header", Think.ON)
    assert prompt.endswith("<|assistant|>") and trained == f"\n<think>{R}</think>\n{C}<|user|>"
    prompt, trained = _trained("next-header", Think.OFF)
    assert prompt.endswith("<|assistant|>\n<think></think>") and trained == f"\n{C}<|user|>"
    loaded = source.load(str(folder))
    tool = preprocess(
        loaded.tokenizer, conversation.fixture("tool_call"), family_for(loaded.spec, loaded.tokenizer), Think.OFF
    )
    first = tool.plans[0]
    assert first.generated.endswith("</tool_call><|observation|>")


def test_next_header_rules_are_checked(tmp_path):
    bad = files.to_mapping(builtin("qwen3"))
    bad["next_header"] = {"reply": "<|user|>"}  # not one of stop_tokens
    path = tmp_path / "bad.toml"
    path.write_text(files.tomli_w.dumps(bad), "utf-8")
    with pytest.raises(files.RulesError, match="next_header needs `reply`"):
        files.read(path)


def test_a_head_rule_that_swallows_generated_text_fails_the_oracle(tmp_path):
    """Negative control: had derivation kept GLM think-off's finished-turn head `\\n<think></think>\\n` as the final
    marker, the `\\n` the model generates after the prompt's `<think></think>` would be in no sample; the template
    oracle must name it, not explain it away as an untrained head."""
    import dataclasses

    folder = _next_header_folder(tmp_path)
    loaded = source.load(str(folder))
    fam = family_for(loaded.spec, loaded.tokenizer)
    wrong = dataclasses.replace(fam, off=dataclasses.replace(fam.off, final_marker="\n<think></think>\n"))
    result = preprocess(loaded.tokenizer, conversation.fixture("single_turn"), wrong, Think.OFF)
    assert result.plans[0].disagrees and "the rules and the template disagree here" in result.plans[0].oracle.describe()
    assert not preprocess(loaded.tokenizer, conversation.fixture("single_turn"), fam, Think.OFF).plans[0].disagrees


# DeepSeek-V3.1's shape: every form starts `<think>`, history writes `<think></think>`, reasoning is inline
SHARED_OPENER = (
    "{% for m in messages %}{% if m.role == 'user' %}<|im_start|>user\n{{ m.content }}<|im_end|>\n"
    "{% else %}<|im_start|>assistant\n<think></think>{{ m.content.split('</think>')[-1] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{{ '<think>' if enable_thinking else '<think></think>' }}{% endif %}"
)
# Gemma 4's shape: reasoning never shown; think-off's prompt writes the empty block in the model's own markers
HIDDEN_CHANNEL = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<|channel>thought\n<channel|>{% endif %}{% endif %}"
)


def test_the_header_never_takes_the_opener_the_history_writes_as_an_empty_block(tmp_path):
    """Negative control for DeepSeek-V3.1: had `<think>` been read as header, think-on would train `<think>` again."""
    rules = _derived(str(_folder(tmp_path, "shared-opener", SHARED_OPENER))).family
    assert (
        rules.on.opener == "<think>"
        and rules.off.opener == "<think></think>"
        and rules.on.think == "{reasoning}</think>"
    )


def test_a_hidden_format_is_read_off_the_empty_block_think_off_writes(tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(_pack() / "Qwen--Qwen3-8B")
    tok.add_special_tokens({"additional_special_tokens": ["<|channel>", "<channel|>"]})
    tok.chat_template = HIDDEN_CHANNEL
    tok.save_pretrained(tmp_path / "hidden-channel")
    found = _derived(str(tmp_path / "hidden-channel"))
    assert found.family.on.think == "<|channel>thought\n{reasoning}<channel|>"
    assert "inferred from the think-off prompt's empty block" in next(
        f.note for f in found.findings if f.rule == "think"
    )


# EXAONE 4's shape: the final turn shows its reasoning only when a variable of the template's own is set
SHOWN_WHEN_SET = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' and loop.last and reveal and m.reasoning_content %}"
    "<think>\n{{ m.reasoning_content }}\n</think>\n\n{% endif %}{{ m.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
)


@pytest.mark.parametrize("settable", [True, False])
def test_a_final_turn_shown_once_a_setting_is_set_gives_the_format(tmp_path, settable):
    template = SHOWN_WHEN_SET if settable else SHOWN_WHEN_SET.replace("and reveal and", "and false and")
    found = _derived(str(_folder(tmp_path, f"shown-when-set-{settable}", template)))
    if settable:
        assert found.family.on.think == "{reasoning}\n</think>\n\n" and not found.family.undecided
        assert "reveal=True" in next(f.evidence for f in found.findings if f.rule == "think")
    else:  # the control: nothing shows it, so it stays undecided
        assert found.family.on.think == "" and "reasoning_field" in {u.rule for u in found.family.undecided}


# Apriel 1.5's shape: no switch, the prompt opens nothing, its default system turn asks for reasoning in words
ASKS_IN_WORDS = (
    "<|im_start|>system\n{{ ask }}<|im_end|>\n{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{{ m.content }}<|im_end|>\n{% endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.parametrize(
    "ask, reasons",
    [
        ("Before answering, analyze the problem and present your reasoning step by step.", True),
        ("- If a question requires reasoning, think through your answer step by step, then answer.", False),
        ("You are a helpful assistant.", False),
        ("* Document your reasoning process in the commit message.", False),  # Devstral: not what a reply starts with
    ],
)
def test_a_prompt_that_asks_for_reasoning_on_every_reply_is_never_no_thinking_mode(tmp_path, ask, reasons):
    found = _derived_with(tmp_path, "asks", ASKS_IN_WORDS, ask=ask)
    if reasons:  # the model reasons, nothing shows how: undecided; and no mode answers without it
        assert isinstance(found.family.on, ThinkMode) and "think.on.think" in {u.rule for u in found.family.undecided}
        assert isinstance(found.family.off, NotApplicable)
    else:
        assert isinstance(found.family.on, NotApplicable) and isinstance(found.family.off, ThinkMode)


# llama.cpp QwQ's think-off shape: the prompt closes an empty block (`off_block`), the finished turn drops it; with
# `shows`, history turns write reasoning in `<think>\n{r}\n</think>\n\n`, which proves the think-on format
CLOSES = OPENS_ONLY.replace(
    "<|im_start|>assistant\n<think>\n{% endif %}",
    "<|im_start|>assistant\n{% if enable_thinking is defined and not enable_thinking %}{{ off_block }}"
    "{% else %}<think>\n{% endif %}{% endif %}",
)


@pytest.mark.parametrize(
    ("off_block", "shows"),
    [("<think>\n</think>", False), ("<think>\n</think>", True), ("<think>\n\n</think>\n\n", True)],
)
def test_what_follows_a_closed_block_no_render_shows_is_undecided(tmp_path, off_block, shows):
    """QwQ's think-off prompt ends `<think>\\n</think>` and its finished turn drops the block: whether the model
    writes newlines before its answer is never "none" by default. The control: a block that is the think-on
    format's own empty block (proven by a history turn) is followed by the answer as reasoning is."""
    found = _derived_with(tmp_path, "closes", CLOSES, shows=shows, off_block=off_block)
    undecided = {u.rule: u for u in found.family.undecided}
    proven = shows and off_block == "<think>\n\n</think>\n\n"
    assert ("think.off.before_answer" not in undecided) is proven, undecided
    if proven:
        assert found.family.off.before_answer == "" and "think-on's empty block" in next(
            f.evidence for f in found.findings if f.rule == "think.off.before_answer"
        )
        return
    asked = undecided["think.off.before_answer"]
    assert asked.code == "answer-start" and '[think.off] before_answer = "\\n\\n"' in asked.line()
    results = _whole_matrix(tmp_path / "closes")
    off = {r.status for r in results if r.cell.think is Think.OFF} - {cellmodel.Status.NA}  # tools: never rendered
    assert off == {cellmodel.Status.UNDECIDED}, off  # no think-off sample is made from a guess


def test_a_before_answer_written_by_hand_is_trained_and_checked(tmp_path):
    """The fix the question names works: `before_answer` written in the rules file is trained after the prompt's
    closed block, and every think-off cell passes its oracle (the template shows the rest of the turn)."""
    import dataclasses

    _derived_with(tmp_path, "closes", CLOSES, shows=True, off_block="<think>\n</think>")
    folder = tmp_path / "closes"
    derived = _derived(str(folder)).family
    assert isinstance(derived.off, ThinkMode)
    rules = dataclasses.replace(
        derived,
        off=dataclasses.replace(derived.off, before_answer="\n\n"),
        undecided=tuple(u for u in derived.undecided if u.rule != "think.off.before_answer"),
    )
    files.write(rules, folder / source.RULES_FILE, header="closes, before_answer written by hand")
    assert files.read(folder / source.RULES_FILE).off.before_answer == "\n\n"  # the line round-trips
    prompt, trained = _trained(str(folder), Think.OFF)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n</think>") and trained == f"\n\n{C}<|im_end|>"
    off = {r.status for r in _whole_matrix(folder) if r.cell.think is Think.OFF} - {cellmodel.Status.NA}
    assert off == {cellmodel.Status.PASS}, off


# DeepSeek-V3.1's tight spelling: think-on opens `<think>`, think-off closes `<think></think>`, the finished turn drops
# the block; with `shows`, history turns write `<think>{r}</think>` before their answer
TIGHT = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' and not loop.last and shows and m.reasoning_content %}"
    "<think>{{ m.reasoning_content }}</think>{% endif %}"
    "{{ m.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think></think>{% else %}<think>{% endif %}{% endif %}"
)


@pytest.mark.parametrize("shows", [False, True])
def test_a_format_read_off_the_closed_block_itself_proves_nothing_after_it(tmp_path, shows):
    """Think-on's format inferred from think-off's own `<think></think>` says nothing of what follows that block:
    `before_answer` stays undecided. The control: the same format shown by a history turn that goes on to its answer
    proves it."""
    found = _derived_with(tmp_path, "tight", TIGHT, shows=shows)
    assert found.family.on.think == "{reasoning}</think>"
    think = next(f for f in found.findings if f.rule == "think")
    assert (derive.OFF_BLOCK_SOURCE in think.note) is not shows, think
    undecided = {u.rule for u in found.family.undecided}
    assert ("think.off.before_answer" in undecided) is not shows, undecided


# Gemma 4's shape, in a template of our own: the think-off prompt closes an empty thought channel `<|channel>thought\n
# <channel|>` (added tokens, no `think` in them), the finished turn drops it, no final turn shows reasoning; with
# `calls`, a tool-call turn writes its reasoning in that channel, `gap` before `<channel|>`, and goes straight on to
# the call (google/gemma-4-31B-it writes '\n' there, its interleaved template nothing)
CHANNEL = (
    "{%- for m in messages %}<|turn>{{ 'model' if m.role == 'assistant' else m.role }}\n"
    "{% if m.tool_calls %}{% if calls and m.reasoning_content %}<|channel>thought\n{{ m.reasoning_content }}{{ gap }}"
    "<channel|>{% endif %}{% for c in m.tool_calls %}<|tool_call>{{ c.function.name }}<tool_call|>{% endfor %}{% endif %}"
    "{{ m.content }}<turn|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|turn>model\n"
    "{% if not enable_thinking | default(false) %}<|channel>thought\n<channel|>{% endif %}{% endif %}"
)


@pytest.mark.parametrize(("calls", "gap"), [(False, ""), (True, ""), (True, "\n")])
def test_what_follows_an_empty_thought_channel_is_asked_as_after_an_empty_think_block(tmp_path, calls, gap):
    """A closed empty block in markers that are not `<think>` (Gemma 4's thought channel) asks the same question
    as QwQ's `<think>\\n</think>`: nothing shows what the model writes after it, so `before_answer` is undecided and
    no think-off sample is made. The controls: a tool-call turn that writes reasoning in that channel and goes straight
    on proves the format, with the whitespace that render writes (not the empty block's), and what follows its closer;
    the answer follows the prompt's block as it follows reasoning."""
    from transformers import AutoTokenizer

    folder = tmp_path / "channel"
    tok = AutoTokenizer.from_pretrained(_pack() / "Qwen--Qwen3-8B")
    tok.add_special_tokens(
        {
            "additional_special_tokens": [
                "<|turn>",
                "<turn|>",
                "<|channel>",
                "<channel|>",
                "<|tool_call>",
                "<tool_call|>",
            ]
        }
    )
    tok.chat_template = (
        "".join("{%- set " + k + " = " + json.dumps(v) + " %}" for k, v in {"calls": calls, "gap": gap}.items())
        + CHANNEL
    )
    tok.save_pretrained(folder)
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": tok.convert_tokens_to_ids(["<turn|>"])}))
    found = _derived(str(folder))
    assert found.family.off.opener == "<|channel>thought\n<channel|>"
    assert found.family.on.think == "<|channel>thought\n{reasoning}" + gap + "<channel|>"
    think = next(f for f in found.findings if f.rule == "think")
    assert (derive.OFF_BLOCK_SOURCE in think.note) is not calls, think  # inferred from the off block, or shown
    undecided = {u.rule: u for u in found.family.undecided}
    assert ("think.off.before_answer" in undecided) is not calls, undecided
    if calls:
        assert found.family.off.before_answer == ""
        return
    assert undecided["think.off.before_answer"].code == "answer-start"
    off = {r.status for r in _whole_matrix(folder) if r.cell.think is Think.OFF} - {cellmodel.Status.NA}
    assert off == {cellmodel.Status.UNDECIDED}, off
