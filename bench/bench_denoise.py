"""Denoise: vflow ``temporal_smooth`` against FFmpeg hqdn3d, quality and speed (decode included), in one run.

Quality: clean frames of ../shared/data plus seeded, luma-dependent grain (sigma 10 and 20); PSNR and SSIM
gain over the noisy input of vflow's ``TemporalDenoiser`` (the kernel of ``temporal_smooth mode=denoise``)
and of hqdn3d default (4:3:6:4.5) and strong (6:4.5:9:6.75). PyAV's bundled FFmpeg has no hqdn3d (a GPL
filter), so hqdn3d runs in the ffmpeg CLI on the same RGB frames (as GBRP planes) through raw-video pipes;
its kernel fps includes that piping.

Speed, decode included: each clip is written once, with grain sigma 10, as lossless FFV1 yuv420p in a temp
dir, then in interleaved rounds (median wall time, all frames):
``ffmpeg -i grainy.mkv -vf hqdn3d=... -f null -`` (one process with FFmpeg's own decode and filter threads;
hqdn3d runs on yuv420p, its native format, as users run it) against an in-process ``vflow.Pipeline``
``decode -> temporal_smooth(mode=denoise) -> discard`` (no encode; vflow converts to RGB and denoises all
three full-size channels). Decode alone is timed on both sides too. vflow's time includes building the
pipeline (opening the file), not Python's start; FFmpeg's includes its process start. CPU time (all
threads, user + system) per frame is printed too: on a shared machine it moves less than wall time.
The header prints OMP_WAIT_POLICY: numba's OpenMP threads spin at each parallel loop's end unless it is
PASSIVE, which on a busy 2-core machine makes vflow's kernels several times slower (docs/performance.md);
``import vflow`` sets PASSIVE unless the variable is already set, so run with ``OMP_WAIT_POLICY=ACTIVE`` to
see the spinning.

    PYTHONPATH=. python bench/bench_denoise.py [--rounds 5] [--frames-720p 150] [--skip-720p]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import av
import numpy as np

import vflow
from vflow.kernels.metrics import psnr, ssim
from vflow.kernels.temporal import TemporalDenoiser
from vflow.pipeline.frames import FrameBatch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "kernels"))
from kernel_media import DATA, decode, grain  # noqa: E402

TEARS = "video/clean_scenecut_tears_of_steel_640x360.mp4"
CISCO = "video/clean_openh264_cisco_vt2people_320x192_12fps_9f.y4m"
FLOWER = "video/clean_openh264_flower_1280x720_300f.h264"
HQDN3D = {"hqdn3d default 4:3:6:4.5": "4:3:6:4.5", "hqdn3d strong 6:4.5:9:6.75": "6:4.5:9:6.75"}


@vflow.stage("bench-discard")
class Discard(vflow.Stage):
    """A sink that counts frames and drops them (a null output, like ``-f null``)."""

    outputs: dict[str, type] = {}

    def __init__(self) -> None:
        self.frames = 0

    def process(self, batch: FrameBatch) -> None:
        self.frames += len(batch.frames)


def hqdn3d(frames: np.ndarray, params: str) -> tuple[np.ndarray, float]:
    """hqdn3d on RGB frames (as GBRP planes) in the ffmpeg CLI through raw pipes: output and seconds."""
    n, h, w, _ = frames.shape
    cmd = ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "-",
           "-vf", f"format=gbrp,hqdn3d={params},format=rgb24", "-f", "rawvideo", "-"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(frames.shape), time.perf_counter() - t0


def vflow_denoise(frames: np.ndarray) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = TemporalDenoiser()(frames, np.zeros(len(frames), np.int64))
    return out, time.perf_counter() - t0


def bench_quality(clips: dict[str, np.ndarray], rounds: int) -> None:
    print("\n| clip | grain sigma | method | PSNR gain dB | SSIM gain | kernel fps (median) |")
    print("|---|---|---|---|---|---|")
    vflow_denoise(next(iter(clips.values()))[:2])  # numba compile / cache load outside the timing
    for name, clean in clips.items():
        for sigma in (10, 20):
            noisy = grain(clean, sigma)
            p0, s0 = psnr(noisy, clean).mean(), ssim(noisy, clean).mean()
            methods = {"vflow temporal_smooth": vflow_denoise,
                       **{m: (lambda f, p=p: hqdn3d(f, p)) for m, p in HQDN3D.items()}}
            outs: dict[str, np.ndarray] = {}
            secs: dict[str, list[float]] = {m: [] for m in methods}
            for _ in range(rounds):
                for method, run in methods.items():
                    outs[method], s = run(noisy)
                    secs[method].append(s)
            for method, out in outs.items():
                print(f"| {name} | {sigma} | {method} | {psnr(out, clean).mean() - p0:+.2f} "
                      f"| {ssim(out, clean).mean() - s0:+.3f} | {len(clean) / np.median(secs[method]):.0f} |",
                      flush=True)


def clean_chunks(name: str, count: int | None, chunk: int = 16) -> Iterator[np.ndarray]:
    """The first ``count`` frames (all if None) of a clip under shared/data, ``chunk`` at a time, as RGB."""
    with av.open(str(DATA / name)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = (f.to_ndarray(format="rgb24") for f in container.decode(stream))
        while batch := list(itertools.islice(frames, chunk if count is None else min(chunk, count))):
            yield np.stack(batch)
            if count is not None:
                count -= len(batch)


def grainy_file(name: str, count: int | None, sigma: float, path: Path) -> tuple[int, int, int]:
    """Write frames of a clip plus seeded grain as lossless FFV1 yuv420p; returns frames, width, height."""
    proc = None
    n = 0
    for i, frames in enumerate(clean_chunks(name, count)):
        if proc is None:
            h, w = frames.shape[1:3]
            proc = subprocess.Popen(["ffmpeg", "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                                     "-s", f"{w}x{h}", "-r", "24", "-i", "-", "-pix_fmt", "yuv420p", "-c:v", "ffv1",
                                     "-level", "3", "-g", "1", "-slices", "4", str(path)], stdin=subprocess.PIPE)
        assert proc.stdin is not None
        proc.stdin.write(grain(frames, sigma, seed=i).tobytes())
        n += len(frames)
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg could not write {path}")
    return n, w, h


def ffmpeg_run(path: Path, vf: str | None) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) of ``ffmpeg -i path [-vf vf] -f null -``."""
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), *(["-vf", vf] if vf else []), "-f", "null", "-"]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0, _children_cpu() - cpu0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def vflow_run(path: Path, denoise: bool, frames: int) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of this process) of decode [-> temporal_smooth] -> discard."""
    stages = {"decode": {"type": "decode", "params": {"path": str(path)}}, "sink": {"type": "bench-discard"}}
    if denoise:
        stages["smooth"] = {"type": "temporal_smooth", "params": {"mode": "denoise"}}
    chain = "decode.video -> smooth -> sink" if denoise else "decode.video -> sink"
    cpu0, t0 = time.process_time(), time.perf_counter()
    pipeline = vflow.Pipeline.load({"stages": stages, "edges": [chain]})
    pipeline.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    got = pipeline.stage("sink").frames  # type: ignore[attr-defined]
    if got != frames:
        raise RuntimeError(f"vflow delivered {got} of {frames} frames")
    return wall, cpu


def bench_speed(files: dict[str, tuple[Path, int]], rounds: int) -> None:
    runs = {
        "ffmpeg decode only": lambda p, n: ffmpeg_run(p, None),
        "vflow decode only": lambda p, n: vflow_run(p, False, n),
        **{f"ffmpeg decode + {m}": (lambda p, n, q=q: ffmpeg_run(p, f"hqdn3d={q}")) for m, q in HQDN3D.items()},
        "vflow decode + temporal_smooth": lambda p, n: vflow_run(p, True, n),
    }
    print(f"\n| clip (FFV1, grain sigma 10) | frames | run | fps (median of {rounds}) | fps each round "
          "| vs hqdn3d default | CPU ms/frame (median) |")
    print("|---|---|---|---|---|---|---|")
    for name, (path, n) in files.items():
        vflow_run(path, True, n)  # warm-up: numba cache load, file cache
        times: dict[str, list[tuple[float, float]]] = {r: [] for r in runs}
        for _ in range(rounds):
            for run, fn in runs.items():
                times[run].append(fn(path, n))
        ref = np.median([w for w, _ in times["ffmpeg decode + hqdn3d default 4:3:6:4.5"]])
        for run, t in times.items():
            wall, cpu = np.median([w for w, _ in t]), np.median([c for _, c in t])
            ratio = f"{ref / wall:.2f}x" if "hqdn3d" in run or "temporal" in run else ""
            print(f"| {name} | {n} | {run} | {n / wall:.1f} | {', '.join(f'{n / w:.0f}' for w, _ in t)} "
                  f"| {ratio} | {1e3 * cpu / n:.1f} |", flush=True)


def bench_denoise(rounds: int = 5, frames_720p: int | None = 150) -> None:
    """Speed (decode included) then quality; ``frames_720p=None`` leaves the 1280x720 clip out."""
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split()[2]
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
          f"ffmpeg CLI {ffmpeg}, PyAV's FFmpeg {av.ffmpeg_version_info}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = {"tears of steel 640x360": (TEARS, None)}
        if frames_720p is not None:
            files["flower 1280x720"] = (FLOWER, frames_720p)
        grainy = {}
        for label, (clip, count) in files.items():
            path = Path(tmp) / f"{Path(clip).stem}.mkv"
            grainy[label] = (path, grainy_file(clip, count, 10.0, path)[0])
        bench_speed(grainy, rounds)
    clips = {"tears of steel 640x360": decode(TEARS, 66, 48), "cisco 320x192": decode(CISCO)}
    if frames_720p is not None:
        clips["flower 1280x720"] = decode(FLOWER, 0, 48)
    bench_quality(clips, rounds)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (median)")
    ap.add_argument("--frames-720p", type=int, default=150, help="frames of the 1280x720 clip for speed")
    ap.add_argument("--skip-720p", action="store_true")
    args = ap.parse_args()
    bench_denoise(args.rounds, None if args.skip_720p else args.frames_720p)


if __name__ == "__main__":
    main()
