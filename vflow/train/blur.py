"""Blur kernels of Real-ESRGAN's degradation model, drawn in bulk, and a batched FFT filter that applies one
kernel per image.

Kinds (Wang et al. 2021, "Real-ESRGAN", sec. 3.2), for a quadratic form ``q = d^T S^-1 d`` over the offset
``d`` from the centre, ``S`` = R(theta) diag(sx^2, sy^2) R(theta)^T:

- ``gaussian``: exp(-q / 2); isotropic when sx = sy;
- ``generalized``: exp(-q^beta / 2), beta in [0.5, 4]: heavier tails below 1, flatter tops above;
- ``plateau``: 1 / (1 + q^beta), beta in [1, 2];
- ``sinc``: the 2D ideal low-pass (circular, cutoff omega): cutoff J1(omega r) / (2 pi r), the ringing and
  overshoot of sharpened or band-limited video.

Every kernel lives on a (K, K) grid, K = the largest size asked for; a smaller kernel is zero outside its own
size, so kernels of different sizes stack into one tensor.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

KINDS = ("gaussian", "generalized", "plateau", "sinc")


def _grid(k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    r = torch.arange(k, device=device, dtype=torch.float32) - k // 2
    return r.view(1, 1, k).expand(1, k, k), r.view(1, k, 1).expand(1, k, k)  # x, y


def kernels(kind: torch.Tensor, size: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor, theta: torch.Tensor,
            beta: torch.Tensor, omega: torch.Tensor, k: int) -> torch.Tensor:
    """(N, k, k) kernels that sum to 1. ``kind`` indexes ``KINDS``; ``size`` (odd, <= k) is each kernel's own
    support; ``sx, sy, theta`` shape the Gaussian family, ``beta`` the generalized and plateau shapes,
    ``omega`` the sinc cutoff (radians per pixel). All (N,) tensors on one device."""
    x, y = _grid(k, kind.device)
    c, s = torch.cos(theta).view(-1, 1, 1), torch.sin(theta).view(-1, 1, 1)
    u, v = c * x + s * y, -s * x + c * y                      # offsets in the kernel's own axes
    q = (u / sx.view(-1, 1, 1)) ** 2 + (v / sy.view(-1, 1, 1)) ** 2
    b = beta.view(-1, 1, 1)
    r = torch.sqrt(x * x + y * y)
    w = omega.view(-1, 1, 1)
    sinc = torch.where(r > 0, w * torch.special.bessel_j1(w * r) / (2 * math.pi * r.clamp_min(1e-6)),
                       w * w / (4 * math.pi))
    kd = kind.view(-1, 1, 1)
    out = torch.where(kd == 0, torch.exp(-0.5 * q),
                      torch.where(kd == 1, torch.exp(-0.5 * q.pow(b)),
                                  torch.where(kd == 2, 1 / (1 + q.pow(b)), sinc)))
    half = (size.view(-1, 1, 1) // 2).to(x.dtype)
    out = out * ((x.abs() <= half) & (y.abs() <= half))
    return out / out.sum(dim=(1, 2), keepdim=True)


def gaussian(sigma: torch.Tensor, k: int) -> torch.Tensor:
    """(N, k, k) isotropic Gaussian kernels of standard deviation ``sigma`` (N,)."""
    n = sigma.numel()
    zeros = torch.zeros(n, device=sigma.device)
    return kernels(zeros.long(), torch.full((n,), k, device=sigma.device), sigma, sigma, zeros, zeros + 1,
                   zeros + math.pi, k)


def filter2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve images ``x`` (N, C, H, W) with one kernel each (N, k, k), reflect padding, through the FFT
    (its cost does not grow with k). The result is ``x``'s size."""
    n, ch, h, w = x.shape
    k = kernel.shape[-1]
    p = k // 2
    if p >= h or p >= w:  # reflect padding needs p < size: replicate beyond it
        xp = F.pad(x, (p, p, p, p), mode="replicate")
    else:
        xp = F.pad(x, (p, p, p, p), mode="reflect")
    hh, ww = xp.shape[-2:]
    kp = torch.zeros(n, hh, ww, device=x.device, dtype=x.dtype)
    kp[:, :k, :k] = kernel.flip(-1, -2)  # correlation, as conv2d: flip, then the circular shift below
    kp = torch.roll(kp, shifts=(-p, -p), dims=(1, 2))
    spec = torch.fft.rfft2(xp) * torch.fft.rfft2(kp).unsqueeze(1)
    return torch.fft.irfft2(spec, s=(hh, ww))[..., p:p + h, p:p + w]
