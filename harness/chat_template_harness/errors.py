"""Errors a user can act on.

Every error the harness raises for bad input or a bad environment is a HarnessError: one line
that says what is wrong, and a `fix` that says what to do. The CLI prints exactly that line
(no traceback) and exits with status 2.
"""

from __future__ import annotations


class HarnessError(Exception):
    """A problem with the input or the environment, with the fix for it."""

    def __init__(self, message: str, fix: str, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.code = code  # what kind of problem, for the modules that count them (never read off the message)

    def __str__(self) -> str:
        return f"{self.message}; fix: {self.fix}"

    def __reduce__(self) -> tuple[object, ...]:
        """Sent between processes (cells/run.py's workers) as it is, whatever the subclass's own arguments."""
        return (_restored, (type(self), self.args, dict(self.__dict__)))


def _restored(kind: type[HarnessError], args: tuple[object, ...], state: dict[str, object]) -> HarnessError:
    error = kind.__new__(kind)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class UnknownModelError(HarnessError):
    """A model name that is neither a registered short name nor a registered hub id."""


class MissingTokenizerError(HarnessError):
    """The tokenizer files cannot be found (no pack folder, or the hub is out of reach)."""


class HashMismatchError(HarnessError):
    """A tokenizer file is missing or differs from the pinned sha256."""


class FixtureError(HarnessError):
    """A conversation file or message that the harness cannot use."""


class TemplateDriftError(HarnessError):
    """The real chat template no longer behaves as the family rules say it does."""
