"""The contract every recommender must meet, as pytest tests a plugin author can reuse.

Subclass :class:`RecommenderContract` in a test module and say how to build your model::

    from sessionbench.testing import RecommenderContract

    class TestMyRec(RecommenderContract):
        def make(self):
            return MyRec(epochs=1)

pytest then checks that hyperparameters round-trip, that ``score`` before ``fit`` names the
class, that scores cover every item and are finite, that a batch scores like its rows scored
one at a time, that a fixed seed gives identical scores, and what a benchmark needs of any
model: the batches it scores carry no targets (as in the harness), its scores depend on the
prefix alone, and it beats random scores on the toy data. The toy data is
:func:`oracle_split`: random sessions in which item 0 ("A") is always followed by item 1 ("B").
"""

from __future__ import annotations

import inspect
import json
from typing import ClassVar

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from sessionbench.data import Sessions, Split
from sessionbench.recommender import NotFittedError, PrefixBatch, Recommender
from sessionbench.training import Checkpoint

__all__ = ["RecommenderContract", "abc_split", "as_numpy", "interrupt_training", "oracle_split"]

A, B = 0, 1


def oracle_split(n_items: int = 30, n_train: int = 400, n_test: int = 60, seed: int = 0) -> Split:
    """Random sessions over ``n_items`` items in which A (item 0) is always followed by B (1).

    Clicks other than the B after an A are drawn with a mild popularity skew (weight
    ``(i + 1) ** -0.3`` for item i), so B is the most popular item and even a popularity
    baseline has something to learn; a session never starts with A or B.
    """
    rng = np.random.default_rng(seed)
    weights = np.arange(1, n_items + 1, dtype=np.float64) ** -0.3
    start = weights[2:] / weights[2:].sum()
    anywhere = weights / weights.sum()

    def sessions(n: int, t0: float) -> Sessions:
        out = []
        for _ in range(n):
            length = int(rng.integers(2, 8))
            s = [2 + int(rng.choice(n_items - 2, p=start))]
            while len(s) < length:
                s.append(B if s[-1] == A else int(rng.choice(n_items, p=anywhere)))
            out.append(s)
        return Sessions.from_lists(out, times=t0 + np.arange(n, dtype=np.float64))

    return Split(
        name="oracle",
        train=sessions(n_train, 0.0),
        test=sessions(n_test, float(n_train)),
        n_items=n_items,
        item_ids=np.arange(n_items, dtype=np.int64),
        info={"form": "synthetic", "order": "file"},
    )


def abc_split(n_items: int = 60, n_train: int = 600, seed: int = 0) -> Split:
    """A deterministic sequence A -> B -> C (items 0, 1, 2) in a third of the training sessions,
    random sessions of 2-5 other items otherwise; every test session is A, B, C, so a model that
    learned the sequence has Recall@20 = 1."""
    rng = np.random.default_rng(seed)
    train = [[0, 1, 2] if s % 3 == 0 else list(rng.integers(3, n_items, rng.integers(2, 6))) for s in range(n_train)]
    test = [[0, 1, 2]] * 20
    return Split("abc", Sessions.from_lists(train), Sessions.from_lists(test), n_items, np.arange(n_items))


def as_numpy(scores: np.ndarray | torch.Tensor) -> np.ndarray:
    """Scores as a float64 numpy array, wherever they were computed."""
    if isinstance(scores, torch.Tensor):
        return scores.detach().to("cpu", torch.float64).numpy()
    return np.asarray(scores, dtype=np.float64)


