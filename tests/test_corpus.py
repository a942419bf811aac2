"""The corpus: real chat templates of 2023-26 families, each derived and run through the whole matrix.

The templates come from packages on PyPI and npm: llama.cpp's models/templates (via the llama-cpp-python sdist),
axolotl's and TRL's vendored templates, vLLM's, and model repositories' own tokenizer_config.json (provenance and
hashes: tests/corpus/provenance.toml; docs/corpus.md), fetched by `python -m tests.corpus.fetch` (`nox -s corpus`
and CI do it); they are not committed. Each goes onto a pack tokenizer with the special tokens it writes added,
so token ids are the pack's, and the texts are the template's own.

The ground truth is written by hand from reading each template (and rendering it with apply_chat_template), before
the harness ran on it. The first 25 keep theirs below: the think switch, the served prompt's end per mode, the final
turn's trained span (decoded) for a conversation with reasoning, the N/A reasons, what derive must leave undecided,
and the cells the template cannot render. The rest keep theirs in tests/corpus/ground_truth.toml: per mode, the
final turn's trained span, N/A, or undecided with the question. A template whose truth cannot be read off it is a
rule derive must leave undecided, never a guess that passes.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from chat_template_harness.contract import conversation
from chat_template_harness.models import source
from tests.corpus import build
from tests.corpus.build import Truth
from tests.corpus.fetch import corpus_dir, missing, provenance, wanted
from tests.helpers import run_cells

GLM = (
    "[gMASK]",
    "<sop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "<arg_key>",
    "</arg_key>",
    "<arg_value>",
    "</arg_value>",
)
GLM_EOS = ("<|endoftext|>", "<|user|>", "<|observation|>")  # GLM-4.x generation_config
KIMI = (
    "<|im_system|>",
    "<|im_user|>",
    "<|im_assistant|>",
    "<|im_middle|>",
    "<|tool_calls_section_begin|>",
    "<|tool_calls_section_end|>",
    "<|tool_call_begin|>",
    "<|tool_call_argument_begin|>",
    "<|tool_call_end|>",
)
NEMOTRON2 = ("<SPECIAL_10>", "<SPECIAL_11>", "<SPECIAL_12>")
DEEPSEEK = "deepseek-ai--DeepSeek-V3.1"  # the pack's DeepSeek tokenizer has the ｜-tokens these templates write
R, C = build.R, build.C

CORPUS: dict[str, Truth] = {
    # GLM: nothing ends a turn; the model stops by writing the next header (generation_config lists both)
    "glm-4.6": Truth(
        "GLM-4.6.jinja",
        "kwarg enable_thinking",
        prompt={"on": "<|user|>\n2+2?<|assistant|>", "off": "<|user|>\n2+2?/nothink<|assistant|>\n<think></think>"},
        trained={"on": f"\n<think>{R}</think>\n{C}<|user|>", "off": f"\n{C}<|user|>"},
        tokens=GLM,
        eos=GLM_EOS,
    ),
    "glm-4.7-flash": Truth(
        "GLM-4.7-Flash.jinja",
        "kwarg enable_thinking",
        prompt={"on": "<|user|>2+2?<|assistant|><think>", "off": "<|user|>2+2?<|assistant|></think>"},
        trained={"on": f"{R}</think>{C}<|user|>", "off": f"{C}<|user|>"},
        tokens=GLM,
        eos=GLM_EOS,
    ),
    # Kimi: no switch; K2-Thinking writes <think></think> into a first final turn and hides its reasoning there
    "kimi-k2-thinking": Truth(
        "Kimi-K2-Thinking.jinja",
        "none",
        prompt={"on": "<|im_assistant|>assistant<|im_middle|>", "off": "<|im_assistant|>assistant<|im_middle|>"},
        trained={"on": f"<think>{R}</think>{C}<|im_end|>", "off": f"{C}<|im_end|>"},
        tokens=KIMI,
        eos=("<|im_end|>",),
    ),  # transformers' sandbox refuses its list.pop: tool cells are N/A
    "kimi-k2": Truth(
        "moonshotai-Kimi-K2.jinja",
        "none",
        prompt={"on": None, "off": "<|im_assistant|>assistant<|im_middle|>"},
        trained={"off": f"{C}<|im_end|>"},
        na={"on": "no thinking mode"},
        tokens=KIMI,
        eos=("<|im_end|>",),
    ),
    "kimi-k3": Truth(
        "Kimi-K3.jinja",
        "kwarg thinking",
        prompt={
            "on": '<|open|>message role="assistant"<|sep|><|open|>think<|sep|>',
            "off": '<|open|>message role="assistant"<|sep|><|open|>response<|sep|>',
        },
        trained={
            "on": f"{R}<|close|>think<|sep|><|open|>response<|sep|>{C}<|close|>response<|sep|><|close|>message<|sep|><|end_of_msg|>",
            "off": f"{C}<|close|>response<|sep|><|close|>message<|sep|><|end_of_msg|>",
        },
        tokens=("<|open|>", "<|close|>", "<|sep|>", "<|end_of_msg|>"),
        eos=("<|end_of_msg|>",),
    ),
    # DeepSeek: `thinking` (V3.1 falls back to enable_thinking); the prompt opens <think> or closes it
    "deepseek-v3.1": Truth(
        "deepseek-ai-DeepSeek-V3.1.jinja",
        "kwarg enable_thinking",
        prompt={"on": "<｜User｜>2+2?<｜Assistant｜><think>", "off": "<｜User｜>2+2?<｜Assistant｜><think></think>"},
        trained={"on": f"{R}</think>{C}<｜end▁of▁sentence｜>", "off": f"{C}<｜end▁of▁sentence｜>"},
        base=DEEPSEEK,
    ),
    "deepseek-v3.2": Truth(
        "deepseek-ai-DeepSeek-V3.2.jinja",
        "kwarg enable_thinking",
        prompt={"on": "<｜User｜>2+2?<｜Assistant｜><think>", "off": "<｜User｜>2+2?<｜Assistant｜><think></think>"},
        trained={"on": f"{R}</think>{C}<｜end▁of▁sentence｜>", "off": f"{C}<｜end▁of▁sentence｜>"},
        base=DEEPSEEK,
    ),
    "deepseek-v4": Truth(
        "deepseek-ai-DeepSeek-V4.jinja",
        "kwarg enable_thinking",
        prompt={"on": "<｜User｜>2+2?<｜Assistant｜><think>", "off": "<｜User｜>2+2?<｜Assistant｜></think>"},
        trained={"on": f"{R}</think>{C}<｜end▁of▁sentence｜>", "off": f"{C}<｜end▁of▁sentence｜>"},
        base=DEEPSEEK,
    ),
    "deepseek-r1-distill-qwen": Truth(
        "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
        "kwarg enable_thinking",
        prompt={
            "on": "<｜User｜>2+2?<｜Assistant｜><think>\n",
            "off": "<｜User｜>2+2?<｜Assistant｜><think>\n</think>",
        },
        # think-on: the prompt opens `<think>\n` and history is cut at `</think>`: no render shows what comes before
        # `</think>` or after it (this truth first said `{R}\n</think>\n\n`, the model card's: a default, see
        # docs/corpus.md); think-off: the prompt ends `<think>\n</think>` and the finished turn drops the block, so no
        # render shows what the model writes before its answer (this truth first said the answer right after
        # `</think>`, the gap its own comment named: a default too)
        trained={},
        base=DEEPSEEK,
        undecided=frozenset({"think", "before_answer"}),
    ),
    # Nemotron-Nano-v2: /no_think in the system message; the final turn prints its content as typed
    "nemotron-nano-v2": Truth(
        "NVIDIA-Nemotron-Nano-v2.jinja",
        "system flag /no_think",
        prompt={
            "on": "<SPECIAL_11>User\n2+2?\n<SPECIAL_11>Assistant\n<think>\n",
            "off": "<SPECIAL_11>User\n2+2?\n<SPECIAL_11>Assistant\n<think></think>",
        },
        # think-on: the prompt opens `<think>\n`, the final turn prints content as typed, history drops an inline block:
        # no render shows the block's closing (this truth first said `{R}\n</think>\n\n`: a default, see docs/corpus.md)
        trained={"off": f"{C}\n<SPECIAL_12>"},
        tokens=NEMOTRON2,
        undecided=frozenset({"think"}),
        eos=("<SPECIAL_12>",),
        # an empty reply is dropped from a final turn; a tool-call turn ends '<SPECIAL_12>\n\n', a reply '<SPECIAL_12>\n'
        # (think-on's two are UNDECIDED first: the opened block's closing is)
        errors=frozenset({"off/empty_assistant_content", "off/tool_call"}),
    ),
    "nemotron-3-nano": Truth(
        "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.jinja",
        "kwarg enable_thinking",
        prompt={"on": "<|im_start|>assistant\n<think>\n", "off": "<|im_start|>assistant\n<think></think>"},
        trained={"on": f"{R}\n</think>\n{C}<|im_end|>", "off": f"{C}<|im_end|>"},
    ),
    # Seed-OSS: the switch is a budget; 0 closes the think block in the prompt
    "seed-oss": Truth(
        "ByteDance-Seed-OSS.jinja",
        "kwarg thinking_budget",
        prompt={
            "on": "<seed:bos>assistant\n",
            "off": "<seed:bos>assistant\n<seed:think>\n<seed:cot_budget_reflect>The current thinking budget is 0, so "
            "I will directly start answering the question.</seed:cot_budget_reflect>\n</seed:think>",
        },
        # think-off: the prompt ends with the budget-0 block closed (`</seed:think>`) and the finished turn drops the block,
        # so no render shows what the model writes before its answer; the think-on format writes `\n` after
        # `</seed:think>`. This truth first said the answer right after `</seed:think>` (written with the first 25, a
        # default); changed on 2026-12-07, when derive's new rule for prompt-only text after the turn header left it
        # undecided, to the corpus's convention (QwQ think-off, DeepSeek-R1-Distill-Qwen think-off)
        trained={"on": f"<seed:think>{R}</seed:think>\n{C}<seed:eos>"},
        undecided=frozenset({"before_answer"}),
        tokens=(
            "<seed:bos>",
            "<seed:eos>",
            "<seed:think>",
            "</seed:think>",
            "<seed:cot_budget_reflect>",
            "</seed:cot_budget_reflect>",
            "<seed:tool_call>",
            "</seed:tool_call>",
        ),
        eos=("<seed:eos>",),
        # an empty reply gets a header and no end of turn (think-off's is UNDECIDED first: what follows the block is)
        errors=frozenset({"on/empty_assistant_content"}),
    ),
    # LFM2.5: no switch, field `thinking`: both modes derived (the model card decides)
    "lfm2.5-8b-a1b": Truth(
        "LFM2.5-8B-A1B.jinja",
        "none",
        prompt={"on": "<|im_start|>assistant\n", "off": "<|im_start|>assistant\n"},
        trained={"on": f"<think>{R}</think>{C}<|im_end|>", "off": f"{C}<|im_end|>"},
    ),
    # Gemma 4: the template strips reasoning from every turn but a tool-call turn after the last user turn, which
    # writes it '<|channel>thought\n' + reasoning + '\n<channel|>' and goes straight on (line 238); think-off's prompt
    # ends with the empty '<|channel>thought\n<channel|>'. Reviewed 2026-12-07: think-on was first written without
    # the '\n' before '<channel|>' (the empty block's spacing); the tool-call render and Google's Gemma 4 prompt
    # formatting page ('<|channel>thought\n...\n<channel|>The most common...') both write it.
    "gemma-4": Truth(
        "google-gemma-4-31B-it.jinja",
        "kwarg enable_thinking",
        prompt={
            "on": "<|turn>user\n2+2?<turn|>\n<|turn>model\n",
            "off": "<|turn>user\n2+2?<turn|>\n<|turn>model\n<|channel>thought\n<channel|>",
        },
        trained={"on": f"<|channel>thought\n{R}\n<channel|>{C}<turn|>", "off": f"{C}<turn|>"},
        tokens=(
            "<|turn>",
            "<turn|>",
            "<|channel>",
            "<channel|>",
            "<|think|>",
            "<|tool>",
            "<tool|>",
            "<|tool_call>",
            "<tool_call|>",
            "<|tool_response>",
            "<tool_response|>",
            '<|"|>',
        ),
        eos=("<turn|>",),
        # a tool-call turn ends without the '\n' every other turn has after <turn|>
        errors=frozenset({"on/tool_call", "off/tool_call"}),
    ),
    # Apriel 1.6: the prompt forces 'Here are my reasoning steps:\n'; a final turn ends with nothing unless the
    # template's own `training_prompt` is set: the stop cannot be read off the default render
    "apriel-1.6": Truth(
        "Apriel-1.6-15b-Thinker-fixed.jinja",
        "none",
        prompt={
            "on": "<|begin_assistant|>\nHere are my reasoning steps:\n",
            "off": "<|begin_assistant|>\nHere are my reasoning steps:\n",
        },
        trained={},
        tokens=(
            "<|begin_system|>",
            "<|begin_user|>",
            "<|begin_assistant|>",
            "<|begin_tool_result|>",
            "<|begin_content|>",
            "<|end|>",
        ),
        eos=("<|end|>",),
        # the prompt's reasoning opener is text the finished turn does not write: what follows it in a reply without
        # reasoning is not shown either (added on 2026-12-07 with derive's rule for prompt-only text after the header)
        undecided=frozenset({"stop_tokens", "before_answer"}),
    ),  # every cell needs a stop: every cell is UNDECIDED
    "stepfun-3.5-flash": Truth(
        "StepFun3.5-Flash.jinja",
        "none",
        prompt={"on": "<|im_start|>assistant\n<think>\n", "off": None},
        trained={"on": f"{R}\n</think>\n{C}<|im_end|>"},
        na={"off": "no off switch"},
    ),
    "qwen3.5": Truth(
        "Qwen3.5-4B.jinja",
        "kwarg enable_thinking",
        prompt={"on": "<|im_start|>assistant\n<think>\n", "off": "<|im_start|>assistant\n<think>\n\n</think>\n\n"},
        trained={"on": f"{R}\n</think>\n\n{C}<|im_end|>", "off": f"{C}<|im_end|>"},
    ),
    "qwen3-coder": Truth(
        "Qwen3-Coder.jinja",
        "none",
        prompt={"on": None, "off": "<|im_start|>assistant\n"},
        trained={"off": f"{C}<|im_end|>"},
        na={"on": "no thinking mode"},
    ),
    # SmolLM3: enable_thinking; think-off writes '<think>\n\n</think>\n'; no render shows reasoning in any field
    "smollm3": Truth(
        "HuggingFaceTB-SmolLM3-3B.jinja",
        "kwarg enable_thinking",
        prompt={"on": "<|im_start|>assistant\n", "off": "<|im_start|>assistant\n<think>\n\n</think>\n"},
        trained={"off": f"{C}<|im_end|>"},
        undecided=frozenset({"reasoning_field"}),
    ),
    "ling-3.0-flash": Truth(
        "inclusionai-ling-3.0-flash.jinja",
        "kwarg enable_thinking",
        prompt={"on": "<role>ASSISTANT</role>\n<think>", "off": "<role>ASSISTANT</role>\n<think></think>"},
        trained={"on": f"{R}</think>{C}<|role_end|>", "off": f"{C}<|role_end|>"},
        tokens=("<role>", "</role>", "<|role_end|>"),
        eos=("<|role_end|>",),
    ),
    # Solar Open: reasoning_effort; "minimal" (and "low") writes an empty think segment before the reply
    "solar-open": Truth(
        "upstage-Solar-Open-100B.jinja",
        "kwarg reasoning_effort",
        prompt={
            "on": "<|begin|>user<|content|>2+2?<|end|><|begin|>assistant",
            "off": "<|begin|>assistant<|think|><|end|><|begin|>assistant",
        },
        trained={"on": f"<|think|>{R}<|end|><|begin|>assistant<|content|>{C}<|end|>", "off": f"<|content|>{C}<|end|>"},
        errors=frozenset({"on/tool_call", "off/tool_call"}),  # it reads tool_call.id; the fixture's call has none
        tokens=(
            "<|begin|>",
            "<|end|>",
            "<|content|>",
            "<|think|>",
            "<|tool_calls|>",
            "<|tool_call:begin|>",
            "<|tool_call:end|>",
            "<|tool_call:name|>",
            "<|tool_call:args|>",
            "<|tool_response|>",
        ),
        eos=("<|end|>",),
    ),
    "granite-4.0": Truth(
        "ibm-granite-granite-4.0.jinja",
        "none",
        prompt={"on": None, "off": "<|start_of_role|>assistant<|end_of_role|>"},
        trained={"off": f"{C}<|end_of_text|>"},
        na={"on": "no thinking mode"},
        tokens=("<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>"),
        eos=("<|end_of_text|>",),
    ),
    "gigachat-3.1": Truth(
        "GigaChat3.1-10B-A1.8B.jinja",
        "none",
        prompt={"on": None, "off": "<|message_sep|>\n\nassistant<|role_sep|>\n"},
        trained={"off": f"{C}<|message_sep|>"},
        na={"on": "no thinking mode"},
        tokens=("<|message_sep|>", "<|role_sep|>", "<|function_call|>"),
        eos=("<|message_sep|>",),
    ),
    "minimax-m2": Truth(
        "MiniMax-M2.jinja",
        "none",
        prompt={"on": "]~b]ai\n<think>\n", "off": None},
        trained={"on": f"{R}\n</think>\n\n{C}[e~["},
        na={"off": "no off switch"},
        tokens=("]~b]", "[e~[", "]~!b[", "<minimax:tool_call>", "</minimax:tool_call>"),
        eos=("[e~[",),
    ),
    "mistral-small-3.2": Truth(
        "Mistral-Small-3.2-24B-Instruct-2506.jinja",
        "none",
        prompt={"on": None, "off": "[INST]2+2?[/INST]"},
        trained={"off": f"{C}</s>"},
        na={"on": "no thinking mode"},
        tokens=(
            "<s>",
            "</s>",
            "[INST]",
            "[/INST]",
            "[SYSTEM_PROMPT]",
            "[/SYSTEM_PROMPT]",
            "[TOOL_CALLS]",
            "[ARGS]",
            "[CALL_ID]",
            "[AVAILABLE_TOOLS]",
            "[/AVAILABLE_TOOLS]",
            "[TOOL_RESULTS]",
            "[/TOOL_RESULTS]",
        ),
        eos=("</s>",),
        specials=(("bos_token", "<s>"), ("eos_token", "</s>")),
    ),
}


@pytest.fixture(autouse=True)
def _one_template_at_a_time(request):
    """Each corpus test makes a folder of its own: let go of its tokenizer after it (about 90 MiB each, 324
    templates), or a worker's memory grows by every template it ran."""
    yield
    if request.node.get_closest_marker("corpus"):
        source.unload()


