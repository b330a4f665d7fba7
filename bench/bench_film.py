"""CPU speed of the FilmNet sizes: frames/s at 720x480 (scale 1) and 640x360 -> 1280x720 (scale 2).

    python bench/bench_film.py [--repeat 2] [--compile] [--extra 32,4,4 ...] [--no-peer]

fp32, channels_last, ``torch.inference_mode``, ``torch.set_num_threads`` at the machine's cores,
random weights (speed does not depend on them; the last layer is perturbed away from zero). The
input is a window of ``--frames`` frames in the ``(N, T, H, W, 3)`` layout that decoded uint8 frames
have, seen as ``(N, T, 3, H, W)``. Startup (first call) and steady state (after two warm-up calls,
the median call of at least ``--seconds`` of calls, robust to the bursts of a shared machine; ``best``
from the fastest call) are reported separately. The peer is the net ``restore_full`` runs today,
SRVGGNetCompact (64 features, 16 convs, ``realesr-animevideov3``'s shape) at the same scale, batch 1;
the ratio is FilmNet's best fps over the peer's. With ``--compile``, the first call includes compiling
(a cold inductor cache makes the first one in a fresh process much slower). Larger batches can run
slower per frame: glibc hands activations above its mmap threshold back to the kernel after every
call, and the next call page-faults them in again (film-l at batch 8: 8.8 fps, 16.3 fps with
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` raised, 17.9 at batch 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import vflow  # noqa: F401  (first: it sets OMP_WAIT_POLICY=PASSIVE before torch loads OpenMP, as in a run)

import torch
from torch import nn

from vflow.models.film import FILM_SIZES, FilmNet
from vflow.models.srvgg import SRVGGNetCompact

CASES = [(1, 720, 480), (2, 640, 360)]  # (scale, input width, input height)


def measure(net: nn.Module, x: torch.Tensor, seconds: float) -> tuple[float, float, float]:
    """(first call in s, steady frames/s from the median call after two warm-up calls, from the fastest)."""
    with torch.inference_mode():
        t0 = time.perf_counter()
        net(x)
        first = time.perf_counter() - t0
        net(x)
        times: list[float] = []
        while len(times) < 3 or sum(times) < seconds:
            t0 = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t0)
        return first, x.shape[0] / statistics.median(times), x.shape[0] / min(times)


def prepare(net: nn.Module, compile_: bool) -> nn.Module:
    net = net.eval().to(memory_format=torch.channels_last)
    return torch.compile(net) if compile_ else net


def window(batch: int, frames: int, w: int, h: int) -> torch.Tensor:
    return torch.rand(batch, frames, h, w, 3).permute(0, 1, 4, 2, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="*", default=list(FILM_SIZES), help="named sizes (default: all)")
    ap.add_argument("--extra", nargs="*", default=[], help="extra configs as width,depth,unshuffle")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--batches", type=int, nargs="*", default=[1, 4])
    ap.add_argument("--scales", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum steady-state time per row")
    ap.add_argument("--repeat", type=int, default=2, help="print the table this many times (noise)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile (slow first call)")
    ap.add_argument("--no-peer", action="store_true", help="skip the SRVGGNetCompact peer")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    configs = [(name, FILM_SIZES[name]) for name in args.sizes]
    for spec in args.extra:
        w, d, f = (int(v) for v in spec.split(","))
        configs.append((f"w{w}d{d}u{f}", {"width": w, "depth": d, "unshuffle": f}))
    cases = [c for c in CASES if c[0] in args.scales]
    omp = os.environ.get("OMP_WAIT_POLICY", "unset")
    print(f"torch {torch.__version__}, {args.threads} threads, OMP_WAIT_POLICY={omp}, fp32, channels_last, "
          f"frames={args.frames}, load average {os.getloadavg()[0]:.2f}")

    modes = ["eager", "compile"] if args.compile else ["eager"]
    cols = f"{'size':<12} {'params':>9} {'scale':>5} {'resolution':>18} {'batch':>5} {'mode':>7} {'first s':>7}"
    for rep in range(args.repeat):
        peer: dict[int, float] = {}
        for scale, w, h in [] if args.no_peer else cases:
            x = torch.rand(1, 3, h, w).contiguous(memory_format=torch.channels_last)
            peer[scale] = measure(prepare(SRVGGNetCompact(64, 16, scale), False), x, 0.0)[2]
        print(f"\nrepeat {rep + 1}/{args.repeat}\n{cols} {'fps':>7} {'best':>7} {'vs compact':>10}")
        for name, cfg in configs:
            for scale, w, h in cases:
                net = FilmNet(frames=args.frames, scale=scale, **cfg)
                nn.init.normal_(net.tail.weight, std=1e-3)
                params = sum(p.numel() for p in net.parameters())
                res = f"{w}x{h}" + (f"->{w * scale}x{h * scale}" if scale > 1 else "")
                for mode in modes:
                    model = prepare(net, mode == "compile")
                    for batch in args.batches:
                        first, fps, best = measure(model, window(batch, args.frames, w, h), args.seconds)
                        ratio = f"{best / peer[scale]:>9.1f}x" if scale in peer else ""
                        row = f"{name:<12} {params:>9,} {scale:>5} {res:>18} {batch:>5} {mode:>7} {first:>7.2f}"
                        print(f"{row} {fps:>7.2f} {best:>7.2f} {ratio}", flush=True)
                    if mode == "compile":
                        torch._dynamo.reset()
        for scale, w, h in cases:
            if scale in peer:
                row = f"{'srvgg-64x16':<12} {'':>9} {scale:>5} {f'{w}x{h}':>18} {1:>5} {'eager':>7} {'':>7}"
                print(f"{row} {'':>7} {peer[scale]:>7.2f}")

if __name__ == "__main__":
    main()
