"""Sync: the offset between a click in the sound and a white flash in the picture, as a player sees it.

The clip (generated here): 64x48 at 25 fps, 48 kHz stereo PCM, dark frames with a few white flash frames; at
the exact pts of each flash the sound has a click (an 8 ms chirp: adeclick keeps it, a bare impulse it
would remove). Each graph's output is decoded with PyAV as players do (the mp4 edit list and the AAC/Opus
priming skipped through ``skip_samples``), flashes are found in the video and clicks by cross-correlation in
the audio, and every click must be within 1 ms of its flash.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from helpers_media import REPO

from vflow.cli import main
from vflow.media.audio import AudioFilter
from vflow.stages.audio_clean import AudioClean

RATE, FPS, SIZE = 48_000, 25, (64, 48)
FLASHES = (12, 31, 47)  # frame numbers
SECONDS = 2.4
TOLERANCE = 0.001


def burst(rate: int) -> np.ndarray:
    """The click: an 8 ms chirp from 0.5 to 4 kHz under a Hann window. Broadband, so its correlation peak is
    one, not one per cycle (as a tone burst's, which loudnorm's gain ramp tips by a period); smooth enough that
    adeclick leaves it whole (a sharper one it partly repairs, which moves the peak by 0.6 ms)."""
    n = int(0.008 * rate)
    t = np.arange(n) / rate
    return 0.5 * np.sin(2 * np.pi * (500 * t + 218_750 * t**2)) * np.hanning(n)


def soundtrack(rate: int, seconds: float, clicks: tuple[float, ...], seed: int = 0) -> np.ndarray:
    """A quiet 440 Hz tone with hiss, and a click starting at each of ``clicks`` (seconds): float (n,)."""
    n = int(seconds * rate)
    rng = np.random.default_rng(seed)
    x = 0.05 * np.sin(2 * np.pi * 440 * np.arange(n) / rate) + 0.005 * rng.standard_normal(n)
    b = burst(rate)
    for t in clicks:
        start = round(t * rate)
        x[start:start + b.size] += b
    return x


def write_sync_clip(path: Path, audio_start: float = 0.0, rate: int = RATE) -> None:
    """The flash/click clip, PCM in Matroska; ``audio_start`` delays the whole soundtrack (seconds)."""
    frames = int(SECONDS * FPS)
    x = soundtrack(rate, SECONDS - audio_start, tuple(f / FPS - audio_start for f in FLASHES))
    pcm = np.round(np.stack([x, x]) * 32767).astype(np.int16)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "10"})
        v.width, v.height, v.pix_fmt = *SIZE, "yuv420p"
        a = out.add_stream("pcm_s16le", rate=rate)
        a.layout = "stereo"
        for i in range(frames):
            level = 255 if i in FLASHES else 40
            frame = av.VideoFrame.from_ndarray(np.full((SIZE[1], SIZE[0], 3), level, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        for start in range(0, pcm.shape[1], rate // 50):  # 20 ms: exact in Matroska's milliseconds
            chunk = np.ascontiguousarray(pcm[:, start:start + rate // 50].T).reshape(1, -1)
            af = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
            af.sample_rate, af.time_base = rate, Fraction(1, rate)
            af.pts = start + round(audio_start * rate)
            out.mux(a.encode(af))
        out.mux(v.encode(None))
        out.mux(a.encode(None))


def flash_times(path: Path) -> list[float]:
    """Presentation time of the brightest frame near each expected flash."""
    with av.open(str(path)) as c:
        frames = [(float(f.pts * f.time_base), float(f.to_ndarray(format="gray").mean())) for f in c.decode(video=0)]
    times = []
    for k in FLASHES:
        near = frames[max(0, k - 4):k + 5]
        times.append(max(near, key=lambda tv: tv[1])[0])
    return times


def decoded_audio(path: Path) -> tuple[np.ndarray, float, int]:
    """(left channel as floats, time of its first sample, sample rate) as the decoder hands them out."""
    with av.open(str(path)) as c:
        chunks, start, rate, expect = [], None, 0, None
        for f in c.decode(audio=0):
            a = f.to_ndarray()
            left = a[0] if f.format.is_planar else a.reshape(-1, len(f.layout.channels))[:, 0]
            t = float(f.pts * f.time_base)
            if start is None:
                start, rate = t, f.sample_rate
            else:
                assert abs(t - expect) < 0.001, f"{path.name}: audio gap at {t:.4f} s"
            chunks.append(left.astype(float) / (32768 if left.dtype == np.int16 else 1))
            expect = t + f.samples / f.sample_rate
    assert start is not None, f"{path.name}: no audio decoded"
    return np.concatenate(chunks), start, rate


def click_times(x: np.ndarray, start: float, rate: int, near: list[float]) -> list[float]:
    """The start time of the click closest to each of ``near``, by cross-correlation with the burst (sub-sample)."""
    b = burst(rate)
    score = np.correlate(x, b, "valid")
    times = []
    for t in near:
        lo = max(0, int((t - start - 0.05) * rate))
        k = lo + int(np.argmax(score[lo:int((t - start + 0.05) * rate)]))
        y0, y1, y2 = score[k - 1:k + 2]
        times.append(start + (k + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)) / rate)
    return times


def offsets(path: Path) -> list[float]:
    """Click minus flash, seconds, for every flash of ``path``."""
    flashes = flash_times(path)
    clicks = click_times(*decoded_audio(path), flashes)
    return [c - f for c, f in zip(clicks, flashes)]


@pytest.fixture(scope="module")
def sync_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sync") / "flash.mkv"
    write_sync_clip(path)
    return path


def test_the_source_itself_is_in_sync(sync_clip: Path) -> None:
    assert max(map(abs, offsets(sync_clip))) < 1e-5


CHEAP = ["--set", "encode.preset=ultrafast"]
CASES = {
    "copy-mkv": ("copy", ".mkv", []),                # PCM stream-copied
    "copy-mp4": ("copy", ".mp4", []),                # PCM re-encoded to AAC (priming in the edit list)
    "copy-webm": ("copy", ".webm", ["--set", "encode.codec=libsvtav1", "--set", "encode.preset=12",
                                     "--set", "encode.crf=40"]),  # Opus
    "restore_classic": ("restore_classic", ".mp4", ["--set", "smooth.window=5"]),
    "restore_full": ("restore_full", ".mp4", ["--set", "restore.batch=4", "--set", "restore.device=cpu"]),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", list(CASES))
def test_click_and_flash_stay_within_a_millisecond(sync_clip: Path, tmp_path: Path, case: str) -> None:
    graph, suffix, extra = CASES[case]
    out = tmp_path / f"out{suffix}"
    preset = [] if case == "copy-webm" else CHEAP
    assert main(["run", str(REPO / "graphs" / f"{graph}.yaml"), "-i", str(sync_clip), "-o", str(out), "-q",
                 *preset, *extra]) == 0
    got = offsets(out)
    assert max(map(abs, got)) < TOLERANCE, f"{case}: click-flash offsets {[round(o * 1000, 3) for o in got]} ms"


@pytest.mark.parametrize("rate", [32_000, 44_100, 48_000])
def test_audio_clean_adds_no_delay(tmp_path: Path, rate: int) -> None:
    """The whole default chain, straight through the filter: every click comes out where it went in, also in the
    last 3 s (loudnorm's look-ahead, which FFmpeg flushes stamped 1600 samples late)."""
    path = tmp_path / "a.wav"
    clicks = (0.5, 2.1, 4.4)
    x = soundtrack(rate, 5.0, clicks)
    pcm = np.round(np.stack([x, x]) * 32767).astype(np.int16)
    with av.open(str(path), "w") as out:
        a = out.add_stream("pcm_s16le", rate=rate)
        a.layout = "stereo"
        for start in range(0, pcm.shape[1], 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, start:start + 1024].T).reshape(1, -1),
                                            format="s16", layout="stereo")
            af.sample_rate, af.pts, af.time_base = rate, start, Fraction(1, rate)
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        filt = AudioFilter(stream, AudioClean(hum=50).chain(rate))
        frames = [o for f in [*c.decode(stream), None] for o in filt.push(f)]
    y = np.concatenate([f.to_ndarray()[0] if f.format.is_planar else f.to_ndarray().reshape(-1, 2)[:, 0]
                        for f in frames]).astype(float)
    assert y.size == x.size and frames[0].pts == 0
    ends = [f.pts + f.samples for f in frames[:-1]]
    assert [f.pts for f in frames[1:]] == ends, "the cleaned sound has a timestamp gap"
    got = click_times(y, 0.0, frames[0].sample_rate, list(clicks))
    assert max(abs(g - c) for g, c in zip(got, clicks)) < 1e-4, f"clicks moved: {got}"


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_aac_priming_is_never_played_before_a_late_soundtrack(tmp_path: Path, suffix: str) -> None:
    """A soundtrack that starts 0.25 s in, re-encoded to AAC: its clicks stay in sync, and the encoder's 1024
    priming samples are skipped (the edit list skips them only for a track starting at 0: the sound is led
    by digital silence from 0, never by the priming, which made it start 21 ms early)."""
    src, out = tmp_path / "late.mkv", tmp_path / f"out{suffix}"
    write_sync_clip(src, audio_start=0.25)
    assert main(["run", str(REPO / "graphs" / "copy.yaml"), "-i", str(src), "-o", str(out), "-q", *CHEAP]) == 0
    assert max(map(abs, offsets(out))) < TOLERANCE
    with av.open(str(out)) as c:
        frames = [f for f in c.decode(audio=0)]
    assert float(frames[0].pts * frames[0].time_base) == 0.0
    # up to the codec's own pre-echo (one 1024-sample transform before the tone starts): digital silence
    lead = np.concatenate([f.to_ndarray() for f in frames], axis=1)[:, : int(0.2 * frames[0].sample_rate)]
    assert np.abs(lead).max() < 1e-5, "something plays before the soundtrack starts"
