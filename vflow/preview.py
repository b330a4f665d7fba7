"""``vflow preview``: a graph run on a few seconds of the input, shown before|after, to choose settings.

The seconds are taken where they say most about the footage: by default the middle of its longest shot
(from the scene detector on clips up to a minute, from how much each keyframe differs from the one before
on longer ones). The graph is the user's, with every ``decode`` given the time range and every ``encode``
writing into the preview folder: the same runtime, custom stages included.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .compare import Mode, contact_sheet, video
from .media.probe import open_input
from .pipeline import Pipeline, VflowError
from .pipeline.chunkplan import scan

FULL_SCAN_S = 60.0   # clips up to this long are scanned frame by frame for their shots
KEY_CUT = 25.0       # mean difference (levels, 32x18 grey) between keyframes taken as another shot


@dataclass(frozen=True)
class Preview:
    start: float
    end: float
    frames: int          # frames the graph's encoder received
    video: Path
    still: Path


def _duration(path: str) -> float:
    container = open_input(path)
    try:
        v = container.streams.video[0]
        if v.duration and v.time_base:
            return float(v.duration * v.time_base)
        return container.duration / 1e6 if container.duration else 0.0
    finally:
        container.close()


def _shots_from_keyframes(path: str) -> list[tuple[float, float]]:
    """Shots as runs of keyframes that look alike (only keyframes are decoded: fast on long files)."""
    container = open_input(path)
    try:
        v = container.streams.video[0]
        v.codec_context.skip_frame = "NONKEY"
        times, small = [], []
        for frame in container.decode(v):
            if frame.pts is not None:
                times.append(float(frame.pts * frame.time_base))
                small.append(frame.reformat(width=32, height=18, format="gray").to_ndarray().astype(np.float32))
        end = times[-1] if times else 0.0
    finally:
        container.close()
    starts = [0] + [i for i in range(1, len(small)) if np.abs(small[i] - small[i - 1]).mean() > KEY_CUT]
    bounds = [times[i] for i in starts] + [end]
    return list(zip(bounds[:-1], bounds[1:]))


def shots(path: str) -> list[tuple[float, float]]:
    """Each shot's start and end, in seconds (frame by frame up to a minute, from keyframes beyond)."""
    if _duration(path) <= FULL_SCAN_S:
        s = scan(path)
        firsts = [0, *s.cuts, len(s.times) - 1]
        return [(s.times[a], s.times[b]) for a, b in zip(firsts[:-1], firsts[1:])]
    return _shots_from_keyframes(path)


def longest_shot(path: str) -> tuple[float, float]:
    """The longest shot's start and end, in seconds."""
    found = shots(path)
    return max(found, key=lambda ab: ab[1] - ab[0]) if found else (0.0, _duration(path))


def preview(pipeline: Pipeline, out_dir: Path, seconds: float = 3.0, at: float | None = None,
            mode: Mode = "side") -> Preview:
    """Run ``pipeline`` on ``seconds`` from ``at`` (default: centred in the longest shot) and write
    ``out_dir/preview.mp4`` (before|after) and ``out_dir/preview.png`` (a still with zoomed crops)."""
    if seconds <= 0:
        raise VflowError(f"--seconds must be > 0 (got {seconds})")
    decodes = [s for s in pipeline.spec.stages.values() if s.type == "decode"]
    encodes = [s for s in pipeline.spec.stages.values() if s.type == "encode"]
    if not decodes or not encodes:
        raise VflowError("preview needs a graph with a 'decode' and an 'encode' stage")
    pipeline.build()  # variables substituted, everything validated, before any frame flows
    source = str(decodes[0].params["path"])
    pipeline.release()
    if at is None:
        a, b = longest_shot(source)
        at = max(a, (a + b) / 2 - seconds / 2)
    outputs = [out_dir / ("after.mp4" if len(encodes) == 1 else f"after-{e.name}.mp4") for e in encodes]
    spec = pipeline.spec
    for d in decodes:
        d.params.update(start=at, end=at + seconds)
    for e, path in zip(encodes, outputs):
        e.params["path"] = str(path)
    run = Pipeline(spec, allow_modules=pipeline.allow_modules)
    report = run.run()
    frames = report.stages[encodes[0].name].frames_in
    names = ("before", "after")
    video(source, outputs[0], out_dir / "preview.mp4", mode, names, at, at + seconds)
    contact_sheet(source, outputs[0], out_dir / "preview.png", 1, "side", names, at, at + seconds)
    return Preview(at, at + seconds, frames, out_dir / "preview.mp4", out_dir / "preview.png")


__all__ = ["Preview", "longest_shot", "preview", "shots"]
