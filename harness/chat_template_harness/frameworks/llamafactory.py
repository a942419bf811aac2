"""LLaMA-Factory 0.9.5's supervised (SFT) preprocessing, behind the plug-in interface: one adapter per template
and data format.

Each adapter runs LLaMA-Factory's own code unchanged, the way its `get_dataset` does for one row: the row as a
user's dataset holds it (ShareGPT `conversations` with `from`/`value`, or OpenAI `messages`), its dataset
converter (`SharegptDatasetConverter` / `OpenAIDatasetConverter`) with the column and tag settings of
LLaMA-Factory's own `dataset_info.json` entries for those formats, `get_template_and_fix_tokenizer` (on a
copy of the tokenizer: it rewrites the tokenizer's template and special tokens), and
`SupervisedDatasetProcessor.preprocess_dataset`, whose `labels` (-100 where untrained) are read as they are.
`enable_thinking` is the server's think switch.

Which template runs on which model is LLaMA-Factory's own model table at the pinned version (`model_template`: its
`extras/constants.py`, e.g. QwQ-32B -> `qwen`, Qwen3-4B-Thinking-2507 -> `qwen3`), never a list kept here: a
template's adapter runs on the models the table names it for, `by_family_*` (the conformance page's columns) runs
whatever template the table names for the cell's model, and a model the table has no template for is N/A.

The data shape fed, as LLaMA-Factory 0.9.5 documents it: `data/README.md` (the `sharegpt` and `openai` formats,
`from`/`value` and `role`/`content`; a function call is a `function_call` turn holding the JSON list its
FunctionFormatter parses, a tool result an `observation` (ShareGPT) or `tool` (OpenAI) turn, the tools a JSON
string in `tools`). LLaMA-Factory has no reasoning field: its converters read only the content, and
`src/llamafactory/data/template.py` reads reasoning inline in the reply between the template's own
`thought_words` (`ReasoningTemplate`, and `Template.thought_words` for every template, `<think>\\n`/`\\n</think>\\n\\n`
unless the template names its own: gpt-oss's `<|channel|>analysis<|message|>` …
`<|end|><|start|>assistant<|channel|>final<|message|>`). So the row writes reasoning as
`thought_words[0] + reasoning + thought_words[1] + answer`, with the words of the template the cell runs. A model
that never thinks (no think mode: Qwen2.5, Llama, DeepSeek-V3, Qwen3-Instruct-2507) gets its replies without
reasoning, as its users' data holds them (`frameworks/rows.py`).

Install the safe way (never its declared dependencies, which pull a CUDA stack): `pip install --no-deps
llamafactory==0.9.5 peft omegaconf`. Stubbed, because the SFT path never calls it: `torchaudio` (imported by
its multimodal plug-in module at import time; an empty module is put in its place), the version check
(`DISABLE_VERSION_CHECK=1`: it pins other transformers releases than the ones this harness runs), and for the
multimodal `gemma3` and `llama4` templates a text-only stand-in for the model's processor (the fixtures hold no
image; the template's plug-in only checks that it exists and reads its image token).

    cth check chat_template_harness.frameworks.llamafactory:qwen3 --model qwen3-8b
"""

from __future__ import annotations

import copy
import json
import os
import sys
import types
from collections.abc import Callable
from typing import Any

from chat_template_harness.external import Unsupported, real_clock
from chat_template_harness.frameworks.rows import as_trained
from chat_template_harness.models import memo

VERSION = "0.9.5"
DATA_SHAPE = (
    "ShareGPT `conversations` (`_openai`: OpenAI `messages`) as LLaMA-Factory 0.9.5's data/README.md documents them; "
    "reasoning inline between the template's own `thought_words`, none for a model that never thinks"
)
# the templates with an adapter (and a report) each; which model a template is for is LLaMA-Factory's own table
TEMPLATES = ("qwen", "qwen3", "qwen3_nothink", "llama3", "deepseek3", "deepseekr1", "gpt_oss", "gemma3")
FORMATS = ("sharegpt", "openai")
# `gemma3` and `llama4` are multimodal templates: their plug-ins require a processor even for text (gemma3's reads two
# strings off it) and use its image processor only for images. The fixtures hold no image, so a stand-in with the
# model's image token is enough (the only stub beside torchaudio; the reports say so).
TEXT_ONLY_PROCESSORS = {
    "gemma3": types.SimpleNamespace(
        image_processor=types.SimpleNamespace(), boi_token="<start_of_image>", full_image_sequence="<start_of_image>"
    ),
    "llama4": types.SimpleNamespace(image_processor=types.SimpleNamespace()),
}
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation"}


