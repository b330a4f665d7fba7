"""The custom stage of DESIGN.md §3: written in a few lines, usable from Python and from YAML.

Runtime: under 1 s of tests on 2 cores (plus importing torch and PyAV).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

import vflow
from vflow.testing import check_stage_contract, synthetic_batches


@vflow.stage("custom-gain")
class Gain(vflow.Stage):
    """Multiply pixel values by ``factor`` (clipped to 0..255)."""

    def __init__(self, factor: float = 1.0):
        self.factor = factor

    def setup(self, ctx: vflow.StageContext) -> None:
        self.lut = (torch.arange(256, dtype=torch.float32) * self.factor).round().clamp(0, 255).to(torch.uint8)

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        return batch.replace(frames=self.lut[batch.frames.long()])


def expected(factor: float, frames: int) -> torch.Tensor:
    raw = torch.cat([b.frames for b in synthetic_batches(frames)]).float()
    return (raw * factor).round().clamp(0, 255).to(torch.uint8)


def yaml_graph(gain_type: str, factor: float) -> str:
    return f"""\
stages:
  src: {{type: synthetic, params: {{frames: 8}}}}
  gain: {{type: '{gain_type}', params: {{factor: {factor}}}}}
  sink: {{type: collect}}
edges:
  - src -> gain -> sink
"""


def test_gain_keeps_the_stage_contract() -> None:
    emitted = check_stage_contract(lambda: Gain(factor=2.0), frames=8)
    assert torch.equal(torch.cat([b.frames for b in emitted]), expected(2.0, 8))


@pytest.mark.timeout(30)
def test_gain_from_a_python_dict() -> None:
    p = vflow.Pipeline.load({"stages": {"src": {"type": "synthetic", "params": {"frames": 8}},
                                        "gain": {"type": "custom-gain", "params": {"factor": 0.5}},
                                        "sink": {"type": "collect"}},
                             "edges": ["src -> gain -> sink"]})
    p.run()
    assert torch.equal(p.stage("sink").frames(), expected(0.5, 8))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("gain_type", ["custom-gain", f"{__name__}:Gain"], ids=["by-name", "module-class"])
def test_gain_from_yaml(gain_type: str) -> None:
    p = vflow.Pipeline.load(yaml_graph(gain_type, 1.5))
    p.run()
    assert type(p.stage("gain")) is Gain
    assert torch.equal(p.stage("sink").frames(), expected(1.5, 8))


@pytest.mark.timeout(30)
def test_gain_factor_set_from_the_command_line_form() -> None:
    p = vflow.Pipeline.load(yaml_graph("custom-gain", 1.5)).set("gain.factor=0")
    p.run()
    assert p.stage("gain").factor == 0.0
    assert int(p.stage("sink").frames().max()) == 0


def test_gain_factor_must_be_a_number() -> None:
    with pytest.raises(vflow.GraphError) as info:
        vflow.Pipeline.load(yaml_graph("custom-gain", "'loud'")).build()
    assert str(info.value) == ("<graph>:3:40: stage 'gain' (custom-gain): param 'factor' must be float; "
                               "got 'loud' (str)")


@pytest.mark.timeout(60)
def test_gain_between_decode_and_encode(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "dark.mp4"
    graph = {"stages": {"decode": {"type": "decode", "params": {"path": "${input}"}},
                        "gain": {"type": "custom-gain", "params": {"factor": 0.5}},
                        "encode": {"type": "encode", "params": {"path": "${output}", "preset": "ultrafast"}}},
             "edges": ["decode.video -> gain -> encode.video"]}
    report = vflow.run(graph, input=clip, output=out)
    assert report.stages["gain"].frames_out == 12

    def mean_luma(path: Path) -> float:
        with av.open(str(path)) as c:
            return float(np.mean([f.to_ndarray(format="gray") for f in c.decode(video=0)]))

    assert mean_luma(out) == pytest.approx(mean_luma(clip) * 0.5, rel=0.1)
