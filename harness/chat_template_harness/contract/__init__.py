"""The contract: what a correct training sample is, and the eight invariants that check any sample.

conversation -> render -> turns -> sample -> invariants; tokens and compare are used by all of them.
"""
