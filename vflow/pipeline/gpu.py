"""Device batching: uint8 frame batches in, a model on the device, uint8 frames out, with no per-batch sync.

On CUDA, each batch is staged into a ring of pinned host buffers, copied host->device on a side stream
while the previous batch computes (double buffering), converted uint8->float and back on the device,
and copied device->host into pinned buffers; the host waits only for the *oldest* batch in flight.
On the CPU the very same ring and ordering logic runs, with plain buffers and no streams: the only
CUDA-specific code is the small ``_Cuda`` backend below.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
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

    def download(self, dev: torch.Tensor, host: torch.Tensor) -> Any:
        host.copy_(dev)
        return None

    def wait(self, event: Any) -> None:
        return None


class _Cuda(_Host):
    """CUDA backend: pinned buffers, a side stream for host->device copies, events instead of syncs."""

    pinned = True

    def __init__(self, device: torch.device):
        super().__init__(device)
        self.copy_stream = torch.cuda.Stream(device)
        self.compute_stream = torch.cuda.current_stream(device)

    def empty(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.empty(shape, dtype=torch.uint8, pin_memory=True)

    def upload(self, host: torch.Tensor) -> torch.Tensor:
        with torch.cuda.stream(self.copy_stream):
            dev = host.to(self.device, non_blocking=True)
        self.compute_stream.wait_stream(self.copy_stream)
        dev.record_stream(self.compute_stream)
        return dev

    def download(self, dev: torch.Tensor, host: torch.Tensor) -> Any:
        host.copy_(dev, non_blocking=True)
        event = torch.cuda.Event()
        event.record(self.compute_stream)
        return event

    def wait(self, event: Any) -> None:
        event.synchronize()


@dataclass
class _Slot:
    """One ring entry: the host staging buffers of a batch in flight."""

    host_in: torch.Tensor | None = None
    host_out: torch.Tensor | None = None


class DeviceRunner:
    """Runs ``model`` over uint8 (N, H, W, 3) CPU batches on ``device``; results come back in order.

    ``submit`` returns the results that are ready (a batch comes back when ``depth`` newer batches are in
    flight, or at ``drain``); each result is ``(tag, frames)`` with ``frames`` a fresh uint8 CPU tensor.
    """

    def __init__(self, model: Model, device: torch.device, dtype: torch.dtype = torch.float32,
                 depth: int = 2, pin: bool = True, channels_last: bool = False):
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.model, self.device, self.dtype, self.channels_last = model, device, dtype, channels_last
        self.backend = _Cuda(device) if device.type == "cuda" and pin else _Host(device)
        self.ring = [_Slot() for _ in range(depth + 1)]
        self.in_flight: deque[tuple[Any, int, Any, tuple[int, ...]]] = deque()
        self.depth = depth
        self._next = 0

    @staticmethod
    def _buffer(current: torch.Tensor | None, shape: tuple[int, ...], make: Callable[[tuple[int, ...]], torch.Tensor]
                ) -> torch.Tensor:
        if current is None or current.numel() < _numel(shape):
            return make(shape)
        return current.view(-1)[: _numel(shape)].view(shape)

    def _forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> float NCHW in [0, 1] -> model -> clamped uint8 NHWC, all on the device."""
        with torch.no_grad():
            x = frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2).to(self.dtype).div_(255)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = self.model(x)
            return y.float().clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    def submit(self, frames: torch.Tensor, tag: Any = None) -> list[tuple[Any, torch.Tensor]]:
        index = self._next % len(self.ring)
        self._next += 1
        slot = self.ring[index]
        slot.host_in = self._buffer(slot.host_in, tuple(frames.shape), self.backend.empty)
        slot.host_in.copy_(frames)
        out = self._forward(self.backend.upload(slot.host_in))
        slot.host_out = self._buffer(slot.host_out, tuple(out.shape), self.backend.empty)
        event = self.backend.download(out, slot.host_out)
        self.in_flight.append((tag, index, event, tuple(out.shape)))
        return list(self._collect(keep=self.depth))

    def drain(self) -> list[tuple[Any, torch.Tensor]]:
        """Wait for every batch still in flight."""
        return list(self._collect(keep=0))

    def _collect(self, keep: int) -> Iterator[tuple[Any, torch.Tensor]]:
        while len(self.in_flight) > keep:
            tag, index, event, shape = self.in_flight.popleft()
            self.backend.wait(event)
            host_out = self.ring[index].host_out
            assert host_out is not None
            yield tag, host_out.view(-1)[: _numel(shape)].view(shape).clone()


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
