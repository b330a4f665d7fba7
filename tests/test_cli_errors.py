"""The CLI's failures: non-zero exit, one ``vflow: error:`` line naming the file / YAML place / stage, no
traceback (unless ``--debug``), and neither OUT nor OUT.partial left behind. Runtime: about 20 s on 2 cores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import pytest
from helpers_media import REPO, VIDEO_DIR, run_cli, write_clip

from vflow.cli import main

COPY = REPO / "graphs" / "copy.yaml"
needs_data = pytest.mark.skipif(not VIDEO_DIR.is_dir(), reason="../shared/data/video is missing")
STAGES_MODULE = "vflow_e2e_stages"
STAGES_SOURCE = '''
"""Custom stages for the CLI error tests."""
import vflow


class Passthrough(vflow.Stage):
    """Passes every batch on."""

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        return batch


class FailAt(vflow.Stage):
    """Passes batches on until one reaches ``at`` seconds, then raises."""

    def __init__(self, at: float = 0.5):
        self.at = at

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        if batch.seconds(len(batch) - 1) >= self.at:
            raise RuntimeError(f"synthetic failure at {self.at} s")
        return batch
'''


@pytest.fixture(scope="module")
def stages_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the ``vflow_e2e_stages`` module (put it on PYTHONPATH / sys.path)."""
    folder = tmp_path_factory.mktemp("stages")
    (folder / f"{STAGES_MODULE}.py").write_text(STAGES_SOURCE)
    return folder


