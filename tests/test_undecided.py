"""Right, or it says it does not know (issue 31): a rule no render proves is UNDECIDED, in every command.

Each class of template the harness had guessed on is built here as a small Jinja template on a pack tokenizer
(with the template's own special tokens added): reasoning markers that are not `<think>` (the template's own
special tokens, a plain-text prefix/suffix pair, an answer wrapper after the reasoning, channel headers), the next
turn's header written after every message, a default system turn written only with a generation prompt, and a
model that opens its think block itself (DeepSeek-R1's template before `<think>\\n` was added to its generation
prompt). Each shows UNDECIDED (or the rule, where the template proves it) the same way in `cth derive`, `cth
render`, `cth matrix`, `cth check` and the pytest plugin; each has a negative control: the same template with the
evidence added decides the rule, and its cells pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.cli import main
from chat_template_harness.models import source
from chat_template_harness.models.rules import NotApplicable, Think, ThinkMode, derive, files
from chat_template_harness.models.rules.registry import builtin, generation_config
from tests.helpers import run_cells

REFERENCE = "chat_template_harness.examples.reference:preprocess"
PACK = source.tokenizers_dir_from_env


def _chatml(assistant: str, gen: str = "<|im_start|>assistant\n") -> str:
    """A ChatML template whose assistant turn body is `assistant` (Jinja), with this generation prompt."""
    if gen == SWITCHED:  # a finished reply writes the switch too: what follows it is shown, not guessed
        assistant = FINAL_SWITCH + assistant
    return (
        "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
        "{% if m.role == 'assistant' %}" + assistant + "{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}"
        "{%- if add_generation_prompt %}" + gen + "{% endif %}"
    )


# a think switch that changes the generation prompt (so the mode thinks), in the template's own token
SWITCHED = "<|im_start|>assistant\n{% if enable_thinking is defined and not enable_thinking %}<|nothought|>{% endif %}"
FINAL_SWITCH = "{% if loop.last and enable_thinking is defined and not enable_thinking %}<|nothought|>{% endif %}"
REASONING = "{% if m.reasoning_content and loop.last %}"


@dataclass(frozen=True)
class Case:
    """A template that leaves `rule` undecided, and `control`: the same with the evidence that decides it."""

    name: str
    template: str
    control: str
    rule: str  # the undecided rule
    decided: tuple[str, str]  # (Family attribute path, its value) in the control
    needs: str  # a fixture whose cell needs the rule (UNDECIDED); single_turn does not, unless `always`
    think: Think = Think.ON
    base: str = "Qwen--Qwen3-8B"
    added: tuple[str, ...] = ()
    eos: tuple[str, ...] = ()  # generation_config eos tokens ("" for none written); control_eos for the control
    control_eos: tuple[str, ...] = ()
    always: bool = False  # every cell of the mode needs the rule (a model that opens its block itself)


def _old_r1(pack: Path) -> tuple[str, str]:
    r1 = json.loads((pack / "deepseek-ai--DeepSeek-R1" / "tokenizer_config.json").read_text("utf-8"))["chat_template"]
    old = r1.replace("{{'<｜Assistant｜><think>\\n'}}{% endif %}", "{{'<｜Assistant｜>'}}{% endif %}")
    assert old != r1
    return old, r1


CASES = [
    Case(
        "own-tokens",
        _chatml("{{ m.content }}", SWITCHED),
        _chatml(REASONING + "<|thought|>{{ m.reasoning_content }}<|/thought|>{% endif %}{{ m.content }}", SWITCHED),
        "reasoning_field",
        ("on.think", "<|thought|>{reasoning}<|/thought|>"),
        "reasoning_last_turn",
        added=("<|thought|>", "<|/thought|>", "<|nothought|>"),
    ),
    Case(
        "text-pair",
        _chatml("{{ m.content }}", SWITCHED),
        _chatml(REASONING + "◁think▷{{ m.reasoning_content }}◁/think▷{% endif %}{{ m.content }}", SWITCHED),
        "reasoning_field",
        ("on.think", "◁think▷{reasoning}◁/think▷"),
        "reasoning_last_turn",
        added=("<|nothought|>",),
    ),
    Case(
        "answer-wrapper",
        _chatml("<answer>{{ m.content }}</answer>", SWITCHED),
        _chatml(
            REASONING + "<reasoning>{{ m.reasoning_content }}</reasoning>{% endif %}<answer>{{ m.content }}</answer>",
            SWITCHED,
        ),
        "reasoning_field",
        ("on.think", "<reasoning>{reasoning}</reasoning>"),
        "reasoning_last_turn",
        added=("<|nothought|>",),
    ),
    Case(
        "channels",
        _chatml("<|channel|>final<|message|>{{ m.content }}", SWITCHED),
        _chatml(
            REASONING + "<|channel|>analysis<|message|>{{ m.reasoning_content }}<|end|>{% endif %}"
            "<|channel|>final<|message|>{{ m.content }}",
            SWITCHED,
        ),
        "reasoning_field",
        ("on.think", "<|channel|>analysis<|message|>{reasoning}<|end|>"),
        "reasoning_last_turn",
        added=("<|channel|>", "<|message|>", "<|end|>", "<|nothought|>"),
    ),
    Case(
        "next-header",
        "{%- for m in messages %}{% if m.role == 'user' %}<|user|>\n{{ m.content }}"
        "{% else %}<|assistant|>\n{{ m.content }}<|user|>{% endif %}{% endfor %}"
        "{%- if add_generation_prompt %}<|assistant|>\n{% endif %}",
        "",  # the same template: the control is its generation_config listing the header as an eos id
        "stop_tokens",
        ("stop_tokens", ("<|user|>",)),
        "single_turn",
        think=Think.OFF,
        added=("<|user|>", "<|assistant|>"),
        eos=("<|endoftext|>",),
        control_eos=("<|endoftext|>", "<|user|>"),
    ),
]


def _folder(root: Path, name: str, template: str, case: Case, eos: tuple[str, ...]) -> Path:
    from transformers import AutoTokenizer

    folder = root / name
    if folder.is_dir():
        return folder
    tok = AutoTokenizer.from_pretrained(PACK() / case.base)
    if case.added:
        tok.add_special_tokens({"additional_special_tokens": list(case.added)})
    tok.chat_template = template
    tok.save_pretrained(folder)
    if eos:
        (folder / "generation_config.json").write_text(
            json.dumps({"eos_token_id": tok.convert_tokens_to_ids(list(eos))})
        )
    return folder


class _Folders(dict):
    """case name -> (the undecided folder, its control), each made the first time a test asks for it."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def __missing__(self, name: str) -> tuple[Path, Path]:
        case = next(c for c in CASES if c.name == name)
        self[name] = (
            _folder(self.root, case.name, case.template, case, case.eos),
            _folder(
                self.root, case.name + "-control", case.control or case.template, case, case.control_eos or case.eos
            ),
        )
        return self[name]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> _Folders:
    return _Folders(tmp_path_factory.mktemp("undecided"))


