"""Engine overhead: the copy graph against a plain PyAV loop doing the same work, and the ffmpeg CLI.

    python bench/bench_copy.py [--rounds 3] [--clips 1080p,480p] [--workdir DIR]

Three ways to decode a clip, go through RGB (except ffmpeg) and encode x264 (veryfast, crf 18, audio
stream-copied):

- vflow: ``graphs/copy.yaml`` through the Python API (in this process) and through ``python -m vflow run``;
- PyAV: one plain loop in this process with the same decoder threading, the same colour conversion
  arguments, the same encoder options and tags (the "no engine" reference: the issue's 1.10x bar);
- ffmpeg: the CLI transcoding with the same x264 settings without the RGB round trip (the physical floor;
  skipped when ``ffmpeg`` is not on PATH). Debian's CLI links another libx264 than PyAV's wheel: the
  table names both builds.

The methods are interleaved, their order rotated each round, and the median (and minimum) of the rounds
reported, with CPU time beside wall time, since other processes share the cores. Inputs: a 1080p clip
made once (the real 1280x720 flower clip of ../shared/data upscaled, with an AAC tone) and the real
854x480 Steamboat Willie clip with its AAC track.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

import vflow

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "video"
COPY_GRAPH = ROOT / "graphs" / "copy.yaml"
CRF, PRESET = "18", "veryfast"  # as in graphs/copy.yaml
IMPORTS = "import vflow.cli, vflow.stages.decode, vflow.stages.encode"
STEADY = (0.2, 0.9)  # steady-state fps is measured between these fractions of the frames


@dataclass
class Timing:
    """One run: wall time, the part before the first frame flows, and the steady-state frame rate."""

    wall_s: float
    cpu_s: float
    setup_s: float | None = None
    steady_fps: float | None = None


def cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds of this process (all threads) or of its waited-for children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def steady_fps(marks: list[tuple[float, int]], total: int) -> float | None:
    """Frames per second between the STEADY fractions of ``total`` frames, from (time, frames done) marks."""
    lo = next((m for m in marks if m[1] >= STEADY[0] * total), None)
    hi = next((m for m in marks if m[1] >= STEADY[1] * total), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return None
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


# -- inputs ------------------------------------------------------------------------------------------
def make_1080p(path: Path) -> None:
    """The real flower clip (1280x720, 300 frames, no timing) upscaled to 1920x1080 at 30 fps, BT.709
    tagged, x264 fast crf 18, with a 48 kHz stereo AAC tone."""
    fps, rate = 30, 48000
    with av.open(str(DATA / "clean_openh264_flower_1280x720_300f.h264"), format="h264") as src, \
            av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "fast", "crf": "18"})
        video.width, video.height, video.pix_fmt, video.thread_type = 1920, 1080, "yuv420p", "AUTO"
        cc = video.codec_context
        cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = 1, 1, 1, 1
        audio = out.add_stream("aac", rate=rate, layout="stereo")
        src.streams.video[0].thread_type = "AUTO"
        for i, frame in enumerate(src.decode(video=0)):
            big = frame.reformat(width=1920, height=1080, interpolation="BICUBIC")
            big.pts, big.time_base = i, Fraction(1, fps)
            out.mux(video.encode(big))
        out.mux(video.encode(None))
        samples = rate * (i + 1) // fps
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = tone[start:start + 1024]
            sound = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
            sound.sample_rate, sound.pts, sound.time_base = rate, start, Fraction(1, rate)
            out.mux(audio.encode(sound))
        out.mux(audio.encode(None))


def inputs(workdir: Path, names: list[str]) -> dict[str, Path]:
    clips: dict[str, Path] = {}
    for name in names:
        if name == "1080p":
            path = workdir / "flower_1920x1080_aac.mp4"
            if not path.exists():
                print(f"making {path} (once) ...", file=sys.stderr)
                make_1080p(path.with_suffix(".tmp.mp4"))
                path.with_suffix(".tmp.mp4").rename(path)
        elif name == "480p":
            path = DATA / "oldfilm_steamboat_willie_part1_audio.mp4"
        else:
            raise SystemExit(f"unknown clip '{name}' (use 1080p, 480p)")
        if not path.exists():
            raise SystemExit(f"input {path} not found: the benchmark needs ../shared/data")
        clips[name] = path
    return clips


def describe(path: Path) -> str:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for p in c.demux(video=0) if p.size)
        with av.open(str(path)) as c2:
            audio = ", ".join(f"{a.codec_context.name} {a.sample_rate} Hz" for a in c2.streams.audio) or "no audio"
        return f"{path.name}: {v.width}x{v.height} {v.codec_context.name} {frames} frames, {audio}"


def x264_build(path: Path) -> str:
    """The 'x264 - core N rNNNN' string x264 writes into its SEI, or '?'."""
    with open(path, "rb") as f:
        m = re.search(rb"x264 - core (\d+) r(\d+)", f.read(1 << 20))
    return f"core {m[1].decode()} r{m[2].decode()}" if m else "?"


def pyav_x264() -> str:
    """The libx264 soname bundled in PyAV's wheel (its x264 writes no version SEI), or '?'."""
    libs = sorted((Path(av.__file__).parent.parent / "av.libs").glob("libx264*.so.*"))
    return f"core {libs[0].name.rsplit('.', 1)[1]} ({libs[0].name})" if libs else "?"


