"""Restore-model throughput (``vflow bench restore``): the vflow restore path against a bare ``model(x)``
loop, and the CPU options.

    vflow bench restore [--quick] [--device cpu|cuda] [--no-compile]

For each model and input size: frames/s of a bare loop over ready float tensors (``model(x)`` under
``no_grad``), and of vflow's path (``DeviceRunner``: uint8 frames in, the same model, clamped uint8
frames out, the ring and ordering of the restore stage) on the same frames, for batch sizes 1/4/8;
then, at batch 1, the CPU options: channels_last, one vs two threads, bf16, and ``torch.compile``
(first call timed apart). Figures are medians of the timed repetitions after one warm-up call.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from vflow.models import load_model
from vflow.pipeline.gpu import DeviceRunner

CPU_CASES = [("realesr-animevideov3", 320, 240), ("realesrgan-x4plus", 160, 120)]
GPU_CASES = [("realesr-animevideov3", 1920, 1080), ("realesrgan-x4plus", 854, 480)]


def _time(fn: Callable[[], object], reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _frames(n: int, w: int, h: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=g)


def bench_batches(name: str, w: int, h: int, device: torch.device, batches: list[int], reps: int) -> list[str]:
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    net = load_model(name, device).to(dtype).to(memory_format=torch.channels_last)
    rows = []
    for b in batches:
        frames = _frames(b, w, h)
        x = frames.permute(0, 3, 1, 2).to(device, dtype).div(255).contiguous(memory_format=torch.channels_last)

        def bare() -> None:
            with torch.no_grad():
                net(x)
            if device.type == "cuda":
                torch.cuda.synchronize()

        runner = DeviceRunner(net, device, dtype, channels_last=True)

        def vflow_path() -> None:
            runner.submit(frames)
            runner.drain()

        t_bare, t_vflow = _time(bare, reps), _time(vflow_path, reps)
        rows.append(f"| {name} | {w}x{h} | {b} | {b / t_bare:.2f} | {b / t_vflow:.2f} | {t_vflow / t_bare:.2f}x |")
    return rows


def bench_cpu_options(name: str, w: int, h: int, reps: int, compile_too: bool) -> list[str]:
    frames = _frames(1, w, h)
    x = frames.permute(0, 3, 1, 2).float().div(255)
    rows = []

    def run(net: torch.nn.Module, inp: torch.Tensor) -> Callable[[], object]:
        def fn() -> object:
            with torch.no_grad():
                return net(inp)
        return fn

    base = load_model(name, "cpu")
    cl = load_model(name, "cpu").to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    variants: list[tuple[str, Callable[[], object]]] = [
        ("fp32, contiguous", run(base, x)),
        ("fp32, channels_last", run(cl, x_cl)),
        ("bf16, channels_last", run(load_model(name, "cpu").to(torch.bfloat16).to(memory_format=torch.channels_last),
                                    x_cl.to(torch.bfloat16))),
    ]
    threads = torch.get_num_threads()
    for label, fn in variants:
        rows.append(f"| {name} | {w}x{h} | {label}, {threads} threads | {1 / _time(fn, reps):.2f} | |")
    torch.set_num_threads(1)
    rows.append(f"| {name} | {w}x{h} | fp32, channels_last, 1 thread | {1 / _time(run(cl, x_cl), reps):.2f} | |")
    torch.set_num_threads(threads)
    if compile_too:
        compiled = torch.compile(cl)
        t0 = time.perf_counter()
        run(compiled, x_cl)()
        first = time.perf_counter() - t0
        rows.append(f"| {name} | {w}x{h} | fp32, channels_last, torch.compile | {1 / _time(run(compiled, x_cl), reps):.2f} "
                    f"| first call {first:.0f} s |")
    return rows


def restore(device_name: str | None = None, quick: bool = False, compile_too: bool = True) -> None:
    """Print the restore benchmark tables (see the module docstring)."""
    device = torch.device(device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
    reps = 2 if quick else 3
    batches = [1, 4] if quick else [1, 4, 8]
    cases = GPU_CASES if device.type == "cuda" else CPU_CASES
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| model | input | batch | bare model(x) fps | vflow path fps | vflow/bare time |")
    print("|---|---|---|---|---|---|")
    for name, w, h in cases:
        for row in bench_batches(name, w, h, device, batches, reps):
            print(row, flush=True)
    if device.type == "cpu":
        print("\n| model | input | variant (batch 1) | fps | note |")
        print("|---|---|---|---|---|")
        for name, w, h in CPU_CASES:
            for row in bench_cpu_options(name, w, h, reps, compile_too=compile_too and "animevideo" in name):
                print(row, flush=True)
