"""Bring your own preprocessor: adapters, `cth check`, the pytest plugin, and TRL as code nobody here wrote."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from chat_template_harness import cli
from chat_template_harness.cells import model as cellmodel
from chat_template_harness.cells.model import Cell, Status
from chat_template_harness.contract.invariants import Invariant
from chat_template_harness.contract.sample import Policy
from chat_template_harness.external import ExternalSample, PreprocessorError, load_callable, to_samples
from chat_template_harness.external import Unsupported as ExternalUnsupported
from chat_template_harness.models.rules import Think
from tests.helpers import check_cell

REPO = Path(__file__).resolve().parents[1]
NAIVE = "chat_template_harness.examples.naive:preprocess"
REFERENCE = "chat_template_harness.examples.reference:preprocess"
TRL = "chat_template_harness.frameworks.trl_sft:preprocess"

# --- adapters -------------------------------------------------------------------------------------------------------

IDS, MASK = [5, 6, 7, 8], [0, 0, 1, 1]


@pytest.mark.parametrize(
    "raw",
    [
        {"input_ids": IDS, "loss_mask": MASK},
        {"input_ids": IDS, "labels": [-100, -100, 7, 8]},
        {
            "input_ids": [IDS + [0, 0]],
            "labels": [[-100, -100, 7, 8, -100, -100]],
            "attention_mask": [[1, 1, 1, 1, 0, 0]],
        },
        (IDS, MASK),
        [{"input_ids": IDS, "loss_mask": MASK}],
        SimpleNamespace(input_ids=IDS, loss_mask=MASK),
    ],
    ids=["lists", "labels", "padded-batch", "pair", "list-of-dicts", "object"],
)
def test_adapters_read_the_common_output_shapes(raw):
    (sample,) = to_samples(raw)
    assert (sample.input_ids, sample.loss_mask) == (tuple(IDS), tuple(MASK))
    # labels are kept (padding dropped) where they say what is trained: the label ids are checked too
    assert sample.labels == ((-100, -100, 7, 8) if "labels" in str(raw) else None)


@pytest.mark.torch
def test_adapters_read_tensors_batched_or_not():
    import torch

    expected = [ExternalSample(tuple(IDS), tuple(MASK))]
    assert to_samples({"input_ids": torch.tensor(IDS), "loss_mask": torch.tensor(MASK)}) == expected
    assert to_samples({"input_ids": torch.tensor([IDS]), "assistant_masks": torch.tensor([MASK])}) == expected


def test_a_batch_gives_one_sample_per_row():
    raw = {"input_ids": [[1, 2], [3, 4]], "loss_mask": [[0, 1], [1, 1]]}
    assert to_samples(raw) == [ExternalSample((1, 2), (0, 1)), ExternalSample((3, 4), (1, 1))]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"input_ids": IDS}, "no loss_mask"),
        (42, "cannot read a sample from int"),
        ({"input_ids": [IDS, IDS], "loss_mask": [MASK]}, "2 rows"),
    ],
)
def test_unreadable_output_is_one_clear_error(raw, message):
    with pytest.raises(PreprocessorError, match=message):
        to_samples(raw)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "is not of the form"),
        ("no_such_pkg.mod:fn", "cannot import"),
        ("chat_template_harness.examples.naive:nope", "has no attribute"),
    ],
)
def test_load_callable_errors_name_the_fix(spec: str, message: str):
    with pytest.raises(PreprocessorError, match=message):
        load_callable(spec)


# --- cth check ------------------------------------------------------------------------------------------------------


@pytest.mark.slow  # every cell of the pack through the plug-in path (~30 s); the goldens cover the reference's samples
def test_check_on_the_reference_passes_every_cell(capsys):
    assert cli.main(["check", REFERENCE, "--policy", "all"]) == 0
    out = capsys.readouterr().out
    every = cellmodel.cells()
    na = sum(cellmodel.na_reason(c) is not None for c in every)
    assert f"{len(every) - na} passed, 0 failed, {na} n/a" in out


def test_check_on_the_naive_example_fails_with_the_empty_think_positions_named(capsys, tmp_path: Path):
    report = tmp_path / "naive.md"
    code = cli.main(
        ["check", NAIVE, "--model", "qwen3-8b", "--think", "off", "--fixture", "single_turn", "--markdown", str(report)]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL qwen3-8b/think-off/single_turn" in out
    assert "4 trained token(s) are an empty think block" in out
    assert "tokens 15:'<think>', 16:'\\n\\n', 17:'</think>', 18:'\\n\\n'" in out
    assert "#### `qwen3-8b/think-off/single_turn`" in report.read_text()


def test_a_preprocessor_that_raises_fails_its_cell_with_one_line():
    def broken(request):
        raise KeyError("messages")

    result = check_cell(broken, Cell("qwen3-8b", Think.OFF, "single_turn"))
    # one line, and where in the user's code it was raised
    line = broken.__code__.co_firstlineno + 1  # the raise
    assert (
        result.status is Status.FAIL
        and result.reason == f"the preprocessor raised KeyError: 'messages' (at {__file__}:{line})"
    )


def test_policy_all_requires_every_turn_and_last_only_the_final_one():
    def last_only(request):
        from chat_template_harness.examples.reference import preprocess

        return preprocess(request)[-1:]

    cell = Cell("qwen3-8b", Think.OFF, "multi_turn")  # three samples: the history is rewritten
    assert check_cell(last_only, cell, policy=Policy.LAST).status is Status.PASS
    strict = check_cell(last_only, cell, policy=Policy.ALL)
    assert strict.status is Status.FAIL and {v.invariant for v in strict.violations} == {Invariant.COMPLETE}


# --- the pytest plugin ----------------------------------------------------------------------------------------------


def _plugin_run(pytester: pytest.Pytester, spec: str, *args: str):
    pytester.makeini(f"[pytest]\ncth_preprocessor = {spec}\n")  # the one line of configuration
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-m", "cth", "--cth-model", "qwen3-8b", "--cth-model", "qwen2.5-7b", *args
    )


def test_plugin_passes_every_cell_for_the_reference(pytester: pytest.Pytester):
    result = _plugin_run(pytester, REFERENCE)
    every = cellmodel.cells(["qwen3-8b", "qwen2.5-7b"])
    applicable = [c for c in every if cellmodel.na_reason(c) is None]
    # N/A cells are items too, skipped with their reason (visible in JUnit), never dropped
    result.assert_outcomes(passed=len(applicable), skipped=len(every) - len(applicable))
    result.stdout.fnmatch_lines(
        ["*chat-template-harness: N/A cells*", "13 cell(s): Qwen2.5 think-on: no thinking mode*"]
    )


def test_plugin_fails_the_naive_example_with_readable_cell_ids(pytester: pytest.Pytester):
    result = _plugin_run(pytester, NAIVE, "-k", "single_turn")
    # Qwen2.5 renders its last turn as generated; Qwen3 does not; Qwen2.5 think-on is N/A
    result.assert_outcomes(passed=1, failed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*cth[[]qwen3-8b/think-off/single_turn[]]*",
            "*4 trained token(s) are an empty think block*",
            "*tokens 15:'<think>', 16:'\\n\\n', 17:'</think>', 18:'\\n\\n'*",
            "reproduce: cth check chat_template_harness.examples.naive:preprocess --model qwen3-8b --think off --fixture single_turn",
        ]
    )


def test_plugin_rejects_a_bad_preprocessor_spec(pytester: pytest.Pytester):
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("--cth-preprocessor=nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--cth-preprocessor: preprocessor 'nope' is not of the form package.module:callable*"]
    )


def test_plugin_needs_neither_syrupy_nor_torch(pytester: pytest.Pytester):
    """A training repo installs the harness alone: the plugin must not import the golden machinery or torch."""
    pytester.makeconftest("import sys\nsys.modules['syrupy'] = None\nsys.modules['torch'] = None\n")
    result = _plugin_run(pytester, REFERENCE, "-p", "no:syrupy", "-k", "qwen3-8b and think-off and single_turn")
    result.assert_outcomes(passed=1)


def test_plugin_adds_no_cells_to_an_unrelated_run(pytester: pytest.Pytester):
    """With the preprocessor configured, `pytest test_x.py` runs test_x only, and says how to select the cells."""
    pytester.makeini(f"[pytest]\ncth_preprocessor = {REFERENCE}\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_x.py")
    result.assert_outcomes(passed=1)
    assert "cth[" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*matrix cells not collected; select them with -m cth*"])


def test_plugin_stops_once_with_one_line_when_the_tokenizers_are_missing(pytester: pytest.Pytester, tmp_path):
    pytester.makeini(f"[pytest]\ncth_preprocessor = {REFERENCE}\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-m", "cth", "--cth-tokenizers-dir", str(tmp_path / "nowhere")
    )
    assert result.ret == 2
    out = result.stdout.str() + result.stderr.str()
    assert out.count("error: tokenizer directory") == 1 and "--cth-tokenizers-dir" in out and "Traceback" not in out


def test_plugin_works_in_a_repo_with_its_own_harness_package(pytester: pytest.Pytester, tmp_path):
    """A training repo's own `harness/` (a common name) neither shadows us nor breaks the entry point."""
    own = pytester.mkpydir("harness")
    (own / "adapter.py").write_text("from chat_template_harness.examples.reference import preprocess\nOWN = True\n")
    pytester.makepyfile(test_own="from harness.adapter import OWN\n\ndef test_own():\n    assert OWN\n")
    pytester.makeini("[pytest]\ncth_preprocessor = harness.adapter:preprocess\n")
    mine = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_own.py")
    mine.assert_outcomes(passed=1)
    # the plugin enabled, no tokenizer pack: one error line naming the fix, exit 2
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-m", "cth", "--cth-tokenizers-dir", str(tmp_path / "nowhere")
    )
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 2 and "Traceback" not in out and "INTERNALERROR" not in out
    assert out.count("error: ") == 1 and "error: tokenizer directory" in out and "--cth-tokenizers-dir" in out


