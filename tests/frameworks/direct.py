"""Each framework called directly, as its own documentation shows, with no code of the harness: the rows are
written out here by hand, the tokenizer loaded from the offline pack with transformers, the trained text decoded
with the tokenizer alone. tests/frameworks/test_direct_controls.py holds what they train against the harness's
reports."""

from __future__ import annotations

import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

SYSTEM_MATH = {"role": "system", "content": "You are a helpful math tutor."}
SINGLE = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
]
MULTI = [
    SYSTEM_MATH,
    {"role": "user", "content": "What is 12 times 7?"},
    {"role": "assistant", "content": "12 times 7 is 84."},
    {"role": "user", "content": "And 84 divided by 4?"},
    {"role": "assistant", "content": "84 divided by 4 is 21."},
    {"role": "user", "content": "Is 21 a prime number?"},
    {"role": "assistant", "content": "No. 21 = 3 × 7, so it is not prime."},
]
REASONING = "In subtractive (paint) mixing, the primaries are usually taught as red, yellow and blue. Green is made from blue and yellow."
REASONING_LAST = [
    {"role": "user", "content": "Name a primary colour."},
    {"role": "assistant", "content": "Red is a primary colour."},
    {"role": "user", "content": "Which two primary colours make green in paint?"},
    {"role": "assistant", "content": "Blue and yellow make green.", "reasoning_content": REASONING},
]
FIXTURES = {"single_turn": SINGLE, "multi_turn": MULTI, "reasoning_last_turn": REASONING_LAST}
FOLDERS = {
    "qwen3-8b": "Qwen--Qwen3-8B",
    "qwen2.5-7b": "Qwen--Qwen2.5-7B-Instruct",
    "qwq-32b": "Qwen--QwQ-32B",
    "llama-3.1-8b": "meta-llama--Llama-3.1-8B-Instruct",
    "llama-3.2-3b": "meta-llama--Llama-3.2-3B-Instruct",
    "deepseek-v3": "deepseek-ai--DeepSeek-V3",
    "gpt-oss-20b": "openai--gpt-oss-20b",
    "mistral-nemo-2407": "mistralai--Mistral-Nemo-Instruct-2407",
}
HUB = {
    "qwen3-8b": "Qwen/Qwen3-8B",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B-Instruct",
    "qwq-32b": "Qwen/QwQ-32B",
    "llama-3.2-3b": "meta-llama/Llama-3.2-3B-Instruct",
    "deepseek-v3": "deepseek-ai/DeepSeek-V3",
}


def tokenizer(model: str) -> Any:
    from transformers import AutoTokenizer

    base = Path(os.environ.get("CTH_TOKENIZERS_DIR", Path(__file__).resolve().parents[3] / "shared" / "tokenizers"))
    return AutoTokenizer.from_pretrained(str(base / FOLDERS[model]))


def runs(tok: Any, ids: list[int], trained: list[bool]) -> list[str]:
    """The decoded text of each run of trained tokens."""
    out, current = [], []
    for i, t in zip(ids, trained, strict=True):
        if t:
            current.append(i)
        elif current:
            out.append(tok.decode(current))
            current = []
    return out + ([tok.decode(current)] if current else [])


def llamafactory(model: str, template: str, fixture: str, think: bool) -> list[str]:
    """LLaMA-Factory 0.9.5: a ShareGPT row (data/README.md) through its converter, template and supervised processor."""
    import copy

    os.environ.setdefault("DISABLE_VERSION_CHECK", "1")
    import transformers  # noqa: F401  (before the torchaudio placeholder: transformers probes for it)

    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    from llamafactory.data.converter import get_dataset_converter
    from llamafactory.data.parser import DatasetAttr
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments

    tok = copy.deepcopy(tokenizer(model))
    args = DataArguments(template=template, cutoff_len=1 << 20, enable_thinking=think)
    tpl = get_template_and_fix_tokenizer(tok, args)
    roles = {"system": "system", "user": "human", "assistant": "gpt"}
    open_, close = tpl.thought_words
    conversations = [
        {
            "from": roles[m["role"]],
            "value": (
                f"{open_}{m['reasoning_content']}{close}{m['content']}" if m.get("reasoning_content") else m["content"]
            ),
        }
        for m in FIXTURES[fixture]
    ]
    attr = DatasetAttr("file", "row", formatting="sharegpt", messages="conversations", tools="tools")
    row = get_dataset_converter("sharegpt", attr, args)({"conversations": conversations, "tools": ""})
    out = SupervisedDatasetProcessor(template=tpl, tokenizer=tok, processor=None, data_args=args).preprocess_dataset(
        {k: [v] for k, v in row.items()}
    )
    return runs(tok, out["input_ids"][0], [label != -100 for label in out["labels"][0]])


