"""One definition of luma for every kernel: the stream's matrix (BT.709 where the stream is BT.709)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from vflow.kernels.frames import fixed_weights
from vflow.pipeline.frames import BT601, ColorInfo, FrameBatch, VideoInfo
from vflow.pipeline.stage import StageContext
from vflow.stages.color import Color
from vflow.stages.scene_split import SceneSplit
from vflow.stages.temporal_smooth import TemporalSmooth

BT709 = (0.2126, 1 - 0.2126 - 0.0722, 0.0722)


@pytest.mark.parametrize(("matrix", "height", "weights"), [
    (1, 480, BT709), (6, 1080, BT601), (5, 576, BT601), (2, 1080, BT709), (2, 480, BT601),
    (9, 2160, (0.2627, 1 - 0.2627 - 0.0593, 0.0593)), (0, 720, BT709)])
def test_weights_follow_the_matrix_as_a_player_assumes_it(matrix: int, height: int, weights: tuple) -> None:
    assert ColorInfo(matrix=matrix).luma_weights(height) == pytest.approx(weights)


def test_fixed_point_weights_sum_exactly() -> None:
    for total in (1000, 1 << 14):
        for w in (BT601, BT709):
            k = fixed_weights(w, total)
            assert k.sum() == total and np.allclose(k / total, w, atol=1 / total)
    assert fixed_weights(BT601, 1000).tolist() == [299, 587, 114]


def _ctx(matrix: int, height: int = 720) -> StageContext:
    info = VideoInfo(width=64, height=height, time_base=Fraction(1, 25), color=ColorInfo(matrix=matrix))
    return StageContext(name="s", inputs={"video": info}, connected_outputs=frozenset({"video"}))


@pytest.mark.parametrize("matrix", [1, 6])
def test_stages_take_the_streams_luma(matrix: int) -> None:
    want = BT709 if matrix == 1 else BT601
    smooth = TemporalSmooth(mode="denoise")
    smooth.setup(_ctx(matrix))
    assert smooth.denoiser is not None and smooth.denoiser.luma == pytest.approx(want)
    split = SceneSplit()
    split.setup(_ctx(matrix))
    assert split.detector._luma == pytest.approx(want)
    # saturation 0 leaves each pixel's own luma, in the stream's weights
    color = Color(levels=False, saturation=0.0)
    color.setup(_ctx(matrix))
    rgb = torch.tensor([[[[200, 40, 90], [10, 220, 30]]]], dtype=torch.uint8)
    out = color.process(FrameBatch(frames=rgb, pts=torch.arange(1), time_base=Fraction(1, 25))).frames
    expect = (rgb.double() * torch.tensor(want, dtype=torch.float64)).sum(-1).round()
    assert torch.allclose(out[..., 0].double(), expect, atol=1) and torch.equal(out[..., 0], out[..., 2])
