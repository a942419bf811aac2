"""Check the harness's vLLM profile against vLLM's own functions: `nox -s servers` runs it.

vLLM's wheel is downloaded `--no-deps` (never installed); its harmony_utils.py is imported unchanged with only
the imports that need the rest of vLLM (or the openai client) stubbed: vllm.envs (the two settings it reads,
at their defaults but for a pinned start date), vllm.logger, vllm.exceptions, the chat request's tool class,
and openai's Responses Tool type (used only in annotations and isinstance). Then every gpt-oss fixture's
every served prompt goes through vLLM's functions in the order vllm/renderers/online_renderer.py calls them
and through serving/harmony.py; the ids must be equal. The template path's tool-argument rule is checked the
same way against vLLM's `_postprocess_messages` (that function's source alone: its module imports the
multimodal stack), on arguments as clients send them, well and badly formed.

usage: python scripts/check_vllm_harmony.py VLLM_WHEEL
"""

from __future__ import annotations

import sys
import tempfile
import types
import zipfile
from pathlib import Path

HARMONY_UTILS = "vllm/entrypoints/openai/parser/harmony_utils.py"
CHAT_MESSAGE = "vllm/renderers/chat_utils/chat_message.py"
# tool-call arguments as clients send them, well and badly formed
ARGUMENTS = ['{"city": "Paris"}', "not json", "[]", "42", "", None, {"city": "Paris"}]


def _stub(name: str, **attrs: object) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module


class ToolsParam:
    """The chat request's tool as vLLM's pydantic model exposes it (`.type`, `.function.name`, …)."""

    def __init__(self, tool: dict) -> None:
        self.type = tool["type"]
        self.function = types.SimpleNamespace(**{"description": None, "parameters": None, **tool["function"]})


def load_vllm_harmony_utils(wheel: Path, date: str) -> types.ModuleType:
    import logging

    for name in (
        "vllm",
        "vllm.entrypoints",
        "vllm.entrypoints.openai",
        "vllm.entrypoints.openai.parser",
        "vllm.entrypoints.openai.chat_completion",
        "openai",
        "openai.types",
        "openai.types.responses",
    ):
        _stub(name, __path__=[])
    _stub("vllm.envs", VLLM_GPT_OSS_HARMONY_SYSTEM_INSTRUCTIONS=False, VLLM_SYSTEM_START_DATE=date)
    _stub("vllm.logger", init_logger=logging.getLogger)
    _stub("vllm.exceptions", VLLMValidationError=type("VLLMValidationError", (ValueError,), {}))
    _stub("vllm.entrypoints.openai.chat_completion.protocol", ChatCompletionToolsParam=ToolsParam)
    _stub("openai.types.responses.tool", Tool=type("Tool", (), {}))
    source = zipfile.ZipFile(wheel).read(HARMONY_UTILS).decode("utf-8")
    module = types.ModuleType("vllm.entrypoints.openai.parser.harmony_utils")
    module.__file__ = str(Path(tempfile.gettempdir()) / HARMONY_UTILS)
    sys.modules[module.__name__] = module
    exec(compile(source, HARMONY_UTILS, "exec"), module.__dict__)  # noqa: S102 - vLLM's own code, unchanged
    return module


def vllm_prompt_ids(vllm: types.ModuleType, request: list[dict], tools: list[dict]) -> list[int]:
    """What _make_request_with_harmony does with a chat request (reasoning_content already copied to reasoning)."""
    instructions, rest = vllm.extract_instructions_from_messages(request)
    messages = vllm.build_harmony_preamble(
        instructions=instructions,
        tools=[ToolsParam(t) for t in tools] or None,
        reasoning_effort=None,
        with_custom_tools=True,
    )
    messages.extend(vllm.parse_chat_inputs_to_harmony_messages(rest))
    return vllm.render_for_completion(messages)


