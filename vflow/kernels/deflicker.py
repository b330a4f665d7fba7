"""Deflicker that leaves real light alone: flicker is a brief gain common to the whole frame; a fade, a
light switched on or a bright object coming in are not.

Each frame is summarised by the log mean of each channel over a grid of blocks; the frame's change of level
from the last frame of its shot is the median over the blocks of their change (an object that moves changes
a few blocks, not the median), and summing them gives the shot's common log level per channel. The true
level is taken to be piecewise linear in time (a steady scene, a fade), which L1 trend filtering finds
(Kim et al. 2009: least squares plus ``strength`` times the noise level times the L1 norm of the second
differences, solved by iteratively reweighted least squares) over a window of ``2 * radius + 1`` frames
around each frame, within its shot and within the part of it between sudden lasting jumps of the level
(a light switched on or off: the trend filter alone would turn the step into a ramp). The frame is
scaled by the gap between the trend and its level.

The frame waits for ``radius`` successors of its shot (or the end of the shot), so the kernel holds at most
``radius`` frames: memory is bounded by the window, not by the video.
"""

from __future__ import annotations

import math
from collections import deque

import numba as nb
import numpy as np

from . import serialised
from .frames import ShotWindow
from .gains import map_channels

GRID = (6, 8)          # block rows, columns
DARK = 8.0             # blocks darker than this (levels) tell nothing about a gain
BREAK, MIN_BREAK = 6.0, 0.15  # a jump of the common log level this many noise levels (and at least this) from
                              # one frame to the next is a light switched on or off: the trend restarts there
MAX_STEP = 0.35        # and so is any jump this large (+42 %), whatever the noise: flicker is a few per cent,
                       # a strobe or lightning alternating every few frames would raise the noise level itself
MIN_PLANE = 12         # blocks a plane is fitted to, at least; fewer give the level alone
PLANE_GAIN = 0.7       # and the plane must leave the blocks' spread below this share of the level's
SAME = (0.5, 0.9)      # correlation of two frames' block pattern under which a change is content / over
                       # which it may all be a gain
FLAT = 0.05            # log-level spread of the blocks under which a frame has no pattern to compare
MIN_SHOT = 5           # shorter shots are left alone: too few frames to tell flicker from content