def _import() -> Any:
    os.environ.setdefault("DISABLE_VERSION_CHECK", "1")
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))  # the SFT path never calls it
    try:
        from llamafactory.data.converter import get_dataset_converter
        from llamafactory.data.parser import DatasetAttr
        from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
        from llamafactory.data.template import get_template_and_fix_tokenizer
        from llamafactory.hparams import DataArguments
    except ImportError as exc:
        raise Unsupported(
            f"LLaMA-Factory is not installed ({exc}): pip install --no-deps llamafactory=={VERSION} peft omegaconf"
        ) from None
    return types.SimpleNamespace(
        converter=get_dataset_converter,
        attr=DatasetAttr,
        processor=SupervisedDatasetProcessor,
        template=get_template_and_fix_tokenizer,
        data_args=DataArguments,
    )


def _reply(message: dict[str, Any], thought_words: tuple[str, str]) -> str:
    reasoning = message.get("reasoning_content") or ""
    return f"{thought_words[0]}{reasoning}{thought_words[1]}{message['content']}" if reasoning else message["content"]


def _calls(message: dict[str, Any]) -> str:
    return json.dumps(
        [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in message["tool_calls"]],
        ensure_ascii=False,
    )


def sharegpt_row(request: Any, thought_words: tuple[str, str]) -> dict[str, Any]:
    rows = []
    for m in as_trained(request):
        if m["role"] == "assistant" and m.get("tool_calls"):
            rows.append({"from": "function_call", "value": _calls(m)})
        else:
            value = _reply(m, thought_words) if m["role"] == "assistant" else m["content"]
            rows.append({"from": SHAREGPT_ROLES[m["role"]], "value": value})
    return {"conversations": rows, "tools": json.dumps(request.tools, ensure_ascii=False) if request.tools else ""}


def openai_row(request: Any, thought_words: tuple[str, str]) -> dict[str, Any]:
    messages = []
    for m in as_trained(request):
        out = {"role": m["role"], "content": _reply(m, thought_words) if m["role"] == "assistant" else m["content"]}
        if m.get("tool_calls"):
            out["tool_calls"] = m["tool_calls"]
        messages.append(out)
    return {"messages": messages, "tools": request.tools or ""}


_COPIES: dict[tuple[int, str], tuple[Any, Any]] = memo.kept({})


def _copy(tokenizer: Any, template: str) -> Any:
    """A copy of the tokenizer for one template (get_template_and_fix_tokenizer rewrites the tokenizer it is
    given), made once: copying a tokenizer costs more than the preprocessing."""
    key = (id(tokenizer), template)
    if key not in _COPIES:  # the original is kept with its copy, so its id is not reused
        _COPIES[key] = (tokenizer, copy.deepcopy(tokenizer))
    return _COPIES[key][1]


def tokenizer_copies() -> list[Any]:
    """The tokenizer copies made so far (the bench empties their caches before each path)."""
    return [made for _, made in _COPIES.values()]


def _attr(lf: Any, formatting: str) -> Any:
    """The dataset attributes LLaMA-Factory's dataset_info.json gives each format's example datasets."""
    if formatting == "sharegpt":
        return lf.attr("file", "row", formatting="sharegpt", messages="conversations", tools="tools")
    return lf.attr(
        "file",
        "row",
        formatting="openai",
        messages="messages",
        tools="tools",
        role_tag="role",
        content_tag="content",
        user_tag="user",
        assistant_tag="assistant",
        observation_tag="tool",
        system_tag="system",
    )


