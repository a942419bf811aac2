"""A corpus template on a pack tokenizer: the pack has few of these families' tokenizers, so each template goes
into a copy of a pack tokenizer with the special tokens it writes added (each entry names them), and a
generation_config whose eos ids are the tokens its model stops on (from the model's generation_config)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from chat_template_harness.contract import conversation
from chat_template_harness.contract.sample import CellUndecided, preprocess
from chat_template_harness.errors import TemplateDriftError
from chat_template_harness.models import source
from chat_template_harness.models.rules import NotApplicable, Think, derive
from chat_template_harness.models.rules.registry import family_for, generation_config
from chat_template_harness.outputs import matrix

R, C = "Two plus two is four.", "4"
FIXTURES = conversation.fixture_names()
THINKING = conversation.parse(
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": C, "reasoning_content": R}],
    name="thinking",
    source="corpus",
)


@dataclass(frozen=True)
class Truth:
    """What the template does, written by hand from reading it (never from the harness's output)."""

    file: str
    switch: str  # the derive table's `think switch` value
    prompt: dict[str, str | None]  # think mode -> the served prompt's end for THINKING (None: mode N/A)
    trained: dict[str, str]  # think mode -> THINKING's final turn, trained, decoded
    na: dict[str, str] = field(default_factory=dict)  # think mode -> words its N/A reason must hold
    tokens: tuple[str, ...] = ()  # special tokens added to the pack tokenizer (it lacks them)
    eos: tuple[str, ...] = ()  # the model's stop tokens (its generation_config); () keeps the pack's
    base: str = "Qwen--Qwen3-8B"
    specials: tuple[tuple[str, str], ...] = ()  # the tokenizer's own bos/eos where the template writes them by name
    undecided: frozenset[str] = frozenset()  # rules derive must leave undecided (with the fix)
    errors: frozenset[str] = frozenset()  # cells (think/fixture) the template cannot render as the rules read it


def folder(pack: Path, corpus: Path, name: str, truth: Truth, into: Path) -> Path:
    from transformers import AutoTokenizer

    out = into / name
    tok = AutoTokenizer.from_pretrained(pack / truth.base)
    new = [t for t in truth.tokens if t not in tok.get_vocab()]
    if new:
        tok.add_special_tokens({"additional_special_tokens": new})
    if truth.specials:
        tok.add_special_tokens(dict(truth.specials))
    tok.chat_template = (corpus / truth.file).read_text("utf-8")
    tok.save_pretrained(out)
    if truth.eos:
        ids = tok.convert_tokens_to_ids(list(truth.eos))
        (out / "generation_config.json").write_text(json.dumps({"eos_token_id": ids}), "utf-8")
    return out


@dataclass
class Found:
    derivation: derive.Derivation
    prompt: dict[str, str | None]
    trained: dict[str, str]
    na: dict[str, str]
    cells: list[matrix.CellResult]


def run(path: Path) -> Found:
    loaded = source.load(str(path))
    eos = derive.eos_tokens(loaded.tokenizer, generation_config(loaded.spec, loaded.tokenizer))
    found = derive.derive(loaded.tokenizer, str(path), eos)
    fam = family_for(loaded.spec, loaded.tokenizer)
    prompt: dict[str, str | None] = {}
    trained: dict[str, str] = {}
    na: dict[str, str] = {}
    for think in (Think.ON, Think.OFF):
        mode = fam.mode(think)
        if isinstance(mode, NotApplicable):
            prompt[think.value], na[think.value] = None, mode.reason
            continue
        try:
            result = preprocess(loaded.tokenizer, THINKING, fam, think)
        except CellUndecided as err:  # a rule no render proves: no sample is made from a guess
            prompt[think.value], trained[think.value] = "", f"undecided: {err}"
            continue
        except TemplateDriftError as err:  # the template cannot render it as the rules say: an error cell
            prompt[think.value], trained[think.value] = "", f"error: {err}"
            continue
        sample = result.samples[-1]
        prompt[think.value] = result.plans[-1].prompt
        trained[think.value] = loaded.tokenizer.decode(
            [t for t, m in zip(sample.input_ids, sample.loss_mask, strict=True) if m])
    return Found(found, prompt, trained, na, matrix.run(matrix.cells([str(path)])))