@pytest.fixture(scope="module")
def corpus():
    folder = corpus_dir()
    if missing(folder):
        pytest.skip(
            f"N/A: the template corpus is not in {folder} ({len(missing(folder))} missing or changed); "
            "fix: `python -m tests.corpus.fetch` (needs PyPI) or `nox -s corpus`"
        )
    return folder


WRITTEN = build.written()
SHAPES = (
    "self-opening",
    "next-turn header",
    "non-<think> markers",
    "prefix/suffix pair",
    "answer wrapper",
    "channel headers",
    "renders nothing",
    "renders only with tools",
    "ordinary",
)


def test_the_corpus_holds_45_templates_from_four_kinds_of_source_each_with_its_provenance():
    sources = provenance()["sources"].values()
    assert len(CORPUS) + len(WRITTEN) >= 45
    assert {t.file for t in CORPUS.values()} | {t.file for t in WRITTEN.values()} == set(wanted())
    assert not {t.file for t in CORPUS.values()} & {t.file for t in WRITTEN.values()}  # one truth per template
    assert {s["into"] for s in sources} >= {"", "axolotl/", "trl/", "vllm/", "npm/", "unsloth/", "oumi/"}
    assert all(len(s["archive_sha256"]) == 64 and ("==" in s["package"] or "@" in s["package"]) for s in sources)
    assert all(len(digest) == 64 for digest in wanted().values())
    shapes = " ".join(t.shape for t in WRITTEN.values())
    assert all(shape in shapes for shape in SHAPES), [s for s in SHAPES if s not in shapes]


