"""trim: keep the frames whose timestamps lie in a time range."""

from __future__ import annotations

import torch

from ..pipeline.frames import FrameBatch
from ..pipeline.registry import stage
from ..pipeline.stage import Stage


@stage("trim")
class Trim(Stage):
    """Keep the frames with ``start <= t < end`` (seconds of their own pts; null: no bound).

    The chunked backends put one before each encoder, to drop the frames that a chunk decoded only as
    context for its temporal stages.

    ```yaml
    trim: {type: trim, params: {start: 10.0, end: 20.0}}
    ```
    """

    frame_count_changes = "keeps only the frames of its time range"
    depths = frozenset({8, 16})

    def __init__(self, start: float | None = None, end: float | None = None):
        if start is not None and end is not None and end <= start:
            raise ValueError(f"end must be after start (got start {start}, end {end})")
        self.start, self.end = start, end

    def process(self, batch: FrameBatch) -> FrameBatch | None:
        t = batch.pts.double() * float(batch.time_base)
        keep = torch.ones_like(t, dtype=torch.bool) if self.start is None else t >= self.start
        if self.end is not None:
            keep &= t < self.end
        if bool(keep.all()):
            return batch
        if not bool(keep.any()):
            return None
        return batch.replace(frames=batch.frames[keep].contiguous(), pts=batch.pts[keep], scene=batch.scene[keep])
