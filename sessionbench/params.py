"""Hyperparameter checks shared by every recommender: one rule vocabulary, one error message.

A recommender stores each hyperparameter under an attribute of the same name and then calls
:func:`check_params` with a rule per attribute. The first value that breaks its rule raises
``ValueError("ItemKNN: alpha must be in [0, 1], got 1.5")``: the model, the hyperparameter,
what was expected and what was given, which is what a user who mistyped a ``--set`` needs.

Example::

    check_params(self, epochs=POSITIVE_INT, learning_rate=POSITIVE, dropout=FRACTION,
                 counting=one_of("events", "sessions"), patience=optional(POSITIVE_INT))
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FRACTION",
    "NON_NEGATIVE",
    "NON_NEGATIVE_INT",
    "OPEN_UNIT",
    "POSITIVE",
    "POSITIVE_INT",
    "Rule",
    "UNIT",
    "check_params",
    "fail",
    "is_integer",
    "is_real",
    "one_of",
    "optional",
]


@dataclass(frozen=True)
class Rule:
    """What a value must be: ``expected`` completes "must be ..."; ``ok`` tests a value."""

    expected: str
    ok: Callable[[Any], bool]


def is_integer(value: Any) -> bool:
    """An integer (numpy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A real number (numpy's too), not a bool."""
    # NaN fails every comparison below, so it is refused by each numeric rule
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


POSITIVE_INT = Rule("a positive integer", lambda v: is_integer(v) and v >= 1)
NON_NEGATIVE_INT = Rule("an integer >= 0", lambda v: is_integer(v) and v >= 0)
POSITIVE = Rule("> 0", lambda v: is_real(v) and v > 0)
NON_NEGATIVE = Rule(">= 0", lambda v: is_real(v) and v >= 0)
#: A dropout rate or probability that may not reach 1.
FRACTION = Rule("in [0, 1)", lambda v: is_real(v) and 0 <= v < 1)
UNIT = Rule("in [0, 1]", lambda v: is_real(v) and 0 <= v <= 1)
OPEN_UNIT = Rule("in (0, 1)", lambda v: is_real(v) and 0 < v < 1)


def one_of(*choices: Any) -> Rule:
    """The value must equal one of ``choices``."""
    return Rule(f"one of {', '.join(map(str, choices))}", lambda v: any(isinstance(v, type(c)) and v == c for c in choices))


def optional(rule: Rule) -> Rule:
    """``rule`` or None."""
    return Rule(f"{rule.expected} or None", lambda v: v is None or rule.ok(v))


def fail(owner: object, param: str, expected: str) -> None:
    """Raise the suite's ValueError for hyperparameter ``param`` of ``owner`` (a recommender)."""
    raise ValueError(f"{type(owner).__name__}: {param} must be {expected}, got {getattr(owner, param)!r}")


def check_params(owner: object, **rules: Rule) -> None:
    """Check ``owner``'s hyperparameter attributes against their rules, in the order given.

    Raises:
        ValueError: "<class>: <param> must be <expected>, got <value>" for the first failure.
    """
    for param, rule in rules.items():
        if not rule.ok(getattr(owner, param)):
            fail(owner, param, rule.expected)
