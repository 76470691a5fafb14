"""gru4rec-tuned's training step on real DIGINETICA batches, and the bare products it is made of.

Times ``--steps`` session-parallel steps of the official DIGINETICA setting (BPR-max, 512 units,
mini-batch 128, 2,048 shared negatives) after 100 warm-up steps, once per precision, and prints
the milliseconds a step and the steps' mean loss (equal across code versions that compute the
same thing). ``--products`` also times the step's eight matrix products (three forward, five
backward) as bare ``torch.mm`` in fp32 and bf16: the floor no step can go below.

    flock /tmp/sessionbench-cpu.lock python benchmarks/gru4rec_step.py \\
        --data-dir ../shared/data/diginetica-narm-preprocessed [--precision fp32,bf16] [--products]

To compare code versions, run it from a worktree of each, alternating, with
``PYTHONPATH=<worktree>`` (the machine's speed drifts between minutes).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import baselines.gru4rec.recommender as gru4rec_module  # where GRU4Rec calls train_epochs
from baselines.gru4rec import GRU4RecTuned
from sessionbench.data import load_dataset

WARM_UP = 100


def step_ms(split, steps: int, precision: str | None) -> tuple[float, float]:
    """(ms a step, mean loss) over steps WARM_UP .. WARM_UP + steps of the first epoch."""
    rec = GRU4RecTuned(epochs=1) if precision is None else GRU4RecTuned(epochs=1, precision=precision)
    measured = {}

    def timed_epochs(run_epoch, **_):
        schedule = rec._width
        rec._width = schedule[:WARM_UP]
        run_epoch(0)
        rec._width = schedule[WARM_UP : WARM_UP + steps]
        started = time.perf_counter()
        measured["loss"] = run_epoch(0)
        measured["ms"] = 1000 * (time.perf_counter() - started) / steps
        return []

    original, gru4rec_module.train_epochs = gru4rec_module.train_epochs, timed_epochs
    try:
        rec.fit(split, seed=0, progress=False)
    finally:
        gru4rec_module.train_epochs = original
    return measured["ms"], measured["loss"]


def products(reps: int = 50) -> None:
    """The step's eight products at DIGINETICA's shapes, bare torch.mm, median of ``reps``."""
    b, h, u = 128, 512, 2176  # rows, units, unique output items of a step (128 targets + 2,048)
    shapes = {"scores": (b, h, u), "d hidden": (b, u, h), "d items": (u, b, h), "W_ih x": (b, h, 3 * h),
              "d W_ih": (3 * h, b, h), "d x": (b, 3 * h, h), "W_hh h": (b, h, 3 * h), "d W_hh": (3 * h, b, h)}
    for dtype in (torch.float32, torch.bfloat16):
        total = 0.0
        for name, (m, k, n) in shapes.items():
            a, w = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
            for _ in range(5):
                torch.mm(a, w)
            times = []
            for _ in range(reps):
                started = time.perf_counter()
                torch.mm(a, w)
                times.append(time.perf_counter() - started)
            ms = 1000 * statistics.median(times)
            total += ms
            print(f"  {str(dtype):15s} {name:9s} {m}x{k}x{n}: {ms:.3f} ms ({2 * m * k * n / ms / 1e6:,.0f} GFLOP/s)")
        print(f"  {str(dtype):15s} the eight products: {total:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the real DIGINETICA split")
    parser.add_argument("--steps", type=int, default=300, help="steps timed (default: 300)")
    parser.add_argument("--precision", default="fp32",
                        help="comma-separated; 'none' for code without the option (default: fp32)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--products", action="store_true", help="also time the bare products")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = load_dataset("diginetica", args.data_dir)
    for precision in args.precision.split(","):
        ms, loss = step_ms(split, args.steps, None if precision == "none" else precision)
        print(f"gru4rec-tuned, {precision}: {ms:.2f} ms a step over {args.steps} steps, mean loss {loss:.6f}", flush=True)
    if args.products:
        products()


if __name__ == "__main__":
    main()
