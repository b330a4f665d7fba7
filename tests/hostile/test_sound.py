"""Hostile sound: generated soundtracks (PCM with unordered layouts, mono to 5.1, 32-48 kHz, digital silence,
AAC) into every container, copied or cleaned. ``vflow check`` builds what the run builds, so each case either
passes check and then runs to a playable file (no ``ipcm`` in MP4/MOV, Opus at 48 kHz in WebM), or fails check
with one line naming the output; never at the first frame or at the final mux.

Runtime: about 30 s on 2 cores.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from helpers_media import REPO, VIDEO_DIR

from vflow.cli import main
from vflow.media.audio import EncoderInput, finite, ordered

WEBM = ["--set", "encode.codec=libsvtav1", "--set", "encode.preset=12", "--set", "encode.crf=40"]
PLAYABLE = {".mp4": {"aac"}, ".mov": {"aac"}, ".webm": {"opus"}}


def write_source(path: Path, codec: str = "pcm_s16le", layout: str = "stereo", rate: int = 48_000,
                 seconds: float = 1.0, silent: bool = False, start: float = 0.0) -> None:
    """25 fps 64x48 video and one audio stream (a 440 Hz tone, or digital silence) starting at ``start``."""
    n = int(seconds * rate)
    channels = len(av.AudioLayout(layout).channels)
    tone = np.zeros(n) if silent else 0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)
    pcm = np.round(np.repeat(tone[None], channels, 0) * 32767).astype(np.int16)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream(codec, rate=rate)
        a.layout = layout
        for i in range(int(seconds * 25)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 60 + i, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        for s in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, s:s + 1024].T).reshape(1, -1), format="s16",
                                            layout=layout)
            af.sample_rate, af.pts, af.time_base = rate, s + round(start * rate), Fraction(1, rate)
            out.mux(a.encode(af))
        out.mux(v.encode(None))
        out.mux(a.encode(None))


def run(graph: str, src: Path, out: Path, *extra: str) -> tuple[int, int]:
    """(exit code of ``vflow check``, exit code of ``vflow run``), the run only where check passed."""
    args = [str(REPO / "graphs" / f"{graph}.yaml"), "-i", str(src), "-o", str(out), "--set", "encode.preset=ultrafast",
            *extra]
    checked = main(["check", *args])
    return checked, main(["run", *args, "-q"]) if checked == 0 else -1


def audio_of(path: Path) -> tuple[str, int, int, int]:
    """(codec, sample rate, channels, samples decoded) of the first audio stream; every packet must decode."""
    with av.open(str(path)) as c:
        cc = c.streams.audio[0].codec_context
        samples = sum(f.samples for f in c.decode(audio=0))
        return cc.name, cc.sample_rate, cc.channels, samples


# source (codec, layout, rate, silent) -> graph, output suffix
CASES = {
    "pcm-2ch-unordered-mp4": (("pcm_s16le", "stereo", 48_000, False), "copy", ".mp4"),
    "pcm-2ch-unordered-mov": (("pcm_s16le", "stereo", 48_000, False), "copy", ".mov"),
    "pcm-2ch-unordered-mkv": (("pcm_s16le", "stereo", 48_000, False), "copy", ".mkv"),
    "pcm-2ch-unordered-webm": (("pcm_s16le", "stereo", 48_000, False), "copy", ".webm"),
    "pcm-mono-44k-webm": (("pcm_s16le", "mono", 44_100, False), "copy", ".webm"),
    "pcm-32k-mp4": (("pcm_s16le", "stereo", 32_000, False), "copy", ".mp4"),
    "pcm-5.1-mp4": (("pcm_s16le", "5.1", 48_000, False), "copy", ".mp4"),
    "aac-mp4-copied": (("aac", "stereo", 44_100, False), "copy", ".mp4"),
    "aac-webm": (("aac", "stereo", 44_100, False), "copy", ".webm"),
    "clean-pcm-mp4": (("pcm_s16le", "stereo", 32_000, False), "restore_classic", ".mp4"),
    "clean-silent-short-mp4": (("pcm_s16le", "stereo", 32_000, True), "restore_classic", ".mp4"),
    "clean-44k-webm": (("pcm_s16le", "stereo", 44_100, False), "restore_classic", ".webm"),
    "clean-mono-mkv": (("pcm_s16le", "mono", 48_000, False), "restore_classic", ".mkv"),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", list(CASES))
def test_sound_passes_check_and_runs_to_a_playable_file(tmp_path: Path, case: str) -> None:
    (codec, layout, rate, silent), graph, suffix = CASES[case]
    src, out = tmp_path / "in.mkv", tmp_path / f"out{suffix}"  # Matroska: PCM layouts come back as "N channels"
    write_source(src, codec, layout, rate, silent=silent)
    extra = list(WEBM) if suffix == ".webm" else []
    if graph == "restore_classic":
        extra += ["--set", "smooth.window=3"]
    assert run(graph, src, out, *extra) == (0, 0)
    assert not out.with_name(out.name + ".partial").exists()
    name, out_rate, channels, samples = audio_of(out)
    assert name in PLAYABLE.get(suffix, {name}), f"{case}: {name} audio in {suffix}"
    assert channels == len(av.AudioLayout(layout).channels)
    assert out_rate == (48_000 if name == "opus" else rate)
    assert samples == pytest.approx(out_rate, rel=0.05), f"{case}: {samples} samples for 1 s"
    if codec == "aac" and suffix == ".mp4":
        assert name == "aac"  # playable already: copied, not re-encoded


@pytest.mark.timeout(60)
def test_pcm_copy_into_mp4_is_refused_by_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``audio_codec: copy`` of unordered PCM into MP4 fails only when MP4 writes its index: check says so."""
    src, out = tmp_path / "in.mkv", tmp_path / "out.mp4"
    write_source(src)
    assert run("copy", src, out, "--set", "encode.audio_codec=copy") == (2, -1)
    err = capsys.readouterr().err
    assert "cannot copy pcm_s16le audio into mp4" in err and "out.mp4" in err and "Traceback" not in err
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


