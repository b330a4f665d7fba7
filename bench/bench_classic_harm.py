"""A graph (restore_classic by default) on vflow.evalclips' clips that it should leave alone or mend.

    python bench/bench_classic_harm.py [--graph restore_classic] [--part check] [--count 20]
        [--kinds exposure,light,flicker,faded]

Each clip goes through the whole graph as a lossless FFV1 file and comes back lossless (``vflow eval``'s
``graph:`` method); per kind and grade: the change of mean level against the truth, and PSNR against the
truth (over the whole clip) beside the input's.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from vflow.evalclips import clip_psnr, clips
from vflow.evaluate import graph_method

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--graph", default="restore_classic")
    ap.add_argument("--part", default="check", choices=("tune", "check"))
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--kinds", default="exposure,light,flicker,faded")
    ap.add_argument("--root", type=Path, default=ROOT)
    a = ap.parse_args()
    run = graph_method(a.graph)
    rows: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for kind in a.kinds.split(","):
        for clip in clips(kind, a.part, a.count, a.root, first=a.first):
            out = run([clip.frames])[0]
            label = kind + "".join(f" {v}" for k, v in clip.params.items() if k in ("grade", "change"))
            rows[label].append((float(out.astype(np.float64).mean() - clip.truth.astype(np.float64).mean()),
                                clip_psnr(clip.frames, clip.truth), clip_psnr(out, clip.truth)))
    print(f"graph {a.graph}, part {a.part}, clips {a.first}..{a.first + a.count - 1} of each kind (144x256)\n")
    print("| clips | n | mean level change (mean abs / worst) | input PSNR | output PSNR (mean / worst) |")
    print("|---|---|---|---|---|")
    for label in sorted(rows):
        r = np.array(rows[label])
        print(f"| {label} | {len(r)} | {np.abs(r[:, 0]).mean():.2f} / {r[np.abs(r[:, 0]).argmax(), 0]:+.2f} "
              f"| {r[:, 1].mean():.2f} | {r[:, 2].mean():.2f} / {r[:, 2].min():.2f} |")


if __name__ == "__main__":
    main()
