"""tonemap: HDR (PQ or HLG) frames to SDR BT.709, so that the stages made for SDR pictures can follow."""

from __future__ import annotations

import numpy as np
import torch

from ..kernels.tonemap import HLG, HLG_PEAK, REFERENCE_WHITE, linear_table, tonemap
from ..pipeline.frames import HDR_TRANSFERS, ColorInfo, FrameBatch, VideoInfo
from ..pipeline.registry import stage
from ..pipeline.stage import Stage, StageContext

BT709 = 1


@stage("tonemap")
class ToneMap(Stage):
    """Turn an HDR picture (PQ or HLG, BT.2020, as phones record it) into SDR BT.709 for a 100 cd/m² display.

    Put it right after ``decode`` when a restore graph refuses an HDR source: ``color``, ``colorize``,
    ``restore`` and the deflicker work on SDR pictures. Light below ``knee`` times HDR reference white
    (203 cd/m²) keeps its level; brighter light is compressed to reach SDR white at ``peak`` (cd/m²; by
    default the source's MaxCLL, else its mastering display's peak, else 1000), hues kept
    (:mod:`vflow.kernels.tonemap`). The output is tagged BT.709 (matrix, primaries, transfer) and loses the
    source's HDR metadata; its depth stays. SDR input passes through unchanged.

    ```yaml
    tonemap: {type: tonemap, params: {knee: 0.7}}
    ```
    """

    depths = frozenset({8, 16})

    def __init__(self, knee: float = 0.7, peak: float | None = None):
        if not 0 < knee < 1:
            raise ValueError(f"knee must be between 0 and 1 (a share of SDR white), got {knee}")
        if peak is not None and peak <= REFERENCE_WHITE * knee:
            raise ValueError(f"peak must be above the knee's light ({REFERENCE_WHITE * knee:.0f} cd/m²), got {peak}")
        self.knee, self.peak = knee, peak

    def setup(self, ctx: StageContext) -> dict[str, VideoInfo]:
        video: VideoInfo = ctx.inputs["video"]  # type: ignore[assignment]
        self.active = video.color.hdr
        if not self.active:
            return {"video": video}
        self._hlg = video.color.transfer == HLG
        self.peak_nits = self.peak or _source_peak(video)
        self._table = linear_table(video.color.transfer, video.vmax)   # the depth is fixed at build time
        self.color = ColorInfo(BT709, video.color.range, BT709, BT709)
        self.source = HDR_TRANSFERS[video.color.transfer]
        return {"video": video.replace(color=self.color, hdr=None)}

    def process(self, batch: FrameBatch) -> FrameBatch:
        if not self.active:
            return batch
        frames = batch.frames.numpy()
        out = np.empty_like(frames)
        for i in range(len(frames)):
            tonemap(frames[i], self._table, self._hlg, np.float32(self.knee), np.float32(self.peak_nits / REFERENCE_WHITE),
                    np.float32(HLG_PEAK / REFERENCE_WHITE), out[i], batch.vmax)
        return batch.replace(frames=torch.from_numpy(out), color=self.color)


def _source_peak(video: VideoInfo) -> float:
    """The brightest light the source says it holds (cd/m²): its MaxCLL, its mastering display's peak, or
    1000 (HLG's nominal display, and a common PQ grade)."""
    hdr = video.hdr
    if hdr is not None and hdr.max_cll:
        return float(hdr.max_cll)
    if hdr is not None and hdr.luminance and hdr.luminance[1] > REFERENCE_WHITE:
        return float(hdr.luminance[1])
    return HLG_PEAK
