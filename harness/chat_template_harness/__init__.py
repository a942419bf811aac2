"""chat-template-harness: regression tests and goldens for chat-template training-data preprocessing.

The flow, one module per stage: source (pinned tokenizers) -> families (template rules) ->
conversation (fixtures) -> render (served prompts) -> turns (what is generated) -> sample
(reference preprocessor) -> invariants -> golden / matrix -> smoke (training step).
"""

__version__ = "0.1.0"

if __name__ != "chat_template_harness":  # pragma: no cover - only when the source folder is imported by path
    raise ImportError(
        f"this folder is the source of `chat_template_harness`, imported here as `{__name__}`; "
        "fix: `pip install -e .` and import chat_template_harness"
    )
