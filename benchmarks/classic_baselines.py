"""Fit time, evaluation time and peak memory of the non-neural methods at DIGINETICA and
YOOCHOOSE 1/4 scale (the `diginetica` and `yoochoose` synthetic presets): Item-KNN, BPR-MF and
FPMC (issue 4), and with ``--methods`` the session-kNN family and the rules (issue 25).

Targets on the 2-core, 24 GB machine: Item-KNN fits in under a minute at DIGINETICA scale;
every method stays under 12 GB peak at YOOCHOOSE 1/4 scale; evaluating 60k prefixes takes
under a minute per method (Item-KNN, BPR-MF, FPMC). SKNN, V-SKNN, STAN, VSTAN, SR and AR: fit
under a minute and evaluation of 60k prefixes under five minutes at DIGINETICA scale, under 12 GB
at YOOCHOOSE 1/4 scale:

    python benchmarks/classic_baselines.py --methods sknn,vsknn,stan,vstan,sr,ar

Each (preset, method) runs in its own process, so that its peak memory is its own: the
process's resident memory is sampled every 20 ms from before ``fit`` to the end of the
evaluation ("peak"), and ``VmHWM`` gives the process's lifetime peak, loading the cached split
included ("process peak"). The split is generated and cached by a separate process
first, so generation (a few GB for the yoochoose preset) is not counted. Evaluation uses the
suite's ``evaluate`` on the first test sessions holding ``--cases`` prefixes; "score s" is the
part of it spent in the model's ``score``, the rest is ranking. Run it under the CPU lock:

    flock /tmp/sessionbench-cpu.lock python benchmarks/classic_baselines.py
    python benchmarks/classic_baselines.py --presets diginetica --methods itemknn --set fpmc.epochs=2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import psutil

PRESETS = {"diginetica": {"size": "diginetica"}, "yoochoose": {"size": "yoochoose", "fraction": 4}}
METHODS = ("itemknn", "bprmf", "fpmc")


def _split(preset: str):
    from sessionbench.data import load_dataset

    return load_dataset("synthetic", **PRESETS[preset])


def _first_cases(sessions, cases: int):
    """The first sessions holding at least ``cases`` prefixes (all of them if fewer)."""
    cumulative = np.cumsum(sessions.lengths - 1)
    n = min(int(np.searchsorted(cumulative, cases)) + 1, len(sessions))
    return sessions.select(np.arange(n))


def _measure(preset: str, method: str, params: dict, cases: int) -> dict:
    """Fit and evaluate one method in this process; return its figures."""
    from sessionbench.evaluation import evaluate
    from sessionbench.harness import PeakRSS
    from sessionbench.registry import resolve

    split = _split(preset)
    test = _first_cases(split.test, cases)
    with PeakRSS() as memory:
        loaded = memory.peak
        model = resolve(method)(**params)
        started = time.perf_counter()
        model.fit(split, seed=0, progress=False)
        fit_seconds = time.perf_counter() - started

        score_seconds = [0.0]
        score = model.score

        def timed_score(batch):
            t = time.perf_counter()
            out = score(batch)
            score_seconds[0] += time.perf_counter() - t
            return out

        model.score = timed_score  # instance attribute: times the calls evaluate() makes
        started = time.perf_counter()
        result = evaluate(model, test, n_items=split.n_items, progress=False)
        evaluate_seconds = time.perf_counter() - started
    return {
        "preset": preset,
        "method": method,
        "params": model.get_params(),
        "train_cases": split.train.n_prefixes,
        "items": split.n_items,
        "test_cases": test.n_prefixes,
        "fit_s": fit_seconds,
        "evaluate_s": evaluate_seconds,
        "score_s": score_seconds[0],
        "loaded_gib": loaded / 2**30,
        "peak_gib": memory.peak / 2**30,
        "process_peak_gib": memory.process_peak / 2**30,
        "recall@20": result.metrics["recall@20"],
        "mrr@20": result.metrics["mrr@20"],
    }


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _parse_sets(values: list[str]) -> dict[str, dict]:
    params: dict[str, dict] = {}
    for item in values:
        key, _, raw = item.partition("=")
        method, _, name = key.partition(".")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params.setdefault(method, {})[name] = value
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="diginetica,yoochoose", help="comma-separated (default: both)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated (default: all three)")
    parser.add_argument("--cases", type=int, default=60_000, help="test prefixes evaluated (default: 60000)")
    parser.add_argument("--set", action="append", default=[], metavar="METHOD.PARAM=VALUE", help="override a hyperparameter")
    parser.add_argument("--prepare", help=argparse.SUPPRESS)  # child: generate and cache a preset
    parser.add_argument("--one", nargs=2, metavar=("PRESET", "METHOD"), help=argparse.SUPPRESS)  # child: measure
    args = parser.parse_args()
    if args.prepare:
        split = _split(args.prepare)
        print(json.dumps({"train_cases": split.train.n_prefixes}))
        return
    if args.one:
        preset, method = args.one
        print(json.dumps(_measure(preset, method, _parse_sets(args.set).get(method, {}), args.cases)))
        return
    print(f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM", flush=True)
    header = "| preset | method | train cases | items | test cases | fit s | evaluate s | score s | peak GiB | process peak GiB | Recall@20 | MRR@20 |"
    rows = []
    for preset in args.presets.split(","):
        _child(["--prepare", preset])
        for method in args.methods.split(","):
            r = _child(["--one", preset, method, "--cases", str(args.cases), *[f"--set={s}" for s in args.set]])
            rows.append(
                f"| {preset} | {method} | {r['train_cases']:,} | {r['items']:,} | {r['test_cases']:,} | {r['fit_s']:.1f} | "
                f"{r['evaluate_s']:.1f} | {r['score_s']:.1f} | {r['peak_gib']:.2f} | {r['process_peak_gib']:.2f} | "
                f"{100 * r['recall@20']:.2f} | {100 * r['mrr@20']:.2f} |"
            )
            print(f"{preset} {method}: {json.dumps(r)}", flush=True)
    print("\n" + header)
    print("|" + "---|" * (header.count("|") - 1))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
