"""Exact YUV <-> RGB for planar YUV at any chroma subsampling, with chroma siting and rounding to nearest.

swscale (FFmpeg's converter, PyAV's default) truncates where it should round (every pass darkened the
picture by about a level), upsamples chroma nearest-neighbour and places chroma at the centre whatever the
stream says. These kernels compute in float32 from the matrix's own coefficients:

- chroma is interpolated bilinearly at its sited position on the way to RGB, and filtered at that same
  position on the way back ([1, 2, 1] / 4 across a co-sited sample, [1, 1] / 2 between two);
- ``sx``, ``sy`` are the subsampling shifts (4:2:0 = 1, 1; 4:2:2 = 1, 0; 4:1:1 = 2, 0; 4:4:4 = 0, 0);
- ``cosited_x`` says that a chroma sample sits on the first luma column of its group (H.264's, MPEG-2's and
  DV's "left" siting) rather than between them (JPEG). Vertically chroma sits between its rows: the
  "top-left" siting of some BT.2020 streams is not told apart (PyAV does not give a frame's siting).

Levels: luma = (code - ``yoff``) * ``yscale`` in [0, 1] and chroma = (code - ``coff``) * ``cscale`` in
[-0.5, 0.5], so one kernel serves every range and bit depth; ``vmax`` is the largest RGB code value.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from . import serialised


@nb.njit(nogil=True, cache=True, inline="always")
def _pos(i: int, shift: int, cosited: bool) -> float:
    """Where output sample ``i`` falls on the chroma grid."""
    if shift == 0:
        return float(i)
    n = 1 << shift
    return i / n if cosited else (i + 0.5) / n - 0.5


@nb.njit(nogil=True, cache=True)
def _grid(n: int, shift: int, cosited: bool, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``n`` output samples: the two chroma samples (of ``m``) around it and the weight of the second."""
    i0 = np.empty(n, np.int64)
    i1 = np.empty(n, np.int64)
    wt = np.empty(n, np.float32)
    for i in range(n):
        f = min(max(_pos(i, shift, cosited), 0.0), m - 1.0)
        i0[i] = int(f)
        i1[i] = min(i0[i] + 1, m - 1)
        wt[i] = f - i0[i]
    return i0, i1, wt


@nb.njit(nogil=True, cache=True, inline="always")
def _code(x: float, vmax: int) -> int:
    """Round a value in code units to the nearest code, clamped to 0..vmax."""
    x += 0.5
    return 0 if x < 0.0 else min(int(x), vmax)


@serialised
@nb.njit(nogil=True, cache=True, parallel=True)
def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, out: np.ndarray, sx: int, sy: int,
               cosited_x: bool, kr: float, kb: float, yoff: float, yscale: float,
               coff: float, cscale: float, vmax: int) -> None:
    """Planes ``y`` (H, W) and ``u``, ``v`` (subsampled) into ``out`` (H, W, 3) RGB with values 0..vmax."""
    h, w = y.shape
    ch, cw = u.shape
    kg = 1.0 - kr - kb
    rv = np.float32(2.0 * (1.0 - kr) * cscale * vmax)
    bu = np.float32(2.0 * (1.0 - kb) * cscale * vmax)
    gu = np.float32(2.0 * (1.0 - kb) * kb / kg * cscale * vmax)
    gv = np.float32(2.0 * (1.0 - kr) * kr / kg * cscale * vmax)
    ys = np.float32(yscale * vmax)
    yo = np.float32(yoff)
    co = np.float32(coff)
    xs0, xs1, wxs = _grid(w, sx, cosited_x, cw)
    ys0, ys1, wys = _grid(h, sy, False, ch)
    for row in nb.prange(h):
        a, b, wy = ys0[row], ys1[row], wys[row]
        cu = np.empty(cw, np.float32)
        cv = np.empty(cw, np.float32)
        for c in range(cw):  # the chroma row at this luma row, centred on zero
            cu[c] = u[a, c] + (np.float32(u[b, c]) - u[a, c]) * wy - co
            cv[c] = v[a, c] + (np.float32(v[b, c]) - v[a, c]) * wy - co
        for col in range(w):
            x0, x1, wx = xs0[col], xs1[col], wxs[col]
            cb = cu[x0] + (cu[x1] - cu[x0]) * wx
            cr = cv[x0] + (cv[x1] - cv[x0]) * wx
            luma = (y[row, col] - yo) * ys
            out[row, col, 0] = _code(luma + rv * cr, vmax)
            out[row, col, 1] = _code(luma - gu * cb - gv * cr, vmax)
            out[row, col, 2] = _code(luma + bu * cb, vmax)


@nb.njit(nogil=True, cache=True, inline="always")
def _taps(i: int, shift: int, cosited: bool, n: int) -> tuple[int, int, int, float, float, float]:
    """Source indices and weights of chroma sample ``i`` over ``n`` full-resolution samples."""
    if shift == 0:
        return i, i, i, 1.0, 0.0, 0.0
    step = 1 << shift
    if cosited:  # a triangle centred on the first sample of the group, as wide as the group on each side
        if step == 2:
            c = 2 * i
            return max(c - 1, 0), c, min(c + 1, n - 1), 0.25, 0.5, 0.25
        c = step * i  # 4:1:1: the same triangle, sampled every other column
        return max(c - 2, 0), min(c, n - 1), min(c + 2, n - 1), 0.25, 0.5, 0.25
    a = min(step * i + step // 2 - 1, n - 1)
    return a, min(a + 1, n - 1), a, 0.5, 0.5, 0.0


@serialised
@nb.njit(nogil=True, cache=True, parallel=True)
def rgb_to_yuv(rgb: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray, sx: int, sy: int,
               cosited_x: bool, kr: float, kb: float, vin: int, yoff: float, yscale: float,
               coff: float, cscale: float, ymax: int) -> None:
    """(H, W, 3) RGB with values 0..vin into planes ``y``, ``u``, ``v`` (code values 0..ymax, rounded).

    One pass per chroma row: the luma rows of its group are converted once (luma written, chroma averaged
    over the group's rows, so it sits between them), then filtered along the row at the chroma siting."""
    h, w = y.shape
    ch, cw = u.shape
    kg = 1.0 - kr - kb
    inv = 1.0 / vin
    ub = 1.0 / (2.0 * (1.0 - kb))
    vr = 1.0 / (2.0 * (1.0 - kr))
    group = 1 << sy
    for crow in nb.prange(ch):
        first = crow * group
        rows = min(group, h - first)  # the last group of an odd height has one row
        ku, kv = ub / rows, vr / rows
        cb = np.zeros(w)
        cr = np.zeros(w)
        for row in range(first, first + rows):
            for col in range(w):
                r = rgb[row, col, 0] * inv
                g = rgb[row, col, 1] * inv
                b = rgb[row, col, 2] * inv
                luma = kr * r + kg * g + kb * b
                y[row, col] = _code(luma / yscale + yoff, ymax)
                cb[col] += (b - luma) * ku
                cr[col] += (r - luma) * kv
        for ccol in range(cw):
            c0, c1, c2, w0, w1, w2 = _taps(ccol, sx, cosited_x, w)
            u[crow, ccol] = _code((w0 * cb[c0] + w1 * cb[c1] + w2 * cb[c2]) / cscale + coff, ymax)
            v[crow, ccol] = _code((w0 * cr[c0] + w1 * cr[c1] + w2 * cr[c2]) / cscale + coff, ymax)
