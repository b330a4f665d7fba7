"""Motion-compensated temporal denoise (deflicker: :mod:`vflow.kernels.deflicker`).

Each frame is averaged with its neighbours of the same shot (``radius`` each side), every neighbour first
aligned to it by block matching on a luma pyramid (a search at 1/16 resolution, refined at every finer level).
A neighbour's pixel counts as much as its 5x5 patch matches the frame's against the noise: the patch distance
of two frames that differ only by noise is twice the noise variance, and the weight falls as the distance
rises above that, so moving edges, occlusions and failed matches keep the frame's own pixels (no ghosts).

The noise is measured where it lives, in time: half the median over the blocks of the matched squared
difference of each frame and the one before, then the median of that over the frames about it in its shot (a
frame that matches nothing, a fast object passing the lens, does not raise it). Grain that survived a codec
as blotches shows there as it is; texture that moves with the picture (grain of a scanned slide, fine
detail) matches and is not taken for noise, which the spatial estimates of single-frame denoisers do. Where
few neighbours matched (fast or new content, the ends of a shot), a 3x3 bilateral pass
(:mod:`vflow.kernels.bilateral`) takes what noise the average left, with a range that follows it, so a
well-averaged pixel is left as it is. Frames are ``(N, H, W, 3)`` uint8 or uint16 RGB; they leave ``radius``
frames late, or at the end of their shot. The constants are in 8-bit levels: 16-bit frames match on luma in
those units, and the noise floors scale with the code range.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numba as nb
import numpy as np

from . import serialised
from .bilateral import exp_neg, range_coef, spatial_step
from ..pipeline.frames import BT601
from .frames import ShotWindow

BLOCK = 16        # motion block, full-resolution px
SEARCH = 4        # search range at 1/16 resolution (+-64 px at full), refined +-1 at each finer level
MARGIN = 2        # coarsest-level px around a block that its match there also compares
MOTION_COST = 0.02  # mean-abs-difference levels per full-res px of vector: ties go to the shorter vector
PATCH = 5         # side of the patch whose distance weighs a neighbour's pixel
SPREAD = 1.0      # how fast a neighbour's weight falls past the noise distance, in units of it
NOISE_QUANTILE = 0.5  # of the blocks' matched differences: the share of blocks that may match badly
NOISE_WINDOW = 24     # past frames whose pairs' noise a frame's estimate takes the median of (and radius ahead)
RANGE_K = 1.5     # the spatial pass's range, in sigmas of the noise the temporal average left
MIN_VAR = 0.25    # noise variance floor (half a level): identical frames give weight only to exact matches
LEVELS = 5        # luma pyramid: full, 1/2, 1/4, 1/8, 1/16 resolution


@serialised
@nb.njit(nogil=True, cache=True, parallel=True, fastmath=True)
def luma_pyramid(frame: np.ndarray, kw: np.ndarray, levels: tuple[np.ndarray, ...]) -> None:
    """Luma ``kw . RGB`` of ``frame`` into ``levels[0]`` (H, W) float32, and each level's 2x2 box means
    into the next (``levels[i]`` is ``(H >> i, W >> i)``)."""
    h, w, _ = frame.shape
    l0 = levels[0]
    for y in nb.prange(h):
        for x in range(w):
            l0[y, x] = kw[0] * frame[y, x, 0] + kw[1] * frame[y, x, 1] + kw[2] * frame[y, x, 2]
    for i in range(1, len(levels)):
        src, dst = levels[i - 1], levels[i]
        for y in nb.prange(dst.shape[0]):
            for x in range(dst.shape[1]):
                dst[y, x] = 0.25 * (src[2 * y, 2 * x] + src[2 * y, 2 * x + 1] + src[2 * y + 1, 2 * x]
                                    + src[2 * y + 1, 2 * x + 1])


def pyramid(h: int, w: int) -> tuple[np.ndarray, ...]:
    """Empty planes for :func:`luma_pyramid` of an H x W frame."""
    return tuple(np.empty((h >> i, w >> i), np.float32) for i in range(LEVELS))


@nb.njit(nogil=True, cache=True, fastmath=True, inline="always")
def _sad(a: np.ndarray, b: np.ndarray, y0: int, y1: int, x0: int, x1: int, dy: int, dx: int,
         step: int) -> float:
    """Mean absolute difference of ``a[y0:y1:step, x0:x1]`` and ``b`` displaced by ``(dy, dx)``."""
    acc = np.float32(0.0)
    n = 0
    for y in range(y0, y1, step):
        ra, rb = a[y], b[y + dy]
        for x in range(x0, x1):
            acc += abs(ra[x] - rb[x + dx])
        n += 1
    return acc / (n * (x1 - x0))


@nb.njit(nogil=True, cache=True, fastmath=True, inline="always")
def _best(a: np.ndarray, b: np.ndarray, y0: int, y1: int, x0: int, x1: int, cy: int, cx: int, r: int,
          cost: float, step: int = 1) -> tuple[int, int, float]:
    """The displacement within ``r`` of ``(cy, cx)`` (kept inside ``b``) that matches ``a[y0:y1, x0:x1]``
    (every ``step``-th row) best, each px of length costing ``cost``, and its cost; the centre wins ties."""
    h, w = b.shape
    lo_y, hi_y = max(cy - r, -y0), min(cy + r, h - y1)
    lo_x, hi_x = max(cx - r, -x0), min(cx + r, w - x1)
    by, bx = min(max(cy, -y0), h - y1), min(max(cx, -x0), w - x1)
    best = _sad(a, b, y0, y1, x0, x1, by, bx, step) + cost * (abs(by) + abs(bx))
    for dy in range(lo_y, hi_y + 1):
        for dx in range(lo_x, hi_x + 1):
            c = _sad(a, b, y0, y1, x0, x1, dy, dx, step) + cost * (abs(dy) + abs(dx))
            if c < best:
                best, by, bx = c, dy, dx
    return by, bx, best


@nb.njit(nogil=True, cache=True, inline="always")
def _span(a: int, b: int, shift: int, size: int, margin: int) -> tuple[int, int]:
    """Full-res rows (or columns) ``a:b`` at the level ``shift`` (size ``size``), widened by ``margin``,
    at least one, clipped to the level."""
    lo = min(a >> shift, size - 1)
    hi = max(-(-b >> shift), lo + 1)
    return max(lo - margin, 0), min(hi + margin, size)


@serialised
@nb.njit(nogil=True, cache=True, parallel=True, fastmath=True)
def match_blocks(tp: tuple[np.ndarray, ...], kp: tuple[np.ndarray, ...], ft: np.ndarray, fk: np.ndarray,
                 block: int, search: int, vec: np.ndarray, res: np.ndarray) -> None:
    """For every ``block`` x ``block`` block of frame t (luma pyramid ``tp``), the displacement into frame k
    (``kp``) where it matches best, into ``vec`` (nby, nbx, 2) int32 full-res px, and the mean squared RGB
    difference (``ft``, ``fk`` uint8) at that displacement into ``res`` (nby, nbx).

    The search covers ``search`` px at the coarsest level that the frame has (1/16: +-16 ``search`` full-res
    px), each finer level refines it by +-1, and the zero vector is kept where it matches as well. A coarse
    level can lead a block astray on fine texture (its aliases match there), and no +-1 step brings it back;
    so each block then also tries its neighbours' vectors at full resolution, twice over, keeping the best
    (a pan's true motion spreads from the blocks that found it)."""
    t0, k0 = tp[0], kp[0]
    h, w = t0.shape
    nby, nbx = vec.shape[0], vec.shape[1]
    cost = np.empty((nby, nbx), np.float32)
    for by in nb.prange(nby):
        for bx in range(nbx):
            y0, x0 = by * block, bx * block
            y1, x1 = min(y0 + block, h), min(x0 + block, w)
            vy = vx = 0
            searched = False
            for shift in range(len(tp) - 1, 0, -1):
                a, b = tp[shift], kp[shift]
                if a.shape[0] == 0 or a.shape[1] == 0:
                    continue
                margin = 0 if searched else MARGIN
                ay0, ay1 = _span(y0, y1, shift, a.shape[0], margin)
                ax0, ax1 = _span(x0, x1, shift, a.shape[1], margin)
                level_cost = MOTION_COST * (1 << shift)
                if searched:
                    vy, vx, _ = _best(a, b, ay0, ay1, ax0, ax1, 2 * vy, 2 * vx, 1, level_cost)
                else:
                    vy, vx, _ = _best(a, b, ay0, ay1, ax0, ax1, 0, 0, search, level_cost)
                    searched = True
            if searched:
                # full resolution on every other row: half the cost, the same vectors but for a few ties
                vy, vx, c = _best(t0, k0, y0, y1, x0, x1, 2 * vy, 2 * vx, 1, MOTION_COST, 2)
                zero = _sad(t0, k0, y0, y1, x0, x1, 0, 0, 2)
                if zero <= c:
                    vy, vx, c = 0, 0, zero
            else:
                # a frame too small for a pyramid: search at full resolution, every other row as the rest
                vy, vx, c = _best(t0, k0, y0, y1, x0, x1, 0, 0, search, MOTION_COST, 2)
            vec[by, bx, 0], vec[by, bx, 1] = vy, vx
            cost[by, bx] = c
    for _ in range(2):
        _adopt_neighbours(t0, k0, block, vec.copy(), cost.copy(), vec, cost)
    for by in nb.prange(nby):
        for bx in range(nbx):
            y0, x0 = by * block, bx * block
            y1, x1 = min(y0 + block, h), min(x0 + block, w)
            vy, vx = vec[by, bx, 0], vec[by, bx, 1]
            acc = 0.0
            for y in range(y0, y1, 2):   # every other row, as above
                for x in range(x0, x1):
                    for c in range(3):
                        d = np.float32(ft[y, x, c]) - np.float32(fk[y + vy, x + vx, c])
                        acc += d * d
            res[by, bx] = acc / (3 * ((y1 - y0 + 1) // 2) * (x1 - x0))


@nb.njit(nogil=True, cache=True, parallel=True, fastmath=True)
def _adopt_neighbours(t0: np.ndarray, k0: np.ndarray, block: int, prev: np.ndarray, prev_cost: np.ndarray,
                      vec: np.ndarray, cost: np.ndarray) -> None:
    """Each block whose 8 neighbours (``prev``, their costs ``prev_cost``) hold a vector that matches it
    better than its own takes the best of them, refined by +-1 at full resolution (every other row), into
    ``vec`` and ``cost``."""
    h, w = t0.shape
    nby, nbx = prev.shape[0], prev.shape[1]
    for by in nb.prange(nby):
        for bx in range(nbx):
            y0, x0 = by * block, bx * block
            y1, x1 = min(y0 + block, h), min(x0 + block, w)
            best, vy, vx = prev_cost[by, bx], prev[by, bx, 0], prev[by, bx, 1]
            moved = False
            for ny in range(max(by - 1, 0), min(by + 2, nby)):
                for nx in range(max(bx - 1, 0), min(bx + 2, nbx)):
                    cy, cx = prev[ny, nx, 0], prev[ny, nx, 1]
                    if (cy == vy and cx == vx) or y0 + cy < 0 or y1 + cy > h or x0 + cx < 0 or x1 + cx > w:
                        continue
                    c = _sad(t0, k0, y0, y1, x0, x1, cy, cx, 2) + MOTION_COST * (abs(cy) + abs(cx))
                    if c < best:
                        best, vy, vx, moved = c, cy, cx, True
            if moved:
                vy, vx, best = _best(t0, k0, y0, y1, x0, x1, vy, vx, 1, MOTION_COST, 2)
            vec[by, bx, 0], vec[by, bx, 1] = vy, vx
            cost[by, bx] = best


@serialised
@nb.njit(nogil=True, cache=True, parallel=True, fastmath=True)
def accumulate(ft: np.ndarray, fk: np.ndarray, vec: np.ndarray, block: int, var: float, spread: float,
               dist: np.ndarray, rowsum: np.ndarray, acc: np.ndarray, wsum: np.ndarray, wsq: np.ndarray) -> None:
    """Add neighbour ``fk``, displaced by the block vectors ``vec``, into the planar (3, H, W) ``acc`` and
    (H, W) ``wsum`` (and its square into ``wsq``), each pixel weighted by
    ``exp(-max(D - 2 var, 0) / (2 var spread))``, ``D`` the mean squared RGB difference to ``ft`` over the
    ``PATCH`` x ``PATCH`` patch (clipped at the borders).
    ``dist`` and ``rowsum`` are (H, W) float32 scratch."""
    h, w, _ = ft.shape
    r = PATCH // 2
    for y in nb.prange(h):
        by = y // block
        dr = dist[y]
        for x in range(w):
            bx = x // block
            sy, sx = y + vec[by, bx, 0], x + vec[by, bx, 1]
            e = np.float32(0.0)
            for c in range(3):
                d = np.float32(ft[y, x, c]) - np.float32(fk[sy, sx, c])
                e += d * d
            dr[x] = e * np.float32(1.0 / 3.0)
        rs = rowsum[y]
        run = np.float32(0.0)
        for x in range(min(r, w)):
            run += dr[x]
        for x in range(w):
            if x + r < w:
                run += dr[x + r]
            if x - r - 1 >= 0:
                run -= dr[x - r - 1]
            rs[x] = run / (min(x + r + 1, w) - max(x - r, 0))
    inv = np.float32(1.0 / (2.0 * var * spread))
    floor = np.float32(2.0 * var)
    for y in nb.prange(h):
        y0, y1 = max(y - r, 0), min(y + r + 1, h)
        norm = np.float32(1.0 / (y1 - y0))
        by = y // block
        for x in range(w):
            s = np.float32(0.0)
            for yy in range(y0, y1):
                s += rowsum[yy, x]
            wt = exp_neg(max(s * norm - floor, np.float32(0.0)) * inv)
            bx = x // block
            sy, sx = y + vec[by, bx, 0], x + vec[by, bx, 1]
            for c in range(3):
                acc[c, y, x] += wt * np.float32(fk[sy, sx, c])
            wsum[y, x] += wt
            wsq[y, x] += wt * wt


@serialised
@nb.njit(nogil=True, cache=True, parallel=True, fastmath=True)
def start(frame: np.ndarray, acc: np.ndarray, wsum: np.ndarray, wsq: np.ndarray) -> None:
    """The frame itself, weight 1, into ``acc``, ``wsum`` and ``wsq``."""
    h, w, _ = frame.shape
    for y in nb.prange(h):
        for x in range(w):
            for c in range(3):
                acc[c, y, x] = frame[y, x, c]
            wsum[y, x] = 1.0
            wsq[y, x] = 1.0


@serialised
@nb.njit(nogil=True, cache=True, parallel=True, fastmath=True)
def mean_and_range(acc: np.ndarray, wsum: np.ndarray, wsq: np.ndarray, var: float, range_k: float,
                   floor: float, coef: np.ndarray) -> None:
    """``acc /= wsum`` in place, and into ``coef`` the spatial pass's range for the noise the average left:
    ``var * wsq / wsum^2`` of it (all of it where no neighbour matched), times ``range_k^2`` (none under
    ``floor``, see :func:`range_coef`)."""
    _, h, w = acc.shape
    for y in nb.prange(h):
        for x in range(w):
            inv = np.float32(1.0) / wsum[y, x]
            for c in range(3):
                acc[c, y, x] *= inv
            coef[y, x] = range_coef(range_k * range_k * var * wsq[y, x] * inv * inv, floor)


def _unit(frame: np.ndarray) -> float:
    """Code values per 8-bit level: 1 for uint8 frames, 257 for uint16."""
    return np.iinfo(frame.dtype).max / 255


@dataclass
class _Held:
    """A frame waiting in the window, with its luma pyramid."""

    frame: np.ndarray
    pyramid: tuple[np.ndarray, ...]
    back: np.ndarray | None = None   # its block vectors into the frame before (matched once, when it came)


class TemporalDenoiser(ShotWindow):
    """The denoise over a stream: frames leave ``radius`` frames late, or at the end of their shot.

    ``strength`` scales the noise level measured in time (or the fixed ``sigma``, in levels): higher removes
    more and lets worse-matched neighbours in. ``luma`` are the stream's luma weights (for the matching).
    """

    def __init__(self, radius: int = 3, strength: float = 1.0, sigma: float | None = None,
                 luma: tuple[float, float, float] = BT601, range_k: float = RANGE_K) -> None:
        if radius < 1 or strength <= 0 or (sigma is not None and sigma < 0) or range_k < 0:
            raise ValueError("radius must be >= 1, strength > 0, sigma >= 0 and range_k >= 0")
        self.radius, self.strength, self.sigma, self.luma = radius, strength, sigma, luma
        self.range_k = range_k
        self._kw = np.array(luma, np.float32)
        self._shape: tuple[int, int] | None = None
        self.last_sigma = 0.0   # the noise level the last frame was denoised with (levels)
        self._reset()

    def _new_shot(self, frame: np.ndarray) -> bool:
        return bool(self._held) and frame.shape != self._held[-1].frame.shape

    def _add(self, frame: np.ndarray) -> None:
        self._buffers(*frame.shape[:2])
        pyr = self._spare.pop() if self._spare else pyramid(*frame.shape[:2])
        luma_pyramid(frame, self._kw * np.float32(1 / _unit(frame)), pyr)   # luma in 8-bit levels, the matching's units
        held = _Held(frame, pyr)
        if self._held:   # the noise of this frame and the last, matched
            last = self._held[-1]
            held.back = np.empty_like(self._vec[0])
            match_blocks(pyr, last.pyramid, frame, last.frame, BLOCK, SEARCH, held.back, self._res[0])
            self._pairs.append(float(np.quantile(self._res[0], NOISE_QUANTILE)) / 2)
        self._held.append(held)

    def _reset(self) -> None:
        self._held: deque[_Held] = deque()   # the shot's frames from _first on
        self._first = 0                      # shot index of _held[0]
        self._pairs: deque[float] = deque()  # noise variance of frames (i - 1, i) of the shot, i = _pair0 ...
        self._pair0 = 1
        self._next = 0                       # shot index of the next frame to leave
        self._scene: int | None = None

    def _buffers(self, h: int, w: int) -> None:
        if self._shape == (h, w):
            return
        self._shape = (h, w)
        self._spare: list[tuple[np.ndarray, ...]] = []   # pyramids of frames that left the window
        nby, nbx = -(-h // BLOCK), -(-w // BLOCK)
        self._vec = np.empty((2 * self.radius, nby, nbx, 2), np.int32)   # per neighbour
        self._res = np.empty((2 * self.radius, nby, nbx), np.float32)
        self._acc = np.empty((3, h, w), np.float32)
        self._wsum = np.empty((h, w), np.float32)
        self._wsq = np.empty((h, w), np.float32)
        self._rows = np.empty((max(1, min(h, 4 * nb.get_num_threads())), 3, w), np.float32)
        self._dist = np.empty((h, w), np.float32)
        self._rowsum = np.empty((h, w), np.float32)

    def _emit(self, final: bool) -> list[np.ndarray]:
        out = []
        known = self._first + len(self._held)
        while self._next < known and (final or self._next + self.radius < known):
            t = self._next
            out.append(self._denoise(t, range(max(self._first, t - self.radius), min(known, t + self.radius + 1))))
            self._next += 1
            while self._first < self._next - self.radius:
                self._spare.append(self._held.popleft().pyramid)   # its planes serve a frame to come
                self._first += 1
        return out

    def _denoise(self, t: int, window: range) -> np.ndarray:
        cur = self._held[t - self._first]
        out = np.empty_like(cur.frame)
        others = [k for k in window if k != t]
        if not others:
            out[:] = cur.frame
            return out
        for i, k in enumerate(others):
            other = self._held[k - self._first]
            if k == t - 1 and cur.back is not None:
                self._vec[i] = cur.back
            else:
                match_blocks(cur.pyramid, other.pyramid, cur.frame, other.frame, BLOCK, SEARCH, self._vec[i],
                             self._res[i])
        if self.sigma is None:  # the shot's noise about frame t: one frame that matches nothing does not raise it
            while self._pair0 < t - NOISE_WINDOW:
                self._pairs.popleft()
                self._pair0 += 1
            var = float(np.median(list(self._pairs)[: t + self.radius + 1 - self._pair0]))
        else:
            var = self.sigma**2
        unit = _unit(cur.frame)
        if self.sigma is not None:
            var *= unit * unit
        var = max(var * self.strength**2, MIN_VAR * unit * unit)
        self.last_sigma = math.sqrt(var) / unit
        start(cur.frame, self._acc, self._wsum, self._wsq)
        for i, k in enumerate(others):
            accumulate(cur.frame, self._held[k - self._first].frame, self._vec[i], BLOCK, var, SPREAD,
                       self._dist, self._rowsum, self._acc, self._wsum, self._wsq)
        mean_and_range(self._acc, self._wsum, self._wsq, var, self.range_k, 0.25 * unit * unit, self._dist)
        spatial_step(self._acc, self._dist, out, self._rows, int(np.iinfo(out.dtype).max))
        return out
