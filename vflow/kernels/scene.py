"""Streaming hard-cut detection.

Each frame is reduced to a small block-averaged picture (about 80 px wide): its luma plane, the
plane's row and column means, and a hue/saturation histogram with one extra bin for achromatic
pixels. Two frames differ by the mean absolute luma difference after matching their mean luma (a
clamped gain, so film flicker and flashes do not count), minimised over small global shifts (camera
shake, gate weave), plus a weighted histogram distance.

A frame ``t`` starts a new shot when the frames just before it (``t-L .. t-1``) and the frames from
it on (``t .. t+L-1``) are far apart *pairwise* — the closest cross pair still differs — while the
frames inside the sides stay close together (the mean of the two sides' spreads: a burst of action
on one side alone does not hide a cut that the other side's calm shows). This rejects one-frame
flashes and objects sweeping past the camera (the picture comes back, so some cross pair is close),
and flickering or fast action (large differences inside the sides). The cross distance must also
beat an absolute floor and a multiple of the rolling median of recent frame-to-frame differences.

Each pair distance is computed once, when its later frame arrives; only the last ``2L - 1`` frames'
features and distances are kept, so memory does not grow with the video. The kernels are serial: the
stage runs in its own thread beside decode, and for this little work per batch OpenMP's parallel
regions cost far more than they save on a busy machine (measured up to 25x slower on 2 loaded cores).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..pipeline.frames import BT601

HIST_BINS = 16 * 4 + 1  # 16 hues x 4 saturations, plus one achromatic bin


def downscale_rgb(frames: np.ndarray, step: int) -> np.ndarray:
    """Block means of ``(N, H, W, 3)`` uint8 or uint16 frames over ``step`` x ``step`` blocks, as
    ``(N, H//step, W//step, 3)`` float32 in 8-bit levels (0..255 whatever the depth: every threshold of the
    detector is in those units). Blocks of 16 rows or more average 4 evenly spaced rows (still 64+ pixels
    each): reading a quarter of a large frame is what makes it cheap, while skipping fewer rows saves
    nothing (the memory prefetcher fetches the rows in between anyway)."""
    stride = step // 4 if step >= 16 else 1
    rows = len(range(0, step, stride))
    vmax = int(np.iinfo(frames.dtype).max)
    kind = np.empty(0, np.uint16 if rows * vmax <= np.iinfo(np.uint16).max else np.uint32)
    return _downscale(frames, step, stride, kind, 255.0 / vmax)


@nb.njit(nogil=True, cache=True)
def _downscale(frames: np.ndarray, step: int, stride: int, kind: np.ndarray, scale: float) -> np.ndarray:
    """One pass over the input: every ``stride``-th row of a block row is summed into one integer row of
    ``kind``'s dtype (uint16 when the sums fit: twice the SIMD lanes), then that row across each block;
    ``scale`` takes code values to 8-bit levels."""
    n = frames.shape[0]
    h = frames.shape[1] // step
    w = frames.shape[2] // step
    out = np.empty((n, h, w, 3), np.float32)
    inv = np.float32(scale / (len(range(0, step, stride)) * step))
    span = w * step * 3
    acc = np.empty(span, kind.dtype)  # allocated here, so the compiler knows it aliases nothing
    blocks = acc.reshape((w, step * 3))
    for job in range(n * h):
        f = job // h
        r = job % h
        acc[:] = 0
        for sy in range(r * step, (r + 1) * step, stride):
            row = frames[f, sy].reshape(-1)
            for x in range(span):
                acc[x] += row[x]
        for bx in range(w):
            block = blocks[bx]
            s0 = s1 = s2 = np.uint32(0)
            for sx in range(step):
                s0 += block[3 * sx]
                s1 += block[3 * sx + 1]
                s2 += block[3 * sx + 2]
            out[f, r, bx, 0] = s0 * inv
            out[f, r, bx, 1] = s1 * inv
            out[f, r, bx, 2] = s2 * inv
    return out


@nb.njit(nogil=True, cache=True)
def _parts(f: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Views of a feature vector: luma ``(h, w)``, row means, column means, histogram; and the mean luma."""
    a = h * w
    return f[:a].reshape((h, w)), f[a : a + h], f[a + h : a + h + w], f[a + h + w : a + h + w + HIST_BINS], f[-1]


