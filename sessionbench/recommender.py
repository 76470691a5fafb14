"""The one interface every recommender implements, and the batch of test prefixes it scores.

A recommender is constructed from keyword hyperparameters (defaults are the paper's settings),
fitted on a :class:`~sessionbench.data.Split`, and asked for a score for every item after each
prefix of a batch: full ranking, no sampled candidates.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pathlib import Path

    import torch
    from typing_extensions import Self

    from sessionbench.data import Split
    from sessionbench.search_space import Space

__all__ = ["PAD", "NotFittedError", "PrefixBatch", "Recommender"]

#: Value of the padding positions of :attr:`PrefixBatch.items`. Item indices start at 0, so the
#: padding value is -1; ``items + 1`` maps it to 0, the usual ``padding_idx`` of an embedding.
PAD = -1


class NotFittedError(RuntimeError):
    """``score`` (or anything that needs learned state) was called before ``fit``."""


@dataclass(frozen=True)
class PrefixBatch:
    """A batch of prefixes of sessions and, for training, the click that followed each.

    The batches a model's :meth:`Recommender.score` receives carry no targets (``targets`` is
    None): the evaluator keeps them, so nothing a model reads or writes in its batch can change
    how it is graded. Training batches (built by a model from ``split.train``) carry them.

    Attributes:
        items: int64[B, L]. Item indices (0..n_items-1) of each prefix in click order, left
            aligned; positions ``>= lengths[b]`` hold :data:`PAD` (-1).
        lengths: int64[B]. Number of real clicks in each row, >= 1.
        targets: int64[B] item index of the click that followed each prefix, or None in a
            batch to be scored.
    """

    items: np.ndarray
    lengths: np.ndarray
    targets: np.ndarray | None = None

    @classmethod
    def from_lists(cls, prefixes: list[list[int]], targets: list[int] | None = None) -> PrefixBatch:
        """A batch built by hand from prefixes of item indices (targets 0 when not given).

        Example: ``PrefixBatch.from_lists([[3, 1], [2]], targets=[4, 0])``.
        """
        if not prefixes or not all(len(p) >= 1 for p in prefixes):
            raise ValueError("PrefixBatch.from_lists: every prefix needs at least one click")
        items = np.full((len(prefixes), max(map(len, prefixes))), PAD, dtype=np.int64)
        for row, prefix in enumerate(prefixes):
            items[row, : len(prefix)] = prefix
        lengths = np.array([len(p) for p in prefixes], dtype=np.int64)
        targets = np.zeros(len(prefixes), dtype=np.int64) if targets is None else np.asarray(targets, dtype=np.int64)
        return cls(items, lengths, targets)

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def mask(self) -> np.ndarray:
        """bool[B, L]: True at real clicks, False at padding."""
        return self.items != PAD

    @property
    def last_items(self) -> np.ndarray:
        """int64[B]: the last click of each prefix (what item-to-item methods look at)."""
        return self.items[np.arange(len(self)), self.lengths - 1]

    def without_targets(self) -> PrefixBatch:
        """Copies of the prefixes and lengths, without the targets: what a model scores."""
        return PrefixBatch(self.items.copy(), self.lengths.copy())

    def to_torch(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
        """The arrays as torch tensors on ``device``: (items, lengths), and targets when the
        batch carries them."""
        import torch

        arrays = (self.items, self.lengths) if self.targets is None else (self.items, self.lengths, self.targets)
        return tuple(torch.from_numpy(a).to(device) for a in arrays)


class Recommender(ABC):
    """Base class of every recommender, built-in or plugin.

    Subclasses declare their hyperparameters as keyword arguments of ``__init__`` with the
    paper's values as defaults, store each under an attribute of the same name, and implement
    :meth:`fit` and :meth:`score`. Nothing else is required; the harness times and measures
    around these calls, so a model never times itself.

    Example::

        class MostRecent(Recommender):
            name = "most-recent"

            def __init__(self, boost: float = 1.0):
                self.boost = boost

            def fit(self, split, *, seed, device="cpu", progress=True):
                self.n_items_ = split.n_items
                return self

            def score(self, batch):
                scores = np.zeros((len(batch), self.n_items_), dtype=np.float32)
                scores[np.arange(len(batch)), batch.last_items] = self.boost
                return scores
    """

    #: Registry key, e.g. ``"narm"``. Plugins choose their own.
    name: ClassVar[str] = ""

    #: The row of the paper's Table 3 this method reproduces (e.g. "NARM"), or None.
    paper_row: ClassVar[str | None] = None

    #: Benchmark suites that run this method by default: "main" (Tables 1, 3, 5) and/or
    #: "ablations" (Tables 2, 4).
    suites: ClassVar[tuple[str, ...]] = ("main",)

    #: Hyperparameters for a smoke run (``--quick``), e.g. ``{"epochs": 1}``.
    quick_params: ClassVar[dict[str, Any]] = {}

    #: Hyperparameter settings a suite runs, e.g. ``{"ablations": [{"hidden_size": 50},
    #: {"hidden_size": 100}]}`` (a suite not listed runs the defaults once).
    suite_params: ClassVar[dict[str, list[dict[str, Any]]]] = {}

    #: Rows of the paper's ablation tables this method fills, e.g. ``{"table2": "bi-linear",
    #: "table4": "hybrid"}`` (Table 4's column is the ``hidden_size`` hyperparameter).
    paper_tables: ClassVar[dict[str, str]] = {}

    #: What ``--tune`` searches, hyperparameter by hyperparameter, e.g. ``{"n_neighbors":
    #: Int(20, 2000, log=True), "alpha": Float(0.0, 1.0)}`` (see :mod:`sessionbench.search_space`);
    #: the others keep their defaults. Empty (the default): the method is never tuned.
    search_space: ClassVar[dict[str, Space]] = {}

    #: Device the fitted model scores on ("cpu" unless ``fit`` chose otherwise).
    device: str = "cpu"

    #: What the last fit actually did where it can differ from its settings, set by ``fit``
    #: (e.g. ``{"pretrain": "skipped: the split has no full training set"}``); the harness
    #: records it in the result and the page shows it.
    fit_report_: dict[str, Any] | None = None

    #: The selection run of the fair protocol, for a model that selects on the validation split
    #: and then refits on all of the training data (:func:`sessionbench.training.selection_record`:
    #: the metric, the epochs selected and run, the validation curve); the harness records it.
    selection_: dict[str, Any] | None = None

    @classmethod
    def defaults_for(cls, dataset: str) -> dict[str, Any]:
        """Hyperparameters that replace the constructor's defaults on ``dataset`` (its name as
        the plan gives it, e.g. "yoochoose-1-64"): a method whose published setting was tuned
        per dataset (the official GRU4Rec's parameter files) returns that dataset's here.
        Empty (the default): the same defaults everywhere. The plan applies them below any
        tuned setting or ``--set`` override, and a page labels the run by what differs from them.
        """
        return {}

    @abstractmethod
    def fit(self, split: Split, *, seed: int, device: str = "cpu", progress: bool = True) -> Self:
        """Learn from ``split.train`` (never ``split.test``) and return ``self``.

        Args:
            split: The dataset split. The harness passes its training view, whose ``test``
                holds no sessions. Models that need validation data carve it from
                ``split.train`` by time.
            seed: Seeds every random generator the model uses (SPEC 7: pass generators down,
                never touch global RNG state).
            device: "cpu" or "cuda"; models without a torch part ignore it.
            progress: Show progress bars.
        """

    @abstractmethod
    def score(self, batch: PrefixBatch) -> np.ndarray | torch.Tensor:
        """Scores of every item after each prefix: float[B, n_items], higher is better.

        ``batch.targets`` is None here: a score depends on the prefix alone."""

    def attention_figure(self, split: Split, path: Path) -> Path:
        """Draw this model's attention weights over a few test sessions to ``path`` (PNG).

        Only attention models implement it (NARM: the paper's Figure 6).

        Raises:
            NotImplementedError: the model has no attention weights.
        """
        raise NotImplementedError(f"{type(self).__name__} has no attention weights to draw")

    def get_params(self) -> dict[str, Any]:
        """The constructor's keyword arguments and their current values (JSON-serialisable)."""
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_fitted(self, *attributes: str) -> None:
        """Raise :class:`NotFittedError` naming the class if any learned attribute is unset."""
        if any(getattr(self, a, None) is None for a in attributes):
            raise NotFittedError(f"{type(self).__name__}: call fit() before score()")