def vllm_postprocess(wheel: Path):
    """vLLM's `_postprocess_messages` (the template path's tool-argument rule), its source unchanged, alone: the
    module around it imports the multimodal stack; this function needs only json, a logger and vLLM's error."""
    import ast
    import json
    import logging

    source = zipfile.ZipFile(wheel).read(CHAT_MESSAGE).decode("utf-8")
    node = next(
        n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "_postprocess_messages"
    )
    namespace = {
        "json": json,
        "logger": logging.getLogger("vllm"),
        "ConversationMessage": dict,
        "VLLMValidationError": sys.modules["vllm.exceptions"].VLLMValidationError,
    }
    exec(compile(ast.Module([node], []), CHAT_MESSAGE, "exec"), namespace)  # noqa: S102 - vLLM's own code, unchanged
    return namespace["_postprocess_messages"]


def check_arguments(wheel: Path) -> int:
    import copy

    from chat_template_harness.serving import profiles

    postprocess = vllm_postprocess(wheel)
    differ = 0
    for args in ARGUMENTS:
        request = [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": args}}],
            }
        ]
        theirs = copy.deepcopy(request)
        postprocess(theirs)
        ours = profiles.get("vllm").normalise(request)
        if ours[0]["tool_calls"][0]["function"]["arguments"] != theirs[0]["tool_calls"][0]["function"]["arguments"]:
            differ += 1
            print(
                f"DIFFERS arguments {args!r}: ours {ours[0]['tool_calls'][0]['function']['arguments']!r} "
                f"vLLM {theirs[0]['tool_calls'][0]['function']['arguments']!r}"
            )
    empty = [{"role": "assistant", "content": "x", "tool_calls": []}]
    theirs = copy.deepcopy(empty)
    postprocess(theirs)
    if ("tool_calls" in theirs[0]) != ("tool_calls" in profiles.get("vllm").normalise(empty)[0]):
        differ += 1
        print("DIFFERS an empty tool_calls list")
    print(
        f"vLLM {CHAT_MESSAGE} _postprocess_messages against the vllm profile: {len(ARGUMENTS) + 1} argument "
        f"forms, {len(ARGUMENTS) + 1 - differ} equal, {differ} differ"
    )
    return differ


def main(argv: list[str]) -> int:
    from chat_template_harness.contract import conversation
    from chat_template_harness.contract.render import PINNED_CLOCK, template_messages
    from chat_template_harness.models import source
    from chat_template_harness.models.rules.registry import family_for
    from chat_template_harness.serving import harmony, profiles

    date = PINNED_CLOCK.strftime("%Y-%m-%d")
    vllm = load_vllm_harmony_utils(Path(argv[0]), date)
    loaded = source.load("gpt-oss-20b")
    fam = family_for(loaded.spec, loaded.tokenizer)
    checked = differ = 0
    for name in conversation.fixture_names():
        conv = conversation.fixture(name)
        msgs = template_messages(conv, fam, fam.on)
        for k, index in enumerate(conv.assistant_indices):
            # the request as sent (arguments stay a JSON string on this path), reasoning_content copied to reasoning
            request = [
                {**m, **({"reasoning": m["reasoning_content"]} if "reasoning_content" in m else {})}
                for m in profiles.to_request(msgs[:index], fam.reasoning_field)
            ]
            theirs = vllm_prompt_ids(vllm, request, list(conv.tools))
            ours = harmony.prompt_ids(profiles.to_request(msgs[:index], fam.reasoning_field), conv.tools, date=date)
            checked += 1
            if ours != theirs:
                differ += 1
                at = next(
                    (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
                    min(len(ours), len(theirs)),
                )
                print(
                    f"DIFFERS {name} turn {k} at token {at}: ours {loaded.tokenizer.decode(ours[at - 5 : at + 5])!r} "
                    f"vLLM {loaded.tokenizer.decode(theirs[at - 5 : at + 5])!r}"
                )
    print(
        f"vLLM {Path(argv[0]).name} harmony_utils.py against serving/harmony.py: {checked} gpt-oss served prompts, "
        f"{checked - differ} equal, {differ} differ"
    )
    differ += check_arguments(Path(argv[0]))
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
