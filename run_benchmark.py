#!/usr/bin/env python3
"""Run the benchmark: ``python run_benchmark.py --help``."""

import sys

from sessionbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
