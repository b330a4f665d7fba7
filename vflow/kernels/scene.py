"""Streaming hard-cut detection.

Each frame is reduced to a small block-averaged picture (about 80 px wide): its luma plane and a
hue/saturation histogram with one extra bin for achromatic pixels. Two frames differ by the mean
absolute luma difference after matching their mean luma (a clamped gain, so film flicker and
flashes do not count), minimised over small global shifts (camera shake, gate weave), plus a
weighted histogram distance.

A frame ``t`` starts a new shot when the frames just before it (``t-L .. t-1``) and the frames from
it on (``t .. t+L-1``) are far apart *pairwise* — the closest cross pair still differs — while the
frames inside each side stay close together. This rejects one-frame flashes and objects sweeping
past the camera (the picture comes back, so some cross pair is close), and flickering or fast
action (large differences inside a side). The cross distance must also beat an absolute floor and
a multiple of the rolling median of recent frame-to-frame differences.
"""

from __future__ import annotations

from collections import deque

import numba as nb
import numpy as np

HIST_BINS = 16 * 4 + 1  # 16 hues x 4 saturations, plus one achromatic bin


@nb.njit(nogil=True, cache=True, parallel=True)
def downscale_rgb(frames: np.ndarray, step: int) -> np.ndarray:
    """Block-average ``(N, H, W, 3)`` uint8 frames by ``step`` into ``(N, H//step, W//step, 3)`` float32."""
    n = frames.shape[0]
    h = frames.shape[1] // step
    w = frames.shape[2] // step
    out = np.empty((n, h, w, 3), np.float32)
    inv = 1.0 / (step * step)
    for job in nb.prange(n * h):
        f = job // h
        r = job % h
        acc = np.zeros((w, 3), np.uint32)
        for sy in range(r * step, (r + 1) * step):
            row = frames[f, sy]
            for bx in range(w):
                x0 = bx * step
                for sx in range(x0, x0 + step):
                    acc[bx, 0] += row[sx, 0]
                    acc[bx, 1] += row[sx, 1]
                    acc[bx, 2] += row[sx, 2]
        for bx in range(w):
            for c in range(3):
                out[f, r, bx, c] = acc[bx, c] * inv
    return out