def test_each_written_truth_is_one_verdict_per_mode():
    for name, truth in WRITTEN.items():
        for think in ("on", "off"):
            said = truth.truth(think)
            assert sum(k in said for k in ("trained", "na", "undecided")) == 1, (name, think)
            assert "na_ok" not in said or "undecided" in said, (name, think)


def test_a_template_kept_as_a_string_in_code_is_read_never_run():
    """`pypi-wheel-module` sources (Unsloth's chat_templates.py): a top-level string assignment is the template; the
    module is parsed, not imported (the control: code that would raise if it ran), and nothing else is taken."""
    from tests.corpus.fetch import module_strings

    module = 'raise SystemExit("ran")\nqwen_template = \\\n"{% for m in messages %}"  "{{ m.content }}{% endfor %}"\n'
    module += "other = 3\ndef f():\n    inner_template = 'no'\n"
    assert module_strings(module) == {"qwen_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}


def test_a_template_in_a_typescript_table_is_read_as_json5_and_taken_by_model_and_hash():
    """`npm-ts-table` sources (@huggingface/ollama-utils): the exported array is read as JSON5 (bare keys, single and
    double quotes with their escapes, trailing commas); a model listed twice gives the entry with the pinned hash,
    and a hash that matches none gives the first (so the fetch's hash check fails, as it must)."""
    from tests.corpus.fetch import gguf_template, sha256, ts_table

    text = (
        "import x from \"y\";\nexport const T: E[] = [\n\t{\n\t\tmodel: \"a\",\n\t\tgguf: '{{ bos }}\\n{% if x %}\\'q\\'{% endif %}',"
        '\n\t},\n\t{ model: "b", gguf: "one" },\n\t{ model: "b", gguf: "two", },\n];\n'
    )
    entries = ts_table(text, "T")
    assert entries[0]["gguf"] == "{{ bos }}\n{% if x %}'q'{% endif %}"
    assert gguf_template(entries, "b", sha256(b"two")) == b"two"
    assert gguf_template(entries, "b", sha256(b"three")) == b"one"


def test_a_template_a_framework_sets_with_its_lines_joined_is_kept_as_it_is_set():
    """Oumi strips each line of a template file and joins them before setting it: the corpus keeps that text, whose
    whitespace inside strings stays (`'\\n'` is not a line break), and the Jinja block newlines of the file go."""
    from tests.corpus.fetch import joined_lines

    text = "{% for m in messages %}\n    {{ m.role + '\\n' + m.content }}\n\n{% endfor %}\n"
    assert joined_lines(text) == "{% for m in messages %}{{ m.role + '\\n' + m.content }}{% endfor %}"


def test_a_named_template_is_taken_by_name_and_only_where_the_source_names_one():
    """Command R+'s tokenizer_config.json holds named templates: the source's `named` picks one; a source that names
    none where the file holds a list (or names one where it holds one template) is an error, never a guess."""
    from tests.corpus.fetch import chat_template

    listed = {"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}
    assert chat_template(listed, "default") == "D" and chat_template({"chat_template": "S"}, None) == "S"
    for config, named in ((listed, None), ({"chat_template": "S"}, "default")):
        with pytest.raises(SystemExit, match="fix: update provenance.toml"):
            chat_template(config, named)


def test_a_changed_template_is_refetched_not_trusted(tmp_path):
    """Negative control for the hash check: a corpus file that differs from its recorded hash counts as missing."""
    name = next(iter(wanted()))
    (tmp_path / name).write_text("{{ messages }}", "utf-8")
    assert name in missing(tmp_path) and len(missing(tmp_path)) == len(wanted())


def test_the_judge_calls_a_guessed_span_silently_wrong_and_an_honest_refusal_not():
    """Negative controls for the corpus verdicts: a span where the truth is undecided, a wrong span, and N/A where
    the model trains are each silently wrong; a refusal where the truth is undecided is right."""
    from tests.corpus.build import Verdict, judge

    undecided = {"undecided": "which token stops?"}
    assert judge(undecided, Verdict("span", "4<|im_end|>", "x")).startswith("silently wrong")
    assert judge(undecided, Verdict("refused", "error: ...; fix: ...")) == "right"
    assert judge(undecided, Verdict("na", "no thinking mode")).startswith("silently wrong")
    assert judge({**undecided, "na_ok": True}, Verdict("na", "no off switch")) == "right"
    trained = {"trained": "4<|im_end|>", "prompt": "assistant\n"}
    assert judge(trained, Verdict("span", "4<|im_end|>", "<|im_start|>assistant\n")) == "right"
    assert judge(trained, Verdict("span", "4<|im_end|>\n", "<|im_start|>assistant\n")).startswith("silently wrong")
    assert judge(trained, Verdict("span", "4<|im_end|>", "<|im_start|>assistant\n<think>")).startswith("silently")
    assert judge(trained, Verdict("na", "no thinking mode")).startswith("silently wrong")
    assert judge(trained, Verdict("refused", "error: ...")).startswith("refused")


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_real_template_is_derived_and_run_as_it_is_written(name, corpus, pack_dir, tmp_path):
    truth = CORPUS[name]
    found = build.run(build.folder(pack_dir, corpus, name, truth, tmp_path))
    switch = next(f.value for f in found.derivation.findings if f.rule == "think switch")
    assert switch == truth.switch
    assert {f.rule for f in found.derivation.undecided} == truth.undecided
    assert all(f.note for f in found.derivation.undecided)  # each with its fix
    if "stop_tokens" in truth.undecided:  # no sample is made from a guessed stop: every cell is UNDECIDED, with the fix
        assert all(t.startswith("undecided: ") and "fix:" in t for t in found.trained.values())
    else:
        for think, end in truth.prompt.items():
            if end is None:
                assert found.prompt[think] is None and truth.na[think] in found.na[think]
            elif found.trained[think].startswith("undecided: "):
                assert _undecided_mode(truth, think)  # no sample: checked below
            else:
                assert found.prompt[think] is not None and found.prompt[think].endswith(end), (
                    think,
                    found.prompt[think][-80:],
                )
        # the final turn's trained span, decoded; a mode whose format is undecided makes no sample from a guess
        decided = {k: v for k, v in found.trained.items() if not _undecided_mode(truth, k)}
        assert decided == {k: v for k, v in truth.trained.items() if k in decided}
        for think in ("on", "off"):
            if _undecided_mode(truth, think):
                assert found.trained[think].startswith("undecided: ") and "fix:" in found.trained[think]
    failed = {f"{c.cell.think.value}/{c.cell.fixture}": c.reason for c in found.cells if c.status.name == "FAIL"}
    assert not failed
    errors = {f"{c.cell.think.value}/{c.cell.fixture}" for c in found.cells if c.status.name == "ERROR"}
    assert errors == truth.errors
    # UNDECIDED exactly where a cell needs an undecided rule: every cell for the stop; think-on cells with reasoning
    # for the reasoning format (every think-on cell where the prompt opens a block); never elsewhere
    undecided = {f"{c.cell.think.value}/{c.cell.fixture}" for c in found.cells if c.status.name == "UNDECIDED"}
    ran = {f"{c.cell.think.value}/{c.cell.fixture}" for c in found.cells if c.status.name != "NA"}
    if "stop_tokens" in truth.undecided:
        expected = ran
    elif {"think", "reasoning_field"} & truth.undecided:
        # a prompt that opens a block needs its closing in every reply; otherwise only a reply with reasoning does
        opens = (truth.prompt.get("on") or "").endswith(("<think>", "<think>\n"))
        expected = {
            c for c in ran if c.startswith("on/") and (opens or "reasoning" in conversation.load(c[3:]).features)
        }
    else:
        expected = set()
    if "before_answer" in truth.undecided:  # every reply after the prompt's closed block starts with the unproven text
        expected |= {c for c in ran if c.startswith("off/")}
    assert undecided == expected


def _undecided_mode(truth: Truth, think: str) -> bool:
    """Whether the truth leaves the mode's final turn undecided: a think-on format, or what a think-off reply writes
    after the prompt's closed block."""
    if think == "on":
        return bool({"think", "reasoning_field"} & truth.undecided)
    return "before_answer" in truth.undecided


@pytest.mark.corpus
def test_apriels_undecided_stop_written_by_hand_makes_every_cell_pass(corpus, pack_dir, tmp_path):
    """The fix derive names for Apriel 1.6 works: its rules with the stop, the trailer and the template's own
    `training_prompt` (which makes a final turn end `\\n<|end|>\\n`) written by hand."""
    import dataclasses
    from types import MappingProxyType

    from chat_template_harness.models import source
    from chat_template_harness.models.rules import files

    folder = build.folder(pack_dir, corpus, "apriel-1.6", CORPUS["apriel-1.6"], tmp_path)
    derived = build.run(folder).derivation.family
    rules = dataclasses.replace(
        derived,
        stop_tokens=("<|end|>",),
        trailer="\n",
        undecided=(),  # its entry deleted
        template_kwargs=MappingProxyType({"training_prompt": True}),
    )
    files.write(rules, folder / source.RULES_FILE, header="Apriel 1.6, the stop written by hand")
    found = build.run(folder)
    assert {c.status.name for c in found.cells} == {"PASS"}
    assert found.trained["on"] == f"{build.R}\n[BEGIN FINAL RESPONSE]\n{build.C}\n<|end|>"


@pytest.fixture(scope="module")
def written_verdicts(corpus, pack_dir, tmp_path_factory):
    """The harness's verdicts per written template, made once (a traceback is raised where the template is used)."""
    made: dict[str, object] = {}

    def verdicts(name: str):
        if name not in made:
            into = tmp_path_factory.mktemp("written")
            made[name] = build.verdicts(build.folder(pack_dir, corpus, name, WRITTEN[name], into))
        return made[name]

    return verdicts


# Cells the harness still gets wrong on real templates it had never seen: listed with what goes wrong, each an
# xfail(strict) so it cannot pass unnoticed nor hide (issue 31 stays open until this file is empty).
KNOWN = tomllib.loads((Path(__file__).parent / "corpus" / "known_wrong.toml").read_text("utf-8"))


def _known(test: str) -> list[object]:
    reasons = KNOWN.get(test, {})
    return [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=reasons[n])) if n in reasons else n
        for n in sorted(WRITTEN)
    ]


