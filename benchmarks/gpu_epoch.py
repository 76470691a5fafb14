"""Every torch model for one epoch at DIGINETICA scale: the prepared script of a GPU session (one
run, a few minutes), and the epoch cost of each model on the CPU.

For each of gru4rec, gru4rec-tuned, gru4rec-improved, narm, narm-fc, stamp, srgnn and gcegnn: one epoch
through the model's own ``fit`` on ``--device`` (seconds, the precision it resolved, the peak
memory of the fit: resident memory on the CPU, allocated memory on a GPU), a resume from its
checkpoint on the GPU (a second fit of the same training must take the epoch from the file), and
scoring the prefixes of the first 3,000 test sessions in fp32 (seconds, Recall@20). A model that fails is
reported with its error and the others go on. Run::

    python benchmarks/gpu_epoch.py --device cuda [--data-dir ../shared/data/diginetica-narm-preprocessed]

On a machine without a GPU, ``--device cpu`` runs the same path on the CPU (slowly); ``--methods
stamp,srgnn`` picks models.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from sessionbench.data import load_dataset
from sessionbench.evaluation import evaluate
from sessionbench.provenance import PeakRSS
from sessionbench.registry import resolve

METHODS = ("gru4rec", "gru4rec-tuned", "gru4rec-improved", "narm", "narm-fc", "stamp", "srgnn", "gcegnn")


def one(method: str, split, device: str, checkpoint: Path) -> str:
    cls = resolve(method)
    params = {"epochs": 1, **({"pretrain_epochs": 0} if method == "gru4rec-improved" else {})}
    if "refit" in cls().get_params():
        params["refit"] = False  # one epoch, not a selection run and a refit
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    with PeakRSS() as memory:
        rec = cls(**params).fit(split, seed=0, device=device, progress=False, checkpoint=checkpoint)
    fit = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else memory.peak
    epoch = rec.history_[0].seconds
    again = cls(**params).fit(split, seed=0, device=device, progress=False, checkpoint=checkpoint)
    resumed = (again.resumed_ or {}).get("epochs")
    test = split.test.select(np.arange(min(len(split.test), 3000)))
    started = time.perf_counter()
    result = evaluate(rec, test, n_items=split.n_items, progress=False)
    scoring = time.perf_counter() - started
    return (f"{method:17s}: epoch {epoch:7.1f} s, fit {fit:7.1f} s, peak {peak / 2**30:.2f} GiB, "
            f"precision {getattr(rec, 'precision_', None) or 'fp32'}, "
            f"resumed {resumed} epoch(s) from the checkpoint, scoring {len(result.greater):,} prefixes {scoring:.1f} s, "
            f"Recall@20 {100 * result.metrics['recall@20']:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--data-dir", type=Path, default=None, help="real DIGINETICA split (default: the synthetic preset)")
    p.add_argument("--size", default="diginetica", help="synthetic preset without --data-dir (default: diginetica)")
    p.add_argument("--methods", default=",".join(METHODS))
    args = p.parse_args()
    split = load_dataset("diginetica", args.data_dir) if args.data_dir else load_dataset("synthetic", size=args.size)
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"{split.name}: {split.train.n_prefixes:,} training sequences, {split.n_items:,} items; {where}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            try:
                print(one(method, split, args.device, Path(tmp) / f"{method}.pt"), flush=True)
            except Exception as e:  # noqa: BLE001 - one failing model must not hide the others
                print(f"{method:17s}: FAILED {type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}", flush=True)


if __name__ == "__main__":
    main()