@pytest.mark.timeout(60)
@pytest.mark.skipif(not (VIDEO_DIR / "interlaced_dv_ntsc_sony_good_quality_5frames.dv").is_file(),
                    reason="../shared/data/video is missing")
def test_real_dv_through_restore_classic_into_mp4(tmp_path: Path) -> None:
    """The README's example: DV's second stereo pair is digital silence, which loudnorm turned into NaN."""
    out = tmp_path / "out.mp4"
    assert run("restore_classic", VIDEO_DIR / "interlaced_dv_ntsc_sony_good_quality_5frames.dv", out,
               "--set", "smooth.window=3") == (0, 0)
    with av.open(str(out)) as c:
        assert [(a.codec_context.name, a.codec_context.sample_rate) for a in c.streams.audio] == [("aac", 32_000)] * 2
        silent = np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=1)])
        assert np.isfinite(silent).all() and np.abs(silent).max() < 1e-3


def test_encoder_input_makes_aac_frames_of_anything() -> None:
    """Frames of any format, layout and size come out as the AAC encoder's fltp/stereo 1024-sample frames."""
    cc = av.CodecContext.create("aac", "w")
    cc.sample_rate, cc.layout, cc.format, cc.time_base = 32_000, "stereo", "fltp", Fraction(1, 32_000)
    cc.open()
    feed = EncoderInput(cc)
    sizes = [5323, 16, 1, 1067, 3000]
    out, pts = [], 0
    for n in sizes:
        frame = av.AudioFrame.from_ndarray(np.full((1, 2 * n), np.nan), format="dbl", layout="2 channels")
        frame.sample_rate, frame.pts, frame.time_base = 32_000, pts, Fraction(1, 32_000)
        pts += n
        out += feed.push(frame)
    out += feed.push(None)
    assert {(f.format.name, f.layout.name) for f in out} == {("fltp", "stereo")}
    assert [f.samples for f in out[:-1]] == [1024] * (len(out) - 1) and sum(f.samples for f in out) == sum(sizes)
    assert [f.pts for f in out] == [1024 * i for i in range(len(out))]
    assert all(np.isfinite(f.to_ndarray()).all() for f in out)
    assert [p for f in [*out, None] for p in cc.encode(f)]


def test_finite_and_ordered() -> None:
    frame = av.AudioFrame.from_ndarray(np.array([[np.nan, np.inf, -np.inf, 0.5]], np.float32), format="fltp",
                                       layout="mono")
    np.testing.assert_array_equal(finite(frame).to_ndarray(), [[0, 0, 0, 0.5]])
    assert ordered(av.AudioLayout("2 channels")).name == "stereo"
    assert ordered(av.AudioLayout("6 channels")).name == "5.1"
    assert ordered(av.AudioLayout("mono")).name == "mono"
