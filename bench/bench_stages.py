"""Throughput of each classical stage alone, in frames/s, at 720x480 and 1920x1080, on real frames.

    python bench/bench_stages.py [--frames 48] [--depth 8|16|both] [--sizes 720x480,1920x1080]

``--depth both`` times every stage on 8-bit and on 16-bit frames (the same pictures, converted by swscale
to rgb48) and adds the ratio 16/8 per size.

Frames: the real Tears of Steel clip of ../shared/data, scaled with swscale to each size, in batches of
8 (as decode emits them). Each stage first runs once over one batch (numba compiles or loads every kernel,
those a temporal window runs only when it lets frames out included), then a fresh one is set up, warmed
up on one batch and timed over ``--frames`` frames; decode and encode are not included. ``metrics`` gets each
batch on both ports (the distorted one mirrored); ``deinterlace`` is FFmpeg's bwdif as ``decode`` runs it,
on the same frames as YUV 4:2:0 (before the conversion to RGB), one frame out per frame in.
"""

from __future__ import annotations

import argparse
import io
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np
import torch

from vflow.pipeline.frames import ColorInfo, FrameBatch
from vflow.pipeline.stage import Stage, StageContext
from vflow.stages.audio_clean import AudioClean  # noqa: F401  (registers the built-ins)
from vflow.media.deinterlace import Deinterlacer
from vflow.stages.color import Color
from vflow.stages.colorize import Colorize
from vflow.stages.metrics import Metrics
from vflow.stages.scene_split import SceneSplit
from vflow.stages.temporal_smooth import TemporalSmooth
from vflow.stages.tonemap import ToneMap
from vflow.testing import synthetic_info

CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video" / "clean_scenecut_tears_of_steel_640x360.mp4"
PHOTO = CLIP.parents[1] / "images" / "documerica" / "557061.jpg"  # colorize's reference
SIZES = [(720, 480), (1920, 1080)]
RGB = {8: "rgb24", 16: "rgb48le"}
STAGES: dict[str, Callable[[], Stage]] = {
    "scene_split": SceneSplit,
    "temporal_smooth (denoise)": lambda: TemporalSmooth(mode="denoise"),
    "temporal_smooth (deflicker)": lambda: TemporalSmooth(mode="deflicker"),
    "color (levels)": Color,
    "color (reference, meanstd)": lambda: Color(reference=str(PHOTO)),
    "color (reference, histogram)": lambda: Color(reference=str(PHOTO), transfer="histogram"),
    "colorize": lambda: Colorize(reference=str(PHOTO)),
    "tonemap (PQ input)": ToneMap,
}


def real_batches(n: int, w: int, h: int, batch: int = 8, depth: int = 8) -> list[FrameBatch]:
    with av.open(str(CLIP)) as c:
        frames = [f.reformat(width=w, height=h, format=RGB[depth]).to_ndarray()
                  for _, f in zip(range(n + batch), c.decode(video=0))]
    stack = torch.from_numpy(np.stack(frames))
    return [FrameBatch(frames=stack[i:i + batch].contiguous(), pts=torch.arange(i, i + batch),
                       time_base=Fraction(1, 24), seq=i // batch) for i in range(0, len(stack), batch)]


def fps(make: Callable[[], Stage], batches: list[FrameBatch], w: int, h: int) -> float:
    info = synthetic_info(w, h, depth=batches[0].depth)
    if make is ToneMap:   # the HDR path: the frames read as PQ BT.2020
        info = info.replace(color=ColorInfo(9, 1, 9, 16))
    warm = make()   # a whole run on one batch first: every kernel compiled or loaded (a window emits at the end)
    warm.setup(StageContext(name="warm", inputs={"video": info}, connected_outputs=frozenset({"video"})))
    list(_drain(warm.process(batches[0])))
    list(_drain(warm.finish()))
    stage = make()
    stage.setup(StageContext(name="bench", inputs={"video": info}, connected_outputs=frozenset({"video"})))
    list(_drain(stage.process(batches[0])))  # warm-up
    t0 = time.perf_counter()
    for b in batches[1:]:
        list(_drain(stage.process(b)))
    list(_drain(stage.finish()))
    return sum(len(b) for b in batches[1:]) / (time.perf_counter() - t0)


def fps_metrics(batches: list[FrameBatch], w: int, h: int) -> float:
    """PSNR + SSIM per frame pair: each batch against itself mirrored."""
    stage = Metrics()
    info = synthetic_info(w, h, depth=batches[0].depth)
    stage.setup(StageContext(name="bench", inputs={"reference": info, "distorted": info}, connected_outputs=frozenset()))

    def feed(b: FrameBatch) -> None:
        stage.process_port("reference", b)
        stage.process_port("distorted", FrameBatch(frames=b.frames.flip(2).contiguous(), pts=b.pts,
                                                   time_base=b.time_base, seq=b.seq))

    feed(batches[0])
    t0 = time.perf_counter()
    for b in batches[1:]:
        feed(b)
    return sum(len(b) for b in batches[1:]) / (time.perf_counter() - t0)


def fps_deinterlace(batches: list[FrameBatch], w: int, h: int) -> float:
    """bwdif (send_frame, tff) through PyAV's filter graph, as ``decode`` runs it, on YUV 4:2:0 frames (10-bit
    for 16-bit batches)."""
    yuv = "yuv420p" if batches[0].depth == 8 else "yuv420p10le"
    with av.open(io.BytesIO(), "w", format="matroska") as c:  # a stream to template the filter's input on
        stream = c.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt, stream.time_base = w, h, yuv, Fraction(1, 24)
        deint = Deinterlacer(stream, "tff", "frame")
    frames = [av.VideoFrame.from_ndarray(f, format=RGB[batches[0].depth]).reformat(format=yuv)
              for b in batches for f in b.frames.numpy()]
    for i, f in enumerate(frames):
        f.pts, f.time_base = i, Fraction(1, 24)
    for f in frames[:8]:
        deint.push(f)
    t0 = time.perf_counter()
    out = sum(len(deint.push(f)) for f in frames[8:])
    return out / (time.perf_counter() - t0)


def _drain(result: object) -> list[object]:
    if result is None:
        return []
    return list(result) if hasattr(result, "__next__") else [result]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--depth", choices=["8", "16", "both"], default="8")
    ap.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES))
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    depths = [8, 16] if args.depth == "both" else [int(args.depth)]
    print(f"torch threads {torch.get_num_threads()}, {args.frames} frames timed per cell\n")
    heads = [f"{w}x{h} {d}-bit fps" for w, h in sizes for d in depths] + \
        ([f"{w}x{h} 16/8" for w, h in sizes] if len(depths) == 2 else [])
    print("| stage | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    data = {(size, d): real_batches(args.frames, *size, depth=d) for size in sizes for d in depths}
    rows: list[tuple[str, Callable[[list[FrameBatch], int, int], float]]] = [
        (name, lambda b, w, h, make=make: fps(make, b, w, h)) for name, make in STAGES.items()]
    rows += [("metrics (PSNR + SSIM)", fps_metrics), ("deinterlace (bwdif, in decode)", fps_deinterlace)]
    for name, measure in rows:
        got = {(size, d): measure(data[size, d], *size) for size in sizes for d in depths}
        cells = [f"{got[size, d]:.1f}" for size in sizes for d in depths]
        if len(depths) == 2:
            cells += [f"{got[size, 16] / got[size, 8]:.2f}" for size in sizes]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
