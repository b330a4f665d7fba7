"""colorize as a stage: the contract, a graph on the real black-and-white film, and its errors.

The colour quality and the temporal stability are measured in tests/kernels/test_kernel_colorize.py.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

import vflow
import vflow.testing  # noqa: F401  (registers synthetic/collect)
from vflow.kernels.lab import rgb_to_lab
from vflow.stages.colorize import Colorize
from vflow.testing import check_stage_contract

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FILM = DATA / "video" / "oldfilm_abomb_blast_effects_part1.mp4"
REFERENCE = DATA / "images" / "documerica" / "557061.jpg"  # men in hats by a truck: like the film's soldier


def _graph(reference: str, source: dict | None = None) -> dict:
    return {"stages": {"src": source or {"type": "synthetic", "params": {"frames": 4}},
                       "scenes": {"type": "scene_split"},
                       "colorize": {"type": "colorize", "params": {"reference": reference}},
                       "out": {"type": "collect"}},
            "edges": ["src.video -> scenes -> colorize -> out"]}


def test_contract() -> None:
    check_stage_contract(lambda: Colorize(reference=str(REFERENCE)), frames=10)


@pytest.mark.timeout(120)
def test_colours_the_black_and_white_film_and_keeps_its_lightness() -> None:
    pipeline = vflow.Pipeline.load(_graph(str(REFERENCE), {"type": "decode", "params": {"path": str(FILM)}}))
    pipeline.run()
    out = pipeline.stage("out")
    frames, scene = out.frames(), torch.cat([b.scene for b in out.batches])
    assert len(frames) == 134 and out.pts() == sorted(out.pts())
    assert scene.unique().tolist() == [0, 1]  # the film's cut at frame 44
    with av.open(str(FILM)) as c:
        film = torch.from_numpy(np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]))
    lab, lab_in = rgb_to_lab(frames[::4]).numpy(), rgb_to_lab(film[::4]).numpy()
    assert np.hypot(lab_in[..., 1], lab_in[..., 2]).mean() < 0.01  # a grey film
    assert np.hypot(lab[..., 1], lab[..., 2]).mean() > 4  # measured 5.6
    assert np.abs(lab[..., 0] - lab_in[..., 0]).mean() < 0.5  # its lightness is kept: measured 0.07


def test_missing_reference_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "grandma_1962.jpg"
    with pytest.raises(vflow.GraphError, match=f"reference image '{missing}' does not exist"):
        vflow.Pipeline.load(_graph(str(missing))).run()


def test_unreadable_reference_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "ref.jpg"
    bad.write_text("not an image")
    with pytest.raises(vflow.GraphError, match=f"reference image '{bad}' cannot be read"):
        vflow.Pipeline.load(_graph(str(bad))).run()


def test_black_and_white_reference_is_refused() -> None:
    grey = DATA / "images" / "fsa_owi" / "LC-USE6-D-009289.jpg"
    with pytest.raises(vflow.GraphError, match=f"reference image '{grey}' has no colour"):
        vflow.Pipeline.load(_graph(str(grey))).run()


@pytest.mark.parametrize("params, message", [
    ({"strength": -0.5}, "strength must be in"),
    ({"temporal": 1.0}, "temporal must be in"),
])
def test_bad_params(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Colorize(reference=str(REFERENCE), **params)
