"""Old-footage mixes after a codec: vflow's stages and graphs against FFmpeg's denoisers.

    python bench/bench_oldfilm.py [--part check] [--count 16] [--first 0] [--methods ...]

The clips are vflow.evalclips' ``oldfilm`` kind (grain, dust, scratches, flicker and soft optics all firing,
then a real H.264 pass), 144x256, with the clean clip as truth. ``temporal_smooth`` runs as a stage with the
clips' known shots; graphs run whole, on the clip as a lossless file (``vflow eval``'s ``graph:`` method);
FFmpeg's filters on the RGB planes. PSNR and SSIM over each clip against the truth, then the mean over the
clips and the worst clip's gain over the input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vflow.evalclips import clip_psnr, clips, run_stage
from vflow.evaluate import ffmpeg_filter, graph_method
from vflow.kernels.metrics import ssim
from vflow.stages.temporal_smooth import TemporalSmooth

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FFMPEG = {"hqdn3d strong": "hqdn3d=6:4.5:9:6.75", "nlmeans": "nlmeans=s=3"}
METHODS = ("input", "hqdn3d strong", "nlmeans", "temporal_smooth denoise", "temporal_smooth both",
           "graph:restore_classic", "graph:restore_full")


def runner(name: str):
    """What a method does to one clip: (EvalClip) -> frames."""
    if name == "input":
        return lambda clip: clip.frames
    if name in FFMPEG:
        run = ffmpeg_filter(FFMPEG[name])
        return lambda clip: run([clip.frames])[0]
    if name.startswith("temporal_smooth "):
        mode = name.split()[1]
        return lambda clip: run_stage(TemporalSmooth(mode=mode), clip)
    if name.startswith("graph:"):
        run = graph_method(name[6:])
        return lambda clip: run([clip.frames])[0]
    raise SystemExit(f"unknown method {name!r}: {', '.join(METHODS)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", default="check", choices=("tune", "check"))
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--root", type=Path, default=ROOT)
    a = ap.parse_args()
    names = a.methods.split(",")
    runs = {n: runner(n) for n in names}
    scores: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    base, frames = [], 0
    for clip in clips("oldfilm", a.part, a.count, a.root, first=a.first):
        frames += len(clip.frames)
        base.append(clip_psnr(clip.frames, clip.truth))
        for n, run in runs.items():
            out = run(clip)
            scores[n].append((clip_psnr(out, clip.truth), float(ssim(out, clip.truth).mean())))
    print(f"oldfilm clips {a.first}..{a.first + a.count - 1} of the {a.part} part ({frames} frames, 144x256)\n")
    print("| method | PSNR dB | SSIM | gain over the input, dB (mean / worst clip) |")
    print("|---|---|---|---|")
    for n in names:
        s = np.array(scores[n])
        gain = s[:, 0] - np.array(base)
        print(f"| {n} | {s[:, 0].mean():.2f} | {s[:, 1].mean():.3f} | {gain.mean():+.2f} / {gain.min():+.2f} |")


if __name__ == "__main__":
    main()
