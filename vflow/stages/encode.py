"""encode: write frame batches (and the audio) to a file with PyAV, atomically, keeping pts and colours."""

from __future__ import annotations

import io
import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np

from ..media.audio import EncoderInput, decoder_for, encoder_rate, ordered, silent_frame
from ..media.color import PLANAR, bits_of, from_rgb, subsampling
from ..media.hdr import CARRIERS, encoder_params
from ..media.probe import OUTPUT_FORMATS, MediaError
from ..pipeline.frames import HDR_TRANSFERS, AudioChunk, AudioInfo, ColorInfo, FrameBatch, VideoInfo
from ..pipeline.outputs import PartialFile, check_writable
from ..pipeline.registry import stage
from ..pipeline.stage import Stage, StageContext

Codec = Literal["libx264", "libx265", "libsvtav1", "ffv1", "prores_ks"]

# codec -> (default crf, default preset, pix_fmt for sources with no chroma format to keep, fixed options)
_CODECS: dict[str, tuple[int | None, str | None, str, dict[str, str]]] = {
    "libx264": (18, "medium", "yuv420p", {}),
    "libx265": (20, "medium", "yuv420p", {"x265-params": "log-level=error"}),
    "libsvtav1": (30, "8", "yuv420p", {}),
    "ffv1": (None, None, "bgr0", {"level": "3", "slicecrc": "1"}),  # ffv1 takes no 8-bit gbrp
    "prores_ks": (None, None, "yuv422p10le", {}),
}
_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                 "placebo")
_PRORES_PROFILES = {"yuv422p10le": "3", "yuv444p10le": "4", "yuva444p10le": "4"}  # HQ, 4444
_FIELD_ORDERS = {"tff": 2, "bff": 3, "tb": 4, "bt": 5}  # AVFieldOrder
_INTERLACED_FLAGS = 0x40000 | 0x20000000  # AV_CODEC_FLAG_INTERLACED_DCT | AV_CODEC_FLAG_INTERLACED_ME
# the smallest frames an encoder takes: libx265 (PyAV's FFmpeg) corrupts its heap below 64x64 (42x18, 300x17,
# 16x17 ... abort the process), so sizes are checked before any trial encode
_MIN_SIZE = {"libx265": 64, "libsvtav1": 4}
_PLAYABLE_ONLY = ("mp4", "mov")  # containers whose players take no PCM (MP4 would write it as 'ipcm')


def _audio_fallback(container: str) -> str:
    """The encoder ``audio_codec: auto`` uses when the source audio is not copied: Opus for WebM, else AAC."""
    if container == "webm":
        return "libopus" if "libopus" in av.codecs_available else "opus"
    return "aac"


