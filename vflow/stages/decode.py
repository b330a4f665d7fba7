"""decode: read any file FFmpeg reads (PyAV), emit RGB ``FrameBatch``es with exact pts and the audio packets."""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any, Iterator, Literal

import av
import numpy as np
import torch

from ..media.color import color_of, to_rgb
from ..media.deinterlace import DETECT_FRAMES, Deinterlacer, Detection, detect
from ..media.probe import MediaError, expected_frames, frame_rate, open_input
from ..pipeline.frames import AudioChunk, AudioInfo, FrameBatch, VideoInfo
from ..pipeline.registry import stage
from ..pipeline.stage import Stage, StageContext, StreamInfo

AUDIO_PACKETS_PER_CHUNK = 32


@stage("decode")
class Decode(Stage):
    """Decode a video file into RGB frame batches (and pass its audio packets on).

    Colours are converted with the stream's matrix and range (untagged: BT.709 from 720 lines, else
    BT.601; limited range), rotation metadata is applied, and each frame keeps its own pts, so
    variable frame rate survives. Missing pts (raw .h264) are counted on from the frame duration.
    Interlaced video (VHS/DV captures) is deinterlaced with FFmpeg's ``bwdif`` on the decoder's own
    YUV frames: ``deinterlace: auto`` trusts the field-order tag unless FFmpeg's ``idet`` combing
    measurement on the first frames clearly disagrees; ``deinterlace_rate: field`` gives one frame per
    field (50i -> 50p) with exact pts.

    ```yaml
    decode: {type: decode, params: {path: "${input}", batch: 8, deinterlace: auto, deinterlace_rate: field}}
    ```
    """

    inputs: dict[str, type] = {}
    outputs = {"video": FrameBatch, "audio": AudioChunk}

    def __init__(self, path: str, batch: int = 8, threads: int = 0, stream: int = 0,
                 deinterlace: Literal["auto", "off", "on"] = "auto",
                 deinterlace_rate: Literal["frame", "field"] = "frame"):
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.path, self.batch, self.threads, self.stream_index = path, batch, threads, stream
        self.deinterlace, self.deinterlace_rate = deinterlace, deinterlace_rate
        self.detection: Detection | None = None
        self._container: av.container.InputContainer | None = None

    def setup(self, ctx: StageContext) -> dict[str, StreamInfo]:
        container = self._container = open_input(self.path)
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
            raise MediaError(f"input file '{self.path}' has no video stream (it holds {kinds}: audio-only?)")
        if self.stream_index >= len(container.streams.video):
            raise MediaError(f"input file '{self.path}' has {len(container.streams.video)} video stream(s); "
                             f"stream {self.stream_index} does not exist")
        video = container.streams.video[self.stream_index]
        video.thread_type = "AUTO"
        video.thread_count = self.threads
        self._audio = list(container.streams.audio) if "audio" in ctx.connected_outputs else []
        self._audio_index = {s.index: i for i, s in enumerate(self._audio)}
        self._packets = container.demux(video, *self._audio)
        self._audio_pending: list[Any] = []
        self._pending = self._first_frames(1 if self.deinterlace == "off" else DETECT_FRAMES)
        first = self._pending[0]
        self._color = color_of(first)
        self._rotation = int(first.rotation or 0) % 360
        w, h = (first.height, first.width) if self._rotation in (90, 270) else (first.width, first.height)

        rate = frame_rate(video)
        self._tb = Fraction(video.time_base) if video.time_base else Fraction(1, 90000)
        frames = expected_frames(video, rate)
        field_order = "interlaced" if first.interlaced_frame else "progressive"
        self._deint: Deinterlacer | None = None
        if self.deinterlace != "off":
            self.detection = detect(video, self._pending)
            if self.deinterlace == "on" or self.detection.interlaced:
                self._deint = Deinterlacer(video, self.detection.order, self.deinterlace_rate)
                field_order = "progressive"
                if self.deinterlace_rate == "field":
                    self._tb, rate, frames = self._deint.time_base, rate and rate * 2, frames and frames * 2
        self._step = round(1 / (rate * self._tb)) if rate else 1
        self._next_pts: int | None = None
        info = VideoInfo(
            width=w, height=h, time_base=self._tb, frame_rate=rate, color=self._color, frames=frames,
            sample_aspect=Fraction(video.sample_aspect_ratio) if video.sample_aspect_ratio else None,
            field_order=field_order, rotation=self._rotation,
        )
        return {"video": info, "audio": AudioInfo(streams=tuple(self._audio))}

    def _first_frames(self, n: int) -> list[av.VideoFrame]:
        """Decode up to ``n`` frames (colours, size, interlace detection); they are emitted later."""
        try:
            frames = list(itertools.islice(self._decoded(), n))
        except av.FFmpegError as e:
            raise MediaError(f"input file '{self.path}': cannot decode video ({e})") from None
        if not frames:
            raise MediaError(f"input file '{self.path}' has a video stream but no frame could be decoded "
                             f"(zero-frame or truncated video)")
        return frames

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Decoded video frames in presentation order; audio packets are set aside in ``_audio_pending``."""
        for packet in self._packets:
            if packet.stream.type == "video":
                yield from packet.decode()
            elif packet.size:
                self._audio_pending.append(packet)

    def _pictures(self) -> Iterator[av.VideoFrame]:
        """The frames to emit: the decoded ones, deinterlaced when asked or detected."""
        pending, self._pending = self._pending, []
        decoded = itertools.chain(pending, self._decoded())
        if self._deint is None:
            yield from decoded
            return
        for frame in decoded:
            yield from self._deint.push(frame)
        yield from self._deint.push(None)

    def generate(self) -> Iterator[Any]:
        buf: torch.Tensor | None = None
        pts: list[int] = []
        seq = 0
        for frame in self._pictures():
            rgb = self._rgb(frame)
            if buf is None:  # each frame is converted straight into its batch: one copy, no np.stack pass
                # numpy's allocator reuses freed batches; torch.empty maps fresh pages (faults, zeroing)
                buf = torch.from_numpy(np.empty((self.batch, *rgb.shape), np.uint8))
            buf.numpy()[len(pts)] = rgb  # numpy's copy: torch's OpenMP copy stalls on a busy machine
            pts.append(self._pts_of(frame))
            if len(pts) == self.batch:
                yield from self._audio_chunks()
                yield "video", self._batch(buf, pts, seq)
                buf, pts, seq = None, [], seq + 1
            elif len(self._audio_pending) >= AUDIO_PACKETS_PER_CHUNK:
                yield from self._audio_chunks()
        if buf is not None:
            yield "video", self._batch(buf[: len(pts)], pts, seq)
        yield from self._audio_chunks()

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        rgb = to_rgb(frame, self._color)
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
