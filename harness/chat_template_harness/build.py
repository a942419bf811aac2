"""`build_samples`: the harness's reference samples as a library, for any model it has rules for.

Contract (../shared/CONTRACT.md, "The rule"): each sample is the served prompt of the turn(s) it trains followed
by what the model generates there; `loss_mask` is 1 exactly on the generated spans (reasoning, content, stop
token) and `labels` carry the id at each trained position (-100 elsewhere), aligned with `input_ids` as Hugging
Face models shift them. This module adds no rule of its own: it is a thin layer over the reference
(`contract.sample.preprocess`, the turn plans) and its speed-ups (`contract.tokens` piecewise tokenization,
`contract.render` compiled template), with
- the model's rules found from the tokenizer alone: a registered model (built-in, `[tool.cth]`) by its name or
  folder, any other by deriving them from its template (`models/rules/registry.py`); a rule the template does
  not decide raises `UndecidedRule` with the question and the config line that answers it, never a default;
- `max_length`: whole turns (or whole samples) are dropped and counted, never a cut inside a reply;
- rows: `as_row()` gives a `datasets` row that TRL's SFTTrainer takes as a pre-tokenized example (it uses the
  `labels` column as it is); `batch.py` maps whole datasets.

    samples = build_samples(tokenizer, messages, think="off")
    samples[-1].input_ids, samples[-1].labels, samples[-1].loss_mask, samples.dropped_turns
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chat_template_harness.audit.rows import without_nulls
from chat_template_harness.contract import conversation as conversations
from chat_template_harness.contract.sample import Policy, Preprocessed
from chat_template_harness.contract.sample import preprocess as reference
from chat_template_harness.contract.tokens import ids as token_ids
from chat_template_harness.contract.turns import Note
from chat_template_harness.errors import HarnessError, TemplateDriftError
from chat_template_harness.models import memo, named, source
from chat_template_harness.models.rules import Family, NotApplicable, Think, registry
from chat_template_harness.serving import served

if TYPE_CHECKING:
    from chat_template_harness.models.rules.derive import Derivation

IGNORE_INDEX = -100
DROPPED = "dropped: longer than max_length"


class UndecidedRule(HarnessError):
    """A rule the model's template does not decide: no sample is built on a guess.

    `rule` names it, `question` says what is not known, `config_line` is the line that answers it (in the model's
    rules file, registered under `[tool.cth.models.NAME]`)."""

    def __init__(self, model: str, rule: str, question: str, config_line: str) -> None:
        super().__init__(
            f"{model}: the rule `{rule}` is undecided: {question}",
            f"write `{config_line}` in the model's rules file (`cth derive {model} --write {model}.toml` starts one; "
            f'register it with `rules = "{model}.toml"` under [tool.cth.models.{model}])',
        )
        self.model, self.rule, self.question, self.config_line = model, rule, question, config_line


class TemplateChangedError(HarnessError):
    """The tokenizer's chat template is not the one its files hold: build_samples renders every served prompt with
    the tokenizer's template, and a server renders the files' one, so samples built on it would train a prompt the
    served model never sees (a training template keeps what the real one drops). Which one the server is given is
    not known here, so nothing is built on a guess."""

    def __init__(self, now: str, loaded: str) -> None:
        super().__init__(
            f"the tokenizer's chat template was changed after loading ({len(now):,} characters, not the "
            f"{len(loaded):,} its files hold): a server renders the files' template",
            "build the samples with the tokenizer as its files load it (a training template, such as TRL's "
            "`get_training_chat_template` or what `SFTConfig(chat_template_path=...)` sets, is not what a server "
            "renders); if your server is given this template (`vllm serve --chat-template`), save the tokenizer "
            "with it (`tokenizer.save_pretrained(DIR)`) and load it from DIR",
        )


# The harness's own errors for a rule it cannot decide. Derivation raises ValueError where the template renders
# nothing it can read; an explicit undecided-rule error joins this tuple when the rules carry one.
UNDECIDED_ERRORS: tuple[type[Exception], ...] = (ValueError,)
# rule (as derivation names it) -> the rules-file line that decides it
CONFIG_LINES = {
    "stop_tokens": 'stop_tokens = ["<the token that ends a reply>"]',
    "reasoning_field": 'reasoning_field = "reasoning_content"  # the message field the template reads',
    "think": '[think.on] think = "<how the model writes reasoning, with {reasoning}>"',
    "think.on": '[think.on] not_applicable = "<why>"  # or the mode\'s rules',
    "think.off": '[think.off] not_applicable = "<why>"  # or the mode\'s rules',
}


@dataclass(frozen=True)
class TurnReport:
    """One assistant turn: where it is trained, or why not."""

    turn: int  # ordinal among the assistant turns, from 0
    message_index: int
    sample: int  # index of the sample that trains it in the returned list; -1 when none does
    status: str  # "trained", "not trained: policy last", or DROPPED
    prompt_tokens: int  # tokens of its served prompt; -1 under policy "last" for an earlier turn (never rendered)
    shared: bool  # trained in a sample that also trains a later turn
    split_reason: str  # why it has a sample of its own ("" when shared, last or untrained)
    notes: tuple[Note, ...]  # what the reference says about it (codes and text: e.g. reasoning dropped by the mode)


@dataclass(frozen=True)
class TrainingSample:
    """One training sequence: ids, labels (-100 where not trained) and the 0/1 loss mask, all the same length."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    loss_mask: tuple[int, ...]
    turns: tuple[TurnReport, ...]  # the turns this sample trains, ascending

    @property
    def length(self) -> int:
        return len(self.input_ids)

    def as_row(self) -> dict[str, Any]:
        """A `datasets` row: the ids, labels and mask as lists, `length` (for packing and group_by_length), the
        trained turns' ordinals, and their reports as one JSON string (a stable column type in every batch)."""
        return {
            "input_ids": list(self.input_ids),
            "labels": list(self.labels),
            "loss_mask": list(self.loss_mask),
            "length": self.length,
            "cth_turns": [t.turn for t in self.turns],
            "cth_report": json.dumps([asdict(t) for t in self.turns], ensure_ascii=False),
        }


