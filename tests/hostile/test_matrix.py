"""The hostile matrix: generated inputs and command lines that broke vflow's promises, each run through the CLI.

Every case gives a correct output, or exactly one ``vflow: error:`` line naming the file, the stage or the YAML
line. For every case: no traceback, no half file (``*.partial``), no changed source file, and the exit code
says which (0, 1 for a stage failure, 2 for bad input). Runtime: about a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np
import pytest
from helpers_media import REPO, VIDEO_DIR
from media_cases import (
    corrupt_packet, digest, partials, truncate, write_grey, write_joined, write_repeated_pts, write_test_clip,
    write_title_then_combed, write_two_video_streams, write_with_attachment,
)

from vflow.cli import main

COPY = str(REPO / "graphs" / "copy.yaml")
CLASSIC = str(REPO / "graphs" / "restore_classic.yaml")
DV = VIDEO_DIR / "interlaced_dv_ntsc_sony_good_quality_5frames.dv"
FAST = ["--set", "encode.preset=ultrafast"]
AUTO = ["--set", "decode.deinterlace=auto"]
FFV1 = ["--set", "encode.codec=ffv1", "--set", "encode.crf=null", "--set", "encode.preset=null"]


@dataclass
class Case:
    """``make(src_dir, out_dir)`` writes the inputs and returns the CLI arguments; ``code`` is the exit code;
    ``error`` the texts the error line names; ``check(out_dir, report, stderr)`` what a good output must show."""

    make: Callable[[Path, Path], list[str]]
    code: int = 0
    error: tuple[str, ...] = ()
    check: Callable[[Path, dict, str], None] | None = None
    data: bool = False
    cases: list = field(default_factory=list)


def frames_of(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def times_of(path: Path) -> list[Fraction]:
    return [f.pts * Fraction(f.time_base) for f in frames_of(path)]


def clip(frames: int, **kw) -> Callable[[Path], Path]:
    def make(src: Path) -> Path:
        path = src / f"clip{frames}.mp4"
        write_test_clip(path, frames, **kw)
        return path
    return make


def run(graph: str, *extra: str, frames: int = 12, out: str = "out.mp4", **kw) -> Callable[[Path, Path], list[str]]:
    """``vflow run GRAPH -i <a generated clip> -o OUT -q --json report.json EXTRA``."""
    def make(src: Path, dst: Path) -> list[str]:
        return ["run", graph, "-i", str(clip(frames, **kw)(src)), "-o", str(dst / out), "-q",
                "--json", str(dst / "report.json"), *extra]
    return make


def on(path_maker: Callable[[Path], Path], graph: str = COPY, *extra: str, out: str = "out.mp4"
       ) -> Callable[[Path, Path], list[str]]:
    def make(src: Path, dst: Path) -> list[str]:
        return ["run", graph, "-i", str(path_maker(src)), "-o", str(dst / out), "-q",
                "--json", str(dst / "report.json"), *extra]
    return make


def n_frames(n: int, out: str = "out.mp4") -> Callable[[Path, dict, str], None]:
    def check(dst: Path, report: dict, err: str) -> None:
        assert len(frames_of(dst / out)) == n
    return check


def warns(*needles: str, frames: int | None = None) -> Callable[[Path, dict, str], None]:
    def check(dst: Path, report: dict, err: str) -> None:
        text = " | ".join(report["warnings"])
        for needle in needles:
            assert needle in text, text
        if frames is not None:
            assert len(frames_of(dst / "out.mp4")) == frames
    return check


def made(writer: Callable[[Path], None], name: str) -> Callable[[Path], Path]:
    def make(src: Path) -> Path:
        writer(src / name)
        return src / name
    return make


def damaged(kind: str) -> Callable[[Path], Path]:
    def make(src: Path) -> Path:
        good = src / ("good.mkv" if kind.startswith("mkv") else "good.mp4")
        write_test_clip(good, 60, size=(128, 96))
        bad = src / f"bad-{kind}{good.suffix}"
        if kind == "mp4-packet":
            corrupt_packet(good, bad)
        else:
            truncate(good, bad, 0.5)
        good.unlink()
        return bad
    return make


def lossless_bias(dst: Path, report: dict, err: str) -> None:
    """FFV1 (RGB) copy of a lossless yuv420p source against an exact float reference: bias <= 0.1 per channel."""
    from helpers_media import reference_rgb
    src = [reference_rgb(f) for f in frames_of(dst.parent / "src" / "ramp.mkv")]
    out = [f.to_ndarray(format="rgb24") for f in frames_of(dst / "out.mkv")]
    bias = np.mean([o.astype(float) - s for o, s in zip(out, src)], axis=(0, 1, 2))
    assert np.all(np.abs(bias) <= 0.1), bias


def grey_56(dst: Path, report: dict, err: str) -> None:
    rgb = frames_of(dst / "out.mkv")[0].to_ndarray(format="rgb24")
    assert np.all(rgb == 56), np.unique(rgb)  # Y=64 limited: (64-16)*255/219 = 55.9 -> 56, never 55


def keeps_field_order(dst: Path, report: dict, err: str) -> None:
    with av.open(str(dst / "out.mkv")) as c:
        assert c.streams.video[0].codec_context.field_order in (2, 3)  # tff / bff, not progressive
        assert next(c.decode(video=0)).interlaced_frame


def field_rate_from_the_switch(dst: Path, report: dict, err: str) -> None:
    """60 still frames, then 60 combed: one frame per frame up to where combing was found, two after it."""
    times = times_of(dst / "out.mp4")
    steps = [b - a for a, b in zip(times, times[1:])]
    switch = steps.index(Fraction(1, 50))
    assert 60 <= switch < 100 and len(times) == switch + 2 * (120 - switch), (switch, len(times))
    assert set(steps[:switch]) == {Fraction(1, 25)} and set(steps[switch:]) == {Fraction(1, 50)}


def write_family_clip(path: Path) -> None:
    """A clip with a recording date, a title and two chapters."""
    with av.open(str(path), "w") as out:
        out.metadata["creation_time"] = "1987-06-14T15:30:00.000000Z"
        out.metadata["title"] = "Grandma's birthday"
        s = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        out.set_chapters([{"id": i + 1, "start": 12 * i, "end": 12 * i + 12, "time_base": Fraction(1, 25),
                           "metadata": {"title": t}} for i, t in enumerate(("Cake", "Garden"))])
        for i in range(24):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 5 * i, np.uint8), format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode(None))


def keeps_metadata(dst: Path, report: dict, err: str) -> None:
    with av.open(str(dst / "out.mp4")) as c:
        assert c.metadata.get("creation_time", "").startswith("1987-06-14T15:30:00")
        assert c.metadata.get("title") == "Grandma's birthday"
        assert [ch["metadata"].get("title") for ch in c.chapters()] == ["Cake", "Garden"]


def write_ramp(path: Path) -> None:
    """Lossless yuv420p, smooth colour ramps in luma and chroma (FFV1)."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 128, 96, "yuv420p"
        y, x = np.mgrid[0:96, 0:128]
        for i in range(4):
            f = av.VideoFrame(128, 96, "yuv420p")
            planes = [(16 + (x * 219) // 127 + i) % 256, 64 + (x[::2, ::2] + y[::2, ::2]) // 2,
                      200 - y[::2, ::2]]
            for plane, values in zip(f.planes, planes):
                buf = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                buf[:, : values.shape[1]] = values
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode(None))


