"""Memory stays flat with the video's length: the copy graph peaks the same on 900 and on 9,000 frames.

Runtime: 40 s on 2 cores (the 9,000-frame run is most of it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

COPY_GRAPH = Path(__file__).resolve().parents[1] / "graphs" / "copy.yaml"
WIDTH, HEIGHT, FPS, SAMPLE_RATE = 384, 216, 30, 48000
SHORT, LOOPS = 900, 10
# 5.1 PCM: 576 kB a second, so an engine that kept all of the long clip's audio would hold 173 MB more
# (stereo AAC would be 5 MB, under the noise of a 300 MB process).
AUDIO_LAYOUT = "5.1"
MAX_RATIO = 1.15


def _write_clip(path: Path, frames: int) -> None:
    """A panning grainy texture with a moving block (every frame differs) in H.264, with a PCM tone."""
    rng = np.random.default_rng(0)
    luma = rng.integers(16, 235, size=(HEIGHT // 8, 2 * WIDTH // 8), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    chroma = rng.integers(64, 192, size=(2, HEIGHT // 8, WIDTH // 4), dtype=np.uint8).repeat(4, 1).repeat(4, 2)
    grain = rng.integers(-6, 7, size=(8, HEIGHT, WIDTH), dtype=np.int16)
    samples = SAMPLE_RATE // FPS
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "23"})
        video.width, video.height, video.pix_fmt, video.thread_type = WIDTH, HEIGHT, "yuv420p", "AUTO"
        audio = out.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout=AUDIO_LAYOUT)
        channels = len(audio.layout.channels)
        for i in range(frames):
            x = 3 * i % WIDTH
            y = np.clip(luma[:, x:x + WIDTH] + grain[i % 8], 0, 255).astype(np.uint8)
            bx = 5 * i % (WIDTH - 80)
            y[40:120, bx:bx + 80] = 235
            u, v = (c[:, x // 2:x // 2 + WIDTH // 2].reshape(HEIGHT // 4, WIDTH) for c in chroma)
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, u, v]), format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(video.encode(frame))
            t = (np.arange(samples) + i * samples) / SAMPLE_RATE
            tone = (8000 * np.sin(2 * np.pi * (220 + 5 * (i % 90)) * t)).astype(np.int16)
            sound = av.AudioFrame.from_ndarray(np.repeat(tone, channels)[None], format="s16", layout=AUDIO_LAYOUT)
            sound.sample_rate, sound.pts, sound.time_base = SAMPLE_RATE, i * samples, Fraction(1, SAMPLE_RATE)
            out.mux(audio.encode(sound))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))


def _loop_clip(src: Path, dst: Path, loops: int) -> None:
    """``src`` repeated ``loops`` times by stream copy (timestamps shifted), so the long clip costs no encoding."""
    seconds = Fraction(SHORT, FPS)
    with av.open(str(dst), "w") as out:
        for k in range(loops):
            with av.open(str(src)) as inp:
                if k == 0:
                    streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
                for packet in inp.demux():
                    if packet.dts is None:
                        continue
                    shift = int(k * seconds / packet.time_base)
                    packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                    packet.stream = streams[packet.stream.index]
                    out.mux(packet)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 900-frame and a 9,000-frame 384x216 30 fps clip (30 s and 300 s) with 5.1 PCM audio, in Matroska."""
    folder = tmp_path_factory.mktemp("memory")
    short, long = folder / "short.mkv", folder / "long.mkv"
    _write_clip(short, SHORT)
    _loop_clip(short, long, LOOPS)
    return short, long


def _peak_rss_mb(src: Path, dst: Path) -> float:
    """Run ``python -m vflow run copy.yaml`` in a fresh process; its own peak RSS in MB (from wait4)."""
    with open(dst.with_suffix(".log"), "w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "vflow", "run", str(COPY_GRAPH), "-i", str(src),
                                 "-o", str(dst), "-q"], stdout=log, stderr=subprocess.STDOUT)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
        log.seek(0)
        assert proc.returncode == 0, log.read()
    return usage.ru_maxrss / 1024  # Linux reports kB


def _video_packets(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(video=0) if p.size)


@pytest.mark.timeout(240)
def test_copy_graph_peak_rss_is_flat_from_900_to_9000_frames(clips: tuple[Path, Path], tmp_path: Path) -> None:
    short, long = clips
    peak_short = _peak_rss_mb(short, tmp_path / "short_out.mkv")
    peak_long = _peak_rss_mb(long, tmp_path / "long_out.mkv")
    ratio = peak_long / peak_short
    print(f"\npeak RSS: {SHORT} frames {peak_short:.0f} MB, {SHORT * LOOPS} frames {peak_long:.0f} MB, "
          f"ratio {ratio:.3f}")
    assert _video_packets(tmp_path / "long_out.mkv") == SHORT * LOOPS
    assert ratio <= MAX_RATIO, f"peak RSS grew {ratio:.2f}x from {SHORT} to {SHORT * LOOPS} frames"
