"""The served prompt of a real server in the contract: `--served-by vllm|sglang` on the commands that make samples.

A profile's prompt replaces the template's in every turn plan; the generated span stays the template's (it is
what the model writes, whoever serves the prompt). Where the server renders to ids (harmony), the prompt is
those ids decoded, and it must tokenize back to exactly those ids (invariant 4, as the contract reads it for an
id-native renderer: the sample's ids equal the server's); a tokenizer where that fails is an error, not a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chat_template_harness.contract.compare import first_difference
from chat_template_harness.contract.conversation import Conversation
from chat_template_harness.contract.render import render
from chat_template_harness.contract.sample import resolve_mode
from chat_template_harness.contract.tokens import encode
from chat_template_harness.errors import HarnessError
from chat_template_harness.models import userconfig
from chat_template_harness.models.rules import Family, Think, ThinkMode
from chat_template_harness.models.rules.pinned import PINNED_CLOCK
from chat_template_harness.serving import harmony, mistral, profiles

SERVERS = tuple(profiles.PROFILES)


class Served:
    """A ServedPrompt (contract/turns.py) for one profile, cell and mode."""

    def __init__(
        self,
        profile: profiles.Profile,
        tokenizer: Any,
        family: Family,
        mode: ThinkMode,
        tools: Sequence[Mapping[str, Any]],
    ) -> None:
        self.profile, self.tokenizer, self.family, self.mode, self.tools = profile, tokenizer, family, mode, tools

    def ids(self, msgs: list[dict[str, Any]]) -> list[int]:
        return prompt_ids(self.profile, self.tokenizer, msgs, self.tools, self.family, self.mode)

    def finished(self, msgs: list[dict[str, Any]], sample_text: str) -> None:
        """An id-native renderer that encodes finished turns (mistral-common): the sample (served prompt + the
        template's generated span) must be the library's own encoding of the conversation through that turn."""
        if self.family.renderer != "mistral-common":
            return
        path = mistral.file_of(self.tokenizer)
        assert path is not None, "prompt_ids served this conversation's prompt from the same file (it raises on none)"
        request = profiles.to_request(msgs, self.family.reasoning_field)
        ids = mistral.prompt_ids(path, request, self.tools, finished=True)
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        if text != sample_text:
            at = first_difference(text, sample_text)
            raise HarnessError(
                f"mistral-common writes this finished turn otherwise than the template: from character {at}, "
                f"{text[at : at + 30]!r} against {sample_text[at : at + 30]!r}",
                "the template is not the served model's: regenerate it from the tokenizer file",
            )
        ours = encode(self.tokenizer, sample_text)[0]
        if ours != ids:
            at, theirs, mine = self._parting(ids, ours)
            raise HarnessError(
                f"mistral-common encodes this finished turn as other ids than its text's tokenization: from token "
                f"{at}, {theirs} against {mine}",
                "check the tokenizer splits text as the library does, or declare the conversation's feature N/A",
            )

    def _parting(self, ids: list[int], other: list[int]) -> tuple[int, list[str], list[str]]:
        """Where two id lists part, and three tokens of each from there."""
        at = first_difference(ids, other)
        return (
            at,
            self.tokenizer.convert_ids_to_tokens(ids[at : at + 3]),
            self.tokenizer.convert_ids_to_tokens(other[at : at + 3]),
        )

    def __call__(self, msgs: list[dict[str, Any]], template_prompt: str) -> str:
        ids = self.ids(msgs)
        text: str = self.tokenizer.decode(ids, skip_special_tokens=False)
        again = encode(self.tokenizer, text)[0]
        if again != ids:
            at, served, retokenized = self._parting(ids, again)
            raise HarnessError(
                f"{self.profile.name} serves ids that are not the tokenization of their own text on this tokenizer "
                f"(from token {at}: served {served}, the text tokenizes to {retokenized})",
                "check the tokenizer is the model's (its vocabulary and splitting must be the server's), or declare "
                "the conversation's feature N/A in the family's rules",
            )
        return text


def prompt_ids(
    profile: profiles.Profile,
    tokenizer: Any,
    msgs: list[dict[str, Any]],
    tools: Sequence[Mapping[str, Any]],
    family: Family,
    mode: ThinkMode,
) -> list[int]:
    """The ids `profile` serves for the messages before an assistant turn (the harness's template messages, sent
    as an OpenAI client sends them)."""
    if family.renderer == "mistral-common":  # every server: mistral-common's ids (serving/mistral.py)
        request = profiles.to_request(msgs, family.reasoning_field)
        if profile.name == "vllm":
            request = mistral.truncated_ids(request)
        path = mistral.file_of(tokenizer)
        if path is None:
            raise HarnessError(
                f"{family.title} is served by mistral-common, but this tokenizer is not one of its files",
                "load the model from mistral-common's bundled file (a built-in Mistral model)",
            )
        return mistral.prompt_ids(path, request, tools)
    if profile.name == "transformers":
        text = render(tokenizer, msgs, family=family, mode=mode, tools=tools, add_generation_prompt=True)
        ids: list[int] = tokenizer.encode(text, add_special_tokens=False)
        return ids
    return request_ids(profile, tokenizer, profiles.to_request(msgs, family.reasoning_field), tools, family, mode)


@dataclass(frozen=True)
class Options:
    """A chat request's options beyond its messages (`cth servers`' probes)."""

    continue_final_message: bool = False  # sent with add_generation_prompt: false
    add_special_tokens: bool = False

    def __str__(self) -> str:
        return ", ".join(f"{k}: true" for k, v in vars(self).items() if v) or "no options"


def request_ids(
    profile: profiles.Profile,
    tokenizer: Any,
    request: profiles.Request,
    tools: Sequence[Mapping[str, Any]],
    family: Family,
    mode: ThinkMode,
    options: Options = Options(),
) -> list[int]:
    """The ids a server (vllm, sglang) serves for an OpenAI chat request, as its profile says it normalises,
    renders and tokenizes it."""
    if family.name in profile.native_encoders:
        raise HarnessError(
            f"{profile.native_encoders[family.name]}: the harness does not model that encoder",
            "compare this family under transformers (its Jinja template), or add the encoder as an "
            "id-native renderer (as serving/mistral.py does for mistral-common)",
        )
    if family.name in profile.harmony_families:  # the request as sent: the template path's normalisation is not run
        if options != Options():
            raise HarnessError(
                f"{profile.name}'s harmony path with {options} is not modelled by the harness",
                "compare this request on a family served through its template",
            )
        effort = mode.kwargs.get("reasoning_effort") or family.template_kwargs.get("reasoning_effort")
        return harmony.prompt_ids(request, tools, effort=effort, date=PINNED_CLOCK.strftime("%Y-%m-%d"))
    request, prefix = profiles.last_assistant(profile, profile.normalise(request), options.continue_final_message)
    in_template = options.continue_final_message and prefix is None
    text = render(
        tokenizer,
        profiles.as_template_messages(request, family.reasoning_field, family.content_format),
        family=family,
        mode=mode,
        tools=tools,
        add_generation_prompt=not in_template,
        continue_final_message=in_template,
    )
    ids = tokenizer.encode(text, add_special_tokens=options.add_special_tokens and profile.client_special_tokens)
    return with_prefix(tokenizer, ids, prefix) if prefix else ids


def with_prefix(tokenizer: Any, ids: list[int], prefix: str) -> list[int]:
    """SGLang's prefill: the prefix tokenized on its own (the tokenizer's default call, as the server makes it),
    a leading BOS dropped, appended to the prompt's ids (serving_chat.py `_append_assistant_prefix_to_prompt_ids`)."""
    appended: list[int] = tokenizer.encode(prefix)
    return ids + (appended[1:] if appended and appended[0] == tokenizer.bos_token_id else appended)


def served_by(
    name: str, tokenizer: Any, family: Family, mode: ThinkMode, tools: Sequence[Mapping[str, Any]]
) -> Served | None:
    """The ServedPrompt for `--served-by NAME`; None for transformers (the contract's own) over a Jinja template.
    A family rendered by mistral-common is served by its ids under every name, transformers included."""
    if name == "transformers" and family.renderer == "template":
        return None
    return Served(profiles.get(name), tokenizer, family, mode, tools)


def for_conversation(
    name: str, tokenizer: Any, family: Family, think: Think, conversation: Conversation
) -> Served | None:
    """The ServedPrompt for one conversation (its mode resolved as the reference resolves it; N/A raises there)."""
    if name == "transformers" and family.renderer == "template":
        return None
    return served_by(name, tokenizer, family, resolve_mode(family, think, conversation), conversation.tools)


def chosen(flag: str | None) -> str:
    """The server a command replays: the flag, else `[tool.cth] served_by`, else transformers (the contract's)."""
    return flag or userconfig.served_by() or "transformers"
