"""What the models trained on every prefix with a softmax over all items share (NARM and its
variants, STAMP, SR-GNN): the suite's protocol for them, their scoring, saving and loading.

A subclass gives its network (:meth:`PrefixSoftmaxModel._new_module`, a module whose
``forward(items, lengths)`` scores every item) and the loss of one batch
(:meth:`PrefixSoftmaxModel._loss`, usually :func:`sessionbench.losses.softmax_cross_entropy` of
its query against the item table); it may change the optimiser and its learning-rate schedule.
The protocol (``docs/protocol.md``, "Selection and refit"): the epochs are selected on a hold-out
of the training cases by Recall@20, with early stopping; with ``refit`` the network is then
trained again from the same initial weights on every training case for the selected number of
epochs, and that one is reported. Each phase keeps its own checkpoint, so an interrupted fit
resumes where it stopped.

Items are embedding rows ``item + 1`` in the network (row 0 is the padding), cases are held as
tensors (:class:`sessionbench.cases.Cases`), and a subclass's hyperparameters must include
``learning_rate, batch_size, epochs, patience, max_length, truncate, validation,
validation_fraction, refit, selection, precision``.

``selection="test-best"`` (never the default) reproduces the authors' scripts instead: no
hold-out, the test set scored after every epoch by the harness (the ``monitor`` of
:meth:`PrefixSoftmaxModel.fit`), the best epoch kept. Such a run is labelled as selected on the
test set on every page, and kept out of Table 3.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sessionbench.cases import VALIDATIONS, Cases, holdout, truncate
from sessionbench.data import Sessions, Split
from sessionbench.evaluation import rank_of_targets
from sessionbench.losses import softmax_cross_entropy
from sessionbench.params import OPEN_UNIT, POSITIVE, POSITIVE_INT, one_of, optional
from sessionbench.precision import PRECISIONS, resolve_precision
from sessionbench.recommender import PAD, PrefixBatch, Recommender
from sessionbench.training import (
    Checkpoint,
    EpochLog,
    adam_options,
    fit_checkpoint,
    generators,
    phase_checkpoint,
    resolve_device,
    resumed,
    selection_record,
    train_epochs,
)

__all__ = ["PROTOCOL_RULES", "SELECTIONS", "TEST_BEST", "PrefixSoftmaxModel", "StepDecayAdam"]

#: How the epochs are selected: on the validation hold-out (the suite's protocol, always the
#: default), or on the test set as the authors' scripts did (labelled wherever it appears).
TEST_BEST = "test-best"
SELECTIONS = ("validation", TEST_BEST)

#: The checks of the hyperparameters every subclass shares (for ``check_params(self, **...)``).
PROTOCOL_RULES = {
    "learning_rate": POSITIVE,
    "batch_size": POSITIVE_INT,
    "epochs": POSITIVE_INT,
    "patience": optional(POSITIVE_INT),
    "validation": one_of(*VALIDATIONS),
    "validation_fraction": OPEN_UNIT,
    "refit": one_of(True, False),
    "selection": one_of(*SELECTIONS),
    "precision": one_of(*PRECISIONS),
}


class PrefixSoftmaxModel(Recommender):
    """Base class of the models trained on every (prefix -> next click) case with a full softmax."""

    module_: torch.nn.Module | None = None  # the reported network
    history_: list[EpochLog] | None = None  # the reported network's epochs: loss, seconds (validation when not refit)
    n_items_: int | None = None  # size of the item vocabulary the network scores
    resumed_: dict | None = None  # {"epochs", "seconds"} taken from checkpoints by the last fit
    precision_: str | None = None  # "fp32" or "bf16": what ``precision`` meant in the last fit

    # ------------------------------------------------------------------ what a subclass gives
    def _new_module(self, n_items: int, generator: torch.Generator) -> torch.nn.Module:
        """A fresh network over ``n_items`` items, its weights drawn from ``generator`` (CPU)."""
        raise NotImplementedError

    def _learn_from(self, sessions: Sessions, seed: int) -> None:
        """Called before each training phase's network is made, with the sessions its cases come
        from (the selection run's older sessions, or every training session for the refit) and
        the fit's seed: what a model builds from the training data beyond its cases (GCE-GNN's
        global graph). The default does nothing."""

    def _loss(self, items: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The mean training loss of one batch (items as embedding rows, targets as item
        indices), its dropout drawn from ``generator``; the graph is kept for ``backward``."""
        raise NotImplementedError

    def _item_softmax(self, query: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The mean softmax cross-entropy of ``query`` against every item's embedding, fused
        (:func:`sessionbench.losses.softmax_cross_entropy`), in the fit's precision: the
        module's ``embedding`` table goes in whole, its padding row 0 no candidate (``first=1``)
        and its rows 1.. the module's ``item_embeddings``."""
        return softmax_cross_entropy(query, self.module_.embedding.weight, targets, precision=self.precision_, first=1)

    def _optimizer(self, module: torch.nn.Module) -> torch.optim.Optimizer:
        """Adam at ``learning_rate`` (fused where torch has it)."""
        return torch.optim.Adam(module.parameters(), lr=self.learning_rate, **adam_options(self.device))

    def _prepare_gradients(self, n_cases: int) -> None:
        """Called between ``backward`` (of the batch's mean loss over its ``n_cases`` cases) and
        the optimiser step, to scale or clip the gradients as a model's code does; the default
        leaves them."""

    def _schedule(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler | None:
        """The learning-rate schedule, stepped after every epoch; None (the default): constant."""
        return None

    # ----------------------------------------------------------------------------- training
    def fit(
        self,
        split: Split,
        *,
        seed: int,
        device: str = "cpu",
        progress: bool = True,
        checkpoint: str | Path | None = None,
        monitor: Callable[[], dict[str, float]] | None = None,
    ) -> PrefixSoftmaxModel:
        """Select the epochs on the held-out cases by their Recall@20, then (``refit``) train on
        every training case for that many epochs.

        ``history_`` is the reported network's epoch log (the refit's, or the selection run's
        when ``refit`` is False); ``selection_`` records the selection run (the epochs chosen
        and run, the validation curve) when refitting, and ``fit_report_`` says it in words.

        Args:
            checkpoint: A file to save the training in after every epoch (the refit's beside
                it: :func:`sessionbench.training.phase_checkpoint`). If it holds this training
                (same data, hyperparameters, seed and device type), the training resumes after
                its last saved epoch and ends as an uninterrupted one would; ``resumed_`` then
                says how many epochs and seconds came from it.
            monitor: Only for ``selection="test-best"``, and given by the harness: the current
                network's test-set metrics (``{"recall@20": ..., "mrr@20": ...}``). The network
                then trains on every training case, is scored on the test set after every
                epoch, and the epoch of best test Recall@20 is kept; ``selection_`` records both
                test curves and the best Recall@20 and the best MRR@20 over epochs, as the
                authors' scripts report them.

        Raises:
            ValueError: ``selection="test-best"`` without a ``monitor``, or a ``monitor`` with
                the default selection (the suite's protocol never looks at the test set).
        """
        if (self.selection == TEST_BEST) != (monitor is not None):
            raise ValueError(
                f"{type(self).__name__}: selection={self.selection!r} "
                + ("selects on the test set and needs the harness's test monitor (run it through the harness)"
                   if monitor is None else "never looks at the test set; a monitor is only for selection='test-best'")
            )
        self.device = str(resolve_device(device))
        self.fit_report_ = None
        self.precision_ = resolve_precision(self.precision, self.device)
        self.n_items_ = split.n_items
        rng, gen = generators(seed, self.device)  # gen draws the dropout masks
        init = int(rng.integers(2**62))  # the initial weights' seed
        desc = f"{self.name} {split.name}"
        if monitor is not None:
            return self._fit_on_test(split, rng, gen, init, checkpoint, seed, desc, progress, monitor)
        train, valid = self._holdout(split.train, rng)
        self.history_, saved = self._train(train, valid, rng, gen, init, self.epochs, checkpoint, split, seed, desc, progress)
        phases, self.selection_ = [saved], None
        if self.refit:
            # the fair protocol: the selected epochs again, from the same start, on every training case
            self.selection_ = selection_record(self.history_, "recall@20", self._validation_name())
            rng, gen = generators(seed, self.device)
            init = int(rng.integers(2**62))
            everything = Cases(split.train, *split.train.prefix_cases(), self.max_length, self.truncate)
            path = phase_checkpoint(checkpoint, "refit")
            epochs = self.selection_["epochs"]
            self.history_, saved = self._train(everything, None, rng, gen, init, epochs, path, split, seed, f"{desc} refit", progress)
            phases.append(saved)
            self.fit_report_ = {"selection": self._selection_words()}
        self.resumed_ = resumed(*phases)
        self.module_.eval()
        return self

    def _train(
        self,
        train: Cases,
        valid: Cases | Callable[[], float | tuple[float, dict[str, float]]] | None,
        rng: np.random.Generator,
        gen: torch.Generator,
        init: int,
        epochs: int,
        checkpoint: str | Path | None,
        split: Split,
        seed: int,
        desc: str,
        progress: bool,
    ) -> tuple[list[EpochLog], Checkpoint | None]:
        """A fresh network (weights seeded by ``init``) trained on ``train`` for up to ``epochs``
        epochs; with ``valid`` (cases, or a callable returning the score), early stopping on its
        Recall@20 and the best epoch kept. Returns the epoch log and the checkpoint used."""
        self._learn_from(train.sessions, seed)
        self.module_ = self._new_module(split.n_items, torch.Generator().manual_seed(init)).to(self.device)
        optimizer = self._optimizer(self.module_)
        schedule = self._schedule(optimizer)

        def run_epoch(epoch: int) -> float:
            self.module_.train()
            order = torch.from_numpy(rng.permutation(len(train)))
            # one running sum on the device: no sync per step, and no list of small tensors,
            # which pinned glibc heap memory between the big per-step blocks (the RSS of a
            # DIGINETICA epoch grew by 3 MB a step)
            total = torch.zeros((), device=self.device)
            starts = range(0, len(order), self.batch_size)
            for lo in tqdm(starts, desc=f"{desc} epoch {epoch + 1}", unit="batch", disable=not progress, leave=False):
                total += self._step(optimizer, *train.batch(order[lo : lo + self.batch_size], self.device), gen)
            if schedule is not None:
                schedule.step()
            return float(total) / len(starts)

        state = {"optimizer": optimizer, "rng": rng, "dropout": gen, **({"schedule": schedule} if schedule else {})}
        saved = fit_checkpoint(checkpoint, self, split, seed, self.device, state)
        history = train_epochs(
            run_epoch,
            epochs=epochs,
            module=self.module_,
            validate=valid if callable(valid) or valid is None else (lambda: self._recall(valid)),
            patience=None if valid is None else self.patience,
            progress=progress,
            desc=desc,
            checkpoint=saved,
        )
        return history, saved

    def _fit_on_test(
        self,
        split: Split,
        rng: np.random.Generator,
        gen: torch.Generator,
        init: int,
        checkpoint: str | Path | None,
        seed: int,
        desc: str,
        progress: bool,
        monitor: Callable[[], dict[str, float]],
    ) -> PrefixSoftmaxModel:
        """``selection="test-best"``: every training case, the test set scored after every epoch,
        the epoch of best test Recall@20 kept (early stopping with ``patience`` on it)."""
        everything = Cases(split.train, *split.train.prefix_cases(), self.max_length, self.truncate)

        def on_test() -> tuple[float, dict[str, float]]:
            metrics = monitor()
            return metrics["recall@20"], {"recall@20": metrics["recall@20"], "mrr@20": metrics["mrr@20"]}

        self.history_, saved = self._train(everything, on_test, rng, gen, init, self.epochs, checkpoint, split, seed, desc, progress)
        self.selection_ = {
            **selection_record(self.history_, "recall@20", "the test set (as published: selected on test)"),
            "mrr_curve": [round(h.metrics["mrr@20"], 6) for h in self.history_],
            "best": {m: max(h.metrics[m] for h in self.history_) for m in ("recall@20", "mrr@20")},
        }
        best = self.selection_["best"]
        self.fit_report_ = {
            "selection": f"SELECTED ON THE TEST SET (selection=test-best): epoch {self.selection_['epochs']} of "
            f"{self.selection_['epochs_run']} kept for its test Recall@20; best over epochs Recall@20 "
            f"{100 * best['recall@20']:.2f}, MRR@20 {100 * best['mrr@20']:.2f}"
        }
        self.resumed_ = resumed(saved)
        self.module_.eval()
        return self

    def _holdout(self, sessions: Sessions, rng: np.random.Generator) -> tuple[Cases, Cases]:
        """Training and validation cases: the most recent sessions, or random prefixes."""
        return holdout(sessions, self.validation, self.validation_fraction, rng, self.max_length, self.truncate)

    def _step(
        self,
        optimizer: torch.optim.Optimizer,
        items: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """One mini-batch: the loss, backward, an optimiser step. Returns the loss."""
        optimizer.zero_grad(set_to_none=True)
        loss = self._loss(items, lengths, targets, generator)
        loss.backward()
        self._prepare_gradients(len(targets))
        optimizer.step()
        return loss.detach()

    @torch.inference_mode()
    def _recall(self, cases: Cases, k: int = 20) -> float:
        """Recall@k of the current network on held-out cases (ties count against the target)."""
        self.module_.eval()
        hits = 0
        for lo in range(0, len(cases), 1024):
            items, lengths, targets = cases.batch(torch.arange(lo, min(lo + 1024, len(cases))), self.device)
            scores = self.module_(items, lengths)
            hits += int((rank_of_targets(scores, targets, name=self.name) <= k).sum())
        return hits / len(cases)

    def _validation_name(self) -> str:
        how = "the most recent sessions" if self.validation == "recent" else "random prefixes"
        return f"{self.validation_fraction:.0%} of the training cases, {how}"

    def _selection_words(self) -> str:
        s = self.selection_
        return (
            f"{s['epochs']} epochs selected of {s['epochs_run']} run (validation Recall@20 {100 * max(s['curve']):.2f} "
            f"on {s['on']}), then refit on all training sessions for {s['epochs']} epochs"
        )

    # ------------------------------------------------------------------------------ scoring
    def _prepare(self, batch: PrefixBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Check and truncate a batch; (items as embedding rows, lengths) on the device."""
        self._check_fitted("module_")
        if len(batch) and (batch.items.shape[1] == 0 or int(batch.lengths.min()) < 1):
            row = int(np.argmin(batch.lengths)) if batch.items.shape[1] else 0
            raise ValueError(
                f"{type(self).__name__}: prefix {row} of the batch is empty (length 0); "
                "every prefix needs at least one click"
            )
        batch = truncate(batch, self.max_length, self.truncate)
        if len(batch) and (batch.items.max() >= self.n_items_ or batch.items.min() < PAD):
            raise ValueError(
                f"{type(self).__name__}: item indices must be in 0..{self.n_items_ - 1}, "
                f"found {batch.items.min()}..{batch.items.max()}"
            )
        items = torch.from_numpy(batch.items + 1).to(self.device)
        return items, torch.from_numpy(np.asarray(batch.lengths, dtype=np.int64)).to(self.device)

    def score(self, batch: PrefixBatch) -> torch.Tensor:
        """Scores of every item after each prefix (the logits of the softmax): float32[B, n_items]."""
        items, lengths = self._prepare(batch)
        self.module_.eval()
        with torch.inference_mode():
            return self.module_(items, lengths)

    # --------------------------------------------------------------------------- save / load
    def save(self, path: str | Path) -> Path:
        """Write the class, hyperparameters, vocabulary size and learned weights (a
        ``state_dict``, no pickled objects)."""
        self._check_fitted("module_")
        path = Path(path)
        torch.save(
            {
                "class": f"{type(self).__module__}:{type(self).__qualname__}",
                "params": self.get_params(),
                "n_items": self.n_items_,
                "state_dict": self.module_.state_dict(),
            },
            path,
        )
        return path

    @classmethod
    def load(cls, path: str | Path, n_items: int | None = None, device: str = "cpu") -> Any:
        """Read a model written by :meth:`save` (``weights_only`` loading, no code runs).

        Args:
            n_items: The item vocabulary the caller will score (e.g. ``split.n_items``); a
                checkpoint trained on another vocabulary is refused.

        Raises:
            ValueError: the vocabulary sizes differ, or the file is not a saved model.
        """
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not {"params", "n_items", "state_dict"} <= state.keys():
            raise ValueError(f"{path}: not a checkpoint written by {cls.__name__}.save (expected params, n_items, state_dict)")
        if n_items is not None and state["n_items"] != n_items:
            raise ValueError(
                f"{path}: checkpoint was trained on {state['n_items']} items, but the data has {n_items} items; "
                "retrain on this item vocabulary"
            )
        rec = cls(**state["params"])
        rec.n_items_ = int(state["n_items"])
        rec.device = str(resolve_device(device))
        rec.module_ = rec._new_module(rec.n_items_, torch.Generator())
        rec.module_.load_state_dict(state["state_dict"])
        rec.module_.to(rec.device).eval()
        return rec


class StepDecayAdam:
    """Mixin for a :class:`PrefixSoftmaxModel` trained as SR-GNN's and GCE-GNN's code train:
    Adam with the L2 penalty as weight decay (``Adam(lr, weight_decay=l2)``) and the rate
    multiplied by ``lr_decay`` every ``lr_decay_step`` epochs (``StepLR``), stepped after each
    epoch. The model has ``learning_rate``, ``l2``, ``lr_decay`` and ``lr_decay_step``."""

    def _optimizer(self, module: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(module.parameters(), lr=self.learning_rate, weight_decay=self.l2, **adam_options(self.device))

    def _schedule(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.lr_decay_step, gamma=self.lr_decay)
