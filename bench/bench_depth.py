"""The cost of 16-bit frames where bench_stages.py does not look: the conversions at the edges of every graph
(decode's YUV -> RGB, encode's RGB -> YUV) and the restore model, 8-bit against 16-bit, in ms per frame.

    python bench/bench_depth.py [--frames 16] [--size 720x480]

Real frames (the Tears of Steel clip of ../shared/data, scaled to the size) as YUV 4:2:0 at 8 and 10 bits;
each figure is the median over ``--frames`` frames after one warm-up frame. ``restore`` is vflow-film-1x on
the CPU through the stage's device runner (windows of neighbours, batches of 4).
"""

from __future__ import annotations

import argparse
import statistics
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from vflow.media.color import from_rgb, to_rgb
from vflow.pipeline.frames import ColorInfo, FrameBatch
from vflow.pipeline.stage import StageContext, iter_results
from vflow.stages.restore import Restore
from vflow.testing import synthetic_info

CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video" / "clean_scenecut_tears_of_steel_640x360.mp4"
YUV = {8: "yuv420p", 16: "yuv420p10le"}
COLOR = ColorInfo(6, 1, 6, 6)


def frames(n: int, w: int, h: int, depth: int) -> list[av.VideoFrame]:
    with av.open(str(CLIP)) as c:
        return [f.reformat(width=w, height=h, format=YUV[depth]) for _, f in zip(range(n + 1), c.decode(video=0))]


def per_frame(fn, items: list) -> float:
    fn(items[0])
    times = []
    for item in items[1:]:
        t0 = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def restore_ms(rgb: list[np.ndarray], w: int, h: int, depth: int) -> float:
    stage = Restore(model="vflow-film-1x", device="cpu", batch=4)
    stage.setup(StageContext(name="bench", inputs={"video": synthetic_info(w, h, depth=depth)},
                             connected_outputs=frozenset({"video"})))
    stack = torch.from_numpy(np.stack(rgb))
    batches = [FrameBatch(frames=stack[i:i + 4].contiguous(), pts=torch.arange(i, i + len(stack[i:i + 4])),
                          time_base=Fraction(1, 24), seq=i // 4) for i in range(0, len(stack), 4)]
    list(iter_results(stage.process(batches[0])))   # warm-up
    t0 = time.perf_counter()
    out = sum(len(b) for batch in batches[1:] for b in iter_results(stage.process(batch)))
    out += sum(len(b) for b in iter_results(stage.finish()))
    return 1000 * (time.perf_counter() - t0) / max(1, out - 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", default="720x480")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    names = ("decode's YUV -> RGB", "encode's RGB -> YUV", "restore (vflow-film-1x)")
    rows: dict[str, dict[int, float]] = {name: {} for name in names}
    for depth in (8, 16):
        yuv = frames(args.frames, w, h, depth)
        rgb = [to_rgb(f, COLOR, depth) for f in yuv]
        rows["decode's YUV -> RGB"][depth] = per_frame(lambda f: to_rgb(f, COLOR, depth), yuv)
        rows["encode's RGB -> YUV"][depth] = per_frame(lambda a: from_rgb(a, YUV[depth], COLOR), rgb)
        rows["restore (vflow-film-1x)"][depth] = restore_ms(rgb, w, h, depth)
    print(f"{w}x{h}, torch threads {torch.get_num_threads()}, {args.frames} frames\n")
    print("| step | 8-bit ms/frame | 16-bit ms/frame (10-bit YUV) | 16/8 |")
    print("|---|---|---|---|")
    for name, t in rows.items():
        print(f"| {name} | {t[8]:.2f} | {t[16]:.2f} | {t[16] / t[8]:.2f} |")


if __name__ == "__main__":
    main()
