"""Restore-model throughput (``vflow bench restore``): the vflow restore path against a bare ``model(x)``
loop, and the CPU options.

    vflow bench restore [--quick] [--device cpu|cuda] [--no-compile]

For each model and input size: frames/s of a bare loop over ready float tensors (``model(x)`` under
``no_grad``), and of vflow's path (``DeviceRunner``: uint8 frames in, the same model, clamped uint8
frames out, the ring and ordering of the restore stage) on the same frames, for batch sizes 1/4/8
(on CUDA, fp16 and 4 batches in a row per timed run, so copies can overlap compute). On CUDA then: the
model's share of GPU time (CUDA events around each model call) with pinned double buffering vs
pageable buffers in turn, the copy times, and cuDNN autotuning. On the CPU (not with ``--quick``): at
batch 1, channels_last, one vs two threads, bf16, and ``torch.compile`` (first call timed apart). Figures
are medians of the timed repetitions after one warm-up call; bare and vflow are timed in turn.
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


def _medians(*fns: Callable[[], object], reps: int) -> list[float]:
    """Median seconds of each of ``fns``, timed in turn after one warm-up call each (drift on a shared machine
    hits them all alike)."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def _frames(n: int, w: int, h: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=g)


def _net(name: str, device: torch.device) -> tuple[torch.nn.Module, torch.dtype]:
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    return load_model(name, device).to(dtype).to(memory_format=torch.channels_last), dtype


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_batches(name: str, w: int, h: int, device: torch.device, batches: list[int], reps: int,
                  stream: int = 1) -> list[str]:
    """Rows of frames/s: ``stream`` batches in a row, bare ``model(x)`` on ready device tensors vs vflow's path."""
    net, dtype = _net(name, device)
    rows = []
    for b in batches:
        frames = _frames(b, w, h)
        x = frames.permute(0, 3, 1, 2).to(device, dtype).div(255).contiguous(memory_format=torch.channels_last)
        runner = DeviceRunner(net, device, dtype, channels_last=True)

        def bare() -> None:
            with torch.no_grad():
                for _ in range(stream):
                    net(x)
            _sync(device)

        def vflow_path() -> None:
            for _ in range(stream):
                runner.submit(frames)
            runner.drain()

        t_bare, t_vflow = _medians(bare, vflow_path, reps=reps)
        n = b * stream
        rows.append(f"| {name} | {w}x{h} | {b} | {n / t_bare:.2f} | {n / t_vflow:.2f} | {t_vflow / t_bare:.2f}x |")
    return rows


def _timed(fn: Callable[[torch.Tensor], torch.Tensor], spans: list[tuple[torch.cuda.Event, torch.cuda.Event]]
           ) -> Callable[[torch.Tensor], torch.Tensor]:
    """``fn`` with a pair of CUDA timing events recorded around each call on the current stream."""
    def wrapped(x: torch.Tensor) -> torch.Tensor:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        y = fn(x)
        end.record()
        spans.append((start, end))
        return y
    return wrapped


def bench_busy(name: str, w: int, h: int, device: torch.device, batch: int, n_batches: int, pin: bool) -> str:
    """One row: ``n_batches`` uint8 batches through ``DeviceRunner`` (pinned double buffering or not) after as
    many to warm up (caching allocators), with CUDA events around every batch's compute-stream work (uint8
    conversions and model) and around every model call: their shares of the GPU's wall time."""
    net, dtype = _net(name, device)
    batch_spans: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
    model_spans: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
    frames = _frames(batch, w, h)
    runner = DeviceRunner(_timed(net, model_spans), device, dtype, pin=pin, channels_last=True)
    runner._forward = _timed(runner._forward, batch_spans)  # type: ignore[method-assign]
    for _ in range(n_batches):
        runner.submit(frames)
    runner.drain()
    batch_spans.clear()
    model_spans.clear()
    first, last = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    _sync(device)
    t0 = time.perf_counter()
    first.record()
    for _ in range(n_batches):
        runner.submit(frames)
    runner.drain()
    last.record()
    last.synchronize()
    wall, gpu_wall = time.perf_counter() - t0, first.elapsed_time(last)
    busy, model = (sum(s.elapsed_time(e) for s, e in spans) / gpu_wall for spans in (batch_spans, model_spans))
    copies = _copy_ms(frames, int(net.scale), device, pin)
    return (f"| {name} | {w}x{h} | {batch} | {'pinned, double-buffered' if pin else 'pageable, in turn'} "
            f"| {n_batches * batch / wall:.2f} | {100 * busy:.1f}% | {100 * model:.1f}% | {copies} |")


