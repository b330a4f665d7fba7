"""color: fade and cast correction, stable within a shot, reset at cuts."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vflow.evalclips import clip_psnr, clips, make, run_stage
from vflow.pipeline.frames import FrameBatch
from vflow.stages.color import Color
from vflow.testing import check_stage_contract

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images" / "kodak"
PARROTS = str(KODAK / "kodim23.png")  # a reference with skewed, many-peaked chroma (red, yellow, green, blue)


def _image(name: str) -> np.ndarray:
    with av.open(str(KODAK / name)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def _lab(rgb: np.ndarray) -> np.ndarray:
    from vflow.kernels.lab import rgb_to_lab

    return rgb_to_lab(torch.from_numpy(np.ascontiguousarray(rgb))).numpy().reshape(-1, 3)


def _wasserstein(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-channel 1-Wasserstein distance between two (N, 3) samples (mean quantile gap)."""
    levels = (np.arange(200) + 0.5) / 200
    return np.abs(np.quantile(a, levels, axis=0) - np.quantile(b, levels, axis=0)).mean(0)


def _faded(img: np.ndarray) -> np.ndarray:
    """Faded film: the blacks lifted alike (base and fog), each channel's contrast squeezed a little differently."""
    scale, offset = np.array([0.66, 0.7, 0.6]), np.array([72, 70, 74])
    return np.clip(img * scale + offset, 0, 255).astype(np.uint8)


def _batch(frames: np.ndarray, scene: list[int]) -> FrameBatch:
    return FrameBatch(frames=torch.from_numpy(np.ascontiguousarray(frames)), pts=torch.arange(len(frames)),
                      time_base=Fraction(1, 25), scene=torch.tensor(scene))


def _run(stage: Color, frames: np.ndarray, scene: list[int]) -> np.ndarray:
    stage.setup(None)  # type: ignore[arg-type]
    return stage.process(_batch(frames, scene)).frames.numpy()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return clip_psnr(a, b, cap=math.inf)


def test_contract() -> None:
    check_stage_contract(lambda: Color(saturation=1.2), frames=10)


def test_contract_with_histogram_transfer() -> None:
    check_stage_contract(lambda: Color(reference=PARROTS, transfer="histogram"), frames=10)


def test_faded_film_is_restored() -> None:
    """Lifted blacks come down half way, per channel: measured here +6.3, +6.0 and +0.5 dB (the parrots' darkest
    channels differ, which makes the evidence of fading, and so the correction, smaller)."""
    gains = []
    for name in ("kodim05.png", "kodim15.png", "kodim23.png"):
        original = _image(name)
        faded = _faded(original)
        out = _run(Color(), np.stack([faded] * 3), [0, 0, 0])[-1]
        gains.append(_psnr(out, original) - _psnr(faded, original))
    assert min(gains) > 0.3 and np.mean(gains) > 3, gains


@pytest.mark.parametrize("name", ["kodim05.png", "kodim15.png"])
def test_a_tail_of_deep_shadows_under_lifted_blacks_is_not_a_fade(name: str) -> None:
    """The same faded picture with 0.3 % of its pixels (fewer than the 0.5 % black point) in deep shadow:
    a fade lifts every pixel, so these are real shadows of a bright, hazy shot, which stays as it is."""
    faded = _faded(_image(name))
    shadowed = faded.copy()
    side = round((0.003 * faded.shape[0] * faded.shape[1]) ** 0.5)
    shadowed[100:100 + side, 100:100 + side] = 12          # a patch of real shadow
    assert not np.array_equal(_run(Color(), np.stack([faded] * 3), [0, 0, 0])[-1], faded)
    assert np.array_equal(_run(Color(), np.stack([shadowed] * 3), [0, 0, 0])[-1], shadowed)


def test_correction_does_not_pump_inside_a_shot() -> None:
    """Specks that swing each frame's white point barely move the smoothed correction."""
    base = _faded(_image("kodim05.png"))[:256, :256]
    rng = np.random.default_rng(0)
    frames = np.stack([base] * 12)
    for f in frames:
        y, x = rng.integers(0, 200, 2)
        f[y:y + 40, x:x + 40] = 255 if rng.random() < 0.5 else base[y:y + 40, x:x + 40]

    def swing(out: np.ndarray) -> float:
        background = out[:, 220:, 220:].reshape(len(out), -1).mean(1)
        return float(np.abs(np.diff(background)).max())

    steady = swing(_run(Color(window=24), frames, [0] * 12))
    jumpy = swing(_run(Color(window=1), frames, [0] * 12))
    assert steady < 0.5 * jumpy


