"""restore: a restoration / super-resolution network (vflow-film, Real-ESRGAN) over frame batches, on GPU or CPU."""

from __future__ import annotations

from typing import Any, Iterator, Literal

import torch
import torch.nn.functional as F

from ..models import load_model
from ..pipeline.frames import FrameBatch, VideoInfo
from ..pipeline.gpu import DeviceRunner, resolve_device, resolve_dtype
from ..pipeline.registry import stage
from ..pipeline.stage import Stage, StageContext
from ..pipeline.windows import ShotWindows, Windows


@stage("restore")
class Restore(Stage):
    """Restore (and upscale) frames with a network: ours (``vflow-film-1x``) or a Real-ESRGAN model
    (``vflow models`` lists them, or give a ``.safetensors`` / ``.pth`` file).

    A temporal model (vflow-film) restores each frame from its window of neighbours within its shot (run
    ``scene_split`` before; the window repeats the shot's end frames rather than cross a cut). Frames go
    to the device in batches of ``batch`` through pinned, double-buffered copies (CUDA) and come back at their
    own depth (8 or 16 bits); fp16 on CUDA, fp32 on the CPU (``precision: auto``). ``scale`` below the
    model's scale resizes its output on the device (bicubic, antialiased). ``tile`` bounds memory for any frame size, with
    ``tile_overlap`` pixels of context per tile side (default: the model's own) and the tiles blended.
    The same pixels come out whatever the batch size (within a level, rarely: oneDNN's algorithms vary
    with it).

    ```yaml
    restore: {type: restore, params: {model: vflow-film-1x, batch: 8, tile: 0}}
    ```
    """

    depths = frozenset({8, 16})
    hdr = False   # the models learnt SDR pictures

    def __init__(self, model: str = "vflow-film-1x", scale: int | None = None, device: str = "auto",
                 batch: int = 4, precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto", tile: int = 0,
                 tile_overlap: int | None = None, channels_last: bool = True, compile: bool = False):
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if scale is not None and not 1 <= scale <= 4:
            raise ValueError("scale must be 1 to 4")
        if tile < 0 or (tile_overlap is not None and tile_overlap < 0):
            raise ValueError("tile and tile_overlap must be >= 0")
        self.model_name, self.scale, self.device_name, self.batch = model, scale, device, batch
        self.precision, self.tile, self.tile_overlap = precision, tile, tile_overlap
        self.channels_last, self.compile = channels_last, compile
        self._seq = 0

    def setup(self, ctx: StageContext) -> dict[str, VideoInfo]:
        device = resolve_device(self.device_name if self.device_name != "auto" else ctx.device)
        self._device_type = torch.device(device).type
        dtype = resolve_dtype(self.precision, device)
        net = load_model(self.model_name, device).to(dtype)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net_scale = int(net.scale)
        self.out_scale = self.scale or self.net_scale
        if self.out_scale > self.net_scale:
            raise ValueError(f"model '{self.model_name}' upscales x{self.net_scale}; scale {self.out_scale} is more")
        overlap = self.tile_overlap if self.tile_overlap is not None else int(getattr(net, "tile_overlap", 16))
        fn = torch.compile(net) if self.compile else net
        self.runner = DeviceRunner(lambda x: self._apply(fn, x), device, dtype, channels_last=self.channels_last,
                                   tile=self.tile, tile_overlap=overlap)
        self.windows = ShotWindows(int(getattr(net, "context", 0)))
        video: VideoInfo = ctx.inputs["video"]  # type: ignore[assignment]
        return {"video": video.replace(width=video.width * self.out_scale, height=video.height * self.out_scale)}

    def resources(self) -> dict[str, float]:
        return {"num_gpus": 1.0} if self._device_type == "cuda" else {}

    def context(self) -> tuple[int, int]:
        """A temporal model's window."""
        return self.windows.context, self.windows.context

    def _apply(self, net: Any, x: torch.Tensor) -> torch.Tensor:
        """The network, then the resize to ``scale`` (per tile when tiling: the overlap covers the filter)."""
        y = net(x)
        if self.out_scale != self.net_scale:
            h, w = x.shape[-2] * self.out_scale, x.shape[-1] * self.out_scale
            y = F.interpolate(y, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
        return y

    def process(self, batch: FrameBatch) -> Iterator[FrameBatch]:
        self.windows.push(batch)
        yield from self._submit(final=False)

    def finish(self) -> Iterator[FrameBatch]:
        yield from self._submit(final=True)
        yield from self._emit(self.runner.drain())

    def _submit(self, final: bool) -> Iterator[FrameBatch]:
        """Full batches of ready frames to the device (at the end, what is left)."""
        while (n := self.windows.ready(final)) >= (1 if final else self.batch):
            w = self.windows.take(min(n, self.batch), final)
            index = w.index if self.windows.context else None
            yield from self._emit(self.runner.submit(w.frames, w, index))

    def _emit(self, results: list[tuple[Any, torch.Tensor]]) -> Iterator[FrameBatch]:
        w: Windows
        for w, frames in results:
            yield FrameBatch(frames=frames, pts=w.pts, time_base=w.time_base, seq=self._seq, scene=w.scene,
                             color=w.color)
            self._seq += 1
