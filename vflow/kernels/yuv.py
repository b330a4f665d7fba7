"""Exact YUV <-> RGB for planar YUV at any chroma subsampling, with chroma siting and rounding to nearest.

swscale (FFmpeg's converter, PyAV's default) truncates where it should round (every pass darkened the
picture by about a level), upsamples chroma nearest-neighbour and places chroma at the centre whatever the
stream says. These kernels compute in float32 from the matrix's own coefficients:

- chroma is interpolated bilinearly at its sited position on the way to RGB, and filtered at that same
  position on the way back ([1, 2, 1] / 4 across a co-sited sample, [1, 1] / 2 between two);
- ``sx``, ``sy`` are the subsampling shifts (4:2:0 = 1, 1; 4:2:2 = 1, 0; 4:1:1 = 2, 0; 4:4:4 = 0, 0);
- ``cosited_x``/``cosited_y`` say that a chroma sample sits on the first luma sample of its group (H.264's
  and MPEG-2's "left" siting horizontally; "top-left" vertically) rather than between them.

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
               cosited_x: bool, cosited_y: bool, kr: float, kb: float, yoff: float, yscale: float,
               coff: float, cscale: float, vmax: int) -> None:
    """Planes ``y`` (H, W) and ``u``, ``v`` (subsampled) into ``out`` (H, W, 3) RGB with values 0..vmax."""
    h, w = y.shape
    ch, cw = u.shape
    kg = 1.0 - kr - kb
    s = np.float32(vmax)
    rv = np.float32(2.0 * (1.0 - kr) * cscale * vmax)
    bu = np.float32(2.0 * (1.0 - kb) * cscale * vmax)
    gu = np.float32(2.0 * (1.0 - kb) * kb / kg * cscale * vmax)
    gv = np.float32(2.0 * (1.0 - kr) * kr / kg * cscale * vmax)
    ys = np.float32(yscale * vmax)
    yo = np.float32(yoff)
    co = np.float32(coff)
    xs0, xs1, wxs = _grid(w, sx, cosited_x, cw)
    ys0, ys1, wys = _grid(h, sy, cosited_y, ch)
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


@nb.njit(nogil=True, cache=True, inline="always")
def _pick(k: int, i0: int, i1: int, i2: int, w0: float, w1: float, w2: float) -> tuple[int, float]:
    if k == 0:
        return i0, w0
    if k == 1:
        return i1, w1
    return i2, w2


@serialised
@nb.njit(nogil=True, cache=True, parallel=True, fastmath=False)
def rgb_to_yuv(rgb: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray, sx: int, sy: int,
               cosited_x: bool, cosited_y: bool, kr: float, kb: float, vin: int, yoff: float, yscale: float,
               coff: float, cscale: float, ymax: int) -> None:
    """(H, W, 3) RGB with values 0..vin into planes ``y``, ``u``, ``v`` (code values 0..ymax, rounded)."""
    h, w = y.shape
    ch, cw = u.shape
    kg = 1.0 - kr - kb
    inv = 1.0 / vin
    for row in nb.prange(h):
        for col in range(w):
            r = rgb[row, col, 0] * inv
            g = rgb[row, col, 1] * inv
            b = rgb[row, col, 2] * inv
            luma = kr * r + kg * g + kb * b
            y[row, col] = min(max(int(np.floor(luma / yscale + yoff + 0.5)), 0), ymax)
    for crow in nb.prange(ch):
        r0, r1, r2, a0, a1, a2 = _taps(crow, sy, cosited_y, h)
        for ccol in range(cw):
            c0, c1, c2, b0, b1, b2 = _taps(ccol, sx, cosited_x, w)
            cb = 0.0
            cr = 0.0
            for k in range(3):
                rr, wr = _pick(k, r0, r1, r2, a0, a1, a2)
                if wr == 0.0:
                    continue
                for m in range(3):
                    cc, wc = _pick(m, c0, c1, c2, b0, b1, b2)
                    if wc == 0.0:
                        continue
                    r = rgb[int(rr), int(cc), 0] * inv
                    g = rgb[int(rr), int(cc), 1] * inv
                    b = rgb[int(rr), int(cc), 2] * inv
                    luma = kr * r + kg * g + kb * b
                    wgt = wr * wc
                    cb += wgt * (b - luma) / (2.0 * (1.0 - kb))
                    cr += wgt * (r - luma) / (2.0 * (1.0 - kr))
            u[crow, ccol] = min(max(int(np.floor(cb / cscale + coff + 0.5)), 0), ymax)
            v[crow, ccol] = min(max(int(np.floor(cr / cscale + coff + 0.5)), 0), ymax)