def test_a_new_scene_is_corrected_on_its_own_statistics() -> None:
    a, b = _faded(_image("kodim05.png")), _faded(_image("kodim23.png"))
    together = _run(Color(), np.stack([a, a, a, b]), [0, 0, 0, 1])[-1]
    alone = _run(Color(), b[None], [0])[0]
    assert np.array_equal(together, alone)


def test_saturation_scales_chroma_only() -> None:
    grey = np.full((1, 8, 8, 3), 128, np.uint8)
    assert np.array_equal(_run(Color(levels=False, white_balance=False, saturation=2.0), grey, [0]), grey)


def test_bad_params() -> None:
    with pytest.raises(ValueError, match="clip"):
        Color(clip=0.5)
    with pytest.raises(ValueError, match="transfer must be 'meanstd' or 'histogram', not 'cdf'"):
        Color(reference=PARROTS, transfer="cdf")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="transfer: histogram needs a reference image"):
        Color(transfer="histogram")


def test_reference_transfer_brings_a_cast_frame_back_to_the_reference_colours() -> None:
    """A frame with a strong cast, and a reference photo of the same scene: Lab error falls."""
    from vflow.kernels.lab import rgb_to_lab

    original = _image("kodim05.png")
    cast = np.clip(original * np.array([1.25, 0.95, 0.6]), 0, 255).astype(np.uint8)
    out = _run(Color(levels=False, reference=str(KODAK / "kodim05.png")), cast[None], [0])[0]

    def delta_e(a: np.ndarray) -> float:
        return float((rgb_to_lab(torch.from_numpy(a)) - rgb_to_lab(torch.from_numpy(original))).norm(dim=-1).mean())

    assert delta_e(out) < 0.5 * delta_e(cast)


def test_unreadable_reference_is_a_clear_error(tmp_path: Path) -> None:
    from vflow.media.probe import MediaError

    bad = tmp_path / "ref.jpg"
    bad.write_text("not an image")
    with pytest.raises(MediaError, match="reference image .*ref.jpg"):
        Color(reference=str(bad)).setup(None)  # type: ignore[arg-type]


