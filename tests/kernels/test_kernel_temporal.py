import numpy as np
import pytest

from kernel_media import decode, grain
from vflow.kernels.metrics import psnr
from vflow.kernels.temporal import TemporalDenoiser

TOS = "video/clean_scenecut_tears_of_steel_640x360.mp4"


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return decode(TOS, 66, 16)  # one shot with a moving actor


@pytest.mark.parametrize("sigma", [10, 20])
def test_denoise_gains_psnr(clean, sigma):
    noisy = grain(clean, sigma)
    out = TemporalDenoiser()(noisy, np.zeros(len(clean), int))
    gain = psnr(out, clean).mean() - psnr(noisy, clean).mean()
    assert gain >= 2.5


def test_moving_edges_do_not_ghost(clean):
    noisy = grain(clean, 10)
    out = TemporalDenoiser()(noisy, np.zeros(len(clean), int))
    luma = clean.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    moving = np.zeros(luma.shape, bool)
    moving[1:] = np.abs(luma[1:] - luma[:-1]) > 25
    assert moving.mean() > 0.01

    def rmse(x: np.ndarray) -> float:
        return float(np.sqrt(((x.astype(np.float32) - clean) ** 2)[moving].mean()))

    assert rmse(out) < rmse(noisy)


def test_denoise_state_does_not_cross_a_cut(clean):
    other = decode(TOS, 30, 4)  # another shot
    frames = grain(np.concatenate([clean[:6], other]), 10)
    ids = np.array([0] * 6 + [1] * 4)
    through = TemporalDenoiser()(frames, ids)
    fresh = TemporalDenoiser()(frames[6:], ids[6:])
    np.testing.assert_array_equal(through[6:], fresh)


def test_denoise_state_carries_across_batches(clean):
    noisy = grain(clean[:8], 10)
    ids = np.zeros(8, int)
    whole = TemporalDenoiser()(noisy, ids)
    den = TemporalDenoiser()
    split = np.concatenate([den(noisy[:3], ids[:3]), den(noisy[3:], ids[3:])])
    np.testing.assert_array_equal(whole, split)


def test_rejects_mismatched_scene_ids(clean):
    with pytest.raises(ValueError, match="scene ids"):
        TemporalDenoiser()(clean[:2], np.zeros(3, int))
