"""Chunk planning: the frames of a file in presentation order, cut into chunks at scene cuts or keyframes.

A chunk owns the frames ``first .. first + frames - 1`` and the time range ``[start, end)`` around them
(borders a quarter frame before a frame, so that no rounding and no doubled field-rate frame can fall on
them). It decodes ``[decode_start, decode_end)``, its range widened by the context its stages declare (none
before a chunk that starts at a scene cut); the frames outside ``[start, end)`` are dropped before the
encoder.
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass
from typing import Iterator

import av
import numpy as np

from ..kernels.scene import SceneDetector
from ..media.probe import MediaError, open_input
from .errors import VflowError

SCAN_WIDTH = 160  # the scene pre-pass looks at frames this wide (the detector itself works at 80)
SCAN_BATCH = 32


class ChunkError(VflowError):
    """A file or graph that the chunked backends cannot run, or a chunk that failed."""


@dataclass(frozen=True)
class Scan:
    """What the pre-pass found: each frame's time (seconds, presentation order), keyframes and scene cuts
    (indices of the first frame of each shot but the first)."""

    times: list[float]
    keyframes: list[int]
    cuts: list[int]


@dataclass
class Chunk:
    index: int
    first: int
    frames: int
    start: float | None        # None: from the beginning
    end: float | None          # None: to the end
    decode_start: float | None
    decode_end: float | None
    border: str                # why it starts where it does: "start", "cut", "keyframe" or "frame"
    state: str = "pending"     # "pending" or "done"
    wall_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def scan(path: str, stream: int = 0, cuts: bool = True) -> Scan:
    """Decode the whole video stream once: frame times, keyframes and (``cuts``) the scene detector's cuts
    on small frames. Refuses frames without timestamps or with timestamps that do not increase."""
    container = open_input(path)
    try:
        video = container.streams.video[stream]
        video.thread_type = "AUTO"
        times: list[float] = []
        keyframes: list[int] = []
        found: list[int] = []
        detector = SceneDetector() if cuts else None
        small: list[np.ndarray] = []
        for frame in _frames(container, video):
            if frame.pts is None or not frame.time_base:
                raise ChunkError(f"'{path}': frame {len(times)} has no timestamp; the chunked backends need "
                                 f"timestamped frames: run it with --backend stream")
            t = float(frame.pts * frame.time_base)
            if times and t <= times[-1]:
                raise ChunkError(f"'{path}': timestamps repeat or go back at frame {len(times)} ({t:.3f} s after "
                                 f"{times[-1]:.3f} s); the chunked backends need increasing timestamps: run it "
                                 f"with --backend stream")
            if frame.key_frame:
                keyframes.append(len(times))
            times.append(t)
            if detector is not None:
                h = max(2, round(frame.height * SCAN_WIDTH / frame.width / 2) * 2)
                small.append(frame.reformat(width=SCAN_WIDTH, height=h, format="rgb24").to_ndarray())
                if len(small) == SCAN_BATCH:
                    found += detector.push(np.stack(small))
                    small = []
        if detector is not None:
            if small:
                found += detector.push(np.stack(small))
            found += detector.flush()
    finally:
        container.close()
    if not times:
        raise MediaError(f"input file '{path}' has a video stream but no frame could be decoded")
    return Scan(times, keyframes, found)


def _frames(container: av.container.InputContainer, video: av.VideoStream) -> Iterator[av.VideoFrame]:
    for packet in container.demux(video):
        try:
            yield from packet.decode()
        except av.FFmpegError:
            continue  # damaged: the streaming decode skips it too


def border(times: list[float], k: int) -> float:
    """The time that separates frame ``k - 1`` from frame ``k``: a quarter of their gap before frame k."""
    return times[k] - (times[k] - times[k - 1]) / 4


def plan(s: Scan, seconds: float, before: int = 0, after: int = 0) -> list[Chunk]:
    """Chunks of about ``seconds``: each border at the scene cut nearest to its target time within half a
    chunk, else the nearest keyframe there, else the frame nearest the target. The last chunk takes what
    is left when that is less than one and a half chunks. A chunk decodes ``before`` frames ahead of its own
    (none at a cut: temporal stages start afresh there) and ``after`` frames past them."""
    if seconds <= 0:
        raise ValueError(f"chunk seconds must be > 0 (got {seconds})")
    times, n = s.times, len(s.times)
    firsts, kinds = [0], ["start"]
    while times[-1] - times[firsts[-1]] >= 1.5 * seconds:
        here = firsts[-1]
        target = times[here] + seconds
        lo = bisect.bisect_left(times, target - seconds / 2, here + 1)
        hi = bisect.bisect_right(times, target + seconds / 2, lo)
        k, kind = _nearest(s.cuts, lo, hi, times, target), "cut"
        if k is None:
            k, kind = _nearest(s.keyframes, lo, hi, times, target), "keyframe"
        if k is None:
            k, kind = min(range(lo, max(hi, lo + 1)), key=lambda i: abs(times[i] - target)), "frame"
        firsts.append(k)
        kinds.append(kind)
    chunks = []
    for i, (first, kind) in enumerate(zip(firsts, kinds)):
        stop = firsts[i + 1] if i + 1 < len(firsts) else n
        lo, hi = first - (0 if kind == "cut" else before), stop + after  # a shot starts afresh at a cut
        chunks.append(Chunk(
            index=i, first=first, frames=stop - first, border=kind,
            start=border(times, first) if first > 0 else None,
            end=border(times, stop) if stop < n else None,
            decode_start=border(times, lo) if lo > 0 else None,
            decode_end=border(times, hi) if hi < n else None))
    return chunks


def _nearest(marks: list[int], lo: int, hi: int, times: list[float], target: float) -> int | None:
    """The index in sorted ``marks`` within ``[lo, hi)`` whose time is nearest ``target``; None if none."""
    a, b = bisect.bisect_left(marks, lo), bisect.bisect_left(marks, hi)
    if a == b:
        return None
    return min(marks[a:b], key=lambda k: abs(times[k] - target))