@stage("encode")
class Encode(Stage):
    """Encode frames to a file (x264, x265, SVT-AV1, FFV1 lossless, ProRes) and mux the audio in sync.

    Each frame keeps its pts and time base (VFR in, VFR out); the stream's colour matrix, range,
    primaries and transfer are used for RGB->YUV and tagged on the output. With no ``pix_fmt`` the output
    keeps the source's bit depth and chroma format where the codec can hold them (a 10-bit 4:2:2 capture
    stays 10-bit 4:2:2; FFV1 writes 8-bit sources as lossless RGB), and an HDR source's mastering display
    and light levels go with x265 and SVT-AV1. Audio is stream-copied
    (``audio_codec: auto`` falls back to AAC when the container cannot hold the source codec). The
    file is written as ``NAME.partial`` and renamed only when complete; a failed run removes it.
    ``audio_only: true`` writes the audio alone, with no video input (the chunked backends' audio pass).

    ```yaml
    encode: {type: encode, params: {path: "${output}", codec: libx264, crf: 16, preset: slow}}
    ```
    """

    inputs = {"video": FrameBatch, "audio": AudioChunk}
    outputs: dict[str, type] = {}
    optional_inputs = frozenset({"video", "audio"})
    depths = frozenset({8, 16})

    def __init__(self, path: str, codec: Codec = "libx264", crf: int | None = None, preset: str | None = None,
                 pix_fmt: str | None = None, threads: int = 0, audio_codec: str = "auto",
                 audio_bitrate: int = 192_000, audio_only: bool = False):
        default_crf, default_preset, default_fmt, fixed = _CODECS[codec]
        if crf is not None and default_crf is None:
            raise ValueError(f"crf does not apply to {codec}")
        if preset is not None and default_preset is None:
            raise ValueError(f"preset does not apply to {codec}")
        if preset is not None and codec == "libsvtav1" and not (preset.isdigit() and 0 <= int(preset) <= 13):
            raise ValueError(f"preset '{preset}' is not an SVT-AV1 preset: use 0 (slowest, best) to 13 (fastest)")
        if preset is not None and codec in ("libx264", "libx265") and preset not in _X26X_PRESETS:
            raise ValueError(f"preset '{preset}' is not an x264/x265 preset: use one of {', '.join(_X26X_PRESETS)}")
        top = {"libx264": 51, "libx265": 51, "libsvtav1": 63}.get(codec, 0)
        if crf is not None and not 0 <= crf <= top:
            raise ValueError(f"crf {crf} is out of range for {codec}: use 0 to {top} (lower is better quality)")
        self.path = Path(path)
        self.codec, self.threads = codec, threads
        self.asked_fmt = pix_fmt
        self.pix_fmt = pix_fmt or default_fmt   # until setup knows the source
        self.options = dict(fixed)
        if default_crf is not None:
            self.options["crf"] = str(crf if crf is not None else default_crf)
        if default_preset is not None:
            self.options["preset"] = preset or default_preset
        self.audio_codec, self.audio_bitrate, self.audio_only = audio_codec, audio_bitrate, audio_only
        self.target = PartialFile(self.path)
        self._out: av.container.OutputContainer | None = None
        self._frames = 0

    # -- build time ----------------------------------------------------------------------------
    def setup(self, ctx: StageContext) -> None:
        self.format = OUTPUT_FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise MediaError(f"output '{self.path}': unknown container extension '{self.path.suffix}'; "
                             f"use one of {', '.join(OUTPUT_FORMATS)}")
        if self.path.is_dir():
            raise MediaError(f"output '{self.path}' is a directory")
        check_writable(self.path.parent)
        audio = ctx.inputs.get("audio")
        if ("video" in ctx.inputs) == self.audio_only:
            raise MediaError("audio_only: true takes no video input" if self.audio_only else
                             "input port 'video' is not connected (dangling input); audio_only: true writes the "
                             "audio alone")
        if self.audio_only:
            if not isinstance(audio, AudioInfo) or not audio.streams:
                raise MediaError(f"output '{self.path}': nothing to write (no video input, no audio stream)")
            self.video = None
            self.audio_templates = audio.streams
            self.copy_audio = [not audio.decoded and self._audio_copy_ok(t) for t in self.audio_templates]
            self._trial()
            return None
        self.video: VideoInfo | None = ctx.inputs["video"]  # type: ignore[assignment]
        self._formats(self.video, ctx)
        self.audio_templates = audio.streams if isinstance(audio, AudioInfo) else ()
        decoded = isinstance(audio, AudioInfo) and audio.decoded
        self.copy_audio = [not decoded and self._audio_copy_ok(t) for t in self.audio_templates]
        self.color = ColorInfo(0, 2, self.video.color.primaries, self.video.color.transfer) \
            if self.pix_fmt.startswith(("gbr", "bgr", "rgb")) else self.video.color
        least = _MIN_SIZE.get(self.codec, 1)
        if min(self.video.width, self.video.height) < least:
            raise MediaError(f"output '{self.path}': {self.codec} needs frames of at least {least}x{least} (got "
                             f"{self.video.width}x{self.video.height}): pad them, or use codec: libx264 "
                             f"(pix_fmt: yuv444p takes any size)")
        try:  # everything the real file will do, into memory: codec/container/size problems show now
            self._trial()
        except (av.FFmpegError, ValueError) as e:
            if (why := _size_hint(self.pix_fmt, self.video.width, self.video.height)) is not None:
                raise MediaError(f"output '{self.path}': {why}") from None
            audio = "".join(f", {t.codec_context.name} audio " + ("copied" if copy else f"as {self._audio_encoder_name()}")
                            for t, copy in zip(self.audio_templates, self.copy_audio))
            raise MediaError(f"output '{self.path}': {self.codec} with {self.pix_fmt} at "
                             f"{self.video.width}x{self.video.height}{audio} in {self.format} is not possible ({e})") from None
        return None

    def _formats(self, v: VideoInfo, ctx: StageContext) -> None:
        """The pixel format (the source's depth and chroma unless ``pix_fmt`` says), ProRes' profile for it,
        and the HDR metadata as the encoder's params."""
        if self.asked_fmt is None:
            self.pix_fmt, lost = keeping_format(self.codec, v.pix_fmt, v.depth)
            if lost:
                ctx.warn(f"{self.codec} cannot hold the source's {v.pix_fmt}: written as {self.pix_fmt} ({lost})")
            if self.codec == "libx264" and self.pix_fmt != "yuv420p":
                ctx.warn(f"H.264 in {self.pix_fmt} (kept from the source) plays in VLC, mpv and editors but not in "
                         f"most browsers, phones and TVs: --set encode.pix_fmt=yuv420p writes one that plays "
                         f"everywhere")
        if self.codec == "prores_ks":
            self.options.setdefault("profile", _PRORES_PROFILES.get(self.pix_fmt, "3"))
        if v.color.hdr and bits_of(self.pix_fmt) == 8:
            ctx.warn(f"an 8-bit {self.pix_fmt} output of an HDR ({HDR_TRANSFERS[v.color.transfer]}) source bands "
                     f"in smooth gradients: a 10-bit pix_fmt keeps it")
        if v.hdr is not None and v.color.hdr:
            if self.codec in CARRIERS:
                key = "x265-params" if self.codec == "libx265" else "svtav1-params"
                extra = encoder_params(self.codec, v.hdr)
                self.options[key] = ":".join(p for p in (self.options.get(key), extra) if p)
            else:
                ctx.warn(f"{self.codec} does not carry the source's HDR mastering display and light levels "
                         f"(libx265 and libsvtav1 do); players fall back to their defaults")

    def describe(self) -> str:
        """What the file will hold, after setup: ``out.mkv: libx265 yuv420p10le (source yuv420p10le, 16-bit
        frames), HDR PQ with mastering metadata``."""
        v = self.video
        if v is None:
            return f"{self.path}: audio only"
        source = f"source {v.pix_fmt}, " if v.pix_fmt else ""
        text = f"{self.path}: {self.codec} {self.pix_fmt} {v.width}x{v.height} ({source}{v.depth}-bit frames)"
        if v.color.hdr:
            text += f", HDR {HDR_TRANSFERS[v.color.transfer].split()[0]}"
            if v.hdr is not None:
                text += " with mastering metadata" if self.codec in CARRIERS else " (its mastering metadata dropped)"
        return text

    def _trial(self) -> None:
        """What the run does, into memory: the real encoders and layouts, a black frame, a silent audio frame
        (or packet, when copied) per stream, the flushes and the trailer (where MP4 writes its index)."""
        out = self._open(io.BytesIO())
        try:
            if (v := self.video) is not None:
                step = 1 / (v.frame_rate or Fraction(25)) / v.time_base
                black = from_rgb(np.zeros((v.height, v.width, 3), np.uint8 if v.depth == 8 else np.uint16),
                                 self.pix_fmt, self.color)
                for i in range(4):  # x265 muxes one or two frames flakily into MP4 ('patches welcome'), never four
                    black.pts, black.time_base = round(i * step), v.time_base
                    out.mux(self._vstream.encode(black))
                out.mux(self._vstream.encode(None))
            for template, stream, feed in zip(self.audio_templates, self._astreams, self._feeds):
                if feed is None:
                    for packet in _trial_packets(template):
                        packet.stream = stream
                        out.mux(packet)
                    continue
                src = template.codec_context
                for frame in [silent_frame(src.sample_rate, src.layout, src.format.name), None]:
                    for ready in feed.push(frame):
                        out.mux(stream.encode(ready))
                out.mux(stream.encode(None))
        finally:
            out.close()

    def _audio_copy_ok(self, template: Any) -> bool:
        if self.audio_codec not in ("auto", "copy"):
            return False
        pcm = template.codec_context.name.startswith("pcm_")
        if self.audio_codec == "auto" and pcm and self.format in _PLAYABLE_ONLY:
            return False
        try:  # a packet and the trailer too: MP4 refuses some PCM layouts only when it writes the index
            out = av.open(io.BytesIO(), "w", format=self.format)
            stream = out.add_stream_from_template(template)
            out.start_encoding()
            for packet in _trial_packets(template):
                packet.stream = stream
                out.mux(packet)
            out.close()
            return True
        except (av.FFmpegError, ValueError) as e:
            if self.audio_codec == "copy":
                raise MediaError(f"output '{self.path}': cannot copy {template.codec_context.name} audio into "
                                 f"{self.format} ({e}); use audio_codec: auto or an encoder name") from None
            return False

    def _open(self, target: Any) -> av.container.OutputContainer:
        v = self.video
        options = {"movie_timescale": str(self._movie_timescale())} if self.format in ("mp4", "mov") else {}
        out = av.open(target, "w", format=self.format, options=options)
        try:
            if v is not None:
                self._add_video(out, v)
            self._astreams = []
            self._decoders: list[Any] = []
            for template, copy in zip(self.audio_templates, self.copy_audio):
                if copy:
                    self._astreams.append(out.add_stream_from_template(template))
                else:
                    self._astreams.append(self._add_audio_encoder(out, template))
                self._decoders.append(None if copy else decoder_for(template))
            out.start_encoding()
            self._feeds = [None if copy else EncoderInput(a.codec_context, from_zero=self.format in _PLAYABLE_ONLY)
                           for a, copy in zip(self._astreams, self.copy_audio)]
        except BaseException:
            out.close()
            raise
        return out

    def _add_video(self, out: av.container.OutputContainer, v: VideoInfo) -> None:
        """The video stream: the codec and its options, the time base, colours, aspect, tags and chapters."""
        stream = out.add_stream(self.codec, rate=v.frame_rate or Fraction(25), options=dict(self.options))
        stream.width, stream.height, stream.pix_fmt = v.width, v.height, self.pix_fmt
        stream.thread_type, stream.thread_count = "AUTO", self.threads
        cc = stream.codec_context
        cc.time_base = v.time_base
        stream.time_base = v.time_base
        cc.colorspace, cc.color_range = self.color.matrix, self.color.range
        cc.color_primaries, cc.color_trc = self.color.primaries, self.color.transfer
        if v.sample_aspect:
            cc.sample_aspect_ratio = v.sample_aspect
        out.metadata.update(dict(v.tags))
        if v.chapters:
            out.set_chapters(list(v.chapters))
        timecode = dict(v.tags).get("timecode")
        if timecode:  # mov/mp4 write it as a timecode track, others as a tag
            stream.metadata["timecode"] = timecode
        if v.field_order in _FIELD_ORDERS:  # interlaced frames stay interlaced, and say so
            cc.field_order = _FIELD_ORDERS[v.field_order]
            cc.flags |= _INTERLACED_FLAGS
        self._vstream = stream

    def _add_audio_encoder(self, out: av.container.OutputContainer, template: Any) -> Any:
        """An encoder for one audio stream: the source's rate where the codec takes it (Opus: 48 kHz) and
        its layout with the channels named (encoders refuse "2 channels")."""
        src = template.codec_context
        codec = self._audio_encoder_name()
        options = {"strict": "experimental"} if codec == "opus" else {}  # FFmpeg's own Opus encoder
        stream = out.add_stream(codec, rate=encoder_rate(codec, src.sample_rate), options=options)
        stream.layout = ordered(src.layout)
        if codec in ("aac", "libopus", "opus"):
            stream.bit_rate = self.audio_bitrate
        return stream

    def _audio_encoder_name(self) -> str:
        return _audio_fallback(self.format) if self.audio_codec in ("auto", "copy") else self.audio_codec

    def _movie_timescale(self) -> int:
        """mp4/mov edit lists count in this unit: a common multiple of the stream time bases keeps start times
        exact (an encoded stream's is 1/its rate: the AAC priming it skips is 1024 samples, 21.33 ms)."""
        scale = self.video.time_base.denominator if self.video is not None else 1
        for t, copy in zip(self.audio_templates, self.copy_audio):
            rate = encoder_rate(self._audio_encoder_name(), t.codec_context.sample_rate)
            wider = math.lcm(scale, Fraction(t.time_base).denominator if copy else rate)
            if wider < 2**31:
                scale = wider
        return scale

    # -- run time ------------------------------------------------------------------------------
    def process_port(self, port: str, item: Any) -> None:
        if self._out is None:
            self.target.partial.parent.mkdir(parents=True, exist_ok=True)
            self._out = self._open(str(self.target.partial))
        if port == "video":
            self._write_video(item)
        else:
            self._write_audio(item)

    def _write_video(self, batch: FrameBatch) -> None:
        v = self.video
        if (batch.width, batch.height) != (v.width, v.height):
            raise MediaError(f"frames are {batch.width}x{batch.height} but the stream was negotiated as "
                             f"{v.width}x{v.height}")
        assert self._out is not None
        frames = batch.frames.numpy()
        for i in range(len(batch)):
            frame = from_rgb(frames[i], self.pix_fmt, self.color)
            frame.pts, frame.time_base = int(batch.pts[i]), batch.time_base
            self._out.mux(self._vstream.encode(frame))
        self._frames += len(batch)

    def _write_audio(self, chunk: AudioChunk) -> None:
        assert self._out is not None
        stream, decoder = self._astreams[chunk.stream], self._decoders[chunk.stream]
        if chunk.packets and decoder is None:
            for packet in chunk.packets:
                packet.stream = stream
                self._out.mux(packet)
            return
        frames = chunk.frames or [f for p in chunk.packets for f in decoder.decode(p)]
        feed = self._feeds[chunk.stream]
        for frame in frames:
            for ready in feed.push(frame):
                self._out.mux(stream.encode(ready))

    def finish(self) -> None:
        if self._out is None or (self._frames == 0 and self.video is not None):
            what = "video frame" if self.video is not None else "audio"
            raise MediaError(f"no {what} reached the encoder: '{self.path}' not written")
        if self.video is not None:
            self._out.mux(self._vstream.encode(None))
        for stream, decoder, feed in zip(self._astreams, self._decoders, self._feeds):
            if decoder is not None and feed is not None:
                for frame in [*decoder.decode(None), None]:
                    for ready in feed.push(frame):
                        self._out.mux(stream.encode(ready))
                self._out.mux(stream.encode(None))
        self._out.close()
        self._out = None
        self.target.ready()

    def files_written(self) -> list[str]:
        return [str(self.path)]

    def teardown(self, ok: bool) -> None:
        if self._out is not None:
            try:
                self._out.close()
            except (av.FFmpegError, OSError, ValueError):
                pass
            self._out = None
        self.target.close(ok)


