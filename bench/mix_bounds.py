"""How much of a method's loss on ``vflow eval``'s mix is global colour, and how much a linear filter could mend.

    python bench/mix_bounds.py [--methods input,graph:restore_full] [--clips 16] [--seed 555]

The mix clips of ``vflow eval`` (the training chain's full random mix, the codec last), drawn with ``--seed``
(555 by default: an analysis seed, not :data:`vflow.evaluate.EVAL_SEED`, whose figures are for checking). For
each method's output, PSNR against the clean clip as it is and after fitting, *with the clean clip known*:
one gain and offset per channel for the clip (casts, fading), the same per frame (flicker too), and a 7x7
filter plus offset per channel for the clip (least squares: the best linear deblur and colour together).
These are bounds of what such corrections could give, not methods.
"""

from __future__ import annotations

import argparse

import numpy as np

from vflow.evaluate import eval_pairs, method
from vflow.kernels.metrics import psnr
from vflow.train.loop import data_config, load_config

TAPS = 7


def affine(x: np.ndarray, y: np.ndarray, per_frame: bool) -> np.ndarray:
    """``x`` with the least-squares gain and offset per channel (per frame, or for the clip) that bring it to ``y``."""
    out = np.empty(x.shape, np.float64)
    for part in ([slice(i, i + 1) for i in range(len(x))] if per_frame else [slice(None)]):
        for c in range(3):
            a, b = x[part, ..., c].astype(np.float64), y[part, ..., c].astype(np.float64)
            gain, offset = np.polyfit(a.ravel(), b.ravel(), 1)
            out[part, ..., c] = a * gain + offset
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def linear(x: np.ndarray, y: np.ndarray, samples: int = 60_000) -> np.ndarray:
    """``x`` through the least-squares ``TAPS`` x ``TAPS`` filter plus offset per channel that brings it to ``y``."""
    r = TAPS // 2
    t, h, w, _ = x.shape
    out = np.empty(x.shape, np.float32)
    pick = np.random.default_rng(0).choice(t * h * w, min(t * h * w, samples), replace=False)
    for c in range(3):
        pad = np.pad(x[..., c].astype(np.float32), ((0, 0), (r, r), (r, r)), mode="edge")
        taps = np.stack([pad[:, i:i + h, j:j + w].ravel() for i in range(TAPS) for j in range(TAPS)]
                        + [np.ones(t * h * w, np.float32)], 1)
        k = np.linalg.lstsq(taps[pick], y[..., c].ravel()[pick].astype(np.float32), rcond=None)[0]
        out[..., c] = (taps @ k).reshape(t, h, w)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="input,graph:restore_full")
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--seed", type=int, default=555)
    ap.add_argument("--config", default="configs/film1x.yaml")
    a = ap.parse_args()
    pairs = eval_pairs(data_config(load_config(a.config)), a.clips, 9, 192, ["mix"], seed=a.seed)
    print(f"{len(pairs)} mix clips of 9 frames at 192x192, seed {a.seed}; PSNR dB against the clean clips\n")
    print("| method | as it is | + clip colour | + frame colour | + 7x7 filter and colour |\n|---|---|---|---|---|")
    for spec in a.methods.split(","):
        outs = method(spec)([p.degraded for p in pairs])
        rows = []
        for p, got in zip(pairs, outs):
            score = lambda v: float(np.mean(np.minimum(psnr(v, p.clean), 99.99)))  # noqa: E731
            rows.append([score(got), score(affine(got, p.clean, False)), score(affine(got, p.clean, True)),
                         score(linear(got, p.clean))])
        m = np.mean(rows, 0)
        print(f"| {spec} | " + " | ".join(f"{v:.2f}" for v in m) + " |", flush=True)


if __name__ == "__main__":
    main()
