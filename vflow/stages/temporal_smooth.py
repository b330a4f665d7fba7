"""temporal_smooth: motion-adaptive temporal denoise and deflicker (numba kernels), reset at scene cuts."""

from __future__ import annotations

from collections import deque
from typing import Literal

import numpy as np
import torch

from ..kernels.deflicker import Deflicker
from ..kernels.temporal import TemporalDenoiser
from ..pipeline.frames import FrameBatch
from ..pipeline.registry import stage
from ..pipeline.stage import Stage, StageContext, stream_luma


@stage("temporal_smooth")
class TemporalSmooth(Stage):
    """Remove grain/noise over time without ghosting moving edges, and/or even out film flicker.

    ``denoise``: each frame averaged with its ``radius`` neighbours each side, aligned by block matching,
    each pixel weighted by how well it matches against the noise measured in time
    (:mod:`vflow.kernels.temporal`); ``strength`` scales that noise level. ``deflicker``: each frame's common
    brightness follows a piecewise-linear trend of its shot over ``window`` frames centred on it, so fades
    and lights switched on stay and only brief, frame-wide gains go (:mod:`vflow.kernels.deflicker`).
    ``both``: the deflicker, then the denoise. Frames leave ``radius`` frames late for the denoise,
    ``window // 2`` for the deflicker (or at the end of their shot). Both start afresh at every scene cut
    (run ``scene_split`` before).

    ```yaml
    smooth: {type: temporal_smooth, params: {mode: both, strength: 1.0, radius: 3, window: 49}}
    ```
    """

    depths = frozenset({8, 16})

    def __init__(self, mode: Literal["denoise", "deflicker", "both"] = "denoise", strength: float = 1.0,
                 radius: int = 3, window: int = 49):
        if mode not in ("denoise", "deflicker", "both"):
            raise ValueError(f"mode must be 'denoise', 'deflicker' or 'both', not {mode!r}")
        if strength <= 0 or window < 3 or radius < 1:
            raise ValueError("strength must be > 0, radius >= 1 and window >= 3")
        self.mode, self.strength, self.radius, self.window = mode, strength, radius, window

    @property
    def hdr(self) -> bool:  # type: ignore[override]
        """The denoise is right on any transfer; the deflicker's gains are those of an SDR picture's light."""
        return self.mode == "denoise"

    def context(self) -> tuple[int, int]:
        """The deflicker's trend window and the denoise's radius, one after the other."""
        n = (self.window // 2 if self.mode in ("deflicker", "both") else 0) + \
            (self.radius if self.mode in ("denoise", "both") else 0)
        return n, n

    def setup(self, ctx: StageContext) -> None:
        self.deflicker = Deflicker(radius=self.window // 2) if self.mode in ("deflicker", "both") else None
        self.denoiser = (TemporalDenoiser(radius=self.radius, strength=self.strength, luma=stream_luma(ctx))
                         if self.mode in ("denoise", "both") else None)
        self._kernels = [k for k in (self.deflicker, self.denoiser) if k is not None]
        self._queued: list[deque[int]] = [deque() for _ in self._kernels]   # scene ids inside each kernel
        self._waiting: deque[tuple[int, int]] = deque()     # (pts, scene) of the frames the kernels hold
        self._last: FrameBatch | None = None
        self._seq = 0
        return None

    def process(self, batch: FrameBatch) -> FrameBatch | None:
        self._last = batch
        self._waiting.extend(zip(batch.pts.tolist(), batch.scene.tolist()))
        return self._out(self._through(batch.frames.numpy(), batch.scene.tolist(), final=False))

    def finish(self) -> FrameBatch | None:
        return self._out(self._through([], [], final=True))

    def _through(self, frames: np.ndarray | list[np.ndarray], scenes: list[int], final: bool) -> list[np.ndarray]:
        """Frames (the batch's array, then what each kernel let out) through the kernels in turn; what leaves
        the last one."""
        for kernel, queued in zip(self._kernels, self._queued):
            queued.extend(scenes)
            ready = kernel.push(np.asarray(frames), np.array(scenes)) if len(frames) else []
            if final:
                ready += kernel.flush()
            scenes = [queued.popleft() for _ in ready]
            frames = ready
        return frames

    def _out(self, ready: list[np.ndarray]) -> FrameBatch | None:
        """The ready frames (the oldest waiting ones) as a batch."""
        if not ready:
            return None
        assert self._last is not None
        meta = [self._waiting.popleft() for _ in ready]
        pts = torch.tensor([p for p, _ in meta], dtype=torch.int64)
        scene = torch.tensor([s for _, s in meta], dtype=torch.int64)
        self._seq += 1
        return self._last.replace(frames=torch.from_numpy(np.stack(ready)), pts=pts, scene=scene,
                                  seq=self._seq - 1)
