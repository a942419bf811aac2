"""Family rules: their shape (`model`), their files (`files`, built-ins in `builtin/`), and their
derivation from a template (`derive`). Built-in and user rules take the same path: a TOML file
read by `files.read`.
"""

from chat_template_harness.models.rules.model import Family, NotApplicable, Think, ThinkMode, Undecided

__all__ = ["Family", "NotApplicable", "Think", "ThinkMode", "Undecided"]
