"""decode: read any file FFmpeg reads (PyAV), emit RGB ``FrameBatch``es with exact pts and the audio packets."""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any, Iterator

import av
import numpy as np
import torch

from ..media.color import color_of, to_rgb
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

    ```yaml
    decode: {type: decode, params: {path: "${input}", batch: 8}}
    ```
    """

    inputs: dict[str, type] = {}
    outputs = {"video": FrameBatch, "audio": AudioChunk}

    def __init__(self, path: str, batch: int = 8, threads: int = 0, stream: int = 0):
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.path, self.batch, self.threads, self.stream_index = path, batch, threads, stream
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
        self._video = video
        self._rate = frame_rate(video)
        self._tb = Fraction(video.time_base) if video.time_base else Fraction(1, 90000)
        self._pending: list[av.VideoFrame] = []
        self._audio_pending: list[Any] = []
        first = self._first_frame()
        self._color = color_of(first)
        self._rotation = int(first.rotation or 0) % 360
        w, h = (first.height, first.width) if self._rotation in (90, 270) else (first.width, first.height)
        self._next_pts: int | None = None
        info = VideoInfo(
            width=w, height=h, time_base=self._tb, frame_rate=self._rate, color=self._color,
            frames=expected_frames(video, self._rate), start_pts=first.pts or 0,
            sample_aspect=Fraction(video.sample_aspect_ratio) if video.sample_aspect_ratio else None,
            field_order=_field_order(video, first), rotation=self._rotation,
        )
        return {"video": info, "audio": AudioInfo(streams=tuple(self._audio))}

    def _first_frame(self) -> av.VideoFrame:
        """Decode up to the first video frame (to learn its real colours and size); buffer what came."""
        try:
            for frame in self._iter_frames():
                self._pending.append(frame)
                return frame
        except av.FFmpegError as e:
            raise MediaError(f"input file '{self.path}': cannot decode video ({e})") from None
        raise MediaError(f"input file '{self.path}' has a video stream but no frame could be decoded "
                         f"(zero-frame or truncated video)")

    def _iter_frames(self) -> Iterator[av.VideoFrame]:
        """Video frames in presentation order; audio packets are set aside in ``_audio_pending``."""
        for packet in self._packets:
            if packet.stream.type == "video":
                yield from packet.decode()
            elif packet.size:
                self._audio_pending.append(packet)

    def generate(self) -> Iterator[Any]:
        frames: list[np.ndarray] = []
        pts: list[int] = []
        seq = 0
        source = iter(self._pending)
        self._pending = []
        for frame in itertools.chain(source, self._iter_frames()):
            frames.append(self._rgb(frame))
            pts.append(self._pts(frame))
            if len(frames) == self.batch:
                yield from self._audio_chunks()
                yield "video", self._batch(frames, pts, seq)
                frames, pts, seq = [], [], seq + 1
            elif len(self._audio_pending) >= AUDIO_PACKETS_PER_CHUNK:
                yield from self._audio_chunks()
        if frames:
            yield "video", self._batch(frames, pts, seq)
        yield from self._audio_chunks()

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        rgb = to_rgb(frame, self._color)
        if self._rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=self._rotation // 90))
        return rgb

    def _pts(self, frame: av.VideoFrame) -> int:
        if frame.pts is not None:
            pts = frame.pts
        elif self._next_pts is None:
            pts = 0
        else:
            pts = self._next_pts
        step = frame.duration or (round(1 / (self._rate * self._tb)) if self._rate else 1)
        self._next_pts = pts + step
        return pts

    def _batch(self, frames: list[np.ndarray], pts: list[int], seq: int) -> FrameBatch:
        return FrameBatch(frames=torch.from_numpy(np.stack(frames)), pts=torch.tensor(pts, dtype=torch.int64),
                          time_base=self._tb, seq=seq, color=self._color)

    def _audio_chunks(self) -> Iterator[tuple[str, AudioChunk]]:
        if not self._audio_pending:
            return
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


def _field_order(stream: Any, frame: av.VideoFrame) -> str:
    order = getattr(stream.codec_context, "field_order", None)
    names = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
    if isinstance(order, int) and order in names:
        return names[order]
    return "interlaced" if frame.interlaced_frame else "progressive"
