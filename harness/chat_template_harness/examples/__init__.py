"""Worked example preprocessors: what the harness catches in code written the usual ways."""