def ms_swift(model: str, fixture: str, think: bool | None) -> tuple[list[str], str]:
    """ms-swift 4.6.0: its registry's template for the hub id, `Template.encode` of a `messages` row in train mode
    (Custom-dataset.md). Also the decoded sample, whose prompt holds any date it writes."""
    import copy
    import warnings

    with warnings.catch_warnings():  # import-time deprecations of its dependencies
        warnings.simplefilter("ignore")
        import torch
        from swift.model.model_meta import ModelInfo, get_matched_model_meta
        from swift.template import get_template

    tok = copy.deepcopy(tokenizer(model))
    meta = get_matched_model_meta(HUB[model])
    tok.model_info = ModelInfo(meta.model_type, HUB[model], torch.bfloat16, 1 << 20, None, 0, task_type="causal_lm")
    tok.model_meta = meta
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        template = get_template(tok, max_length=1 << 20, enable_thinking=think)
        template.set_mode("train")
        messages = [
            {
                "role": m["role"],
                "content": (
                    f"<think>\n{m['reasoning_content']}\n</think>\n\n{m['content']}"
                    if m.get("reasoning_content")
                    else m["content"]
                ),
            }
            for m in FIXTURES[fixture]
        ]
        out = template.encode({"messages": messages})
    return runs(tok, out["input_ids"], [label != -100 for label in out["labels"]]), tok.decode(out["input_ids"])


def axolotl(model: str, fixture: str, kwargs: dict[str, Any]) -> list[str]:
    """axolotl 0.21.0: the `chat_template` strategy (docs/dataset-formats/conversation.qmd) on one row."""
    import logging

    logging.getLogger("axolotl").setLevel(logging.WARNING)
    from axolotl.prompt_strategies.chat_template import load
    from axolotl.utils.dict import DictDefault

    tok = tokenizer(model)
    cfg = DictDefault(
        {
            "train_on_inputs": False,
            "sequence_len": 1 << 20,
            "chat_template": "tokenizer_default",
            "chat_template_kwargs": kwargs,
            "tokenizer_use_mistral_common": False,
        }
    )
    ds_cfg = {
        "type": "chat_template",
        "field_messages": "messages",
        "roles_to_train": ["assistant"],
        "train_on_eos": "turn",
    }
    out = load(tok, cfg, ds_cfg).tokenize_prompt({"messages": FIXTURES[fixture]})
    return runs(tok, out["input_ids"], [label != -100 for label in out["labels"]])


def openrlhf(model: str, fixture: str, multiturn: bool) -> list[str]:
    """OpenRLHF 0.11.2: `SFTDataset` as `train_sft --apply_chat_template --input_key messages [--multiturn]` builds
    it; its loss_mask is on the logit that predicts a token, so token j is trained where mask[j - 1] is 1."""
    import warnings

    with warnings.catch_warnings():  # import-time deprecations of its dependencies
        warnings.simplefilter("ignore")
        from datasets import Dataset
        from openrlhf.datasets import SFTDataset

    tok = tokenizer(model)
    data = types.SimpleNamespace(
        input_key="messages", output_key=None, apply_chat_template=True, tokenizer_chat_template=None
    )
    strategy = types.SimpleNamespace(args=types.SimpleNamespace(data=data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = SFTDataset(
            Dataset.from_list([{"messages": FIXTURES[fixture]}]),
            tok,
            1 << 20,
            strategy,
            num_processors=None,
            multiturn=multiturn,
        )
    input_ids, _, loss_mask = dataset[0]
    ids, mask = input_ids[0].tolist(), loss_mask[0].tolist()
    return runs(tok, ids, [False] + [bool(mask[j - 1]) for j in range(1, len(ids))])


def verl(model: str, fixture: str) -> list[str]:
    """verl 0.9.1: `MultiTurnSFTDataset` on a one-row Parquet file of `messages`."""
    import contextlib
    import io
    import warnings

    import pandas

    vision = "verl.models.transformers.qwen2_vl"  # imports a class transformers 5 dropped; the text path never calls it
    try:
        __import__(vision)
    except ImportError:
        sys.modules[vision] = types.ModuleType(vision)
        sys.modules[vision].get_rope_index = None
    with warnings.catch_warnings():  # import-time deprecations of its dependencies
        warnings.simplefilter("ignore")
        from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    tok = tokenizer(model)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "row.parquet"
        pandas.DataFrame([{"messages": FIXTURES[fixture]}]).to_parquet(path)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sample = MultiTurnSFTDataset(
                str(path),
                tok,
                {"messages_key": "messages", "pad_mode": "no_padding", "truncation": "error", "max_length": 1 << 20},
            )[0]
    return runs(tok, sample["input_ids"].tolist(), [bool(m) for m in sample["loss_mask"].tolist()])


def nemo_automodel(model: str, fixture: str, **options: Any) -> list[str]:
    """NeMo Automodel 0.7.0: `ChatDataset` on a one-line JSONL file of `messages`; its labels are shifted (label i is
    the id at i + 1), so token i + 1 is trained where label i is not -100."""
    import json
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nemo_automodel.components.datasets.llm.chat_dataset import ChatDataset

    tok = tokenizer(model)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "row.jsonl"
        path.write_text(json.dumps({"messages": FIXTURES[fixture]}) + "\n", encoding="utf-8")
        sample = ChatDataset(str(path), tok, **options)[0]
    labels = list(sample["labels"])
    ids = [*sample["input_ids"], labels[-1]] if labels[-1] != -100 else list(sample["input_ids"])
    return runs(tok, ids, [False, *[label != -100 for label in labels[: len(ids) - 1]]])
