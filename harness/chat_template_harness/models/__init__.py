"""The models: where a tokenizer comes from (source, userconfig) and its family rules (rules/)."""
