"""Preprocessing speed and memory on raw files of the real datasets' size.

Writes the `yoochoose` synthetic preset (~33M clicks) in the raw YOOCHOOSE format and the
`diginetica` preset (~1.2M clicks) in the raw DIGINETICA format to a temporary directory, then
times `load_dataset` on each in a fresh process (no cache), reporting wall seconds and the
process's peak resident memory, and finally the time of a second, cached load.

Targets (issue 2): YOOCHOOSE-size within 3 minutes and 6 GB; DIGINETICA-size within 15 s; a
cached DIGINETICA-size load well under a second.

    python benchmarks/preprocess_speed.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_MEASURE = """
import json, sys, time
t0 = time.perf_counter()
from sessionbench.data import load_dataset
from sessionbench.harness import process_peak_rss
t1 = time.perf_counter()
split = load_dataset(sys.argv[1], sys.argv[2], cache=sys.argv[3] == "cache", cache_dir=sys.argv[4])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "peak_rss_gib": process_peak_rss() / 2**30,
                  "stats": split.stats(), "steps": split.info.get("steps", {})}))
"""

_WRITE = """
import sys
from pathlib import Path
from sessionbench.data import synthetic
clicks = synthetic.generate_clicks(synthetic.PRESETS[sys.argv[1]], seed=0)
getattr(synthetic, sys.argv[2])(clicks, Path(sys.argv[3]))
print(len(clicks))
"""


def measure(name: str, directory: Path, cache: str, cache_dir: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _MEASURE, name, str(directory), cache, str(cache_dir)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="write the raw files here and keep them (default: a temporary directory)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="sessionbench-raw-"))
    cases = [
        ("diginetica", "diginetica", root / "diginetica", "train-item-views.csv", "write_diginetica_csv"),
        ("yoochoose", "yoochoose-1-4", root / "yoochoose", "yoochoose-clicks.dat", "write_yoochoose_dat"),
    ]
    for preset, dataset, directory, filename, writer in cases:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / filename
        if not path.exists():  # written by a child process, so that this one stays small
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _WRITE, preset, writer, str(path)], capture_output=True, text=True, check=True)
            n = int(out.stdout.split()[-1])
            print(f"{preset}: wrote {n:,} raw clicks ({path.stat().st_size / 2**20:,.0f} MiB) in {time.perf_counter() - started:.0f} s")
        cold = measure(dataset, directory, "nocache", root / "cache")
        print(f"{dataset}: preprocessing from raw {cold['load_s']:.1f} s, peak RSS {cold['peak_rss_gib']:.2f} GiB "
              f"(python + imports {cold['import_s']:.1f} s not counted); read {cold['steps']['read']}; Table 1 {cold['stats']}")
        measure(dataset, directory, "cache", root / "cache")  # fills the cache
        warm = measure(dataset, directory, "cache", root / "cache")
        print(f"{dataset}: cached load {warm['load_s']:.3f} s, peak RSS {warm['peak_rss_gib']:.2f} GiB")
    if args.keep is None:
        print(f"(raw files left in {root}; delete them when done)")


if __name__ == "__main__":
    main()