@pytest.mark.slow
def test_plugin_cells_are_counted_rerun_by_node_id_and_by_last_failed(pytester: pytest.Pytester):
    pytester.makeini(f"[pytest]\ncth_preprocessor = {NAIVE}\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    first = pytester.runpytest_subprocess(
        "-ra", "-m", "cth", "--cth-model", "qwen3-8b", "-k", "single_turn or multi_turn"
    )
    first.stdout.fnmatch_lines(["collected 27 items / 23 deselected / 4 selected"])  # the cells are counted
    first.assert_outcomes(failed=4)
    # a failed cell's node id, as the report prints it, runs that cell alone
    node = "chat-template-harness::cth[qwen3-8b/think-off/single_turn]"
    assert f"FAILED {node} - " in first.stdout.str()
    again = pytester.runpytest_subprocess(node)
    again.stdout.fnmatch_lines(["collected 1 item"])
    again.assert_outcomes(failed=1)
    # --lf reruns the failures only
    last = pytester.runpytest_subprocess("-m", "cth", "--cth-model", "qwen3-8b", "--lf")
    last.stdout.fnmatch_lines(["run-last-failure: rerun previous 4 failures"])
    last.assert_outcomes(failed=4)  # of the 26 cells selected by -m cth
    unknown = pytester.runpytest_subprocess("chat-template-harness::cth[qwen9/think-off/single_turn]")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR and "no such cell" in unknown.stderr.str()


