"""How fast NARM trains at DIGINETICA scale, on CPU or a GPU, what each speed-up buys, and
RecBole's NARM side by side.

Run it alone on the machine (under the CPU lock here)::

    flock /tmp/sessionbench-cpu.lock .venv/bin/python benchmarks/narm_speed.py
    flock /tmp/sessionbench-cpu.lock .venv/bin/python benchmarks/narm_speed.py --epoch
    flock /tmp/sessionbench-cpu.lock .venv/bin/python benchmarks/narm_speed.py --recbole-python /work/peers/venv/bin/python --recbole-dir /work/peers
    python benchmarks/narm_speed.py --device cuda --epoch     # on a machine with a GPU

Sections (each prints its figures):

1. ``matmul``: the three products of the scoring step, [512 x 50] x [50 x n_items] and the two
   of its gradient, as plain ``torch.mm`` with a preallocated output: GFLOP/s this machine gives.
2. ``loss``: scoring + softmax cross-entropy, forward and backward: ``F.cross_entropy`` on the
   full logits (fp32, and under bf16 autocast) against our chunked fused loss; achieved GFLOP/s
   of the three scoring matmuls (6 B D n FLOP per step).
3. ``step``: a whole training step (embedding, GRU, attention, loss, Adam) on the same real
   batches, with each speed-up added in turn: sequences per second.
4. ``--epoch``: one full epoch through ``NARM.fit`` (seconds, sequences per second, validation
   seconds).
5. ``--recbole-python``: RecBole 1.2.1's NARM (paper hyperparameters) for the same number of
   batches of the same data, in its own virtual environment, against ours with the same threads.

Timings are the minimum over repetitions (robust to other processes); the 1-minute load average
is printed so that a busy machine shows. With ``--device cuda`` every section runs on the GPU and
each timing waits for the GPU to finish (``torch.cuda.synchronize``); RecBole stays CPU-only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from narm.model import NARMModule
from narm.recommender import NARM
from sessionbench.cases import Cases
from sessionbench.data import Split, load_dataset
from sessionbench.losses import softmax_cross_entropy
from sessionbench.precision import resolve_precision
from sessionbench.training import generators, resolve_device

DEVICE = torch.device("cpu")  # set once by main(); every section allocates and times here


def _sync() -> None:
    # CUDA kernels run asynchronously: a timing that does not wait measures only the launches
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def _best(fn: Callable[[], object], reps: int, warm: int = 1) -> float:
    for _ in range(warm):
        fn()
    _sync()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - started)
    return min(times)


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.2f}"


def matmul_section(n_items: int, batch: int, dim: int, reps: int) -> dict[str, float]:
    """Times the three products of a scoring step in each layout, fp32 and bf16; returns, per
    dtype, the seconds of the three at their fastest layouts (what a loss is measured against)."""
    flop = 2 * batch * dim * n_items
    print(f"\n[matmul] plain torch.mm, preallocated outputs, {flop / 1e9:.2f} GFLOP each ({_load()})")
    bare = {}
    for dtype, label in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        gen = torch.Generator().manual_seed(0)
        items = torch.randn(n_items, dim, generator=gen).to(DEVICE, dtype)
        query = torch.randn(batch, dim, generator=gen).to(DEVICE, dtype)
        grad = torch.randn(batch, n_items, generator=gen).to(DEVICE, dtype)
        grad_t = grad.T.contiguous()
        out_bn, out_nb = (torch.empty(*shape, device=DEVICE, dtype=dtype) for shape in ((batch, n_items), (n_items, batch)))
        out_q, out_items = (torch.empty(*shape, device=DEVICE, dtype=dtype) for shape in ((batch, dim), (n_items, dim)))
        products = {
            "logits": (
                (f"logits  [{batch}x{dim}] x [{dim}x{n_items}]", lambda: torch.mm(query, items.T, out=out_bn)),
                (f"logits' [{n_items}x{dim}] x [{dim}x{batch}]", lambda: torch.mm(items, query.T, out=out_nb)),
            ),
            "query": (
                (f"d query [{batch}x{n_items}] x [{n_items}x{dim}]", lambda: torch.mm(grad, items, out=out_q)),
                ("d query from logits' (transposed view)", lambda: torch.mm(grad_t.T, items, out=out_q)),
            ),
            "items": (
                (f"d items [{n_items}x{batch}] x [{batch}x{dim}] (transposed view)", lambda: torch.mm(grad.T, query, out=out_items)),
                ("d items from logits' (contiguous)", lambda: torch.mm(grad_t, query, out=out_items)),
            ),
        }
        total = 0.0
        for layouts in products.values():
            fastest = math.inf
            for name, fn in layouts:
                seconds = _best(fn, reps)
                fastest = min(fastest, seconds)
                print(f"  {label} {name:52s}: {seconds * 1e3:7.1f} ms  {flop / seconds / 1e9:6.1f} GFLOP/s")
            total += fastest
        bare[label] = total
        print(f"  {label}: the three products at their fastest layouts: {total * 1e3:.1f} ms")
    return bare


def loss_section(n_items: int, batch: int, dim: int, reps: int, bare: dict[str, float] | None = None) -> None:
    gen = torch.Generator().manual_seed(1)
    items = (0.1 * torch.randn(n_items, dim, generator=gen)).to(DEVICE).requires_grad_()
    query = torch.randn(batch, dim, generator=gen).to(DEVICE).requires_grad_()
    targets = torch.randint(0, n_items, (batch,), generator=gen).to(DEVICE)
    flop = 3 * 2 * batch * dim * n_items
    print(f"\n[loss] scoring + softmax cross-entropy, forward + backward ({_load()})")

    def plain() -> None:
        F.cross_entropy(query @ items.T, targets).backward()

    def bf16() -> None:
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
            F.cross_entropy(query @ items.T, targets).backward()

    # (name, function, repetitions, the precision of its products: what its speed is compared with)
    rows = [("F.cross_entropy, fp32", plain, reps, "fp32"), ("F.cross_entropy, bf16 autocast", bf16, max(2, reps // 3), "fp32")]
    rows += [
        (f"fused, chunks of {c} rows", lambda c=c: softmax_cross_entropy(query, items, targets, c).backward(), reps, "fp32")
        for c in (32, 64, 128, 512)
    ]
    rows += [
        (f"fused bf16, chunks of {c} rows", lambda c=c: softmax_cross_entropy(query, items, targets, c, "bf16").backward(), reps, "bf16")
        for c in (32, 64, 128)
    ]
    for name, fn, r, dtype in rows:
        seconds = _best(fn, r)
        share = ""
        if bare:  # the loss's speed as a share of its three bare products' (1.0: the loss costs nothing else)
            share = f"  {bare[dtype] / seconds:5.0%} of bare {dtype} matmul speed"
        print(f"  {name:32s}: {seconds * 1e3:7.1f} ms  {flop / seconds / 1e9:6.1f} GFLOP/s of scoring matmuls{share}")


def _steps(split: Split, batch_size: int, n_batches: int, seed: int = 0) -> tuple[Cases, list[torch.Tensor]]:
    rng, _ = generators(seed)
    cases = Cases(split.train, *split.train.prefix_cases(), 19, "last")
    order = torch.from_numpy(rng.permutation(len(cases)))
    return cases, [order[i * batch_size : (i + 1) * batch_size] for i in range(n_batches)]


def step_section(split: Split, batch_size: int, n_batches: int) -> None:
    cases, batches = _steps(split, batch_size, n_batches + 1)
    threads = torch.get_num_threads()
    print(f"\n[step] full training steps on {n_batches} real batches of {batch_size}, median ({_load()})")
    configs = [
        ("padded GRU, F.cross_entropy, Adam (for-loop)", dict(packed=False, fused_loss=False, adam={"foreach": False})),
        ("+ packed GRU", dict(packed=True, fused_loss=False, adam={"foreach": False})),
        ("+ fused chunked loss", dict(packed=True, fused_loss=True, adam={"foreach": False}, chunk=64)),
        ("+ fused Adam", dict(packed=True, fused_loss=True, adam={"fused": True}, chunk=64)),
        ("+ the whole table to the loss (what NARM does)", dict(packed=True, fused_loss=True, adam={"fused": True}, chunk=64, whole=True)),
        ("+ bf16 products (precision=auto where bf16 is native)", dict(packed=True, fused_loss=True, adam={"fused": True}, whole=True, precision="bf16")),
        ("fp32 products, 1 thread", dict(packed=True, fused_loss=True, adam={"fused": True}, chunk=64, whole=True, threads=1)),
    ]
    if DEVICE.type != "cpu":
        # threads are a CPU setting; on a GPU, packing and chunking cost more than they save
        configs[-1] = ("padded GRU, one chunk, fused Adam (NARM on a GPU)", dict(packed=False, fused_loss=True, adam={"fused": True}, whole=True))
    for name, cfg in configs:
        torch.set_num_threads(cfg.get("threads", threads))
        module = NARMModule(split.n_items, generator=torch.Generator().manual_seed(0)).to(DEVICE)
        module.train()
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, **cfg["adam"])
        gen = torch.Generator(device=DEVICE).manual_seed(0)

        def step(index: torch.Tensor) -> float:
            started = time.perf_counter()
            items, lengths, targets = cases.batch(index, DEVICE)
            optimizer.zero_grad(set_to_none=True)
            context, _ = module.encode(items, lengths, gen, packed=cfg["packed"])
            if cfg["fused_loss"]:
                query = module.query(context)
                # "whole": the embedding table itself, its padding row no candidate, as NARM's
                # loss takes it; else the view of its item rows, whose gradient autograd copies
                table, first = (module.embedding.weight, 1) if cfg.get("whole") else (module.item_embeddings, 0)
                loss = softmax_cross_entropy(query, table, targets, cfg.get("chunk"), cfg.get("precision", "fp32"), first)
            else:
                loss = F.cross_entropy(module.scores(context), targets)
            loss.backward()
            optimizer.step()
            _sync()
            return time.perf_counter() - started

        step(batches[0])
        seconds = float(np.median([step(index) for index in batches[1:]]))
        print(f"  {name:46s}: {seconds * 1e3:7.1f} ms/batch  {batch_size / seconds:7.0f} sequences/s")
    torch.set_num_threads(threads)


def epoch_section(split: Split) -> None:
    print(f"\n[epoch] one epoch of NARM.fit on {split.train.n_prefixes} training sequences ({_load()})")
    started = time.perf_counter()
    rec = NARM(epochs=1, refit=False).fit(split, seed=0, device=str(DEVICE), progress=False)  # one epoch, no refit
    total = time.perf_counter() - started
    epoch = rec.history_[0].seconds
    n_train = round(0.9 * split.train.n_prefixes)
    print(f"  epoch {epoch:.1f} s ({n_train / epoch:.0f} sequences/s), fit incl. data and validation {total:.1f} s, validation Recall@20 {rec.history_[0].validation:.4f}")


_RECBOLE_DRIVER = r"""
import itertools, json, sys, time
sys.path.insert(0, sys.argv[1])
n_batches = int(sys.argv[2])
import recbole_runner
from recbole.trainer import trainer as rb_trainer

