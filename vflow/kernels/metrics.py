"""Per-frame PSNR and SSIM.

``ssim`` reproduces scikit-image's ``structural_similarity`` defaults (7x7 uniform window, K1=0.01,
K2=0.03, sample covariance, mean over the window-valid interior, channels averaged as with
``channel_axis=-1``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from . import serialised


@serialised
@nb.njit(nogil=True, cache=True, parallel=True)
def _sq_err(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = a.shape[0]
    flat_a = a.reshape(n, -1)
    flat_b = b.reshape(n, -1)
    out = np.zeros(n, np.float64)
    for f in nb.prange(n):
        acc = 0.0
        for i in range(flat_a.shape[1]):
            d = float(flat_a[f, i]) - float(flat_b[f, i])
            acc += d * d
        out[f] = acc / flat_a.shape[1]
    return out


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """PSNR in dB of each frame of ``(N, ...)`` arrays; ``inf`` where frames are equal."""
    _check(a, b)
    mse = _sq_err(np.ascontiguousarray(a), np.ascontiguousarray(b))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / mse)


@serialised
@nb.njit(nogil=True, cache=True, parallel=True)
def _ssim_rows(a: np.ndarray, b: np.ndarray, data_range: float) -> np.ndarray:
    """Sum of the SSIM map over each valid row of ``(N, H, W, C)`` planes: ``out[f, c, y]``."""
    n, h, w, nc = a.shape
    win, pad = 7, 3
    npix = win * win
    cov_norm = npix / (npix - 1.0)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    out = np.zeros((n, nc, h), np.float64)
    rows = h - 2 * pad
    for job in nb.prange(n * nc * rows):
        f = job // (nc * rows)
        c = (job // rows) % nc
        y = job % rows + pad
        col = np.zeros((5, w), np.float64)  # 7-row column sums of x, y, xx, yy, xy
        for yy in range(y - pad, y + pad + 1):
            for x in range(w):
                p = float(a[f, yy, x, c])
                q = float(b[f, yy, x, c])
                col[0, x] += p
                col[1, x] += q
                col[2, x] += p * p
                col[3, x] += q * q
                col[4, x] += p * q
        acc = 0.0
        for x in range(pad, w - pad):
            sx = sy = sxx = syy = sxy = 0.0
            for xx in range(x - pad, x + pad + 1):
                sx += col[0, xx]
                sy += col[1, xx]
                sxx += col[2, xx]
                syy += col[3, xx]
                sxy += col[4, xx]
            ux, uy = sx / npix, sy / npix
            vx = cov_norm * (sxx / npix - ux * ux)
            vy = cov_norm * (syy / npix - uy * uy)
            vxy = cov_norm * (sxy / npix - ux * uy)
            acc += ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        out[f, c, y] = acc
    return out


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Mean SSIM of each frame: ``(N, H, W)`` single-channel or ``(N, H, W, C)`` (channels averaged)."""
    _check(a, b)
    if a.ndim == 3:
        a, b = a[..., None], b[..., None]
    if a.ndim != 4 or min(a.shape[1:3]) < 7:
        raise ValueError(f"expected (N, H, W[, C]) frames of at least 7x7, got {a.shape}")
    rows = _ssim_rows(np.ascontiguousarray(a), np.ascontiguousarray(b), float(data_range))
    h, w = a.shape[1:3]
    return rows.sum(axis=2).mean(axis=1) / ((h - 6) * (w - 6))


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
