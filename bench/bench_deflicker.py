"""Deflicker: vflow ``temporal_smooth`` (mode deflicker) against FFmpeg's ``deflicker`` filter (PyAV).

    python bench/bench_deflicker.py [--part check] [--count 40]

Quality on vflow.evalclips (``--part check``: held-out files and seeds): ``flicker`` clips (seeded per-frame
gains of 3-12 %, half of them over a real fade or a light switched on or off) and ``light`` clips (a real
brightness change, no flicker: nothing should change). Figures: the share of the frame-to-frame flicker
removed (the mean change of the mean-luma error from frame to frame, against the unflickered truth), PSNR
against the truth; speed on a real 640x360 shot (Tears of Steel frames 66-113) under ±10 % flicker.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from pathlib import Path

import av
import av.filter
import numpy as np

from vflow.evalclips import clip_psnr, clips, flicker_jitter, scene_ids
from vflow.kernels.deflicker import Deflicker

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIP = DATA / "video" / "clean_scenecut_tears_of_steel_640x360.mp4"


def shot() -> np.ndarray:
    with av.open(str(CLIP)) as c:
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if 66 <= i < 114]
    return np.stack(frames)


def ffmpeg_deflicker(frames: np.ndarray, args: str = "size=5:mode=am") -> np.ndarray:
    n, h, w, _ = frames.shape
    graph = av.filter.Graph()
    src = graph.add_buffer(width=w, height=h, format="gbrp", time_base=Fraction(1, 24))
    flt, sink = graph.add("deflicker", args), graph.add("buffersink")
    src.link_to(flt)
    flt.link_to(sink)
    graph.configure()
    out = []
    for i, f in enumerate([*frames, None]):
        frame = None
        if f is not None:
            frame = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="gbrp")
            frame.pts, frame.time_base = i, Fraction(1, 24)
        src.push(frame)
        while True:
            try:
                out.append(sink.pull().to_ndarray(format="rgb24"))
            except (BlockingIOError, av.error.EOFError):
                break
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", default="check", choices=("tune", "check"))
    ap.add_argument("--count", type=int, default=40)
    a = ap.parse_args()
    methods = {"vflow deflicker": lambda f, ids: Deflicker()(f, ids),
               "FFmpeg deflicker size=5:mode=am": lambda f, ids: ffmpeg_deflicker(f, "size=5:mode=am"),
               "FFmpeg deflicker size=15:mode=am": lambda f, ids: ffmpeg_deflicker(f, "size=15:mode=am")}
    flick, light = clips("flicker", a.part, a.count, DATA), clips("light", a.part, a.count, DATA)
    print(f"part {a.part}: {len(flick)} flicker clips, {len(light)} light clips, 144x256\n")
    print("| method | flicker removed (mean / worst) | PSNR gain on flicker clips, dB (mean / worst) "
          "| PSNR on light clips, dB (mean / worst) |")
    print("|---|---|---|---|")
    for name, run in methods.items():
        removed, gains, kept = [], [], []
        for c in flick:
            out = run(c.frames, scene_ids(c))
            removed.append(1 - flicker_jitter(out, c.truth) / flicker_jitter(c.frames, c.truth))
            gains.append(clip_psnr(out, c.truth) - clip_psnr(c.frames, c.truth))
        for c in light:
            kept.append(clip_psnr(run(c.frames, scene_ids(c)), c.truth))
        print(f"| {name} | {100 * np.mean(removed):.0f}% / {100 * min(removed):.0f}% | {np.mean(gains):+.2f} / "
              f"{min(gains):+.2f} | {np.mean(kept):.1f} / {min(kept):.1f} |")
    clean = shot()
    gains = 1 + np.random.default_rng(0).uniform(-0.1, 0.1, len(clean))
    frames = np.clip(np.rint(clean * gains[:, None, None, None]), 0, 255).astype(np.uint8)
    Deflicker()(frames[:8], np.zeros(8, np.int64))  # warm-up: numba loads or compiles its kernels
    t0 = time.perf_counter()
    Deflicker()(frames, np.zeros(len(frames), np.int64))
    vflow_fps = len(frames) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    ffmpeg_deflicker(frames, "size=15:mode=am")
    print(f"\nspeed, {len(frames)} frames 640x360 with ±10 % flicker: vflow {vflow_fps:.0f} fps, FFmpeg size=15 "
          f"{len(frames) / (time.perf_counter() - t0):.0f} fps")


if __name__ == "__main__":
    main()
