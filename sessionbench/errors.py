"""The suite's two diagnostics: one error for bad input, one warning for suspicious input.

Both subclass built-ins so that generic handlers (``except ValueError``) keep working.
"""

from __future__ import annotations

__all__ = ["DataError", "DataWarning"]


class DataError(ValueError):
    """Input that cannot be used: a missing file, a malformed row, an empty split.

    The message says what was expected, what was found, where (file and line, or argument),
    and what to do next.
    """


class DataWarning(UserWarning):
    """Input that can be used but looks suspicious, e.g. test clicks on items unseen in training."""
