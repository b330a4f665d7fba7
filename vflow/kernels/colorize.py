"""Reference-based colorization of black-and-white frames (Welsh et al. 2002), stable over time.

Each pixel is described, as in Welsh et al., by its lightness and the standard deviation of
lightness in its 5x5 neighbourhood. Instead of matching pixels against a few hundred random swatches
(Welsh's distance weighs the two features 0.5/0.5), :class:`ChromaTable` bins *every* reference pixel
by these two features and keeps the mean Lab chroma (a, b) of each bin (the conditional mean, which
minimises the expected chroma error); an empty bin takes the chroma of the nearest filled bin under
Welsh's weighted distance. A pixel is then one bilinear table look-up.

Chroma is low-frequency, so it is computed on an *analysis grid*: the frame block-averaged by an
integer factor to about :data:`ANALYSIS_ROWS` rows (the reference to about the same number of
pixels), which also makes the 5x5 neighbourhood cover the same part of the picture whatever the
resolution. The chroma is box-smoothed there, then upsampled bilinearly and combined with every
full-resolution pixel's own lightness.

Welsh's luminance remapping (matching the reference's lightness mean and spread to the target's)
is applied the other way round: the table stays in the reference's units and each frame's
lightness is mapped into them with its shot's mean and spread, followed by a moving average that
restarts at every scene cut, so the mapping does not pump.

Lightness is the CIE L* of each pixel's BT.601 luma taken as a grey level, for the frame and the
reference alike, so greyscale-as-RGB and slightly tinted prints give the same result. The output
keeps that lightness (up to gamut clipping) and takes the transferred chroma.

:class:`Colorizer` streams frames: the chroma of a pixel whose neighbourhood did not change since the
previous frame (after removing the global brightness change of film flicker) mostly carries over
from the previous frame (``chroma = w * previous + (1 - w) * look-up``, ``w`` up to ``temporal``),
so colours are propagated within a shot, not re-guessed; moving pixels take the new look-up.
Frames are ``(N, H, W, 3)`` uint8 or uint16 RGB, C-contiguous. Only the two full-frame kernels (:func:`analyse`,
:func:`render`) run in parallel: the analysis grid is small at any frame size, and waking a second
thread for it costs more than its work, the more so on a loaded machine.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch

from . import serialised
from ..pipeline.frames import BT601
from .frames import SceneKernel, fixed_weights
from .lab import lab_to_rgb_into, lightness, rgb_to_lab, srgb_to_linear

ANALYSIS_ROWS = 180           # chroma is computed on a grid of about this many rows
L_BINS, S_BINS = 64, 32       # table size: lightness bins over 0..100, texture bins over sqrt(local std)
RADIUS = 2                    # 5x5 neighbourhood for the local std (Welsh et al.), on the analysis grid
SMOOTH = 2                    # radius of the box blur of the looked-up chroma, on the analysis grid
W_L, W_S = 0.5, 0.5           # feature weights of lightness and local std (Welsh et al.)


# CIE L* of a grey level, indexed by 16 x BT.601 luma of 8-bit frames (0..4080, see :func:`_luma16`), or by
# the luma of 16-bit ones / 16 (0..4096): 1/16 of an 8-bit level either way, in a table that stays in cache
LIGHTNESS = lightness(srgb_to_linear(np.arange(4081) / (16.0 * 255.0))).astype(np.float32)
LIGHTNESS_DEEP = lightness(srgb_to_linear(np.minimum(np.arange(4097) * 16 / 65535.0, 1.0))).astype(np.float32)


# the frames to colour are black and white (R = G = B), where the weights do not matter; the reference photo's
# lightness takes BT.601's, as its JPEG does
_KW16 = fixed_weights(BT601, 1 << 14)


@nb.njit(nogil=True, cache=True, inline="always")
def _luma16(px: np.ndarray, shift: int) -> int:
    """BT.601 luma of an RGB pixel in fixed point (weights sum to 2^14), shifted down by ``shift``: 10 gives
    16 x the luma of an 8-bit pixel (0..4080), 18 the luma of a 16-bit one / 16 (0..4096)."""
    return (_KW16[0] * px[0] + _KW16[1] * px[1] + _KW16[2] * px[2] + (1 << (shift - 1))) >> shift


def lightness_of(frame: np.ndarray) -> tuple[np.ndarray, int]:
    """The lightness table and luma shift for frames of ``frame``'s depth (see :func:`_luma16`)."""
    return (LIGHTNESS, 10) if frame.dtype == np.uint8 else (LIGHTNESS_DEEP, 18)


