"""decode: read any file FFmpeg reads (PyAV), emit RGB ``FrameBatch``es with exact pts and the audio packets."""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any, Iterator, Literal

import av
import numpy as np
import torch

from ..media.color import bits_of, color_of, to_rgb
from ..media.hdr import mastering_of
from ..media.deinterlace import DETECT_FRAMES, CombingWatch, Deinterlacer, Detection, detect
from ..media.probe import MediaError, expected_frames, frame_rate, open_input
from ..media.timestamps import SHOWN, Monotonic, within
from ..pipeline.frames import AudioChunk, AudioInfo, FrameBatch, VideoInfo
from ..pipeline.registry import stage
from ..pipeline.runner import FrameCountError
from ..pipeline.stage import Stage, StageContext, StreamInfo

AUDIO_PACKETS_PER_CHUNK = 32
SEEK_MARGIN = 1.0  # seconds: a ranged decode seeks to the keyframe at least this far before its start


class _PastEnd(Exception):
    """The decoded frames have passed ``decode.end``."""


class _SeekMissed(Exception):
    """A seek landed after ``decode.start``: the frames in between would be lost."""


@stage("decode")
class Decode(Stage):
    """Decode a video file into RGB frame batches (and pass its audio packets on).

    Colours are converted exactly with the stream's matrix, range and chroma siting (untagged: BT.709
    from 720 lines, else BT.601; limited range), rotation metadata is applied, and each frame keeps its
    own pts, so variable frame rate survives. Missing pts (raw .h264) are counted on from the frame
    duration; pts that repeat or jump back (joined camcorder segments) are repaired, with a warning.
    Interlaced video (VHS/DV captures) is deinterlaced with FFmpeg's ``bwdif`` on the decoder's own
    YUV frames: ``deinterlace: auto`` trusts the field-order tag unless FFmpeg's ``idet`` combing
    measurement on the first frames clearly disagrees, and keeps measuring after a progressive start;
    ``deinterlace_rate: field`` gives one frame per field (50i -> 50p) with exact pts. Damaged video is
    skipped and reported, up to ``max_damaged`` (a fraction of the frames below 1, else a count);
    ``stream`` picks the video stream of a file with several. ``start`` and ``end`` (seconds, end excluded,
    null: no bound) take the frames and audio packets whose own timestamps lie in that range, frame-exact:
    decoding starts at a keyframe before ``start``. ``field_order`` overrides the order the tags and
    ``idet`` give (``tags``: each frame's own flags, unmeasured). ``depth`` is the RGB depth of the frames:
    ``auto`` gives 16-bit frames (uint16) when the source has more than 8 bits (10-bit tape captures, HDR
    phone clips), else 8-bit; the source's pixel format and HDR mastering metadata travel on to encode.

    ```yaml
    decode: {type: decode, params: {path: "${input}", batch: 8, deinterlace: auto, deinterlace_rate: field}}
    ```
    """

    inputs: dict[str, type] = {}
    outputs = {"video": FrameBatch, "audio": AudioChunk}

    def __init__(self, path: str, batch: int = 8, threads: int = 0, stream: int = 0,
                 deinterlace: Literal["auto", "off", "on"] = "auto",
                 deinterlace_rate: Literal["frame", "field"] = "frame", max_damaged: float = 0.02,
                 start: float | None = None, end: float | None = None,
                 field_order: Literal["auto", "tff", "bff", "tags"] = "auto", depth: Literal["auto", 8, 16] = "auto"):
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if end is not None and start is not None and end <= start:
            raise ValueError(f"end must be after start (got start {start}, end {end})")
        if max_damaged < 0:
            raise ValueError("max_damaged must be >= 0 (a fraction of the frames below 1, else a count)")
        self.path, self.batch, self.threads, self.stream_index = path, batch, threads, stream
        self.deinterlace, self.deinterlace_rate, self.max_damaged = deinterlace, deinterlace_rate, max_damaged
        self.start, self.end, self.field_order, self.depth = start, end, field_order, depth
        self.detection: Detection | None = None
        self._container: av.container.InputContainer | None = None
        self.decoded = 0    # frames the decoder gave
        self.damaged = 0    # packets it could not decode (skipped)

    def files_read(self) -> list[str]:
        return [self.path]

    def setup(self, ctx: StageContext) -> dict[str, StreamInfo]:
        container = self._container = open_input(self.path)
        self._warn = ctx.warn
        videos = container.streams.video
        if not videos:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
            raise MediaError(f"input file '{self.path}' has no video stream (it holds {kinds}: audio-only?)")
        if self.stream_index >= len(videos):
            raise MediaError(f"input file '{self.path}' has {len(videos)} video stream(s); "
                             f"stream {self.stream_index} does not exist")
        if len(videos) > 1:
            others = ", ".join(f"{i} ({s.codec_context.name} {s.width}x{s.height})"
                               for i, s in enumerate(videos) if i != self.stream_index)
            ctx.warn(f"'{self.path}' has {len(videos)} video streams; only stream {self.stream_index} is "
                     f"restored, video stream(s) {others} are dropped (decode.stream chooses)")
        dropped = [f"{st.type} stream {st.index} ({st.codec_context.name if st.codec_context else '?'})"
                   for st in container.streams if st.type not in ("video", "audio")
                   and not (st.type == "data" and _is_timecode(st))]
        if dropped:  # a timecode track is carried as the timecode tag instead
            ctx.warn(f"'{self.path}': {', '.join(dropped)} not carried to the output")
        video = self._video = videos[self.stream_index]
        video.thread_type = "AUTO"
        video.thread_count = self.threads
        self._audio = list(container.streams.audio) if "audio" in ctx.connected_outputs else []
        self._audio_index = {s.index: i for i, s in enumerate(self._audio)}
        self._audio_pts = {s.index: Monotonic(f"audio stream {i}", Fraction(s.time_base or Fraction(1, 90000)))
                           for i, s in enumerate(self._audio)}
        self._audio_pending: list[Any] = []
        self._tb = Fraction(video.time_base) if video.time_base else Fraction(1, 90000)
        self._damage_notes: list[str] = []
        self._ranged = self.start is not None or self.end is not None
        self._first_time: float | None = None
        self._seeked = self.start is not None and self.start > SEEK_MARGIN
        if self._seeked:
            self._seek(self.start - SEEK_MARGIN)  # type: ignore[operator]
        # the one iterator over decoded frames for the whole run: the first frames (colours, size, interlace
        # detection) are taken from it and emitted first; a second iterator would lose what the first held
        self._source = self._decoded()
        self._want_video = True
        self._pending = self._first_frames(1 if self.deinterlace == "off" else DETECT_FRAMES)
        self._want_video = "video" in ctx.connected_outputs  # else only the audio is read on (an audio job)
        first = self._pending[0]
        self._color = color_of(first)
        self._depth = self.depth if self.depth != "auto" else 16 if bits_of(first.format.name) > 8 else 8
        self._rotation = int(first.rotation or 0) % 360
        self._size, self._size_changes = (first.width, first.height), 0
        w, h = (first.height, first.width) if self._rotation in (90, 270) else (first.width, first.height)

        rate = frame_rate(video)
        self.expected = None if self._ranged else expected_frames(video, rate)
        self._exact_count = bool(video.frames) and not self._ranged
        frames = self.expected
        field_order = _field_order(video, first)
        self._deint: Deinterlacer | None = None
        self._watch: CombingWatch | None = None
        self._deinterlaced = 0  # frames that went through the deinterlacer
        if self.deinterlace != "off":
            self.detection = detect(video, self._pending)
            if self.deinterlace == "on" or self.detection.interlaced:
                order = self.detection.order if self.field_order == "auto" else self.field_order
                self._deint = Deinterlacer(video, order, self.deinterlace_rate)
                field_order = "progressive"
                if self.deinterlace_rate == "field":
                    self._tb, rate, frames = self._deint.time_base, rate and rate * 2, frames and frames * 2
            else:  # auto, progressive so far: keep measuring, and deinterlace from where combing appears
                self._watch = CombingWatch(video)
                for frame in self._pending:
                    self._watch.push(frame)
                if self.deinterlace_rate == "field":  # the field time base, in case the rate doubles later
                    self._tb = Fraction(video.time_base or Fraction(1, 90000)) / 2
        self._step = round(1 / (rate * self._tb)) if rate else 1
        self._next_pts: int | None = None
        self._video_pts = Monotonic("video", self._tb, self._step)
        info = VideoInfo(
            width=w, height=h, time_base=self._tb, frame_rate=rate, color=self._color, frames=frames,
            sample_aspect=Fraction(video.sample_aspect_ratio) if video.sample_aspect_ratio else None,
            field_order=field_order, rotation=self._rotation, tags=_kept_tags(container, video),
            chapters=tuple(container.chapters()), depth=self._depth, pix_fmt=first.format.name,
            hdr=mastering_of(first),
        )
        return {"video": info, "audio": AudioInfo(streams=tuple(self._audio))}

    def context(self) -> tuple[int, int]:
        """bwdif looks at the frame before and after the one it deinterlaces."""
        return (0, 0) if self.deinterlace == "off" else (1, 1)

    @property
    def deinterlacing(self) -> bool:
        """Whether the frames are being deinterlaced (asked, or ``auto`` found combing)."""
        return getattr(self, "_deint", None) is not None

    @property
    def _field_rate(self) -> bool:
        return self.deinterlacing and self.deinterlace_rate == "field"

    def _seek(self, seconds: float) -> None:
        """Start demuxing at the keyframe at or before ``seconds``."""
        assert self._container is not None
        try:
            self._container.seek(int(seconds / self._tb), stream=self._video, backward=True, any_frame=False)
        except av.FFmpegError as e:
            self._warn(f"'{self.path}': cannot seek ({e}); decoding from the start to reach {self.start:.3f} s")
            self._seeked = False
            self._container.seek(0)

    def _keep(self, frame: av.VideoFrame) -> bool:
        """Whether a decoded frame lies in ``start <= t < end``. Raises _PastEnd after the range (frames come
        in presentation order) and _SeekMissed when a seek landed after the start."""
        if frame.pts is None or not frame.time_base:
            raise MediaError(f"input file '{self.path}': a frame without a timestamp after {self.decoded} "
                             f"frames: decode.start/end need timestamped frames")
        t = float(frame.pts * frame.time_base)
        if self._first_time is None:
            self._first_time = t
            if self._seeked and t > self.start:  # type: ignore[operator]
                raise _SeekMissed
        if self.end is not None and t >= self.end:
            raise _PastEnd
        return within(t, self.start, None)

    def _first_frames(self, n: int) -> list[av.VideoFrame]:
        """Up to ``n`` frames from the run's decoded-frame iterator; they are emitted first, later."""
        frames = list(itertools.islice(self._source, n))
        if not frames:
            raise MediaError(f"input file '{self.path}' has a video stream but no frame could be decoded "
                             f"(zero-frame, truncated or damaged video)")
        return frames

    def _packets(self) -> Iterator[av.Packet]:
        """Demuxed packets; a demuxer error is counted as damage and reading goes on where it can."""
        assert self._container is not None
        errors = 0
        while True:
            try:
                for packet in self._container.demux(self._video, *self._audio):
                    errors = 0
                    yield packet
                return
            except av.FFmpegError as e:
                errors += 1
                self._damage(None, e)
                if errors >= 8:  # the demuxer cannot resync: the rest of the file is unreadable
                    self._warn(f"'{self.path}': stopped reading after {errors} demuxer errors in a row ({e})")
                    return

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Decoded video frames in presentation order (those of ``start..end``); audio packets are set aside
        in ``_audio_pending``. A packet the decoder rejects is skipped and counted (``max_damaged``)."""
        try:
            yield from self._decoded_from_here()
        except _PastEnd:
            return
        except _SeekMissed:  # the container's index was imprecise: decode from the start instead
            assert self._container is not None
            self._seeked, self._first_time, self._audio_pending = False, None, []
            self._container.seek(0)
            try:
                yield from self._decoded_from_here()
            except _PastEnd:
                return

    def _decoded_from_here(self) -> Iterator[av.VideoFrame]:
        for packet in self._packets():
            if packet.stream.type == "video":
                if not self._want_video:
                    continue
                try:
                    frames = packet.decode()
                except av.FFmpegError as e:
                    self._damage(packet, e)
                    continue
                for frame in frames:  # one by one: the frames before one past the end are still taken
                    if not self._ranged or self._keep(frame):
                        self.decoded += 1
                        yield frame
            elif packet.size and self._audio_in_range(packet):
                if packet.dts is not None:
                    self._repair_audio(packet)
                self._audio_pending.append(packet)

    def _audio_in_range(self, packet: av.Packet) -> bool:
        if not self._ranged or packet.pts is None or not packet.time_base:
            return True
        return within(float(packet.pts * packet.time_base), self.start, self.end)

    def _repair_audio(self, packet: av.Packet) -> None:
        fix = self._audio_pts[packet.stream.index]
        fix.step = max(fix.step, packet.duration or 1)
        dts = fix(packet.dts)
        if dts != packet.dts:
            shift = dts - packet.dts
            packet.dts = dts
            if packet.pts is not None:
                packet.pts += shift

    def _damage(self, packet: av.Packet | None, error: av.FFmpegError) -> None:
        self.damaged += 1
        at = self._last_damage = f"at {float(packet.pts * packet.time_base):.3f} s" \
            if packet is not None and packet.pts is not None and packet.time_base else f"after frame {self.decoded}"
        if len(self._damage_notes) < SHOWN:
            self._damage_notes.append(f"'{self.path}': damaged video {at} could not be decoded "
                                      f"({getattr(error, 'strerror', None) or error}); skipped")
        total = max(self.expected or 0, self.decoded + self.damaged)
        if (self.max_damaged >= 1 or self.expected) and self.damaged > _limit(self.max_damaged, total):
            self._too_damaged(f"{self.damaged} damaged packet(s) of {total}, the last {at}")  # fail early

    def _too_damaged(self, what: str) -> None:
        raise MediaError(f"input file '{self.path}': {what}, more than decode.max_damaged={self.max_damaged:g} "
                         f"allows (raise it to keep what can be read)")

    def _pictures(self) -> Iterator[av.VideoFrame]:
        """The frames to emit: the decoded ones, deinterlaced when asked or detected (from the start, or for
        ``auto`` from where combing appears)."""
        pending, self._pending = self._pending, []
        for frame in itertools.chain(pending, self._watched(self._source)):
            if self._deint is None:
                yield frame
            else:
                self._deinterlaced += 1
                yield from self._deint.push(frame)
        if self._deint is not None:
            yield from self._deint.push(None)

    def _watched(self, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        """``frames``, measured for combing while ``auto`` has found none."""
        for frame in frames:
            if self._deint is None and self._watch is not None:
                order = self._watch.push(frame)
                if order is not None:
                    self._start_deinterlacing(order, frame)
            yield frame

    def _start_deinterlacing(self, order: str, frame: av.VideoFrame) -> None:
        self._deint = Deinterlacer(self._video, order, self.deinterlace_rate)
        self._watch = None
        at = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else 0.0
        self._warn(f"'{self.path}': combing appeared at {at:.3f} s ({order}) after a progressive start: "
                   f"deinterlaced from there on (decode.deinterlace: on deinterlaces the whole file)")

    def _account(self, emitted: int) -> None:
        """End of stream: warn about damage and truncation, enforce ``max_damaged`` and the frame invariant."""
        if not self._want_video:
            for note in self._damage_notes + [n for f in self._audio_pts.values() for n in f.summary()]:
                self._warn(note)
            return
        notes = self._damage_notes + self._video_pts.summary() + [n for f in self._audio_pts.values()
                                                                  for n in f.summary()]
        if self.damaged > len(self._damage_notes):
            notes.append(f"'{self.path}': {self.damaged} damaged video packet(s) in all were skipped")
        missing = 0
        if self.expected:
            found = self.decoded + self.damaged
            # a count from the header is exact; one from duration x average rate is only an estimate (VFR)
            tolerance = 0 if self._exact_count else max(1, self.expected // 50)
            if found < self.expected - tolerance:
                missing = self.expected - found if self._exact_count else 0
                how = "promises" if self._exact_count else "suggests (duration x frame rate)"
                notes.append(f"'{self.path}' is truncated or damaged: its header {how} {self.expected} frames, "
                             f"{found} were found, the last at {float(self._next_pts or 0) * float(self._tb):.3f} s")
        for note in notes:
            self._warn(note)
        lost, total = self.damaged + missing, max(self.expected or 0, self.decoded + self.damaged)
        if lost > _limit(self.max_damaged, total):
            where = f" (the last damage {self._last_damage})" if self.damaged else \
                f" (none after {float(self._next_pts or 0) * float(self._tb):.3f} s)"
            self._too_damaged(f"{lost} of {total} frames are damaged or missing{where}")
        want = self.decoded + (self._deinterlaced if self._field_rate else 0)
        if emitted != want:
            raise FrameCountError(f"decoded {self.decoded} frames but emitted {emitted} (expected {want})")

    def generate(self) -> Iterator[Any]:
        buf: torch.Tensor | None = None
        pts: list[int] = []
        seq = emitted = 0
        for frame in self._pictures():
            emitted += 1
            at = self._pts_of(frame)
            rgb = self._rgb(frame, at)
            if buf is None:  # each frame is converted straight into its batch: one copy, no np.stack pass
                # numpy's allocator reuses freed batches; torch.empty maps fresh pages (faults, zeroing)
                buf = torch.from_numpy(np.empty((self.batch, *rgb.shape), rgb.dtype))
            buf.numpy()[len(pts)] = rgb  # numpy's copy: torch's OpenMP copy stalls on a busy machine
            pts.append(at)
            if len(pts) == self.batch:
                yield from self._audio_chunks()
                yield "video", self._batch(buf, pts, seq)
                buf, pts, seq = None, [], seq + 1
            elif len(self._audio_pending) >= AUDIO_PACKETS_PER_CHUNK:
                yield from self._audio_chunks()
        if buf is not None:
            yield "video", self._batch(buf[: len(pts)], pts, seq)
        yield from self._audio_chunks()
        self._account(emitted)

    def _rgb(self, frame: av.VideoFrame, pts: int) -> np.ndarray:
        if (frame.width, frame.height) != self._size:  # as FFmpeg does: scaled to the size the stream began with
            if not self._size_changes:
                w, h = self._size
                self._warn(f"'{self.path}': the picture size changes from {w}x{h} to {frame.width}x"
                           f"{frame.height} at {float(pts * self._tb):.3f} s (joined recordings?): scaled to {w}x{h}")
            self._size_changes += 1
            frame = frame.reformat(width=self._size[0], height=self._size[1], interpolation="BICUBIC")
        rgb = to_rgb(frame, self._color, self._depth)
        if self._rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=self._rotation // 90))
        return rgb

    def _pts_of(self, frame: av.VideoFrame) -> int:
        """The frame's pts in the output time base; missing pts continue from the previous frame."""
        if frame.pts is not None:
            tb = Fraction(frame.time_base) if frame.time_base else self._tb
            pts = frame.pts if tb == self._tb else round(frame.pts * tb / self._tb)
        else:
            pts = 0 if self._next_pts is None else self._next_pts
        duration = frame.duration and frame.time_base and round(frame.duration * Fraction(frame.time_base) / self._tb)
        pts = self._video_pts(pts)
        self._next_pts = pts + (duration or self._step)
        return pts

    def _batch(self, frames: torch.Tensor, pts: list[int], seq: int) -> FrameBatch:
        return FrameBatch(frames=frames, pts=torch.tensor(pts, dtype=torch.int64),
                          time_base=self._tb, seq=seq, color=self._color)

    def _audio_chunks(self) -> Iterator[tuple[str, AudioChunk]]:
        by_stream: dict[int, list[Any]] = {}
        for packet in self._audio_pending:
            by_stream.setdefault(self._audio_index[packet.stream.index], []).append(packet)
        self._audio_pending = []
        for index, packets in by_stream.items():
            yield "audio", AudioChunk(stream=index, time_base=Fraction(self._audio[index].time_base),
                                      packets=tuple(packets))

    def teardown(self, ok: bool) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


