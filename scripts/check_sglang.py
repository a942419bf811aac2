"""Check the harness's SGLang profile against SGLang's own functions: `nox -s servers` runs it.

SGLang's wheel is downloaded `--no-deps` (never installed). Its chat path's normalisation lives in
sglang/srt/entrypoints/openai/serving_chat.py, a module that imports the whole serving stack (torch, the
tokenizer manager, multimodal processors); the three functions the template path calls on a request's messages
are taken from its source alone, unchanged, and run with what they use (orjson, typing.Any):
`normalize_assistant_tool_call_arguments` (with `parse_tool_call_arguments`, strict as for every template but
Kimi-K3's) and `normalize_tool_content`. Each runs on messages as clients send them, well and badly formed, and
the profile (serving/profiles.py, "sglang") must do the same: the same messages, or an error where SGLang raises.
Two methods of its chat server class are taken the same way and run with a stand-in `self` holding a pack
tokenizer: `_handle_last_assistant_message` (a prefill cut off, a trailing assistant message sent as a user's)
against `profiles.last_assistant`, and `_append_assistant_prefix_to_prompt_ids` against `served.with_prefix`.
Last, the profile's gpt-oss rule (its Jinja template, not harmony): SGLang's own `resolve_chat_encoding_spec`
(chat_encoding.py, run unchanged) gives gpt-oss no native encoder, and the class's source shows that the module
imports no harmony library, that no method of the render path (`_apply_jinja_template` and every method it
calls, transitively) reads `is_gpt_oss`, and that `_process_messages` reads it only to keep special tokens.

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
CHAT_ENCODING = "sglang/srt/entrypoints/openai/chat_encoding.py"
FUNCTIONS = ("parse_tool_call_arguments", "normalize_assistant_tool_call_arguments", "normalize_tool_content")
METHODS = ("_handle_last_assistant_message", "_append_assistant_prefix_to_prompt_ids")
# tool-call arguments as clients send them, well and badly formed
ARGUMENTS = ['{"city": "Paris"}', "not json", "[]", "42", "", None, {"city": "Paris"}]
# a tool result's content as clients send it
TOOL_CONTENT = [
    "21C",
    [{"type": "text", "text": "21C"}, {"type": "text", "text": "sunny"}],
    ["21C", {"type": "text", "text": "x"}],
]


def sglang_functions(wheel: Path) -> dict[str, Any]:
    import orjson

    source = zipfile.ZipFile(wheel).read(SERVING_CHAT).decode("utf-8")
    tree = ast.parse(source).body
    nodes = [n for n in tree if isinstance(n, ast.FunctionDef) and n.name in FUNCTIONS]
    nodes += [
        m
        for c in tree
        if isinstance(c, ast.ClassDef)
        for m in c.body
        if isinstance(m, ast.FunctionDef) and m.name in METHODS
    ]
    assert {n.name for n in nodes} == {*FUNCTIONS, *METHODS}, f"{SERVING_CHAT} no longer defines {FUNCTIONS + METHODS}"
    # the names the methods' annotations and isinstance check read: none of them is ours to model
    namespace: dict[str, Any] = {
        "orjson": orjson,
        "Any": Any,
        "ChatCompletionRequest": Any,
        "ResponseTemplateReasoningDetector": type("NotThisDetector", (), {}),
    }
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


# requests whose last message may be the assistant's, as clients send them
LAST_MESSAGES = [
    [{"role": "user", "content": "Say hello."}, {"role": "assistant", "content": "Hello"}],
    [{"role": "user", "content": "Say hello."}, {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]}],
    [{"role": "user", "content": "Say hello."}],
]


def _last_messages(functions: dict[str, Any]) -> int:
    """SGLang's `_handle_last_assistant_message` against `profiles.last_assistant`; returns how many differ."""
    from types import SimpleNamespace

    from chat_template_harness.serving import profiles

    differ = 0
    for request in LAST_MESSAGES:
        for prefill in (False, True):
            theirs = functions["_handle_last_assistant_message"](
                None, copy.deepcopy(request), SimpleNamespace(continue_final_message=prefill)
            )
            ours = profiles.last_assistant(profiles.get("sglang"), copy.deepcopy(request), prefill)
            if tuple(theirs) != tuple(ours):
                differ += 1
                print(
                    f"DIFFERS last message {request} continue_final_message={prefill}: ours {ours!r} SGLang {theirs!r}"
                )
    return differ


def _prefixes(functions: dict[str, Any]) -> tuple[int, int]:
    """SGLang's `_append_assistant_prefix_to_prompt_ids` against `served.with_prefix` on pack tokenizers with and
    without a BOS; returns (compared, differ)."""
    from types import SimpleNamespace

    from chat_template_harness.models import source
    from chat_template_harness.serving import served

    compared = differ = 0
    for model in ("qwen3-8b", "llama-3.1-8b", "gemma-3-4b"):
        tokenizer = source.load(model).tokenizer
        server = SimpleNamespace(tokenizer_manager=SimpleNamespace(tokenizer=tokenizer), _reasoning_detector=None)
        for prefix in ("The colour is", " leading space", "<think>\nLet me"):
            compared += 1
            theirs = functions["_append_assistant_prefix_to_prompt_ids"](server, [1, 2], prefix)
            if theirs != served.with_prefix(tokenizer, [1, 2], prefix):
                differ += 1
                print(f"DIFFERS prefix {prefix!r} on {model}: SGLang {theirs}")
    return compared, differ


