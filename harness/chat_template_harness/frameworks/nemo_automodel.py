"""NeMo Automodel 0.7.0's chat dataset (`nemo_automodel.components.datasets.llm.chat_dataset.ChatDataset`), behind the
plug-in interface.

Each cell runs NeMo Automodel's own dataset class unchanged, as its SFT recipes build it from a local file
(`dataset: _target_: ...ChatDataset, path_or_dataset_id: <file>`): the row written to a one-line JSONL file of
OpenAI `messages` (reasoning in `reasoning_content`, tool-call arguments as JSON strings) and `tools`, the class's
defaults (answer-only loss, no `mask_generation_prompt`, no `mask_reasoning_content`), then `[0]`, whose
`input_ids` and `labels` are read. A second adapter, `mask_generation_prompt`, sets the class's documented option of
that name (the generation prompt's header and any empty think block it writes are left untrained). NeMo Automodel passes no template keyword: no think switch reaches the template
(a deployment's think-off prompt cannot be made), like OpenRLHF.

Its samples are shifted for the loss (`unshifted=False`, the default): `input_ids` drops the last token and
`labels[i]` is the id at i + 1. The adapter returns them in the convention the harness reads (labels aligned with
the input ids, as Hugging Face models take them): the full ids (the inputs and the last label) and label j =
NeMo's label j - 1. The data shape fed is the OpenAI `messages` format its docstring and `docs/guides/llm/
dataset.md` document at 0.7.0. A model that never thinks gets its replies without reasoning (`frameworks/rows.py`).

Install the safe way (never its declared dependencies: a CUDA torch, transformer-engine, megatron): `pip install
--no-deps nemo-automodel==0.7.0`. Nothing is stubbed: the chat dataset's module imports only datasets, torch and
transformers.

    cth check chat_template_harness.frameworks.nemo_automodel:preprocess --model qwen3-8b
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

from chat_template_harness.external import Unsupported, real_clock
from chat_template_harness.frameworks.rows import as_trained, json_arguments

VERSION = "0.7.0"
DATA_SHAPE = (
    "a JSONL row of OpenAI `messages` and `tools` (ChatDataset's documented format); reasoning in "
    "`reasoning_content`, none for a model that never thinks"
)


def _import() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from nemo_automodel.components.datasets.llm.chat_dataset import ChatDataset
    except ImportError as exc:
        raise Unsupported(
            f"NeMo Automodel is not installed ({exc}): pip install --no-deps nemo-automodel=={VERSION}"
        ) from None
    logging.getLogger("nemo_automodel").setLevel(logging.ERROR)  # it warns on every row of a tokenizer with no pad
    return ChatDataset


def row(request: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"messages": [json_arguments(m) for m in as_trained(request)]}
    if request.tools:
        out["tools"] = request.tools
    return out


def aligned(input_ids: list[int], labels: list[int]) -> dict[str, list[int]]:
    """NeMo's shifted pair (labels[i] is the id at i + 1) as ids with labels aligned to them."""
    ids = [*input_ids, labels[-1]] if labels and labels[-1] != -100 else list(input_ids)
    return {"input_ids": ids, "labels": [-100, *labels[: len(ids) - 1]]}


def _preprocess(request: Any, options: dict[str, Any]) -> dict[str, Any]:
    dataset_cls = _import()
    with tempfile.TemporaryDirectory(prefix="cth-nemo-") as folder:
        path = Path(folder) / "row.jsonl"
        path.write_text(json.dumps(row(request), ensure_ascii=False) + "\n", encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sample = dataset_cls(str(path), request.tokenizer, **options)[0]
    return aligned(list(sample["input_ids"]), list(sample["labels"]))


@real_clock
def preprocess(request: Any) -> dict[str, Any]:
    """ChatDataset with its defaults (what a recipe that names only the file gets)."""
    return _preprocess(request, {})


@real_clock
def mask_generation_prompt(request: Any) -> dict[str, Any]:
    """ChatDataset with `mask_generation_prompt: true`, its documented option to leave the role header untrained."""
    return _preprocess(request, {"mask_generation_prompt": True})