@nb.njit(nogil=True, cache=True)
def frame_features(small: np.ndarray, kw: np.ndarray) -> np.ndarray:
    """``(N, h*w + h + w + HIST_BINS + 1)`` float32 features of small RGB frames (see ``_parts``): the luma
    plane (weights ``kw``), its row and column means, normalised hue/saturation histogram, mean luma."""
    n, h, w, _ = small.shape
    out = np.zeros((n, h * w + h + w + HIST_BINS + 1), np.float32)
    for f in range(n):
        luma, rows, cols, hist, _ = _parts(out[f], h, w)
        total = 0.0
        for y in range(h):
            for x in range(w):
                r = small[f, y, x, 0]
                g = small[f, y, x, 1]
                b = small[f, y, x, 2]
                v = kw[0] * r + kw[1] * g + kw[2] * b
                luma[y, x] = v
                rows[y] += v
                cols[x] += v
                total += v
                mx = max(r, g, b)
                chroma = mx - min(r, g, b)
                if chroma < 25.5 or mx < 25.5:
                    hist[HIST_BINS - 1] += 1.0
                    continue
                if mx == r:
                    hue = (g - b) / chroma
                    if hue < 0.0:
                        hue += 6.0
                elif mx == g:
                    hue = (b - r) / chroma + 2.0
                else:
                    hue = (r - g) / chroma + 4.0
                hb = min(int(hue * (16.0 / 6.0)), 15)
                sb = min(int(chroma / mx * 4.0), 3)
                hist[hb * 4 + sb] += 1.0
        rows /= w
        cols /= h
        hist /= h * w
        out[f, -1] = total / (h * w)
    return out


@nb.njit(nogil=True, cache=True, fastmath=True)
def _shifted_sad(ya: np.ndarray, yb: np.ndarray, g: float, dy: int, dx: int, border: int) -> float:
    """Mean |ya - g * yb shifted by (dy, dx)| over the interior (``border`` pixels left out on each side)."""
    h, w = ya.shape
    n = w - 2 * border
    acc = 0.0
    for y in range(border, h - border):
        ra = ya[y, border : border + n]
        rb = yb[y + dy, border + dx : border + dx + n]
        s = np.float32(0.0)
        for x in range(n):
            s += abs(ra[x] - g * rb[x])
        acc += s
    return acc / ((h - 2 * border) * n)


@nb.njit(nogil=True, cache=True, fastmath=True)
def _profile_shift(pa: np.ndarray, pb: np.ndarray, g: float, shift: int) -> int:
    """The shift in ``-shift .. shift`` that best aligns ``g * pb`` on ``pa`` (1-D mean absolute difference)."""
    best, arg = np.inf, 0
    for d in range(-shift, shift + 1):
        s = 0.0
        for i in range(shift, pa.shape[0] - shift):
            s += abs(pa[i] - g * pb[i + d])
        if s < best:
            best, arg = s, d
    return arg


