"""The restore stage and the device runner, on the CPU path (the CUDA path is measured on a lent GPU)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import vflow
from vflow.pipeline.gpu import DeviceRunner, resolve_device, resolve_dtype, tile_boxes
from vflow.stages.restore import Restore
from vflow.testing import check_stage_contract, synthetic_batches

AV3 = "realesr-animevideov3"
KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images" / "kodak" / "kodim15.png"


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def _real_crop(h: int, w: int) -> torch.Tensor:
    import av

    with av.open(str(KODAK)) as c:
        img = next(c.decode(video=0)).to_ndarray(format="rgb24")
    return torch.from_numpy(np.ascontiguousarray(img[100:100 + h, 200:200 + w]))[None]


def test_restore_contract() -> None:
    out = check_stage_contract(lambda: Restore(model=AV3, batch=3, device="cpu"), frames=5, width=32, height=24)
    assert sum(len(b) for b in out) == 5
    assert all(b.frames.shape[1:] == (96, 128, 3) for b in out)


def test_scale_below_model_scale_resizes_on_device() -> None:
    out = check_stage_contract(lambda: Restore(model=AV3, scale=2, device="cpu"), frames=2, width=32, height=24)
    assert out[0].frames.shape[1:] == (48, 64, 3)


def test_same_pixels_whatever_the_batch_size() -> None:
    frames = torch.cat([b.frames for b in synthetic_batches(5, 5, 40, 32)])

    def run(batch: int) -> torch.Tensor:
        st = Restore(model=AV3, batch=batch, device="cpu")
        st.setup(_ctx(40, 32))
        runner = st.runner
        parts = [runner.submit(frames[i:i + batch], i) for i in range(0, len(frames), batch)]
        got = [f for results in parts + [runner.drain()] for _, f in results]
        return torch.cat(got)

    one, four = run(1), run(4)
    assert one.shape == four.shape == (5, 128, 160, 3)
    assert int((one.int() - four.int()).abs().max()) <= 1


def test_tiles_match_untiled_output_on_a_real_image() -> None:
    x = _real_crop(96, 128)
    whole = _restore_once(x, tile=0)
    tiles = _restore_once(x, tile=48, overlap=12)
    assert _psnr(tiles, whole) > 40.0


def test_tiled_quality_against_the_original_is_within_half_a_db_of_untiled() -> None:
    """Kodak kodim15 shrunk 4x (area), restored x4 tiled and untiled: PSNR against the original image."""
    import av

    with av.open(str(KODAK)) as c:
        frame = next(c.decode(video=0))
    original = torch.from_numpy(frame.to_ndarray(format="rgb24"))[None]
    small = torch.from_numpy(frame.reformat(width=192, height=128, format="rgb24", interpolation="AREA").to_ndarray())[None]
    whole, tiles = _restore_once(small, tile=0), _restore_once(small, tile=48, overlap=16)
    assert abs(_psnr(tiles, original) - _psnr(whole, original)) < 0.5
    assert _psnr(tiles, whole) > 60.0


def test_tiles_resized_below_the_model_scale_match_untiled() -> None:
    x = _real_crop(64, 96)
    whole, tiles = _restore_once(x, tile=0, scale=2), _restore_once(x, tile=32, overlap=12, scale=2)
    assert tiles.shape == (1, 128, 192, 3)
    assert _psnr(tiles, whole) > 40.0


@pytest.mark.parametrize(("h", "w", "tile", "overlap"), [(10, 7, 4, 2), (8, 8, 8, 3), (5, 9, 0, 4), (3, 3, 16, 1)])
def test_tile_boxes_cover_the_frame_once_with_clipped_context(h: int, w: int, tile: int, overlap: int) -> None:
    hits = torch.zeros(h, w, dtype=torch.int32)
    for (y0, y1, x0, x1), (py0, py1, px0, px1) in tile_boxes(h, w, tile, overlap):
        hits[y0:y1, x0:x1] += 1
        assert (py0, px0) == (max(y0 - overlap, 0), max(x0 - overlap, 0))
        assert (py1, px1) == (min(y1 + overlap, h), min(x1 + overlap, w))
    assert bool((hits == 1).all())


def test_model_output_not_a_whole_multiple_of_its_input_is_a_clear_error() -> None:
    runner = DeviceRunner(lambda x: x[..., :-1], torch.device("cpu"))
    with pytest.raises(ValueError, match="not an integer multiple"):
        runner.submit(torch.zeros((1, 4, 6, 3), dtype=torch.uint8))


def _ctx(w: int, h: int) -> vflow.StageContext:
    from vflow.testing import synthetic_info

    return vflow.StageContext(name="restore", inputs={"video": synthetic_info(w, h)}, connected_outputs=frozenset({"video"}))


def _restore_once(x: torch.Tensor, tile: int, overlap: int = 16, scale: int | None = None) -> torch.Tensor:
    st = Restore(model=AV3, device="cpu", tile=tile, tile_overlap=overlap, scale=scale)
    st.setup(_ctx(x.shape[2], x.shape[1]))
    results = st.runner.submit(x) + st.runner.drain()
    return results[0][1]


def test_restore_rejects_bad_params() -> None:
    with pytest.raises(ValueError, match="batch"):
        Restore(batch=0)
    with pytest.raises(ValueError, match="scale"):
        Restore(scale=8)


def test_cuda_device_without_cuda_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("fp16", torch.device("cpu")) == torch.float16


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_device_runner_returns_every_batch_in_order_one_ring_behind(depth: int) -> None:
    runner = DeviceRunner(lambda x: 1 - x, torch.device("cpu"), depth=depth)
    batches = [torch.full((n, 4, 6, 3), 10 * i, dtype=torch.uint8) for i, n in enumerate([2, 3, 1, 2, 2])]
    got: list[tuple[int, torch.Tensor]] = []
    for i, b in enumerate(batches):
        ready = runner.submit(b, i)
        assert len(runner.in_flight) <= depth
        got += ready
    got += runner.drain()
    assert [tag for tag, _ in got] == list(range(len(batches)))
    for (i, out), b in zip(got, batches):
        assert out.shape == b.shape and torch.equal(out, 255 - b)
    assert runner.drain() == []


def test_device_runner_results_survive_ring_reuse() -> None:
    """A result handed out is a fresh tensor: later batches reusing the ring slot do not change it."""
    runner = DeviceRunner(lambda x: x, torch.device("cpu"), depth=1)
    first = runner.submit(torch.full((1, 2, 2, 3), 7, dtype=torch.uint8), "a")
    first += runner.submit(torch.full((1, 2, 2, 3), 9, dtype=torch.uint8), "b")
    for i in range(4):
        runner.submit(torch.full((2, 3, 3, 3), i, dtype=torch.uint8), i)
    assert int(first[0][1].max()) == 7


@pytest.mark.timeout(120)
def test_restore_in_a_graph_gives_4x_frames_with_the_same_pts(tmp_path: Path) -> None:
    import vflow.testing  # noqa: F401  (registers synthetic/collect)

    graph = {"stages": {"src": {"type": "synthetic", "params": {"frames": 6, "width": 32, "height": 24}},
                        "restore": {"type": "restore", "params": {"model": AV3, "device": "cpu", "batch": 4}},
                        "out": {"type": "collect"}},
             "edges": ["src -> restore -> out"]}
    pipeline = vflow.Pipeline.load(graph)
    pipeline.run()
    sink = pipeline.stage("out")
    assert sink.frames().shape == (6, 96, 128, 3)
    assert sink.pts() == list(range(6))


@pytest.mark.timeout(600)
def test_upscale_x4_graph_on_real_dv_keeps_frames_pts_and_both_audio_streams(tmp_path: Path) -> None:
    """graphs/upscale_x4.yaml on the one-frame DV clip: 4x frames, same pts, audio kept.

    The graph's plumbing is what is tested, so it runs the compact x4 model in place of RRDB x4plus (140 s on
    2 CPU cores for this one 720x480 frame); RRDB itself is checked against ncnn in tests/models."""
    import av

    from vflow.cli import main

    src = KODAK.parents[2] / "video" / "interlaced_dv_ntsc_sony_perfect_1frame.dv"
    out = tmp_path / "x4.mkv"
    assert main(["run", "upscale_x4", "-i", str(src), "-o", str(out), "-q", "--set", "restore.device=cpu",
                 "--set", "restore.model=realesr-animevideov3"]) == 0
    with av.open(str(src)) as a, av.open(str(out)) as b:
        fa, fb = list(a.decode(video=0)), list(b.decode(video=0))
        assert len(fb) == len(fa) == 1
        assert (fb[0].width, fb[0].height) == (4 * fa[0].width, 4 * fa[0].height)
        assert fb[0].pts * fb[0].time_base == fa[0].pts * fa[0].time_base
        assert len(b.streams.audio) == len(a.streams.audio) == 2


def test_restore_benchmark_rows_are_measured() -> None:
    from vflow.benchmark import bench_batches

    (row,) = bench_batches("realesr-animevideov3", 16, 12, torch.device("cpu"), [2], reps=1)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["realesr-animevideov3", "16x12", "2"] and float(cells[3]) > 0 and float(cells[4]) > 0