class Samples(list[TrainingSample]):
    """The samples of one conversation (ordered by the turn each ends with), with what was left out and why."""

    def __init__(self, samples: Sequence[TrainingSample], report: Sequence[TurnReport], dropped_samples: int) -> None:
        super().__init__(samples)
        self.report = tuple(report)  # every assistant turn, trained or not
        self.dropped_samples = dropped_samples  # samples left out whole by max_length

    @property
    def dropped_turns(self) -> int:
        """Turns left out by max_length (each would have needed a cut inside its reply)."""
        return sum(t.status == DROPPED for t in self.report)


@dataclass(frozen=True)
class Target:
    """A tokenizer with the rules it is built with."""

    name: str
    tokenizer: Any
    family: Family


def build_samples(
    tokenizer: Any,
    messages: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    *,
    think: str | bool | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    policy: str = "all",
    served_by: str = "transformers",
    max_length: int | None = None,
    model: str | None = None,
) -> Samples:
    """The training samples of one conversation, as the harness's reference builds them (checked by `cth check`).

    - `tokenizer`: a loaded Hugging Face tokenizer (its rules found by its folder or hub id, else derived from its
      template), or a model name the harness knows (`qwen3-8b`, a hub id, a tokenizer folder); `model` names the
      registered model a loaded tokenizer is, where its folder does not say.
    - `messages`: a list of messages, or a row: `{"messages": [...], "tools": [...]}`, ShareGPT `conversations`
      (from/value), OpenAI content parts, reasoning in `reasoning_content`/`reasoning`/`thinking` or inline
      `<think>…</think>`. It must end with the assistant turn to train.
    - `think`: "on" or "off" (True/False), as the server is asked; None only for a model with one mode.
    - `tools`: the function schemas sent with the request (default: the row's own `tools`).
    - `policy`: "all" trains every assistant turn (turns share a sample only where it replays exactly), "last"
      only the final one. `served_by`: whose served prompt ("transformers", "vllm", "sglang").
    - `max_length`: samples longer than it lose whole turns from their end (never part of a reply); a sample
      with no turn that fits is left out. `Samples.dropped_turns` and `.dropped_samples` count them.

    Raises HarnessError (one line with its fix) for a row it cannot use (FixtureError), a cell the rules declare
    N/A (CellNotApplicable), a template that fails to render or whose own render of a finished turn disagrees with
    the rules (TemplateDriftError), and UndecidedRule for a rule the template does not decide. Samples are ordered
    by the turn they end with; `Samples.report` says, per turn, where it is trained and what the reference noted
    (e.g. reasoning in the data that a mode which does not think drops).
    """
    target = resolve(tokenizer, model)
    conv = parse(messages, tools)
    mode = think_of(target.family, think)
    server = served.for_conversation(served_by, target.tokenizer, target.family, mode, conv)
    result = reference(target.tokenizer, conv, target.family, mode, policy_of(policy), server)
    _agrees_with_the_template(target, result)
    return assemble(target.tokenizer, result, max_length)