def test_histogram_transfer_gives_the_shot_the_reference_distribution() -> None:
    """Real shot, non-Gaussian reference: the Lab distance to the reference falls far below the input's and
    below the mean/spread transfer's (measured: input 5.8/12.3/23.8, meanstd 3.8/4.2/3.4, histogram
    0.9/0.7/1.7 for L/a/b)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent / "kernels"))
    from kernel_media import decode

    shot = decode("video/clean_scenecut_tears_of_steel_640x360.mp4", 66, 12)
    reference = _lab(_image("kodim23.png"))
    before = _wasserstein(_lab(shot[-1]), reference)
    after = {t: _wasserstein(_lab(_run(Color(levels=False, reference=PARROTS, transfer=t), shot, [0] * 12)[-1]),
                             reference) for t in ("meanstd", "histogram")}
    assert after["histogram"].mean() < 0.15 * before.mean(), (before, after)
    assert np.all(after["histogram"] < after["meanstd"]), after
    assert after["histogram"].mean() < 0.5 * after["meanstd"].mean(), after


@pytest.mark.parametrize("transfer", ["meanstd", "histogram"])
def test_transfer_does_not_pump_inside_a_shot(transfer: str) -> None:
    """Coloured patches that change every frame shift the statistics; the smoothed mapping barely moves the
    untouched background (measured: Lab swing 0.26 vs 4.4 for histogram, 0.43 vs 6.6 for meanstd)."""
    base = _image("kodim05.png")[:256, :256]
    rng = np.random.default_rng(0)
    frames = np.stack([base] * 12)
    for f in frames:
        y, x = rng.integers(0, 200, 2)
        f[y:y + 40, x:x + 40] = rng.integers(0, 256, 3)

    def swing(out: np.ndarray) -> float:
        background = _lab(out[:, 220:, 220:]).reshape(len(out), -1, 3).mean(1)
        return float(np.abs(np.diff(background, axis=0)).max())

    steady = swing(_run(Color(levels=False, reference=PARROTS, transfer=transfer, window=24), frames, [0] * 12))
    jumpy = swing(_run(Color(levels=False, reference=PARROTS, transfer=transfer, window=1), frames, [0] * 12))
    assert steady < 0.25 * jumpy, (steady, jumpy)


def test_histogram_transfer_restarts_at_a_cut() -> None:
    a, b = _image("kodim05.png"), _image("kodim15.png")
    together = _run(Color(reference=PARROTS, transfer="histogram"), np.stack([a, a, a, b]), [0, 0, 0, 1])[-1]
    alone = _run(Color(reference=PARROTS, transfer="histogram"), b[None], [0])[0]
    assert np.array_equal(together, alone)


def test_lab_kernels_match_the_cie_formulas_and_round_trip() -> None:
    """float32 numba Lab against the CIE formulas in float64 (measured max error 5.5e-4 over all colours)."""
    from vflow.kernels.lab import lab_grid, lab_to_rgb, remap_lab, rgb_to_lab

    levels = np.arange(0, 256, 3)
    rgb = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3).astype(np.uint8)
    c = rgb / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                          [0.0193339, 0.1191920, 0.9503041]]).T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    expected = np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], -1)
    lab = rgb_to_lab(torch.from_numpy(rgb))
    assert np.abs(lab.numpy() - expected).max() < 2e-3
    assert torch.equal(lab_to_rgb(lab), torch.from_numpy(rgb))
    assert np.array_equal(remap_lab(rgb, lab_grid(256)), rgb)  # identity tables change nothing


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_16_bit_lab_matches_the_formulas_and_round_trips_within_a_code(seed: int) -> None:
    from vflow.kernels.lab import lab_grid, lab_to_rgb, lightness, remap_lab, rgb_to_lab, srgb_to_linear

    rgb = np.random.default_rng(seed).integers(0, 65536, (4000, 3)).astype(np.uint16)
    eight = rgb_to_lab(torch.from_numpy(np.rint(rgb / 257).astype(np.uint8))).numpy()
    deep = rgb_to_lab(torch.from_numpy(rgb)).numpy()
    assert np.abs(deep - eight).max() < 1.5          # the same colours, to within an 8-bit step
    grey = np.arange(0, 65536, 7, dtype=np.uint16)
    l_star = rgb_to_lab(torch.from_numpy(np.repeat(grey[:, None], 3, 1)))[:, 0].numpy()
    assert np.abs(l_star - lightness(srgb_to_linear(grey / 65535.0))).max() < 2e-3
    greys = np.repeat(np.arange(0, 65536, 7, dtype=np.uint16)[:, None], 3, 1)
    assert torch.equal(lab_to_rgb(rgb_to_lab(torch.from_numpy(greys)), np.uint16), torch.from_numpy(greys))
    back = lab_to_rgb(rgb_to_lab(torch.from_numpy(rgb)), np.uint16).numpy().astype(int)
    assert np.abs(back - rgb).max() <= 1   # float32 and the interpolated encode: within a 16-bit code
    assert np.abs(remap_lab(rgb, lab_grid(256)).astype(int) - rgb).max() <= 1   # identity tables: the same


def _levels_do_no_harm(data_dir: Path, index: int) -> None:
    clip = make("exposure", "check", index, data_dir)
    out = run_stage(Color(levels=True), clip)
    assert abs(out.astype(float).mean() - clip.truth.astype(float).mean()) <= 1.5, clip.params
    assert _psnr(out, clip.truth) >= 38.0, clip.params


# derandomized: the same 25 draws in every run, so that CI does not depend on luck; the random search found the
# clip of the next test
@settings(max_examples=25, deadline=None, derandomize=True)
@given(index=st.integers(0, 10_000))
def test_levels_leave_clean_night_and_warm_shots_alone(data_dir: Path, index: int) -> None:
    """Clean, well-exposed shots of vflow.evalclips' check part (held-out files and seeds), as they are, as a
    night scene or with a warm cast on purpose: the mean level moves by at most 1.5, PSNR stays >= 38 dB."""
    _levels_do_no_harm(data_dir, index)


def test_levels_leave_a_bright_low_contrast_clean_shot_alone(data_dir: Path) -> None:
    """Black points 52-82 like a fade's, but a tail of real shadows under them (found by CI's random draw on
    2026-12-02: 37.95 dB and mean -1.43 before the floor; measured 43.3 dB and -0.65 since)."""
    _levels_do_no_harm(data_dir, 1166)


@settings(max_examples=15, deadline=None)
@given(index=st.integers(0, 10_000))
def test_levels_never_make_a_faded_shot_much_worse(data_dir: Path, index: int) -> None:
    clip = make("faded", "check", index, data_dir)
    out = run_stage(Color(levels=True), clip)
    assert _psnr(out, clip.truth) >= _psnr(clip.frames, clip.truth) - 1.5, clip.params


def test_levels_gain_on_faded_shots_on_average(data_dir: Path) -> None:
    """Over 30 faded check clips: measured +0.5 dB mean (the correction waits for clear evidence)."""
    gains = [_psnr(run_stage(Color(levels=True), c), c.truth) - _psnr(c.frames, c.truth)
             for c in clips("faded", "check", 30, data_dir, first=5000)]
    assert np.mean(gains) > 0.2 and min(gains) > -0.5, gains
