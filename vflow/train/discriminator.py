"""A U-Net discriminator with spectral norm (after Real-ESRGAN's ``UNetDiscriminatorSN``; our own code).

Three stride-2 convs down, three bilinear upsamplings back with skip connections, then two convs and a
1-channel head: a realness logit per pixel, so the GAN loss judges local texture everywhere. Spectral norm
on every conv but the first and the head keeps the discriminator Lipschitz-ish and the training stable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class UNetDiscriminator(nn.Module):
    """``(N, 3, H, W) -> (N, 1, H, W)`` realness logits; ``forward(x, features=True)`` also returns the
    decoder's feature maps (for feature matching). Any ``H, W`` works (upsampling goes to the skip's size)."""

    def __init__(self, width: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        w = width
        self.conv0 = nn.Conv2d(in_channels, w, 3, 1, 1)
        self.down = nn.ModuleList(spectral_norm(nn.Conv2d(a, b, 4, 2, 1, bias=False))
                                  for a, b in ((w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w)))
        self.up = nn.ModuleList(spectral_norm(nn.Conv2d(a, b, 3, 1, 1, bias=False))
                                for a, b in ((8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w)))
        self.extra = nn.Sequential(spectral_norm(nn.Conv2d(w, w, 3, 1, 1, bias=False)), nn.LeakyReLU(0.2, True),
                                   spectral_norm(nn.Conv2d(w, w, 3, 1, 1, bias=False)), nn.LeakyReLU(0.2, True))
        self.head = nn.Conv2d(w, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor, features: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        skips = [F.leaky_relu(self.conv0(x), 0.2)]
        for conv in self.down:
            skips.append(F.leaky_relu(conv(skips[-1]), 0.2))
        y, feats = skips.pop(), []
        for conv in self.up:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = F.leaky_relu(conv(y), 0.2) + skip
            feats.append(y)
        y = self.extra(y)
        out = self.head(y)
        return (out, feats + [y]) if features else out
