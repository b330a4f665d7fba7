"""The temporal denoise alone on vflow.evalclips' clean clips, as they are and under grain.

    python bench/bench_denoise_clips.py [--kind exposure] [--part check] [--count 16] [--first 0] [--sigma 10]

Per clip: PSNR of the denoised clean clip against itself (do no harm: higher is better), of the clip under
seeded luma-dependent grain, and of that denoised; then the means, the worst clean figure and the worst gain.
The clips' known cuts are the scene ids.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vflow.evalclips import KINDS, clip_psnr, clips, scene_ids
from vflow.kernels.temporal import TemporalDenoiser

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "kernels"))
from kernel_media import DATA, grain  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", default="exposure", choices=KINDS)
    ap.add_argument("--part", default="check", choices=("tune", "check"))
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--sigma", type=float, default=10.0)
    a = ap.parse_args()
    rows = []
    for clip in clips(a.kind, a.part, a.count, DATA, first=a.first):
        ids = scene_ids(clip)
        noisy = grain(clip.truth, a.sigma, seed=1)
        rows.append([clip_psnr(TemporalDenoiser()(clip.truth, ids), clip.truth), clip_psnr(noisy, clip.truth),
                     clip_psnr(TemporalDenoiser()(noisy, ids), clip.truth)])
        print(f"{clip.name}: clean {rows[-1][0]:.2f}, noisy {rows[-1][1]:.2f} -> {rows[-1][2]:.2f}", flush=True)
    r = np.array(rows)
    print(f"\n{a.kind} clips {a.first}..{a.first + a.count - 1} of the {a.part} part, grain sigma {a.sigma:g}")
    print("| clean out | noisy in | noisy out | worst clean | worst gain |\n|---|---|---|---|---|")
    print(f"| {r[:, 0].mean():.2f} | {r[:, 1].mean():.2f} | {r[:, 2].mean():.2f} | {r[:, 0].min():.2f} | "
          f"{(r[:, 2] - r[:, 1]).min():+.2f} |")


if __name__ == "__main__":
    main()
