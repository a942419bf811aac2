"""Someone else's preprocessor checked against the contract: check (per cell), baseline (allowances,
known failures), conformance (every preprocessor side by side). The interface it implements is
`chat_template_harness.external`.
"""
