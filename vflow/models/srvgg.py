"""SRVGGNetCompact: Real-ESRGAN's compact super-resolution network (``realesr-animevideov3``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SRVGGNetCompact(nn.Module):
    """``conv, (PReLU, conv) x num_conv, PReLU, conv -> 3*s^2, pixel shuffle`` plus the nearest-upsampled input.

    State-dict keys match Real-ESRGAN's (``body.N.weight`` / ``body.N.bias``). Input and output are
    RGB in [0, 1], ``(N, 3, H, W) -> (N, 3, H*s, W*s)``; the output is not clamped.
    """

    tile_overlap = 32   # 16 body convs + 2: a receptive radius of 18 input pixels, inside 3/4 of the overlap

    def __init__(self, num_feat: int = 64, num_conv: int = 16, scale: int = 4) -> None:
        super().__init__()
        if scale not in (1, 2, 3, 4):
            raise ValueError(f"SRVGGNetCompact: scale must be 1, 2, 3 or 4, got {scale}")
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(3, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        layers.append(nn.Conv2d(num_feat, 3 * scale * scale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.scale, mode="nearest")