@serialised
@nb.njit(nogil=True, cache=True, parallel=True)
def block_means(frame: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``(rows, cols, 3)`` mean of each channel over a grid of blocks of an ``(H, W, 3)`` frame."""
    h, w, _ = frame.shape
    out = np.zeros((rows, cols, 3), np.float64)
    for r in nb.prange(rows):
        y0, y1 = r * h // rows, (r + 1) * h // rows
        for c in range(cols):
            x0, x1 = c * w // cols, (c + 1) * w // cols
            for y in range(y0, y1):
                for x in range(x0, x1):
                    for k in range(3):
                        out[r, c, k] += frame[y, x, k]
            out[r, c] /= max(1, (y1 - y0) * (x1 - x0))
    return out


@serialised
@nb.njit(nogil=True, cache=True, parallel=True, fastmath=True)
def apply_field(frame: np.ndarray, coef: np.ndarray, max_gain: float, vmax: int, out: np.ndarray) -> None:
    """``out = clip(round(frame * g), 0, vmax)``, per channel ``c`` the gain ``g = exp(a + gx x + gy y)`` with
    ``(a, gx, gy) = coef[c]`` and ``x``, ``y`` from -1 to 1 across the frame (block centres' scale), held
    within ``1 / max_gain .. max_gain``."""
    h, w, _ = frame.shape
    cols = np.empty((3, w), np.float32)
    rows = np.empty((3, h), np.float32)
    for c in range(3):
        for x in range(w):
            cols[c, x] = math.exp(coef[c, 0] + coef[c, 1] * _axis(x, w))
        for y in range(h):
            rows[c, y] = math.exp(coef[c, 2] * _axis(y, h))
    lo, hi = np.float32(1.0 / max_gain), np.float32(max_gain)
    for y in nb.prange(h):
        for x in range(w):
            for c in range(3):
                g = min(max(cols[c, x] * rows[c, y], lo), hi)
                out[y, x, c] = min(max(np.float32(frame[y, x, c]) * g + np.float32(0.5), np.float32(0.0)),
                                   np.float32(vmax))


@nb.njit(nogil=True, cache=True, inline="always")
def _axis(i: int, n: int) -> float:
    """Pixel ``i`` of ``n`` on the -1 .. 1 axis of :func:`common_change`'s planes."""
    return (2.0 * i + 1.0) / n - 1.0 if n > 1 else 0.0


@nb.njit(nogil=True, cache=True)
def trend(y: np.ndarray, lam: float, iters: int = 30) -> np.ndarray:
    """L1 trend filtering of ``y`` (n,): argmin ||y - z||^2 / 2 + lam * ||D2 z||_1, by IRLS.

    Each step solves (I + lam D2' W D2) z = y, a symmetric pentadiagonal system, by its banded LDL'
    factorisation: O(n) a step where a dense solve is O(n^3) (9 series a frame, 30 steps each)."""
    n = len(y)
    z = y.astype(np.float64)
    if n < 4 or lam <= 0:
        return z
    a0, a1, a2 = np.empty(n), np.empty(n), np.empty(n)     # the diagonal and the two below it
    d, l1, l2, v = np.empty(n), np.zeros(n), np.zeros(n), np.empty(n)
    for _ in range(iters):
        a0[:] = 1.0
        a1[:] = 0.0
        a2[:] = 0.0
        for i in range(n - 2):   # row i of D2 is 1, -2, 1 at columns i, i + 1, i + 2
            w = lam / max(abs(z[i] - 2.0 * z[i + 1] + z[i + 2]), 1e-4)
            a0[i] += w
            a0[i + 1] += 4.0 * w
            a0[i + 2] += w
            a1[i] -= 2.0 * w
            a1[i + 1] -= 2.0 * w
            a2[i] += w
        for j in range(n):   # factorise and solve L v = y in one pass
            dj, vj = a0[j], y[j]
            if j >= 1:
                dj -= l1[j - 1] * l1[j - 1] * d[j - 1]
                vj -= l1[j - 1] * v[j - 1]
            if j >= 2:
                dj -= l2[j - 2] * l2[j - 2] * d[j - 2]
                vj -= l2[j - 2] * v[j - 2]
            d[j], v[j] = dj, vj
            if j + 1 < n:
                l1[j] = (a1[j] - (l2[j - 1] * l1[j - 1] * d[j - 1] if j >= 1 else 0.0)) / dj
            if j + 2 < n:
                l2[j] = a2[j] / dj
        for j in range(n - 1, -1, -1):
            zj = v[j] / d[j]
            if j + 1 < n:
                zj -= l1[j] * z[j + 1]
            if j + 2 < n:
                zj -= l2[j] * z[j + 2]
            z[j] = zj
    return z


def noise_level(y: np.ndarray) -> float:
    """The frame-to-frame noise of a level series, robustly: MAD of its second differences / sqrt(6)."""
    d = np.diff(y, 2)
    return float(np.median(np.abs(d - np.median(d))) * 1.4826 / np.sqrt(6)) if len(d) else 0.0


def segment(levels: np.ndarray, t: int) -> tuple[int, int]:
    """The part ``[a, b)`` of a window of common levels (n, 3, 3: each channel's plane) around frame ``t``
    with no sudden lasting jump of the mean level in it (see BREAK): an L1 trend turns a step into a ramp,
    which would smear a light switched on."""
    mean = levels[:, :, 0].mean(1)
    jumps = np.abs(np.diff(mean))
    threshold = min(max(BREAK * noise_level(mean), MIN_BREAK), MAX_STEP)
    cut = np.nonzero(jumps > threshold)[0] + 1   # the first frame after a jump
    a = int(cut[cut <= t].max()) if (cut <= t).any() else 0
    b = int(cut[cut > t].min()) if (cut > t).any() else len(levels)
    return a, b


def _grid_axes() -> tuple[np.ndarray, np.ndarray]:
    """x and y (-1 .. 1) of the block centres of :data:`GRID`, flattened as ``block_means(...).reshape(-1, 3)``."""
    rows, cols = GRID
    y = (2 * np.arange(rows) + 1) / rows - 1
    x = (2 * np.arange(cols) + 1) / cols - 1
    return np.tile(x, rows), np.repeat(y, cols)


_GX, _GY = _grid_axes()


def common_change(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """The change of log level from block means ``prev`` to ``cur`` (blocks, 3) that is common to the frame,
    per channel as a plane over it: ``(3, 3)``, each row ``(a, gx, gy)``, the change ``a + gx x + gy y``
    (flicker is seldom even: a lamp, a shutter or the developer leave it stronger on one side).

    The plane is the least-absolute-deviations fit to the blocks bright enough in both (a moving object
    changes a few blocks, not the fit), scaled by how well they agree with it: in full where they all follow
    it, not at all where their spread about it is as large as the change (a light in the scene, a hologram,
    a moving object are content, not a gain of the whole frame)."""
    out = np.zeros((3, 3))
    for c in range(3):
        ok = (prev[:, c] > DARK) & (cur[:, c] > DARK)
        if not ok.any():
            continue
        lp, lc = np.log(prev[ok, c]), np.log(cur[ok, c])
        d = lc - lp
        basis, coef = np.ones((ok.sum(), 1)), np.array([np.median(d)])
        spread = float(np.median(np.abs(d - coef[0])))
        if ok.sum() >= MIN_PLANE:   # the plane, where it explains the blocks clearly better than the level
            plane = np.stack([np.ones(ok.sum()), _GX[ok], _GY[ok]], 1)
            pcoef = _lad(plane, d)
            pspread = float(np.median(np.abs(d - plane @ pcoef)))
            if pspread < PLANE_GAIN * spread:
                basis, coef, spread = plane, pcoef, pspread
        fit = basis @ coef
        size = float(np.sqrt(np.mean(fit**2)))
        agree = float(np.clip(1 - spread / max(size, 1e-9), 0.0, 1.0))
        out[c, : len(coef)] = coef * agree * same_picture(lp, lc)
    return out


def same_picture(a: np.ndarray, b: np.ndarray) -> float:
    """How surely two frames' log block means ``a``, ``b`` show the same picture (1) and not another (0): a
    gain moves every block alike and keeps their pattern; something filling the lens for a frame (a car
    passing close) does not. Frames too even to have a pattern count as the same."""
    if len(a) < MIN_PLANE or min(a.std(), b.std()) < FLAT:
        return 1.0
    r = float(np.corrcoef(a, b)[0, 1])
    return float(np.clip((r - SAME[0]) / (SAME[1] - SAME[0]), 0.0, 1.0))


def _lad(basis: np.ndarray, d: np.ndarray, iters: int = 10) -> np.ndarray:
    """Least absolute deviations ``argmin |basis @ coef - d|_1`` by IRLS, from the median level."""
    coef = np.zeros(basis.shape[1])
    coef[0] = np.median(d)
    for _ in range(iters):
        w = 1.0 / np.maximum(np.abs(d - basis @ coef), 1e-4)
        coef = np.linalg.solve(basis.T @ (w[:, None] * basis) + 1e-9 * np.eye(basis.shape[1]),
                               basis.T @ (w * d))
    return coef


class Deflicker(ShotWindow):
    """The deflicker over a stream: frames leave ``radius`` frames late, or at the end of their shot."""

    def __init__(self, radius: int = 24, strength: float = 5.0, max_gain: float = 1.5) -> None:
        if radius < 1 or strength < 0 or max_gain < 1:
            raise ValueError("radius must be >= 1, strength >= 0 and max_gain >= 1")
        self.radius, self.strength, self.max_gain = radius, strength, max_gain
        self._reset()

    def _add(self, frame: np.ndarray) -> None:
        blocks = block_means(frame, *GRID).reshape(-1, 3) * (255 / np.iinfo(frame.dtype).max)  # 8-bit levels
        level = self._levels[-1] + common_change(self._blocks, blocks) if self._levels else np.zeros((3, 3))
        self._frames.append(frame)
        self._levels.append(level)
        self._blocks = blocks

    def _reset(self) -> None:
        self._frames: deque[np.ndarray] = deque()   # waiting frames, the last ones of the current shot
        self._levels: list[np.ndarray] = []         # the shot's common log planes (the last 2r+1 kept)
        self._blocks = np.zeros((GRID[0] * GRID[1], 3))
        self._first = 0                             # shot index of _levels[0]
        self._next = 0                              # shot index of _frames[0]
        self._scene: int | None = None

    def _emit(self, final: bool) -> list[np.ndarray]:
        known = self._first + len(self._levels)      # frames of the shot seen so far
        if final and self._next == 0 and known < MIN_SHOT:     # a shot too short to tell: as it is
            out = list(self._frames)
            self._frames.clear()
            return out
        out = []
        while self._frames and (final or self._next + self.radius < known):
            frame, t = self._frames.popleft(), self._next
            lo, hi = max(self._first, t - self.radius), min(known, t + self.radius + 1)
            y = np.stack(self._levels[lo - self._first : hi - self._first])
            a, b = segment(y, t - lo)
            y, t_in = y[a:b], t - lo - a
            coef = np.zeros((3, 3))
            for c in range(3):
                for j in range(3):
                    if y[:, c, j].any():   # the gradients stay 0 where no plane was fitted
                        z = trend(y[:, c, j], self.strength * noise_level(y[:, c, j]))
                        coef[c, j] = z[t_in] - y[t_in, c, j]
            done = np.empty_like(frame)
            if coef[:, 1:].any():
                apply_field(frame, coef, self.max_gain, int(np.iinfo(frame.dtype).max), done)
            else:
                map_channels(frame, np.clip(np.exp(coef[:, 0]), 1 / self.max_gain, self.max_gain), np.zeros(3), done)
            out.append(done)
            self._next += 1
            drop = max(0, self._next - self.radius - self._first)
            del self._levels[:drop]
            self._first += drop
        return out