def _derived(folder: Path) -> derive.Derivation:
    loaded = source.load(str(folder))
    return derive.derive(
        loaded.tokenizer,
        folder.name,
        derive.eos_tokens(loaded.tokenizer, generation_config(loaded.spec, loaded.tokenizer)),
    )


def _value(family: Any, path: str) -> Any:
    head, _, rest = path.partition(".")
    value = getattr(family, head)
    return getattr(value, rest) if rest else value


# one class in the default suite (tests/test_derive.py has the stop); the others with the slow tests
FAST = ("own-tokens",)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=() if c.name in FAST else pytest.mark.slow) for c in CASES],
    ids=[c.name for c in CASES],
)
def test_derive_leaves_the_rule_undecided_and_the_control_decides_it(case, folders, capsys):
    folder, control = folders[case.name]
    found = _derived(folder)
    assert [u.rule for u in found.family.undecided] == [case.rule]
    assert main(["derive", str(folder)]) == 1
    out = capsys.readouterr().out
    assert f"undecided {case.rule}: " in out and "fix: write `" in out
    if case.rule == "stop_tokens":  # never the last special token: the next turn's header is named, not taken
        assert found.family.stop_tokens == () and "<|user|> follows the answer but is not one of them" in out
    shown = _derived(control)
    assert not shown.family.undecided and not shown.undecided
    assert _value(shown.family, case.decided[0]) == case.decided[1]
    assert main(["derive", str(control)]) == 0


