"""vflow's YUV <-> RGB kernels against an independent float reference, over pixel formats, sizes (odd ones
included), matrices, ranges and bit depths (hypothesis)."""

from __future__ import annotations

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vflow.media.color import PLANAR, from_rgb, to_rgb
from vflow.pipeline.frames import ColorInfo

KR_KB = {1: (0.2126, 0.0722), 6: (0.299, 0.114), 9: (0.2627, 0.0593)}
FORMATS = ["yuv420p", "yuv422p", "yuv444p", "yuv411p", "yuv440p", "yuvj420p", "yuv420p10le", "yuv422p10le",
           "yuv444p10le", "yuv420p12le", "yuv444p16le"]


def planes(frame: av.VideoFrame) -> list[np.ndarray]:
    fmt = PLANAR[frame.format.name]
    dtype = np.uint8 if fmt.depth == 8 else np.uint16
    out = []
    for p in frame.planes[:3]:
        size = np.dtype(dtype).itemsize
        out.append(np.frombuffer(p, dtype).reshape(p.height, p.line_size // size)[:, : p.width])
    return out


def reference(frame: av.VideoFrame, color: ColorInfo) -> np.ndarray:
    """RGB in float (0..255) from the standard's equations, chroma bilinear at its siting."""
    fmt = PLANAR[frame.format.name]
    y, u, v = (p.astype(np.float64) for p in planes(frame))
    h, w = y.shape

    def grid(n: int, m: int, shift: int, cosited: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i = np.arange(n, dtype=np.float64)
        pos = i if shift == 0 else (i / (1 << shift) if cosited else (i + 0.5) / (1 << shift) - 0.5)
        pos = np.clip(pos, 0, m - 1)
        lo = np.floor(pos).astype(int)
        return lo, np.minimum(lo + 1, m - 1), pos - lo

    def up(c: np.ndarray) -> np.ndarray:
        y0, y1, wy = grid(h, c.shape[0], fmt.sy, False)  # vertically between its rows
        rows = c[y0] * (1 - wy)[:, None] + c[y1] * wy[:, None]
        x0, x1, wx = grid(w, c.shape[1], fmt.sx, fmt.cosited_x)
        return rows[:, x0] * (1 - wx) + rows[:, x1] * wx

    k = 1 << (fmt.depth - 8)
    cb, cr = up(u) - 128 * k, up(v) - 128 * k
    if color.range == 2:
        top = (1 << fmt.depth) - 1
        luma, cb, cr = y / top, cb / top, cr / top
    else:
        luma, cb, cr = (y - 16 * k) / (219 * k), cb / (224 * k), cr / (224 * k)
    kr, kb = KR_KB[color.matrix]
    kg = 1 - kr - kb
    rgb = np.stack([luma + 2 * (1 - kr) * cr,
                    luma - 2 * kb * (1 - kb) / kg * cb - 2 * kr * (1 - kr) / kg * cr,
                    luma + 2 * (1 - kb) * cb], -1)
    return np.clip(rgb * 255, 0, 255)


def random_frame(fmt: str, w: int, h: int, matrix: int, full: bool, seed: int) -> tuple[av.VideoFrame, ColorInfo]:
    """A frame of ``fmt`` with random codes in every plane, and the colours to read it with."""
    frame = av.VideoFrame(w, h, fmt)
    rng = np.random.default_rng(seed)
    top = (1 << PLANAR[fmt].depth) - 1
    for p in planes(frame):
        p[...] = rng.integers(0, top + 1, p.shape)
    return frame, ColorInfo(matrix, 2 if full or fmt.startswith("yuvj") else 1, matrix, matrix)


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(FORMATS), w=st.integers(1, 40), h=st.integers(1, 30), matrix=st.sampled_from([1, 6, 9]),
       full=st.booleans(), seed=st.integers(0, 2**16))
def test_yuv_to_rgb_rounds_the_exact_value(fmt: str, w: int, h: int, matrix: int, full: bool, seed: int) -> None:
    if PLANAR[fmt].sx and w < 2 or PLANAR[fmt].sy and h < 2:
        return
    frame, color = random_frame(fmt, w, h, matrix, full, seed)
    ref = reference(frame, color)
    got = to_rgb(frame, color).astype(np.float64)
    diff = np.abs(got - ref)
    assert diff.max() <= 0.5 + 1e-3, (fmt, diff.max())  # rounded to nearest: never more than half a level off


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_is_unbiased_on_smooth_pictures(fmt: str) -> None:
    y, x = np.mgrid[0:96, 0:128]
    rgb = np.stack([x * 255 // 127, y * 255 // 95, (x + y) * 255 // 222], -1).astype(np.uint8)
    color = ColorInfo(6, 2 if fmt.startswith("yuvj") else 1, 6, 6)
    back = to_rgb(from_rgb(rgb, fmt, color), color)
    inner = np.s_[:, : 128 - (1 << PLANAR[fmt].sx)]  # past the last co-sited chroma sample it is held, not ramped
    assert np.abs(back[inner].astype(float).mean(axis=(0, 1)) - rgb[inner].mean(axis=(0, 1))).max() < 0.05
    assert np.abs(back[inner].astype(int) - rgb[inner]).max() <= 3


@pytest.mark.parametrize("fmt", ["yuv444p10le", "yuv444p12le", "yuv444p16le"])
def test_round_trip_through_deep_444_is_exact(fmt: str) -> None:
    """8-bit RGB survives RGB -> 10-bit (or deeper) 4:4:4 -> RGB unchanged: the YUV keeps every level."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(16, 236, (48, 64, 3)).astype(np.uint8)  # inside the limited-range gamut
    color = ColorInfo(1, 1, 1, 1)
    assert np.array_equal(to_rgb(from_rgb(rgb, fmt, color), color), rgb)


def test_grey_and_red_decode_to_the_right_levels() -> None:
    frame = av.VideoFrame(16, 16, "yuv420p")
    for p, value in zip(planes(frame), (64, 128, 128)):
        p[...] = value
    assert np.all(to_rgb(frame, ColorInfo(6, 1, 6, 6)) == 56)  # (64-16)*255/219 = 55.9: swscale gave 55
    for p, value in zip(planes(frame), (81, 90, 240)):  # BT.601 red: R = (81-16)/219 + 1.402 * 0.5 = 254.4
        p[...] = value
    assert tuple(int(c) for c in to_rgb(frame, ColorInfo(6, 1, 6, 6))[0, 0]) == (254, 0, 0)  # swscale: 253


def test_chroma_is_sited_left_for_mpeg_and_centred_for_jpeg() -> None:
    """A one-sample chroma impulse at chroma column 4: on luma column 8 (co-sited), or between 8 and 9."""
    out = {}
    for fmt in ("yuv420p", "yuvj420p"):
        frame = av.VideoFrame(16, 8, fmt)
        y, u, v = planes(frame)
        y[...], v[...] = 128, 128
        u[...] = 128
        u[:, 4] = 200
        rgb = to_rgb(frame, ColorInfo(6, 2 if fmt == "yuvj420p" else 1, 6, 6)).astype(int)
        out[fmt] = rgb[0, 6:12, 2] - rgb[0, 0, 2]
    left, centred = out["yuv420p"], out["yuvj420p"]
    assert left.argmax() == 2 and left[1] == left[3]           # columns 7, 8, 9: symmetric around 8
    assert centred[2] == centred[3] and centred[2] > centred[1]  # columns 8 and 9 equal


@settings(max_examples=40, deadline=None)
@given(fmt=st.sampled_from(FORMATS), w=st.integers(2, 40), h=st.integers(2, 30), matrix=st.sampled_from([1, 6, 9]),
       full=st.booleans(), seed=st.integers(0, 2**16))
def test_yuv_to_16_bit_rgb_rounds_the_exact_value(fmt: str, w: int, h: int, matrix: int, full: bool,
                                                  seed: int) -> None:
    frame, color = random_frame(fmt, w, h, matrix, full, seed)
    got = to_rgb(frame, color, 16)
    assert got.dtype == np.uint16
    diff = np.abs(got.astype(np.float64) - reference(frame, color) * 257)
    assert diff.max() <= 0.5 + 0.02, (fmt, diff.max())  # float32 arithmetic over 65535 codes


@settings(max_examples=40, deadline=None)
@given(fmt=st.sampled_from(["yuv444p", "yuv444p10le", "yuv444p12le", "yuv420p", "yuv420p10le", "yuv422p10le"]),
       w=st.integers(1, 24).map(lambda n: 2 * n), h=st.integers(1, 16).map(lambda n: 2 * n),
       matrix=st.sampled_from([1, 6, 9]), full=st.booleans(), seed=st.integers(0, 2**16))
def test_yuv_survives_16_bit_rgb_and_back_exactly(fmt: str, w: int, h: int, matrix: int, full: bool,
                                                  seed: int) -> None:
    """Every code of an in-gamut 8/10/12-bit picture comes back unchanged through vflow's 16-bit RGB frames
    (4:4:4; subsampled formats with chroma that is flat, where the chroma filters have nothing to do)."""
    fmt_ = PLANAR[fmt]
    rng = np.random.default_rng(seed)
    color = ColorInfo(matrix, 2 if full else 1, matrix, matrix)
    rgb = rng.integers(4000, 61000, (h, w, 3)).astype(np.uint16)   # inside the gamut, away from its edges
    if fmt_.sx or fmt_.sy:
        rgb[...] = rgb[..., :1]            # grey: chroma flat at its centre, luma random
    source = from_rgb(rgb, fmt, color)
    back = from_rgb(to_rgb(source, color, 16), fmt, color)
    for a, b in zip(planes(source), planes(back)):
        assert np.array_equal(a, b)
