"""Restore-model throughput; the same as ``vflow bench restore`` (see vflow/benchmark.py).

    python bench/bench_restore.py [--quick] [--device cpu|cuda] [--no-compile]
"""

import sys

from vflow.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "restore", *sys.argv[1:]]))
