"""scene_split, temporal_smooth and metrics as stages in graphs (the kernels have their own tests)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import vflow
import vflow.testing  # noqa: F401  (registers synthetic/collect)
from vflow.cli import main
from vflow.pipeline.frames import FrameBatch
from vflow.stages.metrics import Metrics
from vflow.stages.scene_split import SceneSplit
from vflow.stages.temporal_smooth import TemporalSmooth
from vflow.testing import check_stage_contract, synthetic_batches

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEARS = DATA / "video" / "clean_scenecut_tears_of_steel_640x360.mp4"
CUTS = json.loads((DATA / "cuts.json").read_text())["clips"]


def test_scene_split_contract() -> None:
    out = check_stage_contract(lambda: SceneSplit(), frames=30)
    assert sum(len(b) for b in out) == 30


def test_temporal_smooth_contract() -> None:
    for mode in ("denoise", "deflicker", "both"):
        check_stage_contract(lambda: TemporalSmooth(mode=mode), frames=10)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_scene_split_marks_the_known_cuts_and_writes_the_list(tmp_path: Path, suffix: str) -> None:
    listing = tmp_path / f"scenes{suffix}"
    graph = {"stages": {"decode": {"type": "decode", "params": {"path": str(TEARS)}},
                        "scenes": {"type": "scene_split", "params": {"list_path": str(listing)}},
                        "out": {"type": "collect"}},
             "edges": ["decode.video -> scenes -> out"]}
    pipeline = vflow.Pipeline.load(graph)
    pipeline.run()
    scene = torch.cat([b.scene for b in pipeline.stage("out").batches])
    cuts = [i for i in range(1, len(scene)) if scene[i] != scene[i - 1]]
    assert cuts == CUTS["video/clean_scenecut_tears_of_steel_640x360.mp4"]["hard_cuts"] == [21, 65, 185]
    assert len(scene) == 240 and int(scene[-1]) == 3
    if suffix == ".csv":
        rows = list(csv.DictReader(listing.open()))
        assert [(int(r["start_frame"]), int(r["end_frame"])) for r in rows] == [(0, 20), (21, 64), (65, 184), (185, 239)]
        assert rows[1]["start_time"] == "00:00:00.875"  # frame 21 at 24 fps
    else:
        assert json.loads(listing.read_text())["cuts"] == [21, 65, 185]
    assert not list(tmp_path.glob("*.partial"))


def _cut_batches() -> list[FrameBatch]:
    """Ten synthetic frames; scene 1 starts at frame 6."""
    batches = synthetic_batches(10, 5, 48, 32)
    return [b.replace(scene=(torch.arange(5) + 5 * i >= 6).long()) for i, b in enumerate(batches)]


def _run(stage: TemporalSmooth, batches: list[FrameBatch]) -> FrameBatch:
    """Every frame ``stage`` gives back for ``batches`` (from ``process`` and ``finish``), as one batch."""
    from vflow.pipeline.stage import iter_results

    stage.setup(None)  # type: ignore[arg-type]
    out = [r for b in batches for r in iter_results(stage.process(b))] + list(iter_results(stage.finish()))
    return FrameBatch(frames=torch.cat([b.frames for b in out]), pts=torch.cat([b.pts for b in out]),
                      time_base=batches[0].time_base, scene=torch.cat([b.scene for b in out]))


@pytest.mark.parametrize("mode", ["denoise", "deflicker", "both"])
def test_temporal_state_does_not_cross_a_cut(mode: str) -> None:
    out = _run(TemporalSmooth(mode=mode), _cut_batches())
    assert out.pts.tolist() == list(range(10)) and out.scene.tolist() == [0] * 6 + [1] * 4
    after = torch.cat([b.frames for b in _cut_batches()])[6:]
    alone = _run(TemporalSmooth(mode=mode), [FrameBatch(frames=after.contiguous(), pts=torch.arange(4),
                                                        time_base=_cut_batches()[0].time_base,
                                                        scene=torch.ones(4, dtype=torch.int64))])
    assert torch.equal(out.frames[6:], alone.frames)


def test_metrics_per_frame_and_mean(tmp_path: Path) -> None:
    graph = {"stages": {"a": {"type": "synthetic", "params": {"frames": 6}},
                        "b": {"type": "synthetic", "params": {"frames": 6, "seed": 3}},
                        "m": {"type": "metrics", "params": {"path": str(tmp_path / "m.json")}}},
             "edges": ["a -> m.reference", "b -> m.distorted"]}
    pipeline = vflow.Pipeline.load(graph)
    pipeline.run()
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["frames"] == 6 and len(report["ssim"]) == 6
    assert 25 < report["psnr_mean"] < 60 and 0 < report["ssim_mean"] < 1


def test_metrics_refuse_streams_of_different_length() -> None:
    graph = {"stages": {"a": {"type": "synthetic", "params": {"frames": 6}},
                        "b": {"type": "synthetic", "params": {"frames": 5}},
                        "m": {"type": "metrics"}},
             "edges": ["a -> m.reference", "b -> m.distorted"]}
    with pytest.raises(vflow.StageError, match="differ in length"):
        vflow.Pipeline.load(graph).run()


@pytest.mark.timeout(120)
def test_eval_cli_against_itself_is_perfect(capsys: pytest.CaptureFixture[str]) -> None:
    sample = Path(vflow.__file__).parent / "data" / "sample.mp4"
    assert main(["eval", "--reference", str(sample), "--distorted", str(sample), "--no-ssim"]) == 0
    assert capsys.readouterr().out.strip() == "135 frames: PSNR inf dB"


def test_metrics_matches_scikit_image_on_a_real_frame() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    from vflow.kernels.metrics import psnr, ssim

    import av

    with av.open(str(TEARS)) as c:
        a = next(c.decode(video=0)).to_ndarray(format="rgb24")[:120, :160]
    b = np.clip(a.astype(int) + np.random.default_rng(0).integers(-12, 13, a.shape), 0, 255).astype(np.uint8)
    assert abs(float(psnr(a[None], b[None])[0]) - metrics.peak_signal_noise_ratio(a, b)) < 1e-3
    assert abs(float(ssim(a[None], b[None])[0]) - metrics.structural_similarity(a, b, channel_axis=2)) < 1e-3


@pytest.mark.timeout(300)
def test_restore_classic_graph_on_the_sample(tmp_path: Path) -> None:
    """The shipped classical graph keeps every frame and pts, and the cleaned sound, in sync."""
    import av

    out = tmp_path / "classic.mp4"
    assert main(["run", "restore_classic", "-o", str(out), "-q"]) == 0
    sample = Path(vflow.__file__).parent / "data" / "sample.mp4"
    with av.open(str(sample)) as a, av.open(str(out)) as b:
        times_in = [f.pts * f.time_base for f in a.decode(video=0)]
        times_out = [f.pts * f.time_base for f in b.decode(video=0)]
        assert times_out == times_in
        assert b.streams.audio[0].codec_context.name == "aac"


def test_metrics_contract() -> None:
    stage = Metrics()
    check_stage_contract(lambda: stage, frames=6)
    assert stage.summary()["frames"] == 6 and stage.summary()["psnr_mean"] == float("inf")