def _agrees_with_the_template(target: Target, result: Preprocessed) -> None:
    """The template's own render of each finished turn must agree with its plan (invariant 7, the oracle): a
    tokenizer whose template is not the one its rules were written for raises, instead of training the rules'
    format where the template writes another."""
    for plan in result.plans:
        if plan.disagrees:
            raise TemplateDriftError(
                f"{target.name} turn {plan.turn}: {plan.oracle.describe()}",
                "the tokenizer's template is not the one these rules describe: pass `model=` for its registered "
                "rules, or give it a name the harness does not know so its rules are derived from this template",
            )


def parse(messages: Sequence[Mapping[str, Any]] | Mapping[str, Any], tools: Sequence[Mapping[str, Any]] | None) -> Any:
    """The canonical conversation of a message list or a row (nulls of a columnar row read as absent)."""
    data = without_nulls(dict(messages) if isinstance(messages, Mapping) else list(messages))
    if tools is not None:
        data = {**(data if isinstance(data, dict) else {"messages": data}), "tools": list(tools)}
    return conversations.parse(data, name="conversation", source="build_samples")


def policy_of(policy: str) -> Policy:
    if policy not in tuple(Policy):
        raise HarnessError(
            f"policy={policy!r}", "pass policy='all' (every assistant turn) or policy='last' (the final one)"
        )
    return Policy(policy)


def think_of(family: Family, think: str | bool | None) -> Think:
    if isinstance(think, bool):
        return Think.ON if think else Think.OFF
    if think is not None:
        if think not in tuple(Think):
            raise HarnessError(f"think={think!r}", "pass think='on' or think='off' (True/False)")
        return Think(think)
    modes = [t for t in Think if not isinstance(family.mode(t), NotApplicable)]
    if len(modes) != 1:
        raise HarnessError(
            f"{family.title} has {'two think modes' if modes else 'no think mode'}",
            "pass think='on' or think='off': the mode your server is asked for",
        )
    return modes[0]


# --- the model's rules -------------------------------------------------------------------------------------------


def resolve(tokenizer: Any, model: str | None = None) -> Target:
    """The tokenizer and its rules: by name, or for a loaded tokenizer by `model`, its folder, hub id or bundled
    file; any other tokenizer gets rules derived from its template."""
    if isinstance(tokenizer, str):
        loaded = source.load(tokenizer)
        return Target(loaded.spec.name, loaded.tokenizer, _family(loaded.spec, loaded.tokenizer))
    # kept with its tokenizer, so ids stay unique; a template set on the tokenizer since gets its rules anew
    template = named.text(getattr(tokenizer, "chat_template", None))
    loaded = named.as_loaded(tokenizer)
    if loaded is not None and named.text(loaded) != template:
        raise TemplateChangedError(template, named.text(loaded))
    key = (id(tokenizer), model, template)
    if key not in _TARGETS or _TARGETS[key].tokenizer is not tokenizer:
        spec = source.get_model(model) if model else _spec_of(tokenizer)
        _TARGETS[key] = Target(spec.name, tokenizer, _family(spec, tokenizer))
    return _TARGETS[key]


_TARGETS: dict[tuple[int, str | None, str], Target] = memo.kept({})


def _spec_of(tokenizer: Any) -> source.ModelSpec:
    where = str(getattr(tokenizer, "name_or_path", "") or "")
    bundled_file = Path(str(getattr(tokenizer, "mistral_common_file", "") or "")).name
    for spec in source.registry().values():
        if bundled_file and spec.files and spec.files[0].name == bundled_file:
            return spec
        if where and (where.lower() in (spec.name.lower(), spec.hub_repo.lower()) or Path(where).name == spec.pack_dir):
            return spec
    name = Path(where).name if where else "tokenizer"
    return source.ModelSpec(name, f"local/{name}", None, "", (), None, None, builtin=False)


def _family(spec: source.ModelSpec, tokenizer: Any) -> Family:
    registered = registry.registered_rules(spec)
    if registered is not None:
        return registered
    return _derived(spec, tokenizer).family


def _derived(spec: source.ModelSpec, tokenizer: Any) -> Derivation:
    """The derivation of a template, or UndecidedRule for the first rule it cannot decide."""
    try:
        found = _derivation(spec, tokenizer, named.text(tokenizer.chat_template))
    except UNDECIDED_ERRORS as exc:
        raise UndecidedRule(
            spec.name, "think", f"derivation cannot read the template ({exc})", CONFIG_LINES["think.on"]
        ) from None
    for finding in found.undecided:
        raise UndecidedRule(
            spec.name,
            finding.rule,
            finding.note or "no render decides it",
            CONFIG_LINES.get(finding.rule, f"{finding.rule} = ..."),
        )
    return found