def test_plugin_rejects_an_unknown_model_as_a_usage_error(pytester: pytest.Pytester):
    pytester.makeini(f"[pytest]\ncth_preprocessor = {REFERENCE}\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-m", "cth", "--cth-model", "qwen9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*chat-template-harness: unknown model 'qwen9'*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_plugin_reproduce_line_keeps_the_policy(pytester: pytest.Pytester):
    result = _plugin_run(pytester, NAIVE, "-k", "qwen3-8b and think-off and multi_turn", "--cth-policy", "last")
    result.stdout.fnmatch_lines(["reproduce: cth check * --fixture multi_turn --policy last"])


def test_plugin_checks_a_users_own_conversation_file(pytester: pytest.Pytester):
    import json as _json

    conv = pytester.path / "mine.json"
    conv.write_text(
        _json.dumps({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]})
    )
    result = _plugin_run(pytester, REFERENCE, "--cth-fixture", str(conv), "--cth-think", "off")
    result.assert_outcomes(passed=2)


def test_plugin_is_inert_without_its_options(pytester: pytest.Pytester):
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "cth[" not in result.stdout.str() and "N/A cells" not in result.stdout.str()


# --- TRL, code nobody here wrote ---------------------------------------------------------------------------------------


@pytest.mark.trl
def test_trl_trains_qwen3s_empty_think_block_in_think_off():
    from trl import __version__

    assert __version__ == "1.16.0"  # the version the committed report was made with
    result = check_cell(load_callable(TRL), Cell("qwen3-8b", Think.OFF, "single_turn"))
    hits = [v for v in result.violations if v.invariant is Invariant.NO_INJECTED_LOSS]
    assert [v.tokens for v in hits if "empty think" in v.detail] == [("<think>", "\n\n", "</think>", "\n\n")]