@pytest.mark.corpus
@pytest.mark.parametrize("name", _known("silently_wrong"))
def test_a_real_templates_final_turn_is_never_silently_wrong(name, written_verdicts):
    """The truth written before the harness ran, against the harness's verdict per think mode: a span different
    from the truth, a span or an N/A where the truth is undecided, and a traceback fail."""
    found = written_verdicts(name)
    wrong = {think: build.judge(WRITTEN[name].truth(think), found[think]) for think in ("on", "off")}
    assert not {k: v for k, v in wrong.items() if v.startswith("silently wrong")}


@pytest.mark.corpus
@pytest.mark.parametrize("name", _known("refused"))
def test_a_real_templates_decided_final_turn_is_not_refused(name, written_verdicts):
    """Where the template proves the final turn (a span or N/A), the harness gives it, not an error."""
    found = written_verdicts(name)
    refused = {think: build.judge(WRITTEN[name].truth(think), found[think]) for think in ("on", "off")}
    assert not {k: v for k, v in refused.items() if v.startswith("refused")}


@pytest.mark.corpus
@pytest.mark.parametrize("name", _known("traceback"))
def test_a_real_template_runs_through_the_matrix_without_a_traceback(name, corpus, pack_dir, tmp_path):
    """Every cell of the matrix gets a verdict or a named error, however odd the template."""
    from chat_template_harness.cells import model as cellmodel

    path = build.folder(pack_dir, corpus, name, WRITTEN[name], tmp_path)
    cells = run_cells(cellmodel.cells([str(path)]))
    assert cells and all(c.reason or c.status.name == "PASS" for c in cells)
