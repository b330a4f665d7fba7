"""Interlace detection (FFmpeg ``idet``) and deinterlacing (FFmpeg ``bwdif``) through PyAV's filter graph.

Deinterlacing happens in ``decode``, on the decoder's own YUV frames, before chroma is upsampled to RGB:
that is where a deinterlacer must see the two fields, and it makes vflow's output the same as FFmpeg's.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable

import av
import av.filter
import numpy as np

DETECT_FRAMES = 32  # frames idet looks at when deciding
UNTAGGED = 0.75     # share of them idet must call interlaced when the stream is not tagged so
COMBED = 0.005      # and the median share of combed blocks it must show (combed_share)


@dataclass(frozen=True)
class Detection:
    """What the tags and the combing measurement say about a stream."""

    interlaced: bool
    order: str            # "tff", "bff" or "progressive"
    tagged: bool          # the frames carried the interlaced flag
    measured: dict[str, int]

    def describe(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.measured.items())
        return f"{self.order} (tagged interlaced: {self.tagged}; idet: {counts or 'no frames'})"


def _run(stream: Any, filters: list[tuple[str, str]], frames: Iterable[av.VideoFrame]
         ) -> tuple[av.filter.Graph, Any, Any, list[Any]]:
    """Build buffer -> filters -> buffersink, push ``frames``; the graph must outlive its src/sink handles."""
    graph = av.filter.Graph()
    node = src = graph.add_buffer(template=stream)
    for name, args in filters:
        nxt = graph.add(name, args)
        node.link_to(nxt)
        node = nxt
    sink = graph.add("buffersink")
    node.link_to(sink)
    graph.configure()
    out: list[Any] = []
    for f in frames:
        src.push(f)
        out += _pull(sink)
    return graph, src, sink, out


def _pull(sink: Any) -> list[av.VideoFrame]:
    out = []
    while True:
        try:
            out.append(sink.pull())
        except (BlockingIOError, av.error.EOFError):
            return out


def _idet_counts(frame: av.VideoFrame | None, keys: tuple[str, ...]) -> dict[str, int]:
    """idet's multi-frame counts so far, from the metadata of the last frame it passed on."""
    meta = frame.metadata if frame is not None else {}
    return {k: int(float(meta.get(f"lavfi.idet.multiple.{k}", 0))) for k in keys}


def combed_share(frame: av.VideoFrame, block: int = 16, ratio: float = 1.3, floor: float = 2.0) -> float:
    """The share of a frame's textured blocks that look combed: their neighbouring lines differ ``ratio``
    times more than lines two apart (the same field). Two fields of different moments comb wherever
    something moved; a progressive frame almost never does, even where idet is fooled (a slow vertical pan
    over a photo makes each frame's lines match the previous frame's other lines)."""
    y = frame.to_ndarray(format="gray").astype(np.float32)
    h, w = (y.shape[0] - 2) // block * block, y.shape[1] // block * block
    if h <= 0 or w <= 0:
        return 0.0
    near = np.abs(y[:h, :w] - y[1:h + 1, :w]).reshape(h // block, block, w // block, block).mean((1, 3))
    same = np.abs(y[:h, :w] - y[2:h + 2, :w]).reshape(h // block, block, w // block, block).mean((1, 3))
    textured = same > floor
    return float((textured & (near > ratio * same)).sum() / max(1, int(textured.sum())))


def detect(stream: Any, frames: list[av.VideoFrame]) -> Detection:
    """Tagged field order, checked by idet's multi-frame combing counts on the first frames.

    The measurement wins when it is clear (it catches missing and wrong tags); with too few frames for idet
    (a single DV frame is always 'undetermined') the tag decides.
    """
    tagged = any(f.interlaced_frame for f in frames)
    _, _, _, out = _run(stream, [("idet", "")], frames)
    counts = _idet_counts(out[-1] if out else None, ("tff", "bff", "progressive", "undetermined"))
    fields = counts["tff"] + counts["bff"]
    seen = fields + counts["progressive"] + counts["undetermined"]
    # an untagged stream needs overwhelming combing: fine horizontal detail (a fence, a grainy slide) combs too,
    # and combing seen in the frames themselves (a slow vertical pan fools idet)
    clear = (fields > counts["progressive"] if tagged
             else fields >= UNTAGGED * seen and fields > 3 * counts["progressive"]
             and float(np.median([combed_share(f) for f in frames])) >= COMBED)
    if clear and fields >= 2:
        return Detection(True, "tff" if counts["tff"] >= counts["bff"] else "bff", tagged, counts)
    if counts["progressive"] >= 2 and counts["progressive"] > 2 * fields:
        return Detection(False, "progressive", tagged, counts)
    return Detection(tagged, "auto" if tagged else "progressive", tagged, counts)


class CombingWatch:
    """FFmpeg's ``idet`` kept running over a stream that looked progressive at the start: an untagged capture
    that opens on a still or a black title shows its combing only later. Every ``step`` frames, ``push``
    looks at the last ``window`` frames and says when they were clearly interlaced, and in which field order."""

    KEYS = ("tff", "bff", "progressive")

    def __init__(self, stream: Any, window: int = 24, step: int = 8):
        self._graph, self._src, self._sink, _ = _run(stream, [("idet", "")], ())
        self.window, self.step, self._seen = window, step, 0
        self._history: list[dict[str, int]] = [dict.fromkeys(self.KEYS, 0)]
        self._sampled: list[av.VideoFrame] = []  # one frame per step over the window, measured only when idet fires

    def push(self, frame: av.VideoFrame) -> str | None:
        """``tff``/``bff`` once combing is clear in the last frames pushed, else None."""
        self._src.push(frame)
        out = _pull(self._sink)
        self._seen += 1
        if not out or self._seen % self.step:
            return None
        counts = _idet_counts(out[-1], self.KEYS)
        self._history = [*self._history, counts][-(self.window // self.step + 1):]
        self._sampled = [*self._sampled, frame][-(self.window // self.step):]
        delta = {k: counts[k] - self._history[0][k] for k in self.KEYS}
        fields = delta["tff"] + delta["bff"]
        if len(self._history) * self.step > self.window and fields >= self.window // 2 \
                and fields > 2 * delta["progressive"] \
                and float(np.median([combed_share(f) for f in self._sampled])) >= COMBED:
            return "tff" if delta["tff"] >= delta["bff"] else "bff"
        return None


class Deinterlacer:
    """``bwdif`` over decoded frames; ``rate='field'`` gives one frame per field (50i -> 50p, pts exact)."""

    def __init__(self, stream: Any, order: str, rate: str):
        parity = {"tff": "tff", "bff": "bff"}.get(order, "auto")
        mode = "send_field" if rate == "field" else "send_frame"
        self._graph, self._src, self._sink, _ = _run(stream, [("bwdif", f"mode={mode}:parity={parity}:deint=all")], ())
        tb = Fraction(stream.time_base)
        self.time_base = tb / 2 if rate == "field" else tb
        self._last_pts: int | None = None

    def push(self, frame: av.VideoFrame | None) -> list[av.VideoFrame]:
        """Frames out for one frame in (``None`` flushes at end of stream)."""
        self._src.push(frame)
        out = _pull(self._sink)
        for f in out:
            # bwdif gives both fields of a stream's last frame the same pts when it has no next frame to
            # time the second one by (seen on one-frame DV clips): place it a field duration later
            if f.pts is not None and self._last_pts is not None and f.pts <= self._last_pts:
                f.pts = self._last_pts + (f.duration or 1)
            self._last_pts = f.pts
        return out
