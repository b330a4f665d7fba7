"""Limits: a pairing stage holds the faster input back, parallel kernels under numba's workqueue layer, and
frame sizes or encoder settings that an encoder refuses (a one-line error that says the way out)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import vflow
from vflow.cli import main
from vflow.kernels.metrics import psnr
from vflow.stages.metrics import Metrics
from vflow.testing import SyntheticSource

from helpers_media import REPO, read_facts, run_cli, write_clip


@vflow.stage("lim-metrics")
class WatchedMetrics(Metrics):
    """``metrics`` that records the most frames it ever held waiting for a partner."""

    def __init__(self, path: str | None = None, ssim: bool = True):
        super().__init__(path, ssim)
        self.peak = 0

    def process_port(self, port: str, item: Any) -> None:
        super().process_port(port, item)
        self.peak = max(self.peak, self.buffered)


@vflow.stage("lim-slow")
class Slow(vflow.Stage):
    """Passes batches on after sleeping ``sleep_ms`` for each."""

    def __init__(self, sleep_ms: int = 5) -> None:
        self.sleep_s = sleep_ms / 1000

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        time.sleep(self.sleep_s)
        return batch


@vflow.stage("lim-hold")
class Hold(vflow.Stage):
    """Holds every batch until the end of the stream (as a long look-ahead window does)."""

    def __init__(self) -> None:
        self.held: list[vflow.FrameBatch] = []

    def process(self, batch: vflow.FrameBatch) -> None:
        self.held.append(batch)

    def finish(self) -> Iterator[vflow.FrameBatch]:
        yield from self.held


def _frames(frames: int, seed: int) -> np.ndarray:
    return torch.cat([b.frames for b in SyntheticSource(frames=frames, seed=seed).generate()]).numpy()


# -- metrics: the faster input is held back ------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("slow_side", ["reference", "distorted"])
def test_metrics_holds_the_faster_input_back(slow_side: str) -> None:
    fast_side = "distorted" if slow_side == "reference" else "reference"
    graph = {"runtime": {"queue_size": 2},
             "stages": {"fast": {"type": "synthetic", "params": {"frames": 240, "batch": 4, "seed": 3}},
                        "src": {"type": "synthetic", "params": {"frames": 240, "batch": 4}},
                        "slow": {"type": "lim-slow", "params": {"sleep_ms": 4}},
                        "m": {"type": "lim-metrics", "params": {"ssim": False}}},
             "edges": [f"fast -> m.{fast_side}", f"src -> slow -> m.{slow_side}"]}
    pipeline = vflow.Pipeline.load(graph)
    pipeline.run()
    m = pipeline.stage("m")
    assert isinstance(m, WatchedMetrics)
    assert m.peak <= 8, f"metrics held {m.peak} frames waiting for the slow input"
    ref, dist = _frames(240, 0), _frames(240, 3)
    if slow_side == "distorted":
        ref, dist = dist, ref
    assert m.summary()["frames"] == 240
    np.testing.assert_allclose(m.psnr, psnr(ref, dist), rtol=1e-6)


@pytest.mark.timeout(60)
def test_metrics_fed_by_one_source_through_a_holding_stage_does_not_deadlock() -> None:
    graph = {"runtime": {"queue_size": 2},
             "stages": {"src": {"type": "synthetic", "params": {"frames": 80, "batch": 4}},
                        "hold": {"type": "lim-hold"},
                        "m": {"type": "lim-metrics", "params": {"ssim": False}}},
             "edges": ["src -> m.reference", "src -> hold -> m.distorted"]}
    pipeline = vflow.Pipeline.load(graph)
    pipeline.run()
    s = pipeline.stage("m").summary()  # type: ignore[attr-defined]
    assert s["frames"] == 80 and s["psnr_mean"] == float("inf")


@pytest.mark.timeout(120)
def test_eval_of_clips_of_different_length_finishes_bounded_and_says_how_many_were_compared(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long, short = tmp_path / "long.mkv", tmp_path / "short.mkv"
    write_clip(long, frames=90, codec="ffv1", pix_fmt="yuv444p")
    write_clip(short, frames=20, codec="ffv1", pix_fmt="yuv444p")
    graph = {"stages": {"ref": {"type": "decode", "params": {"path": str(long), "deinterlace": "off"}},
                        "dist": {"type": "decode", "params": {"path": str(short), "deinterlace": "off"}},
                        "m": {"type": "lim-metrics", "params": {"ssim": False}}},
             "edges": ["ref.video -> m.reference", "dist.video -> m.distorted"]}
    pipeline = vflow.Pipeline.load(graph)
    with pytest.raises(vflow.StageError, match=r"differ in length: 20 frames compared, then 70 more frame\(s\) "
                                               r"of reference"):
        pipeline.run()
    assert pipeline.stage("m").peak <= 16  # type: ignore[attr-defined]

    assert main(["eval", "--reference", str(long), "--distorted", str(short), "--no-ssim"]) == 1
    err = capsys.readouterr().err.strip()
    assert "20 frames compared" in err and "stage 'metrics'" in err and len(err.splitlines()) == 1
    assert main(["eval", "--reference", str(long), "--distorted", str(long), "--no-ssim"]) == 0
    assert capsys.readouterr().out.strip() == "90 frames: PSNR inf dB"


# -- numba's workqueue layer: parallel kernels in two stage threads ------------------------------------
@pytest.mark.timeout(180)
def test_parallel_kernels_in_several_stages_under_the_workqueue_layer(tmp_path: Path) -> None:
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=48, size=(192, 144))
    env = {"NUMBA_THREADING_LAYER": "workqueue"}
    layer = subprocess.run([sys.executable, "-c", "import vflow.kernels as k; print(k.THREAD_SAFE)"],
                           env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert layer.stdout.strip() == "False", layer.stderr
    # decode, scene_split, temporal_smooth, color and encode all launch parallel kernels, each in its thread
    r = run_cli(["run", str(REPO / "graphs" / "restore_classic.yaml"), "-i", str(src), "-o", str(out), "-q"],
                env=env, timeout=150)
    assert r.returncode == 0, r.stderr[-2000:]
    assert read_facts(out, sample=()).frames == 48


def test_parallel_kernels_are_not_wrapped_under_a_thread_safe_layer() -> None:
    from vflow import kernels
    from vflow.kernels import temporal, yuv

    if kernels.THREAD_SAFE:
        assert type(yuv.rgb_to_yuv).__name__ == "CPUDispatcher" and hasattr(temporal.spatial_step, "signatures")
    else:
        assert not hasattr(yuv.rgb_to_yuv, "signatures")


# -- sizes and settings an encoder refuses -----------------------------------------------------------
def _copy(src: Path, out: Path, *sets: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", "copy", "-i", str(src), "-o", str(out), "-q", *(a for s in sets for a in ("--set", s))])
    return code, err.getvalue().strip()


@pytest.mark.timeout(120)
@settings(max_examples=20, deadline=None)
@given(width=st.integers(1, 70), height=st.integers(1, 70), pix_fmt=st.sampled_from(["yuv420p", "yuv422p", "yuv444p"]),
       codec=st.sampled_from(["libx264", "libx265"]))
@example(63, 47, "yuv420p", "libx264")
@example(1, 1, "yuv444p", "libx264")
@example(1, 1, "yuv420p", "libx264")
@example(64, 47, "yuv422p", "libx264")
@example(8, 8, "yuv444p", "libx265")
@example(42, 18, "yuv422p", "libx265")  # crashed the process (x265 heap corruption) before the size check
def test_any_frame_size_is_copied_or_refused_in_one_line(width: int, height: int, pix_fmt: str, codec: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        write_clip(src, frames=3, size=(width, height), pix_fmt="yuv444p")  # x264 4:4:4 takes any size
        code, err = _copy(src, out, f"encode.pix_fmt={pix_fmt}", f"encode.codec={codec}")
        if code == 0:
            assert read_facts(out, sample=()).frames == 3
            return
        assert code == 2 and len(err.splitlines()) == 1, err
        assert "stage 'encode'" in err and f"(got {width}x{height})" in err and "Generic error" not in err, err
        assert not out.exists() and not list(Path(tmp).glob("*.partial"))


def test_odd_size_says_what_is_wrong_and_the_way_out(tmp_path: Path) -> None:
    write_clip(tmp_path / "in.mp4", frames=2, size=(63, 47), pix_fmt="yuv444p")
    code, err = _copy(tmp_path / "in.mp4", tmp_path / "out.mp4", "encode.pix_fmt=yuv420p")
    assert code == 2
    assert err.endswith("yuv420p needs an even width and an even height (got 63x47): crop or pad the frames, "
                        "or use pix_fmt: yuv444p")
    assert _copy(tmp_path / "in.mp4", tmp_path / "out.mp4")[0] == 0   # the source's 4:4:4 is kept: any size


@pytest.mark.parametrize(("codec", "preset", "says"), [("libsvtav1", "veryfast", "0 \\(slowest, best\\) to 13"),
                                                     ("libx264", "7", "ultrafast, superfast"),
                                                     ("libx265", "quick", "medium, slow")])
def test_a_preset_of_another_encoder_is_refused_with_the_valid_ones(codec: str, preset: str, says: str) -> None:
    with pytest.raises(vflow.GraphError, match=rf"stage 'encode'.*preset '{preset}' is not an .*{says}"):
        vflow.Pipeline.load({"stages": {"src": {"type": "synthetic"},
                                        "encode": {"type": "encode",
                                                   "params": {"path": "out.mkv", "codec": codec, "preset": preset}}},
                             "edges": ["src -> encode.video"]}).build()


@pytest.mark.parametrize(("codec", "crf", "top"), [("libx264", 52, 51), ("libx265", -1, 51), ("libsvtav1", 64, 63)])
def test_crf_out_of_range_is_refused_with_the_range(codec: str, crf: int, top: int) -> None:
    with pytest.raises(vflow.GraphError, match=rf"stage 'encode'.*crf {crf} is out of range for {codec}: "
                                               rf"use 0 to {top}"):
        vflow.Pipeline.load({"stages": {"src": {"type": "synthetic"},
                                        "encode": {"type": "encode",
                                                   "params": {"path": "out.mkv", "codec": codec, "crf": crf}}},
                             "edges": ["src -> encode.video"]}).build()
