"""Throughput of the degradation chain (vflow.train.degrade) on the CPU: batches of 4 clips of 5 frames from
a real clip, at 128 and 256 px patches, torch on 1 and 2 threads; the whole chain as the seeds draw it
(first call = warm-up, then the median of the steady state) and each family alone with every operator
firing, to show where the time goes.

    PYTHONPATH=. python bench/bench_degrade.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from vflow.train import FAMILIES, degrade
from vflow.train.preview import load_clip

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
B, T = 4, 5


def clips(size: int) -> torch.Tensor:
    """B clips of T frames: crops of the Caminandes clip (falls back to noise without shared/data)."""
    path = DATA / "video" / "clean_nocut_caminandes_640x360.mp4"
    if not path.exists():
        return torch.rand(B, T, 3, size, size, generator=torch.Generator().manual_seed(0))
    clip = load_clip(path, T, 640, torch.Generator())                       # (T, 3, 360, 640)
    xs = torch.linspace(0, clip.shape[-1] - size, B).long().tolist()
    return torch.stack([clip[..., :size, x:x + size] for x in xs])


def timed(fn, repeats: int) -> tuple[float, float]:
    """(first call, median of the next ``repeats``) in seconds."""
    t0 = time.perf_counter()
    fn(0)
    first = time.perf_counter() - t0
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i + 1)
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=8)
    args = ap.parse_args()
    table = Table(title=f"degrade: batches of {B} clips x {T} frames, CPU", title_justify="left")
    for col in ("patch", "threads", "family", "first s", "steady s", "clips/s", "frames/s"):
        table.add_column(col, justify="left" if col == "family" else "right")
    for size in (128, 256):
        x = clips(size)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            rows = [("all", None, False)] + [(f, {f}, True) for f in FAMILIES]
            for name, only, always in rows:
                first, steady = timed(lambda s: degrade(x, 1, torch.Generator().manual_seed(s), only=only,
                                                        always=always), args.repeats)
                table.add_row(str(size), str(threads), name, f"{first:.3f}", f"{steady:.3f}",
                              f"{B / steady:.1f}", f"{B * T / steady:.0f}")
    Console().print(table)
    Console().print("family: 'all' = the chain as the seeds draw it; a family name = that family alone, every "
                    "operator firing. 'first' includes the warm-up; 'steady' is the median of the next calls.")


if __name__ == "__main__":
    main()