def count_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(video=0) if p.size)


# -- the contenders ----------------------------------------------------------------------------------
def run_vflow_api(src: Path, dst: Path, total: int) -> Timing:
    c0, t0 = cpu_s(), time.perf_counter()
    pipeline = vflow.Pipeline.load(COPY_GRAPH, input=src, output=dst).build()
    t1 = time.perf_counter()
    encode = next(s for s in pipeline.stats if s.name == "encode")
    marks: list[tuple[float, int]] = []
    pipeline.run(on_tick=lambda: marks.append((time.perf_counter(), encode.frames_in)))
    t2 = time.perf_counter()
    return Timing(t2 - t0, cpu_s() - c0, t1 - t0, steady_fps(marks, total))


_SWS = {1: Colorspace.ITU709, 5: Colorspace.ITU601, 6: Colorspace.ITU601, 9: Colorspace.BT2020}


def run_pyav(src: Path, dst: Path, total: int) -> Timing:
    """Decode (AUTO threads) -> rgb24 (stream matrix and range) -> yuv420p -> x264, audio packets copied."""
    c0, t0 = cpu_s(), time.perf_counter()
    marks: list[tuple[float, int]] = []
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        ain = list(inp.streams.audio)
        vout = out.add_stream("libx264", rate=vin.average_rate, options={"crf": CRF, "preset": PRESET})
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.thread_type = "AUTO"
        vout.codec_context.time_base = vout.time_base = vin.time_base
        aout = {a.index: out.add_stream_from_template(a) for a in ain}
        matrix = rng = None
        n = 0
        for packet in inp.demux(vin, *ain):
            if packet.stream.type == "audio":
                if packet.size:
                    packet.stream = aout[packet.stream.index]
                    out.mux(packet)
                continue
            for frame in packet.decode():
                if matrix is None:  # untagged: BT.709 from 720 lines, else BT.601; limited range
                    code = frame.colorspace if frame.colorspace in _SWS else (1 if frame.height >= 720 else 6)
                    matrix = _SWS[code]
                    rng = ColorRange.JPEG if frame.color_range == 2 else ColorRange.MPEG
                    cc = vout.codec_context
                    cc.colorspace, cc.color_range = code, 2 if rng == ColorRange.JPEG else 1
                    cc.color_primaries, cc.color_trc = frame.color_primaries, frame.color_trc
                    t_first = time.perf_counter()
                rgb = frame.to_ndarray(format="rgb24", src_colorspace=matrix, src_color_range=rng,
                                       dst_color_range=ColorRange.JPEG)
                yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                    format="yuv420p", src_colorspace=matrix, dst_colorspace=matrix,
                    src_color_range=ColorRange.JPEG, dst_color_range=rng)
                yuv.pts, yuv.time_base = frame.pts, frame.time_base
                out.mux(vout.encode(yuv))
                n += 1
                marks.append((time.perf_counter(), n))
        out.mux(vout.encode(None))
    return Timing(time.perf_counter() - t0, cpu_s() - c0, t_first - t0, steady_fps(marks, total))


def run_command(cmd: list[str]) -> Timing:
    c0, t0 = cpu_s(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return Timing(time.perf_counter() - t0, cpu_s(resource.RUSAGE_CHILDREN) - c0)


def vflow_cli(src: Path, dst: Path) -> list[str]:
    return [sys.executable, "-m", "vflow", "run", str(COPY_GRAPH), "-i", str(src), "-o", str(dst), "-q"]


def ffmpeg_cli(src: Path, dst: Path) -> list[str]:
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-map", "0:v:0",
            "-map", "0:a?", "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", PRESET, "-crf", CRF,
            "-pix_fmt", "yuv420p", "-c:a", "copy", str(dst)]


# -- the report --------------------------------------------------------------------------------------
def stat(runs: list[Timing], field: str, how: Callable[[list[float]], float] = statistics.median) -> float | None:
    values = [getattr(r, field) for r in runs if getattr(r, field) is not None]
    return how(values) if values else None


def fmt(x: float | None, unit: str = " s") -> str:
    return "n/a" if x is None else f"{x:.2f}{unit}"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"


