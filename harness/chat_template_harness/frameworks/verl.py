"""verl 0.9.1's multi-turn SFT dataset (`verl.utils.dataset.multiturn_sft_dataset.MultiTurnSFTDataset`), behind the
plug-in interface.

Each cell runs verl's own dataset class unchanged, as its SFT trainer builds it from a Parquet file: the row
(OpenAI `messages` with `reasoning_content`, tool-call arguments as JSON strings, `tools`, and the row's
`enable_thinking`, the column verl reads the think switch from: the keys of its `MultiTurnSFTDataset`
config, `messages_key`, `tools_key`, `enable_thinking_key`, in `verl/utils/dataset/multiturn_sft_dataset.py` and
`docs/` at 0.9.1; verl has no reasoning field of its own, each message goes to the template as it is) written to a one-row Parquet file with pandas,
`MultiTurnSFTDataset(file, tokenizer, config)`, then `[0]`, whose `input_ids` and `loss_mask` (one per token,
1 on what is trained) are read as they are. verl renders each message on its own and joins the ids, then
checks the join against the whole conversation's render (`sanity_check`). A model that never thinks (no think mode) gets its replies without reasoning (`frameworks/rows.py`).

Install the safe way (never its declared dependencies: ray, vLLM, a CUDA torch): `pip install --no-deps
verl==0.9.1 tensordict pyvers cloudpickle` (what its modules import at load; scripts/setup pins them).
Stubbed, because this path never calls it: `verl.models.transformers.qwen2_vl`, imported for
`get_rope_index` (Qwen2-VL's vision positions, used only for images), whose module imports a transformers
class 5.x no longer has. verl prints every assembled sample; the adapter keeps that off the harness's output.

    cth check chat_template_harness.frameworks.verl:preprocess --model qwen3-8b
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import types
import warnings
from pathlib import Path
from typing import Any

from chat_template_harness.external import Unsupported, real_clock
from chat_template_harness.frameworks.rows import as_trained, json_arguments

VERSION = "0.9.1"
DATA_SHAPE = (
    "a Parquet row of `messages`, `tools` and `enable_thinking` (MultiTurnSFTDataset's keys); reasoning in "
    "`reasoning_content`, none for a model that never thinks"
)
CONFIG = {
    "messages_key": "messages",
    "tools_key": "tools",
    "enable_thinking_key": "enable_thinking",
    "pad_mode": "no_padding",
    "truncation": "error",
    "max_length": 1 << 20,
}


def _import() -> Any:
    vision = "verl.models.transformers.qwen2_vl"
    if vision not in sys.modules:
        try:
            __import__(vision)
        except ImportError:  # transformers 5.x dropped a class it imports; only its image path needs it

            def get_rope_index(*_: Any, **__: Any) -> Any:
                raise NotImplementedError("Qwen2-VL vision positions: not on the text SFT path")

            stub = types.ModuleType(vision)
            stub.get_rope_index = get_rope_index  # type: ignore[attr-defined]  # a module made here: no declared attributes
            sys.modules[vision] = stub
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
    except ImportError as exc:
        raise Unsupported(
            f"verl is not installed ({exc}): pip install --no-deps verl=={VERSION} tensordict pyvers cloudpickle"
        ) from None
    return MultiTurnSFTDataset


def row(request: Any) -> dict[str, Any]:
    messages = [json_arguments(m) for m in as_trained(request)]
    out_row: dict[str, Any] = {"messages": messages}
    if request.tools:
        out_row["tools"] = request.tools
    if "enable_thinking" in request.chat_template_kwargs:
        out_row["enable_thinking"] = bool(request.chat_template_kwargs["enable_thinking"])
    return out_row


@real_clock
def preprocess(request: Any) -> dict[str, Any]:
    import pandas

    dataset_cls = _import()
    with tempfile.TemporaryDirectory(prefix="cth-verl-") as folder:
        path = Path(folder) / "row.parquet"
        pandas.DataFrame([row(request)]).to_parquet(path)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sample = dataset_cls(str(path), request.tokenizer, dict(CONFIG))[0]
    return {"input_ids": sample["input_ids"].tolist(), "loss_mask": [int(x) for x in sample["loss_mask"].tolist()]}
