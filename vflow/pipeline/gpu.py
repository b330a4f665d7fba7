"""Device batching: uint8 frame batches in, a model on the device, uint8 frames out, with no per-batch sync.

On CUDA, each batch is staged into a ring of pinned host buffers, copied host->device on a side stream
while the previous batch computes (double buffering), converted uint8->float and back on the device,
and copied device->host on another side stream into pinned memory that is handed out as the result;
the host waits only for the *oldest* batch in flight. On the CPU the very same ring and ordering logic
runs, with plain buffers and no streams: the only CUDA-specific code is the small ``_Cuda`` backend.

With ``tile`` set, the model runs tile by tile (each tile padded by ``tile_overlap`` pixels of real
context, of which only the centre is kept, so seams do not show) and each tile is converted back to
uint8 as soon as it is done: device memory is bounded by the tile size and the uint8 frames, whatever
the frame size.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterator

import torch

Model = Callable[[torch.Tensor], torch.Tensor]


def resolve_device(device: str) -> torch.device:
    """``auto`` is the first CUDA device when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' asked for, but this torch build has no CUDA device")
    return dev


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """``auto`` is fp16 on CUDA and fp32 on the CPU (bf16 never beat fp32 on CPU here)."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


class _Host:
    """CPU backend: ordinary buffers, work runs in order, events are already complete."""

    pinned = False

    def __init__(self, device: torch.device):
        self.device = device

    def empty(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.empty(shape, dtype=torch.uint8)

    def upload(self, host: torch.Tensor) -> torch.Tensor:
        return host

    def download(self, dev: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """The result on the host (on the CPU, the very tensor: no copy) and the event that says it is there."""
        return dev.to("cpu"), None

    def wait(self, event: Any) -> None:
        return None


class _Cuda(_Host):
    """CUDA backend: pinned buffers, side streams for the copies both ways, events instead of syncs."""

    pinned = True

    def __init__(self, device: torch.device):
        super().__init__(device)
        self.upload_stream, self.download_stream = torch.cuda.Stream(device), torch.cuda.Stream(device)
        self.compute_stream = torch.cuda.current_stream(device)

    def empty(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.empty(shape, dtype=torch.uint8, pin_memory=True)

    def upload(self, host: torch.Tensor) -> torch.Tensor:
        with torch.cuda.stream(self.upload_stream):
            dev = host.to(self.device, non_blocking=True)
        self.compute_stream.wait_stream(self.upload_stream)
        dev.record_stream(self.compute_stream)
        return dev

    def download(self, dev: torch.Tensor) -> tuple[torch.Tensor, Any]:
        # on its own stream, so the next batch computes while this one is copied out; into a fresh pinned
        # tensor from torch's caching host allocator, handed out as it is (no second copy)
        host = self.empty(tuple(dev.shape))
        self.download_stream.wait_stream(self.compute_stream)
        with torch.cuda.stream(self.download_stream):
            host.copy_(dev, non_blocking=True)
        dev.record_stream(self.download_stream)
        event = torch.cuda.Event()
        event.record(self.download_stream)
        return host, event

    def wait(self, event: Any) -> None:
        event.synchronize()


def tile_boxes(h: int, w: int, tile: int, overlap: int) -> Iterator[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """``((y0, y1, x0, x1), (py0, py1, px0, px1))``: each tile of an ``h``x``w`` frame and the same tile
    padded by ``overlap`` pixels (clipped to the frame); ``tile <= 0`` is one tile, the whole frame."""
    step_y, step_x = (tile, tile) if tile > 0 else (h, w)
    for y0 in range(0, h, step_y):
        for x0 in range(0, w, step_x):
            y1, x1 = min(y0 + step_y, h), min(x0 + step_x, w)
            yield (y0, y1, x0, x1), (max(y0 - overlap, 0), min(y1 + overlap, h), max(x0 - overlap, 0), min(x1 + overlap, w))


class DeviceRunner:
    """Runs ``model`` over uint8 (N, H, W, 3) CPU batches on ``device``; results come back in order.

    ``model`` maps float (N, 3, h, w) in [0, 1] to float (N, 3, s*h, s*w) for an integer scale ``s``.
    ``submit`` returns the results that are ready (a batch comes back when ``depth`` newer batches are in
    flight, or at ``drain``); each result is ``(tag, frames)`` with ``frames`` a fresh uint8 CPU tensor.
    """

    def __init__(self, model: Model, device: torch.device, dtype: torch.dtype = torch.float32,
                 depth: int = 2, pin: bool = True, channels_last: bool = False, tile: int = 0,
                 tile_overlap: int = 16):
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.model, self.device, self.dtype, self.channels_last = model, device, dtype, channels_last
        self.tile, self.tile_overlap = tile, tile_overlap
        self.backend = _Cuda(device) if device.type == "cuda" and pin else _Host(device)
        self.ring: list[torch.Tensor | None] = [None] * (depth + 1)  # host staging buffers of the inputs
        self.in_flight: deque[tuple[Any, torch.Tensor, Any]] = deque()
        self.depth = depth
        self._next = 0

    @staticmethod
    def _buffer(current: torch.Tensor | None, shape: tuple[int, ...], make: Callable[[tuple[int, ...]], torch.Tensor]
                ) -> torch.Tensor:
        if current is None or current.numel() < _numel(shape):
            return make(shape)
        return current.view(-1)[: _numel(shape)].view(shape)

    def _forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> float NCHW in [0, 1] -> model -> clamped uint8 NHWC, all on the device, tile by tile."""
        with torch.no_grad():
            x = frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
            n, _, h, w = x.shape
            out: torch.Tensor | None = None
            for (y0, y1, x0, x1), (py0, py1, px0, px1) in tile_boxes(h, w, self.tile, self.tile_overlap):
                part = x[:, :, py0:py1, px0:px1].to(self.dtype).div_(255)
                if self.channels_last:
                    part = part.contiguous(memory_format=torch.channels_last)
                y = self.model(part)
                s = y.shape[-1] // (px1 - px0)
                if y.shape[-2:] != (s * (py1 - py0), s * (px1 - px0)):
                    raise ValueError(f"model output {tuple(y.shape)} is not an integer multiple of its input {tuple(part.shape)}")
                if out is None:
                    out = torch.empty((n, h * s, w * s, 3), dtype=torch.uint8, device=self.device)
                oy, ox = (y0 - py0) * s, (x0 - px0) * s
                centre = y[:, :, oy:oy + (y1 - y0) * s, ox:ox + (x1 - x0) * s]
                if centre.dtype == torch.bfloat16:  # 8 mantissa bits: too coarse to round x255 in
                    centre = centre.float()
                out[:, y0 * s:y1 * s, x0 * s:x1 * s] = centre.mul(255).round_().clamp_(0, 255).permute(0, 2, 3, 1)
            assert out is not None
            return out

    def submit(self, frames: torch.Tensor, tag: Any = None) -> list[tuple[Any, torch.Tensor]]:
        index = self._next % len(self.ring)
        self._next += 1
        staged = self._buffer(self.ring[index], tuple(frames.shape), self.backend.empty)
        self.ring[index] = staged
        staged.copy_(frames)
        host, event = self.backend.download(self._forward(self.backend.upload(staged)))
        self.in_flight.append((tag, host, event))
        return list(self._collect(keep=self.depth))

    def drain(self) -> list[tuple[Any, torch.Tensor]]:
        """Wait for every batch still in flight."""
        return list(self._collect(keep=0))

    def _collect(self, keep: int) -> Iterator[tuple[Any, torch.Tensor]]:
        while len(self.in_flight) > keep:
            tag, host, event = self.in_flight.popleft()
            self.backend.wait(event)
            yield tag, host


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