def _errors(err: str) -> list[str]:
    """The error lines (a derived model's stderr also has its one `note:` line)."""
    assert "Traceback" not in err
    return [line for line in err.splitlines() if not line.startswith("note: ")]


@pytest.mark.slow  # five templates through six commands each: about a minute on two cores
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_command_says_undecided_and_the_control_passes(case, folders, capsys):
    folder, control = folders[case.name]
    think = ["--think", str(case.think)]
    # render and show: one line naming the question and the fix, exit 2, no sample made from a guess
    assert main(["render", str(folder), case.needs, *think]) == 2
    (err,) = _errors(capsys.readouterr().err)
    assert err.startswith(f"error: undecided {case.rule}: ") and "; fix: write `" in err
    assert main(["show", str(folder), case.needs, *think]) == 2
    assert _errors(capsys.readouterr().err) == [err]
    # matrix: the cell that needs the rule is UNDECIDED, counted, and fails the run; a cell that does not need it runs
    other = "multi_turn" if case.needs == "single_turn" else "single_turn"
    selection = ["--model", str(folder), *think, "--fixture", case.needs, "--fixture", other]
    assert main(["matrix", *selection]) == 1
    out = capsys.readouterr().out
    assert f"UNDECIDED {folder.name}/think-{case.think}/{case.needs}: undecided {case.rule}: " in out
    assert (
        "0 passed, 0 failed, 0 n/a, 2 undecided" if other == "multi_turn" else "1 passed, 0 failed, 0 n/a, 1 undecided"
    ) in out
    assert "fail the run" in out
    assert main(["matrix", *selection, "--allow", "undecided"]) == 0
    assert "allowed (--allow undecided)" in capsys.readouterr().out
    # check: the same verdict, the same line
    assert main(["check", REFERENCE, *selection]) == 1
    out = capsys.readouterr().out
    assert f"UNDECIDED {folder.name}/think-{case.think}/{case.needs}" in out and f"undecided {case.rule}: " in out
    assert main(["check", REFERENCE, *selection, "--allow", "undecided"]) == 0
    capsys.readouterr()
    # the control: decided, so every command makes samples and every cell passes
    assert main(["render", str(control), case.needs, *think, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)
    controls = ["--model", str(control), *think, "--fixture", case.needs, "--fixture", other]
    assert main(["matrix", *controls]) == 0
    assert "2 passed, 0 failed, 0 n/a\n" in capsys.readouterr().out
    assert main(["check", REFERENCE, *controls]) == 0


def test_a_model_that_opens_its_think_block_itself_is_said_so_never_dropped(tmp_path, pack_dir, capsys):
    """DeepSeek-R1 before `<think>\\n` was in its generation prompt: the prompt opens nothing, but the template cuts
    history at `</think>`. Derive says the model opens its block itself; its format shows nowhere, so every think-on
    cell is UNDECIDED (never "no thinking" with the data's reasoning dropped), and think-off is N/A for that reason.
    Today's template (the prompt opens `<think>\\n`) shows no more of the format: undecided as well. Control: the
    format written by hand, as the fix says, decides every cell."""
    old, current = _old_r1(pack_dir)
    case = Case(
        "old-r1",
        old,
        current,
        "think.on.think",
        ("on.think", "{reasoning}\n</think>\n\n"),
        "single_turn",
        base="deepseek-ai--DeepSeek-R1",
        always=True,
    )
    folder, control = (_folder(tmp_path, n, t, case, ()) for n, t in (("old-r1", old), ("r1-control", current)))
    found = _derived(folder).family
    assert [(u.rule, u.code) for u in found.undecided] == [("think.on.think", "self-opening")]
    assert found.on.thinks and found.on.opener == ""
    assert isinstance(found.off, NotApplicable)
    assert (
        found.off.reason
        == "no off switch: the model opens its think block itself (the template strips reasoning from history at `</think>`)"
    )
    assert main(["derive", str(folder)]) == 1
    assert "the model opens its think block itself" in capsys.readouterr().out
    # every think-on cell needs the format (every reply opens a block), with reasoning or without
    results = run_cells(cellmodel.cells([str(folder)], [Think.ON], ["single_turn", "reasoning_last_turn"]))
    assert [r.status for r in results] == [cellmodel.Status.UNDECIDED] * 2
    assert main(["render", str(folder), "reasoning_last_turn", "--think", "on"]) == 2
    assert "undecided think.on.think" in capsys.readouterr().err
    # today's template opens `<think>\n` but shows no more than the old one: undecided too, as a format to write
    current = _derived(control).family
    assert [(u.rule, u.code) for u in current.undecided] == [("think.on.think", "reasoning-format")]
    assert current.on.opener == "<think>\n" and current.on.think == ""
    # control: the line the fix names, written by hand (the built-in rules' reviewed format), decides every cell
    shipped = builtin("deepseek-r1").on
    assert isinstance(shipped, ThinkMode) and shipped.think == case.decided[1]
    on = replace(current.on, think=shipped.think, empty_think=shipped.empty_think)
    files.write(replace(current, on=on, undecided=()), control / source.RULES_FILE, header="the format by hand")
    results = run_cells(cellmodel.cells([str(control)], [Think.ON], ["single_turn", "reasoning_last_turn"]))
    assert [r.status for r in results] == [cellmodel.Status.PASS] * 2


SYSTEM_WITH_PROMPT = (
    "{%- if add_generation_prompt or tools %}<|im_start|>system\nDefault.<|im_end|>\n{% endif %}"
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.slow
def test_a_system_turn_written_only_with_a_generation_prompt_is_no_traceback(tmp_path, capsys):
    """Every cell gets a verdict or a one-line error; derivation reads the same rules as for the control, which writes
    its system turn always."""
    case = CASES[0]
    folder = _folder(tmp_path, "system-with-prompt", SYSTEM_WITH_PROMPT, case, ())
    always = SYSTEM_WITH_PROMPT.replace("{%- if add_generation_prompt or tools %}", "{%- if true %}")
    control = _folder(tmp_path, "system-always", always, case, ())
    odd, plain = _derived(folder), _derived(control)
    assert derive.differences(odd.family, plain.family) == []
    assert any(f.rule == "think.off.prompt" for f in odd.findings)  # said, with the render
    assert main(["derive", str(folder)]) == 0
    capsys.readouterr()
    assert main(["matrix", "--model", str(folder), "--fixture", "single_turn", "--fixture", "multi_turn"]) in (0, 1)
    out = capsys.readouterr().out
    assert "Traceback" not in out and ("passed" in out)
    rendered = main(["render", str(folder), "single_turn", "--think", "off"])
    assert rendered in (0, 2) and "Traceback" not in capsys.readouterr().err


def test_a_template_that_renders_no_exchange_is_one_error_line_and_error_cells(tmp_path, capsys):
    raising = "{{ raise_exception('this template renders nothing') }}"
    folder = _folder(tmp_path, "renders-nothing", raising, CASES[0], ())
    assert main(["derive", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the template renders no plain user/assistant exchange") and "; fix: " in err
    results = run_cells(cellmodel.cells([str(folder)], [Think.OFF], ["single_turn"]))
    assert [r.status for r in results] == [cellmodel.Status.ERROR] and "renders no plain" in results[0].reason


@pytest.mark.slow
def test_a_prompt_that_closes_an_empty_block_is_not_called_a_template_without_think_tokens(tmp_path):
    closed = _chatml("{{ m.content }}", "<|im_start|>assistant\n<think>\n\n</think>\n\n")
    plain = _chatml("{{ m.content }}")
    folder = _folder(tmp_path, "closed-block", closed, CASES[0], ())
    control = _folder(tmp_path, "no-think", plain, CASES[0], ())
    on = _derived(folder).family.on
    assert isinstance(on, NotApplicable) and "always closes an empty think block (<think>\n\n</think>)" in on.reason
    assert "no think tokens" not in on.reason
    assert _derived(control).family.on == NotApplicable(derive.NO_THINKING)


@pytest.mark.slow
def test_undecided_rules_round_trip_through_a_rules_file_and_written_rules_decide(folders, tmp_path, capsys):
    """`cth derive --write` keeps the [undecided] table; the cells stay UNDECIDED until the rule is written and its
    entry deleted, then they run (the fix the line names works)."""
    folder, _ = folders["own-tokens"]
    path = tmp_path / "rules.toml"
    assert main(["derive", str(folder), "--write", str(path)]) == 1
    rules = files.read(path)
    assert [u.rule for u in rules.undecided] == ["reasoning_field"]
    assert files.read(path) == rules
    raw = files.to_mapping(rules)
    raw.pop("undecided")
    raw["think"]["on"]["think"] = "<|thought|>{reasoning}<|/thought|>"
    fixed = folder.parent / "own-tokens-fixed"
    if not fixed.is_dir():
        import shutil

        shutil.copytree(folder, fixed)
    (fixed / source.RULES_FILE).write_text(files.tomli_w.dumps(raw), "utf-8")
    capsys.readouterr()
    results = run_cells(cellmodel.cells([str(fixed)], [Think.ON], ["reasoning_last_turn"]))
    assert results[0].status is not cellmodel.Status.UNDECIDED


@pytest.mark.slow  # two pytest subprocesses
def test_the_plugin_reports_undecided_cells_as_failures_unless_allowed(pytester: pytest.Pytester, folders):
    folder, control = folders["own-tokens"]
    pytester.makeini(f"[pytest]\ncth_preprocessor = {REFERENCE}\n")
    # `--cth-model=PATH` in one word: a separate path would be read as pytest's own path argument (its rootdir)
    args = [
        "-p",
        "no:cacheprovider",
        "-m",
        "cth",
        f"--cth-model={folder}",
        f"--cth-model={control}",
        "--cth-think",
        "on",
        "--cth-fixture",
        "reasoning_last_turn",
    ]
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*undecided reasoning_field: no render shows reasoning*", "*chat-template-harness: UNDECIDED cells*"]
    )
    allowed = pytester.runpytest_subprocess(*args, "--cth-allow", "undecided")
    allowed.assert_outcomes(passed=1, skipped=1)
    allowed.stdout.fnmatch_lines(["*chat-template-harness: UNDECIDED cells (allowed)*"])


@pytest.mark.slow  # an audit and an upgrade check on a derived model
def test_audit_and_diff_say_undecided_too(folders, tmp_path, capsys):
    folder, _ = folders["own-tokens"]
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "2+2?"},
                    {"role": "assistant", "content": "4", "reasoning_content": "Two plus two."},
                ]
            }
        )
        + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})
        + "\n",
        "utf-8",
    )
    audit = ["audit", str(rows), "--model", str(folder), "--think", "on", "--workers", "1"]
    assert main(audit) == 1  # the row with reasoning needs the undecided format; the other is trained
    out = capsys.readouterr().out
    assert "2 rows: 1 usable, 1 rejected." in out and "undecided reasoning_field: " in out and "the run fails" in out
    assert main([*audit, "--allow", "undecided"]) == 0
    assert "allowed (--allow undecided)" in capsys.readouterr().out
    goldens = tmp_path / "goldens"
    goldens.mkdir()
    assert (
        main(
            [
                "diff",
                "--model",
                str(folder),
                "--think",
                "on",
                "--fixture",
                "reasoning_last_turn",
                "--goldens",
                str(goldens),
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    assert (
        f"UNDECIDED {folder.name}/think-on/reasoning_last_turn" in out and "cause: undecided reasoning_field: " in out
    )
