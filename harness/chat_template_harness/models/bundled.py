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

from chat_template_harness.models import named

MISTRAL_COMMON = "mistral-common"


def data_dir() -> Path:
    """mistral-common's bundled tokenizer files."""
    import mistral_common

    return Path(mistral_common.__file__).parent / "data"


def tokenizer_file(spec: Any) -> Path:
    """The bundled file a built-in Mistral model is (its one pinned file)."""
    name: str = spec.files[0].name
    return data_dir() / name


def load(path: Path) -> Any:
    """A transformers tokenizer for a bundled file, its chat template mistral-common's, and the file it came from."""
    from mistral_common.integrations.chat_templates.chat_templates import convert_tokenizer_to_chat_template

    template = convert_tokenizer_to_chat_template(str(path))
    if path.suffix == ".json":
        tokenizer = _tekken(path)
    else:
        from transformers import (
            LlamaTokenizerFast,  # the fast one in 4.57 (the slow one has no offsets); 5.x's only one
        )

        # no prefix space at the head of the text and no stripping when decoding: the template writes every space,
        # and a token decoded alone keeps its own (mistral-common's ids are compared with these, cell by cell)
        tokenizer = LlamaTokenizerFast.from_pretrained(
            str(_as_folder(path)), legacy=False, add_prefix_space=False, from_slow=True
        )
    named.record_loaded(tokenizer, template)
    tokenizer.mistral_common_file = str(path)  # the served prompt's renderer reads it (serving/mistral.py)
    return tokenizer


def _tekken(path: Path) -> Any:
    try:
        from transformers.integrations.mistral.tokenizer import convert_tekken_tokenizer  # transformers 5
    except (
        ImportError
    ):  # transformers 4.57: integrations/mistral.py is a module, its converter predates mistral-common 1.13
        return _tekken_transformers4(path)
    return convert_tekken_tokenizer(str(path))


def _tekken_transformers4(path: Path) -> Any:
    """transformers 4.57.6's `convert_tekken_tokenizer`, step for step, but for one fix: mistral-common 1.13 lists its
    special tokens as dicts ({"rank", "token_str", "is_control"}), which 4.57 uses as dict keys (TypeError)."""
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
    from transformers import LlamaTokenizerFast
    from transformers.integrations.mistral import MistralConverter  # type: ignore[attr-defined]  # 4.x only (below)

    # Any: the fields read below are private to mistral-common's Tekkenizer
    tekken: Any = MistralTokenizer.from_file(str(path)).instruct_tokenizer.tokenizer
    specials = [t["token_str"] if isinstance(t, dict) else t for t in tekken._all_special_tokens]
    specials = [getattr(t, "value", t) for t in specials]
    vocab = {token: rank for rank, token in enumerate(specials)}
    vocab.update(tekken._tekken_token2id_nospecial)
    # transformers 4.x's converter (this path runs only there): the installed 5.x neither exports it from this
    # module nor takes these arguments
    converter = MistralConverter(vocab=vocab, additional_special_tokens=specials)  # type: ignore[call-arg]
    tokenizer = LlamaTokenizerFast(tokenizer_object=converter.converted())
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    return tokenizer


@cache
def _as_folder(path: Path) -> Path:
    """A folder holding the SentencePiece file as `tokenizer.model`, the name transformers loads it by."""
    folder = Path(tempfile.mkdtemp(prefix="cth-mistral-"))
    (folder / "tokenizer.model").symlink_to(path)
    return folder