@pytest.mark.trl
def test_trl_trains_the_header_newline_and_the_newline_after_the_stop_token_for_qwen25():
    result = check_cell(load_callable(TRL), Cell("qwen2.5-7b", Think.OFF, "single_turn"))
    details = {v.detail.split(",")[0]: v.tokens for v in result.violations}
    assert details == {
        "1 trained token(s) are the generation prompt's role header": ("\n",),
        "1 trained token(s) are the template's text after the stop token": ("\n",),
    }


@pytest.mark.trl
@pytest.mark.parametrize("model", ["llama-3.1-8b", "llama-4-scout", "deepseek-v3", "deepseek-v3.1", "qwq-32b"])
def test_families_without_a_trl_training_template_are_na(model: str):
    cell = next(c for c in cellmodel.cells([model]) if cellmodel.na_reason(c) is None)
    result = check_cell(load_callable(TRL), cell)
    assert result.status is Status.NA and "TRL has no training template" in result.reason


@pytest.mark.trl
def test_the_committed_trl_report_is_current():
    from chat_template_harness.outputs import reportfile
    from chat_template_harness.outputs.report import check_markdown

    results = [check_cell(load_callable(TRL), c) for c in cellmodel.cells()]
    fresh = check_markdown(TRL, results, Policy.ALL)
    committed = (REPO / "reports" / "trl-assistant-only-loss.md").read_text("utf-8")
    # only the body is compared: a new transformers release changes the header, never the verdict
    assert reportfile.body(committed) == reportfile.body(fresh), (
        f"header changes: {reportfile.header_changes(committed, fresh)}; "
        "regenerate: cth check chat_template_harness.frameworks.trl_sft:preprocess --markdown reports/trl-assistant-only-loss.md"
    )


def test_the_worked_examples_are_documented_modules():
    for spec in (NAIVE, REFERENCE):
        module = load_callable(spec).__module__
        assert textwrap.dedent(__import__(module, fromlist=["_"]).__doc__ or "").strip()


def test_gpt_oss_determinism_failure_names_the_clock_fix():
    """The template writes today's date with no variable to pin it: the failure says how to pin it anyway."""

    def unpinned(request):
        text = request.tokenizer.apply_chat_template(request.messages, tokenize=False, **request.chat_template_kwargs)
        ids = request.tokenizer(text, add_special_tokens=False)["input_ids"]
        return {"input_ids": ids, "loss_mask": [0] * len(ids)}

    result = check_cell(unpinned, Cell("gpt-oss-20b", Think.ON, "single_turn"))
    found = [v for v in result.violations if v.invariant is Invariant.DETERMINISM]
    assert found and found[0].code == "clock.unpinnable"
    assert "freeze the clock around your apply_chat_template call" in found[0].format()


def test_a_date_from_the_preprocessors_own_clock_is_named_as_such():
    """Qwen3's template reads no clock: a determinism failure there comes from the plug-in's own datetime.now()."""
    import datetime

    def dated(request):
        from chat_template_harness.examples.reference import preprocess

        out = preprocess(request)
        stamp = request.tokenizer(datetime.datetime.now().strftime("%Y-%m-%d"), add_special_tokens=False)["input_ids"]
        return [
            {"input_ids": stamp + list(s["input_ids"]), "loss_mask": [0] * len(stamp) + list(s["loss_mask"])}
            for s in out
        ]

    result = check_cell(dated, Cell("qwen3-8b", Think.OFF, "single_turn"))
    found = [v for v in result.violations if v.invariant is Invariant.DETERMINISM]
    assert found and found[0].code == "clock.own-code"
    assert "your preprocessor writes the date itself" in found[0].format()