def same_output(spelling: str) -> Callable[[Path, Path], list[str]]:
    """-o naming the input itself, however spelled."""
    def make(src: Path, dst: Path) -> list[str]:
        path = clip(8)(src)
        (src / "sub").mkdir(exist_ok=True)
        names = {"same": path, "dotdot": src / "sub" / ".." / path.name}
        if spelling == "symlink":
            (src / "link.mp4").symlink_to(path)
            names["symlink"] = src / "link.mp4"
        if spelling == "hardlink":
            os.link(path, src / "hard.mp4")
            names["hardlink"] = src / "hard.mp4"
        return ["run", COPY, "-i", str(path), "-o", str(names[spelling]), "-q"]
    return make


def graph_file(text: str, *extra: str) -> Callable[[Path, Path], list[str]]:
    def make(src: Path, dst: Path) -> list[str]:
        g = src / "g.yaml"
        g.write_text(textwrap.dedent(text).lstrip())
        for folder in (src, src.parent):  # the graph's folder and the working directory
            (folder / "evil.py").write_text(f"open({str(src / 'pwned')!r}, 'w').write('x')\n")
        return ["check", str(g), "-i", str(clip(4)(src)), "-o", str(dst / "out.mp4"), *extra]
    return make


def not_pwned(dst: Path, report: dict, err: str) -> None:
    assert not (dst.parent / "src" / "pwned").exists() and "Beautiful is better" not in err


