"""axolotl 0.21.0's `chat_template` dataset strategy (SFT), behind the plug-in interface.

Each adapter runs axolotl's own code unchanged, as its dataset loading does for one row of a `type:
chat_template` dataset: `axolotl.prompt_strategies.chat_template.load(tokenizer, cfg, ds_cfg)` with the
tokenizer's own template (`chat_template: tokenizer_default`), the server's think switch as
`chat_template_kwargs` (the think switch alone: no date a user would not set), `roles_to_train: [assistant]` and `train_on_eos` as configured (`turn`, axolotl's
default: every trained turn's end token; `last`: only the final one), then `tokenize_prompt(row)`, whose
`labels` (-100 where untrained) are read as they are. The row is OpenAI `messages` as a dataset on the hub holds
them: reasoning in `reasoning_content` (axolotl's `field_thinking` default) or inline in the content, tool-call
arguments as a JSON string, and `tools` beside the messages: the shape of axolotl's `docs/dataset-formats/conversation.qmd` (`chat_template`
with `field_messages`, `field_thinking`, `field_tools`) at 0.21.0. A model that never thinks (no think mode) gets its replies without reasoning (`frameworks/rows.py`).

Install the safe way (never its declared dependencies, which pull a CUDA stack; it declares Python >= 3.12, and
its preprocessing runs on 3.11): `pip install --no-deps --ignore-requires-python axolotl==0.21.0 addict
colorama`. Nothing is stubbed: the modules this path imports load as they are.

    cth check chat_template_harness.frameworks.axolotl:turn --model qwen3-8b
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chat_template_harness.external import Unsupported, real_clock
from chat_template_harness.frameworks.rows import as_trained, json_arguments, user_kwargs

VERSION = "0.21.0"
DATA_SHAPE = (
    "OpenAI `messages` with `tools`, as axolotl 0.21.0's docs/dataset-formats/conversation.qmd documents them; "
    "reasoning in `reasoning_content` (`field_thinking`), none for a model that never thinks"
)
TRAIN_ON_EOS = ("turn", "last")


def _import() -> Any:
    import logging

    # it logs the whole template at INFO on every row; the harness's own output says what the template does
    logging.getLogger("axolotl.prompt_strategies.chat_template").setLevel(logging.WARNING)
    try:
        from axolotl.prompt_strategies.chat_template import load
        from axolotl.utils.dict import DictDefault
    except ImportError as exc:
        raise Unsupported(
            f"axolotl is not installed ({exc}): pip install --no-deps --ignore-requires-python "
            f"axolotl=={VERSION} addict colorama"
        ) from None
    return load, DictDefault


def row(request: Any) -> dict[str, Any]:
    """The conversation as an OpenAI-format dataset row: tool-call arguments as JSON strings."""
    messages = []
    for m in as_trained(request):
        out = {k: v for k, v in json_arguments(m).items() if v not in (None, "") or k == "content"}
        messages.append(out)
    return {"messages": messages, **({"tools": request.tools} if request.tools else {})}


def preprocess(train_on_eos: str, request: Any) -> dict[str, Any]:
    """axolotl's chat_template strategy on one row, with the tokenizer's template."""
    load, config = _import()
    cfg = config(
        {
            "train_on_inputs": False,
            "sequence_len": 1 << 20,
            "chat_template": "tokenizer_default",
            "chat_template_kwargs": user_kwargs(request),
            "tokenizer_use_mistral_common": False,
        }
    )
    ds_cfg = {
        "type": "chat_template",
        "field_messages": "messages",
        "roles_to_train": ["assistant"],
        "train_on_eos": train_on_eos,
    }
    out = load(request.tokenizer, cfg, ds_cfg).tokenize_prompt(row(request))
    if not out.get("input_ids"):
        raise Unsupported("axolotl's chat_template strategy drops this conversation")
    return {"input_ids": out["input_ids"], "labels": out["labels"]}


def _adapter(train_on_eos: str) -> Callable[[Any], dict[str, Any]]:
    def adapter(request: Any) -> dict[str, Any]:
        return preprocess(train_on_eos, request)

    adapter.__name__ = adapter.__qualname__ = train_on_eos
    adapter.__doc__ = f"axolotl {VERSION}'s chat_template strategy, train_on_eos: {train_on_eos}."
    return real_clock(adapter)


turn = _adapter("turn")
last = _adapter("last")
