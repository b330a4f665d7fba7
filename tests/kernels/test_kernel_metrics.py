import numpy as np
import pytest

from vflow.kernels.metrics import psnr, ssim


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    return a, b


def test_ssim_matches_skimage_rgb_and_luma(pair):
    metrics = pytest.importorskip("skimage.metrics")
    a, b = pair
    ref = [metrics.structural_similarity(x, y, channel_axis=-1) for x, y in zip(a, b)]
    np.testing.assert_allclose(ssim(a, b), ref, atol=1e-3)
    ref_luma = [metrics.structural_similarity(x[..., 1], y[..., 1]) for x, y in zip(a, b)]
    np.testing.assert_allclose(ssim(a[..., 1], b[..., 1]), ref_luma, atol=1e-3)


def test_psnr_matches_skimage(pair):
    metrics = pytest.importorskip("skimage.metrics")
    a, b = pair
    ref = [metrics.peak_signal_noise_ratio(x, y) for x, y in zip(a, b)]
    np.testing.assert_allclose(psnr(a, b), ref, atol=1e-6)


def test_identical_frames(pair):
    a, _ = pair
    assert np.all(np.isinf(psnr(a, a)))
    np.testing.assert_allclose(ssim(a, a), 1.0)


def test_shape_mismatch_is_named(pair):
    a, b = pair
    with pytest.raises(ValueError, match="shape mismatch"):
        ssim(a, b[:, :-1])
