"""Peak memory of tiled restore on a large frame, against untiled, and how closely tiled output matches.

    python bench/bench_tiling.py --model realesr-animevideov3 --size 1280x720 --tile 256 --untiled
    python bench/bench_tiling.py --model realesrgan-x4plus --size 3840x2160 --tile 256 --device cuda --untiled

Each measured run is a fresh process (peak RSS from ``ru_maxrss``; on CUDA also the peak allocated device
memory) that puts one real frame through the restore stage's ``DeviceRunner`` (fp16 on CUDA, fp32 on the
CPU, channels_last): Kodak kodim15 from ../shared/data (``--image``: any image FFmpeg reads, or a ``.npy``
of it where PyAV is missing), resized bicubically to ``--size``. "Before the frame" is the RSS with the
model loaded. The tiled output is compared with the untiled output of the whole frame (``--untiled``, when
it fits), and with the untiled model run on a ``--crop`` region alone, away from that crop's own borders
(where the crop lacks the context the full frame has); the crop is centred on a corner where four tiles meet.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images" / "kodak" / "kodim15.png"
TMP = Path("/tmp")


def real_frame(image: str, w: int, h: int) -> np.ndarray:
    """The image as (h, w, 3) uint8, resized bicubically."""
    import torch
    import torch.nn.functional as F

    if image.endswith(".npy"):
        rgb = np.load(image)
    else:
        import av

        with av.open(image) as c:
            rgb = next(c.decode(video=0)).to_ndarray(format="rgb24")
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    y = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    return y.clamp(0, 255).round().to(torch.uint8)[0].permute(1, 2, 0).contiguous().numpy()


def child(args: argparse.Namespace) -> None:
    """One measured run: the frame (or its crop) through the runner; saves the output, prints JSON."""
    import torch

    from vflow.models import load_model
    from vflow.pipeline.gpu import DeviceRunner, resolve_device, resolve_dtype

    w, h = map(int, args.size.split("x"))
    frame = real_frame(args.image, w, h)
    c = args.crop
    if args.child == "crop":
        frame = frame[args.crop_at:args.crop_at + c, args.crop_at:args.crop_at + c]
    x = torch.from_numpy(np.ascontiguousarray(frame))[None]
    device = resolve_device(args.device)
    dtype = resolve_dtype("auto", device)
    net = load_model(args.model, device).to(dtype).to(memory_format=torch.channels_last)
    overlap = args.tile_overlap if args.tile_overlap is not None else int(getattr(net, "tile_overlap", 16))
    runner = DeviceRunner(net, device, dtype, channels_last=True, tile=args.tile if args.child == "tiled" else 0,
                          tile_overlap=overlap)
    window = 2 * int(getattr(net, "context", 0)) + 1          # a temporal model: a still window of the frame
    index = torch.zeros((1, window), dtype=torch.long) if window > 1 else None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    try:
        out = (runner.submit(x, windows=index) + runner.drain())[0][1][0].numpy()
    except (RuntimeError, MemoryError) as e:  # an untiled 4K frame may not fit: that is the point of tiling
        print(json.dumps({"before_mb": before, "error": str(e).splitlines()[0][:120]}))
        return
    secs = time.perf_counter() - t0
    t1 = time.perf_counter()                 # the same frame again: oneDNN's kernels for each tile shape exist now
    runner.submit(x, windows=index)
    runner.drain()
    warm = time.perf_counter() - t1
    np.save(args.save, out)
    gpu = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    print(json.dumps({"before_mb": before, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "gpu_peak_mb": gpu, "seconds": secs, "warm_seconds": warm}))


def run(role: str, args: argparse.Namespace) -> dict:
    opts = ("model", "size", "tile", "tile_overlap", "crop", "crop_at", "device", "image")
    cmd = [sys.executable, __file__, "--child", role, "--save", str(TMP / f"vflow_{role}.npy")] + [
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k in opts and v is not None]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["killed"])[-1][:120]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="realesr-animevideov3")
    ap.add_argument("--size", default="3840x2160")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--tile-overlap", type=int, default=None, help="default: the model's own")
    ap.add_argument("--crop", type=int, default=256, help="the crop's side, input pixels")
    ap.add_argument("--crop-at", type=int, default=None, help="default: centred on a tile corner")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--image", default=str(KODAK))
    ap.add_argument("--untiled", action="store_true", help="also run the whole frame untiled")
    ap.add_argument("--child", choices=["tiled", "untiled", "crop"])
    ap.add_argument("--save", default="")
    args = ap.parse_args()
    if args.crop_at is None:
        args.crop_at = 2 * args.tile - args.crop // 2
    if args.child:
        child(args)
        return
    rows = {"tiled": run("tiled", args)}
    if args.untiled:
        rows["untiled"] = run("untiled", args)
    rows["crop, untiled"] = run("crop", args)
    overlap = "the model's own" if args.tile_overlap is None else args.tile_overlap
    print(f"{args.model}, {args.size} input, tile {args.tile}, overlap {overlap}, device {args.device}\n")
    print("| run | RSS before the frame MB | peak RSS MB | peak GPU MB | seconds, first frame | seconds, again |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        if "error" in r:
            print(f"| {name} | {r.get('before_mb', 0):.0f} | failed: {r['error']} | | | |")
            continue
        gpu = f"{r['gpu_peak_mb']:.0f}" if r["gpu_peak_mb"] is not None else "-"
        print(f"| {name} | {r['before_mb']:.0f} | {r['peak_mb']:.0f} | {gpu} | {r['seconds']:.2f} | {r['warm_seconds']:.2f} |")
    if "error" in rows["tiled"]:
        return
    tiled = np.load(TMP / "vflow_tiled.npy")
    s = tiled.shape[0] // int(args.size.split("x")[1])
    print()
    whole = args.untiled and "error" not in rows["untiled"]
    untiled = np.load(TMP / "vflow_untiled.npy") if whole else None
    if untiled is not None:
        print(f"tiled vs untiled, whole frame: PSNR {psnr(tiled, untiled):.2f} dB")
        b = args.tile * s  # where they differ most: PSNR per tile, the worst five (output pixel rows/columns)
        cells = sorted((psnr(tiled[y:y + b, x:x + b], untiled[y:y + b, x:x + b]), y, x)
                       for y in range(0, tiled.shape[0], b) for x in range(0, tiled.shape[1], b))
        print("worst tiles (PSNR dB @ output y, x): " + ", ".join(f"{v:.1f} @ {y}, {x}" for v, y, x in cells[:5])
              + f"; median tile {cells[len(cells) // 2][0]:.1f} dB")
    if "error" not in rows["crop, untiled"]:
        c, at, m = args.crop * s, args.crop_at * s, args.crop * s // 4  # leave out the crop's border quarter
        crop = np.load(TMP / "vflow_crop.npy")[m:-m, m:-m]
        print(f"on the inner half of the {args.crop}x{args.crop} crop at ({args.crop_at}, {args.crop_at}), which "
              f"holds a corner where four tiles meet, against the untiled crop: tiled PSNR {psnr(tiled[at:at + c, at:at + c][m:-m, m:-m], crop):.2f} dB"
              + (f", untiled whole frame {psnr(untiled[at:at + c, at:at + c][m:-m, m:-m], crop):.2f} dB" if untiled is not None else ""))

if __name__ == "__main__":
    main()
