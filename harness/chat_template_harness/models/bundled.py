"""Tokenizers a library ships instead of a tokenizer folder: mistral-common's bundled Mistral tokenizers.

Mistral models are served by ids from `mistral-common` in every server the harness knows (vLLM
`--tokenizer-mode mistral`, SGLang and transformers 5 all load them as transformers'
`MistralCommonBackend`, whose `apply_chat_template` is `ChatCompletionRequest.from_openai` +
`encode_chat_completion`). The library ships the tokenizer files of the released models
(`mistral_common/data/`): a built-in Mistral model is such a file, pinned by sha256 like any pack file.

For the harness's text pipeline (offsets, masks, goldens) the file is loaded as a transformers
tokenizer (tekken: `convert_tekken_tokenizer`; SentencePiece: `LlamaTokenizer` on the `.model` file),
with the chat template mistral-common itself generates for that file
(`integrations.chat_templates.convert_tokenizer_to_chat_template`). Neither is the served prompt:
`serving/mistral.py` serves mistral-common's ids, and every sample must tokenize back to exactly
those ids (invariant 4 for an id-native renderer).
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Any

MISTRAL_COMMON = "mistral-common"


def data_dir() -> Path:
    """mistral-common's bundled tokenizer files."""
    import mistral_common

    return Path(mistral_common.__file__).parent / "data"


def tokenizer_file(spec: Any) -> Path:
    """The bundled file a built-in Mistral model is (its one pinned file)."""
    return data_dir() / spec.files[0].name


def load(path: Path) -> Any:
    """A transformers tokenizer for a bundled file, its chat template mistral-common's, and the file it came from."""
    from mistral_common.integrations.chat_templates.chat_templates import convert_tokenizer_to_chat_template

    template = convert_tokenizer_to_chat_template(str(path))
    if path.suffix == ".json":
        from transformers.integrations.mistral.tokenizer import convert_tekken_tokenizer

        tokenizer = convert_tekken_tokenizer(str(path), chat_template=template)
    else:
        from transformers import LlamaTokenizer

        # no prefix space at the head of the text and no stripping when decoding: the template writes every space,
        # and a token decoded alone keeps its own (mistral-common's ids are compared with these, cell by cell)
        tokenizer = LlamaTokenizer.from_pretrained(str(_as_folder(path)), legacy=False, add_prefix_space=False)
        tokenizer.chat_template = template
    tokenizer.mistral_common_file = str(path)  # the served prompt's renderer reads it (serving/mistral.py)
    return tokenizer


@cache
def _as_folder(path: Path) -> Path:
    """A folder holding the SentencePiece file as `tokenizer.model`, the name transformers loads it by."""
    folder = Path(tempfile.mkdtemp(prefix="cth-mistral-"))
    (folder / "tokenizer.model").symlink_to(path)
    return folder
