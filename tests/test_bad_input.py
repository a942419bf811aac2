"""The bad-input corpus: every input a user really gets wrong is one line, `error: …; fix: …`, exit 2, no traceback.

Each case runs the real `cth` entry point in a subprocess (so an uncaught exception would show as a
traceback and a different exit status), through render, show, check, diff, matrix and smoke.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]

# name -> file content (bytes) used as the conversation argument
FILES: dict[str, bytes] = {
    "malformed-json": b'[{"role": "user", "content": "hi"',
    "invalid-utf8": b'[{"role": "user", "content": "caf\xe9"}]',
    "zero-bytes": b"",
    "nul-byte": json.dumps([{"role": "user", "content": "a\u0000b"}, GOOD[1]]).encode(),
    "lone-surrogate": b'[{"role": "user", "content": "a\\ud800"}, {"role": "assistant", "content": "b"}]',
    "reasoning-list": json.dumps([GOOD[0], {"role": "assistant", "content": "a", "reasoning_content": ["x"]}]).encode(),
    "deep-nesting": b"[" * 100_000 + b"]" * 100_000,
    "unknown-role": json.dumps([GOOD[0], {"role": "bot", "content": "x"}]).encode(),
    "unknown-sharegpt-speaker": json.dumps({"conversations": [{"from": "robot", "value": "x"}]}).encode(),
    "ends-with-user": json.dumps([*GOOD, {"role": "user", "content": "?"}]).encode(),
    "tool-without-call": json.dumps([GOOD[0], {"role": "tool", "content": "1"}, GOOD[1]]).encode(),
    "content-int": json.dumps([{"role": "user", "content": 3}, GOOD[1]]).encode(),
    "image-part": json.dumps([{"role": "user", "content": [{"type": "image", "url": "x"}]}, GOOD[1]]).encode(),
    "tool-calls-not-list": json.dumps([GOOD[0], {"role": "assistant", "content": "", "tool_calls": "f()"}]).encode(),
    "arguments-not-json": json.dumps(
        [
            GOOD[0],
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]},
            {"role": "tool", "content": "1"},
            GOOD[1],
        ]
    ).encode(),
    "two-reasonings": json.dumps(
        [GOOD[0], {"role": "assistant", "content": "<think>a</think>b", "reasoning_content": "c"}]
    ).encode(),
    "truncated-think": json.dumps([GOOD[0], {"role": "assistant", "content": "<think>\nhmm"}]).encode(),
    "no-messages-key": json.dumps({"rows": []}).encode(),
    "empty-list": b"[]",
    "system-not-first": json.dumps([GOOD[0], {"role": "system", "content": "s"}, GOOD[1]]).encode(),
    "two-assistants": json.dumps([*GOOD, {"role": "assistant", "content": "again"}]).encode(),
    "no-user": json.dumps([{"role": "system", "content": "s"}, GOOD[1]]).encode(),
}
# name -> argv after `cth`, with {file} for the bad conversation file and {tmp} for a scratch folder
COMMANDS: dict[str, list[str]] = {
    **{f"render/{name}": ["render", "qwen3-8b", "{file}", "--think", "on"] for name in FILES},
    **{
        f"show/{name}": ["show", "llama-3.1-8b", "{file}", "--think", "off"]
        for name in ("invalid-utf8", "two-assistants", "truncated-think")
    },
    "render/directory": ["render", "qwen3-8b", "{tmp}", "--think", "on"],
    "render/unknown-fixture": ["render", "qwen3-8b", "no_such_fixture", "--think", "on"],
    "render/unknown-model": ["render", "qwen9", "single_turn", "--think", "on"],
    "render/na-cell": ["render", "qwq-32b", "single_turn", "--think", "off"],
    "render/missing-pack": ["render", "qwen3-8b", "single_turn", "--think", "on", "--tokenizers-dir", "{tmp}/nowhere"],
    "render/empty-pack": ["render", "qwen3-8b", "single_turn", "--think", "on", "--tokenizers-dir", "{tmp}"],
    "matrix/unknown-model": ["matrix", "--model", "qwen9"],
    "matrix/bad-fixture-file": ["matrix", "--model", "qwen3-8b", "--fixture", "{file}"],
    "matrix/markdown-into-missing-dir": [
        "matrix",
        "--model",
        "qwen3-8b",
        "--fixture",
        "single_turn",
        "--markdown",
        "{tmp}/no/such/dir/m.md",
    ],
    "matrix/goldens-typo": ["matrix", "--model", "qwen3-8b", "--fixture", "single_turn", "--goldens", "{tmp}/goldenz"],
    "check/no-colon": ["check", "chat_template_harness.examples.reference"],
    "check/missing-module": ["check", "no_such_pkg.mod:f"],
    "check/missing-attribute": ["check", "chat_template_harness.examples.reference:nope"],
    "check/syntax-error": ["check", "synerr:f", "--model", "qwen3-8b"],
    "check/raises-at-import": ["check", "boomimp:f", "--model", "qwen3-8b"],
    "check/bad-fixture-file": [
        "check",
        "chat_template_harness.examples.reference:preprocess",
        "--model",
        "qwen3-8b",
        "--fixture",
        "{file}",
    ],
    "check/zero-timeout": ["check", "chat_template_harness.examples.reference:preprocess", "--timeout", "0"],
    "diff/goldens-typo": ["diff", "--model", "qwen3-8b", "--goldens", "{tmp}/goldenz"],
    "diff/invalid-utf8-golden": [
        "diff",
        "--model",
        "qwen3-8b",
        "--think",
        "off",
        "--fixture",
        "single_turn",
        "--goldens",
        "{goldens}",
    ],
    "audit/missing-file": ["audit", "{tmp}/nope.jsonl", "--model", "qwen3-8b", "--think", "off"],
    "audit/directory": ["audit", "{tmp}", "--model", "qwen3-8b", "--think", "off"],
    "audit/only-broken-rows": ["audit", "{file}", "--model", "qwen3-8b", "--think", "off", "--workers", "1"],
    "audit/na-mode": ["audit", "{file}", "--model", "qwq-32b", "--think", "off"],
    "audit/bad-preprocessor": [
        "audit",
        "{file}",
        "--model",
        "qwen3-8b",
        "--think",
        "off",
        "--preprocessor",
        "boomimp:f",
    ],
    "audit/unknown-format": ["audit", "{tmp}/plugin_conf.txt", "--model", "qwen3-8b", "--think", "off"],
    "smoke/zero-steps": ["smoke", "qwen3-8b", "--think", "on", "--steps", "0"],
    "smoke/unknown-model": ["smoke", "qwen9", "--think", "on"],
    "smoke/na-mode": ["smoke", "qwq-32b", "--think", "off"],
    "smoke/plugin-raises": ["smoke", "qwen3-8b", "--think", "off", "--preprocessor", "plug:bad"],
    "smoke/plugin-bad-lengths": ["smoke", "qwen3-8b", "--think", "off", "--preprocessor", "plug:lens"],
}
FILE_FOR = {
    "matrix/bad-fixture-file": "unknown-role",
    "check/bad-fixture-file": "malformed-json",
    "audit/only-broken-rows": "malformed-json",
}
PLUGINS = {
    "synerr.py": "def f(:\n",
    "boomimp.py": "raise RuntimeError('boom at import')\n",
    "plug.py": "def bad(r):\n    raise ValueError('nope')\n\ndef lens(r):\n    return {'input_ids': [1, 2, 3], 'loss_mask': [1]}\n",
}


def test_the_corpus_is_large():
    assert len(COMMANDS) >= 30


@pytest.mark.parametrize("case", list(COMMANDS))
def test_bad_input_is_one_line_and_exit_2(case: str, tmp_path: Path):
    name = case.split("/", 1)[1]
    bad = tmp_path / ("conversation.jsonl" if case.startswith("audit/") else "conversation.json")
    bad.write_bytes(FILES.get(FILE_FOR.get(case, name), json.dumps(GOOD).encode()))
    for module, text in PLUGINS.items():
        (tmp_path / module).write_text(text)
    (tmp_path / "plugin_conf.txt").write_text("not a dataset")
    goldens = tmp_path / "goldens"
    golden = goldens / "qwen3-8b" / "think-off" / "single_turn.golden"
    golden.parent.mkdir(parents=True)
    golden.write_bytes(b"# chat-template-harness golden\n---\n\xff\xfe broken\n")
    argv = [a.format(file=bad, tmp=tmp_path, goldens=goldens) for a in COMMANDS[case]]
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "chat_template_harness.cli", *argv], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 2, (done.returncode, done.stdout[-800:], done.stderr[-800:])
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    if lines and lines[0].startswith("usage:"):  # argparse: usage, then one error line
        assert "error:" in lines[-1]
    else:
        assert len(lines) == 1 and lines[0].startswith("error: ") and "; fix: " in lines[0], done.stderr
