"""chat-template-harness: regression tests and goldens for chat-template training-data preprocessing.

The flow, one module per stage: source (pinned tokenizers) -> families (template rules) ->
conversation (fixtures) -> render (served prompts) -> turns (what is generated) -> sample
(reference preprocessor) -> invariants -> golden / matrix -> smoke (training step).
"""

__version__ = "0.1.0"
