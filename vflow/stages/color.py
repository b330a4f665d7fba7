"""color: per-scene auto levels, fade correction, white balance, saturation and reference colour transfer."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..kernels.gains import map_channels
from ..kernels.lab import LAB_RANGE, lab_grid, remap_lab, rgb_to_lab
from ..media.probe import read_image
from ..pipeline.frames import FrameBatch
from ..pipeline.registry import stage
from ..pipeline.stage import Stage, StageContext, stream_luma
from ..pipeline.windows import memory_frames

_CELLS = 256  # Lab grid cells per channel for the transfer's tables and histograms
_GRID = lab_grid(_CELLS)
_LEVELS = np.linspace(0.0, 1.0, 1025)  # quantile levels sampled from the reference
# levels: the evidence that a shot's blacks are lifted grows from 0 to 1 as its darkest channel's black point
# goes from LIFTED to LIFTED + RAMP, and falls to 0 as the channels' black points spread from NEUTRAL to
# 2 * NEUTRAL apart. The blacks then go (evidence x SHARE) of the way down to BLACK (the true black is
# unknown: half the way never overshot). Chosen on vflow.evalclips' tune part (bench/bench_color_levels.py):
# clean tune shots have black points up to 58.
LIFTED, RAMP, BLACK, SHARE, NEUTRAL = 56.0, 16.0, 8.0, 0.5, 12.0
# A fade lifts every pixel, so even the deepest ones (the FLOOR x clip fraction) sit just under the black point
# (faded tune shots: at most 11.2 levels under it); a bright, hazy clean shot keeps a thin tail of real shadows
# far below it. The evidence takes the black point no higher than the floor + DEEP.
FLOOR, DEEP = 0.2, 12.0


@stage("color")
class Color(Stage):
    """Restore faded, cast and flat colour, shot by shot.

    Each frame's per-channel black and white points (the ``clip`` fraction of pixels at each end) and
    channel means are followed by a moving average that restarts at every scene cut, so a correction
    never pumps from frame to frame inside a shot. ``levels`` brings lifted blacks down, per channel, and
    only where the shot shows it is faded: every channel's black point high (above :data:`LIFTED`), with
    no tail of deep shadows under it (a fade lifts every pixel; a bright, hazy shot keeps its few deep ones),
    and alike (a fade lifts the dyes alike; shadows of one colour are a choice of light). The white point
    stays: low whites may be a night scene. A clean, well-exposed shot, a night scene or a warm one is
    left as it is; ``max_gain`` bounds the stretch. ``white_balance`` scales the channels to a common
    grey (grey world); ``saturation`` scales chroma around the stream's luma; ``strength`` blends the
    correction with the input. ``reference`` (an image: a photo of the same people or place) transfers its
    colour statistics, per Lab channel, from statistics of the shot smoothed like the rest:
    ``transfer: meanstd`` maps the shot's mean and spread onto the reference's (Reinhard et al.);
    ``transfer: histogram`` maps the shot's cumulative histogram onto the reference's (CDF matching), which
    also carries over skewed or many-peaked distributions. Either becomes one table per channel, applied
    per pixel in a numba kernel.

    ```yaml
    color: {type: color, params: {levels: true, saturation: 1.1, reference: grandma_1974.jpg, transfer: histogram}}
    ```
    """

    depths = frozenset({8, 16})
    hdr = False   # black points, gains and Lab of an SDR picture

    def __init__(self, levels: bool = True, white_balance: bool = False, saturation: float = 1.0,
                 strength: float = 1.0, clip: float = 0.005, window: int = 24, max_gain: float = 3.0,
                 reference: str | None = None, transfer: Literal["meanstd", "histogram"] = "meanstd"):
        if not 0 <= clip < 0.2:
            raise ValueError("clip must be in [0, 0.2)")
        if saturation < 0 or not 0 <= strength <= 1 or window < 1 or max_gain < 1:
            raise ValueError("saturation >= 0, strength in [0, 1], window >= 1 and max_gain >= 1 are required")
        if transfer not in ("meanstd", "histogram"):
            raise ValueError(f"transfer must be 'meanstd' or 'histogram', not {transfer!r}")
        if transfer != "meanstd" and reference is None:
            raise ValueError(f"transfer: {transfer} needs a reference image")
        self.levels, self.white_balance, self.saturation = levels, white_balance, saturation
        self.strength, self.clip, self.max_gain = strength, clip, max_gain
        self.beta = 2.0 / (window + 1.0)
        self.reference, self.transfer = reference, transfer

    def files_read(self) -> list[str]:
        return [self.reference] if self.reference else []

    def context(self) -> tuple[int, int]:
        """Levels and balance follow a running average of the shot."""
        return memory_frames(1 - self.beta), 0

    def setup(self, ctx: StageContext) -> None:
        self._luma = torch.tensor(stream_luma(ctx))   # saturation scales chroma around the stream's luma
        self._scene: int | None = None
        self._state: np.ndarray | None = None  # (4, 3): black point, white point, mean, floor per channel
        self._shot: np.ndarray | None = None  # the shot's smoothed Lab statistics, as _lab_stats gives them
        self._target: np.ndarray | None = None  # the reference's: mean/spread, or quantiles at _LEVELS
        if self.reference:
            lab = rgb_to_lab(read_image(self.reference, "reference image")).numpy().reshape(-1, 3)
            self._target = (np.quantile(lab, _LEVELS, axis=0).T if self.transfer == "histogram"
                            else np.stack([lab.mean(0), lab.std(0)]))
        return None

    def _measure(self, frame: np.ndarray) -> np.ndarray:
        """Black point, white point and mean of each channel, on every 4th pixel, in 8-bit levels (the units
        of the thresholds, whatever the depth)."""
        small = frame[::4, ::4].reshape(-1, 3)
        vmax = int(np.iinfo(frame.dtype).max)
        out = np.empty((4, 3))
        for c in range(3):
            cdf = np.cumsum(np.bincount(small[:, c], minlength=vmax + 1))
            n = cdf[-1]
            out[0, c] = np.searchsorted(cdf, self.clip * n)
            out[1, c] = np.searchsorted(cdf, (1 - self.clip) * n)
            out[2, c] = small[:, c].mean()
            out[3, c] = np.searchsorted(cdf, FLOOR * self.clip * n)
        return out * (255 / vmax)

    def _affine(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The per-channel map for the smoothed statistics, ``scale * v + offset`` in 8-bit levels: the
        levels stretch, the balance's gains and the blend with the input are each affine."""
        lo, hi, mean, floor = state
        scale, offset = np.ones(3), np.zeros(3)
        if self.levels:
            w = float(np.clip((min(lo.min(), floor.min() + DEEP) - LIFTED) / RAMP, 0.0, 1.0))
            w *= float(np.clip(1.0 - (np.ptp(lo) - NEUTRAL) / NEUTRAL, 0.0, 1.0))
            new_lo = lo - w * SHARE * np.maximum(lo - BLACK, 0.0)
            gain = np.minimum((hi - new_lo) / np.maximum(hi - lo, 1.0), self.max_gain)
            scale, offset = gain, new_lo - lo * gain
            mean = new_lo + (mean - lo) * gain
        if self.white_balance:
            gains = np.clip(mean.mean() / np.maximum(mean, 1.0), 1.0 / self.max_gain, self.max_gain)
            scale, offset = scale * gains, offset * gains
        return 1.0 + self.strength * (scale - 1.0), self.strength * offset

    def process(self, batch: FrameBatch) -> FrameBatch:
        frames = batch.frames.numpy()
        out = np.empty_like(frames)
        for i, (frame, scene) in enumerate(zip(frames, batch.scene.tolist())):
            stats = self._measure(frame)
            new_shot = scene != self._scene or self._state is None
            self._state = stats if new_shot else self._state + self.beta * (stats - self._state)
            self._scene = scene
            scale, offset = self._affine(self._state)
            map_channels(frame, scale, offset * (batch.vmax / 255), out[i])
            if self._target is not None:
                out[i] = self._transfer(out[i], new_shot)
        result = torch.from_numpy(out)
        if self.saturation != 1.0:
            f = result.float()
            luma = (f * self._luma).sum(-1, keepdim=True)
            result = (luma + self.saturation * (f - luma)).round_().clamp_(0, batch.vmax).to(batch.frames.dtype)
        return batch.replace(frames=result)

    def _transfer(self, frame: np.ndarray, new_shot: bool) -> np.ndarray:
        """Map the shot's smoothed Lab statistics onto the reference's, one table per channel."""
        assert self._target is not None
        stats = self._lab_stats(rgb_to_lab(torch.from_numpy(frame[::4, ::4])).numpy().reshape(-1, 3))
        self._shot = stats if new_shot or self._shot is None else self._shot + self.beta * (stats - self._shot)
        if self.transfer == "histogram":  # reference quantile at the shot's CDF at each grid point
            cdf = np.concatenate([np.zeros((3, 1)), np.cumsum(self._shot, axis=1)], axis=1)
            table = np.stack([np.interp(cdf[c], _LEVELS, self._target[c]) for c in range(3)])
        else:
            (mean, std), (ref_mean, ref_std) = self._shot, self._target
            table = (_GRID - mean[:, None]) / np.maximum(std, 1e-3)[:, None] * ref_std[:, None] + ref_mean[:, None]
        return remap_lab(frame, _GRID + self.strength * (table - _GRID))

    def _lab_stats(self, lab: np.ndarray) -> np.ndarray:
        """(3, cells) histograms on the grid (fractions) for ``histogram``, else (2, 3) mean and spread."""
        if self.transfer == "meanstd":
            return np.stack([lab.mean(0), lab.std(0)]).astype(np.float64)
        return np.stack([np.histogram(lab[:, c], _CELLS, tuple(LAB_RANGE[c]))[0] for c in range(3)]) / len(lab)
