"""audio_clean: FFmpeg's audio filters on the audio port, in sync with the video."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import vflow
from vflow.pipeline.frames import AudioChunk, AudioInfo
from vflow.stages.audio_clean import AudioClean
from vflow.testing import check_stage_contract

RATE = 48_000
SAMPLE = Path(vflow.__file__).parent / "data" / "sample.mp4"


def _tone(seconds: float, seed: int = 0) -> np.ndarray:
    """A 1 kHz tone with 60 Hz mains hum and hiss, stereo int16 (2, n)."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * 1000 * t) + 0.2 * np.sin(2 * np.pi * 60 * t) + 0.02 * rng.standard_normal(t.size)
    return np.round(np.stack([x, x]) * 32767).astype(np.int16)


@pytest.fixture(scope="module")
def hum_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of tiny video with a PCM soundtrack that hums at 60 Hz, audio starting 0.25 s in."""
    path = tmp_path_factory.mktemp("audio") / "hum.mkv"
    samples = _tone(2.0)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("pcm_s16le", rate=RATE)
        a.layout = "stereo"
        for i in range(50):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        for start in range(0, samples.shape[1], 1024):
            af = av.AudioFrame.from_ndarray(samples[:, start:start + 1024].reshape(1, -1), format="s16",
                                            layout="stereo")
            af.sample_rate, af.pts, af.time_base = RATE, start + RATE // 4, Fraction(1, RATE)
            out.mux(a.encode(af))
        out.mux(v.encode(None))
        out.mux(a.encode(None))
    return path


def _chunks(path: Path) -> tuple[AudioInfo, list[AudioChunk], av.container.InputContainer]:
    c = av.open(str(path))
    stream = c.streams.audio[0]
    chunks = [AudioChunk(stream=0, time_base=Fraction(stream.time_base), packets=(p,))
              for p in c.demux(stream) if p.size]
    return AudioInfo(streams=(stream,)), chunks, c


def _left(frame: av.AudioFrame) -> np.ndarray:
    a = frame.to_ndarray()
    return a[0] if frame.format.is_planar else a.reshape(-1, len(frame.layout.channels))[:, 0]


def _samples(chunks: list[AudioChunk]) -> np.ndarray:
    """The left channel of every frame, as floats."""
    return np.concatenate([_left(f) for c in chunks for f in c.frames]).astype(float)


def _band(x: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    freqs = np.fft.rfftfreq(x.size, 1 / RATE)
    return float(spectrum[np.abs(freqs - hz) < 3].max())


def test_contract_and_hum_removed_tone_kept(hum_clip: Path) -> None:
    info, chunks, container = _chunks(hum_clip)
    with container:
        out = check_stage_contract(lambda: AudioClean(hum=60, loudnorm=False, denoise=0, declick=False),
                                   audio=info, audio_chunks=chunks)
    before = _samples([AudioChunk(0, c.time_base, frames=tuple(f for p in c.packets for f in p.decode()))
                       for c in _chunks(hum_clip)[1]])
    after = _samples(out)
    n = min(before.size, after.size)
    mid = slice(RATE // 2, n - RATE // 2)  # away from the filters' start-up
    hum_drop = 20 * np.log10(_band(before[mid], 60) / _band(after[mid], 60))
    tone_change = 20 * np.log10(_band(after[mid], 1000) / _band(before[mid], 1000))
    assert hum_drop > 20, f"60 Hz hum only {hum_drop:.1f} dB lower"
    assert abs(tone_change) < 1.0, f"1 kHz tone changed by {tone_change:.2f} dB"


def test_timestamps_are_kept(hum_clip: Path) -> None:
    info, chunks, container = _chunks(hum_clip)
    with container:
        out = check_stage_contract(lambda: AudioClean(hum=50), audio=info, audio_chunks=chunks)
    assert out[0].seconds() == pytest.approx(0.25, abs=1e-6)
    total = sum(f.samples for c in out for f in c.frames)
    assert total == pytest.approx(2 * RATE, rel=0.01)


def test_bad_hum_frequency_is_refused() -> None:
    with pytest.raises(ValueError, match="hum must be 0"):
        AudioClean(hum=55)


@pytest.mark.timeout(120)
def test_cleaned_audio_is_encoded_in_sync(tmp_path: Path) -> None:
    graph = {"stages": {"decode": {"type": "decode", "params": {"path": str(SAMPLE)}},
                        "audio": {"type": "audio_clean", "params": {"hum": 60}},
                        "encode": {"type": "encode", "params": {"path": str(tmp_path / "o.mp4"), "preset": "ultrafast"}}},
             "edges": ["decode.video -> encode.video", "decode.audio -> audio -> encode.audio"]}
    vflow.Pipeline.load(graph).run()
    with av.open(str(SAMPLE)) as src, av.open(str(tmp_path / "o.mp4")) as out:
        assert out.streams.audio[0].codec_context.name == "aac"
        first_in = next(src.decode(audio=0))
        start = float(first_in.pts * first_in.time_base)
        # AAC into MP4 starts at 0, silent up to the source's first sample: only then does the muxer's edit
        # list skip the encoder's 1024 priming samples (otherwise they play, and the sound starts 21 ms early)
        frames = list(out.decode(audio=0))
        assert start > 0.04 and float(frames[0].pts * frames[0].time_base) == 0.0
        lead = [f for f in frames if float(f.pts * f.time_base) + f.samples / f.sample_rate <= start]
        assert lead and all(np.abs(f.to_ndarray()).max() < 1e-4 for f in lead)
    with av.open(str(tmp_path / "o.mp4")) as out:
        assert sum(1 for _ in out.decode(video=0)) == 135
