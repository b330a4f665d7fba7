"""sRGB (uint8 or uint16) <-> CIE Lab (D65) in float32 numba kernels, and a per-channel Lab remap through tables.

The kernels take either depth: the sRGB-code-to-linear table of the frames' depth is passed in
(:func:`linear_table`), and Lab is written back at ``vmax`` (255: exact rounding through thresholds;
65535: the sRGB curve through an interpolated table, within 0.08 of a code).

``remap_lab`` is the per-pixel half of colour transfer: each Lab channel goes through its own
piecewise-linear table sampled on a fixed grid (``lab_grid``) spanning the sRGB gamut, so any
per-channel mapping (an affine mean/spread transfer or a histogram match) costs the same per pixel.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from . import serialised

_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                     [0.2126729, 0.7151522, 0.0721750],
                     [0.0193339, 0.1191920, 0.9503041]])
_WHITE = np.array([0.95047, 1.0, 1.08883])
_TO_XYZ = (_RGB2XYZ / _WHITE[:, None]).astype(np.float32)           # linear RGB -> white-relative XYZ
_TO_RGB = (np.linalg.inv(_RGB2XYZ) * _WHITE).astype(np.float32)      # white-relative XYZ -> linear RGB
_EPS, _KAPPA = np.float32(216 / 24389), np.float32(24389 / 27)
_F32 = np.float32


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB values (0..1, float64) -> linear light (the IEC 61966-2-1 transfer function)."""
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear light (0..1, float64) -> sRGB values: the inverse of :func:`srgb_to_linear`."""
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.maximum(c, 0.0031308) ** (1 / 2.4) - 0.055)


def lightness(y: np.ndarray) -> np.ndarray:
    """CIE L* (0..100, float64) of relative luminance ``y`` (0..1): the lightness of a grey of that luminance."""
    f = np.where(y > 216 / 24389, np.cbrt(y), (24389 / 27 * y + 16) / 116)
    return 116 * f - 16


_LINEAR = srgb_to_linear(np.arange(256) / 255).astype(np.float32)  # sRGB code -> linear light
_LINEAR16 = srgb_to_linear(np.arange(65536) / 65535).astype(np.float32)
# Linear light -> sRGB code, rounded exactly: code v starts where the sRGB value reaches (v - 0.5)/255.
_THRESH = np.concatenate([[-1.0], srgb_to_linear((np.arange(1, 256) - 0.5) / 255), [2.0]]).astype(np.float32)
_CELLS = 4096  # narrower than the closest two thresholds (0.0003 near black): at most one step up
_START = (np.searchsorted(_THRESH, np.arange(_CELLS + 1) / _CELLS, side="right") - 1).astype(np.int32)

# Per-channel grid of remap tables: L 0..100, a and b just beyond the sRGB gamut's extremes.
LAB_RANGE = np.array([[0.0, 100.0], [-88.0, 100.0], [-110.0, 96.0]], np.float32)


# Cube root above _EPS (XYZ/white <= 1 in sRGB) by linear interpolation: error 1.3e-6, 5x faster than pow.
_ROOT_CELLS = 8192
_ROOT = np.cbrt(np.arange(_ROOT_CELLS + 1) / _ROOT_CELLS).astype(np.float32)


@nb.njit(nogil=True, cache=True, inline="always", fastmath=True)
def _f(t):
    if t <= _EPS:
        return (_KAPPA * t + _F32(16)) / _F32(116)
    pos = min(t, _F32(1)) * _F32(_ROOT_CELLS)
    k = min(int(pos), _ROOT_CELLS - 1)
    return _ROOT[k] + (pos - _F32(k)) * (_ROOT[k + 1] - _ROOT[k])


def linear_table(dtype: np.dtype) -> np.ndarray:
    """sRGB code -> linear light for frames of ``dtype`` (uint8 or uint16)."""
    return _LINEAR if np.dtype(dtype) == np.uint8 else _LINEAR16


@nb.njit(nogil=True, cache=True, inline="always", fastmath=True)
def _to_lab(r, g, b, lin):
    lr, lg, lb = lin[r], lin[g], lin[b]
    fx = _f(_TO_XYZ[0, 0] * lr + _TO_XYZ[0, 1] * lg + _TO_XYZ[0, 2] * lb)
    fy = _f(_TO_XYZ[1, 0] * lr + _TO_XYZ[1, 1] * lg + _TO_XYZ[1, 2] * lb)
    fz = _f(_TO_XYZ[2, 0] * lr + _TO_XYZ[2, 1] * lg + _TO_XYZ[2, 2] * lb)
    return _F32(116) * fy - _F32(16), _F32(500) * (fx - fy), _F32(200) * (fy - fz)


@nb.njit(nogil=True, cache=True, inline="always", fastmath=True)
def _finv(f):
    f3 = f * f * f
    return f3 if f3 > _EPS else (_F32(116) * f - _F32(16)) / _KAPPA


@nb.njit(nogil=True, cache=True, inline="always", fastmath=True)
def _encode(lin):
    lin = min(max(lin, _F32(0)), _F32(1))
    code = _START[int(lin * _CELLS)]
    return code + 1 if lin >= _THRESH[code + 1] else code


# Linear light -> 16-bit sRGB code, sampled every 1/16384 and interpolated: within 0.08 of a code (the curve's
# linear foot is exact; above it, the interpolation error is h^2/8 of its curvature), in a 64 KiB table
_ENC16_CELLS = 16384
_ENC16 = (65535 * linear_to_srgb(np.arange(_ENC16_CELLS + 1) / _ENC16_CELLS)).astype(np.float32)


@nb.njit(nogil=True, cache=True, inline="always", fastmath=True)
def _encode16(lin):
    pos = min(max(lin, _F32(0)), _F32(1)) * _F32(_ENC16_CELLS)
    k = min(int(pos), _ENC16_CELLS - 1)
    v = _ENC16[k] + (pos - _F32(k)) * (_ENC16[k + 1] - _ENC16[k])
    return min(int(v + _F32(0.5)), 65535)


@nb.njit(nogil=True, cache=True, inline="always", fastmath=True)
def lab_to_rgb_into(l_, a, b, out, i, vmax):
    """Write one Lab colour ``(l_, a, b)`` (float32) as sRGB codes 0..``vmax`` (255 or 65535) into
    ``out[i, 0:3]``, gamut-clipped and rounded, as :func:`lab_to_rgb` converts it. A numba function, inlined
    into the calling kernel: other kernels that produce Lab per pixel (colorize's render) write through it."""
    fy = (l_ + _F32(16)) / _F32(116)
    x, y, z = _finv(fy + a / _F32(500)), _finv(fy), _finv(fy - b / _F32(200))
    for c in range(3):
        lin = _TO_RGB[c, 0] * x + _TO_RGB[c, 1] * y + _TO_RGB[c, 2] * z
        out[i, c] = _encode(lin) if vmax == 255 else _encode16(lin)


@nb.njit(nogil=True, cache=True)
def _rgb_to_lab(rgb, lin, out):
    for i in range(rgb.shape[0]):
        out[i, 0], out[i, 1], out[i, 2] = _to_lab(rgb[i, 0], rgb[i, 1], rgb[i, 2], lin)


@nb.njit(nogil=True, cache=True)
def _lab_to_rgb(lab, out, vmax):
    for i in range(lab.shape[0]):
        lab_to_rgb_into(lab[i, 0], lab[i, 1], lab[i, 2], out, i, vmax)


@nb.njit(nogil=True, cache=True, inline="always", fastmath=True)
def _lookup(table, c, pos):
    cells = table.shape[1] - 1
    pos = min(max(pos, _F32(0)), _F32(cells))
    k = min(int(pos), cells - 1)
    return table[c, k] + (pos - _F32(k)) * (table[c, k + 1] - table[c, k])


@serialised
@nb.njit(nogil=True, cache=True, parallel=True, fastmath=True)
def _remap(rgb, lin, table, lo, scale, out, vmax):
    for i in nb.prange(rgb.shape[0]):
        l_, a, b = _to_lab(rgb[i, 0], rgb[i, 1], rgb[i, 2], lin)
        lab_to_rgb_into(_lookup(table, 0, (l_ - lo[0]) * scale[0]), _lookup(table, 1, (a - lo[1]) * scale[1]),
                        _lookup(table, 2, (b - lo[2]) * scale[2]), out, i, vmax)


# rgb_to_lab / lab_to_rgb serve statistics on subsampled frames: serial, since waking a second thread
# costs more than their work; the whole-frame path is remap_lab, parallel.
def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3) uint8 or uint16 sRGB -> (..., 3) float32 Lab (L in 0..100)."""
    flat = np.ascontiguousarray(rgb.numpy()).reshape(-1, 3)
    out = np.empty(flat.shape, np.float32)
    _rgb_to_lab(flat, linear_table(flat.dtype), out)
    return torch.from_numpy(out.reshape(rgb.shape))


def lab_to_rgb(lab: torch.Tensor, dtype: type = np.uint8) -> torch.Tensor:
    """(..., 3) Lab -> (..., 3) sRGB of ``dtype`` (uint8 or uint16; out-of-gamut colours clipped)."""
    flat = np.ascontiguousarray(lab.numpy(), np.float32).reshape(-1, 3)
    out = np.empty(flat.shape, dtype)
    _lab_to_rgb(flat, out, int(np.iinfo(dtype).max))
    return torch.from_numpy(out.reshape(lab.shape))


def lab_grid(cells: int) -> np.ndarray:
    """(3, cells + 1) float32: the Lab values where ``remap_lab``'s tables are sampled."""
    return np.stack([np.linspace(lo, hi, cells + 1, dtype=np.float32) for lo, hi in LAB_RANGE])


def remap_lab(rgb: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 or uint16 sRGB through per-channel Lab tables ``(3, cells + 1)`` on ``lab_grid(cells)``:
    each channel's value is looked up (linear interpolation, clamped to the grid) and the result
    converted back to sRGB of the same depth, gamut-clipped."""
    flat = np.ascontiguousarray(rgb).reshape(-1, 3)
    out = np.empty_like(flat)
    cells = table.shape[1] - 1
    scale = (cells / (LAB_RANGE[:, 1] - LAB_RANGE[:, 0])).astype(np.float32)
    _remap(flat, linear_table(flat.dtype), np.ascontiguousarray(table, np.float32), LAB_RANGE[:, 0].copy(), scale,
           out, int(np.iinfo(flat.dtype).max))
    return out.reshape(rgb.shape)