def _copy_ms(frames: torch.Tensor, scale: int, device: torch.device, pinned: bool) -> str:
    """Host->device of one uint8 input batch and device->host of its output, in ms, from CUDA events."""
    n, h, w, c = frames.shape
    host_in = frames.pin_memory() if pinned else frames
    dev = torch.empty((n, h * scale, w * scale, c), dtype=torch.uint8, device=device)
    host_out = torch.empty(tuple(dev.shape), dtype=torch.uint8, pin_memory=pinned)
    marks = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
    _sync(device)
    marks[0].record()
    host_in.to(device, non_blocking=True)
    marks[1].record()
    host_out.copy_(dev, non_blocking=True)
    marks[2].record()
    marks[2].synchronize()
    return f"{marks[0].elapsed_time(marks[1]):.1f} in + {marks[1].elapsed_time(marks[2]):.1f} out"


def bench_cudnn_autotune(name: str, w: int, h: int, device: torch.device, batch: int, reps: int) -> str:
    """One row: bare ``model(x)`` frames/s with cuDNN's default algorithms, then with ``cudnn.benchmark``."""
    net, dtype = _net(name, device)
    x = torch.rand((batch, 3, h, w), device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)

    def bare() -> None:
        with torch.no_grad():
            net(x)
        _sync(device)

    fps = []
    for autotune in (False, True):
        torch.backends.cudnn.benchmark = autotune
        fps.append(batch / _medians(bare, reps=reps)[0])
    torch.backends.cudnn.benchmark = False
    return f"| {name} | {w}x{h} | {batch} | {fps[0]:.2f} | {fps[1]:.2f} |"


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
        rows.append(f"| {name} | {w}x{h} | {label}, {threads} threads | {1 / _medians(fn, reps=reps)[0]:.2f} | |")
    torch.set_num_threads(1)
    rows.append(f"| {name} | {w}x{h} | fp32, channels_last, 1 thread | {1 / _medians(run(cl, x_cl), reps=reps)[0]:.2f} | |")
    torch.set_num_threads(threads)
    if compile_too:
        compiled = torch.compile(cl)
        t0 = time.perf_counter()
        run(compiled, x_cl)()
        first = time.perf_counter() - t0
        rows.append(f"| {name} | {w}x{h} | fp32, channels_last, torch.compile | {1 / _medians(run(compiled, x_cl), reps=reps)[0]:.2f} "
                    f"| first call {first:.0f} s |")
    return rows


def restore(device_name: str | None = None, quick: bool = False, compile_too: bool = True) -> None:
    """Print the restore benchmark tables (see the module docstring)."""
    device = torch.device(device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
    reps = 2 if quick else 3
    batches = [1, 4] if quick else [1, 4, 8]
    cuda = device.type == "cuda"
    cases = GPU_CASES if cuda else CPU_CASES
    stream = 4 if cuda else 1
    print(f"device {device} ({torch.cuda.get_device_name(device) if cuda else 'cpu'}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {'fp16' if cuda else 'fp32'}, channels_last, {stream} batch(es) a run\n")
    print("| model | input | batch | bare model(x) fps | vflow path fps | vflow/bare time |")
    print("|---|---|---|---|---|---|")
    for name, w, h in cases:
        for row in bench_batches(name, w, h, device, batches, reps, stream):
            print(row, flush=True)
    if cuda:
        print("\n| model | input | batch | host buffers | fps | GPU busy (compute stream) | of which the model "
              "| copies per batch, ms |")
        print("|---|---|---|---|---|---|---|---|")
        for name, w, h in cases:
            for pin in (True, False):
                print(bench_busy(name, w, h, device, 4, 8 if quick else 16, pin), flush=True)
        print("\n| model | input | batch | bare fps, cuDNN defaults | bare fps, cudnn.benchmark |")
        print("|---|---|---|---|---|")
        for name, w, h in cases:
            print(bench_cudnn_autotune(name, w, h, device, 4, reps), flush=True)
    elif not quick:
        print("\n| model | input | variant (batch 1) | fps | note |")
        print("|---|---|---|---|---|")
        for name, w, h in CPU_CASES:
            for row in bench_cpu_options(name, w, h, reps, compile_too=compile_too and "animevideo" in name):
                print(row, flush=True)
