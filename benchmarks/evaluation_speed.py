"""Full-ranking evaluation speed at DIGINETICA scale: POP and S-POP ranked over all items for
every test prefix (60,858 cases x 43,097 items on the real split).

Uses the real DIGINETICA split when ../shared/data has it (or --data-dir), else the
`diginetica` synthetic preset. Target (issue 3): under 30 s each on the 2-core machine.

    python benchmarks/evaluation_speed.py [--data-dir DIR] [--batch-size 512]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from baselines.pop import Pop
from baselines.spop import SPop
from sessionbench.data import load_dataset
from sessionbench.evaluation import evaluate

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "diginetica-narm-preprocessed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()
    if args.data_dir is not None:
        split = load_dataset("diginetica", args.data_dir)
    else:
        split = load_dataset("synthetic", size="diginetica")
    print(f"{split.name}: {split.test.n_prefixes:,} test cases x {split.n_items:,} items, torch threads {torch.get_num_threads()}")
    for rec in (Pop(), SPop()):
        rec.fit(split, seed=0)
        started = time.perf_counter()
        result = evaluate(rec, split.test, n_items=split.n_items, batch_size=args.batch_size, progress=False)
        seconds = time.perf_counter() - started
        print(f"{rec.name}: evaluation {seconds:.1f} s ({split.test.n_prefixes / seconds:,.0f} cases/s), "
              f"Recall@20 {100 * result.metrics['recall@20']:.2f}, MRR@20 {100 * result.metrics['mrr@20']:.2f}")


if __name__ == "__main__":
    main()