@serialised
@nb.njit(nogil=True, cache=True, parallel=True)
def analyse(frame: np.ndarray, f: int, lut: np.ndarray, shift: int, planes: np.ndarray) -> None:
    """Block means of lightness over ``f x f`` blocks into ``planes[0]`` (``(2, ceil(H/f), ceil(W/f))``
    float32; blocks at the right and bottom edges may be partial) and ``(mean - 50)^2`` into
    ``planes[1]`` (centred: smaller squares, less cancellation in a variance)."""
    h, w, _ = frame.shape
    _, hs, ws = planes.shape
    for i in nb.prange(hs):
        y0, y1 = i * f, min((i + 1) * f, h)
        for j in range(ws):
            x0, x1 = j * f, min((j + 1) * f, w)
            acc = np.float32(0.0)
            for y in range(y0, y1):
                r = frame[y]
                for x in range(x0, x1):
                    acc += lut[_luma16(r[x], shift)]
            m = acc / ((y1 - y0) * (x1 - x0))
            planes[0, i, j] = m
            planes[1, i, j] = (m - np.float32(50.0)) ** 2


@nb.njit(nogil=True, cache=True)
def box_mean(src: np.ndarray, r: int, dst: np.ndarray, tmp: np.ndarray) -> None:
    """Mean of each ``(C, H, W)`` float32 plane over the ``(2r+1)^2`` window, clipped at the borders.

    Separable running sums in float64 (the mean of squares stays exact enough for a variance);
    ``tmp`` is ``(C, H, W)`` float32 scratch.
    """
    nc, h, w = src.shape
    acc = np.empty(w, np.float64)
    for c in range(nc):
        for y in range(h):
            s, t = src[c, y], tmp[c, y]
            a = 0.0
            for x in range(min(r, w)):
                a += s[x]
            for x in range(w):
                if x + r < w:
                    a += s[x + r]
                if x > r:
                    a -= s[x - r - 1]
                t[x] = a / (min(x + r, w - 1) - max(x - r, 0) + 1)
        t = tmp[c]
        acc[:] = 0.0
        for y in range(min(r, h)):
            acc += t[y]
        for y in range(h):
            if y + r < h:
                acc += t[y + r]
            if y > r:
                acc -= t[y - r - 1]
            d = dst[c, y]
            inv = 1.0 / (min(y + r, h - 1) - max(y - r, 0) + 1)
            for x in range(w):
                d[x] = acc[x] * inv


@nb.njit(nogil=True, cache=True, fastmath=True)
def lookup(lum: np.ndarray, stats: np.ndarray, table: np.ndarray, ku: float, cu: float, kv: float,
           out: np.ndarray) -> None:
    """Chroma ``out`` ``(2, H, W)`` of each pixel: bilinear look-up of ``table`` ``(2, nl, ns)`` at the
    pixel's lightness (row ``L * ku + cu``) and 5x5 std (column ``sqrt(std) * kv``); ``stats`` holds
    the 5x5 means of L and of the centred ``(L - 50)^2``."""
    h, w = lum.shape
    _, nl, ns = table.shape
    ta, tb = table[0], table[1]
    for y in range(h):
        for x in range(w):
            m = stats[0, y, x] - 50.0
            var = max(stats[1, y, x] - m * m, 0.0)
            u = min(max(lum[y, x] * ku + cu, 0.0), nl - 1.0)
            v = min(math.sqrt(math.sqrt(var)) * kv, ns - 1.0)
            i0, j0 = min(int(u), nl - 2), min(int(v), ns - 2)
            fu, fv = u - i0, v - j0
            w00, w01 = (1 - fu) * (1 - fv), (1 - fu) * fv
            w10, w11 = fu * (1 - fv), fu * fv
            out[0, y, x] = (w00 * ta[i0, j0] + w01 * ta[i0, j0 + 1] + w10 * ta[i0 + 1, j0]
                            + w11 * ta[i0 + 1, j0 + 1])
            out[1, y, x] = (w00 * tb[i0, j0] + w01 * tb[i0, j0 + 1] + w10 * tb[i0 + 1, j0]
                            + w11 * tb[i0 + 1, j0 + 1])


@nb.njit(nogil=True, cache=True, fastmath=True)
def propagate(new: np.ndarray, state: np.ndarray, mean: np.ndarray, prev_mean: np.ndarray, shift: float,
              w_max: float, lo: float, hi: float) -> None:
    """``state = w * state + (1 - w) * new`` per pixel of ``(2, H, W)`` chroma planes: ``w = w_max`` where
    the 5x5 mean lightness moved less than ``lo`` since the previous frame (after removing the global
    ``shift``), falling to 0 at ``hi``."""
    _, h, w = new.shape
    inv = 1.0 / (hi - lo)
    for y in range(h):
        for x in range(w):
            d = abs(mean[y, x] - prev_mean[y, x] - shift)
            k = w_max * min(max((hi - d) * inv, 0.0), 1.0)
            state[0, y, x] = k * state[0, y, x] + (1 - k) * new[0, y, x]
            state[1, y, x] = k * state[1, y, x] + (1 - k) * new[1, y, x]