def model_template(hub_repo: str) -> str | None:
    """The template LLaMA-Factory's own model table names for a hub repo (`src/llamafactory/extras/constants.py`:
    `register_model_group` fills SUPPORTED_MODELS, name -> hub paths, and DEFAULT_TEMPLATE, name -> template): the
    entry whose hub path is the repo, or whose name is the repo's name (its names follow the hub's, and a hub repo
    renamed since, as meta-llama/Meta-Llama-3.1-8B-Instruct, keeps its name). None: LLaMA-Factory has no template
    for the model."""
    _import()
    from llamafactory.extras.constants import DEFAULT_TEMPLATE, SUPPORTED_MODELS

    repo = hub_repo.lower()
    for name, paths in SUPPORTED_MODELS.items():
        if DEFAULT_TEMPLATE.get(name) and (
            repo in {p.lower() for p in paths.values()} or name.lower() == repo.split("/")[-1]
        ):
            template: str = DEFAULT_TEMPLATE[name]
            return template
    return None


def _template_of(request: Any) -> str:
    from chat_template_harness.models import source

    repo = source.get_model(request.model).hub_repo
    template = model_template(repo)
    if template is None:
        raise Unsupported(f"LLaMA-Factory {VERSION}'s model table (extras/constants.py) has no template for {repo}")
    return template


def preprocess(template: str, formatting: str, request: Any) -> dict[str, Any]:
    """LLaMA-Factory's SFT preprocessing of one row in `formatting` with its `template`, on a model its table names
    that template for."""
    named = _template_of(request)
    if named != template:
        raise Unsupported(f"LLaMA-Factory {VERSION}'s model table names `{named}` for this model, not `{template}`")
    lf = _import()
    data_args = lf.data_args(template=template, cutoff_len=1 << 20, enable_thinking=request.think == "on")
    tokenizer = _copy(request.tokenizer, template)
    tpl = lf.template(tokenizer, data_args)  # sets the template's think switch on every call; the fix is idempotent
    thought_words = tuple(tpl.thought_words)
    row = sharegpt_row(request, thought_words) if formatting == "sharegpt" else openai_row(request, thought_words)
    converted = lf.converter(formatting, _attr(lf, formatting), data_args)(row)
    if not converted["_prompt"]:
        raise Unsupported(f"LLaMA-Factory's {formatting} converter drops this conversation as abnormal")
    batch = {key: [value] for key, value in converted.items()}
    processor = TEXT_ONLY_PROCESSORS.get(template)
    out = lf.processor(template=tpl, tokenizer=tokenizer, processor=processor, data_args=data_args).preprocess_dataset(
        batch
    )
    if not out["input_ids"]:
        raise Unsupported("LLaMA-Factory's supervised processor drops this conversation (not user/assistant pairs)")
    return {key: out[key] for key in ("input_ids", "attention_mask", "labels")}


def _adapter(template: str, formatting: str) -> Callable[[Any], dict[str, Any]]:
    def adapter(request: Any) -> dict[str, Any]:
        return preprocess(template, formatting, request)

    name = template if formatting == "sharegpt" else f"{template}_openai"
    adapter.__name__ = adapter.__qualname__ = name
    adapter.__doc__ = f"LLaMA-Factory {VERSION}'s `{template}` template on {formatting} data."
    return real_clock(adapter)


ADAPTERS = {a.__name__: a for t in TEMPLATES for f in FORMATS for a in [_adapter(t, f)]}
globals().update(ADAPTERS)


def _by_family(formatting: str) -> Callable[[Any], dict[str, Any]]:
    def adapter(request: Any) -> dict[str, Any]:
        return preprocess(_template_of(request), formatting, request)

    adapter.__name__ = adapter.__qualname__ = f"by_family_{formatting}"
    adapter.__doc__ = (
        f"LLaMA-Factory {VERSION} with the template its model table names for the cell's model, on {formatting} data."
    )
    return real_clock(adapter)


by_family_sharegpt = _by_family("sharegpt")
by_family_openai = _by_family("openai")
