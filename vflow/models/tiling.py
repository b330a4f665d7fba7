"""Run an image model tile by tile, with overlap, so any frame size fits a fixed memory budget."""

from __future__ import annotations

from typing import Callable

import torch


def tiled(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, scale: int, tile: int,
          overlap: int) -> torch.Tensor:
    """``model(x)`` for (N, C, H, W) ``x``, computed on ``tile``×``tile`` tiles each padded by ``overlap``
    pixels of real context; only each tile's centre is kept, so seams do not show."""
    n, c, h, w = x.shape
    if tile <= 0 or (h <= tile and w <= tile):
        return model(x)
    out = x.new_empty((n, c, h * scale, w * scale))
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(y0 - overlap, 0), max(x0 - overlap, 0)
            py1, px1 = min(y1 + overlap, h), min(x1 + overlap, w)
            part = model(x[:, :, py0:py1, px0:px1])
            oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                part[:, :, oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
    return out
