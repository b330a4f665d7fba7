"""Chunked runs: the plan, frame-exact decode ranges, trim, and the ``chunks`` backend against streaming runs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vflow
from vflow.pipeline.chunked import Job, Options, run_chunked, run_job
from vflow.pipeline.chunkplan import ChunkError, Scan, border, plan, scan
from vflow.stages.trim import Trim
from vflow.testing import check_stage_contract

from helpers_media import VIDEO_DIR, pattern_frames, run_cli

FFV1_COPY = """vflow: 1
stages:
  decode: {type: decode, params: {path: "${input}", batch: 8, deinterlace: "off"}}
  encode: {type: encode, params: {path: "${output}", codec: ffv1}}
edges:
  - decode.video -> encode.video
  - decode.audio -> encode.audio
"""
# a temporal graph that is cheap on a CPU: frames depend on their neighbours within a shot
TEMPORAL = """vflow: 1
stages:
  decode: {type: decode, params: {path: "${input}", batch: 8}}
  scenes: {type: scene_split}
  smooth: {type: temporal_smooth, params: {mode: denoise}}
  encode: {type: encode, params: {path: "${output}", codec: ffv1}}
edges:
  - decode.video -> scenes -> smooth -> encode.video
  - decode.audio -> encode.audio
"""


def media(path: Path) -> tuple[list[tuple[int, str]], list[tuple[int | None, int | None, bytes]]]:
    """Every decoded frame's pts and a hash of its pixels; every audio packet's pts, dts and bytes."""
    with av.open(str(path)) as c:
        video = [(f.pts, hashlib.md5(f.to_ndarray(format="rgb24").tobytes()).hexdigest()) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = [(p.pts, p.dts, bytes(p)) for p in c.demux(audio=0) if p.size] if c.streams.audio else []
    return video, audio


def write_gop_clip(path: Path, times: list[Fraction], gop: int, size: tuple[int, int] = (64, 48)) -> None:
    """An H.264 clip with a keyframe every ``gop`` frames (B-frames on), frames at ``times`` (VFR)."""
    w, h = size
    rgb = pattern_frames(len(times), w, h)
    tb = Fraction(1, 90000)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "20", "bf": "2",
                                                        "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.time_base = s.codec_context.time_base = tb
        for t, image in zip(times, rgb):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = int(t / tb), tb
            out.mux(s.encode(frame))
        out.mux(s.encode(None))


def decoded(path: Path, **params: object) -> tuple[list[float], np.ndarray]:
    """The times (seconds) and RGB frames that decode gives."""
    p = vflow.Pipeline.load({"stages": {"d": {"type": "decode", "params": {"path": str(path), "batch": 5, **params}},
                                        "out": {"type": "collect"}}, "edges": ["d.video -> out"]})
    p.run()
    out = p.stage("out")
    return [float(t * b.time_base) for b in out.batches for t in b.pts.tolist()], \
        out.frames().numpy()  # type: ignore[attr-defined]


# -- the plan -------------------------------------------------------------------------------------------
@st.composite
def scans(draw: st.DrawFn) -> Scan:
    n = draw(st.integers(2, 400))
    gaps = draw(st.lists(st.sampled_from([1 / 25, 1 / 30, 1 / 12, 0.1, 0.5]), min_size=n - 1, max_size=n - 1))
    times = list(np.cumsum([draw(st.floats(-1.0, 5.0))] + gaps))
    keys = sorted({0, *draw(st.lists(st.integers(0, n - 1), max_size=30))})
    cuts = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=20))))
    return Scan(times, keys, cuts)


@settings(max_examples=200, deadline=None)
@given(s=scans(), seconds=st.floats(0.2, 20.0), before=st.integers(0, 60), after=st.integers(0, 60))
def test_plan_covers_every_frame_once_with_its_context(s: Scan, seconds: float, before: int, after: int) -> None:
    chunks = plan(s, seconds, before, after)
    n, t = len(s.times), s.times
    assert [c.first for c in chunks] == [0] + [c.first + c.frames for c in chunks[:-1]]
    assert sum(c.frames for c in chunks) == n and all(c.frames > 0 for c in chunks)
    for c in chunks:
        own = [i for i in range(n) if (c.start is None or t[i] >= c.start) and (c.end is None or t[i] < c.end)]
        assert own == list(range(c.first, c.first + c.frames))
        lo = c.first - (0 if c.border == "cut" else before)
        decoded = [i for i in range(n) if (c.decode_start is None or t[i] >= c.decode_start)
                   and (c.decode_end is None or t[i] < c.decode_end)]
        assert decoded == list(range(max(0, lo), min(n, c.first + c.frames + after)))
        assert c.border == "start" or c.first in (s.cuts if c.border == "cut" else
                                                  s.keyframes if c.border == "keyframe" else range(n))


def test_plan_prefers_cuts_then_keyframes() -> None:
    times = [i / 25 for i in range(1000)]  # 40 s
    chunks = plan(Scan(times, keyframes=list(range(0, 1000, 48)), cuts=[260, 733]), 10.0)
    assert [(c.first, c.border) for c in chunks] == [(0, "start"), (260, "cut"), (528, "keyframe"), (733, "cut")]


def test_plan_of_a_short_clip_is_one_chunk() -> None:
    (only,) = plan(Scan([0.0, 0.04, 0.08], [0], []), 60.0, 10, 10)
    assert (only.first, only.frames, only.start, only.end, only.decode_start, only.decode_end) == (0, 3, None, None,
                                                                                                    None, None)


def test_plan_at_a_thousand_chunks_is_quick_and_small(tmp_path: Path) -> None:
    n = 250 * 1000
    chunks = plan(Scan([i / 25 for i in range(n)], list(range(0, n, 250)), []), 10.0, 80, 30)
    assert len(chunks) == 1000
    size = len(json.dumps([c.to_dict() for c in chunks], indent=1))
    assert size < 400_000  # the manifest grows with chunks, never with frames


def test_scan_refuses_timestamps_that_go_back(tmp_path: Path) -> None:
    parts = []
    for k in range(2):  # two recordings joined byte for byte, each starting at pts 0 (a camcorder's segments)
        part = tmp_path / f"part{k}.ts"
        write_gop_clip(part, [Fraction(i, 25) for i in range(6)], gop=3)
        parts.append(part.read_bytes())
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(parts))
    one = scan(str(tmp_path / "part0.ts"))
    assert len(one.times) == 6 and one.keyframes[:2] == [0, 3]
    with pytest.raises(ChunkError, match=r"timestamps repeat or go back at frame 6 .* run it with --backend stream"):
        scan(str(joined))


# -- decode ranges and trim ----------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["mp4", "mkv", "ts"])
def gop_clip(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """60 VFR frames, a keyframe every 7, in three containers."""
    rng = np.random.default_rng(5)
    ms = np.cumsum(rng.choice([40, 40, 33, 80], size=60))  # whole milliseconds: Matroska's time base
    path = tmp_path_factory.mktemp("gop") / f"vfr.{request.param}"
    write_gop_clip(path, [Fraction(int(m) + 2000, 1000) for m in ms], gop=7)
    return path, decoded(path, deinterlace="off")[0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_decode_range_gives_exactly_its_frames(gop_clip: tuple[Path, list[float]], data: st.DataObject) -> None:
    path, times = gop_clip
    full = decoded(path, deinterlace="off")[1]
    i = data.draw(st.integers(0, len(times) - 1))
    j = data.draw(st.integers(i + 1, len(times)))
    pts, frames = decoded(path, start=border(times, i) if i else None, end=border(times, j) if j < len(times) else None,
                          deinterlace="off")
    assert pts == times[i:j]
    assert np.array_equal(frames, full[i:j])


def test_trim_keeps_its_time_range() -> None:
    check_stage_contract(lambda: Trim(), frames=10)
    batch = next(iter(vflow.testing.synthetic_batches(8, batch=8)))
    out = Trim(start=0.1, end=0.2).process(batch)  # 25 fps: frames 3, 4 (0.12, 0.16)
    assert out is not None and out.pts.tolist() == [3, 4] and out.frames.is_contiguous()
    assert Trim(end=0.0001).process(batch).pts.tolist() == [0]  # type: ignore[union-attr]
    assert Trim(start=5.0).process(batch) is None
    with pytest.raises(ValueError, match="end must be after start"):
        Trim(start=2.0, end=1.0)


# -- the chunks backend against a streaming run ----------------------------------------------------------
def chunked(graph: str, src: Path, out: Path, seconds: float, workers: int = 2, backend: str = "chunks",
            sets: tuple[str, ...] = ()) -> dict:
    pipeline = vflow.Pipeline.load(graph, input=src, output=out)
    for s in sets:
        pipeline.set(s)
    return run_chunked(pipeline, Options(backend, seconds, workers=workers), warn=lambda m: None)


def streamed(graph: str, src: Path, out: Path, sets: tuple[str, ...] = ()) -> None:
    pipeline = vflow.Pipeline.load(graph, input=src, output=out)
    for s in sets:
        pipeline.set(s)
    pipeline.run()


INTO_FFV1 = ("encode.codec=ffv1", "encode.crf=null", "encode.preset=null")  # the shipped copy graph, lossless


REAL_CLIPS = ["clean_scenecut_tears_of_steel_640x360.mp4", "oldfilm_steamboat_willie_part1_audio.mp4"]


@pytest.mark.parametrize("name", REAL_CLIPS)
def test_chunked_copy_is_frame_exact_on_real_clips(data_dir: Path, tmp_path: Path, name: str) -> None:
    src = VIDEO_DIR / name
    streamed("copy", src, tmp_path / "stream.mkv", INTO_FFV1)
    report = chunked("copy", src, tmp_path / "chunks.mkv", seconds=3.0, sets=INTO_FFV1)
    assert report["chunks"]["total"] >= 3 and report["chunks"]["run"] == report["chunks"]["total"]
    a, b = media(tmp_path / "stream.mkv"), media(tmp_path / "chunks.mkv")
    assert len(b[0]) == len(a[0]) == report["frames"]
    assert b == a  # every frame's pts and pixels, every audio packet
    assert not (tmp_path / "chunks.mkv.vflow").exists()  # the work dir goes once the output is complete


def test_chunked_mp4_keeps_the_stream_runs_timestamps(tmp_path: Path) -> None:
    src = tmp_path / "vfr.mp4"
    rng = np.random.default_rng(3)
    write_gop_clip(src, [Fraction(int(m), 1000) for m in np.cumsum(rng.choice([40, 33, 80], size=150))], gop=12)
    graph = FFV1_COPY.replace("codec: ffv1", "codec: libx264, preset: ultrafast")
    streamed(graph, src, tmp_path / "stream.mp4")
    report = chunked(graph, src, tmp_path / "chunks.mp4", seconds=1.0)
    assert report["chunks"]["total"] >= 4
    with av.open(str(tmp_path / "stream.mp4")) as a, av.open(str(tmp_path / "chunks.mp4")) as b:
        assert [f.pts for f in b.decode(video=0)] == [f.pts for f in a.decode(video=0)]


def test_chunked_restore_classic_is_close_to_the_stream_run(tmp_path: Path) -> None:
    src = Path(vflow.__file__).parent / "data" / "sample.mp4"  # real film with its sound: audio_clean runs too
    streamed("restore_classic", src, tmp_path / "stream.mkv", INTO_FFV1)
    report = chunked("restore_classic", src, tmp_path / "chunks.mkv", seconds=1.5, sets=INTO_FFV1)
    assert report["chunks"]["total"] >= 3
    outs = {}
    for how in ("stream", "chunks"):
        with av.open(str(tmp_path / f"{how}.mkv")) as c:
            outs[how] = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float64)
    assert outs["stream"].shape == outs["chunks"].shape
    mse = float(np.mean((outs["stream"] - outs["chunks"]) ** 2))
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 45
    assert media(tmp_path / "chunks.mkv")[1] == media(tmp_path / "stream.mkv")[1]  # the cleaned sound, once


def test_a_killed_worker_s_chunk_is_run_again(tmp_path: Path, clip: Path) -> None:
    graph = FFV1_COPY.replace("edges:", f"  die: {{type: 'chunk_stages:DieOnce', params: {{marker: "
                                        f"'{tmp_path / 'died'}'}}}}\nedges:").replace(
        "decode.video -> encode.video", "decode.video -> die -> encode.video")
    messages: list[str] = []
    pipeline = vflow.Pipeline.load(graph, input=clip, output=tmp_path / "o.mkv", allow_modules=["chunk_stages"])
    report = run_chunked(pipeline, Options("chunks", 0.2, workers=1), warn=messages.append)
    assert (tmp_path / "died").exists() and report["chunks"]["total"] == 2
    assert messages == ["chunk 0: its worker process died; trying it again"]
    streamed(FFV1_COPY, clip, tmp_path / "stream.mkv")
    assert media(tmp_path / "o.mkv") == media(tmp_path / "stream.mkv")


def test_chunked_field_rate_deinterlace_matches_the_stream_run(tmp_path: Path) -> None:
    src = tmp_path / "interlaced.mkv"
    rgb = pattern_frames(60, 96, 64)
    rgb[:, 1::2] = rgb[:, 1::2] // 2  # combing: odd lines from another moment
    with av.open(str(src), "w") as out:
        s = out.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        for i, image in enumerate(rgb):
            f = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, 25)
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    graph = FFV1_COPY.replace('deinterlace: "off"', "deinterlace: on, deinterlace_rate: field")
    streamed(graph, src, tmp_path / "stream.mkv")
    report = chunked(graph, src, tmp_path / "chunks.mkv", seconds=0.5)
    assert report["chunks"]["total"] >= 3 and report["frames"] == 120
    assert media(tmp_path / "chunks.mkv") == media(tmp_path / "stream.mkv")


def test_a_chunk_with_the_wrong_frame_count_fails(tmp_path: Path, clip: Path) -> None:
    spec = vflow.Pipeline.load(FFV1_COPY, input=clip, output=tmp_path / "seg.mkv")
    spec.build()
    spec.release()
    job = Job(0, spec.spec, "encode", frames=11, output=str(tmp_path / "seg.mkv"))
    with pytest.raises(ChunkError, match="chunk 0: 12 frames reached the encoder, the plan has 11"):
        run_job(job)
    assert not (tmp_path / "seg.mkv").exists()


def test_graphs_whose_stages_chunks_cannot_run_are_refused(tmp_path: Path, clip: Path) -> None:
    listing = TEMPORAL.replace("{type: scene_split}", f"{{type: scene_split, params: {{list_path: '{tmp_path}/s.csv'}}}}")
    with pytest.raises(ChunkError, match=r"stage 'scenes' writes '.*s.csv', which every chunk would write again"):
        chunked(listing, clip, tmp_path / "x.mkv", seconds=1.0)
    side = FFV1_COPY.replace("edges:", "  sink: {type: collect}\nedges:\n  - decode.video -> sink\n")
    with pytest.raises(ChunkError, match="stage 'sink' does not feed the encoder"):
        chunked(side, clip, tmp_path / "x.mkv", seconds=1.0)


def test_graphs_with_two_encoders_are_refused(tmp_path: Path, clip: Path) -> None:
    graph = FFV1_COPY.replace("edges:", '  enc2: {type: encode, params: {path: "${output}.2.mkv", codec: ffv1}}\n'
                                        "edges:\n  - decode.video -> enc2.video\n")
    with pytest.raises(ChunkError, match="exactly one 'encode' stage; this one has 2"):
        chunked(graph, clip, tmp_path / "x.mkv", seconds=1.0)


# -- resume, invalidation, the command line ---------------------------------------------------------------
def write_temporal_clip(path: Path, frames: int = 250) -> None:
    write_gop_clip(path, [Fraction(i, 25) for i in range(frames)], gop=25, size=(160, 120))


def test_killed_run_resumes_identically(tmp_path: Path) -> None:
    src, graph = tmp_path / "in.mp4", tmp_path / "g.yaml"
    write_temporal_clip(src)
    graph.write_text(TEMPORAL)
    args = ["run", str(graph), "-i", str(src), "--backend", "chunks", "--chunk-seconds", "1", "--workers", "1", "-q"]
    assert run_cli([*args, "-o", str(tmp_path / "whole.mkv")], timeout=300).returncode == 0
    out, work = tmp_path / "out.mkv", tmp_path / "out.mkv.vflow"
    proc = subprocess.Popen([sys.executable, "-m", "vflow", *args, "-o", str(out)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            states = [c["state"] for c in json.loads((work / "manifest.json").read_text())["chunks"]]
        except (OSError, ValueError, KeyError):
            states = []
        if "done" in states:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists() and states.count("done") < len(states)
    again = run_cli([*args, "-o", str(out), "--json", str(tmp_path / "r.json")], timeout=300)
    assert again.returncode == 0, again.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["chunks"]["reused"] >= 1 and report["chunks"]["run"] >= 1
    assert report["chunks"]["reused"] + report["chunks"]["run"] == report["chunks"]["total"]
    assert media(out) == media(tmp_path / "whole.mkv")


def test_rerun_reuses_done_chunks_and_a_change_starts_over_saying_which(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in.mp4"
    write_temporal_clip(src, 50)
    work = tmp_path / "work"
    messages: list[str] = []

    def failing_join(*args: object) -> None:  # a run killed after its chunks: the work dir stays
        raise ChunkError("stopped before the join")

    def run(*sets: str, fresh: bool = False) -> dict:
        pipeline = vflow.Pipeline.load(TEMPORAL, input=src, output=tmp_path / "o.mkv")
        for assignment in sets:
            pipeline.set(assignment)
        with pytest.raises(ChunkError, match="stopped before the join"):
            run_chunked(pipeline, Options("chunks", 0.5, work_dir=work, workers=1, fresh=fresh),
                        warn=messages.append)
        return json.loads((work / "manifest.json").read_text())

    monkeypatch.setattr("vflow.media.concat.join", failing_join)
    first = run()
    assert len(first["chunks"]) == 4 and all(c["state"] == "done" for c in first["chunks"]) and messages == []
    mtimes = {p.name: p.stat().st_mtime_ns for p in work.glob("seg-*")}
    assert run() == first and {p.name: p.stat().st_mtime_ns for p in work.glob("seg-*")} == mtimes  # nothing redone
    run("smooth.strength=0.5")
    assert messages == [f"work dir '{work}': the graph (or a --set param, or --chunk-seconds) changed since it "
                        f"was made; starting over"]
    os.utime(src, ns=(0, 0))
    run("smooth.strength=0.5")
    assert messages[-1] == f"work dir '{work}': the input file changed since it was made (mtime_ns differ); " \
                           f"starting over"
    before = {p.name for p in work.glob("seg-*")}
    run("smooth.strength=0.5", fresh=True)
    assert len(messages) == 2 and not before & {p.name for p in work.glob("seg-*")}


def test_cli_chunked_run_reports_its_chunks(tmp_path: Path, clip: Path) -> None:
    graph = tmp_path / "g.yaml"
    graph.write_text(FFV1_COPY)
    result = run_cli(["run", str(graph), "-i", str(clip), "-o", str(tmp_path / "o.mkv"), "--backend", "chunks",
                      "--chunk-seconds", "0.2", "--workers", "2", "--json", str(tmp_path / "r.json"),
                      "--report", str(tmp_path / "r.html")], timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["chunks"] == {"total": 2, "reused": 0, "run": 2} and report["frames"] == 12
    assert report["stages"]["encode"]["frames_in"] == 12
    assert "12 frames in 2 chunks (0 reused, 2 run)" in result.stderr
    page = (tmp_path / "r.html").read_text()  # the stages' figures summed over the chunks
    assert re.search(r"<td>encode</td><td>encode</td><td class=n>12</td>", page) and "data:image/png" in page


def test_cli_refuses_bad_chunk_options(tmp_path: Path, clip: Path) -> None:
    result = run_cli(["run", "copy", "-i", str(clip), "-o", str(tmp_path / "o.mp4"), "--backend", "chunks",
                      "--workers", "0"])
    assert result.returncode == 2 and "--workers must be at least 1 (got 0)" in result.stderr


def test_ray_backend_on_a_local_two_cpu_cluster_is_frame_exact(data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    src = VIDEO_DIR / "oldfilm_steamboat_willie_part1_audio.mp4"
    streamed("copy", src, tmp_path / "stream.mkv", INTO_FFV1)
    report = chunked("copy", src, tmp_path / "ray.mkv", seconds=4.0, workers=2, backend="ray", sets=INTO_FFV1)
    assert report["backend"] == "ray" and report["chunks"]["total"] >= 3
    assert media(tmp_path / "ray.mkv") == media(tmp_path / "stream.mkv")


def test_ray_backend_without_ray_says_how_to_install_it(tmp_path: Path, clip: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ChunkError, match=r"--backend ray needs Ray: pip install 'vflow\[ray\]'"):
        chunked(FFV1_COPY, clip, tmp_path / "o.mkv", seconds=0.2, backend="ray")


def test_ctrl_c_stops_a_chunked_run_and_its_workers(tmp_path: Path) -> None:
    src, graph, out = tmp_path / "in.mp4", tmp_path / "g.yaml", tmp_path / "out.mkv"
    write_temporal_clip(src)
    graph.write_text(TEMPORAL)
    proc = subprocess.Popen([sys.executable, "-m", "vflow", "run", str(graph), "-i", str(src), "-o", str(out),
                             "--backend", "chunks", "--chunk-seconds", "1", "--workers", "2", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    manifest = tmp_path / "out.mkv.vflow" / "manifest.json"
    deadline = time.monotonic() + 120
    while not manifest.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # the workers are busy now
    workers = [int(pid) for task in Path(f"/proc/{proc.pid}/task").iterdir()
               for pid in (task / "children").read_text().split()]
    assert workers, "no worker process found"
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and time.monotonic() - t0 < 10, err
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()
    time.sleep(0.5)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
             and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"]
    assert alive == []
