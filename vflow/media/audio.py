"""Audio helpers: decoders made from a source stream's parameters, FFmpeg audio filter chains, and the
conversion of any decoded frames into what an encoder takes."""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from typing import Any

import av
import av.filter
import numpy as np


def ordered(layout: av.AudioLayout) -> av.AudioLayout:
    """``layout``, or for an unordered one ("2 channels": WAV, Matroska and DV PCM) FFmpeg's usual order for
    that channel count (stereo, 5.1, ...): encoders and FFmpeg's per-channel filters need named channels."""
    if not layout.name.endswith("channels"):
        return layout
    try:
        return av.AudioLayout(f"{len(layout.channels)}c")
    except ValueError:
        return layout


def encoder_rate(codec: str, rate: int) -> int:
    """``rate`` if the encoder takes it, else 48 kHz (Opus takes nothing else from 44.1), else its nearest."""
    rates = av.codec.Codec(codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    return 48_000 if 48_000 in rates else min(rates, key=lambda r: abs(r - rate))


def finite(frame: av.AudioFrame) -> av.AudioFrame:
    """Replace NaN/inf samples by silence, in place: loudnorm turns a silent stream shorter than its 3 s
    look-ahead into NaN (an infinite gain), and the AAC encoder refuses NaN with EINVAL."""
    dtype = {"flt": np.float32, "dbl": np.float64}.get(frame.format.name.rstrip("p"))
    if dtype is not None:
        for plane in frame.planes:
            samples = np.frombuffer(plane, dtype)
            if not np.isfinite(samples).all():
                np.nan_to_num(samples, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return frame


def silent_frame(rate: int, layout: av.AudioLayout | str, fmt: str = "s16", samples: int = 1024,
                 pts: int = 0) -> av.AudioFrame:
    """``samples`` of digital silence at ``pts`` (in 1/rate)."""
    frame = av.AudioFrame(format=fmt, layout=layout, samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate, frame.pts, frame.time_base = rate, pts, Fraction(1, rate)
    return frame


def decoder_for(template: Any) -> av.audio.codeccontext.AudioCodecContext:
    """A fresh decoder for packets of ``template`` (a source audio stream), with its codec parameters."""
    src = template.codec_context
    ctx = av.CodecContext.create(_decoder_name(src.name, src.format.name), "r")
    if src.extradata:
        ctx.extradata = src.extradata
    ctx.sample_rate, ctx.layout, ctx.format = src.sample_rate, src.layout, src.format
    return ctx


def _decoder_name(codec: str, sample_format: str) -> str:
    """The decoder FFmpeg probed the stream with: for MP2/MP3 the float one (``mp2float``), which the name
    alone does not pick; the filters downstream were configured for its sample format."""
    for name in (codec, f"{codec}float", f"{codec}_fixed"):
        try:
            formats = av.codec.Codec(name, "r").audio_formats
        except (ValueError, av.FFmpegError):
            continue
        if not formats or sample_format in {f.name for f in formats}:
            return name
    return codec


class AudioFilter:
    """``abuffer -> filters -> abuffersink`` for one stream, for chains that keep the sample count and rate.

    Output sample k is stamped with the time of input sample k (source gaps included): FFmpeg's loudnorm
    stamps its final frame (the 3 s look-ahead it flushes) 1600 samples late, putting the end out of sync.
    """

    def __init__(self, template: Any, chain: list[tuple[str, str]]):
        self.graph = av.filter.Graph()  # the graph must outlive its src/sink handles
        node = self.src = self.graph.add_abuffer(template=template)
        layout = template.codec_context.layout
        if ordered(layout) != layout:
            # an unordered layout: FFmpeg's per-channel filters (biquads) would select no channel and pass
            # the sound through untouched; name the usual order for that channel count
            chain = [("aformat", f"channel_layouts={ordered(layout).name}"), *chain]
        for name, args in chain:
            nxt = self.graph.add(name, args)
            node.link_to(nxt)
            node = nxt
        self.sink = self.graph.add("abuffersink")
        node.link_to(self.sink)
        self.graph.configure()
        self._starts: deque[tuple[int, Fraction, int]] = deque()  # (first sample, seconds, rate) of input frames
        self._pushed = self._pulled = 0

    def push(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
        """Filtered frames out for one frame in (``None`` flushes)."""
        if frame is not None and frame.pts is not None and frame.time_base is not None:
            self._starts.append((self._pushed, frame.pts * Fraction(frame.time_base), frame.sample_rate))
        self._pushed += frame.samples if frame is not None else 0
        self.src.push(frame)
        out = []
        while True:
            try:
                out.append(self._stamp(finite(self.sink.pull())))
            except (BlockingIOError, av.error.EOFError):
                return out

    def _stamp(self, frame: av.AudioFrame) -> av.AudioFrame:
        while len(self._starts) > 1 and self._starts[1][0] <= self._pulled:
            self._starts.popleft()
        if self._starts and frame.time_base is not None:
            first, seconds, rate = self._starts[0]
            frame.pts = round((seconds + Fraction(self._pulled - first, rate)) / Fraction(frame.time_base))
        self._pulled += frame.samples
        return frame


class EncoderInput:
    """Any decoded frames -> what one opened encoder takes: its sample format, (ordered) layout, rate and
    frame size (AAC: fltp, 1024 samples), timestamps kept, NaN turned to silence.

    ``from_zero``: a stream that starts after 0 is preceded by silence from 0. MP4's muxer skips an encoder's
    priming (AAC: 1024 samples) only when the first packet starts before 0; for a later start it plays the
    priming just before the sound, which then starts 21 ms early. From 0, the priming is skipped and every
    sample plays at its own time."""

    def __init__(self, cc: av.audio.codeccontext.AudioCodecContext, from_zero: bool = False):
        variable = cc.codec.capabilities & 0x10000  # AV_CODEC_CAP_VARIABLE_FRAME_SIZE
        self.resampler = av.AudioResampler(format=cc.format, layout=cc.layout, rate=cc.sample_rate,
                                           frame_size=None if variable or not cc.frame_size else cc.frame_size)
        self._from_zero = from_zero

    def push(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
        """Converted frames out for one frame in (``None`` flushes the last, shorter frame)."""
        lead: list[av.AudioFrame] = []
        if frame is not None and frame.pts is not None and frame.time_base is not None:
            # in 1/rate, as the silence is: the resampler counts on from the time base it saw first
            frame.pts = round(frame.pts * Fraction(frame.time_base) * frame.sample_rate)
            frame.time_base = Fraction(1, frame.sample_rate)
        if self._from_zero and frame is not None and frame.pts is not None:
            self._from_zero = False
            gap = frame.pts
            for start in range(0, max(gap, 0), 1 << 16):
                lead += self.resampler.resample(silent_frame(frame.sample_rate, frame.layout, frame.format.name,
                                                             min(1 << 16, gap - start), start))
        return [finite(f) for f in lead + list(self.resampler.resample(frame))]