def _trial_packets(template: Any) -> list[av.Packet]:
    """Packets of silence in the source stream's codec, for trial muxes (zeros where FFmpeg has no encoder)."""
    src = template.codec_context
    try:
        enc = av.CodecContext.create(src.name, "w")
        enc.sample_rate, enc.layout, enc.time_base = src.sample_rate, src.layout, Fraction(1, src.sample_rate)
        formats = enc.codec.audio_formats or [src.format]
        enc.format = src.format if src.format.name in [f.name for f in formats] else formats[0]
        enc.open()
        feed = EncoderInput(enc)
        frames = feed.push(silent_frame(src.sample_rate, src.layout, samples=enc.frame_size or 1024)) + feed.push(None)
        packets = [p for f in [*frames, None] for p in enc.encode(f)]
    except (av.FFmpegError, ValueError):
        packets = []
    if not packets:
        packet = av.Packet(bytes(1024))
        packet.pts = packet.dts = 0
        packet.time_base, packet.duration = Fraction(1, src.sample_rate or 48_000), 256
        packets = [packet]
    return packets


def keeping_format(codec: str, source: str | None, depth: int) -> tuple[str, str]:
    """The pixel format of ``codec`` that keeps the source's bit depth (of 16-bit frames; 8 for 8-bit ones)
    and chroma subsampling, and what it loses ('' if nothing). A source with no chroma format of its own
    (RGB, grey, unknown) takes the codec's usual chroma; FFV1 keeps 8-bit frames as lossless RGB."""
    usual = _CODECS[codec][2]
    if codec == "ffv1" and depth == 8:
        return usual, ""
    bits = min(bits_of(source), 16) if source and depth == 16 else 8
    kept = subsampling(source) if source else None
    if kept is None:  # RGB, grey, unknown: lossless FFV1 keeps every sample, the others take their usual chroma
        kept = (0, 0) if codec == "ffv1" else (PLANAR[usual].sx, PLANAR[usual].sy)
    sx, sy = kept
    density = 1 / (1 << (sx + sy))   # chroma samples per pixel
    names = [f.name for f in av.codec.Codec(codec, "w").video_formats or []]
    cands = [(n, PLANAR[n]) for n in names if n in PLANAR and not n.startswith("yuvj")]

    def cost(item: tuple[str, Any]) -> tuple[int, int, int, float, int]:
        f = item[1]
        d = 1 / (1 << (f.sx + f.sy))
        return (max(0, bits - f.depth), int(d < density), int((f.sx, f.sy) != (sx, sy)), abs(d - density),
                f.depth - bits)

    name, f = min(cands, key=cost)
    lost = []
    if f.depth < bits:
        lost.append(f"{f.depth}-bit of {bits}")
    if 1 / (1 << (f.sx + f.sy)) < density:
        lost.append("less chroma")
    return name, ", ".join(lost)


def _size_hint(pix_fmt: str, width: int, height: int) -> str | None:
    """Why a trial encode of this size in ``pix_fmt`` may have failed, and the way out; None if the size is fine."""
    planar = PLANAR.get(pix_fmt)
    sx, sy = (planar.sx, planar.sy) if planar is not None else (0, 0)
    steps = {"width": 1 << sx, "height": 1 << sy}  # chroma subsampling: whole chroma samples only
    if width % steps["width"] or height % steps["height"]:
        need = " and ".join(("an even" if k == 2 else f"a multiple-of-{k}") + f" {what}"
                            for what, k in steps.items() if k > 1)
        return f"{pix_fmt} needs {need} (got {width}x{height}): crop or pad the frames, or use pix_fmt: yuv444p"
    return None
