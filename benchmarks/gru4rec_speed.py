"""Training speed of GRU4Rec (ICLR 2016 and tuned settings) and Improved GRU4Rec at DIGINETICA
scale: seconds per epoch, training events (GRU4Rec) or sequences (Improved) per second, and
scoring speed, with 1 and 2 torch threads.

Data: the ``diginetica`` synthetic preset (~720k training cases, ~43k items), or the real
DIGINETICA split with --data-dir. Target (issue 5): one GRU4Rec epoch under 2 minutes on the
2-core machine. Run it on an otherwise idle machine (under the CPU lock).

    python benchmarks/gru4rec_speed.py [--methods gru4rec,gru4rec-tuned,gru4rec-improved]
        [--threads 1,2] [--epochs 1] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import baselines.gru4rec.recommender as gru4rec_module  # where GRU4Rec calls train_epochs
import baselines.gru4rec_improved as improved_module
from sessionbench.data import load_dataset
from sessionbench.evaluation import evaluate
from sessionbench.registry import resolve
from sessionbench.training import EpochLog, train_epochs


def _recording_train_epochs(logs: list[EpochLog]):
    """train_epochs with an on_epoch hook that records each epoch's log (for its seconds)."""

    def run(*args, **kwargs):
        kwargs["on_epoch"] = logs.append
        return train_epochs(*args, **kwargs)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="gru4rec,gru4rec-tuned,gru4rec-improved")
    parser.add_argument("--threads", default="1,2", help="torch thread counts to try (default: 1,2)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (default: 1)")
    parser.add_argument("--data-dir", type=Path, default=None, help="real DIGINETICA split (default: synthetic preset)")
    parser.add_argument("--evaluate", action="store_true", help="also time scoring every test prefix")
    args = parser.parse_args()
    split = load_dataset("diginetica", args.data_dir) if args.data_dir else load_dataset("synthetic", size="diginetica")
    events = split.train.n_prefixes  # one prediction per training event (GRU4Rec) or prefix (Improved)
    print(f"{split.name}: {len(split.train):,} training sessions, {events:,} training events (= prefixes), "
          f"{split.n_items:,} items, {split.test.n_prefixes:,} test cases")
    for method in args.methods.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            logs: list[EpochLog] = []
            module = improved_module if method == "gru4rec-improved" else gru4rec_module
            original, module.train_epochs = module.train_epochs, _recording_train_epochs(logs)
            try:
                rec = resolve(method)(epochs=args.epochs)
                started = time.perf_counter()
                rec.fit(split, seed=0, progress=False)
                fit_seconds = time.perf_counter() - started
            finally:
                module.train_epochs = original
            epoch = min(log.seconds for log in logs)
            unit = "sequences" if method == "gru4rec-improved" else "events"
            line = (f"{method:17s} threads={threads}: epoch {epoch:6.1f} s ({events / epoch:8,.0f} {unit}/s), "
                    f"fit {fit_seconds:6.1f} s for {args.epochs} epoch(s), loss {logs[-1].loss:.4f}")
            if args.evaluate:
                started = time.perf_counter()
                result = evaluate(rec, split.test, n_items=split.n_items, progress=False)
                seconds = time.perf_counter() - started
                m = result.metrics
                line += (f"; scoring {seconds:.1f} s ({split.test.n_prefixes / seconds:,.0f} cases/s), "
                         f"Recall@20 {100 * m['recall@20']:.2f} MRR@20 {100 * m['mrr@20']:.2f}")
            print(line, flush=True)


if __name__ == "__main__":
    main()
