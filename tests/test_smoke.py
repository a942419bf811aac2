"""Smoke training step on tiny models of each family: no loss, no gradient through untrained tokens."""

from __future__ import annotations

import pytest

from chat_template_harness import cli
from chat_template_harness.contract.turns import Kind
from chat_template_harness.models import source
from chat_template_harness.models.rules import NotApplicable, Think
from chat_template_harness.models.rules.registry import family

pytestmark = pytest.mark.smoke

MODES = [
    # Mistral trains the same plain Llama as any family: its step runs with -m slow (a 131k-token vocabulary); so do
    # DeepSeek V4 and Qwen3.5 (129k and 248k tokens; Qwen3.5's linear attention runs its reference kernel on CPU)
    pytest.param(m, t, marks=pytest.mark.slow) if spec.source != "folder" else (m, t)
    for m, spec in source.registry().items()
    for t in Think
    if not isinstance(family(spec.family).mode(t), NotApplicable)
]
IDS = [f"{m}/think-{t}" for m, t in (p.values if hasattr(p, "values") else p for p in MODES)]


@pytest.fixture(scope="module")
def smoke():
    from chat_template_harness.smoke import run_smoke

    cache = {}

    def run(model: str, think: Think, preprocessor: str = "reference"):
        key = (model, think, preprocessor)
        if key not in cache:
            cache[key] = run_smoke(model, think, device="cpu", preprocessor=preprocessor)
        return cache[key]

    return run


@pytest.mark.parametrize(("model", "think"), MODES, ids=IDS)
def test_reference_step_trains_only_generated_tokens(smoke, model: str, think: Think):
    result = smoke(model, think)
    assert result.leaks == () and result.errors == ()
    assert result.zero_gradient_ok and result.dead_trained == 0
    assert result.losses[-1] < result.losses[0]
    assert result.ok
    for block in result.empty_think:
        assert block.gradient == 0.0


@pytest.mark.parametrize(("model", "think"), MODES, ids=IDS)
def test_naive_control_fails_wherever_the_template_injects_or_rewrites(smoke, model: str, think: Think):
    reference, naive = smoke(model, think), smoke(model, think, "naive")
    fam = family(source.get_model(model).family)
    # Qwen3 2507 Instruct writes an empty think block into the last turn; Nemotron drops every turn's reasoning
    if reference.empty_think or fam.name in (
        "qwen3",
        "deepseek-v3.1",
        "gpt-oss",
        "qwen3-instruct-2507",
        "nemotron-v1.5",
    ):
        assert not naive.ok and naive.leaks
        assert all(leak.token for leak in naive.leaks)
    elif fam.renderer == "mistral-common":  # the naive example's header patterns know no `[/INST]`: nothing trained
        assert not naive.ok and not naive.leaks and set(naive.losses) == {0.0}
    else:  # Qwen2.5, Llama, DeepSeek-V3, Gemma 3: the template renders the last turn as generated
        assert naive.ok, [str(leak) for leak in naive.leaks]


@pytest.mark.parametrize(
    ("model", "think", "tokens"),
    [
        ("qwen3-8b", "off", ["<think>", "\n\n", "</think>", "\n\n"]),
        ("qwen3-8b", "on", ["<think>", "\n\n", "</think>", "\n\n"]),
        ("deepseek-v3.1", "off", ["</think>"]),
        ("deepseek-v3.1", "on", ["</think>"]),
    ],
)
def test_naive_control_names_the_empty_think_tokens(smoke, model: str, think: str, tokens: list[str]):
    naive = smoke(model, Think(think), "naive")
    single = [leak for leak in naive.leaks if leak.fixture == "single_turn" and leak.kind is Kind.EMPTY_THINK]
    assert [leak.token for leak in single] == tokens


def test_cli_smoke_exits_non_zero_and_names_positions_for_the_naive_control(capsys):
    code = cli.main(["smoke", "qwen3-8b", "--think", "off", "--device", "cpu", "--preprocessor", "naive"])
    out = capsys.readouterr().out
    assert code == 1 and "result: FAIL" in out
    assert "single_turn sample 0 position 15 '<think>' (empty_think, turn 0)" in out


def test_cli_smoke_passes_for_the_reference(capsys):
    code = cli.main(["smoke", "qwen3-8b", "--think", "off", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0 and "result: PASS" in out
    assert "exactly 0 wherever the next token is untrained" in out
    assert "empty think blocks (template-injected):" in out and "max |∂loss/∂logits| 0" in out


def test_a_preprocessor_that_raises_fails_the_step_and_is_named(smoke):
    """The naive example concatenates DeepSeek's tool-call arguments as a dict: that fixture is reported, not skipped."""
    naive = smoke("deepseek-v3.1", Think.OFF, "naive")
    assert naive.errors and naive.errors[0].startswith("tool_call: the preprocessor raised TypeError")
    assert not naive.ok