def test_a_template_the_preprocessor_swaps_onto_the_tokenizer_does_not_become_the_reference(load):
    """A preprocessor that sets a training template on the tokenizer it is given (in place, as
    `SFTConfig(chat_template_path=...)` does) built its samples with it, and the reference, rendered after it on the
    same tokenizer, then served that template's history too: Qwen3's past reasoning, which the server drops, passed.
    The guard gives the tokenizer its template back after each call, so the reference is the server's again."""
    from chat_template_harness.contract.kinds import kind_of
    from chat_template_harness.examples.reference import preprocess as reference

    tokenizer = load("qwen3-8b").tokenizer
    real = tokenizer.chat_template
    assert real.count("loop.index0 > ns.last_query_index") == 1
    keeps = real.replace("loop.index0 > ns.last_query_index", "true")  # every past turn keeps its reasoning

    def swapping(request):
        request.tokenizer.chat_template = keeps
        return reference(request)

    cell = Cell("qwen3-8b", Think.ON, "reasoning_every_turn")
    try:
        result = check_cell(swapping, cell)
        after = tokenizer.chat_template
    finally:
        tokenizer.chat_template = real  # the tokenizer is shared with the worker's other tests, whatever happened
    assert result.status is Status.FAIL and "P" in {kind_of(v) for v in result.violations}
    assert after == real
    assert check_cell(reference, cell).status is Status.PASS  # the control: the real template's samples pass


def test_the_special_tokens_a_preprocessor_sets_on_the_tokenizer_are_given_back(load):
    """A training script's habits (`tokenizer.pad_token = tokenizer.eos_token`, a new `eos_token`) on the shared
    tokenizer would change what its template writes for `{{ eos_token }}` and the stop a derivation reads, for the
    reference and every later cell. The guard gives them back. The control: the preprocessor did set them."""
    from chat_template_harness.cells import guard
    from chat_template_harness.contract import conversation
    from chat_template_harness.examples.reference import preprocess as reference
    from chat_template_harness.external import request_for
    from chat_template_harness.models.rules.registry import family

    loaded = load("llama-3.1-8b")
    tokenizer = loaded.tokenizer
    before = dict(tokenizer.special_tokens_map)
    seen = {}

    def habits(request):
        request.tokenizer.pad_token = request.tokenizer.eos_token
        request.tokenizer.eos_token = "<|eom_id|>"
        seen.update(request.tokenizer.special_tokens_map)
        return reference(request)

    fam = family(loaded.spec.family)
    request = request_for("llama-3.1-8b", conversation.fixture("single_turn"), tokenizer, fam, Think.OFF, fam.off)
    try:
        guard.call(habits, request, vocab=len(tokenizer), timeout=None, determinism=False)
        after = dict(tokenizer.special_tokens_map)
    finally:
        for name in before.keys() | tokenizer.special_tokens_map.keys():  # shared with the worker's other tests
            setattr(tokenizer, name, before.get(name))
    assert seen["eos_token"] == "<|eom_id|>" and seen["pad_token"] == before["eos_token"]
    assert after == before


def test_what_the_preprocessor_changes_in_its_request_does_not_reach_the_reference():
    """The request's messages and tools come from the conversation the reference renders after the preprocessor (a
    fixture, cached for every cell): one that normalises a tool schema or a call's arguments in place changed what
    the reference rendered, for this cell and the next. The preprocessor here gives the reference's own samples,
    then edits its request in place; the cell must still pass, and the fixture stay as it was."""
    from chat_template_harness.contract import conversation
    from chat_template_harness.examples.reference import preprocess as reference

    before = repr(conversation.fixture("tool_call"))

    def editing(request):
        samples = reference(request)
        for tool in request.tools:
            tool["function"]["parameters"]["properties"].clear()
            tool["function"]["description"] = "edited"
        for message in request.messages:
            for call in message.get("tool_calls") or []:
                call["function"]["arguments"].clear()
        return samples

    result = check_cell(editing, Cell("qwen3-8b", Think.OFF, "tool_call"))
    assert repr(conversation.fixture("tool_call")) == before
    assert result.status is Status.PASS, result.reason


def test_a_missing_dependency_of_the_users_module_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "needs_dep.py").write_text(
        "import not_installed_dependency_xyz\n\ndef build(request):\n    return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        PreprocessorError, match=r"'needs_dep' imports 'not_installed_dependency_xyz', which is not installed"
    ):
        load_callable("needs_dep:build")


def test_inline_reasoning_reaches_the_plugin_as_inline_text():
    """A plug-in gets the data as a user has it: `<think>…</think>` stays in the content (its own parsing is checked)."""
    seen = []

    def spy(request):
        seen.append(request.messages)
        raise ExternalUnsupported("spy")

    check_cell(spy, Cell("qwen3-8b", Think.ON, "inline_think"))
    reply = seen[0][-1]
    assert (
        reply["content"].startswith("<think>") and "</think>" in reply["content"] and "reasoning_content" not in reply
    )
