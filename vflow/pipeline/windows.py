"""Shot windows: a stream of frame batches buffered so that each frame leaves with its temporal neighbours.

A temporal model (``context`` frames each side) restores frame ``t`` from ``t - context .. t + context``.
:class:`ShotWindows` keeps just enough of the stream for that: the frames not yet taken, ``context`` frames
of history, and what has come in since. A frame is ready when its ``context`` successors are in, when its
shot has ended (a later frame has another scene id), or at the end of the stream. Its window never crosses
a scene cut: past either end of its shot the nearest frame of the shot repeats (:func:`window_indices`).
Memory is bounded by the batches in flight, never by the length of the video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from ..models.film import window_indices
from .frames import ColorInfo, FrameBatch


def memory_frames(keep: float) -> int:
    """How far back a running average that keeps ``keep`` of its state each frame still sees a frame's
    weight above one 8-bit level (1/256): the context a recursive filter declares."""
    return 0 if keep <= 0 else math.ceil(math.log(1 / 256) / math.log(keep))


@dataclass(frozen=True)
class Windows:
    """Frames to run together: ``frames`` (S, H, W, 3) uint8 or uint16 and ``index`` (N, 2*context+1) into them, one
    row per output frame; the outputs' ``pts`` and ``scene``, and the stream's ``time_base`` and ``color``."""

    frames: torch.Tensor
    index: torch.Tensor
    pts: torch.Tensor
    scene: torch.Tensor
    time_base: Fraction
    color: ColorInfo


class ShotWindows:
    """Push frame batches in; take ready frames out with their windows (see the module docstring)."""

    def __init__(self, context: int) -> None:
        if context < 0:
            raise ValueError(f"context must be >= 0, got {context}")
        self.context = context
        self._frames: torch.Tensor | None = None
        self._pts = torch.empty(0, dtype=torch.int64)
        self._scene = torch.empty(0, dtype=torch.int64)
        self._first = 0            # stream index of the first buffered frame
        self._next = 0             # stream index of the next frame to take
        self._time_base = Fraction(1, 1)
        self._color = ColorInfo()

    def push(self, batch: FrameBatch) -> None:
        f = batch.frames
        self._frames = f if self._frames is None or not len(self._frames) else torch.cat([self._frames, f])
        self._pts = torch.cat([self._pts, batch.pts])
        self._scene = torch.cat([self._scene, batch.scene])
        self._time_base, self._color = batch.time_base, batch.color

    def ready(self, final: bool = False) -> int:
        """How many frames can be taken now (all that are buffered once ``final``: the stream has ended)."""
        end = self._first + len(self._scene)
        pending = end - self._next
        if final or pending <= 0 or self.context == 0:
            return max(pending, 0)
        by_count = max(end - self.context - self._next, 0)
        cuts = (self._scene[1:] != self._scene[:-1]).nonzero()
        last_shot = self._first + int(cuts[-1]) + 1 if len(cuts) else self._first   # where the last shot starts
        return max(by_count, last_shot - self._next)

    def take(self, n: int, final: bool = False) -> Windows:
        """The next ``n`` frames (at most :meth:`ready`) with their windows; drops what no window needs."""
        if not 0 < n <= self.ready(final):
            raise ValueError(f"take({n}): only {self.ready(final)} frames are ready")
        assert self._frames is not None
        size, frames = len(self._scene), 2 * self.context + 1
        scenes = self._scene.tolist()
        rows = [window_indices(size, t - self._first, frames, scenes)
                for t in range(self._next, self._next + n)]
        index = torch.tensor(rows, dtype=torch.long)
        lo, hi = int(index.min()), int(index.max()) + 1
        start = self._next - self._first
        out = Windows(self._frames[lo:hi], index - lo, self._pts[start:start + n].clone(),
                      self._scene[start:start + n].clone(), self._time_base, self._color)
        self._next += n
        keep = max(self._next - self.context, self._first) - self._first     # the history later windows need
        self._frames, self._pts, self._scene = self._frames[keep:], self._pts[keep:], self._scene[keep:]
        self._first += keep
        return out
