"""Deinterlacing in decode: FFmpeg's bwdif on the decoder's frames, detection by tag and idet, exact pts."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vflow
import vflow.testing  # noqa: F401  (registers the collect sink)
from vflow.media.color import color_of, to_rgb

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video"
SOURCE = DATA / "clean_scenecut_tears_of_steel_640x360.mp4"


def _progressive(n: int) -> list[np.ndarray]:
    with av.open(str(SOURCE)) as c:
        return [f.to_ndarray(format="rgb24") for _, f in zip(range(n), c.decode(video=0))]


@pytest.fixture(scope="module")
def woven(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """A lossless interlaced clip made by weaving pairs of real progressive frames (top field first)."""
    truth = _progressive(20)
    path = tmp_path_factory.mktemp("interlaced") / "woven.mkv"
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 640, 360, "yuv444p"
        for k in range(len(truth) // 2):
            frame = truth[2 * k].copy()
            frame[1::2] = truth[2 * k + 1][1::2]
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv444p")
            vf.pts = k
            out.mux(s.encode(vf))
        out.mux(s.encode(None))
    return path, truth


def _vflow(path: Path, **params: str) -> tuple[list[np.ndarray], list[int], Fraction, vflow.Pipeline]:
    graph = {"stages": {"decode": {"type": "decode", "params": {"path": str(path), **params}},
                        "out": {"type": "collect"}},
             "edges": ["decode.video -> out"]}
    pipeline = vflow.Pipeline.load(graph)
    pipeline.run()
    sink = pipeline.stage("out")
    return list(sink.frames().numpy()), sink.pts(), sink.batches[0].time_base, pipeline


def _direct_bwdif(path: Path, args: str) -> tuple[list[np.ndarray], list[Fraction]]:
    """FFmpeg's bwdif called directly through PyAV, frames converted to RGB the same way."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        graph = av.filter.Graph()
        src, bw, sink = graph.add_buffer(template=stream), graph.add("bwdif", args), graph.add("buffersink")
        src.link_to(bw)
        bw.link_to(sink)
        graph.configure()
        out = []
        for frame in [*c.decode(stream), None]:
            src.push(frame)
            while True:
                try:
                    out.append(sink.pull())
                except (BlockingIOError, av.error.EOFError):
                    break
    return [to_rgb(f, color_of(f)) for f in out], [f.pts * Fraction(f.time_base) for f in out]


def _psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    mse = float(np.mean([(x.astype(np.float64) - y) ** 2 for x, y in zip(a, b)]))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


@pytest.mark.timeout(120)
def test_field_rate_equals_ffmpeg_bwdif_and_restores_the_woven_frames(woven: tuple[Path, list[np.ndarray]]) -> None:
    path, truth = woven
    frames, pts, tb, pipeline = _vflow(path, deinterlace="auto", deinterlace_rate="field")
    detection = pipeline.stage("decode").detection
    assert detection.interlaced and detection.order == "tff", detection.describe()  # measured: no tag in ffv1
    direct, direct_times = _direct_bwdif(path, "mode=send_field:parity=tff:deint=all")
    assert len(frames) == len(direct) == len(truth)
    assert all(np.array_equal(a, b) for a, b in zip(frames, direct)), "not the same pixels as FFmpeg's bwdif"
    assert [p * tb for p in pts] == direct_times == [Fraction(i, 50) for i in range(len(truth))]  # 25i -> 50p
    repeated = _psnr([truth[2 * (i // 2)] for i in range(len(truth))], truth)  # each frame shown twice
    assert _psnr(frames, truth) >= _psnr(direct, truth) > repeated


@pytest.mark.timeout(60)
def test_frame_rate_keeps_one_frame_per_frame_with_the_same_pts(woven: tuple[Path, list[np.ndarray]]) -> None:
    path, _ = woven
    frames, pts, tb, _ = _vflow(path, deinterlace="on")
    direct, direct_times = _direct_bwdif(path, "mode=send_frame:parity=tff:deint=all")
    assert [p * tb for p in pts] == direct_times == [Fraction(i, 25) for i in range(10)]
    assert all(np.array_equal(a, b) for a, b in zip(frames, direct))


@pytest.mark.timeout(60)
def test_progressive_clips_are_left_alone() -> None:
    frames, pts, _, pipeline = _vflow(SOURCE, deinterlace="auto")
    assert not pipeline.stage("decode").detection.interlaced
    assert len(frames) == 240


@pytest.mark.timeout(60)
def test_real_dv_is_detected_bottom_field_first_and_doubled() -> None:
    frames, pts, tb, pipeline = _vflow(DATA / "interlaced_dv_ntsc_sony_good_quality_5frames.dv",
                                       deinterlace_rate="field")
    detection = pipeline.stage("decode").detection
    assert detection.interlaced and detection.order == "bff" and detection.tagged
    assert len(frames) == 10 and tb == Fraction(1, 120000)
    assert pts == [2002 * i for i in range(10)]


@pytest.mark.timeout(60)
def test_a_one_frame_clip_gets_two_distinct_field_pts() -> None:
    _, pts, _, _ = _vflow(DATA / "interlaced_dv_ntsc_sony_perfect_1frame.dv", deinterlace_rate="field")
    assert pts == [0, 2002]


@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(["exposure", "light", "oldfilm"]), index=st.integers(0, 10_000))
def test_progressive_film_and_photo_clips_are_not_deinterlaced(data_dir: Path, tmp_path_factory, kind: str,
                                                                index: int) -> None:
    """Untagged progressive clips (vflow.evalclips' check part) are left progressive by ``auto``."""
    _assert_progressive(data_dir, tmp_path_factory, kind, "check", index)


@pytest.mark.parametrize("kind, part, index", [("light", "check", 119), ("exposure", "tune", 14)])
def test_fine_detail_is_not_combing(data_dir: Path, tmp_path_factory, kind: str, part: str, index: int) -> None:
    """The two progressive clips (of 140 looked at) that idet called interlaced, by 12 frames against 8 and by 8
    against 0 of 31 and 14: a grainy slide panned (bwdif took 5 dB off it) and a chain-link fence."""
    _assert_progressive(data_dir, tmp_path_factory, kind, part, index)


def _assert_progressive(data_dir: Path, tmp_path_factory, kind: str, part: str, index: int) -> None:
    from vflow.evalclips import make
    from vflow.evaluate import write_lossless
    from vflow.media.deinterlace import detect

    clip = make(kind, part, index, data_dir)
    path = tmp_path_factory.mktemp("prog") / "clip.mkv"
    write_lossless(clip.frames, path)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [f for _, f in zip(range(32), c.decode(stream))]
        found = detect(stream, frames)
    assert not found.interlaced, found.describe()