EVIL = """
    vflow: 1
    stages:
      decode: {type: decode, params: {path: "${input}"}}
      probe: {type: "%s"}
      encode: {type: encode, params: {path: "${output}"}}
    edges: [decode.video -> probe -> encode.video]
"""


def named_017(src: Path, dst: Path) -> list[str]:
    folder = src / "017"
    folder.mkdir()
    write_test_clip(folder / "017", 6, fmt="mp4")
    os.chdir(folder)  # `-i 017`: a name YAML would read as the octal number 15
    return ["run", COPY, "-i", "017", "-o", str(dst / "out.mp4"), "-q"]


def input_kind(kind: str) -> Callable[[Path, Path], list[str]]:
    def make(src: Path, dst: Path) -> list[str]:
        path = src / {"empty": "empty.mp4", "text": "notes.mp4", "dir": "folder.mp4", "missing": "missing.mp4",
                      "audio": "voice.m4a"}[kind]
        if kind == "empty":
            path.write_bytes(b"")
        elif kind == "text":
            path.write_text("shopping list\n")
        elif kind == "dir":
            path.mkdir()
        elif kind == "audio":
            with av.open(str(path), "w", format="mp4") as out:
                a = out.add_stream("aac", rate=48000)
                for k in range(10):
                    af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                    af.sample_rate, af.pts = 48000, k * 1024
                    out.mux(a.encode(af))
                out.mux(a.encode(None))
        return ["run", COPY, "-i", str(path), "-o", str(dst / "out.mp4"), "-q"]
    return make


def output_kind(kind: str) -> Callable[[Path, Path], list[str]]:
    def make(src: Path, dst: Path) -> list[str]:
        out = {"dir": dst / "isdir.mp4", "ext": dst / "out.xyz", "under-file": src / "file.txt" / "out.mp4"}[kind]
        if kind == "dir":
            out.mkdir()
        if kind == "under-file":
            out.parent.write_text("a file, not a folder")
        return ["run", COPY, "-i", str(clip(6)(src)), "-o", str(out), "-q"]
    return make


def json_to(kind: str) -> Callable[[Path, Path], list[str]]:
    def make(src: Path, dst: Path) -> list[str]:
        path = clip(6)(src)
        target = str(path) if kind == "input" else "/proc/vflow-report.json"
        return ["run", COPY, "-i", str(path), "-o", str(dst / "out.mp4"), "-q", "--json", target]
    return make


def dv_audio_is_aac(dst: Path, report: dict, err: str) -> None:
    with av.open(str(dst / "out.mp4")) as c:
        assert [a.codec_context.name for a in c.streams.audio] == ["aac", "aac"]
    assert len(frames_of(dst / "out.mp4")) == 5


