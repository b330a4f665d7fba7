"""Before/after crops of vflow-film on the real old films of ../shared/data, for docs/models.md (by eye).

    python bench/film_examples.py [--model vflow-film-1x] [--out docs/img]

``film_before_after.png``: crops of live action (Operation Crossroads, 1946) and of a cartoon (Steamboat
Willie, 1928), each the source frame and the restored one, shown at 2x (nearest). ``film_moving_edge.png``:
the crop of the clip where the picture moves most between a frame's neighbours: the source frames t-1, t,
t+1, frame t restored from its window t-2..t+2, and frame t restored alone (its window all frame t, as at a
cut); a moving edge must stay single (no ghost of a neighbour).
The restore stage runs on a 9-frame clip around each frame (one shot), on the CPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np
import torch

from vflow.evaluate import model_method
from vflow.media.color import color_of, to_rgb
from vflow.train.preview import grid, write_png

VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video"
LIVE, CARTOON = VIDEO / "oldfilm_abomb_blast_effects_part1.mp4", VIDEO / "oldfilm_steamboat_willie_part1_audio.mp4"
# (file, frame index, crop x, y, side): a face, lettering, a character, a drawn boat
CROPS = [(LIVE, 14, 70, 20, 160), (LIVE, 58, 150, 90, 160), (CARTOON, 215, 330, 60, 200), (CARTOON, 72, 190, 200, 200)]
MOVING = (CARTOON, 360)


def frames_of(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([to_rgb(f, color_of(f)) for f in c.decode(video=0)])


def restored(run, video: np.ndarray, t: int) -> np.ndarray:
    lo = max(0, min(t - 4, len(video) - 9))
    return run([video[lo:lo + 9]])[0][t - lo]


def tensor(crop: np.ndarray, zoom: int = 2) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float()[None] / 255
    return x.repeat_interleave(zoom, 2).repeat_interleave(zoom, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vflow-film-1x")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "img"))
    args = ap.parse_args()
    run = model_method(args.model)
    out = Path(args.out)
    videos = {p: frames_of(p) for p in (LIVE, CARTOON)}
    rows = []
    for film in (LIVE, CARTOON):          # one row of before/after pairs per film
        columns = []
        for path, t, x, y, side in (c for c in CROPS if c[0] == film):
            before, after = videos[path][t], restored(run, videos[path], t)
            box = (slice(y, y + side), slice(x, x + side))
            columns += [("before", tensor(before[box])), ("after", tensor(after[box]))]
        rows.append(grid(columns))
    width = max(r.shape[1] for r in rows)
    write_png(out / "film_before_after.png",
              np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=40) for r in rows]))

    path, t = MOVING
    v = videos[path]
    motion = np.abs(v[t + 1].astype(np.int16) - v[t - 1]).sum(2).astype(np.float64)
    s = 96
    sums = motion.cumsum(0).cumsum(1)
    best = max(((sums[yy + s, xx + s] - sums[yy, xx + s] - sums[yy + s, xx] + sums[yy, xx], yy, xx)
                for yy in range(0, v.shape[1] - s - 1, 8) for xx in range(0, v.shape[2] - s - 1, 8)))
    _, yy, xx = best
    box = (slice(yy, yy + s), slice(xx, xx + s))
    alone = run([np.repeat(v[t:t + 1], 5, axis=0)])[0][2]         # frame t restored with no neighbours (as at cuts)
    cells = [("t-1", v[t - 1]), ("t", v[t]), ("t+1", v[t + 1]), ("after", restored(run, v, t)), ("alone", alone)]
    write_png(out / "film_moving_edge.png", grid([(n, tensor(c[box], 3)) for n, c in cells]))
    print(f"wrote {out / 'film_before_after.png'} and {out / 'film_moving_edge.png'} (moving crop at x {xx}, y {yy})")


if __name__ == "__main__":
    main()
