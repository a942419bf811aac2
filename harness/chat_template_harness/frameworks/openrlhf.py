"""OpenRLHF 0.11.2's SFT dataset (`openrlhf.datasets.SFTDataset`), behind the plug-in interface.

Each cell runs OpenRLHF's own dataset class unchanged, as `openrlhf.cli.train_sft` builds it with
`--apply_chat_template --input_key messages`: a one-row Hugging Face `datasets.Dataset` of OpenAI-format
`messages` (reasoning in `reasoning_content`, tool-call arguments as JSON strings: OpenRLHF has no reasoning
field of its own and hands the messages to `tokenizer.apply_chat_template` as they are, `openrlhf/datasets/
sft_dataset.py` at 0.11.2, so the template's own field is where a user's data holds it), mapped by its
`process_data`, then `__getitem__(0)`, whose `input_ids` and `loss_mask` are read as they are. Two adapters:
`sft` (OpenRLHF's default: the last reply is the response, everything before it the prompt) and `multiturn`
(`--multiturn`: every assistant turn's range). OpenRLHF calls `tokenizer.apply_chat_template` with no
keyword: no think switch and no tools reach the template (a deployment's think-off prompt cannot be made). A model that never thinks (no think mode) gets its replies without reasoning (`frameworks/rows.py`).

OpenRLHF's `loss_mask` is aligned with the logit that predicts a token (`loss_mask[0, prompt_len - 1:-1] = 1`:
position i trains token i + 1); the adapter returns it as labels on the predicted tokens (label j = input
id j where OpenRLHF's mask is 1 at j - 1, else -100), the convention the harness reads.

Install the safe way (never its declared dependencies: deepspeed, vLLM, ray, a CUDA torch): `pip install
--no-deps openrlhf==0.11.2 pylatexenc` (imported by its utils at load). Nothing of OpenRLHF is stubbed; the
`strategy` argument is the namespace of command-line settings the dataset reads (`args.data`), and datasets'
cache naming of each map draws a random name instead of hashing the tokenizer (see `_unhashed_maps`).

    cth check chat_template_harness.frameworks.openrlhf:multiturn --model qwen3-8b
"""

from __future__ import annotations

import contextlib
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from chat_template_harness.external import PreprocessorError, Unsupported, real_clock
from chat_template_harness.frameworks.rows import as_trained, json_arguments

VERSION = "0.11.2"
DATA_SHAPE = (
    "OpenAI `messages` (`--input_key messages --apply_chat_template`); reasoning in `reasoning_content`, "
    "handed to the template as it is, none for a model that never thinks"
)


def _import() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import datasets
            from datasets import Dataset
            from openrlhf.datasets import SFTDataset
    except ImportError as exc:
        raise Unsupported(
            f"OpenRLHF is not installed ({exc}): pip install --no-deps openrlhf=={VERSION} pylatexenc"
        ) from None
    datasets.disable_progress_bars()  # one bar per map and filter of a one-row dataset, on every cell
    return Dataset, SFTDataset


@contextlib.contextmanager
def _unhashed_maps() -> Iterator[None]:
    """datasets names a map's cache by hashing its function with dill: OpenRLHF's bound `process_data` carries the
    whole tokenizer (~4 s a call). A one-row in-memory dataset writes no cache, so the name is drawn at random,
    as datasets itself does for a function it cannot hash; what the map computes is unchanged."""
    from datasets import arrow_dataset, fingerprint

    def random_name(*_: Any) -> str:
        name: str = fingerprint.generate_random_fingerprint()
        return name

    saved = fingerprint.update_fingerprint, arrow_dataset.update_fingerprint
    fingerprint.update_fingerprint = arrow_dataset.update_fingerprint = random_name
    try:
        yield
    finally:
        fingerprint.update_fingerprint, arrow_dataset.update_fingerprint = saved


def row(request: Any) -> dict[str, Any]:
    messages = [json_arguments(m) for m in as_trained(request)]
    return {"messages": messages}


def preprocess(multiturn: bool, request: Any) -> dict[str, Any]:
    dataset_cls, sft_dataset = _import()
    data = types.SimpleNamespace(
        input_key="messages", output_key=None, apply_chat_template=True, tokenizer_chat_template=None
    )
    strategy = types.SimpleNamespace(args=types.SimpleNamespace(data=data))
    with warnings.catch_warnings(), _unhashed_maps():
        warnings.simplefilter("ignore")
        dataset = sft_dataset(
            dataset_cls.from_list([row(request)]),
            request.tokenizer,
            1 << 20,
            strategy,
            num_processors=None,
            multiturn=multiturn,
        )
    if len(dataset) == 0:
        raise PreprocessorError(
            "OpenRLHF's SFTDataset filters this conversation out (no prompt or response)", "it never reaches training"
        )
    input_ids, _, loss_mask = dataset[0]
    ids, mask = input_ids[0].tolist(), [int(x) for x in loss_mask[0].tolist()]
    labels = [-100] + [ids[j] if mask[j - 1] else -100 for j in range(1, len(ids))]
    return {"input_ids": ids, "labels": labels}


def _adapter(multiturn: bool) -> Callable[[Any], dict[str, Any]]:
    def adapter(request: Any) -> dict[str, Any]:
        return preprocess(multiturn, request)

    adapter.__name__ = adapter.__qualname__ = "multiturn" if multiturn else "sft"
    adapter.__doc__ = f"OpenRLHF {VERSION}'s SFTDataset{' with --multiturn' if multiturn else ''}."
    return real_clock(adapter)


sft = _adapter(False)
multiturn = _adapter(True)
