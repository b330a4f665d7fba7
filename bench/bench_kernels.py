"""Benchmark the classical kernels against their usual peers, in one process, on shared/data.

Scene cuts: vflow SceneDetector vs PySceneDetect ContentDetector / AdaptiveDetector (F1 per clip,
+-1 frame, and detector time per frame on the same decoded full-size frames, decode excluded); then
end to end from the file, decode included: a vflow graph decode -> scene_split run in process vs
PySceneDetect's ``detect(path, ContentDetector())`` (OpenCV decoding, its default auto-downscale).
Denoise: bench_denoise.py (vflow temporal_smooth vs FFmpeg hqdn3d, quality and decode-included speed).

    PYTHONPATH=. python bench/bench_kernels.py [--only scenes|denoise]   # needs scenedetect, opencv-python-headless, ffmpeg CLI
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import av
import numpy as np
import scenedetect
from scenedetect import AdaptiveDetector, ContentDetector, FrameTimecode

import vflow
from vflow.kernels.scene import SceneDetector

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "kernels"))
from bench_denoise import bench_denoise  # noqa: E402
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
    warm = SceneDetector()  # compile / load the numba cache outside the timings
    warm.push(np.zeros((16, 64, 64, 3), np.uint8))
    warm.flush()
    print("| clip | frames | F1 vflow | F1 Content | F1 Adaptive | vflow ms/frame | Content ms/frame | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name, info in clips.items():
        fps = float(info["fps"])
        ours, content, adaptive = SceneDetector(), ContentDetector(), AdaptiveDetector()
        found: dict[str, list[int]] = {"ours": [], "content": [], "adaptive": []}
        t_ours = t_content = 0.0
        n = 0
        for frames in batches(name):
            bgrs = np.ascontiguousarray(frames[..., ::-1])  # both read frames of a batch decoded just before
            t0 = time.perf_counter()
            found["ours"] += ours.push(frames)
            t_ours += time.perf_counter() - t0
            for bgr in bgrs:
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
    bench_scenes_e2e(clips)


def vflow_cuts(path: str) -> list[int]:
    """Cuts found by a vflow graph decode -> scene_split (default params), run in this process."""
    graph = {"stages": {"decode": {"type": "decode", "params": {"path": path}}, "scenes": {"type": "scene_split"}},
             "edges": ["decode.video -> scenes"]}
    pipeline = vflow.Pipeline.load(graph)
    pipeline.run()
    return pipeline.stage("scenes").cuts


def pyscenedetect_cuts(path: str) -> list[int]:
    """Cuts found by PySceneDetect's one-call API with ContentDetector (OpenCV decode, auto-downscale)."""
    return [start.frame_num for start, _ in scenedetect.detect(path, ContentDetector()) if start.frame_num > 0]


def bench_scenes_e2e(clips: dict, rounds: int = 7) -> None:
    """Wall and CPU seconds from the file path to the cut list: medians of interleaved rounds; the ratio
    is the median of per-round ratios (the two runs of a round share the machine's load)."""
    runs = {"vflow": vflow_cuts, "content": pyscenedetect_cuts}
    print("\n| clip | frames | vflow s (CPU s) | PySceneDetect Content s (CPU s) | ratio | F1 vflow | F1 Content |")
    print("|---|---|---|---|---|---|---|")
    for name, info in clips.items():
        path = str(DATA / name)
        found = {k: run(path) for k, run in runs.items()}  # warm-up: caches, imports
        wall: dict[str, list[float]] = {k: [] for k in runs}
        cpu: dict[str, list[float]] = {k: [] for k in runs}
        for r in range(rounds):
            for k in list(runs)[:: 1 if r % 2 == 0 else -1]:  # alternate which goes first
                c0, t0 = time.process_time(), time.perf_counter()
                found[k] = runs[k](path)
                wall[k].append(time.perf_counter() - t0)
                cpu[k].append(time.process_time() - c0)
        w = {k: float(np.median(v)) for k, v in wall.items()}
        c = {k: float(np.median(v)) for k, v in cpu.items()}
        ratio = float(np.median(np.array(wall["content"]) / np.array(wall["vflow"])))
        truth = info["hard_cuts"]
        print(f"| {Path(name).stem} | {info['frames']} | {w['vflow']:.3f} ({c['vflow']:.2f}) "
              f"| {w['content']:.3f} ({c['content']:.2f}) | {ratio:.2f}x "
              f"| {f1(found['vflow'], truth):.2f} | {f1(found['content'], truth):.2f} |")


if __name__ == "__main__":
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    if only not in (None, "scenes", "denoise"):
        sys.exit("usage: bench_kernels.py [--only scenes|denoise]")
    if only in (None, "scenes"):
        bench_scenes()
    if only in (None, "denoise"):
        bench_denoise()
