"""``vflow.testing.check_stage_contract`` on the built-in and testing stages, and on broken stages it must reject.

Runtime: under 1 s of tests on 2 cores (plus importing torch and PyAV).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
import torch

import vflow
from vflow.stages.decode import Decode
from vflow.stages.encode import Encode
from vflow.testing import Collect, SyntheticSource, check_stage_contract


@pytest.mark.parametrize("clip_name, frames, size", [
    ("clean_openh264_cisco_vt2people_320x192_12fps_9f.y4m", 9, (320, 192)),
    ("interlaced_dv_ntsc_sony_good_quality_5frames.dv", 5, (720, 480)),
])
def test_decode_keeps_the_contract(data_dir: Path, clip_name: str, frames: int, size: tuple[int, int]) -> None:
    path = data_dir / "video" / clip_name
    emitted = check_stage_contract(lambda: Decode(path=str(path), batch=4))
    video = [b for b in emitted if isinstance(b, vflow.FrameBatch)]
    assert sum(len(b) for b in video) == frames
    assert {(b.width, b.height) for b in video} == {size}


def test_decode_passes_the_audio_packets_on(data_dir: Path) -> None:
    path = data_dir / "video" / "interlaced_dv_ntsc_sony_good_quality_5frames.dv"
    emitted = check_stage_contract(lambda: Decode(path=str(path)))
    audio = [c for c in emitted if isinstance(c, vflow.AudioChunk)]
    assert {c.stream for c in audio} == {0, 1}
    assert all(c.packets for c in audio)


def test_encode_keeps_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    assert check_stage_contract(lambda: Encode(path=str(out), preset="ultrafast"), frames=10) == []
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (64, 48)
        assert sum(1 for _ in container.decode(video=0)) == 10
    assert not (tmp_path / "out.mp4.partial").exists()


def test_synthetic_keeps_the_contract() -> None:
    emitted = check_stage_contract(lambda: SyntheticSource(frames=10, batch=4))
    assert [len(b) for b in emitted] == [4, 4, 2]


def test_collect_keeps_the_contract() -> None:
    sink = Collect()
    assert check_stage_contract(lambda: sink, frames=10) == []
    assert sink.pts() == list(range(10)) and sink.finished


# -- broken stages: the check must fail ------------------------------------------------------------

@vflow.stage("contract-in-place")
class InPlace(vflow.Stage):
    """Broken: inverts the frames of its input batch in place."""

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        batch.frames.copy_(255 - batch.frames)
        return batch


@vflow.stage("contract-wrong-size")
class WrongSize(vflow.Stage):
    """Broken: halves the width but says in setup that the size passes through."""

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        return batch.replace(frames=batch.frames[:, :, ::2].contiguous())


@vflow.stage("contract-backwards")
class Backwards(vflow.Stage):
    """Broken: emits everything at the end, newest batch first."""

    def __init__(self) -> None:
        self.held: list[vflow.FrameBatch] = []

    def process(self, batch: vflow.FrameBatch) -> None:
        self.held.append(batch)

    def finish(self) -> Iterator[vflow.FrameBatch]:
        yield from reversed(self.held)


@vflow.stage("contract-no-port-info")
class NoPortInfo(SyntheticSource):
    """Broken: a source whose setup does not describe its output port."""

    def setup(self, ctx: vflow.StageContext) -> dict[str, vflow.VideoInfo]:
        return {}


class Unregistered(vflow.Stage):
    """Broken: a correct stage that was never registered."""

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        return batch


@pytest.mark.parametrize("factory, message", [
    (InPlace, "process() modified its input frames in place"),
    (WrongSize, "emitted 32x48, negotiated 64x48"),
    (Backwards, "output pts are not strictly increasing"),
    (NoPortInfo, "setup() did not describe output port 'video'"),
    (Unregistered, "Unregistered is not registered"),
], ids=["in-place", "wrong-size", "pts-backwards", "no-port-info", "unregistered"])
def test_broken_stage_fails_the_check(factory: type[vflow.Stage], message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_stage_contract(factory)


def test_non_stage_fails_the_check() -> None:
    with pytest.raises(AssertionError, match="Tensor is not a vflow.Stage"):
        check_stage_contract(lambda: torch.zeros(1))  # type: ignore[arg-type, return-value]
