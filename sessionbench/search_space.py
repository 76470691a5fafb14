"""What a tunable hyperparameter may take: the vocabulary of a recommender's ``search_space``.

A recommender that can be tuned declares, next to its hyperparameters, the range each tuned one
is searched over::

    class SKNN(Recommender):
        search_space = {
            "k": Int(50, 1500, log=True),
            "sample_size": Choice(500, 1000, 2500, 5000, 10000),
            "similarity": Choice("cosine", "jaccard"),
        }

Hyperparameters not listed keep their defaults. The tuner (:mod:`sessionbench.tuning`) turns each
entry into an optuna suggestion; nothing here imports optuna, so a class can declare its space
without the ``tune`` extra installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

__all__ = ["Choice", "Float", "Int", "Space"]


@dataclass(frozen=True)
class Int:
    """An integer in [low, high], every ``step`` (searched on a log scale with ``log``)."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        if not self.low <= self.high or (self.log and self.low < 1) or self.step < 1 or (self.log and self.step != 1):
            raise ValueError(f"{self}: needs low <= high, low >= 1 on a log scale, step >= 1 (1 on a log scale)")

    def suggest(self, trial: Any, name: str) -> int:
        return int(trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log))


@dataclass(frozen=True)
class Float:
    """A real number in [low, high] (searched on a log scale with ``log``)."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high or (self.log and self.low <= 0):
            raise ValueError(f"{self}: needs low <= high, and low > 0 on a log scale")

    def suggest(self, trial: Any, name: str) -> float:
        return float(trial.suggest_float(name, self.low, self.high, log=self.log))


class Choice:
    """One of a few values (numbers, strings, booleans or None)."""

    def __init__(self, *options: Any) -> None:
        if not options:
            raise ValueError("Choice needs at least one option")
        self.options = tuple(options)

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.options))

    def __repr__(self) -> str:
        return f"Choice({', '.join(map(repr, self.options))})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Choice) and other.options == self.options

    def __hash__(self) -> int:
        return hash(self.options)


Space = Union[Int, Float, Choice]
