"""Output shapes of the architectures."""

from __future__ import annotations

import pytest
import torch

from vflow.models import RRDBNet, SRVGGNetCompact


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_compact_scales(scale: int) -> None:
    net = SRVGGNetCompact(num_feat=8, num_conv=2, scale=scale)
    assert net(torch.rand(2, 3, 10, 12)).shape == (2, 3, 10 * scale, 12 * scale)


@pytest.mark.parametrize(("scale", "size"), [(4, (9, 11)), (2, (9, 11)), (1, (10, 13))])
def test_rrdb_scales_any_size(scale: int, size: tuple[int, int]) -> None:
    net = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow=4)
    assert net(torch.rand(1, 3, *size)).shape == (1, 3, size[0] * scale, size[1] * scale)


def test_rrdb_x2_uses_pixel_unshuffle() -> None:
    assert RRDBNet(scale=2, num_feat=8, num_block=1, num_grow=4).conv_first.in_channels == 12


def test_invalid_scales() -> None:
    with pytest.raises(ValueError, match="RRDBNet: scale must be 1, 2 or 4, got 3"):
        RRDBNet(scale=3)
    with pytest.raises(ValueError, match="SRVGGNetCompact: scale must be 1, 2, 3 or 4, got 5"):
        SRVGGNetCompact(scale=5)
