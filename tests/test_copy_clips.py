"""End to end: ``vflow run graphs/copy.yaml`` on every real clip and on synthetic edge cases, read back with PyAV.

Output container per clip: ``.mkv`` for DV, because its two PCM audio streams are stream-copied as they are
(MP4 cannot carry pcm_s16le, so vflow would re-encode them to AAC); ``.mp4`` for everything else, because the
encoder sets the MP4 movie timescale to the source time base, so every pts comes back exact (Matroska rounds
timestamps to 1 ms, so DV pts are compared within a tenth of a frame).

The real clips run with ``--set encode.preset=ultrafast --set encode.crf=12``: about 2x faster, and without
x264's psychovisual tuning its loss stays well above the 35 dB bar (at the shipped crf 18 / veryfast, the noisy
lossless Cisco clip ends at 33 dB, as a plain PyAV transcode with those settings does), while a wrong matrix or
range costs 8 dB or more. Runtime: about 60 s on 2 idle cores.
"""

from __future__ import annotations

from dataclasses import astuple
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from helpers_media import REPO, VideoFacts, psnr, read_facts, video_clips, write_clip

from vflow.cli import main
from vflow.pipeline.frames import ColorInfo

COPY = str(REPO / "graphs" / "copy.yaml")
Copied = tuple[VideoFacts, VideoFacts, Path]
CLIPS = video_clips()
pytestmark = pytest.mark.skipif(not CLIPS, reason="../shared/data/video is missing")


def copy(src: Path, dst: Path, *extra: str) -> None:
    """``vflow run graphs/copy.yaml -i SRC -o DST -q [EXTRA]`` in this process; must succeed."""
    assert main(["run", COPY, "-i", str(src), "-o", str(dst), "-q", *extra]) == 0
    assert dst.is_file() and not dst.with_name(dst.name + ".partial").exists()


@pytest.fixture(scope="module", params=CLIPS, ids=lambda p: p.name)
def copied(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Copied:
    """(input facts, output facts, output path) of one real clip run through the copy graph."""
    src: Path = request.param
    dst = tmp_path_factory.mktemp("copy") / (src.stem + (".mkv" if src.suffix == ".dv" else ".mp4"))
    copy(src, dst, "--set", "encode.preset=ultrafast", "--set", "encode.crf=12")
    return read_facts(src), read_facts(dst), dst


@pytest.mark.timeout(60)
def test_copy_keeps_frame_count_and_size(copied: Copied) -> None:
    src, out, _ = copied
    assert out.frames == src.frames
    assert (out.width, out.height) == (src.width, src.height)


@pytest.mark.timeout(60)
def test_copy_keeps_presentation_times(copied: Copied) -> None:
    src, out, path = copied
    assert src.frame_duration is not None
    expected: list[Fraction | None] = list(src.times)
    if all(t is None for t in expected):  # raw .h264: no timestamps, frames are counted on at the stream rate
        expected = [i * src.frame_duration for i in range(src.frames)]
    if path.suffix == ".mp4":
        assert out.times == expected
    else:
        pairs = list(zip(out.times, expected, strict=True))
        worst = max(abs(a - b) if a is not None and b is not None else Fraction(1) for a, b in pairs)
        assert worst <= src.frame_duration / 10, f"pts off by {float(worst):.4f} s"


@pytest.mark.timeout(60)
def test_copy_tags_the_resolved_input_colours(copied: Copied) -> None:
    src, out, _ = copied
    assert out.tags == astuple(src.color)


@pytest.mark.timeout(60)
def test_copy_keeps_every_audio_stream_in_sync(copied: Copied) -> None:
    src, out, _ = copied
    assert [(a.codec, a.sample_rate, a.channels) for a in out.audio] == \
        [(a.codec, a.sample_rate, a.channels) for a in src.audio]
    assert src.frame_duration is not None
    for a, b in zip(src.audio, out.audio):
        assert a.first_time is not None and b.first_time is not None and a.end_time is not None
        assert abs(b.first_time - a.first_time) <= src.frame_duration
        assert b.end_time is not None and abs(b.end_time - a.end_time) <= src.frame_duration


@pytest.mark.timeout(60)
def test_copy_keeps_pixels(copied: Copied) -> None:
    src, out, _ = copied
    assert src.samples.keys() == out.samples.keys() and src.samples
    for i in src.samples:
        assert psnr(src.samples[i], out.samples[i]) > 35, f"frame {i}"


@pytest.mark.timeout(60)
def test_copy_keeps_variable_frame_rate(tmp_path: Path) -> None:
    steps_ms = [40, 40, 80, 40, 120, 33, 33, 200, 40, 17, 40, 60]
    times = [Fraction(sum(steps_ms[:i]), 1000) for i in range(len(steps_ms))]
    write_clip(tmp_path / "vfr.mp4", frames=len(times), times=times, time_base=Fraction(1, 1000))
    copy(tmp_path / "vfr.mp4", tmp_path / "out.mp4")
    assert read_facts(tmp_path / "vfr.mp4").times == times
    assert read_facts(tmp_path / "out.mp4").times == times


@pytest.mark.timeout(60)
def test_copy_keeps_bt709_full_range_tags_and_colours(tmp_path: Path) -> None:
    color = ColorInfo(matrix=1, range=2, primaries=1, transfer=1)  # 96 lines: untagged means BT.601 limited
    write_clip(tmp_path / "pc709.mp4", size=(128, 96), color=color)
    copy(tmp_path / "pc709.mp4", tmp_path / "out.mp4")
    src, out = read_facts(tmp_path / "pc709.mp4", sample=range(12)), read_facts(tmp_path / "out.mp4", sample=range(12))
    assert src.tags == out.tags == astuple(color)
    for i in src.samples:
        assert psnr(src.samples[i], out.samples[i]) > 35, f"frame {i}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rotation", [90, 270])
