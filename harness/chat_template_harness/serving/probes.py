"""Server probes: chat requests that show where servers part, beyond what the matrix's fixtures send.

A probe (data/server_probes.json) is an OpenAI chat request as a client sends it (content parts, request options
such as `continue_final_message`) and what it shows. The contract's side (transformers) reads its messages as the
harness reads any conversation (contract/conversation.py: text parts joined with a newline, arguments as objects)
and renders them with the family's template; a server's side is the request as sent, through the server's
profile (serving/served.py `request_ids`). The prompt compared is the one served before the last assistant
message, or with `"serve": "whole"` the request as it stands, its last assistant message included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from chat_template_harness.contract import conversation
from chat_template_harness.contract.render import render, template_messages
from chat_template_harness.errors import HarnessError
from chat_template_harness.models.rules import Family, ThinkMode
from chat_template_harness.serving import profiles, served


@dataclass(frozen=True)
class Probe:
    name: str
    shows: str
    messages: tuple[Mapping[str, Any], ...]  # as the client sends them
    tools: tuple[Mapping[str, Any], ...]
    whole: bool  # serve the request as it stands (its last assistant message included)
    options: served.Options
    conversation: conversation.Conversation  # the messages as the harness reads them


def _probe(raw: Mapping[str, Any]) -> Probe:
    name = raw["name"]
    conv = conversation.parse(raw, name=f"probe:{name}", source="data/server_probes.json")
    return Probe(
        name,
        raw["shows"],
        tuple(raw["messages"]),
        tuple(raw.get("tools", ())),
        raw.get("serve") == "whole",
        served.Options(**raw.get("options", {})),
        conv,
    )


@cache
def probes() -> tuple[Probe, ...]:
    text = resources.files("chat_template_harness").joinpath("data/server_probes.json").read_text("utf-8")
    return tuple(_probe(raw) for raw in json.loads(text))


def prompt_ids(probe: Probe, profile: profiles.Profile, tokenizer: Any, family: Family, mode: ThinkMode) -> list[int]:
    """The ids `profile` serves for the probe's request."""
    msgs = template_messages(probe.conversation, family, mode)
    cut = len(msgs) if probe.whole else probe.conversation.assistant_indices[-1]
    if family.renderer == "mistral-common":
        if probe.whole or probe.options != served.Options():
            raise HarnessError(
                f"mistral-common serving probe:{probe.name} (a request served as it stands, or with "
                f"{probe.options}) is not modelled by the harness",
                "compare this request on a family served through its template",
            )
        return served.prompt_ids(profile, tokenizer, msgs[:cut], probe.tools, family, mode)
    if profile.name == "transformers":  # the contract: the harness's messages, never a client's option
        prefill = probe.options.continue_final_message
        text = render(
            tokenizer,
            msgs[:cut],
            family=family,
            mode=mode,
            tools=probe.tools,
            add_generation_prompt=not prefill,
            continue_final_message=prefill,
        )
        ids: list[int] = tokenizer.encode(text, add_special_tokens=False)
        return ids
    request = profiles.to_request(list(probe.messages[:cut]), family.reasoning_field)
    return served.request_ids(profile, tokenizer, request, probe.tools, family, mode, probe.options)
