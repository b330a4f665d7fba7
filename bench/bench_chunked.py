"""Chunked runs: planning cost and manifest size at 100 and 1,000 chunks, the per-chunk overhead, and the
speed of ``--backend chunks`` against the streaming run.

    python bench/bench_chunked.py [--rounds 2] [--graph restore_classic] [--clip NAME] [--loops 1]
                                  [--chunk-seconds 5] [--skip-speed]

- planning: :func:`vflow.pipeline.chunkplan.plan` over a scan of 250 frames per 10 s chunk, and the size of
  the manifest it writes; the scan itself (the pre-pass that decodes every frame) is timed on the clip;
- overhead: the copy graph into FFV1 on the clip as 1, 4 and 16 chunks with one worker: what each extra
  chunk costs (its worker's graph build, the seek, the segment file), the worker start and the join;
- speed: the graph (default restore_classic, FFV1 out) streaming in this process against ``chunks`` with
  2 workers, in turn, the order swapped each round; the ratio per round. ``--loops N`` makes the input N
  copies of the clip one after the other (x264 crf 16, a keyframe every 250 frames, the sound too): a
  longer tape, cut where each copy starts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path

import av

import vflow
from vflow.pipeline.chunked import Options, _init_worker, run_chunked
from vflow.pipeline.chunkplan import Scan, plan, scan

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video"
FFV1 = ["encode.codec=ffv1", "encode.crf=null", "encode.preset=null"]


def _pipeline(graph: str, src: Path, out: Path, sets: list[str]) -> vflow.Pipeline:
    p = vflow.Pipeline.load(graph, input=src, output=out)
    for s in sets:
        p.set(s)
    return p


def planning(clip: Path) -> None:
    print("| chunks | frames | plan (ms) | manifest (KiB) |\n|---:|---:|---:|---:|")
    for chunks in (100, 1000):
        n = 250 * chunks
        s = Scan([i / 25 for i in range(n)], list(range(0, n, 48)), list(range(97, n, 613)))
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            planned = plan(s, 10.0, 150, 32)
            times.append(time.perf_counter() - t0)
        manifest = {"chunks": [c.to_dict() for c in planned],
                    "segments": {str(c.index): f"seg-{c.index:05d}-0123abcd.mkv" for c in planned}}
        print(f"| {len(planned)} | {n} | {statistics.median(times) * 1000:.1f} | "
              f"{len(json.dumps(manifest, indent=1)) / 1024:.0f} |")
    t0 = time.perf_counter()
    found = scan(str(clip))
    dt = time.perf_counter() - t0
    print(f"\nscan pre-pass on {clip.name}: {len(found.times)} frames in {dt:.2f} s "
          f"({len(found.times) / dt:.0f} frames/s, decode and cut detection)\n")


def overhead(clip: Path, work: Path) -> None:
    duration = scan(str(clip), cuts=False).times[-1]
    rows = []
    for n in (1, 4, 16):
        seconds = duration * 2 if n == 1 else duration / n
        walls, report = [], {}
        for r in range(2):
            t0 = time.perf_counter()
            report = run_chunked(_pipeline("copy", clip, work / f"o{n}-{r}.mkv", FFV1),
                                 Options("chunks", seconds, workers=1), warn=lambda m: None)
            walls.append(time.perf_counter() - t0)
        rows.append((report["chunks"]["total"], min(walls), report["plan_s"], report["join_s"]))
    print("| chunks | wall (s) | plan incl. scan (s) | join (s) |\n|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.2f} | {r[2]:.2f} | {r[3]:.3f} |")
    per = (rows[-1][1] - rows[0][1]) / (rows[-1][0] - rows[0][0])
    t0 = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(1,)) as pool:
        pool.submit(int).result()
    print(f"\neach extra chunk: {per:.2f} s; a worker's start (spawn, imports): {time.perf_counter() - t0:.2f} s\n")


def looped(clip: Path, loops: int, out: Path) -> Path:
    """``loops`` copies of ``clip`` one after the other, re-encoded (x264 crf 16, AAC), pts continuing."""
    if loops == 1:
        return clip
    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        v = src.streams.video[0]
        vo = dst.add_stream("libx264", rate=v.average_rate, options={"crf": "16", "preset": "veryfast"})
        vo.width, vo.height, vo.pix_fmt = v.codec_context.width, v.codec_context.height, "yuv420p"
        a = src.streams.audio[0] if src.streams.audio else None
        ao = dst.add_stream("aac", rate=a.codec_context.sample_rate) if a is not None else None
        frames = [f.reformat(format="yuv420p") for f in src.decode(v)]
        src.seek(0)
        sound = [f for f in src.decode(a)] if a is not None else []
        step = 1 / float(v.average_rate)
        for k in range(loops):
            for i, f in enumerate(frames):
                f.pts, f.time_base = round((k * len(frames) + i) * step * 1000), Fraction(1, 1000)
                dst.mux(vo.encode(f))
            for f in sound:
                f.pts = None
                dst.mux(ao.encode(f))
        dst.mux(vo.encode(None))
        if ao is not None:
            dst.mux(ao.encode(None))
    return out


def speed(graph: str, clip: Path, work: Path, rounds: int, seconds: float) -> None:
    ratios, stream_s, chunk_s = [], [], []
    for r in range(rounds):
        order = ["stream", "chunks"] if r % 2 == 0 else ["chunks", "stream"]
        got = {}
        for how in order:
            t0 = time.perf_counter()
            p = _pipeline(graph, clip, work / f"{how}-{r}.mkv", FFV1)
            if how == "stream":
                p.run()
            else:
                report = run_chunked(p, Options("chunks", seconds, workers=2), warn=lambda m: None)
            got[how] = time.perf_counter() - t0
        stream_s.append(got["stream"])
        chunk_s.append(got["chunks"])
        ratios.append(got["stream"] / got["chunks"])
    print(f"| {graph} on {clip.name} | stream (s) | chunks: 2 workers, {report['chunks']['total']} chunks of "
          f"~{seconds:g} s (s) | speed-up |\n|---|---:|---:|---:|")
    print(f"| median of {rounds} | {statistics.median(stream_s):.1f} | {statistics.median(chunk_s):.1f} | "
          f"{statistics.median(ratios):.2f}x (per round: {', '.join(f'{x:.2f}' for x in ratios)}) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--graph", default="restore_classic")
    ap.add_argument("--clip", default="oldfilm_steamboat_willie_part1_audio.mp4")
    ap.add_argument("--loops", type=int, default=1, help="the input: this many copies of the clip in a row")
    ap.add_argument("--chunk-seconds", type=float, default=5.0)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-overhead", action="store_true", help="planning and overhead tables not made")
    args = ap.parse_args()
    clip = DATA / args.clip
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_overhead:
            planning(clip)
            overhead(clip, Path(tmp))
        if not args.skip_speed:
            speed(args.graph, looped(clip, args.loops, Path(tmp) / "looped.mp4"), Path(tmp), args.rounds,
                  args.chunk_seconds)


if __name__ == "__main__":
    main()
