"""Soak: a long generated clip through a graph, memory read from the run report's own samples.

    python bench/soak.py [--minutes 30] [--graph restore_classic] [--workdir DIR] [--summary-only]

The clip is the bundled sample (Steamboat Willie, 288x240, with its sound) played over and over for
``--minutes`` (x264, AAC; timestamps continue), so the graph sees real film, real cuts and real sound for
the whole length. ``vflow run GRAPH --report`` writes the page; its embedded samples give the resident
memory every half second. The table: the median and the largest RSS in each tenth of the run, and the
slope between 10 % and 90 % (the first tenth warms the allocator up, the last one flushes the windows).
``--summary-only`` reads an earlier run's files in ``--workdir`` again.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SAMPLE = Path(__file__).resolve().parents[1] / "vflow" / "data" / "sample.mp4"


def make_clip(path: Path, minutes: float) -> int:
    """The sample over and over for ``minutes``; returns its frame count."""
    with av.open(str(SAMPLE)) as src:
        v = src.streams.video[0]
        frames = [f.reformat(format="yuv420p") for f in src.decode(v)]
        src.seek(0)
        sound = [f for f in src.decode(src.streams.audio[0])]
        rate, sample_rate = v.average_rate, src.streams.audio[0].codec_context.sample_rate
    loops = max(1, round(minutes * 60 * float(rate) / len(frames)))
    with av.open(str(path), "w") as dst:
        vo = dst.add_stream("libx264", rate=rate, options={"crf": "20", "preset": "veryfast"})
        vo.width, vo.height, vo.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        ao = dst.add_stream("aac", rate=sample_rate)
        step, samples = Fraction(1) / Fraction(rate), 0
        for k in range(loops):
            for i, f in enumerate(frames):
                f.pts, f.time_base = int((k * len(frames) + i) * step * 1000), Fraction(1, 1000)
                dst.mux(vo.encode(f))
            for f in sound:
                f.pts, f.time_base = samples, Fraction(1, sample_rate)
                samples += f.samples
                dst.mux(ao.encode(f))
        dst.mux(vo.encode(None))
        dst.mux(ao.encode(None))
    return loops * len(frames)


def summary(work: Path, graph: str, wall: float | None) -> None:
    page = (work / "soak.html").read_text()
    data = json.loads(re.search(r'<script type="application/json" id="vflow-report">(.*?)</script>', page,
                                re.S).group(1).replace("<\\/", "</"))
    t, rss = np.array(data["samples"]["t"]), np.array(data["samples"]["rss"]) / 2**20
    frames = json.loads((work / "soak.json").read_text())["stages"]["encode"]["frames_in"]
    wall = wall or float(t[-1])
    print(f"\n{graph}: {frames} frames in {wall:.0f} s ({frames / wall:.1f} fps), {len(t)} memory samples\n")
    tenths = [slice(len(t) * k // 10, len(t) * (k + 1) // 10) for k in range(10)]
    print("| RSS (MiB), tenth of the run | " + " | ".join(str(k + 1) for k in range(10)) + " |\n|---|" + "---:|" * 10)
    print("| median | " + " | ".join(f"{np.median(rss[s]):.0f}" for s in tenths) + " |")
    print("| largest | " + " | ".join(f"{rss[s].max():.0f}" for s in tenths) + " |")
    middle = (t >= t[-1] * 0.1) & (t <= t[-1] * 0.9)
    slope = np.polyfit(t[middle] / 3600, rss[middle], 1)[0]
    print(f"\nslope from 10 % to 90 % of the run: {slope:+.1f} MiB per hour")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--graph", default="restore_classic")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--summary-only", action="store_true")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vflow-soak-"))
    if args.summary_only:
        summary(work, args.graph, None)
        return
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "soak.mp4"
    t0 = time.perf_counter()
    frames = make_clip(clip, args.minutes)
    print(f"clip: {frames} frames ({args.minutes:g} min) in {time.perf_counter() - t0:.0f} s: {clip}", flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vflow", "run", args.graph, "-i", str(clip), "-o", str(work / "out.mp4"),
                    "-q", "--report", str(work / "soak.html"), "--json", str(work / "soak.json")], check=True)
    summary(work, args.graph, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
