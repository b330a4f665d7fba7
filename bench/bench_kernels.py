"""Benchmark the classical kernels against their usual peers, in one process, on shared/data.

Scene cuts: vflow SceneDetector vs PySceneDetect ContentDetector / AdaptiveDetector (F1 per clip,
+-1 frame, and detector time per frame on the same decoded full-size frames, decode excluded).
Denoise: vflow TemporalDenoiser vs FFmpeg hqdn3d default and strong (PSNR/SSIM gain over the
noisy input, frames per second). PyAV's bundled FFmpeg has no hqdn3d (a GPL filter), so hqdn3d
runs in the ffmpeg CLI through raw-video pipes; its fps includes that process's piping.

    PYTHONPATH=. python bench/bench_kernels.py   # needs scenedetect, opencv-python-headless, ffmpeg CLI
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
from scenedetect import AdaptiveDetector, ContentDetector, FrameTimecode

from vflow.kernels.metrics import psnr, ssim
from vflow.kernels.scene import SceneDetector
from vflow.kernels.temporal import TemporalDenoiser

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "kernels"))
from kernel_media import decode, grain  # noqa: E402
from test_kernel_scene import f1  # noqa: E402


def batches(name: str, size: int = 16):
    with av.open(str(DATA / name)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        buf = []
        for frame in container.decode(stream):
            buf.append(frame.to_ndarray(format="rgb24"))
            if len(buf) == size:
                yield np.stack(buf)
                buf = []
        if buf:
            yield np.stack(buf)


def bench_scenes() -> None:
    clips = json.loads((DATA / "cuts.json").read_text())["clips"]
    print("| clip | frames | F1 vflow | F1 Content | F1 Adaptive | vflow ms/frame | Content ms/frame | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name, info in clips.items():
        fps = float(info["fps"])
        ours, content, adaptive = SceneDetector(), ContentDetector(), AdaptiveDetector()
        found: dict[str, list[int]] = {"ours": [], "content": [], "adaptive": []}
        t_ours = t_content = 0.0
        n = 0
        for frames in batches(name):
            t0 = time.perf_counter()
            found["ours"] += ours.push(frames)
            t_ours += time.perf_counter() - t0
            for frame in frames:
                bgr = np.ascontiguousarray(frame[..., ::-1])
                tc = FrameTimecode(n, fps)
                t0 = time.perf_counter()
                found["content"] += [c.frame_num for c in content.process_frame(tc, bgr)]
                t_content += time.perf_counter() - t0
                found["adaptive"] += [c.frame_num for c in adaptive.process_frame(tc, bgr)]
                n += 1
        found["ours"] += ours.flush()
        found["adaptive"] += [c.frame_num for c in adaptive.post_process(FrameTimecode(n, fps))]
        truth = info["hard_cuts"]
        scores = [f1(found[k], truth) for k in ("ours", "content", "adaptive")]
        ms_ours, ms_content = 1e3 * t_ours / n, 1e3 * t_content / n
        print(f"| {Path(name).stem} | {n} | {scores[0]:.2f} | {scores[1]:.2f} | {scores[2]:.2f} "
              f"| {ms_ours:.2f} | {ms_content:.2f} | {ms_content / ms_ours:.2f}x |")


def hqdn3d(frames: np.ndarray, params: str) -> tuple[np.ndarray, float]:
    n, h, w, _ = frames.shape
    cmd = ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "-",
           "-vf", f"format=gbrp,hqdn3d={params},format=rgb24", "-f", "rawvideo", "-"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(frames.shape), time.perf_counter() - t0


def bench_denoise() -> None:
    clips = {
        "tears_of_steel 640x360": decode("video/clean_scenecut_tears_of_steel_640x360.mp4", 66, 48),
        "cisco 320x192": decode("video/clean_openh264_cisco_vt2people_320x192_12fps_9f.y4m"),
    }
    print("\n| clip | grain sigma | method | PSNR gain dB | SSIM gain | fps |")
    print("|---|---|---|---|---|---|")
    for name, clean in clips.items():
        ids = np.zeros(len(clean), int)
        TemporalDenoiser()(clean[:2], ids[:2])  # compile outside the timing
        for sigma in (10, 20):
            noisy = grain(clean, sigma)
            p0, s0 = psnr(noisy, clean).mean(), ssim(noisy, clean).mean()
            t0 = time.perf_counter()
            runs = {"vflow TemporalDenoiser": (TemporalDenoiser()(noisy, ids), time.perf_counter() - t0)}
            runs["hqdn3d default 4:3:6:4.5"] = hqdn3d(noisy, "4:3:6:4.5")
            runs["hqdn3d strong 6:4.5:9:6.75"] = hqdn3d(noisy, "6:4.5:9:6.75")
            for method, (out, secs) in runs.items():
                print(f"| {name} | {sigma} | {method} | {psnr(out, clean).mean() - p0:+.2f} "
                      f"| {ssim(out, clean).mean() - s0:+.3f} | {len(clean) / secs:.1f} |")


if __name__ == "__main__":
    bench_scenes()
    bench_denoise()
