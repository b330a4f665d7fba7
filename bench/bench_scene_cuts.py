"""Scene cuts on vflow.evalclips' generated cut set: vflow's SceneDetector against PySceneDetect.

    python bench/bench_scene_cuts.py [--part check] [--kind cuts|action] [--count 30] [--size 270x480]

Needs ``scenedetect`` (0.7.2, ``pip install --no-deps scenedetect opencv-python-headless click platformdirs
tqdm``). Each ``cuts`` clip is 3-7 shots from different clips and photos (some fast pans), with flashes,
dissolves and fades through black between or inside them; its hard cuts are known. A detection within
±1 frame of a true cut is a hit; detections inside a dissolve or fade (±1 frame) count neither way.
Figures: hits, misses, false cuts summed over the clips, and F1 over those sums.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scenedetect import AdaptiveDetector, ContentDetector, FrameTimecode

from vflow.evalclips import clips, match_cuts
from vflow.kernels.scene import SceneDetector

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TOLERANCE = 1


def vflow_cuts(frames: np.ndarray) -> list[int]:
    d = SceneDetector()
    return d.push(frames) + d.flush()


def pyscenedetect_cuts(frames: np.ndarray, detector: ContentDetector | AdaptiveDetector, fps: float) -> list[int]:
    found = []
    for n, rgb in enumerate(frames):
        found += [c.frame_num for c in detector.process_frame(FrameTimecode(n, fps), np.ascontiguousarray(rgb[..., ::-1]))]
    if isinstance(detector, AdaptiveDetector):
        found += [c.frame_num for c in detector.post_process(FrameTimecode(len(frames), fps))]
    return [f for f in found if f > 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", default="check", choices=("tune", "check"))
    ap.add_argument("--kind", default="cuts", choices=("cuts", "action"),
                    help="cuts: transitions and flashes as distractors; action: whip pans and things passing the lens")
    ap.add_argument("--count", type=int, default=30)
    ap.add_argument("--size", default="270x480", help="HxW of the clips")
    a = ap.parse_args()
    h, w = map(int, a.size.split("x"))
    methods = {"vflow scene_split": lambda f, fps: vflow_cuts(f),
               "PySceneDetect ContentDetector": lambda f, fps: pyscenedetect_cuts(f, ContentDetector(), fps),
               "PySceneDetect AdaptiveDetector": lambda f, fps: pyscenedetect_cuts(f, AdaptiveDetector(), fps)}
    made = clips(a.kind, a.part, a.count, ROOT, size=(h, w))
    n_cuts, n_frames = sum(len(c.cuts) for c in made), sum(len(c.frames) for c in made)
    print(f"part {a.part}: {len(made)} clips, {n_frames} frames at {w}x{h}, {n_cuts} hard cuts, "
          f"{sum(len(c.gradual) for c in made)} dissolves and fades\n")
    print("| method | hits | missed | false | F1 | clips with F1 < 0.9 |")
    print("|---|---|---|---|---|---|")
    for name, run in methods.items():
        totals, weak = np.zeros(3, int), 0
        for c in made:
            hmf = np.array(match_cuts(run(c.frames, float(c.fps)), c.cuts, c.gradual, TOLERANCE))
            totals += hmf
            h_, m_, f_ = hmf
            weak += (2 * h_ / max(1, 2 * h_ + m_ + f_) if h_ + m_ + f_ else 1.0) < 0.9
        h_, m_, f_ = totals
        print(f"| {name} | {h_} | {m_} | {f_} | {2 * h_ / max(1, 2 * h_ + m_ + f_):.2f} | {weak} |")


if __name__ == "__main__":
    main()