_TECHNICAL_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "handler_name", "language",
                   "vendor_id", "duration"}


def _kept_tags(container: Any, video: Any) -> tuple[tuple[str, str], ...]:
    """The container's metadata (the recording date above all: ``creation_time``), with the video stream's
    ``timecode`` and ``creation_time`` where the container has none; technical tags the muxer rewrites are left."""
    tags = {k.lower(): v for k, v in video.metadata.items() if k.lower() in ("timecode", "creation_time")}
    tags.update(container.metadata)
    return tuple((k, str(v)) for k, v in tags.items() if k.lower() not in _TECHNICAL_TAGS)


def _limit(max_damaged: float, total: int) -> int:
    """How many damaged or missing frames ``max_damaged`` allows: a fraction of ``total`` below 1, else a count."""
    return int(max_damaged * total) if max_damaged < 1 else int(max_damaged)


def _is_timecode(stream: Any) -> bool:
    """A QuickTime/MP4 timecode track (``tmcd``), which vflow carries as the ``timecode`` tag."""
    tag = getattr(stream.codec_context, "codec_tag", "") if stream.codec_context else ""
    return tag == "tmcd" or "timecode" in {k.lower() for k in stream.metadata}


_FIELD_ORDERS = {1: "progressive", 2: "tff", 3: "bff", 4: "tb", 5: "bt"}  # AVFieldOrder


def _field_order(stream: Any, frame: av.VideoFrame) -> str:
    """The source's field order as its tags say (``tff``, ``bff``, ``tb``, ``bt``) or ``progressive``.
    An interlaced frame with no order tag is bottom field first for DV, top field first otherwise."""
    if not frame.interlaced_frame:
        return "progressive"
    tagged = _FIELD_ORDERS.get(int(stream.codec_context.field_order or 0))
    if tagged and tagged != "progressive":
        return tagged
    return "bff" if stream.codec_context.name == "dvvideo" else "tff"