def row(figure: str, vflow_runs: list[Timing], peer_runs: list[Timing] | None, field: str = "wall_s") -> str:
    """A table row: median (min) of vflow and of the peer, and the ratio of the medians (of the minima)."""
    v, vmin = stat(vflow_runs, field), stat(vflow_runs, field, min)
    if peer_runs is None:
        return f"| {figure} | {fmt(v)} ({fmt(vmin, '')}) | skipped (no ffmpeg) | n/a |"
    p, pmin = stat(peer_runs, field), stat(peer_runs, field, min)
    return (f"| {figure} | {fmt(v)} ({fmt(vmin, '')}) | {fmt(p)} ({fmt(pmin, '')}) "
            f"| {ratio(v, p)} ({ratio(vmin, pmin)}) |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clips", default="1080p,480p")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vflow-bench")
    args = p.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    clips = inputs(args.workdir, args.clips.split(","))
    has_ffmpeg = shutil.which("ffmpeg") is not None
    if not has_ffmpeg:
        print("ffmpeg CLI not found on PATH: the ffmpeg rows are skipped (apt-get install -y ffmpeg)", file=sys.stderr)

    totals = {name: count_frames(path) for name, path in clips.items()}
    out = args.workdir / "out"
    out.mkdir(exist_ok=True)
    methods: dict[str, tuple[str, Callable[[str, Path, Path], Timing]]] = {
        "vflow API": ("api", lambda n, s, d: run_vflow_api(s, d, totals[n])),
        "PyAV loop": ("pyav", lambda n, s, d: run_pyav(s, d, totals[n])),
        "vflow CLI": ("cli", lambda n, s, d: run_command(vflow_cli(s, d))),
    }
    if has_ffmpeg:
        methods["ffmpeg CLI"] = ("ffmpeg", lambda n, s, d: run_command(ffmpeg_cli(s, d)))
    runs: dict[tuple[str, str], list[Timing]] = {}
    startup: dict[str, list[Timing]] = {"python": [], "import": [], "check": []}
    first = next(iter(clips.values()))
    for r in range(args.rounds):
        order = list(methods)[r % len(methods):] + list(methods)[:r % len(methods)]
        for name, src in clips.items():
            for method in order:
                suffix, call = methods[method]
                timing = call(name, src, out / f"{name}-{suffix}.mp4")
                runs.setdefault((name, method), []).append(timing)
                print(f"round {r + 1} {name} {method}: {timing.wall_s:.2f} s wall, {timing.cpu_s:.2f} s CPU",
                      file=sys.stderr)
        startup["python"].append(run_command([sys.executable, "-c", "pass"]))
        startup["import"].append(run_command([sys.executable, "-c", IMPORTS]))
        startup["check"].append(run_command([sys.executable, "-m", "vflow", "check", str(COPY_GRAPH), "-i",
                                             str(first), "-o", str(out / "check.mp4")]))
    for name in clips:
        for method, (suffix, _) in methods.items():
            frames = count_frames(out / f"{name}-{suffix}.mp4")
            if frames != totals[name]:
                raise SystemExit(f"{method} wrote {frames} frames of {totals[name]} for {name}")

    print(f"\n{args.rounds} rounds interleaved; median (min) of the rounds; x264 {PRESET} crf {CRF}, "
          f"audio stream-copied")
    for name, src in clips.items():
        m = {k: runs[(name, k)] for k in methods}
        ff = m.get("ffmpeg CLI")
        print(f"\n{describe(src)}\n")
        print("| figure | vflow | peer | vflow/peer |")
        print("|---|---|---|---|")
        print(row("wall, in process: API vs PyAV loop", m["vflow API"], m["PyAV loop"]))
        print(row("CPU (user+sys): API vs PyAV loop", m["vflow API"], m["PyAV loop"], "cpu_s"))
        api_fps, pyav_fps = stat(m["vflow API"], "steady_fps"), stat(m["PyAV loop"], "steady_fps")
        print(f"| steady state (frames {STEADY[0]:.0%}-{STEADY[1]:.0%}): API vs PyAV loop | {fmt(api_fps, ' fps')} "
              f"| {fmt(pyav_fps, ' fps')} | {ratio(pyav_fps, api_fps)} (time) |")
        print(row("before the first frame: API build vs PyAV open + first decode", m["vflow API"], m["PyAV loop"],
                  "setup_s"))
        print(row("wall, command line: vflow run vs ffmpeg", m["vflow CLI"], ff))
        print(row("CPU, command line: vflow run vs ffmpeg", m["vflow CLI"], ff, "cpu_s"))
        print(row("wall: PyAV loop vs ffmpeg (RGB round trip, x264 build)", m["PyAV loop"], ff))
        builds = f"x264 {pyav_x264()} in PyAV {av.__version__}"
        if ff is not None:
            builds += f", {x264_build(out / f'{name}-ffmpeg.mp4')} in the ffmpeg CLI"
        print(f"\n{builds}")
    print("\n| startup (fresh process) | wall |")
    print("|---|---|")
    print(f"| python -c pass | {fmt(stat(startup['python'], 'wall_s'))} |")
    print(f"| import vflow.cli, decode, encode | {fmt(stat(startup['import'], 'wall_s'))} |")
    print(f"| vflow check copy.yaml -i {first.name} (import, load, build, teardown) | "
          f"{fmt(stat(startup['check'], 'wall_s'))} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
