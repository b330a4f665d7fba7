"""The color stage's auto levels on clips it must leave alone and on faded ones (vflow.evalclips).

    python bench/bench_color_levels.py [--part check|tune] [--count 40] [--set levels=false ...]

Per grade of the ``exposure`` clips (clean, well exposed; as they are, a night scene, a deliberate warm cast)
the change of mean level and the PSNR against the clip itself; on ``faded`` clips (faded dyes, cast, lifted
blacks) the PSNR of the input and of the output against the clean clip. Figures for docs/performance.md come
from ``--part check``; settings are chosen on ``--part tune``.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from vflow.evalclips import clip_psnr, clips, run_stage
from vflow.stages.color import Color

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", default="check", choices=("tune", "check"))
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--first", type=int, default=0, help="index of the first clip (other seeds of the part)")
    ap.add_argument("--set", action="append", default=[], help="a color parameter, KEY=VALUE (YAML value)")
    ap.add_argument("--root", type=Path, default=ROOT)
    a = ap.parse_args()
    params = {"levels": True, **{k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in a.set)}}
    rows: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for clip in clips("exposure", a.part, a.count, a.root, first=a.first):
        out = run_stage(Color(**params), clip)
        shift = float(out.astype(np.float64).mean() - clip.truth.astype(np.float64).mean())
        rows[str(clip.params["grade"])].append((shift, clip_psnr(out, clip.truth), 0.0))
    for clip in clips("faded", a.part, a.count, a.root, first=a.first):
        out = run_stage(Color(**params), clip)
        rows["faded"].append((clip_psnr(clip.frames, clip.truth), clip_psnr(out, clip.truth), 0.0))
    print(f"color {params}, part {a.part}, clips {a.first}..{a.first + a.count - 1} of each kind (144x256)\n")
    print("| clips | n | mean level change (mean abs / worst) | PSNR vs truth, dB (mean / worst) |")
    print("|---|---|---|---|")
    for grade in ("as_is", "night", "warm"):
        r = np.array(rows[grade])[:, :2]
        print(f"| {grade} | {len(r)} | {np.abs(r[:, 0]).mean():.2f} / {r[np.abs(r[:, 0]).argmax(), 0]:+.2f} "
              f"| {r[:, 1].mean():.2f} / {r[:, 1].min():.2f} |")
    f = np.array(rows["faded"])
    print(f"\n| faded | n | input PSNR | output PSNR | gain (mean / worst) |\n|---|---|---|---|---|\n"
          f"| | {len(f)} | {f[:, 0].mean():.2f} | {f[:, 1].mean():.2f} | {(f[:, 1] - f[:, 0]).mean():+.2f} / "
          f"{(f[:, 1] - f[:, 0]).min():+.2f} |")


if __name__ == "__main__":
    main()