def _reads(node: ast.AST, attribute: str) -> int:
    return sum(isinstance(n, ast.Attribute) and n.attr == attribute for n in ast.walk(node))


def _self_calls(method: ast.AST) -> set[str]:
    return {
        n.func.attr
        for n in ast.walk(method)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "self"
    }


def _chat_methods(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "OpenAIServingChat")
    return {f.name: f for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}


def gpt_oss_path(source: str) -> list[str]:
    """Where SGLang's chat path could render gpt-oss otherwise than through its Jinja template (none: [])."""
    tree = ast.parse(source)
    problems = [
        f"imports {n.module}"
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module and "harmony" in n.module
    ]
    problems += [
        f"imports {a.name}" for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names if "harmony" in a.name
    ]
    methods = _chat_methods(tree)
    path: set[str] = set()
    todo = ["_apply_jinja_template"]
    while todo:
        name = todo.pop()
        if name in methods and name not in path:
            path.add(name)
            todo += sorted(_self_calls(methods[name]))
    problems += [
        f"{name} (render path) reads is_gpt_oss" for name in sorted(path) if _reads(methods[name], "is_gpt_oss")
    ]
    process = methods["_process_messages"]
    allowed = sum(
        _reads(n.test, "is_gpt_oss")
        for n in ast.walk(process)
        if isinstance(n, ast.If)
        and all(
            isinstance(s, ast.Assign) and [ast.unparse(t) for t in s.targets] == ["request.skip_special_tokens"]
            for s in n.body
        )
    )
    if _reads(process, "is_gpt_oss") != allowed:
        problems.append("_process_messages reads is_gpt_oss for more than keeping special tokens")
    return problems if path else ["no _apply_jinja_template"]


def encoding_spec(wheel: Path, architecture: str, model_type: str, tool_call_parser: str | None) -> str | None:
    """SGLang's own choice of a model's prompt encoder (None: the HF chat template; a name: a native encoder that
    `_apply_jinja_template` hands the messages to): `resolve_chat_encoding_spec` from its module, which imports
    nothing of SGLang, run unchanged on the model's config."""
    from types import SimpleNamespace

    namespace: dict[str, Any] = {}
    exec(compile(zipfile.ZipFile(wheel).read(CHAT_ENCODING).decode("utf-8"), CHAT_ENCODING, "exec"), namespace)  # noqa: S102
    config = SimpleNamespace(architectures=[architecture], model_type=model_type)
    return namespace["resolve_chat_encoding_spec"](
        hf_config=config, tokenizer=SimpleNamespace(chat_template="{{ messages }}"), tool_call_parser=tool_call_parser
    )


def _reading_is_gpt_oss(source: str, method: str) -> str:
    """The negative control: `source` with `method` branching on is_gpt_oss first."""
    tree = ast.parse(source)
    _chat_methods(tree)[method].body.insert(0, ast.parse("if self.is_gpt_oss:\n    pass").body[0])
    return ast.unparse(tree)


def main(argv: list[str]) -> int:
    functions = sglang_functions(Path(argv[0]))
    requests = [
        [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": args}}],
            }
        ]
        for args in ARGUMENTS
    ] + [[{"role": "tool", "tool_call_id": "call_1", "content": content}] for content in TOOL_CONTENT]
    differ = 0
    for request in requests:
        theirs, ours = _sglang(functions, request), _ours(request)
        if theirs != ours:
            differ += 1
            print(f"DIFFERS {request}: ours {ours!r} SGLang {theirs!r}")
    print(
        f"SGLang {Path(argv[0]).name} {SERVING_CHAT} against the sglang profile: {len(requests)} message forms, "
        f"{len(requests) - differ} equal, {differ} differ"
    )
    last = _last_messages(functions)
    print(f"  _handle_last_assistant_message: {2 * len(LAST_MESSAGES)} requests, {last} differ")
    compared, prefixes = _prefixes(functions)
    print(f"  _append_assistant_prefix_to_prompt_ids: {compared} prefixes on 3 pack tokenizers, {prefixes} differ")
    source = zipfile.ZipFile(Path(argv[0])).read(SERVING_CHAT).decode("utf-8")
    problems = gpt_oss_path(source)
    control = gpt_oss_path(_reading_is_gpt_oss(source, "_apply_jinja_template"))
    spec = encoding_spec(Path(argv[0]), "GptOssForCausalLM", "gpt_oss", "gpt-oss")
    if spec is not None:
        problems.append(f"resolve_chat_encoding_spec gives gpt-oss the native encoder {spec!r}, not its template")
    other = encoding_spec(Path(argv[0]), "DeepseekV4ForCausalLM", "deepseek_v4", None)  # a model it does route away
    for problem in problems:
        print(f"DIFFERS gpt-oss: {problem}")
    print(
        f"  gpt-oss through its Jinja template: {len(problems)} problems (render path read off the class's source; "
        f"resolve_chat_encoding_spec run: {spec!r}; negative controls: a render path that reads is_gpt_oss, "
        f"{len(control)} found; DeepSeek-V4 routed to {other!r})"
    )
    return 1 if differ or last or prefixes or problems or not control or other is None else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
