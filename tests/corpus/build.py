"""A corpus template on a pack tokenizer: the pack has few of these families' tokenizers, so each template goes
into a copy of a pack tokenizer with the special tokens it writes added (each entry names them), and a
generation_config whose eos ids are the tokens its model stops on (from the model's generation_config)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.contract import conversation
from chat_template_harness.contract.sample import CellUndecided, preprocess
from chat_template_harness.errors import HarnessError, TemplateDriftError
from chat_template_harness.models import source
from chat_template_harness.models.rules import NotApplicable, Think, ThinkMode, derive
from chat_template_harness.models.rules.registry import family_for, generation_config
from tests.helpers import run_cells

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


@dataclass(frozen=True)
class Written:
    """A template's ground truth from ground_truth.toml (its header says what each field means)."""

    file: str
    base: str
    shape: str
    modes: Mapping[str, Mapping[str, Any]]  # "on"/"off" -> one of trained/na/undecided (+ prompt, na_ok)
    tokens: tuple[str, ...] = ()
    eos: tuple[str, ...] = ()
    specials: tuple[tuple[str, str], ...] = ()

    def truth(self, think: str) -> Mapping[str, Any]:
        """The mode's verdict with {R} and {C} filled in."""
        return {
            k: v.replace("{R}", R).replace("{C}", C) if isinstance(v, str) else v for k, v in self.modes[think].items()
        }


def written() -> dict[str, Written]:
    raw = tomllib.loads((Path(__file__).parent / "ground_truth.toml").read_text("utf-8"))["template"]
    return {
        name: Written(
            t["file"],
            t["base"],
            t["shape"],
            {m: t[m] for m in ("on", "off")},
            tuple(t.get("tokens", ())),
            tuple(t.get("eos", ())),
            tuple(t.get("specials", {}).items()),
        )
        for name, t in raw.items()
    }


def folder(pack: Path, corpus: Path, name: str, truth: Truth | Written, into: Path) -> Path:
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
    cells: list[cellmodel.CellResult]


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
            [t for t, m in zip(sample.input_ids, sample.loss_mask, strict=True) if m]
        )
    return Found(found, prompt, trained, na, run_cells(cellmodel.cells([str(path)])))


@dataclass(frozen=True)
class Verdict:
    """What the harness says of a mode's final turn: a sample ("span"), "na", or "refused" (a one-line error)."""

    kind: str
    text: str  # the trained span decoded, the N/A reason, or the error
    prompt: str = ""


def verdicts(path: Path) -> dict[str, Verdict]:
    """THINKING's final turn per think mode, as `cth render` would build it; a traceback propagates."""
    try:
        loaded = source.load(str(path))
        fam = family_for(loaded.spec, loaded.tokenizer)
    except HarnessError as err:
        return {t.value: Verdict("refused", str(err)) for t in (Think.ON, Think.OFF)}
    out: dict[str, Verdict] = {}
    for think in (Think.ON, Think.OFF):
        mode = fam.mode(think)
        if isinstance(mode, NotApplicable):
            out[think.value] = Verdict("na", mode.reason)
            continue
        if not isinstance(mode, ThinkMode):  # a mode the harness leaves undecided
            out[think.value] = Verdict("refused", str(mode))
            continue
        try:
            result = preprocess(loaded.tokenizer, THINKING, fam, think)
        except HarnessError as err:
            out[think.value] = Verdict("refused", str(err))
            continue
        sample = result.samples[-1]
        trained = loaded.tokenizer.decode([t for t, m in zip(sample.input_ids, sample.loss_mask, strict=True) if m])
        out[think.value] = Verdict("span", trained, result.plans[-1].prompt)
    return out


def judge(truth: Mapping[str, Any], verdict: Verdict) -> str:
    """ "right", "silently wrong: ..." (a span or a decision the truth does not have), or "refused: ..." (an honest
    error or N/A where the truth has an answer)."""
    if verdict.kind == "span":
        if "trained" not in truth:
            return f"silently wrong: trained {verdict.text!r} where the truth is {_said(truth)}"
        if verdict.text != truth["trained"] or not verdict.prompt.endswith(truth.get("prompt", "")):
            return (
                f"silently wrong: trained {verdict.text!r} after a prompt ending {verdict.prompt[-60:]!r}; truth: "
                f"{truth['trained']!r} after {truth.get('prompt', '')!r}"
            )
        return "right"
    if verdict.kind == "na":
        if "na" in truth or ("undecided" in truth and truth.get("na_ok")):
            return "right"
        if "trained" in truth:
            return f"silently wrong: N/A ({verdict.text}) where the model trains {truth['trained']!r}"
        return f"silently wrong: N/A ({verdict.text}) decides what the truth leaves open: {truth['undecided']}"
    if "undecided" in truth:
        return "right"
    return f"refused: {verdict.text} (truth: {_said(truth)})"


def _said(truth: Mapping[str, Any]) -> str:
    return next(f"{k} {truth[k]!r}" for k in ("trained", "na", "undecided") if k in truth)