@nb.njit(nogil=True, cache=True)
def frame_distance(fa: np.ndarray, fb: np.ndarray, h: int, w: int, max_gain: float, hist_weight: float,
                   shift: int) -> float:
    """Distance of two frames' feature vectors: gain-matched mean absolute luma difference, minimised over
    global shifts of up to ``shift`` pixels, plus ``hist_weight`` x half-L1 histogram distance.

    The shift is estimated from the row and column mean profiles, then refined over its 3x3 neighbours."""
    ya, ra, ca, ha, ma = _parts(fa, h, w)
    yb, rb, cb, hb, mb = _parts(fb, h, w)
    shift = min(shift, (h - 1) // 2, (w - 1) // 2)
    g = np.float32(min(max((ma + 2.0) / (mb + 2.0), 1.0 / max_gain), max_gain))
    by = _profile_shift(ra, rb, g, shift)
    bx = _profile_shift(ca, cb, g, shift)
    best = np.inf
    for dy in range(max(by - 1, -shift), min(by + 1, shift) + 1):
        for dx in range(max(bx - 1, -shift), min(bx + 1, shift) + 1):
            best = min(best, _shifted_sad(ya, yb, g, dy, dx, shift))
    hd = 0.0
    for k in range(HIST_BINS):
        hd += abs(ha[k] - hb[k])
    return best + hist_weight * 0.5 * hd


@nb.njit(nogil=True, cache=True)
def new_distances(feats: np.ndarray, start: int, band: int, h: int, w: int, max_gain: float,
                  hist_weight: float, shift: int) -> np.ndarray:
    """``out[j - start, k] = distance(j - k, j)`` for the frames ``j >= start`` and ``1 <= k < band``
    (NaN where ``j - k`` is not in ``feats``)."""
    n = feats.shape[0] - start
    out = np.full((n, band), np.nan, np.float32)
    for job in range(n * (band - 1)):
        j = start + job // (band - 1)
        k = 1 + job % (band - 1)
        if j - k >= 0:
            out[j - start, k] = frame_distance(feats[j - k], feats[j], h, w, max_gain, hist_weight, shift)
    return out


@nb.njit(nogil=True, cache=True)
def _spread(dist: np.ndarray, first: int, a: int, b: int, skip: int) -> float:
    """Largest distance between two frames of ``a .. b-1`` other than ``skip`` (0 for fewer than two)."""
    out = 0.0
    for j in range(a, b):
        for i in range(a, j):
            if i != skip and j != skip:
                out = max(out, dist[j - first, j - i])
    return out


@nb.njit(nogil=True, cache=True)
def _outlier(dist: np.ndarray, first: int, a: int, b: int, t: int, isolation: float) -> int:
    """The frame of ``a .. b-1`` (never ``t``) to leave out (flash, dirt), or -1: the one whose removal
    shrinks the side's spread most, if that shrinks it ``isolation`` times."""
    if b - a < 3:
        return -1
    best, arg = np.inf, -1
    for k in range(a, b):
        if k != t:
            s = _spread(dist, first, a, b, k)
            if s < best:
                best, arg = s, k
    return arg if isolation * best < _spread(dist, first, a, b, -1) else -1


@nb.njit(nogil=True, cache=True)
def decide_cuts(dist: np.ndarray, first: int, t0: int, t1: int, end: int, last_cut: int, diffs: np.ndarray,
                count: int, window: int, min_score: float, contrast: float, median_ratio: float,
                min_scene_len: int, isolation: float) -> tuple[np.ndarray, int, int]:
    """Decide frames ``t0 .. t1`` from ``dist[j - first, k] = distance(j - k, j)`` of the frames
    ``first .. end-1``. ``diffs`` is the ring of the last frame-to-frame differences (``count`` pushed so
    far; updated in place). Returns the cuts, the last cut and the new count."""
    cuts = np.empty(max(t1 - t0 + 1, 0), np.int64)
    found = 0
    for t in range(t0, t1 + 1):
        a, b = max(first, t - window), min(end, t + window)
        # never t - 1 (nor t after it): the frame next to the candidate that differs from its side is motion
        # setting in (a still title that starts to move), not a flash to leave out
        skip_pre = _outlier(dist, first, a, t, t - 1, isolation)
        skip_post = _outlier(dist, first, t, b, t, isolation)
        held = min(count, diffs.shape[0])
        baseline = np.median(diffs[:held]) if held else 0.0
        if diffs.shape[0]:
            diffs[count % diffs.shape[0]] = dist[t - first, 1]
        count += 1
        cross = np.inf
        for i in range(a, t):
            for j in range(t, b):
                if i != skip_pre and j != skip_post:
                    cross = min(cross, dist[j - first, j - i])
        # the sides' mean spread: action on one side alone (a passer just after the cut) does not veto a cut
        # that the other side's calm shows plainly
        inside = 0.5 * (_spread(dist, first, a, t, skip_pre) + _spread(dist, first, t, b, skip_post))
        if (t - last_cut >= min_scene_len and cross >= min_score and cross >= contrast * (inside + 2.0)
                and cross >= median_ratio * baseline):
            cuts[found] = t
            found += 1
            last_cut = t
    return cuts[:found], last_cut, count


class SceneDetector:
    """Streaming hard-cut detector; ``push`` batches of frames, then ``flush`` at end of stream.

    A decision about frame ``t`` needs frames up to ``t + lookahead``, so ``push`` may report cuts
    in frames of earlier batches and ``flush`` reports those of the last ``lookahead`` frames.
    Reported indices are absolute (counted since construction or ``reset``) and increasing.
    """

    def __init__(
        self,
        width: int = 80,
        window: int = 4,
        min_score: float = 12.0,
        contrast: float = 1.4,
        median_ratio: float = 1.5,
        history: int = 48,
        min_scene_len: int = 8,
        max_gain: float = 1.6,
        hist_weight: float = 32.0,
        isolation: float = 2.0,
        shift: int = 4,
        luma: tuple[float, float, float] = BT601,
    ) -> None:
        """``width``: target width of the small frames; ``window``: frames compared on each side of a
        candidate cut; ``min_score``: absolute floor (luma levels) of the closest cross pair;
        ``contrast``: how much the cross distance must beat the largest distance within a side;
        ``median_ratio``: how much it must beat the median of the last ``history`` frame-to-frame
        differences; ``min_scene_len``: shortest shot in frames; ``isolation``: one frame of a side is
        left out (flash, dirt) when that shrinks the side's largest inner distance this many times;
        ``shift``: global shift searched, in small-frame pixels; ``luma``: the stream's luma weights."""
        if width < 1 or window < 1 or history < 0 or shift < 0:
            raise ValueError("width and window must be at least 1, history and shift at least 0")
        self.width, self.window, self.min_score = width, window, min_score
        self.contrast, self.median_ratio, self.history = contrast, median_ratio, history
        self.min_scene_len, self.max_gain, self.hist_weight = min_scene_len, max_gain, hist_weight
        self.isolation, self.shift = isolation, shift
        self._luma = np.array(luma, np.float64)
        self.reset()

    @property
    def lookahead(self) -> int:
        """Frames after ``t`` that must have been pushed before ``t`` is decided."""
        return self.window - 1

    @property
    def buffered(self) -> int:
        """Frames whose features are held (at most ``2 * window - 1`` after a push: memory is constant)."""
        return 0 if self._feats is None else len(self._feats)

    def reset(self) -> None:
        """Forget all frames; the next pushed frame is index 0."""
        self._size: tuple[int, int] | None = None  # small-frame (height, width)
        self._feats: np.ndarray | None = None  # features of the buffered frames, oldest first
        self._dist: np.ndarray | None = None  # _dist[j - _first, k] = distance(j - k, j)
        self._first = 0  # absolute index of the first buffered frame
        self._next = 1  # next frame to decide (frame 0 never starts a cut)
        self._last_cut = 0
        self._diffs = np.zeros(self.history)  # ring of the last frame-to-frame differences
        self._count = 0  # differences pushed into the ring so far

    def push(self, frames: np.ndarray) -> list[int]:
        """Add ``(N, H, W, 3)`` uint8 or uint16 RGB frames; return the cuts that became decidable."""
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"expected (N, H, W, 3) uint8 or uint16 frames, got {frames.shape} {frames.dtype}")
        if len(frames) == 0:
            return []
        step = max(1, frames.shape[2] // self.width)
        size = (frames.shape[1] // step, frames.shape[2] // step)
        if self._size is not None and size != self._size:
            raise ValueError(f"frame size changed: small frames {self._size} -> {size}")
        self._size = size
        feats = frame_features(downscale_rgb(np.ascontiguousarray(frames), step), self._luma)
        start = 0 if self._feats is None else len(self._feats)
        self._feats = feats if self._feats is None else np.concatenate([self._feats, feats])
        dist = new_distances(self._feats, start, 2 * self.window, *size, self.max_gain, self.hist_weight, self.shift)
        self._dist = dist if self._dist is None else np.concatenate([self._dist, dist])
        return self._decide(final=False)

    def flush(self) -> list[int]:
        """Decide the frames still waiting for look-ahead (end of stream)."""
        return self._decide(final=True)

    def _decide(self, final: bool) -> list[int]:
        if self._feats is None or self._dist is None:
            return []
        L = self.window
        end = self._first + len(self._feats)  # one past the last buffered frame
        last = end - 1 if final else end - L  # last frame that can be decided now
        cuts: list[int] = []
        if last >= self._next:
            found, self._last_cut, self._count = decide_cuts(
                self._dist, self._first, self._next, last, end, self._last_cut, self._diffs, self._count,
                L, self.min_score, self.contrast, self.median_ratio, self.min_scene_len, self.isolation,
            )
            cuts = found.tolist()
            self._next = last + 1
        # later decisions look back to _next - L; new frames' distances reach back 2L - 1 frames
        keep = max(self._next - L, self._first)
        drop = keep - self._first
        if drop:
            self._feats, self._dist = self._feats[drop:], self._dist[drop:]
            self._first = keep
        return cuts