def test_copy_applies_display_rotation(tmp_path: Path, rotation: int) -> None:
    """Output is upright as ffmpeg's autorotate shows it: frame.rotation is counterclockwise, so np.rot90(k)."""
    write_clip(tmp_path / "rot.mp4", frames=6, size=(128, 96), rotation=rotation)
    copy(tmp_path / "rot.mp4", tmp_path / "out.mp4")
    src = read_facts(tmp_path / "rot.mp4", sample=range(6))
    out = read_facts(tmp_path / "out.mp4", sample=range(6))
    assert src.rotation % 360 == rotation and out.rotation == 0
    assert (out.width, out.height) == (96, 128)
    for i in range(6):
        assert psnr(np.rot90(src.samples[i], k=rotation // 90), out.samples[i]) > 35, f"frame {i}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("codec", "suffix", "decoded_as"), [
    ("libx264", ".mp4", "h264"), ("libx265", ".mp4", "hevc"), ("libsvtav1", ".mkv", "av1"),
    ("prores_ks", ".mov", "prores"),
])
def test_copy_encodes_with_codec(tmp_path: Path, codec: str, suffix: str, decoded_as: str) -> None:
    write_clip(tmp_path / "in.mp4", frames=6, size=(64, 64))
    out = tmp_path / f"out{suffix}"
    extra = ["--set", f"encode.codec={codec}", "--set", "encode.preset=null"]
    if codec == "prores_ks":
        extra += ["--set", "encode.crf=null"]
    copy(tmp_path / "in.mp4", out, *extra)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.codec.id == av.codec.Codec(decoded_as, "r").id
    assert read_facts(out, sample=()).frames == 6


@pytest.mark.timeout(60)
def test_copy_with_ffv1_is_lossless(tmp_path: Path) -> None:
    rgb = write_clip(tmp_path / "in.mkv", frames=6, codec="ffv1", pix_fmt="bgr0")
    copy(tmp_path / "in.mkv", tmp_path / "out.mkv", "--set", "encode.codec=ffv1", "--set", "encode.crf=null",
         "--set", "encode.preset=null")
    out = read_facts(tmp_path / "out.mkv", sample=range(6), exact_rgb=True)
    assert out.frames == 6 and out.tags[:2] == (0, 2)  # tagged as RGB, full range
    for i in range(6):
        np.testing.assert_array_equal(out.samples[i], rgb[i], err_msg=f"frame {i}")