class RecommenderContract:
    """Mixin of contract tests; subclasses implement :meth:`make`."""

    #: Seed used for fitting.
    seed: ClassVar[int] = 0
    #: Absolute tolerance when comparing scores (float32 models batch differently).
    atol: ClassVar[float] = 1e-5
    _fitted: ClassVar[dict[type, tuple[Recommender, Split]]] = {}

    def make(self) -> Recommender:
        """A new, unfitted recommender (small settings so the contract runs in seconds)."""
        raise NotImplementedError

    def split(self) -> Split:
        return oracle_split()

    def fitted(self) -> tuple[Recommender, Split]:
        key = type(self)
        if key not in self._fitted:
            split = self.split()
            model = self.make().fit(split.training_view(), seed=self.seed, device="cpu", progress=False)
            self._fitted[key] = (model, split)
        return self._fitted[key]

    def _batch(self, split: Split, n: int = 16) -> PrefixBatch:
        """Test prefixes as the harness hands them to ``score``: without targets."""
        return next(split.test.prefix_batches(batch_size=n)).without_targets()

    def test_params_round_trip(self) -> None:
        rec = self.make()
        params = rec.get_params()
        json.dumps(params)  # JSON-serialisable, so it can go into result files
        assert type(rec)(**params).get_params() == params

    def test_unknown_hyperparameter_is_a_type_error(self) -> None:
        with pytest.raises(TypeError):
            type(self.make())(no_such_hyperparameter=1)

    def test_score_before_fit_names_the_class(self) -> None:
        rec = self.make()
        with pytest.raises(NotFittedError, match=type(rec).__name__):
            rec.score(self._batch(self.split()))

    def test_scores_cover_every_item_and_are_finite(self) -> None:
        rec, split = self.fitted()
        batch = self._batch(split)
        scores = as_numpy(rec.score(batch))
        assert scores.shape == (len(batch), split.n_items)
        assert np.isfinite(scores).all()

    def test_batch_scores_equal_rows_scored_alone(self) -> None:
        rec, split = self.fitted()
        batch = self._batch(split, 8)
        together = as_numpy(rec.score(batch))
        for row in range(len(batch)):
            width = int(batch.lengths[row])
            alone = PrefixBatch(batch.items[row : row + 1, :width], batch.lengths[row : row + 1])
            np.testing.assert_allclose(as_numpy(rec.score(alone))[0], together[row], atol=self.atol, rtol=1e-4)

    def test_scores_do_not_depend_on_the_cases_around_a_prefix(self) -> None:
        # the same prefixes in reverse order, among other rows, score the same
        rec, split = self.fitted()
        batch = self._batch(split, 12)
        forward = as_numpy(rec.score(batch))
        backward = as_numpy(rec.score(PrefixBatch(batch.items[::-1].copy(), batch.lengths[::-1].copy())))
        np.testing.assert_allclose(backward[::-1], forward, atol=self.atol, rtol=1e-4)

    def test_beats_random_on_the_oracle_split(self) -> None:
        # in the oracle's training sessions A is always followed by B: after a prefix ending
        # in A, any model that learned from split.train ranks B above chance
        rec, split = self.fitted()
        k, others = 5, range(B + 1, split.n_items)
        batch = PrefixBatch.from_lists([[A]] + [[x, A] for x in others])
        cases = len(batch)
        scores = as_numpy(rec.score(batch.without_targets()))
        ranks = (scores >= scores[:, [B]]).sum(axis=1)  # conservative: ties rank ahead of B
        hits = int((ranks <= k).sum())
        chance = k / split.n_items
        p = binomtest(hits, cases, chance, alternative="greater").pvalue
        assert p < 1e-3, (
            f"{type(rec).__name__} does not beat random scores on the contract's oracle split: B is in the top {k} "
            f"after {hits} of {cases} prefixes ending in A, against {cases * chance:.1f} by chance (binomial p = {p:.2g}); "
            "a model that learns nothing from split.train cannot be benchmarked"
        )

    def test_same_seed_gives_identical_scores(self) -> None:
        split = self.split()
        batch = self._batch(split)
        runs = [as_numpy(self.make().fit(split.training_view(), seed=self.seed, progress=False).score(batch)) for _ in range(2)]
        np.testing.assert_array_equal(runs[0], runs[1])

    def test_a_fit_interrupted_after_its_first_epoch_resumes_to_the_same_scores(self, tmp_path, monkeypatch) -> None:
        rec, split = self.fitted()
        if "checkpoint" not in inspect.signature(type(rec).fit).parameters:
            pytest.skip(f"{type(rec).__name__}.fit takes no checkpoint")
        path = tmp_path / "training.pt"
        interrupt_training(monkeypatch, after_epochs=1)
        with pytest.raises(KeyboardInterrupt):
            self.make().fit(split.training_view(), seed=self.seed, progress=False, checkpoint=path)
        resumed = self.make().fit(split.training_view(), seed=self.seed, progress=False, checkpoint=path)
        assert resumed.resumed_["epochs"] == 1
        if getattr(rec, "history_", None) is not None:  # the epoch log the result records
            assert [h.loss for h in resumed.history_] == [h.loss for h in rec.history_]
        batch = self._batch(split)
        np.testing.assert_array_equal(as_numpy(resumed.score(batch)), as_numpy(rec.score(batch)))


def interrupt_training(monkeypatch: pytest.MonkeyPatch, after_epochs: int) -> None:
    """Make the next training that saves a :class:`~sessionbench.training.Checkpoint` stop with
    KeyboardInterrupt right after saving its ``after_epochs``-th epoch, as a killed run would."""
    save, saved = Checkpoint.save, []

    def save_then_interrupt(checkpoint: Checkpoint, *args: object) -> None:
        save(checkpoint, *args)
        saved.append(checkpoint.path)
        if len(saved) == after_epochs:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoint, "save", save_then_interrupt)