def taps(n: int, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear upsampling by ``f`` from ``ceil(n / f)`` block centres to ``n`` pixels: the lower
    source index (int32) and the weight of the next one (float32), per output pixel."""
    ns = -(-n // f)
    pos = np.clip((np.arange(n) + 0.5) / f - 0.5, 0, ns - 1)
    i0 = np.minimum(pos.astype(np.int32), max(ns - 2, 0))
    return i0, (pos - i0).astype(np.float32)


@serialised
@nb.njit(nogil=True, cache=True, parallel=True, fastmath=True)
def render(frame: np.ndarray, chroma: np.ndarray, gain: float, ty: np.ndarray, fy: np.ndarray, tx: np.ndarray,
           fx: np.ndarray, lut: np.ndarray, shift: int, out: np.ndarray) -> None:
    """sRGB ``out`` (of ``frame``'s depth) of Lab ``(L, gain * chroma)``: ``L`` is each pixel's own lightness
    (``lut`` and ``shift`` from :func:`lightness_of`), chroma is upsampled bilinearly from the analysis grid
    (``ty, fy, tx, fx`` from :func:`taps`); out-of-gamut colours are clipped."""
    h, w, _ = frame.shape
    _, hs, ws = chroma.shape
    g = np.float32(gain)
    vmax = 255 if shift == 10 else 65535
    for y in nb.prange(h):
        i0 = ty[y]
        i1 = min(i0 + 1, hs - 1)
        wy = fy[y]
        ra = (1 - wy) * chroma[0, i0] + wy * chroma[0, i1]  # the row's chroma, still at grid columns
        rb = (1 - wy) * chroma[1, i0] + wy * chroma[1, i1]
        r, o = frame[y], out[y]
        for x in range(w):
            j0 = tx[x]
            j1 = min(j0 + 1, ws - 1)
            wx = fx[x]
            a = g * ((1 - wx) * ra[j0] + wx * ra[j1])
            b = g * ((1 - wx) * rb[j0] + wx * rb[j1])
            lab_to_rgb_into(lut[_luma16(r[x], shift)], a, b, o, x, vmax)


@nb.njit(nogil=True, cache=True)
def _fill_table(sums: np.ndarray, counts: np.ndarray, l_step: float, s_of_bin: np.ndarray) -> np.ndarray:
    """Mean chroma per bin; an empty bin takes the nearest filled bin's (distance in weighted features)."""
    nl, ns = counts.shape
    table = np.zeros((2, nl, ns), np.float32)
    for i in range(nl):
        for j in range(ns):
            best, bi, bj = np.inf, -1, -1
            for ii in range(nl):
                for jj in range(ns):
                    if counts[ii, jj] == 0:
                        continue
                    dl, ds = (ii - i) * l_step, s_of_bin[jj] - s_of_bin[j]
                    dist = W_L * dl * dl + W_S * ds * ds
                    if dist < best:
                        best, bi, bj = dist, ii, jj
            if bi >= 0:
                table[0, i, j] = sums[0, bi, bj] / counts[bi, bj]
                table[1, i, j] = sums[1, bi, bj] / counts[bi, bj]
    return table


def grid_factor(h: int) -> int:
    """Block size of the analysis grid for frames ``h`` rows high."""
    return max(1, round(h / ANALYSIS_ROWS))


def features(frame: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Analysis-grid lightness ``(H', W')`` and ``(2, H', W')`` 5x5 means of L and of ``(L - 50)^2``."""
    h, w, _ = frame.shape
    planes = np.empty((2, -(-h // f), -(-w // f)), np.float32)
    analyse(frame, f, *lightness_of(frame), planes)
    stats = np.empty_like(planes)
    box_mean(planes, RADIUS, stats, np.empty_like(planes))
    return planes[0], stats


def _check_reference(reference: np.ndarray) -> None:
    if reference.ndim != 3 or reference.shape[2] != 3 or reference.dtype != np.uint8 or reference.size == 0:
        raise ValueError(f"reference must be (H, W, 3) uint8 RGB, got {reference.shape} {reference.dtype}")


class ChromaTable:
    """Mean Lab chroma of a reference image's pixels by (lightness, 5x5 std) bin, and its lightness
    mean and spread (for the luminance remapping), on an analysis grid of about ``pixels`` pixels.

    ``table`` is ``(2, nl, ns)`` float32: bin ``(i, j)`` is centred on lightness ``i * 100 / (nl - 1)``
    and std ``(j / kv)^2`` (square-root spacing: most pixels are smooth, edges spread thin).
    """

    def __init__(self, reference: np.ndarray, pixels: int) -> None:
        _check_reference(reference)
        nl, ns = L_BINS, S_BINS
        h, w, _ = reference.shape
        f = min(max(1, round(math.sqrt(h * w / pixels))), h, w)
        h, w = h // f * f, w // f * f
        reference = np.ascontiguousarray(reference[:h, :w])
        lum, stats = features(reference, f)
        std = np.sqrt(np.maximum(stats[1] - (stats[0] - 50) ** 2, 0))
        small = reference.reshape(h // f, f, w // f, f, 3).mean(axis=(1, 3))
        ab = rgb_to_lab(torch.from_numpy(np.rint(small).astype(np.uint8)))[..., 1:].numpy()
        self.mean, self.spread = float(lum.mean()), max(float(lum.std()), 1.0)
        self.kv = (ns - 1) / math.sqrt(max(float(np.percentile(std, 99.5)), 1.0))
        u = np.rint(lum * ((nl - 1) / 100.0)).astype(np.int64).clip(0, nl - 1)
        v = np.rint(np.sqrt(std) * self.kv).astype(np.int64).clip(0, ns - 1)
        idx = (u * ns + v).ravel()
        counts = np.bincount(idx, minlength=nl * ns).reshape(nl, ns)
        sums = np.stack([np.bincount(idx, ab[..., c].ravel(), nl * ns).reshape(nl, ns) for c in range(2)])
        self.table = _fill_table(sums, counts, 100.0 / (nl - 1), (np.arange(ns) / self.kv) ** 2)


class Colorizer(SceneKernel):
    """Colour black-and-white frames from a reference colour image, shot by shot.

    ``strength`` scales the transferred chroma; ``temporal`` is the largest share of a static pixel's
    chroma carried over from the previous frame (0: every frame is looked up afresh); ``window`` the
    span, in frames, of the moving average of each shot's lightness mean and spread; ``lo``/``hi``
    the change of a pixel's 5x5 mean lightness (L* units) over which it goes from static to moving.
    """

    def __init__(self, reference: np.ndarray, strength: float = 1.0, temporal: float = 0.9, window: int = 24,
                 lo: float = 2.0, hi: float = 8.0) -> None:
        _check_reference(reference)
        self.reference = reference  # the table is built for the first frame size (its analysis grid)
        self.strength, self.temporal = strength, temporal
        self.beta, self.lo, self.hi = 2.0 / (window + 1.0), lo, hi
        self._shape: tuple[int, int] | None = None
        self.reset()

    def reset(self) -> None:
        """Drop the shot's state; the next frame starts afresh."""
        self._scene: int | None = None
        self._mu = self._sd = self._last_mu = 0.0  # the shot's smoothed lightness mean and spread, last mean

    def _buffers(self, h: int, w: int) -> None:
        if self._shape == (h, w):
            return
        self._shape, self._scene = (h, w), None
        self._f = f = grid_factor(h)
        hs, ws = -(-h // f), -(-w // f)
        self.table = ChromaTable(self.reference, hs * ws)
        self._ty, self._fy = taps(h, f)
        self._tx, self._fx = taps(w, f)
        self._planes, self._stats, self._prev, self._tmp, self._new, self._blur, self._state = (
            np.empty((2, hs, ws), np.float32) for _ in range(7))

    def _step(self, frame: np.ndarray, scene: int, out: np.ndarray) -> None:
        t, lum = self.table, self._planes[0]
        analyse(frame, self._f, *lightness_of(frame), self._planes)
        box_mean(self._planes, RADIUS, self._stats, self._tmp)
        mu, sd = float(lum.mean()), float(lum.std())
        new_shot = scene != self._scene
        if new_shot:
            self._scene, self._mu, self._sd = scene, mu, sd
        else:
            self._mu += self.beta * (mu - self._mu)
            self._sd += self.beta * (sd - self._sd)
        # the frame's lightness in the reference's units: Welsh's remapping, inverted
        ratio = min(max(t.spread / max(self._sd, 1.0), 0.25), 4.0)
        nl = t.table.shape[1]
        ku, cu = ratio * (nl - 1) / 100.0, (t.mean - self._mu * ratio) * (nl - 1) / 100.0
        lookup(lum, self._stats, t.table, ku, cu, t.kv * math.sqrt(ratio), self._new)
        box_mean(self._new, SMOOTH, self._blur, self._tmp)
        if new_shot:
            self._state[:] = self._blur
        else:
            propagate(self._blur, self._state, self._stats[0], self._prev[0], mu - self._last_mu,
                      self.temporal, self.lo, self.hi)
        self._last_mu = mu
        self._stats, self._prev = self._prev, self._stats
        render(frame, self._state, self.strength, self._ty, self._fy, self._tx, self._fx, *lightness_of(frame), out)
