"""Training losses: L1, SSIM, an FFT-magnitude term, the GAN loss (hinge or non-saturating) on the
discriminator's per-pixel logits, and feature matching on our own discriminator's features (there are no
pretrained VGG/LPIPS weights here). ``Losses`` weighs them as a config says."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _gauss(size: int = 11, sigma: float = 1.5, device: torch.device | None = None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of (N, 3, H, W) images (Gaussian window 11, sigma 1.5, valid region)."""
    w = _gauss(device=a.device).to(a.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = F.conv2d(a, w, groups=3), F.conv2d(b, w, groups=3)
    var_a = F.conv2d(a * a, w, groups=3) - mu_a**2
    var_b = F.conv2d(b * b, w, groups=3) - mu_b**2
    cov = F.conv2d(a * b, w, groups=3) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean()


def fft_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L1 between the FFT magnitudes (orthonormal) of two image batches: penalises lost or added detail."""
    fa = torch.fft.rfft2(a.float(), norm="ortho").abs()
    fb = torch.fft.rfft2(b.float(), norm="ortho").abs()
    return (fa - fb).abs().mean()


def gan_g(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The generator's adversarial loss on the discriminator's logits for its output."""
    return -fake_logits.mean() if kind == "hinge" else F.softplus(-fake_logits).mean()


def gan_d(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The discriminator's loss: hinge, or non-saturating (``ns``, binary cross-entropy on logits)."""
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def feature_matching(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 between the discriminator's features of the output and of the clean frame."""
    return sum((f - r.detach()).abs().mean() for f, r in zip(fake, real)) / max(1, len(fake))  # type: ignore[return-value]


@dataclass(frozen=True)
class Weights:
    """Loss weights (0 turns a term off) and the GAN loss kind (``hinge`` or ``ns``)."""

    l1: float = 1.0
    ssim: float = 0.0
    fft: float = 0.0
    gan: float = 0.0
    fm: float = 0.0
    gan_type: str = "hinge"

    def __post_init__(self) -> None:
        if self.gan_type not in ("hinge", "ns"):
            raise ValueError(f"gan_type must be 'hinge' or 'ns', got {self.gan_type!r}")


def pixel_losses(out: torch.Tensor, clean: torch.Tensor, w: Weights) -> dict[str, torch.Tensor]:
    """The reconstruction terms, weighted, by name (those with a weight above 0)."""
    terms: dict[str, torch.Tensor] = {"l1": w.l1 * (out - clean).abs().mean()}
    if w.ssim > 0:
        terms["ssim"] = w.ssim * (1 - ssim(out.float(), clean.float()))
    if w.fft > 0:
        terms["fft"] = w.fft * fft_loss(out, clean)
    return terms
