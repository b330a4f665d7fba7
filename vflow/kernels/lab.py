"""sRGB (uint8) <-> CIE Lab (D65), vectorised in torch, for colour statistics and transfer."""

from __future__ import annotations

import torch

_RGB2XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64)
_XYZ2RGB = torch.linalg.inv(_RGB2XYZ)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_EPS, _KAPPA = 216 / 24389, 24389 / 27


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3) uint8 sRGB -> (..., 3) float64 Lab (L in 0..100)."""
    c = rgb.to(torch.float64) / 255
    lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _RGB2XYZ.T / _WHITE
    f = torch.where(xyz > _EPS, xyz.clamp_min(1e-12) ** (1 / 3), (_KAPPA * xyz + 16) / 116)
    return torch.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(..., 3) Lab -> (..., 3) uint8 sRGB (out-of-gamut colours clipped)."""
    fy = (lab[..., 0] + 16) / 116
    f = torch.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    xyz = torch.where(f ** 3 > _EPS, f ** 3, (116 * f - 16) / _KAPPA) * _WHITE
    lin = (xyz @ _XYZ2RGB.T).clamp(0, 1)
    c = torch.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return (c * 255).round_().clamp_(0, 255).to(torch.uint8)