@nb.njit(nogil=True, cache=True, parallel=True)
def luma_and_hist(small: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 luma planes, their means and normalised hue/saturation histograms of small RGB frames."""
    n, h, w, _ = small.shape
    luma = np.empty((n, h, w), np.float32)
    means = np.empty(n, np.float32)
    hist = np.zeros((n, HIST_BINS), np.float32)
    for f in nb.prange(n):
        total = 0.0
        for y in range(h):
            for x in range(w):
                r = small[f, y, x, 0]
                g = small[f, y, x, 1]
                b = small[f, y, x, 2]
                v = 0.299 * r + 0.587 * g + 0.114 * b
                luma[f, y, x] = v
                total += v
                mx = max(r, g, b)
                chroma = mx - min(r, g, b)
                if chroma < 25.5 or mx < 25.5:
                    hist[f, HIST_BINS - 1] += 1.0
                    continue
                if mx == r:
                    hue = ((g - b) / chroma) % 6.0
                elif mx == g:
                    hue = (b - r) / chroma + 2.0
                else:
                    hue = (r - g) / chroma + 4.0
                hb = min(int(hue * (16.0 / 6.0)), 15)
                sb = min(int(chroma / mx * 4.0), 3)
                hist[f, hb * 4 + sb] += 1.0
        means[f] = total / (h * w)
        for k in range(HIST_BINS):
            hist[f, k] /= h * w
    return luma, means, hist


@nb.njit(nogil=True, cache=True)
def _shifted_sad(ya: np.ndarray, yb: np.ndarray, g: float, dy: int, dx: int, shift: int, stride: int) -> float:
    """Mean |ya - g * yb shifted by (dy, dx)| over the interior, sampling every ``stride`` pixels."""
    acc = 0.0
    count = 0
    for y in range(shift, ya.shape[0] - shift, stride):
        for x in range(shift, ya.shape[1] - shift, stride):
            acc += abs(ya[y, x] - g * yb[y + dy, x + dx])
            count += 1
    return acc / count


@nb.njit(nogil=True, cache=True)
def frame_distance(
    ya: np.ndarray, ma: float, ha: np.ndarray, yb: np.ndarray, mb: float, hb: np.ndarray,
    max_gain: float, hist_weight: float, shift: int,
) -> float:
    """Gain-matched mean absolute luma difference, minimised over global shifts of up to ``shift``
    pixels (camera shake, gate weave; coarse search on a 2x-subsampled grid, then refined), plus
    ``hist_weight`` x half-L1 histogram distance."""
    g = min(max((ma + 2.0) / (mb + 2.0), 1.0 / max_gain), max_gain)
    by = bx = 0
    coarse = np.inf
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            v = _shifted_sad(ya, yb, g, dy, dx, shift, 2)
            if v < coarse:
                coarse, by, bx = v, dy, dx
    best = np.inf
    for dy in range(max(by - 1, -shift), min(by + 1, shift) + 1):
        for dx in range(max(bx - 1, -shift), min(bx + 1, shift) + 1):
            best = min(best, _shifted_sad(ya, yb, g, dy, dx, shift, 1))
    hd = 0.0
    for k in range(ha.shape[0]):
        hd += abs(ha[k] - hb[k])
    return best + hist_weight * 0.5 * hd


@nb.njit(nogil=True, cache=True, parallel=True)
def band_distances(
    luma: np.ndarray, means: np.ndarray, hist: np.ndarray, band: int, max_gain: float, hist_weight: float, shift: int,
) -> np.ndarray:
    """``out[i, k] = distance(i, i + k)`` for ``1 <= k < band`` (NaN past the end)."""
    n = luma.shape[0]
    out = np.full((n, band), np.nan, np.float32)
    for job in nb.prange(n * band):
        i = job // band
        k = job % band
        j = i + k
        if k == 0 or j >= n:
            continue
        out[i, k] = frame_distance(
            luma[i], means[i], hist[i], luma[j], means[j], hist[j], max_gain, hist_weight, shift
        )
    return out


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
    ) -> None:
        """``width``: target width of the small frames; ``window``: frames compared on each side of a
        candidate cut; ``min_score``: absolute floor (luma levels) of the closest cross pair;
        ``contrast``: how much the cross distance must beat the largest distance within a side; ``median_ratio``: how much it must beat the median of the
        last ``history`` frame-to-frame differences; ``min_scene_len``: shortest shot in frames;
        ``isolation``: one frame of a side is left out (flash, dirt) when that shrinks the side's
        largest inner distance this many times; ``shift``: global shift searched, in small-frame pixels."""
        self.width, self.window, self.min_score = width, window, min_score
        self.contrast, self.median_ratio, self.history = contrast, median_ratio, history
        self.min_scene_len, self.max_gain, self.hist_weight = min_scene_len, max_gain, hist_weight
        self.isolation, self.shift = isolation, shift
        self.reset()

    @property
    def lookahead(self) -> int:
        """Frames after ``t`` that must have been pushed before ``t`` is decided."""
        return self.window - 1

    def reset(self) -> None:
        """Forget all frames; the next pushed frame is index 0."""
        self._luma: np.ndarray | None = None  # features of buffered frames, oldest first
        self._means = np.empty(0, np.float32)
        self._hist = np.empty((0, HIST_BINS), np.float32)
        self._first = 0  # absolute index of the first buffered frame
        self._next = 1  # next frame to decide (frame 0 never starts a cut)
        self._last_cut = 0
        self._diffs: deque[float] = deque(maxlen=self.history)

    def push(self, frames: np.ndarray) -> list[int]:
        """Add ``(N, H, W, 3)`` uint8 RGB frames; return the cuts that became decidable."""
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (N, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
        if len(frames) == 0:
            return []
        step = max(1, frames.shape[2] // self.width)
        luma, means, hist = luma_and_hist(downscale_rgb(np.ascontiguousarray(frames), step))
        if self._luma is not None and self._luma.shape[1:] != luma.shape[1:]:
            raise ValueError(f"frame size changed: small luma {self._luma.shape[1:]} -> {luma.shape[1:]}")
        self._luma = luma if self._luma is None else np.concatenate([self._luma, luma])
        self._means = np.concatenate([self._means, means])
        self._hist = np.concatenate([self._hist, hist])
        return self._decide(final=False)

    def flush(self) -> list[int]:
        """Decide the frames still waiting for look-ahead (end of stream)."""
        return self._decide(final=True)

    def _decide(self, final: bool) -> list[int]:
        if self._luma is None:
            return []
        L = self.window
        end = self._first + len(self._luma)  # one past the last buffered frame
        last = end - 1 if final else end - L  # last frame that can be decided now
        cuts: list[int] = []
        if last >= self._next:
            d = band_distances(
                self._luma, self._means, self._hist, 2 * L, self.max_gain, self.hist_weight, self.shift
            )
            for t in range(self._next, last + 1):
                if self._is_cut(d, t, end):
                    cuts.append(t)
                    self._last_cut = t
            self._next = last + 1
        keep = max(self._next - L, self._first)  # the oldest frame a later decision looks at
        drop = keep - self._first
        if drop:
            self._luma, self._means, self._hist = self._luma[drop:], self._means[drop:], self._hist[drop:]
            self._first = keep
        return cuts

    def _is_cut(self, d: np.ndarray, t: int, end: int) -> bool:
        cross, inside, baseline = self._scores(d, t, end)
        return (
            t - self._last_cut >= self.min_scene_len
            and cross >= self.min_score
            and cross >= self.contrast * (inside + 2.0)
            and cross >= self.median_ratio * baseline
        )

    def _scores(self, d: np.ndarray, t: int, end: int) -> tuple[float, float, float]:
        """(closest cross pair, largest distance inside a side, rolling median of frame differences)."""

        def dist(i: int, j: int) -> float:
            return float(d[i - self._first, j - i])

        def spread(frames: list[int]) -> float:
            return max([dist(i, j) for i in frames for j in frames if j > i], default=0.0)

        def side(frames: list[int]) -> list[int]:  # drop one outlier frame (flash, dirt), never t itself
            if len(frames) < 3:
                return frames
            rest = min(([i for i in frames if i != k] for k in frames if k != t), key=spread)
            return rest if self.isolation * spread(rest) < spread(frames) else frames

        pre = side(list(range(max(self._first, t - self.window), t)))
        post = side(list(range(t, min(end, t + self.window))))
        baseline = float(np.median(self._diffs)) if self._diffs else 0.0
        self._diffs.append(dist(t - 1, t))
        cross = min(dist(i, j) for i in pre for j in post)
        return cross, max(spread(pre), spread(post)), baseline
