"""Realistic dataset rows for tests and benchmarks (not the fixtures repeated).

Mixed formats (OpenAI `messages`, ShareGPT `conversations` with from/value, EAGLE/SpecForge rows with
`id`), 1-12 turns, reasoning on some replies, tool calls with results, CJK and emoji, system prompts
on some rows, and about 1% broken rows of the kinds real dumps hold (a truncated JSON line, an
unknown role, a conversation ending with the user, an empty conversation). Seeded: the same
arguments write the same bytes.

    python -m chat_template_harness.audit.generate 10000 rows.jsonl [--parquet rows.parquet] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WORDS = (
    "the",
    "model",
    "template",
    "token",
    "loss",
    "mask",
    "reply",
    "prompt",
    "data",
    "train",
    "serve",
    "sample",
    "think",
    "answer",
    "because",
    "first",
    "then",
    "so",
    "we",
    "check",
    "every",
    "turn",
    "value",
    "result",
)
CJK = ("你好", "世界", "模型", "训练", "数据", "こんにちは", "학습", "😀", "🎉", "✓")
BROKEN = ("truncated JSON", "unknown role", "ends with the user", "empty conversation")


def _text(rng: random.Random, lo: int, hi: int) -> str:
    words = [rng.choice(CJK) if rng.random() < 0.08 else rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize() + rng.choice((".", "?", "!", "."))


def _messages(rng: random.Random) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    if rng.random() < 0.3:
        msgs.append({"role": "system", "content": _text(rng, 4, 12)})
    for _ in range(rng.randint(1, 12)):
        msgs.append({"role": "user", "content": _text(rng, 3, 30)})
        if rng.random() < 0.1:
            args = {"query": _text(rng, 1, 4), "limit": rng.randint(1, 9)}
            arguments: Any = json.dumps(args) if rng.random() < 0.5 else args
            msgs.append(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"type": "function", "function": {"name": "search", "arguments": arguments}}],
                }
            )
            msgs.append({"role": "tool", "content": _text(rng, 3, 15)})
        reply: dict[str, Any] = {"role": "assistant", "content": _text(rng, 3, 60)}
        if rng.random() < 0.4:
            reply["reasoning_content"] = _text(rng, 5, 40)
        msgs.append(reply)
    return msgs


def _as_format(rng: random.Random, index: int, msgs: list[dict[str, Any]]) -> dict[str, Any]:
    shape = rng.random()
    if shape < 0.5:
        return {"messages": msgs}
    if shape < 0.8:
        speaker = {"user": "human", "assistant": "gpt", "system": "system", "tool": "tool"}
        return {
            "conversations": [
                {
                    "from": speaker[m["role"]],
                    "value": m["content"],
                    **{k: v for k, v in m.items() if k not in ("role", "content")},
                }
                for m in msgs
            ]
        }
    return {"id": f"row-{index}", "conversations": msgs}


def _broken(rng: random.Random, kind: str, msgs: list[dict[str, Any]]) -> str:
    if kind == "truncated JSON":
        line = json.dumps({"messages": msgs}, ensure_ascii=False)
        return line[: rng.randint(1, max(2, len(line) - 1))]
    if kind == "unknown role":
        msgs[-1]["role"] = "bot"
    elif kind == "ends with the user":
        msgs.append({"role": "user", "content": "and?"})
    else:
        msgs = []
    return json.dumps({"messages": msgs}, ensure_ascii=False)


def lines(n: int, seed: int = 0, broken: float = 0.01) -> Iterator[str]:
    rng = random.Random(seed)
    for index in range(n):
        msgs = _messages(rng)
        if rng.random() < broken:
            yield _broken(rng, rng.choice(BROKEN), msgs)
        else:
            yield json.dumps(_as_format(rng, index, msgs), ensure_ascii=False)


def write_jsonl(path: Path, n: int, seed: int = 0) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for line in lines(n, seed):
            fh.write(line + "\n")
    return path


def write_parquet(jsonl: Path, path: Path) -> Path:
    """The same rows as Parquet, one JSON column per row's shape would not fit: rows are kept as JSON text.

    Parquet needs one schema; mixed shapes are stored as a `json` string column, one row per line,
    so that Parquet and JSONL audits read the very same rows (malformed ones included).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = jsonl.read_text("utf-8").splitlines()
    pq.write_table(pa.table({"json": texts}), path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m chat_template_harness.audit.generate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("rows", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--parquet", type=Path, help="also write the same rows as Parquet")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_jsonl(args.out, args.rows, args.seed)
    if args.parquet:
        write_parquet(args.out, args.parquet)


if __name__ == "__main__":
    main()
