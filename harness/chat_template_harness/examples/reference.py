"""The harness's own reference preprocessor behind the plug-in interface: `cth check` passes it on every cell."""

from __future__ import annotations

from typing import Any

from chat_template_harness.contract import conversation
from chat_template_harness.contract.sample import Policy
from chat_template_harness.contract.sample import preprocess as reference_preprocess
from chat_template_harness.models import source
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family_for


def preprocess(request: Any) -> list[dict[str, Any]]:
    conv = conversation.parse(
        {"messages": request.messages, "tools": request.tools or []}, name="request", source="request"
    )
    fam = family_for(source.get_model(request.model))
    result = reference_preprocess(request.tokenizer, conv, fam, Think(request.think), Policy.ALL)
    return [{"input_ids": list(s.input_ids), "loss_mask": list(s.loss_mask)} for s in result.samples]
