"""Helpers of the end-to-end tests: the real clips, facts read back from media files, synthetic clips, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import av
import numpy as np

from vflow.media.color import color_of, from_rgb
from vflow.pipeline.frames import RANGE_PC, ColorInfo

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
VIDEO_DIR = DATA / "video"
SAMPLE_FRAMES = (0, 7, 60, 200)  # frames compared pixel by pixel (those a clip has)

# H.273 matrix code point -> (Kr, Kb)
_KR_KB = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114)}


def video_clips() -> list[Path]:
    """Every clip of ../shared/data/video/ (empty when the shared data is missing)."""
    return sorted(p for p in VIDEO_DIR.iterdir() if p.is_file()) if VIDEO_DIR.is_dir() else []


@dataclass
class AudioFacts:
    codec: str
    sample_rate: int
    channels: int
    first_time: Fraction | None = None  # pts of the first packet, in seconds
    end_time: Fraction | None = None    # pts + duration of the last packet, in seconds


@dataclass
class VideoFacts:
    """What PyAV decodes from a file: every frame's time, the first frame's tags, a few RGB frames."""

    width: int
    height: int
    times: list[Fraction | None]          # pts * time_base of each frame, presentation order
    frame_duration: Fraction | None        # of the first frame, in seconds
    tags: tuple[int, int, int, int]        # raw (colorspace, color_range, primaries, trc) of the first frame
    color: ColorInfo                       # the same, resolved as players do (vflow.media.color.color_of)
    rotation: int                          # PyAV's frame.rotation (degrees counterclockwise)
    pix_fmt: str
    samples: dict[int, np.ndarray] = field(default_factory=dict)
    audio: list[AudioFacts] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return len(self.times)


def read_facts(path: Path, sample: Iterable[int] = SAMPLE_FRAMES, exact_rgb: bool = False) -> VideoFacts:
    """Decode every video frame of ``path``; ``sample`` frames become RGB (``exact_rgb``: PyAV's rgb24, else
    the independent reference conversion with the frame's resolved matrix and range)."""
    wanted = set(sample)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        audio = [AudioFacts(a.codec_context.name, a.codec_context.sample_rate, a.codec_context.channels)
                 for a in c.streams.audio]
        index = {a.index: i for i, a in enumerate(c.streams.audio)}
        times: list[Fraction | None] = []
        first: av.VideoFrame | None = None
        samples: dict[int, np.ndarray] = {}
        for packet in c.demux(v, *c.streams.audio):
            if packet.stream.type == "audio":
                facts = audio[index[packet.stream.index]]
                if packet.pts is not None:
                    start = packet.pts * Fraction(packet.time_base)
                    facts.first_time = start if facts.first_time is None else facts.first_time
                    facts.end_time = start + (packet.duration or 0) * Fraction(packet.time_base)
                continue
            for frame in packet.decode():
                first = first or frame
                times.append(None if frame.pts is None else frame.pts * Fraction(frame.time_base))
                if len(times) - 1 in wanted:
                    samples[len(times) - 1] = frame.to_ndarray(format="rgb24") if exact_rgb else reference_rgb(frame)
    assert first is not None, f"{path}: no video frame decoded"
    duration = first.duration * Fraction(first.time_base) if first.duration and first.time_base else None
    tags = (first.colorspace, first.color_range, first.color_primaries, first.color_trc)
    return VideoFacts(first.width, first.height, times, duration, tags, color_of(first), int(first.rotation or 0),
                      first.format.name, samples, audio)


def _plane(frame: av.VideoFrame, i: int) -> np.ndarray:
    p = frame.planes[i]
    return np.frombuffer(memoryview(p), np.uint8).reshape(p.height, p.line_size)[:, :p.width]


def _upsample(c: np.ndarray, h: int, w: int, cosited_x: bool) -> np.ndarray:
    """Bilinear chroma upsampling in numpy, chroma sited on the first luma column of its group (MPEG-2 'left')
    or centred (JPEG), centred vertically: an independent check of vflow's kernel."""
    def axis(n_out: int, n_in: int, cosited: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = n_out // n_in if n_out >= n_in else 1
        i = np.arange(n_out, dtype=np.float64)
        pos = i / k if (cosited or k == 1) else (i + 0.5) / k - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), pos - lo
    c = c.astype(np.float64)
    y0, y1, wy = axis(h, c.shape[0], False)
    rows = c[y0] * (1 - wy)[:, None] + c[y1] * wy[:, None]
    x0, x1, wx = axis(w, c.shape[1], cosited_x)
    return rows[:, x0] * (1 - wx) + rows[:, x1] * wx


def reference_rgb(frame: av.VideoFrame) -> np.ndarray:
    """8-bit planar YUV -> RGB in numpy, with the frame's resolved matrix and range (not vflow's or swscale's code)."""
    color = color_of(frame)
    y = _plane(frame, 0).astype(np.float64)
    h, w = y.shape
    cosited = not frame.format.name.startswith("yuvj")
    u, v = (_upsample(c, h, w, cosited) - 128 for c in (_plane(frame, 1), _plane(frame, 2)))
    if color.range != RANGE_PC:
        y = (y - 16) * 255 / 219
        u, v = u * 255 / 224, v * 255 / 224
    kr, kb = _KR_KB[color.matrix]
    kg = 1 - kr - kb
    r = y + 2 * (1 - kr) * v
    b = y + 2 * (1 - kb) * u
    g = y - (2 * kb * (1 - kb) / kg) * u - (2 * kr * (1 - kr) / kg) * v
    return np.clip(np.floor(np.stack([r, g, b], -1) + 0.5), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def pattern_frames(n: int, width: int, height: int) -> np.ndarray:
    """``(n, H, W, 3)`` uint8 RGB: smooth saturated gradients and a moving magenta square (survive lossy codecs)."""
    y, x = np.mgrid[0:height, 0:width]
    out = np.empty((n, height, width, 3), np.uint8)
    for t in range(n):
        out[t, ..., 0] = x * 255 // max(1, width - 1)
        out[t, ..., 1] = y * 255 // max(1, height - 1)
        out[t, ..., 2] = (255 - x * 255 // max(1, width - 1) + 8 * t) % 256
        sx, sy = (4 * t) % max(1, width - 16), (2 * t) % max(1, height - 16)
        out[t, sy:sy + 16, sx:sx + 16] = (230, 20, 220)
    return out


def write_clip(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48), rate: int = 25,
               codec: str = "libx264", pix_fmt: str = "yuv420p", times: Sequence[Fraction] | None = None,
               time_base: Fraction | None = None, color: ColorInfo | None = None, rotation: int = 0) -> np.ndarray:
    """Write a small synthetic clip with PyAV and return the RGB frames that went in, ``(N, H, W, 3)``.

    ``times`` (seconds) gives irregular pts (VFR); ``color`` is both tagged and used for RGB->YUV;
    ``rotation`` is display-matrix rotation (degrees counterclockwise, as ``frame.rotation`` reads it).
    """
    width, height = size
    rgb = pattern_frames(frames, width, height)
    tb = time_base or Fraction(1, rate)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = stream.codec_context.time_base = tb
        if color is not None:
            cc = stream.codec_context
            cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = \
                color.matrix, color.range, color.primaries, color.transfer
        if rotation:
            stream.set_display_rotation(rotation)
        for i, image in enumerate(rgb):
            frame = from_rgb(image, pix_fmt, color or ColorInfo().resolved(height))
            frame.pts = int((times[i] if times else Fraction(i, rate)) / tb)
            frame.time_base = tb
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return rgb


def run_cli(args: Sequence[str], env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m vflow ARGS`` in a subprocess (the real entry point: exit code, stderr, no traceback)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "vflow", *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout)
