"""Fuzzing decode with mutated real and generated clips: every outcome is frames or a vflow error with a message.

Random byte changes, cuts and splices of MP4, Matroska, MPEG-TS and DV files go through ``decode`` (into a
collecting sink and into the copy graph's encoder). A crash, a hang, another exception type or a message-less
error fails. Runtime: about 10 s on 2 cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from helpers_media import VIDEO_DIR
from media_cases import write_joined, write_test_clip

import vflow
from vflow.pipeline.errors import VflowError

REAL = [VIDEO_DIR / "interlaced_dv_ntsc_sony_good_quality_5frames.dv",
        VIDEO_DIR / "clean_openh264_cisco_vt2people_320x192_12fps_9f.y4m"]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    write_test_clip(folder / "a.mp4", 20)
    write_test_clip(folder / "a.mkv", 20, interlaced=True)
    write_joined(folder / "a.ts", (10, 8))
    found = {p.name: p.read_bytes() for p in (folder / "a.mp4", folder / "a.mkv", folder / "a.ts")}
    found.update({p.name: p.read_bytes() for p in REAL if p.exists()})
    return found


mutation = st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=64))


def mutate(data: bytes, edits: list[tuple[float, bytes]], cut: float | None) -> bytes:
    out = bytearray(data)
    for where, payload in edits:
        pos = int(where * len(out))
        out[pos:pos + len(payload)] = payload
    return bytes(out[: max(1, int(cut * len(out)))] if cut is not None else out)


EXAMPLES = int(os.environ.get("VFLOW_FUZZ_EXAMPLES", "200"))  # a longer hunt: VFLOW_FUZZ_EXAMPLES=5000


@pytest.mark.timeout(600)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["a.mp4", "a.mkv", "a.ts", *(p.name for p in REAL)]),
       edits=st.lists(mutation, min_size=1, max_size=6), cut=st.none() | st.floats(0.05, 1),
       encode=st.booleans())
def test_mutated_clips_decode_or_fail_with_a_message(seeds: dict[str, bytes], tmp_path_factory, name: str,
                                                    edits: list, cut: float | None, encode: bool) -> None:
    if name not in seeds:
        return  # the shared data is missing on this machine
    folder = tmp_path_factory.mktemp("fuzz")
    src = folder / f"mutated{Path(name).suffix}"
    src.write_bytes(mutate(seeds[name], edits, cut))
    sink = {"type": "encode", "params": {"path": str(folder / "out.mkv"), "preset": "ultrafast"}} if encode \
        else {"type": "collect"}
    graph = {"stages": {"decode": {"type": "decode", "params": {"path": str(src), "max_damaged": 1.0}},
                        "sink": sink}, "edges": ["decode.video -> sink.video"]}
    import vflow.testing  # noqa: F401 - registers the collect sink
    try:
        report = vflow.Pipeline.load(graph).run()
    except VflowError as e:
        assert str(e).strip() and "\n" not in str(e).strip(), repr(e)
        assert not list(folder.glob("*.partial"))
        return
    assert report.stages["sink"].frames_in >= 1

