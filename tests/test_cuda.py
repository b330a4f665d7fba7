"""The CUDA path of the device runner (pinned ring, side streams, events): skipped where torch has no CUDA.

Needs no PyAV or test data, so it also runs on a bare GPU machine: ``pytest --noconftest tests/test_cuda.py``.
"""

from __future__ import annotations

import copy

import pytest
import torch

from vflow.pipeline.gpu import DeviceRunner

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
CUDA, CPU = torch.device("cuda"), torch.device("cpu")
SHAPES = [(2, 4, 6), (3, 8, 6), (1, 4, 6), (2, 16, 12), (2, 4, 6)]  # a larger batch then a smaller: buffers reused


def _batches() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=g) for n, h, w in SHAPES]


def _upscale(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(1 - x, scale_factor=2, mode="nearest")


@pytest.mark.parametrize("pin", [True, False])
@pytest.mark.parametrize("depth", [1, 3])
def test_cuda_runner_gives_the_cpu_runners_frames_in_order(pin: bool, depth: int) -> None:
    batches = _batches()

    def run(device: torch.device) -> list[tuple[int, torch.Tensor]]:
        runner = DeviceRunner(_upscale, device, depth=depth, pin=pin)
        got = [r for i, b in enumerate(batches) for r in runner.submit(b, i)]
        return got + runner.drain()

    on_gpu, on_cpu = run(CUDA), run(CPU)
    assert [t for t, _ in on_gpu] == list(range(len(batches)))
    for (_, a), (_, b) in zip(on_gpu, on_cpu):
        assert a.device.type == "cpu" and a.is_pinned() == pin
        assert torch.equal(a, b)


def test_results_handed_out_are_not_overwritten_by_later_batches() -> None:
    runner = DeviceRunner(lambda x: x, CUDA, depth=1)
    kept = [f for i in range(6) for _, f in runner.submit(torch.full((2, 64, 64, 3), i, dtype=torch.uint8), i)]
    kept += [f for _, f in runner.drain()]
    for _ in range(10):  # churn the caching host allocator
        runner.submit(torch.full((2, 64, 64, 3), 200, dtype=torch.uint8))
    runner.drain()
    assert [int(f.float().mean()) for f in kept] == list(range(6))


def test_fp16_tiled_model_on_cuda_matches_fp32_on_cpu() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 3, padding=1), torch.nn.PixelShuffle(2), torch.nn.Sigmoid())
    frames = torch.randint(0, 256, (2, 40, 56, 3), dtype=torch.uint8)
    cpu = DeviceRunner(net, CPU, tile=16, tile_overlap=4)
    gpu = DeviceRunner(copy.deepcopy(net).to(CUDA).half(), CUDA, torch.float16, tile=16, tile_overlap=4, channels_last=True)
    a = (cpu.submit(frames) + cpu.drain())[0][1]
    b = (gpu.submit(frames) + gpu.drain())[0][1]
    assert a.shape == b.shape == (2, 80, 112, 3)
    assert int((a.int() - b.int()).abs().max()) <= 2


@pytest.mark.parametrize("tile", [0, 32])
def test_temporal_windows_on_cuda_match_the_cpu(tile: int) -> None:
    """A FilmNet-style window model: the frames uploaded once, the (pinned) index gathered on the device."""
    from vflow.models.film import FilmNet

    torch.manual_seed(0)
    net = FilmNet(frames=3, width=8, depth=2).eval()
    torch.nn.init.normal_(net.tail.weight, std=0.05)
    frames = torch.randint(0, 256, (6, 48, 64, 3), dtype=torch.uint8)
    index = torch.tensor([[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3], [4, 4, 5], [4, 5, 5]])
    cpu = DeviceRunner(net, CPU, tile=tile, tile_overlap=32)
    gpu = DeviceRunner(copy.deepcopy(net).to(CUDA), CUDA, tile=tile, tile_overlap=32)
    a = (cpu.submit(frames, windows=index) + cpu.drain())[0][1]
    b = (gpu.submit(frames, windows=index) + gpu.drain())[0][1]
    assert a.shape == b.shape == (6, 48, 64, 3)
    assert int((a.int() - b.int()).abs().max()) <= 1