CASES: dict[str, Case] = {
    # frames that vanished with exit 0
    **{f"copy-{n}-frames": Case(run(COPY, *FAST, frames=n), check=n_frames(n)) for n in (1, 2, 3, 4, 5)},
    **{f"auto-deinterlace-{n}-frames": Case(run(COPY, "--set", "decode.deinterlace=auto", *FAST, frames=n),
                                            check=n_frames(n)) for n in (31, 32, 33, 34)},
    **{f"threads16-{n}-frames": Case(run(COPY, "--set", "decode.threads=16", *FAST, frames=n), check=n_frames(n))
       for n in (12, 40)},
    "classic-33-frames": Case(run(CLASSIC, *FAST, frames=33), check=n_frames(33)),
    "classic-interlaced-field-rate": Case(run(CLASSIC, "--set", "decode.deinterlace_rate=field", *FAST, frames=9,
                                              interlaced=True), check=n_frames(18)),
    # timestamps that go back or repeat
    "joined-camcorder-segments": Case(on(made(write_joined, "joined.ts"), COPY, *FAST),
                                      check=warns("jumps back", "joined segments", frames=90)),
    "joined-segments-classic": Case(on(made(write_joined, "joined.ts"), CLASSIC, *FAST), check=n_frames(90)),
    "joined-segments-of-two-sizes": Case(on(made(lambda p: write_joined(p, (20, 20), ((64, 48), (32, 24))),
                                                "sizes.ts"), COPY, *FAST),
                                         check=warns("picture size changes from 64x48 to 32x24", frames=40)),
    "repeated-pts": Case(on(made(write_repeated_pts, "rep.mkv"), COPY, *FAST),
                         check=warns("repeats the previous one", frames=30)),
    "combing-after-a-title": Case(on(made(write_title_then_combed, "title.mkv"), COPY, *AUTO, *FAST),
                                  check=warns("combing appeared at", "deinterlaced from there on", frames=120)),
    "combing-after-a-title-field-rate": Case(on(made(write_title_then_combed, "title.mkv"), COPY, *AUTO, "--set",
                                                "decode.deinterlace_rate=field", *FAST),
                                             check=field_rate_from_the_switch),
    # damaged input
    "corrupt-packet-mp4": Case(on(damaged("mp4-packet"), COPY, *FAST), check=warns("damaged video", "skipped")),
    "corrupt-packet-over-limit": Case(on(damaged("mp4-packet"), COPY, "--set", "decode.max_damaged=0"), code=1,
                                      error=("bad-mp4-packet.mp4", "damaged", "max_damaged")),
    "truncated-mkv": Case(on(damaged("mkv-half"), COPY, *FAST), check=warns("truncated", "bad-mkv-half.mkv")),
    "second-video-stream": Case(on(made(write_two_video_streams, "two.mkv"), COPY, *FAST),
                                check=warns("2 video streams", "dropped", frames=10)),
    "second-video-stream-chosen": Case(on(made(write_two_video_streams, "two.mkv"), COPY, "--set",
                                          "decode.stream=1", *FAST), check=n_frames(10)),
    "attachment-not-carried": Case(on(made(write_with_attachment, "att.mkv"), COPY, *FAST),
                                   check=warns("attachment stream 1", "not carried", frames=10)),
    # colour
    "lossless-copy-bias": Case(on(made(write_ramp, "ramp.mkv"), COPY, *FFV1, out="out.mkv"),
                               check=lossless_bias),
    "grey-64-rounds-to-56": Case(on(made(lambda p: write_grey(p, 64), "grey.mkv"), COPY, "--set",
                                    "encode.codec=ffv1", "--set", "encode.crf=null", "--set", "encode.preset=null",
                                    out="out.mkv"), check=grey_56),
    "interlaced-kept-when-off": Case(on(clip(8, interlaced=True), COPY, *FAST, out="out.mkv"),
                                     check=keeps_field_order),
    "recording-date-and-chapters": Case(on(made(write_family_clip, "family.mp4"), COPY, *FAST), check=keeps_metadata),
    # sound
    "dv-restore-classic": Case(lambda s, d: ["run", "restore_classic", "-i", str(DV), "-o", str(d / "out.mp4"), "-q",
                                             *FAST], check=n_frames(5), data=True),
    "dv-audio-into-mp4": Case(lambda s, d: ["run", COPY, "-i", str(DV), "-o", str(d / "out.mp4"), "-q", *FAST],
                              check=dv_audio_is_aac, data=True),
    # the source file is never written over
    **{f"output-is-input-{k}": Case(same_output(k), code=2, error=("never writes over its source",))
       for k in ("same", "dotdot", "symlink", "hardlink")},
    "json-is-input": Case(json_to("input"), code=2, error=("--json report", "never writes over its source")),
    "json-unwritable": Case(json_to("proc"), code=2, error=("/proc", "not writable")),
    # graph files
    "module-not-allowed": Case(graph_file(EVIL % "evil:Anything"), code=2, error=("evil", "--allow-module"),
                               check=not_pwned),
    "this-module": Case(graph_file(EVIL % "this:x"), code=2, error=("this", "--allow-module"), check=not_pwned),
    "duplicate-stage": Case(graph_file("""
        vflow: 1
        stages:
          decode: {type: decode, params: {path: "${input}"}}
          encode: {type: encode, params: {path: "${output}"}}
          encode: {type: encode, params: {path: "${output}"}}
        edges: [decode.video -> encode.video]
        """), code=2, error=("duplicate key 'encode'", "line 4")),
    "input-named-017": Case(named_017, check=n_frames(6)),
    "set-deinterlace-off": Case(run(COPY, "--set", "decode.deinterlace=off", *FAST, frames=6), check=n_frames(6)),
    "set-deinterlace-on": Case(run(COPY, "--set", "decode.deinterlace=on", *FAST, frames=6), check=n_frames(6)),
    "crf-out-of-range": Case(run(COPY, "--set", "encode.crf=99", frames=4), code=2, error=("crf", "99")),
    # bad files and places
    **{f"input-{k}": Case(input_kind(k), code=2, error=("stage 'decode'",))
       for k in ("empty", "text", "missing", "audio")},
    "input-dir": Case(input_kind("dir"), code=2, error=("is a folder", "no video file in", "folder.mp4")),
    **{f"output-{k}": Case(output_kind(k), code=2, error=("stage 'encode'",)) for k in ("dir", "ext", "under-file")},
    "odd-size-yuv420p": Case(run(COPY, "--set", "encode.pix_fmt=yuv420p", frames=4, size=(63, 47), pix_fmt="yuv444p"),
                             code=2, error=("63x47",)),
    "odd-size-kept-444": Case(run(COPY, frames=4, size=(63, 47), pix_fmt="yuv444p"), check=n_frames(4)),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile(name: str, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    if case.data and not DV.exists():
        pytest.skip("../shared/data/video is missing")
    src, dst = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    dst.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # as `python -m vflow` has its working directory on sys.path
    args = case.make(src, dst)
    before = digest(src)
    code = main(args)
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    assert code == case.code, err
    assert digest(src) == before, "a source file changed"
    assert not partials(tmp_path), partials(tmp_path)
    if case.code:
        lines = [line for line in err.strip().splitlines() if not line.startswith("vflow: warning:")]
        assert len(lines) == 1 and lines[0].startswith("vflow: error: "), err
        for needle in case.error:
            assert needle in lines[0], lines[0]
        assert not [p for p in dst.rglob("*") if p.is_file() and p.suffix != ".json"], "an output was left"
    if case.check is not None:
        report_path = dst / "report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {"warnings": []}
        case.check(dst, report, err)


def test_the_matrix_is_large() -> None:
    assert len(CASES) >= 40


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_stop_signals_remove_partial_output(tmp_path: Path, sig: int, code: int) -> None:
    """SIGTERM and SIGHUP are Ctrl-C: every stage stops within 2 s, no half file, exit 128 + signal."""
    src, out = tmp_path / "long.mp4", tmp_path / "out.mp4"
    write_test_clip(src, 1500, size=(320, 240))
    proc = subprocess.Popen([sys.executable, "-m", "vflow", "run", COPY, "-i", str(src), "-o", str(out), "-q"],
                            stderr=subprocess.PIPE, text=True)
    for _ in range(200):  # until the encoder has started writing
        if out.with_name(out.name + ".partial").exists() or proc.poll() is not None:
            break
        subprocess.run(["sleep", "0.05"])
    proc.send_signal(sig)
    err = proc.communicate(timeout=5)[1]
    assert proc.returncode == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not partials(tmp_path)
