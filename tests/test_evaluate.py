"""``vflow eval --model``: held-out clips per degradation family, the methods, the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vflow.cli import main
from vflow.evaluate import EVAL_SEED, eval_pairs, method, score, table
from vflow.kernels.metrics import psnr
from vflow.train.loop import data_config, load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "film1x.yaml"


@pytest.fixture(scope="module")
def pairs():
    return eval_pairs(data_config(load_config(CONFIG)), clips=1, frames=3, size=64, rows=("noise", "mix"))


def test_pairs_are_repeatable_per_family_and_seeded_apart_from_training(pairs) -> None:
    again = eval_pairs(data_config(load_config(CONFIG)), clips=1, frames=3, size=64, rows=("noise", "mix"))
    assert [p.family for p in pairs] == ["noise", "mix"]
    for a, b in zip(pairs, again):
        assert np.array_equal(a.degraded, b.degraded) and np.array_equal(a.clean, b.clean)
        assert a.degraded.shape == a.clean.shape == (3, 64, 64, 3) and a.degraded.dtype == np.uint8
        assert not np.array_equal(a.degraded, a.clean)
    cfg = load_config(CONFIG)
    assert EVAL_SEED not in (cfg["seed"], cfg["data"]["val_seed"])
    other = eval_pairs(data_config(cfg), clips=1, frames=3, size=64, rows=("noise",), seed=EVAL_SEED + 1)
    assert not np.array_equal(other[0].clean, pairs[0].clean)
    (alone,) = eval_pairs(data_config(cfg), clips=1, frames=3, size=64, rows=("mix",))     # a row's own clips
    assert np.array_equal(alone.degraded, pairs[1].degraded)


def test_input_scores_the_degraded_clip_itself(pairs) -> None:
    (noise, mix) = score(pairs, ["input"])
    assert noise.family == "noise" and noise.frames == 3
    assert noise.psnr == pytest.approx(float(np.mean(psnr(pairs[0].degraded, pairs[0].clean))))


def test_a_graph_runs_on_the_clip_losslessly(pairs) -> None:
    clip = pairs[1].degraded
    assert np.array_equal(method("graph:copy")([clip])[0], clip)


def test_ffmpeg_filters_and_a_model_keep_the_clip_shape(pairs) -> None:
    clip = pairs[0].degraded
    for spec in ("hqdn3d", "nlmeans", "model:vflow-film-1x", "model:realesr-animevideov3"):
        (out,) = method(spec)([clip])
        assert out.shape == clip.shape and out.dtype == np.uint8, spec
        assert not np.array_equal(out, clip), spec


def test_a_model_runs_clips_as_shots_of_one_stream(pairs) -> None:
    """Several clips through one stage give each the frames it gets alone: no window reaches into another."""
    clips = [p.degraded for p in pairs]
    run = method("model:vflow-film-1x")
    together = run(clips)
    for clip, got in zip(clips, together):
        diff = np.abs(got.astype(int) - run([clip])[0])
        assert got.shape == clip.shape and diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_unknown_method_and_row_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        method("bm4d")
    with pytest.raises(ValueError, match="unknown row"):
        eval_pairs(data_config(load_config(CONFIG)), rows=("sepia",))


def test_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--model", "vflow-film-1x", "--baselines", "input,hqdn3d", "--clips", "1", "--frames", "3",
                 "--size", "64", "--families", "blur,mix", "--config", str(CONFIG)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "| method | blur | mix | mean |"
    assert [line.split("|")[1].strip() for line in out.splitlines()[2:]] == ["input", "hqdn3d", "model:vflow-film-1x"]


def test_cli_scores_baselines_alone(capsys: pytest.CaptureFixture[str]) -> None:
    """One baseline row at a time (the slow Real-ESRGAN rows apart from the rest)."""
    assert main(["eval", "--baselines", "hqdn3d", "--clips", "1", "--frames", "3", "--size", "64",
                 "--families", "blur", "--config", str(CONFIG)]) == 0
    out = capsys.readouterr().out
    assert [line.split("|")[1].strip() for line in out.splitlines()[2:]] == ["hqdn3d"]


def test_cli_eval_without_inputs_or_models_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval"]) == 2
    assert "--reference" in capsys.readouterr().err


def test_table_shows_each_family_and_the_mean_of_the_degraded_ones() -> None:
    from vflow.evaluate import Score

    t = table([Score("a", "noise", 30.0, 0.9, 3), Score("a", "mix", 20.0, 0.7, 3), Score("a", "clean", 99.99, 1.0, 3)])
    assert t.splitlines()[2] == "| a | 30.00 / 0.900 | 20.00 / 0.700 | 99.99 / 1.000 | 25.00 / 0.800 |"


def test_the_clean_row_is_the_clean_clip() -> None:
    (pair,) = eval_pairs(data_config(load_config(CONFIG)), clips=1, frames=3, size=64, rows=("clean",))
    assert np.array_equal(pair.degraded, pair.clean)
    assert score([pair], ["input"])[0].psnr == 99.99
