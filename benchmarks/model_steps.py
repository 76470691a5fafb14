"""The training step of each full-softmax prefix model (NARM, STAMP, SR-GNN, GCE-GNN) at
DIGINETICA scale: milliseconds per mini-batch, the epoch it projects to, and the peak memory.

Each model takes its own batch size and settings (GCE-GNN's DIGINETICA ones: hop 2), builds what
it builds from the training sessions (GCE-GNN's global graph), and runs ``--steps`` timed steps
of its own ``_step`` on random training batches after a few untimed ones, one model after the
other in one process. The projection is the median step times the steps of one epoch over every
training case (a refit epoch). Run::

    python benchmarks/model_steps.py [--data-dir ../shared/data/diginetica-narm-preprocessed] [--threads 2]

Without ``--data-dir`` the synthetic DIGINETICA-size preset stands in.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from sessionbench.cases import Cases
from sessionbench.data import load_dataset
from sessionbench.precision import resolve_precision
from sessionbench.provenance import PeakRSS, device_description
from sessionbench.registry import resolve

METHODS = ("narm", "stamp", "srgnn", "gcegnn")


def steps_of(method: str, split, steps: int, warmup: int = 3) -> str:
    cls = resolve(method)
    rec = cls(**cls.defaults_for(split.name))
    rec.device, rec.n_items_ = "cpu", split.n_items
    rec.precision_ = resolve_precision(rec.precision, "cpu")
    with PeakRSS() as memory:
        started = time.perf_counter()
        rec._learn_from(split.train, 0)
        rec.module_ = rec._new_module(split.n_items, torch.Generator().manual_seed(0)).train()
        cases = Cases(split.train, *split.train.prefix_cases(), rec.max_length, rec.truncate)
        setup = time.perf_counter() - started
        optimizer, gen = rec._optimizer(rec.module_), torch.Generator().manual_seed(0)
        order = torch.from_numpy(np.random.default_rng(0).permutation(len(cases)))
        seconds = []
        for i in range(warmup + steps):
            batch = cases.batch(order[i * rec.batch_size : (i + 1) * rec.batch_size], "cpu")
            started = time.perf_counter()
            rec._step(optimizer, *batch, gen)
            seconds.append(time.perf_counter() - started)
    step = float(np.median(seconds[warmup:]))
    per_epoch = int(np.ceil(len(cases) / rec.batch_size))
    return (f"{method:7s}: {1e3 * step:7.1f} ms/step at batch {rec.batch_size}, {per_epoch:,} steps an epoch -> "
            f"{step * per_epoch / 60:6.1f} min an epoch; setup {setup:.1f} s; peak {memory.peak / 2**30:.2f} GiB; "
            f"precision {rec.precision_}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=None, help="real DIGINETICA split (default: the synthetic preset)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--methods", default=",".join(METHODS))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    split = load_dataset("diginetica", args.data_dir) if args.data_dir else load_dataset("synthetic", size="diginetica")
    print(f"{split.name}: {split.train.n_prefixes:,} training cases, {split.n_items:,} items; {device_description('cpu')}, "
          f"{args.threads} threads, torch {torch.__version__}")
    for method in args.methods.split(","):
        print(steps_of(method, split, args.steps), flush=True)


if __name__ == "__main__":
    main()
