"""gru4rec-tuned against the official GRU4Rec PyTorch code, side by side: one epoch each on the
same DIGINETICA training sessions, with the official DIGINETICA parameter file, the same
threads, one after the other.

The official code (github.com/hidasib/GRU4Rec_PyTorch_Official) runs from its own folder with
its own Python, outside this repository; it is never a dependency::

    git clone https://github.com/hidasib/GRU4Rec_PyTorch_Official /work/peers/gru4rec-official
    python3 -m venv /work/peers/gru4rec-venv
    /work/peers/gru4rec-venv/bin/pip install torch==2.13.0 "pandas<3" "numpy<2" joblib  # numpy 2 casts its float32 init to float64
    flock /tmp/sessionbench-cpu.lock .venv/bin/python benchmarks/gru4rec_official.py \\
        --official-dir /work/peers/gru4rec-official --official-python /work/peers/gru4rec-venv/bin/python \\
        --data-dir ../shared/data/diginetica-narm-preprocessed [--precision fp32,bf16]

Both train on the training sessions in file order (the official code orders sessions by their
first timestamp, so each click gets its index in the file as its time) and print the epoch's
seconds, training events per second and mean loss. The official code's loss is its per-batch
mean, averaged over the epoch; ours is the mean per prediction: close, not identical.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from baselines.gru4rec import GRU4RecTuned
from sessionbench.data import Sessions, load_dataset

_EPOCH = re.compile(r"Epoch1 --> loss: ([0-9.]+) \t\(([0-9.]+)s\) \t\[([0-9.]+) mb/s \| ([0-9]+) e/s\]")


def _write_tsv(sessions: Sessions, path: Path) -> None:
    """SessionId, ItemId, Time (the click's index in the file) as the official run.py reads them."""
    session = np.repeat(np.arange(len(sessions)), sessions.lengths)
    time_ = np.arange(len(session))
    with open(path, "w") as f:
        f.write("SessionId\tItemId\tTime\n")
        np.savetxt(f, np.column_stack([session, sessions.items, time_]), fmt="%d", delimiter="\t")


def _paramfile(official: Path, out: Path, epochs: int) -> Path:
    """The official DIGINETICA parameter file with ``n_epochs`` set to ``epochs``."""
    text = (official / "paramfiles" / "diginetica_bprmax_shared_best.py").read_text()
    text, n = re.subn(r"\('n_epochs', \d+\)", f"('n_epochs', {epochs})", text)
    if n != 1:
        raise SystemExit(f"{official}: could not set n_epochs in paramfiles/diginetica_bprmax_shared_best.py")
    out.write_text(text)
    return out


def official_epoch(official: Path, python: str, train: Path, params: Path, threads: int) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [python, str(official / "run.py"), str(train), "-pf", str(params), "-d", "cpu"]
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    match = _EPOCH.search(out.stdout)
    if match is None:
        raise SystemExit(f"the official code printed no epoch line (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    loss, seconds, _, events = match.groups()
    return {"loss": float(loss), "seconds": float(seconds), "events_per_s": float(events), "wall": wall}


def our_epoch(split, threads: int, precision: str) -> dict[str, float]:
    torch.set_num_threads(threads)
    rec = GRU4RecTuned(epochs=1, precision=precision).fit(split, seed=0, progress=False)
    log = rec.history_[0]
    return {"loss": log.loss, "seconds": log.seconds, "events_per_s": split.train.n_prefixes / log.seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--official-dir", type=Path, required=True, help="a checkout of GRU4Rec_PyTorch_Official")
    p.add_argument("--official-python", required=True, help="python of the official code's own environment")
    p.add_argument("--data-dir", type=Path, default=None, help="real DIGINETICA split (default: the synthetic preset)")
    p.add_argument("--threads", type=int, default=2, help="threads for both (default: 2)")
    p.add_argument("--precision", default="fp32",
                   help="ours: comma-separated precisions of its products, each one epoch (default: fp32, as the official code)")
    args = p.parse_args()
    split = load_dataset("diginetica", args.data_dir) if args.data_dir else load_dataset("synthetic", size="diginetica")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {args.threads} threads")
    print(f"{split.name}: {len(split.train):,} training sessions, {split.train.n_prefixes:,} training events, {split.n_items:,} items")
    with tempfile.TemporaryDirectory() as tmp:
        train = Path(tmp) / "train.tsv"
        _write_tsv(split.train, train)
        theirs = official_epoch(args.official_dir, args.official_python, train, _paramfile(args.official_dir, Path(tmp) / "params.py", 1), args.threads)
    runs = [("official GRU4Rec (PyTorch)", theirs)]
    runs += [(f"gru4rec-tuned, {p}", our_epoch(split, args.threads, p)) for p in args.precision.split(",")]
    for name, r in runs:
        speed_up = "" if r is theirs else f"  {theirs['seconds'] / r['seconds']:.2f}x the official code"
        print(f"  {name:28s}: epoch {r['seconds']:7.1f} s  {r['events_per_s']:7,.0f} events/s  loss {r['loss']:.4f}{speed_up}")


if __name__ == "__main__":
    main()
