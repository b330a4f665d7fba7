"""Device batching: frame batches in, a model on the device, frames of the same depth out, with no per-batch sync.

On CUDA, each batch is staged into a ring of pinned host buffers, copied host->device on a side stream
while the previous batch computes (double buffering), converted codes->float and back on the device,
and copied device->host on another side stream into pinned memory that is handed out as the result;
the host waits only for the *oldest* batch in flight. On the CPU the very same ring and ordering logic
runs, with plain buffers and no streams: the only CUDA-specific code is the small ``_Cuda`` backend.

With ``tile`` set, the model runs tile by tile (each tile padded by ``tile_overlap`` pixels of real
context, neighbouring tiles blended across the middle of their overlap, so seams do not show) and each
row of tiles becomes codes as soon as it is done: device memory is bounded by a strip of the frame and
the frames themselves, whatever the frame size. A temporal model gets each frame's window of neighbours,
gathered on the device from frames that were copied there once.
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

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype = torch.uint8) -> torch.Tensor:
        return torch.empty(shape, dtype=dtype)

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

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype = torch.uint8) -> torch.Tensor:
        return torch.empty(shape, dtype=dtype, pin_memory=True)

    def upload(self, host: torch.Tensor) -> torch.Tensor:
        with torch.cuda.stream(self.upload_stream):
            dev = host.to(self.device, non_blocking=True)
        self.compute_stream.wait_stream(self.upload_stream)
        dev.record_stream(self.compute_stream)
        return dev

    def download(self, dev: torch.Tensor) -> tuple[torch.Tensor, Any]:
        # on its own stream, so the next batch computes while this one is copied out; into a fresh pinned
        # tensor from torch's caching host allocator, handed out as it is (no second copy)
        host = self.empty(tuple(dev.shape), dev.dtype)
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


def blend_ramp(lo: int, hi: int, start: int, stop: int, size: int, band: int, scale: int,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """The blending weight, at output resolution, of the pixels ``lo*scale .. hi*scale`` of a tile whose core
    is ``start .. stop`` of a line of ``size`` pixels: 1 in the core, falling linearly to 0 across a band of
    ``band`` pixels each side of every inner tile border, so the weights of neighbouring tiles sum to 1.
    Made on ``device``: no host-to-device copy per tile."""
    u = (torch.arange(lo * scale, hi * scale, dtype=torch.float32, device=device) + 0.5) / scale
    weight = torch.ones_like(u)
    if band > 0 and start > 0:
        weight = weight * ((u - (start - band)) / (2 * band)).clamp(0, 1)
    if band > 0 and stop < size:
        weight = weight * (((stop + band) - u) / (2 * band)).clamp(0, 1)
    return weight


class DeviceRunner:
    """Runs ``model`` over uint8 or uint16 (N, H, W, 3) CPU batches on ``device``; results come back in order,
    at the depth of the frames that went in.

    ``model`` maps float (N, 3, h, w) in [0, 1] to float (N, 3, s*h, s*w) for an integer scale ``s``; with
    ``windows`` (an (N, T) index into the submitted frames) it gets each output frame's window instead,
    (N, T, 3, h, w), gathered on the device, so every frame crosses to the device once. ``submit`` returns the
    results that are ready (a batch comes back when ``depth`` newer batches are in flight, or at ``drain``);
    each result is ``(tag, frames)`` with ``frames`` a fresh CPU tensor.

    Tiles overlap by ``tile_overlap`` pixels of context per side; neighbouring tiles are blended linearly over
    ``tile_overlap // 2`` pixels centred on their border, so every pixel kept has at least 3/4 of the overlap
    as context: a model whose receptive field is within that gives the untiled result, any other shows no
    seam. The blending runs one row of tiles at a time: memory stays bounded by a strip of the frame.
    """

    def __init__(self, model: Model, device: torch.device, dtype: torch.dtype = torch.float32,
                 depth: int = 2, pin: bool = True, channels_last: bool = False, tile: int = 0,
                 tile_overlap: int = 16):
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.model, self.device, self.dtype, self.channels_last = model, device, dtype, channels_last
        self.tile, self.tile_overlap = tile, tile_overlap
        self.band = min(tile_overlap // 4, tile // 2) if tile > 0 else 0
        self.backend = _Cuda(device) if device.type == "cuda" and pin else _Host(device)
        self.ring: list[torch.Tensor | None] = [None] * (depth + 1)  # host staging buffers of the inputs
        self.in_flight: deque[tuple[Any, torch.Tensor, Any]] = deque()
        self.depth = depth
        self._next = 0

    @staticmethod
    def _buffer(current: torch.Tensor | None, shape: tuple[int, ...], dtype: torch.dtype,
                make: Callable[[tuple[int, ...], torch.dtype], torch.Tensor]) -> torch.Tensor:
        if current is None or current.dtype != dtype or current.numel() < _numel(shape):
            return make(shape, dtype)
        return current.view(-1)[: _numel(shape)].view(shape)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 codes or float in [0, 1], (N, [T,] 3, h, w) on the device -> the model's float output
        (N, 3, s*h, s*w)."""
        part = x.to(self.dtype).div_(255) if x.dtype == torch.uint8 else x.to(self.dtype)
        if self.channels_last and part.dim() == 4:
            part = part.contiguous(memory_format=torch.channels_last)
        y = self.model(part)
        h, w = x.shape[-2:]
        s = y.shape[-1] // w
        if s < 1 or y.shape[-2:] != (s * h, s * w):
            raise ValueError(f"model output {tuple(y.shape)} is not an integer multiple of its input {tuple(part.shape)}")
        return y

    @staticmethod
    def _to_codes(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """float (N, 3, H, W) in [0, 1] -> uint8 or uint16 (N, H, W, 3) codes, rounded to nearest."""
        vmax = 255 if dtype == torch.uint8 else 65535
        if y.dtype != torch.float32 and (y.dtype == torch.bfloat16 or vmax > 255):  # too coarse to round in
            y = y.float()
        return y.mul(vmax).round_().clamp_(0, vmax).permute(0, 2, 3, 1).to(dtype, memory_format=torch.contiguous_format)

    def _forward(self, frames: torch.Tensor, windows: torch.Tensor | None) -> torch.Tensor:
        """NHWC codes -> (windows gathered) -> model, tile by tile -> clamped NHWC codes, all on the device.
        16-bit frames become float32 in [0, 1] first: fp16 holds no 65535, and uint16 takes few ops."""
        with torch.no_grad():
            x = frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
            if frames.dtype != torch.uint8:
                x = x.to(torch.float32).div_(65535)
            if windows is not None:
                x = x[windows]
            h, w = x.shape[-2:]
            if self.tile <= 0 or (self.tile >= h and self.tile >= w):
                return self._to_codes(self._run(x), frames.dtype)
            return self._tiled(x, h, w, frames.dtype)

    def _tiled(self, x: torch.Tensor, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
        """One row of tiles at a time: each tile's output, weighted by its blending ramps, is added into a float
        strip; a strip's rows are final (and become codes of ``dtype``) once the next row of tiles has added its
        share."""
        t, ov, band = self.tile, self.tile_overlap, self.band
        out: torch.Tensor | None = None
        carry: torch.Tensor | None = None           # the bottom band of the previous strip, not final yet
        for y0 in range(0, h, t):
            y1 = min(y0 + t, h)
            ly0, ly1 = max(y0 - band, 0), min(y1 + band, h)          # the rows this strip contributes to
            py0, py1 = max(y0 - ov, 0), min(y1 + ov, h)
            strip: torch.Tensor | None = None
            for x0 in range(0, w, t):
                x1 = min(x0 + t, w)
                lx0, lx1 = max(x0 - band, 0), min(x1 + band, w)
                px0, px1 = max(x0 - ov, 0), min(x1 + ov, w)
                y = self._run(x[..., py0:py1, px0:px1])
                s = y.shape[-1] // (px1 - px0)
                if strip is None:       # the strip's rows and their weights, once the scale is known
                    strip = torch.zeros((y.shape[0], 3, (ly1 - ly0) * s, w * s), dtype=torch.float32, device=self.device)
                    wy = blend_ramp(ly0, ly1, y0, y1, h, band, s, self.device)[:, None]
                if out is None:
                    out = torch.empty((y.shape[0], h * s, w * s, 3), dtype=dtype, device=self.device)
                wx = blend_ramp(lx0, lx1, x0, x1, w, band, s, self.device)
                used = y[:, :, (ly0 - py0) * s:(ly1 - py0) * s, (lx0 - px0) * s:(lx1 - px0) * s].float()
                strip[:, :, :, lx0 * s:lx1 * s] += used * wy * wx
            assert strip is not None and out is not None
            if carry is not None:
                strip[:, :, : carry.shape[2]] += carry
            done = ly1 if y1 == h else min(y1 - band, ly1)          # rows final after this strip
            out[:, ly0 * s:done * s] = self._to_codes(strip[:, :, : (done - ly0) * s], dtype)
            carry = strip[:, :, (done - ly0) * s:]
        assert out is not None
        return out

    def submit(self, frames: torch.Tensor, tag: Any = None, windows: torch.Tensor | None = None
               ) -> list[tuple[Any, torch.Tensor]]:
        index = self._next % len(self.ring)
        self._next += 1
        staged = self._buffer(self.ring[index], tuple(frames.shape), frames.dtype, self.backend.empty)
        self.ring[index] = staged
        staged.copy_(frames)
        gather = None
        if windows is not None:   # pinned first on CUDA, so that its copy is asynchronous too
            gather = self.backend.upload(windows.pin_memory() if self.backend.pinned else windows)
        host, event = self.backend.download(self._forward(self.backend.upload(staged), gather))
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
