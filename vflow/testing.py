"""Helpers for stage authors: a synthetic source, a collecting sink, and ``check_stage_contract``."""

from __future__ import annotations

import threading
from fractions import Fraction
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np
import torch

from .pipeline.frames import AudioChunk, AudioInfo, ColorInfo, FrameBatch, VideoInfo
from .pipeline.registry import lookup, stage
from .pipeline.stage import Stage, StageContext, coerce_param, iter_results, stage_params


def synthetic_frames(n: int, width: int = 64, height: int = 48, seed: int = 0, start: int = 0,
                     depth: int = 8) -> torch.Tensor:
    """Deterministic (n, H, W, 3) frames: a moving gradient with a bright square and seeded noise, uint8.
    ``depth`` 16 gives uint16 frames: the same picture x 256 plus a fine pattern below the 8-bit level, so
    a stage that loses the extra precision shows it."""
    y, x = np.mgrid[0:height, 0:width]
    out = np.empty((n, height, width, 3), np.uint8)
    rng = np.random.default_rng(seed + start)
    for i in range(n):
        t = start + i
        out[i, ..., 0] = (x * 255 // max(1, width - 1) + 3 * t) % 256
        out[i, ..., 1] = (y * 255 // max(1, height - 1) + 5 * t) % 256
        out[i, ..., 2] = 128
        sx, sy = (4 * t) % max(1, width - 8), (2 * t) % max(1, height - 8)
        out[i, sy:sy + 8, sx:sx + 8] = 250
        out[i] = np.clip(out[i].astype(np.int16) + rng.integers(-6, 7, (height, width, 3)), 0, 255)
    if depth == 16:
        fine = ((x * 37 + y * 11 + 5 * start)[None, :, :, None] + np.arange(n)[:, None, None, None] * 5) % 256
        return torch.from_numpy((out.astype(np.uint16) << 8) | fine.astype(np.uint16))
    return torch.from_numpy(out)


def synthetic_info(width: int = 64, height: int = 48, fps: int = 25, frames: int | None = None,
                   depth: int = 8) -> VideoInfo:
    return VideoInfo(width=width, height=height, time_base=Fraction(1, fps), frame_rate=Fraction(fps),
                     color=ColorInfo(6, 1, 6, 6), frames=frames, depth=depth,
                     pix_fmt="yuv420p" if depth == 8 else "yuv420p10le")


def synthetic_batches(n: int, batch: int = 4, width: int = 64, height: int = 48, fps: int = 25,
                      seed: int = 0, depth: int = 8) -> list[FrameBatch]:
    """``n`` frames in batches of ``batch``, pts 0, 1, 2, … in a 1/fps time base."""
    return list(_iter_batches(n, batch, width, height, fps, seed, depth))


def _iter_batches(n: int, batch: int, width: int, height: int, fps: int, seed: int,
                  depth: int = 8) -> Iterator[FrameBatch]:
    info = synthetic_info(width, height, fps)
    for seq, start in enumerate(range(0, n, batch)):
        k = min(batch, n - start)
        yield FrameBatch(frames=synthetic_frames(k, width, height, seed, start, depth),
                         pts=torch.arange(start, start + k, dtype=torch.int64), time_base=info.time_base,
                         seq=seq, color=info.color)


@stage("synthetic")
class SyntheticSource(Stage):
    """A test source: ``frames`` deterministic frames (moving gradient, square, noise), no audio.

    ```yaml
    src: {type: synthetic, params: {frames: 100, width: 64, height: 48}}
    ```
    """

    inputs: dict[str, type] = {}
    outputs = {"video": FrameBatch}

    def __init__(self, frames: int = 16, width: int = 64, height: int = 48, fps: int = 25, batch: int = 4,
                 seed: int = 0, depth: Literal[8, 16] = 8):
        if min(frames, width, height, fps, batch) < 1:
            raise ValueError("frames, width, height, fps and batch must be positive")
        self.frames, self.width, self.height, self.fps, self.batch, self.seed = frames, width, height, fps, batch, seed
        self.depth = depth

    def setup(self, ctx: StageContext) -> dict[str, VideoInfo]:
        return {"video": synthetic_info(self.width, self.height, self.fps, self.frames, self.depth)}

    def generate(self) -> Iterator[FrameBatch]:
        return _iter_batches(self.frames, self.batch, self.width, self.height, self.fps, self.seed, self.depth)


@stage("collect")
class Collect(Stage):
    """A test sink that keeps every batch (and audio chunk) it receives in ``batches`` / ``audio``."""

    inputs = {"video": FrameBatch, "audio": AudioChunk}
    outputs: dict[str, type] = {}
    optional_inputs = frozenset({"audio"})
    depths = frozenset({8, 16})

    def __init__(self) -> None:
        self.batches: list[FrameBatch] = []
        self.audio: list[AudioChunk] = []
        self.finished = False

    def process_port(self, port: str, item: Any) -> None:
        (self.batches if port == "video" else self.audio).append(item)

    def finish(self) -> None:
        self.finished = True

    def frames(self) -> torch.Tensor:
        return torch.cat([b.frames for b in self.batches]) if self.batches else torch.empty(0, 0, 0, 3)

    def pts(self) -> list[int]:
        return [int(p) for b in self.batches for p in b.pts]


def check_stage_contract(factory: Callable[[], Stage], *, frames: int = 10, batch: int = 4, width: int = 64,
                         height: int = 48, audio: AudioInfo | None = None,
                         audio_chunks: Sequence[AudioChunk] = (), depth: int = 8) -> list[Any]:
    """Drive one stage through its whole lifecycle the way the runtime does, asserting the contract.

    Checks: registered under its name; typed params whose defaults pass their own types; ``setup`` describes
    every output port; outputs are well-formed ``FrameBatch``/``AudioChunk`` of the negotiated size with
    increasing pts; a stage with one video input and video out emits exactly the frames it took (unless it
    declares ``frame_count_changes``); inputs are never modified in place; ``teardown`` is idempotent.
    ``depth`` 16 feeds uint16 frames (the stage must list 16 in ``depths``) and checks that they come out
    16-bit. Returns what it emitted.
    """
    st = factory()
    cls = type(st)
    assert isinstance(st, Stage), f"{cls.__name__} is not a vflow.Stage"
    assert cls.registry_name and lookup(cls.registry_name) is cls, f"{cls.__name__} is not registered"
    for p in stage_params(cls).values():
        if not p.required:
            coerce_param(p, p.default)
    video_ports = [p for p, kind in cls.inputs.items() if kind is FrameBatch]
    assert not video_ports or depth in cls.depths, f"{cls.__name__} does not take {depth}-bit frames (depths)"
    inputs: dict[str, Any] = {p: synthetic_info(width, height, frames=frames, depth=depth) for p in video_ports}
    if "audio" in cls.inputs and audio is not None:
        inputs["audio"] = audio
    ctx = StageContext(name=cls.registry_name, inputs=inputs, connected_outputs=frozenset(cls.outputs),
                       cancelled=threading.Event())
    out_infos = st.setup(ctx)
    if out_infos is None:
        out_infos = {p: i for p, i in inputs.items() if p in cls.outputs}
    for port in cls.outputs:
        assert port in out_infos, f"setup() did not describe output port '{port}'"
    emitted: list[Any] = []

    def collect(result: Any) -> None:
        for item in iter_results(result):
            port, item = item if len(cls.outputs) > 1 else (next(iter(cls.outputs)), item)
            assert port in cls.outputs, f"emitted on unknown port {port!r}"
            assert isinstance(item, cls.outputs[port]), f"port '{port}' got {type(item).__name__}"
            if isinstance(item, FrameBatch):
                info = out_infos[port]
                assert (item.width, item.height) == (info.width, info.height), \
                    f"emitted {item.width}x{item.height}, negotiated {info.width}x{info.height}"
                assert item.depth == info.depth, f"emitted {item.depth}-bit frames, negotiated {info.depth}-bit"
            emitted.append(item)

    ok = False
    try:
        if not cls.inputs:
            collect(st.generate())
        for b in synthetic_batches(frames, batch, width, height, depth=depth) if video_ports else ():
            before = b.frames.clone()
            for port in video_ports:
                collect(st.process_port(port, b))
            assert torch.equal(before, b.frames), "process() modified its input frames in place"
        if "audio" in cls.inputs:
            for chunk in audio_chunks:
                collect(st.process_port("audio", chunk))
        collect(st.finish())
        ok = True
    finally:
        st.teardown(ok)
        st.teardown(ok)
    pts = [int(p) for item in emitted if isinstance(item, FrameBatch) for p in item.pts]
    assert pts == sorted(pts) and len(set(pts)) == len(pts), "output pts are not strictly increasing"
    keeps = len(video_ports) == 1 and FrameBatch in cls.outputs.values() and not st.frame_count_changes
    if keeps:
        assert len(pts) == frames, (f"took {frames} frames and emitted {len(pts)} without declaring "
                                    f"frame_count_changes")
    for stream in {c.stream for c in emitted if isinstance(c, AudioChunk)}:
        times = [c.seconds() for c in emitted if isinstance(c, AudioChunk) and c.stream == stream]
        assert times == sorted(times), f"audio stream {stream}: chunk times go backwards"
    return emitted


__all__ = ["Collect", "SyntheticSource", "check_stage_contract", "synthetic_batches", "synthetic_frames",
           "synthetic_info"]
