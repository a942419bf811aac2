"""vLLM's speculators 0.9.0: its EAGLE-3 training-data preprocessing, behind the plug-in interface.

speculators turns a conversation into one training row per assistant turn
(`speculators.data_generation.preprocessing._preprocess_batch`, what `speculators prepare-data` maps over a
dataset): it renders the conversation up to the turn with the generation prompt and through the turn without
it, both by a running vLLM server's `/v1/chat/completions/render` endpoint, and trains every token after the
point where the two renders part (or their common prefix, where the history agrees). That code runs here
unchanged; the one thing that cannot run offline is the HTTP call (`render_client.render_conversation`), so
it is answered by the harness's vLLM profile (`serving/profiles.py`, checked against vLLM 0.33.0's own code by
`nox -s servers`): the request normalised as vLLM does, rendered by the model's template with the deployed
server's default `chat_template_kwargs` (the think switch; speculators sends none), tokenized without special
tokens; Mistral models by mistral-common's ids, as vLLM serves them. gpt-oss is N/A: vLLM renders it through
harmony, which the profile renders only as a prompt, never as a finished turn.

Install the safe way (never its declared dependencies: a CUDA torch, torchvision, torchaudio): `pip install
--no-deps speculators==0.9.0 hs-connectors==0.9.0` and what its modules import at load beyond the lock (the
openai and httpx clients: openai, httpx, httpcore, distro, jiter, sniffio; scripts/setup pins them). Nothing is
stubbed but the render call above.

    cth check chat_template_harness.frameworks.speculators:preprocess --model qwen3-8b
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any

from chat_template_harness.external import PreprocessorError, Unsupported, real_clock

VERSION = "0.9.0"
DATA_SHAPE = "`conversations` as speculators prepare-data reads them, rendered by the vLLM server's endpoint"
ENDPOINT = "http://vllm.invalid:8000"  # never reached: render_conversation is answered by the vLLM profile


def _import() -> Any:
    try:
        with warnings.catch_warnings():  # its modules use torch.jit.script at import: torch's deprecation, not ours
            warnings.simplefilter("ignore", DeprecationWarning)
            from speculators.data_generation import preprocessing
    except ImportError as exc:
        raise Unsupported(
            f"speculators is not installed ({exc}): pip install --no-deps speculators=={VERSION} and what "
            "scripts/setup installs beside it"
        ) from None
    return preprocessing


def _renderer(request: Any) -> Any:
    """`render_conversation` as a vLLM 0.33.0 server for this model answers it (the harness's vLLM profile)."""
    from chat_template_harness.contract.render import render
    from chat_template_harness.models import source
    from chat_template_harness.models.rules import Think, ThinkMode
    from chat_template_harness.models.rules.registry import family_for
    from chat_template_harness.serving import mistral, profiles

    vllm = profiles.get("vllm")
    family = family_for(source.get_model(request.model), request.tokenizer)
    if family.name in vllm.harmony_families:
        raise Unsupported(
            "vLLM renders gpt-oss through harmony; the harness renders harmony only as a prompt, never a "
            "finished turn, so it cannot answer speculators' full render"
        )
    mode = family.mode(Think(request.think))
    assert isinstance(mode, ThinkMode), "a request is made only for a think mode the family has (external.request_for)"

    def render_conversation(
        endpoint: str,
        messages: list[dict[str, Any]],
        *,
        add_generation_prompt: bool,
        tools: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> list[int]:
        normalised = vllm.normalise(copy.deepcopy(messages))
        if family.renderer == "mistral-common":
            path = mistral.file_of(request.tokenizer)
            if path is None:  # as serving/served.py's prompt_ids: the ids come from mistral-common's own file
                raise Unsupported(
                    f"{family.title} is served by mistral-common, but this tokenizer is not one of its files"
                )
            return mistral.prompt_ids(
                path, mistral.truncated_ids(normalised), tools or (), finished=not add_generation_prompt
            )
        text = render(
            request.tokenizer,
            profiles.as_template_messages(normalised, family.reasoning_field),
            family=family,
            mode=mode,
            tools=tools or (),
            add_generation_prompt=add_generation_prompt,
        )
        ids: list[int] = request.tokenizer.encode(text, add_special_tokens=False)
        return ids

    return render_conversation


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@real_clock
def preprocess(request: Any) -> list[dict[str, list[int]]]:
    """speculators' rows for one conversation: input_ids and loss_mask per assistant turn."""
    preprocessing = _import()
    saved = preprocessing.render_conversation
    preprocessing.render_conversation = _renderer(request)
    errors = _Errors()
    logger = logging.getLogger(preprocessing.__name__)
    logger.addHandler(errors)
    try:
        out = preprocessing._preprocess_batch(
            {"conversations": [request.messages], "tools": [request.tools]},
            is_multimodal=False,
            render_endpoint=ENDPOINT,
            max_length=1 << 20,
        )
    finally:
        preprocessing.render_conversation = saved
        logger.removeHandler(errors)
    if not out["input_ids"]:
        # speculators logs the failure and drops the conversation: that is its output, and a finding
        raise PreprocessorError(
            f"speculators drops this conversation: {'; '.join(errors.messages) or 'no supervised row'}",
            "it logs the reason and skips the row: the row never reaches training",
        )
    return [
        {"input_ids": ids.tolist(), "loss_mask": mask.tolist()}
        for ids, mask in zip(out["input_ids"], out["loss_mask"], strict=True)
    ]
