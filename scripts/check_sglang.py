"""Check the harness's SGLang profile against SGLang's own functions: `nox -s servers` runs it.

SGLang's wheel is downloaded `--no-deps` (never installed). Its chat path's normalisation lives in
sglang/srt/entrypoints/openai/serving_chat.py, a module that imports the whole serving stack (torch, the
tokenizer manager, multimodal processors); the three functions the template path calls on a request's messages
are taken from its source alone, unchanged, and run with what they use (orjson, typing.Any):
`normalize_assistant_tool_call_arguments` (with `parse_tool_call_arguments`, strict as for every template but
Kimi-K3's) and `normalize_tool_content`. Each runs on messages as clients send them, well and badly formed, and
the profile (serving/profiles.py, "sglang") must do the same: the same messages, or an error where SGLang raises.

usage: python scripts/check_sglang.py SGLANG_WHEEL
"""

from __future__ import annotations

import ast
import copy
import sys
import zipfile
from pathlib import Path
from typing import Any

SERVING_CHAT = "sglang/srt/entrypoints/openai/serving_chat.py"
FUNCTIONS = ("parse_tool_call_arguments", "normalize_assistant_tool_call_arguments", "normalize_tool_content")
# tool-call arguments as clients send them, well and badly formed
ARGUMENTS = ['{"city": "Paris"}', "not json", "[]", "42", "", None, {"city": "Paris"}]
# a tool result's content as clients send it
TOOL_CONTENT = ["21C", [{"type": "text", "text": "21C"}, {"type": "text", "text": "sunny"}], ["21C", {"type": "text", "text": "x"}]]


def sglang_functions(wheel: Path) -> dict[str, Any]:
    import orjson

    source = zipfile.ZipFile(wheel).read(SERVING_CHAT).decode("utf-8")
    nodes = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name in FUNCTIONS]
    assert {n.name for n in nodes} == set(FUNCTIONS), f"{SERVING_CHAT} no longer defines {FUNCTIONS}"
    namespace: dict[str, Any] = {"orjson": orjson, "Any": Any}
    exec(compile(ast.Module(nodes, []), SERVING_CHAT, "exec"), namespace)  # noqa: S102 - SGLang's own code, unchanged
    return namespace


def _sglang(functions: dict[str, Any], request: list[dict]) -> list[dict] | str:
    """The template path (`_apply_jinja_template`): arguments parsed in place, then each tool result's content."""
    messages = copy.deepcopy(request)
    try:
        for message in messages:
            functions["normalize_assistant_tool_call_arguments"](message, strict=True)
        for message in messages:
            message["content"] = functions["normalize_tool_content"](message["role"], message.get("content"))
    except ValueError:
        return "raises"
    return messages


def _ours(request: list[dict]) -> list[dict] | str:
    from chat_template_harness.errors import HarnessError
    from chat_template_harness.serving import profiles

    try:
        return profiles.get("sglang").normalise(copy.deepcopy(request))
    except HarnessError:
        return "raises"


def main(argv: list[str]) -> int:
    functions = sglang_functions(Path(argv[0]))
    requests = [
        [{"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": args}}]}] for args in ARGUMENTS
    ] + [[{"role": "tool", "tool_call_id": "call_1", "content": content}] for content in TOOL_CONTENT]
    differ = 0
    for request in requests:
        theirs, ours = _sglang(functions, request), _ours(request)
        if theirs != ours:
            differ += 1
            print(f"DIFFERS {request}: ours {ours!r} SGLang {theirs!r}")
    print(f"SGLang {Path(argv[0]).name} {SERVING_CHAT} against the sglang profile: {len(requests)} message forms, "
          f"{len(requests) - differ} equal, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
