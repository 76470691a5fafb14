"""The plugins and helpers of the issue-20 tests: models that cheat, crash or write over their
batch, and the cheapest model that runs the whole harness."""

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from sessionbench.harness import Job, run_job
from sessionbench.recommender import Recommender


class Scores(Recommender):
    """Seeded random scores: the cheapest model that runs the whole harness."""

    name = "scores"

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def fit(self, split, *, seed, device="cpu", progress=True):
        self.n_items_, self.seed_ = split.n_items, seed
        return self

    def score(self, batch):
        rng = np.random.default_rng([self.seed_, *batch.items[:, 0].clip(0).tolist()[:4]])
        return self.scale * rng.random((len(batch), self.n_items_), dtype=np.float32)


class Impostor(Scores):
    """A plugin that reuses a built-in's name."""

    name = "pop"


class Peeker(Scores):
    """Reads the answer from the batch, where a model must not find it."""

    name = "peeker"

    def score(self, batch):
        scores = np.zeros((len(batch), self.n_items_), dtype=np.float32)
        scores[np.arange(len(batch)), batch.targets] = 1.0
        return scores


class NextRow(Scores):
    """Learns nothing, but reads each row's answer off a longer prefix of its session in the
    same batch, if the evaluator puts one there."""

    name = "next-row"

    def score(self, batch):
        scores = np.zeros((len(batch), self.n_items_), dtype=np.float32)
        for i in range(len(batch)):
            for j in range(len(batch)):
                n = batch.lengths[i]
                if batch.lengths[j] > n and np.array_equal(batch.items[j, :n], batch.items[i, :n]):
                    scores[i, batch.items[j, n]] = 1.0
        return scores


class Vandal(Recommender):
    """Popularity, but it writes over the batch it is given."""

    name = "vandal"

    def fit(self, split, *, seed, device="cpu", progress=True):
        self.counts_ = np.bincount(split.train.items, minlength=split.n_items).astype(np.float32)
        return self

    def score(self, batch):
        scores = np.tile(self.counts_, (len(batch), 1))
        batch.items[:] = 0
        batch.lengths[:] = 1
        return scores


class Honest(Vandal):
    name = "honest"

    def score(self, batch):
        return np.tile(self.counts_, (len(batch), 1))


class Memoriser(Scores):
    """Looks at the test sessions in fit."""

    name = "memoriser"

    def fit(self, split, *, seed, device="cpu", progress=True):
        self.test_sessions_seen_ = len(split.test)
        return super().fit(split, seed=seed)

    def score(self, batch):
        assert self.test_sessions_seen_ == 0, "fit saw the test sessions"
        return super().score(batch)


class Slow(Scores):
    name = "slow"

    def fit(self, split, *, seed, device="cpu", progress=True):
        time.sleep(1.0)
        return super().fit(split, seed=seed)


class Exits(Scores):
    name = "exits"

    def fit(self, split, *, seed, device="cpu", progress=True):
        sys.exit(3)


class Killed(Scores):
    name = "killed"

    def fit(self, split, *, seed, device="cpu", progress=True):
        os.kill(os.getpid(), signal.SIGKILL)


class Figure(Scores):
    name = "figure"

    def attention_figure(self, split, path):
        Path(path).write_bytes(b"\x89PNG\r\n")
        return path


def job(method="integrity_plugins:Scores", **kwargs):
    return Job(kwargs.pop("dataset", "synthetic"), method, **kwargs)


def run(tmp_path, method="integrity_plugins:Scores", force=False, **kwargs):
    return run_job(job(method, **kwargs), results_dir=tmp_path, progress=False, force=force)


def clicks_csv(path: Path, seed: int = 0, sessions: int = 400) -> Path:
    """A click file of ``sessions`` sessions over 20 days, 40 items."""
    rng = np.random.default_rng(seed)
    rows = ["session_id,item_id,timestamp"]
    for s in range(sessions):
        start = 1_460_000_000 + s * 4320
        for c in range(int(rng.integers(2, 6))):
            rows.append(f"{s},{int(rng.integers(0, 40))},{start + 60 * c}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


