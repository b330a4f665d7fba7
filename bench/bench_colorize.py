"""colorize: colour error and flicker on real colour clips turned grey, and throughput.

    python bench/bench_colorize.py [--frames 48] [--rounds 3] [--png docs/img/colorize_oldfilm.png]

Quality: each shot of a clean colour clip (between its known cuts) is turned grey (BT.601 luma as R=G=B)
and coloured again with the shot's first frame, in colour, as the reference (see
tests/kernels/test_kernel_colorize.py). Figures in CIE Lab: mean CIE76 ΔE against the true colours, and
chroma flicker, the mean ``|Δa| + |Δb|`` between consecutive frames. Rows: vflow; the same without
propagation (``temporal=0``: every frame looked up afresh); the baseline, the grey frame with the
reference's mean chroma everywhere; and, for flicker, the true colours themselves. Then the same on a
film-like copy (6% random brightness flicker per frame, grain), and the chroma flicker on the real
black-and-white film, where there are no true colours to compare with.

Throughput: the stage alone on real frames (Tears of Steel scaled to each size, batches of 8, decode
excluded, as bench/bench_stages.py), interleaved round by round with the ``color`` stage (levels) as a
yardstick for the machine's load; median of the rounds.

``--png`` writes the before/after picture of the real black-and-white film (oldfilm_abomb, the
soldier close-up, frame 30, the whole first shot run through decode -> scene_split -> colorize).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "kernels"))
from bench_stages import PHOTO, fps, real_batches  # noqa: E402
from kernel_media import decode  # noqa: E402
from test_kernel_colorize import CASES, HARD, chroma_flicker, lab, measure, shot  # noqa: E402

import vflow  # noqa: E402
import vflow.testing  # noqa: E402,F401  (registers collect)
from vflow.kernels.colorize import Colorizer  # noqa: E402
from vflow.media.probe import read_image  # noqa: E402
from vflow.stages.color import Color  # noqa: E402
from vflow.stages.colorize import Colorize  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FILM = DATA / "video" / "oldfilm_abomb_blast_effects_part1.mp4"
# A DOCUMERICA photo of men in hats outdoors by a truck and a wooden fence: faces, work clothes, wood and
# a vehicle in daylight, as in the film's close-up of a soldier in a cap in a truck (public domain, US EPA).
REFERENCE = PHOTO
SIZES = [(720, 480), (1920, 1080)]


def quality(frames: int) -> None:
    print(f"### Colour error and flicker ({frames} frames per shot at most, reference = the shot's first frame)\n")
    print("| shot | ΔE vflow | ΔE re-guess | ΔE grey+mean | vflow / grey+mean | flicker truth | flicker vflow "
          "| flicker re-guess | vflow / re-guess |")
    print("|---|" + "---|" * 8)
    scores = {}
    for name in [*CASES, *HARD]:
        s = scores[name] = measure(*shot(name, frames))
        label = f"{name} (hard)" if name in HARD else name
        print(f"| {label} | {s['vflow dE']:.2f} | {s['re-guess dE']:.2f} | {s['baseline dE']:.2f} "
              f"| {s['vflow dE'] / s['baseline dE']:.2f}x | {s['truth flicker']:.2f} | {s['vflow flicker']:.2f} "
              f"| {s['re-guess flicker']:.2f} | {s['vflow flicker'] / s['re-guess flicker']:.2f}x |", flush=True)
    print("\n### Film-like copy (6% brightness flicker per frame, grain sigma 6)\n")
    print("| shot | ΔE vflow | ΔE re-guess | flicker vflow | flicker re-guess | vflow / re-guess |")
    print("|---|" + "---|" * 5)
    for name, s in scores.items():
        print(f"| {name} | {s['film vflow dE']:.2f} | {s['film re-guess dE']:.2f} | {s['film vflow flicker']:.2f} "
              f"| {s['film re-guess flicker']:.2f} | {s['film vflow flicker'] / s['film re-guess flicker']:.2f}x |")


def real_film() -> None:
    """Chroma flicker on the real black-and-white film (no true colours to compare with)."""
    frames = decode("video/oldfilm_abomb_blast_effects_part1.mp4")
    cut = 44  # the film's known cut
    ids = (np.arange(len(frames)) >= cut).astype(np.int64)
    reference = read_image(REFERENCE).numpy()
    out = {t: lab(Colorizer(reference, temporal=t)(frames, ids)) for t in (0.9, 0.0)}
    print(f"\n### Real black-and-white film ({FILM.name}, reference {REFERENCE.name}): chroma flicker\n")
    print("| shot | frames | flicker vflow | flicker re-guess | vflow / re-guess |")
    print("|---|---|---|---|---|")
    for name, part in (("soldier in a truck", slice(0, cut)), ("road sign", slice(cut, None))):
        ours, again = chroma_flicker(out[0.9][part]), chroma_flicker(out[0.0][part])
        print(f"| {name} | {len(frames[part])} | {ours:.2f} | {again:.2f} | {ours / again:.2f}x |")


def throughput(frames: int, rounds: int) -> None:
    print(f"\n### Throughput ({frames} frames per cell, decode excluded, median of {rounds} interleaved rounds)\n")
    print("| size | colorize fps | color (levels) fps | colorize / color (time) |")
    print("|---|---|---|---|")
    for w, h in SIZES:
        batches = real_batches(frames, w, h)
        runs: dict[str, list[float]] = {"colorize": [], "color": []}
        for _ in range(rounds):
            runs["colorize"].append(fps(lambda: Colorize(reference=str(REFERENCE)), batches, w, h))
            runs["color"].append(fps(Color, batches, w, h))
        ours, peer = statistics.median(runs["colorize"]), statistics.median(runs["color"])
        print(f"| {w}x{h} | {ours:.1f} | {peer:.1f} | {peer / ours:.2f}x |", flush=True)


def before_after(path: Path, frame: int = 30) -> None:
    """The film's frame and its colorized version side by side, at the film's size, and the reference."""
    graph = {"stages": {"decode": {"type": "decode", "params": {"path": str(FILM)}},
                        "scenes": {"type": "scene_split"},
                        "colorize": {"type": "colorize", "params": {"reference": str(REFERENCE)}},
                        "out": {"type": "collect"}},
             "edges": ["decode.video -> scenes -> colorize -> out"]}
    pipeline = vflow.Pipeline.load(graph)
    pipeline.run()
    after = pipeline.stage("out").frames()[frame].numpy()
    with av.open(str(FILM)) as c:
        before = next(f for i, f in enumerate(c.decode(video=0)) if i == frame).to_ndarray(format="rgb24")
    h = before.shape[0]
    ref = av.VideoFrame.from_ndarray(read_image(REFERENCE).numpy(), format="rgb24")  # at half height: < 400 KB
    ref = ref.reformat(width=round(ref.width * h / 2 / ref.height) // 2 * 2, height=h // 2, format="rgb24")
    ref = np.pad(ref.to_ndarray(), ((0, h - h // 2), (0, 0), (0, 0)), constant_values=255)
    gap = np.full((h, 6, 3), 255, np.uint8)
    strip = np.ascontiguousarray(np.concatenate([before, gap, after, gap, ref], axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    av.VideoFrame.from_ndarray(strip, format="rgb24").save(str(path))
    print(f"\nwrote {path} ({path.stat().st_size // 1024} KB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--png", type=Path, help="write the before/after picture of the old film here")
    args = ap.parse_args()
    quality(args.frames)
    real_film()
    throughput(args.frames, args.rounds)
    if args.png:
        before_after(args.png)


if __name__ == "__main__":
    main()
