"""Write docs/img/denoise_moving_edge.png: the most-moving 96x96 crop of a real shot, clean | grain σ=20 |
vflow temporal_smooth | FFmpeg hqdn3d strong (6:4.5:9:6.75), after 12 frames of temporal state.

    python bench/denoise_crop.py      # needs the ffmpeg CLI (for hqdn3d)
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from bench_denoise import decode, grain, hqdn3d
from vflow.kernels.temporal import TemporalDenoiser

OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "denoise_moving_edge.png"
SIZE, FRAME = 96, 12


def main() -> None:
    clean = decode("video/clean_scenecut_tears_of_steel_640x360.mp4", 66, FRAME + 1)  # inside one shot
    noisy = grain(clean, 20.0, seed=1)
    ours = TemporalDenoiser()(noisy, np.zeros(len(noisy), np.int64))
    strong, _ = hqdn3d(noisy, "6:4.5:9:6.75")
    motion = np.abs(clean[FRAME].astype(int) - clean[FRAME - 1]).sum(-1)
    h, w = motion.shape
    y, x = max(((y, x) for y in range(0, h - SIZE, 8) for x in range(0, w - SIZE, 8)),
               key=lambda p: motion[p[0]:p[0] + SIZE, p[1]:p[1] + SIZE].sum())
    tiles = [a[FRAME, y:y + SIZE, x:x + SIZE] for a in (clean, noisy, ours, strong)]
    strip = np.concatenate([np.pad(t, ((4, 4), (4, 4), (0, 0)), constant_values=255) for t in tiles], 1)
    strip = strip.repeat(2, 0).repeat(2, 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    av.VideoFrame.from_ndarray(np.ascontiguousarray(strip), format="rgb24").save(str(OUT))
    for name, t in zip(("grain", "vflow", "hqdn3d strong"), tiles[1:]):
        err = np.abs(t.astype(int) - tiles[0]).mean()
        print(f"{name}: mean abs error on the crop {err:.1f}")
    print(f"wrote {OUT} (crop at x={x}, y={y}, frame {FRAME})")


if __name__ == "__main__":
    main()