@pytest.fixture(scope="module")
def clip24(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-frame 64x48 H.264 clip at 25 fps (three batches of 8 in the copy graph)."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_clip(path, frames=24)
    return path


def vflow(capfd: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """``vflow ARGS`` in this process: (exit code, stderr)."""
    code = main([str(a) for a in args])
    return code, capfd.readouterr().err


def assert_error(code: int, err: str, expected_code: int, *needles: str) -> None:
    """Exit ``expected_code`` and exactly one line ``vflow: error: ...`` on stderr naming every needle."""
    assert code == expected_code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vflow: error: "), err
    for needle in needles:
        assert needle in lines[0]


def assert_no_output(out: Path) -> None:
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


def write_graph(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.mark.timeout(30)
def test_missing_input_file(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src, out = tmp_path / "missing.mp4", tmp_path / "out.mp4"
    code, err = vflow(capfd, "run", COPY, "-i", src, "-o", out, "-q")
    assert_error(code, err, 2, f"{COPY}:5:3: stage 'decode'", f"input file '{src}' does not exist")
    assert_no_output(out)


@pytest.mark.timeout(30)
def test_debug_prints_the_traceback(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src, out = tmp_path / "missing.mp4", tmp_path / "out.mp4"
    code, err = vflow(capfd, "run", COPY, "-i", src, "-o", out, "-q", "--debug")
    assert code == 2
    assert "Traceback (most recent call last)" in err and "MediaError" in err
    assert err.strip().splitlines()[-1].startswith(f"vflow: error: {COPY}:5:3: stage 'decode'")
    assert_no_output(out)


@pytest.mark.timeout(30)
def test_text_file_named_mp4(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src, out = tmp_path / "notes.mp4", tmp_path / "out.mp4"
    src.write_text("shopping list: milk, eggs\n")
    code, err = vflow(capfd, "run", COPY, "-i", src, "-o", out, "-q")
    assert_error(code, err, 2, "stage 'decode'", f"input file '{src}' is not a video FFmpeg can read")
    assert_no_output(out)


@needs_data
@pytest.mark.timeout(30)
def test_truncated_mp4_without_its_index(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The first half of a real clip: its moov (at the end) is gone."""
    data = (VIDEO_DIR / "clean_nocut_caminandes_640x360.mp4").read_bytes()
    src, out = tmp_path / "half.mp4", tmp_path / "out.mp4"
    src.write_bytes(data[: len(data) // 2])
    code, err = vflow(capfd, "run", COPY, "-i", src, "-o", out, "-q")
    assert_error(code, err, 2, "stage 'decode'", f"input file '{src}' is not a video FFmpeg can read",
                 "truncated")
    assert_no_output(out)


@needs_data
@pytest.mark.timeout(30)
def test_truncated_mp4_with_intact_index(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A faststart remux (moov first) cut in half: it opens, and the demuxer alone would just stop early."""
    faststart = tmp_path / "faststart.mp4"
    with av.open(str(VIDEO_DIR / "clean_nocut_caminandes_640x360.mp4")) as inp, \
            av.open(str(faststart), "w", options={"movflags": "faststart"}) as remux:
        stream = remux.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                remux.mux(packet)
    data = faststart.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    src, out = tmp_path / "cut.mp4", tmp_path / "out.mp4"
    src.write_bytes(data[: len(data) // 2])
    code, err = vflow(capfd, "run", COPY, "-i", src, "-o", out, "-q")
    assert_error(code, err, 2, "stage 'decode'", f"input file '{src}' is truncated")
    assert_no_output(out)


@pytest.mark.timeout(30)
def test_zero_frame_video(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src, out = tmp_path / "empty.y4m", tmp_path / "out.mp4"
    with av.open(str(src), "w") as empty:  # a header with a 64x48 video stream, and no frame
        stream = empty.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        empty.start_encoding()
    code, err = vflow(capfd, "run", COPY, "-i", src, "-o", out, "-q")
    assert_error(code, err, 2, "stage 'decode'", f"input file '{src}' has a video stream but no frame")
    assert_no_output(out)


@pytest.mark.timeout(30)
def test_audio_only_file(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src, out = tmp_path / "song.m4a", tmp_path / "out.mp4"
    with av.open(str(src), "w") as song:
        stream = song.add_stream("aac", rate=48000)
        stream.layout = "stereo"
        for i in range(10):
            frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate, frame.pts = 48000, i * 1024
            song.mux(stream.encode(frame))
        song.mux(stream.encode(None))
    code, err = vflow(capfd, "run", COPY, "-i", src, "-o", out, "-q")
    assert_error(code, err, 2, "stage 'decode'", f"input file '{src}' has no video stream", "audio")
    assert_no_output(out)


@pytest.mark.timeout(30)
def test_unknown_stage_type(capfd: pytest.CaptureFixture[str], tmp_path: Path, clip24: Path) -> None:
    graph = write_graph(tmp_path / "typo.yaml", """
        vflow: 1
        stages:
          decode: {type: decode, params: {path: "${input}"}}
          encode: {type: encdoe, params: {path: "${output}"}}
        edges:
          - decode.video -> encode.video
        """)
    out = tmp_path / "out.mp4"
    code, err = vflow(capfd, "run", graph, "-i", clip24, "-o", out, "-q")
    assert_error(code, err, 2, f"{graph}:4:3: stage 'encode'", "unknown stage type 'encdoe'",
                 "did you mean 'encode'?")
    assert_no_output(out)


@pytest.mark.timeout(30)
def test_bad_param_value(capfd: pytest.CaptureFixture[str], tmp_path: Path, clip24: Path) -> None:
    graph = write_graph(tmp_path / "bad.yaml", """
        vflow: 1
        stages:
          decode: {type: decode, params: {path: "${input}"}}
          encode:
            type: encode
            params:
              path: "${output}"
              crf: high
        edges:
          - decode.video -> encode.video
        """)
    out = tmp_path / "out.mp4"
    code, err = vflow(capfd, "run", graph, "-i", clip24, "-o", out, "-q")
    assert_error(code, err, 2, f"{graph}:8:7: stage 'encode' (encode): param 'crf'", "'high'")
    assert_no_output(out)


@pytest.mark.timeout(30)
def test_cycle(capfd: pytest.CaptureFixture[str], tmp_path: Path, clip24: Path, stages_dir: Path,
               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(stages_dir))
    graph = write_graph(tmp_path / "cycle.yaml", f"""
        vflow: 1
        stages:
          decode: {{type: decode, params: {{path: "${{input}}"}}}}
          encode: {{type: encode, params: {{path: "${{output}}"}}}}
          a: {{type: "{STAGES_MODULE}:Passthrough"}}
          b: {{type: "{STAGES_MODULE}:Passthrough"}}
        edges:
          - decode.video -> encode.video
          - a -> b -> a
        """)
    out = tmp_path / "out.mp4"
    code, err = vflow(capfd, "run", graph, "-i", clip24, "-o", out, "-q", "--allow-module", STAGES_MODULE)
    assert_error(code, err, 2, f"{graph}:9:5:", "cycle through stages: a, b")
    assert_no_output(out)


@pytest.mark.timeout(30)
def test_output_under_a_file(capfd: pytest.CaptureFixture[str], tmp_path: Path, clip24: Path) -> None:
    (tmp_path / "file.txt").write_text("not a folder")
    out = tmp_path / "file.txt" / "out.mp4"
    code, err = vflow(capfd, "run", COPY, "-i", clip24, "-o", out, "-q")
    assert_error(code, err, 2, f"{COPY}:6:3: stage 'encode'", f"output directory '{out.parent}'",
                 "is not a directory")
    assert (tmp_path / "file.txt").read_text() == "not a folder"


@pytest.mark.timeout(30)
def test_output_in_unwritable_directory(capfd: pytest.CaptureFixture[str], clip24: Path) -> None:
    """/proc refuses new files even to root (chmod would not stop root)."""
    out = Path("/proc/vflow-e2e-out.mp4")
    code, err = vflow(capfd, "run", COPY, "-i", clip24, "-o", out, "-q")
    assert_error(code, err, 2, f"{COPY}:6:3: stage 'encode'", "output directory '/proc' is not writable")
    assert_no_output(out)


@pytest.mark.timeout(60)
def test_stage_failing_mid_stream(tmp_path: Path, clip24: Path, stages_dir: Path) -> None:
    """A custom ``module:Class`` stage on PYTHONPATH raises on its second batch (frames 8-15, 0.32-0.60 s)."""
    graph = write_graph(tmp_path / "fail.yaml", f"""
        vflow: 1
        stages:
          decode: {{type: decode, params: {{path: "${{input}}", batch: 8}}}}
          boom: {{type: "{STAGES_MODULE}:FailAt", params: {{at: 0.5}}}}
          encode: {{type: encode, params: {{path: "${{output}}"}}}}
        edges:
          - decode.video -> boom -> encode.video
        """)
    out = tmp_path / "out.mp4"
    result = run_cli(["run", str(graph), "-i", str(clip24), "-o", str(out), "-q", "--allow-module", STAGES_MODULE],
                     env={"PYTHONPATH": os.pathsep.join([str(stages_dir), os.environ.get("PYTHONPATH", "")])})
    assert_error(result.returncode, result.stderr, 1, f"stage 'boom' ({STAGES_MODULE}:FailAt) failed at pts 0.320 s",
                 "RuntimeError: synthetic failure at 0.5 s")
    assert_no_output(out)


@needs_data
@pytest.mark.timeout(60)
def test_ctrl_c_stops_within_two_seconds(tmp_path: Path) -> None:
    """SIGINT 1.5 s into a run that would take far longer: exit 130 within 2 s, one line, nothing left behind."""
    out = tmp_path / "out.mp4"
    partial = out.with_name(out.name + ".partial")
    src = VIDEO_DIR / "clean_openh264_flower_1280x720_300f.h264"  # 10 s of 720p: a slow x264 takes far longer
    args = ["run", "copy", "-i", str(src), "-o", str(out), "--set", "encode.preset=slow", "-q"]
    proc = subprocess.Popen([sys.executable, "-m", "vflow", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 40
        while not partial.exists():  # frames are flowing once the encoder opened its output
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        time.sleep(1.5)
        assert proc.poll() is None, "the run ended before Ctrl-C"
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert took < 2.0, f"exit took {took:.2f} s after SIGINT"
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vflow: interrupted"), err
    assert_no_output(out)
