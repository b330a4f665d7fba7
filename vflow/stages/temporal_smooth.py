"""temporal_smooth: motion-adaptive temporal denoise and deflicker (numba kernels), reset at scene cuts."""

from __future__ import annotations

from typing import Literal

import torch

from ..kernels.temporal import Deflicker, TemporalDenoiser
from ..pipeline.frames import FrameBatch
from ..pipeline.registry import stage
from ..pipeline.stage import Stage, StageContext


@stage("temporal_smooth")
class TemporalSmooth(Stage):
    """Remove grain/noise over time without ghosting moving edges, and/or even out film flicker.

    ``denoise``: a recursive filter whose per-pixel weight falls where the frame moves (then a light
    spatial pass takes over); ``strength`` scales the noise level estimated on each frame.
    ``deflicker``: each frame's channel means follow a moving average of its scene (``window`` frames).
    Both start afresh at every scene cut (run ``scene_split`` before).

    ```yaml
    smooth: {type: temporal_smooth, params: {mode: both, strength: 1.0, window: 15}}
    ```
    """

    def __init__(self, mode: Literal["denoise", "deflicker", "both"] = "denoise", strength: float = 1.0,
                 window: int = 15):
        if strength <= 0 or window < 1:
            raise ValueError("strength must be > 0 and window >= 1")
        self.mode, self.strength, self.window = mode, strength, window

    def setup(self, ctx: StageContext) -> None:
        self.filters = []
        if self.mode in ("deflicker", "both"):
            self.filters.append(Deflicker(window=self.window))
        if self.mode in ("denoise", "both"):
            self.filters.append(TemporalDenoiser(strength=self.strength))
        return None

    def process(self, batch: FrameBatch) -> FrameBatch:
        frames, scenes = batch.frames.numpy(), batch.scene.numpy()
        for f in self.filters:
            frames = f(frames, scenes)
        return batch.replace(frames=torch.from_numpy(frames))
