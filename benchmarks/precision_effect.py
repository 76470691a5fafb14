"""What training in bf16 does to a model's accuracy: two results of one method on one split,
paired per test case, with a 95% interval over test sessions.

Train the two (one job at a time), then compare them::

    for p in bf16 fp32; do
        python run_benchmark.py --dataset yoochoose-1-64 --data-dir ../shared/data/yoochoose1_64-narm-preprocessed \\
            --suite main --methods narm --set narm.precision=$p --results-dir results/precision
    done
    python benchmarks/precision_effect.py --results-dir results/precision --dataset yoochoose-1-64 \\
        --data-dir ../shared/data/yoochoose1_64-narm-preprocessed

or pair any two result files of the same split with ``--pair A.json B.json``. Prints each
result's Recall@20 and MRR@20 (conservative ties), training time and epochs, and the
difference with its session-level bootstrap interval (:func:`sessionbench.bootstrap.paired_bootstrap`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from sessionbench.bootstrap import case_metrics, paired_bootstrap
from sessionbench.data import load_dataset


def _load(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    result = json.loads(path.read_text())
    ranks = np.load(path.with_name(result["ranks_file"]))
    return result, case_metrics(ranks["greater"], ranks["equal"])


def _label(result: dict) -> str:
    precision = result.get("precision") or "fp32 (before the precision option)"
    return f"{result['method']} {precision}, commit {result.get('versions', {}).get('commit', '?')}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir", required=True, help="the split's files (the test sessions map cases to sessions)")
    p.add_argument("--results-dir", type=Path, default=Path("results/precision"))
    p.add_argument("--method", default="narm")
    p.add_argument("--pair", nargs=2, type=Path, default=None, metavar=("A.json", "B.json"), help="compare these two results instead")
    p.add_argument("--resamples", type=int, default=2000)
    args = p.parse_args()
    split = load_dataset(args.dataset, args.data_dir)
    session = split.test.prefix_cases()[0]
    if args.pair:
        paths = list(args.pair)
    else:
        found = {}
        for path in sorted((args.results_dir / "raw" / split.name).glob(f"*/{args.method}-*.json")):
            result = json.loads(path.read_text())
            if result["identity"]["split"]["fingerprint"] == split.fingerprint and result.get("precision"):
                found[result["precision"]] = path
        if set(found) != {"bf16", "fp32"}:
            raise SystemExit(f"{args.results_dir}: need a bf16 and an fp32 result of {args.method} on {split.name}, found {sorted(found)}")
        paths = [found["bf16"], found["fp32"]]
    (a, ma), (b, mb) = (_load(path) for path in paths)
    for r, m in ((a, ma), (b, mb)):
        if len(next(iter(m.values()))) != len(session):
            raise SystemExit(f"{r['method']}: {len(next(iter(m.values())))} cases, the split has {len(session)}")
        epochs = r.get("epochs") or []
        best = max(range(len(epochs)), key=lambda i: epochs[i]["validation"] or 0) + 1 if epochs else "?"
        print(f"{_label(r)}: Recall@20 {100 * m['recall@20'].mean():.2f}  MRR@20 {100 * m['mrr@20'].mean():.2f}  "
              f"fit {r['fit_seconds'] / 60:.1f} min, {len(epochs)} epochs (best {best}), {r.get('device')}")
    print(f"difference ({_label(a)}) - ({_label(b)}), {len(session):,} cases:")
    for metric in ("recall@20", "mrr@20"):
        d = paired_bootstrap(ma[metric], mb[metric], session, args.resamples)
        print(f"  {metric}: {100 * d.difference:+.2f} points, 95% interval over {d.n_sessions:,} sessions "
              f"[{100 * d.low:+.2f}, {100 * d.high:+.2f}], p = {d.p_value:.3f} ({d.n_resamples} resamples)")


if __name__ == "__main__":
    main()
