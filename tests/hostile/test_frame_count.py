"""Frame accounting as a property: for any clip length, decoder thread count, deinterlace mode and rate, batch
size and graph, the output has exactly the decoded frames (twice as many at field rate) at exact times.

Frames vanished on 2-4-frame clips, on 33-frame clips with ``deinterlace: auto`` and with 16 decoder threads,
each with exit 0: one clip per behaviour had hidden it. Runtime: about a minute on 2 cores."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vflow
from helpers_media import REPO
from media_cases import RATE, write_test_clip

GRAPHS = {"copy": REPO / "graphs" / "copy.yaml", "restore_classic": REPO / "graphs" / "restore_classic.yaml"}

def frame_times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as c:
        return [f.pts * Fraction(f.time_base) for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Clips made on first use, one per (length, interlaced)."""
    folder, made = tmp_path_factory.mktemp("lengths"), {}

    def get(frames: int, interlaced: bool) -> Path:
        key = (frames, interlaced)
        if key not in made:
            made[key] = folder / f"{frames}{'i' if interlaced else 'p'}.mp4"
            write_test_clip(made[key], frames, interlaced)
        return made[key]
    return get  # type: ignore[return-value]


@pytest.mark.timeout(600)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.integers(1, 80), interlaced=st.booleans(), threads=st.sampled_from([1, 2, 16]),
       deinterlace=st.sampled_from(["off", "auto", "on"]), rate=st.sampled_from(["frame", "field"]),
       batch=st.sampled_from([1, 3, 8]), graph=st.sampled_from(sorted(GRAPHS)))
def test_frames_out_equal_frames_in(clips, tmp_path_factory: pytest.TempPathFactory, frames: int, interlaced: bool,
                                    threads: int, deinterlace: str, rate: str, batch: int, graph: str) -> None:
    src = clips(frames, interlaced)
    out = tmp_path_factory.mktemp("out") / "out.mkv"
    p = vflow.Pipeline.load(GRAPHS[graph], input=str(src), output=str(out))
    for assignment in (f"decode.threads={threads}", f"decode.deinterlace={deinterlace}",
                       f"decode.deinterlace_rate={rate}", f"decode.batch={batch}", "encode.preset=ultrafast"):
        p.set(assignment)
    report = p.run()
    doubled = p.stage("decode").deinterlacing and rate == "field"  # type: ignore[attr-defined]
    want = [Fraction(i, RATE * (2 if doubled else 1)) for i in range(frames * (2 if doubled else 1))]
    got = frame_times(out)
    assert len(got) == len(want), f"{len(got)} frames out of {frames} in (doubled: {doubled})"
    assert [t - got[0] for t in got] == want, "output times are not the input's"
    assert report.stages["encode"].frames_in == len(want)
    assert not [w for w in report.warnings if "damaged" in w or "timestamp" in w], report.warnings