class _Limited:
    def __init__(self, loader, n): self.loader, self.n = loader, n
    def __iter__(self): return itertools.islice(iter(self.loader), self.n)
    def __len__(self): return min(self.n, len(self.loader))
    def __getattr__(self, key): return getattr(self.loader, key)

_orig = rb_trainer.Trainer._train_epoch
def _timed(self, train_data, epoch_idx, loss_func=None, show_progress=False):
    import torch
    _orig(self, _Limited(train_data, 1), epoch_idx, loss_func, show_progress)  # warm-up batch
    started = time.perf_counter()
    _orig(self, _Limited(train_data, n_batches), epoch_idx, loss_func, show_progress)
    seconds = time.perf_counter() - started
    print(json.dumps({"batches": n_batches, "seconds": seconds, "threads": torch.get_num_threads(), "max_len": self.config["MAX_ITEM_LIST_LENGTH"]}), flush=True)
    import os; os._exit(0)
rb_trainer.Trainer._train_epoch = _timed
recbole_runner.main(sys.argv[3:])
"""


def _write_sessions(sessions, path: Path) -> None:
    with open(path, "w") as f:
        for s in range(len(sessions)):
            f.write(" ".join(str(i + 1) for i in sessions[s]) + "\n")


def recbole_section(split: Split, python: str, peers: str, n_batches: int, threads: int, max_lens: list[int]) -> None:
    print(f"\n[recbole] RecBole 1.2.1 NARM vs ours, {n_batches} batches of 512, {threads} threads ({_load()})")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        _write_sessions(split.train, tmp_path / "train.txt")
        _write_sessions(split.test, tmp_path / "test.txt")
        (tmp_path / "driver.py").write_text(_RECBOLE_DRIVER)
        theirs = {}
        for max_len in max_lens:
            cmd = [python, str(tmp_path / "driver.py"), peers, str(n_batches), "--model", "NARM", "--train", str(tmp_path / "train.txt"),
                   "--test", str(tmp_path / "test.txt"), "--epochs", "1", "--threads", str(threads), "--max-len", str(max_len),
                   "--workdir", str(tmp_path / f"rb{max_len}"), "--quiet"]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            if not lines:
                print(f"  RecBole failed (max_len {max_len}):\n{out.stderr[-3000:]}")
                continue
            theirs[max_len] = json.loads(lines[-1])
            r = theirs[max_len]
            print(f"  RecBole NARM, prefixes padded to {max_len}: {r['seconds'] / n_batches * 1e3:7.1f} ms/batch  {512 * n_batches / r['seconds']:7.0f} sequences/s")
    torch.set_num_threads(threads)
    cases, batches = _steps(split, 512, n_batches + 1)
    for precision in dict.fromkeys(("fp32", resolve_precision("auto", "cpu"))):
        rec = NARM(precision=precision)
        rec.n_items_, rec.precision_ = split.n_items, precision
        rec.module_ = rec._new_module(split.n_items, torch.Generator().manual_seed(0))
        optimizer = torch.optim.Adam(rec.module_.parameters(), lr=1e-3, fused=True)
        gen = torch.Generator().manual_seed(0)
        rec.module_.train()
        rec._step(optimizer, *cases.batch(batches[0], torch.device("cpu")), gen)
        started = time.perf_counter()
        for index in batches[1:]:
            rec._step(optimizer, *cases.batch(index, torch.device("cpu")), gen)
        ours = time.perf_counter() - started
        print(f"  ours (sessionbench NARM, last 19 clicks, {precision}):  {ours / n_batches * 1e3:7.1f} ms/batch  {512 * n_batches / ours:7.0f} sequences/s")
        for max_len, r in theirs.items():
            print(f"  speed-up of ours ({precision}) over RecBole (max_len {max_len}): {r['seconds'] / ours:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="diginetica", help="synthetic preset (default: diginetica, ~720k sequences, ~43k items)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where every section runs (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice, all cores)")
    p.add_argument("--reps", type=int, default=5, help="repetitions of each micro-benchmark; the minimum is reported (default: 5)")
    p.add_argument("--batches", type=int, default=30, help="training steps timed per configuration (default: 30)")
    p.add_argument("--skip", default="", help="comma-separated sections to skip: matmul, loss, step")
    p.add_argument("--epoch", action="store_true", help="also time one full epoch through NARM.fit")
    p.add_argument("--recbole-python", default=None, help="python of a venv with RecBole 1.2.1 (see ../shared/peers/README.md)")
    p.add_argument("--recbole-dir", default="/work/peers", help="folder holding recbole_runner.py (default: /work/peers)")
    p.add_argument("--recbole-batches", type=int, default=20, help="batches timed for RecBole and ours (default: 20)")
    p.add_argument("--recbole-max-len", default="19,50", help="RecBole's padded prefix lengths to time (default: 19,50)")
    args = p.parse_args()
    if args.device == "cuda" and args.recbole_python:
        p.error("--recbole-python times RecBole on the CPU; run it without --device cuda")
    global DEVICE
    try:
        DEVICE = resolve_device(args.device)
    except ValueError as err:
        p.error(str(err))
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    if DEVICE.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(DEVICE)}")
    split = load_dataset("synthetic", size=args.size)
    print(f"synthetic {args.size}: {split.train.n_prefixes} training sequences, {split.n_items} items")
    skip = set(filter(None, args.skip.split(",")))
    bare = matmul_section(split.n_items, 512, 50, args.reps) if "matmul" not in skip else None
    if "loss" not in skip:
        loss_section(split.n_items, 512, 50, args.reps, bare)
    if "step" not in skip:
        step_section(split, 512, args.batches)
    if args.epoch:
        epoch_section(split)
    if args.recbole_python:
        recbole_section(split, args.recbole_python, args.recbole_dir, args.recbole_batches, torch.get_num_threads(), [int(x) for x in args.recbole_max_len.split(",")])


if __name__ == "__main__":
    main()
