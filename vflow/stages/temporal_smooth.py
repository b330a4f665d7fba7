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

    ``denoise``: a recursive filter whose per-pixel weight falls where the frame moves (then a light
    spatial pass takes over); ``strength`` scales the noise level estimated on each frame.
    ``deflicker``: each frame's common brightness follows a piecewise-linear trend of its shot over
    ``window`` frames centred on it, so fades and lights switched on stay and only brief, frame-wide
    gains go (:mod:`vflow.kernels.deflicker`); frames leave ``window // 2`` frames late (or at the end of
    their shot). Both start afresh at every scene cut (run ``scene_split`` before).

    ```yaml
    smooth: {type: temporal_smooth, params: {mode: both, strength: 1.0, window: 49}}
    ```
    """

    def __init__(self, mode: Literal["denoise", "deflicker", "both"] = "denoise", strength: float = 1.0,
                 window: int = 49):
        if mode not in ("denoise", "deflicker", "both"):
            raise ValueError(f"mode must be 'denoise', 'deflicker' or 'both', not {mode!r}")
        if strength <= 0 or window < 3:
            raise ValueError("strength must be > 0 and window >= 3")
        self.mode, self.strength, self.window = mode, strength, window

    def setup(self, ctx: StageContext) -> None:
        self.deflicker = Deflicker(radius=self.window // 2) if self.mode in ("deflicker", "both") else None
        self.denoiser = (TemporalDenoiser(strength=self.strength, luma=stream_luma(ctx))
                         if self.mode in ("denoise", "both") else None)
        self._waiting: deque[tuple[int, int]] = deque()     # (pts, scene) of the frames the deflicker holds
        self._last: FrameBatch | None = None
        self._seq = 0
        return None

    def process(self, batch: FrameBatch) -> FrameBatch | None:
        frames, scenes = batch.frames.numpy(), batch.scene.numpy()
        self._last = batch
        if self.deflicker is None:
            return batch.replace(frames=torch.from_numpy(self._denoise(frames, scenes)))
        self._waiting.extend(zip(batch.pts.tolist(), batch.scene.tolist()))
        return self._out(self.deflicker.push(frames, scenes))

    def finish(self) -> FrameBatch | None:
        return self._out(self.deflicker.flush()) if self.deflicker is not None else None

    def _out(self, ready: list[np.ndarray]) -> FrameBatch | None:
        """The deflicker's ready frames (the oldest waiting ones), denoised, as a batch."""
        if not ready:
            return None
        assert self._last is not None
        meta = [self._waiting.popleft() for _ in ready]
        pts = torch.tensor([p for p, _ in meta], dtype=torch.int64)
        scene = torch.tensor([s for _, s in meta], dtype=torch.int64)
        frames = self._denoise(np.stack(ready), scene.numpy())
        self._seq += 1
        return self._last.replace(frames=torch.from_numpy(frames), pts=pts, scene=scene, seq=self._seq - 1)

    def _denoise(self, frames: np.ndarray, scenes: np.ndarray) -> np.ndarray:
        return self.denoiser(frames, scenes) if self.denoiser is not None else frames
