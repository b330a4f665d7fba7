"""Generated inputs of the hostile tests: clips of any length, interlaced or not, joined, repeated, damaged."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RATE = 25


def bars(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 4 + 9 * i) % 256, (y * 5 + 3 * i) % 256, np.full_like(x, 96)], -1).astype(np.uint8)


def write_test_clip(path: Path, frames: int, interlaced: bool = False, size: tuple[int, int] = (64, 48),
                    fmt: str | None = None, pix_fmt: str = "yuv420p", codec: str = "libx264") -> None:
    """``frames`` frames of moving bars at 25 fps; ``interlaced``: woven fields, coded and tagged tff."""
    w, h = size
    with av.open(str(path), "w", format=fmt) as out:
        options = {"preset": "ultrafast", "crf": "16"} if codec == "libx264" else {}
        if interlaced:
            options["x264-params"] = "interlaced=1:tff=1"
        s = out.add_stream(codec, rate=RATE, options=options)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        s.time_base = Fraction(1, RATE)
        if interlaced:
            s.codec_context.field_order = 2
        for i in range(frames):
            rgb = bars(i, h, w)
            if interlaced:  # the bottom field half a frame later: combing on every moving edge
                rgb[1::2] = np.roll(rgb[1::2], 3, axis=1)
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, RATE)
            out.mux(s.encode(f))
        out.mux(s.encode(None))


def write_ts_segment(path: Path, frames: int, size: tuple[int, int] = (64, 48)) -> None:
    """An MPEG-TS camcorder-like segment: H.264 and MP2 audio, its clock starting where every segment's does."""
    with av.open(str(path), "w", format="mpegts") as out:
        v = out.add_stream("libx264", rate=RATE, options={"preset": "ultrafast"})
        (v.width, v.height), v.pix_fmt = size, "yuv420p"
        a = out.add_stream("mp2", rate=48000)
        a.layout = "stereo"
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(bars(i, size[1], size[0]), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, RATE)
            out.mux(v.encode(f))
        out.mux(v.encode(None))
        for k in range(frames * 48000 // RATE // 1152):
            af = av.AudioFrame.from_ndarray(np.zeros((2, 1152), np.int16), format="s16p", layout="stereo")
            af.sample_rate, af.pts, af.time_base = 48000, k * 1152, Fraction(1, 48000)
            out.mux(a.encode(af))
        out.mux(a.encode(None))


def write_joined(path: Path, frames: tuple[int, ...] = (50, 40), sizes: tuple[tuple[int, int], ...] = ()) -> None:
    """Segments byte-joined as ``cat 00000.MTS 00001.MTS`` joins them: the clock jumps back at each join;
    ``sizes`` gives each segment its own picture size."""
    parts = []
    for i, n in enumerate(frames):
        seg = path.with_name(f"{path.stem}.seg{i}.ts")
        write_ts_segment(seg, n, sizes[i] if sizes else (64, 48))
        parts.append(seg.read_bytes())
        seg.unlink()
    path.write_bytes(b"".join(parts))


def write_repeated_pts(path: Path, frames: int = 30, repeated: tuple[int, ...] = (10,)) -> None:
    """MJPEG in Matroska where the frames in ``repeated`` carry the previous frame's pts."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("mjpeg", rate=RATE)
        s.width, s.height, s.pix_fmt = 64, 48, "yuvj420p"
        s.time_base = Fraction(1, 1000)
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(bars(i), format="rgb24")
            f.pts, f.time_base = i * 40, Fraction(1, 1000)
            for p in s.encode(f):
                p.time_base = Fraction(1, 1000)
                p.pts, p.dts = ((i - 1) if i in repeated else i) * 40 + 80, i * 40
                out.mux(p)


def corrupt_packet(src: Path, dst: Path, index: int = 20, seed: int = 1) -> None:
    """A copy of ``src`` with the payload of its ``index``-th video packet replaced by random bytes."""
    with av.open(str(src)) as c:
        packet = [p for p in c.demux(video=0) if p.size][index]
        pos, size = packet.pos, packet.size
    data = bytearray(src.read_bytes())
    data[pos:pos + size] = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))


def truncate(src: Path, dst: Path, fraction: float) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])


def write_two_video_streams(path: Path, frames: int = 10) -> None:
    with av.open(str(path), "w") as out:
        streams = []
        for w, h in ((64, 48), (32, 24)):
            s = out.add_stream("libx264", rate=RATE, options={"preset": "ultrafast"})
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            streams.append((s, w, h))
        for i in range(frames):
            for s, w, h in streams:
                f = av.VideoFrame.from_ndarray(bars(i, h, w), format="rgb24")
                f.pts = i
                out.mux(s.encode(f))
        for s, _, _ in streams:
            out.mux(s.encode(None))


def write_with_attachment(path: Path, frames: int = 10) -> None:
    """Matroska with a file attached (as family archives attach notes or cover pictures)."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=RATE, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        out.add_attachment("notes.txt", "text/plain", b"Grandma's birthday, 1987")
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(bars(i), format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))


def write_grey(path: Path, y: int, frames: int = 3) -> None:
    """Lossless FFV1 yuv420p frames of one luma code value (chroma neutral)."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=RATE)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        for i in range(frames):
            f = av.VideoFrame(16, 16, "yuv420p")
            for plane, value in zip(f.planes, (y, 128, 128)):
                plane.update(np.full(plane.buffer_size, value, np.uint8))
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode(None))


def write_title_then_combed(path: Path, still: int = 60, combed: int = 60) -> None:
    """An untagged capture (lossless) that opens on a still title card, then shows combed, moving fields."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=RATE)
        s.width, s.height, s.pix_fmt = 128, 96, "yuv420p"
        for i in range(still + combed):
            if i < still:
                rgb = np.full((96, 128, 3), 10, np.uint8)
                rgb[40:56, 30:98] = 200
            else:
                rgb = bars(i, 96, 128)
                rgb[1::2] = np.roll(rgb[1::2], 4, axis=1)
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode(None))


def digest(folder: Path) -> dict[str, bytes]:
    """Every file's bytes under ``folder`` (sources must come out unchanged)."""
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def partials(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*.partial")] + [str(p) for p in folder.rglob("*.partial.*")]


__all__ = ["RATE", "bars", "corrupt_packet", "digest", "partials", "truncate", "write_grey", "write_joined",
           "write_repeated_pts", "write_test_clip", "write_title_then_combed", "write_two_video_streams",
           "write_with_attachment"]