@memo.kept
@cache
def _derivation(spec: source.ModelSpec, tokenizer: Any, template: str) -> Derivation:
    """Cached per template text as well: a template set on the tokenizer since is derived anew."""
    from chat_template_harness.models.rules import derive

    eos = derive.eos_tokens(tokenizer, registry.generation_config(spec, tokenizer))
    return derive.derive(tokenizer, spec.name, eos)


# --- samples from the reference ----------------------------------------------------------------------------------


def assemble(tokenizer: Any, result: Preprocessed, max_length: int | None) -> Samples:
    """The reference's samples as TrainingSamples, each cut back to its longest run of whole turns that fits."""
    lengths = {p.turn: len(token_ids(tokenizer, p.text)) for p in result.plans} if max_length is not None else {}
    kept: list[tuple[Any, int, tuple[int, ...]]] = []  # (sample, tokens kept, turns kept)
    dropped_samples = 0
    for sample in result.samples:
        fits = tuple(t for t in sample.turns if max_length is None or lengths[t] <= max_length)
        if not fits:
            dropped_samples += 1
            continue
        kept.append((sample, lengths[fits[-1]] if fits != sample.turns else len(sample.input_ids), fits))
    where = {t: i for i, (_, _, turns) in enumerate(kept) for t in turns}
    report = tuple(_turn_report(r, where, result, kept) for r in result.report)
    out = [_sample(s, n, [report[t] for t in turns]) for s, n, turns in kept]
    return Samples(out, report, dropped_samples)


def _turn_report(r: Any, where: dict[int, int], result: Preprocessed, kept: list[Any]) -> TurnReport:
    trained = r.turn in where
    status = "trained" if trained else DROPPED if r.sample >= 0 else "not trained: policy last"
    shared = trained and kept[where[r.turn]][2][-1] != r.turn
    return TurnReport(
        r.turn,
        r.message_index,
        where.get(r.turn, -1),
        status,
        r.prompt_tokens,
        shared,
        r.split_reason if trained else "",
        r.notes,
    )


def _sample(sample: Any, n: int, turns: list[TurnReport]) -> TrainingSample:
    ids, mask = sample.input_ids[:n], sample.loss_mask[:n]
    return TrainingSample(ids, labels_of(ids, mask), mask, tuple(turns))


def labels_of(ids: Sequence[int], mask: Sequence[int]) -> tuple[int, ...]:
    """The id where the mask is 1, IGNORE_INDEX where it is 0: copied run by run (a sample's trained tokens lie in
    a few runs), not token by token."""
    labels = [IGNORE_INDEX] * len(ids)
    flags = bytes(mask)  # the reference's 0/1 flags, searched in C
    start = flags.find(1)
    while start >= 0:
        end = flags.find(0, start)
        end = len(flags) if end < 0 else end
        labels[start:end] = ids[start:end]
        start = flags.find(1, end)
    return tuple(labels)


# --- the plug-in interface (`cth check chat_template_harness.build:preprocess`) ----------------------------------


def preprocess(request: Any) -> list[dict[str, Any]]:
    """build_samples behind the plug-in interface: what `cth check` and the conformance page run.

    Returns ids and labels only, so the check reads the trained positions off the label ids (a wrong label id
    fails the cell). The request's messages are the data as sent: a mode's system flag is the server's, not the
    data's, so it is taken off again here (build_samples adds it as the server does)."""
    target = resolve(request.tokenizer, request.model)
    mode = target.family.mode(Think(request.think))
    flag = "" if isinstance(mode, NotApplicable) else mode.system_flag
    row = {"messages": _without_flag(request.messages, flag), "tools": request.tools or []}
    samples = build_samples(request.tokenizer, row, think=request.think, model=request.model)
    return [{"input_ids": list(s.input_ids), "labels": list(s.labels)} for s in samples]


def _without_flag(messages: Sequence[Mapping[str, Any]], flag: str) -> list[Mapping[str, Any]]:
    if not flag or not messages or messages[0].get("role") != "system":
        return list(messages)
    content = str(messages[0].get("content", ""))
    if content == flag:
        return list(messages[1:])
    return [{**messages[0], "content": content.removesuffix(f"\n{flag}")}, *messages[1:]]
