"""Colour bias of a lossless copy, per source pixel format: vflow against swscale's defaults.

    python bench/bench_color_bias.py [--frames 8]

Sources: frames of two real clips of ../shared/data (Tears of Steel 640x360, and the Sony DV capture,
cropped to 640x360), written losslessly (FFV1) in each pixel format, tagged BT.601 or BT.709. Each is copied
by ``vflow run copy`` into lossless RGB (FFV1 ``bgr0``), and the output is compared with an exact float
conversion of the source's own YUV planes (numpy, written here, not vflow's kernel): mean difference per
channel (the bias; a darkening shows as negative), the largest difference and PSNR. The swscale column
converts the same source frames as PyAV does by default (``to_ndarray("rgb24")``): what vflow did before.
A second table copies a source through yuv420p FFV1 twice (RGB -> YUV -> RGB each time) and shows how the
bias grows with passes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO.parent / "shared" / "data" / "video"
CLIPS = [VIDEO / "clean_scenecut_tears_of_steel_640x360.mp4", VIDEO / "interlaced_dv_ntsc_sony_good_quality_5frames.dv"]
KR_KB = {1: (0.2126, 0.0722), 6: (0.299, 0.114)}
# pixel format -> (horizontal, vertical subsampling shift, bit depth, chroma cosited horizontally)
FORMATS = {"yuv420p": (1, 1, 8, True), "yuv422p": (1, 0, 8, True), "yuv444p": (0, 0, 8, True),
           "yuv411p": (2, 0, 8, True), "yuv420p full range": (1, 1, 8, True), "yuv420p10le": (1, 1, 10, True),
           "yuv422p10le": (1, 0, 10, True), "yuv444p10le": (0, 0, 10, True)}


def source_rgb(n: int) -> list[np.ndarray]:
    """``n`` real frames, 640x360 RGB (half from each clip)."""
    frames: list[np.ndarray] = []
    for clip in CLIPS:
        with av.open(str(clip)) as c:
            for f in c.decode(video=0):
                frames.append(f.to_ndarray(format="rgb24", width=640, height=360))
                if len(frames) % (n // 2) == 0:
                    break
    return frames[:n]


def write_source(path: Path, rgb: list[np.ndarray], name: str, matrix: int) -> None:
    full, pix_fmt = name.endswith("full range"), name.split()[0]
    space = Colorspace.ITU709 if matrix == 1 else Colorspace.ITU601
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 640, 360, pix_fmt
        cc = s.codec_context
        cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = matrix, 2 if full else 1, matrix, matrix
        for i, image in enumerate(rgb):
            f = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace=space, src_color_range=ColorRange.JPEG,
                dst_color_range=ColorRange.JPEG if full else ColorRange.MPEG, interpolation="BICUBIC")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode(None))


def _plane(frame: av.VideoFrame, i: int, depth: int) -> np.ndarray:
    p = frame.planes[i]
    dtype = np.uint8 if depth == 8 else np.uint16
    size = np.dtype(dtype).itemsize
    return np.frombuffer(p, dtype).reshape(p.height, p.line_size // size)[:, : p.width].astype(np.float64)


def _up(c: np.ndarray, shift_x: int, shift_y: int, cosited: bool, h: int, w: int) -> np.ndarray:
    def axis(n: int, m: int, shift: int, sited: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i = np.arange(n, dtype=np.float64)
        k = 1 << shift
        pos = i if shift == 0 else (i / k if sited else (i + 0.5) / k - 0.5)
        pos = np.clip(pos, 0, m - 1)
        lo = np.floor(pos).astype(int)
        return lo, np.minimum(lo + 1, m - 1), pos - lo
    y0, y1, wy = axis(h, c.shape[0], shift_y, False)
    rows = c[y0] * (1 - wy)[:, None] + c[y1] * wy[:, None]
    x0, x1, wx = axis(w, c.shape[1], shift_x, cosited)
    return rows[:, x0] * (1 - wx) + rows[:, x1] * wx


def reference(frame: av.VideoFrame, pix_fmt: str, matrix: int) -> np.ndarray:
    """The exact RGB of a YUV frame, in float (0..255), from the standard's equations."""
    sx, sy, depth, cosited = FORMATS[pix_fmt]
    k = 1 << (depth - 8)
    y = _plane(frame, 0, depth)
    h, w = y.shape
    u, v = (_up(_plane(frame, i, depth), sx, sy, cosited, h, w) - 128 * k for i in (1, 2))
    if pix_fmt.endswith("full range"):
        top = (1 << depth) - 1
        luma, cb, cr = y / top, u / top, v / top
    else:
        luma, cb, cr = (y - 16 * k) / (219 * k), u / (224 * k), v / (224 * k)
    kr, kb = KR_KB[matrix]
    kg = 1 - kr - kb
    r = luma + 2 * (1 - kr) * cr
    b = luma + 2 * (1 - kb) * cb
    g = luma - 2 * kb * (1 - kb) / kg * cb - 2 * kr * (1 - kr) / kg * cr
    return np.clip(np.stack([r, g, b], -1) * 255, 0, 255)


def vflow_copy(src: Path, dst: Path, *sets: str) -> None:
    args = [sys.executable, "-m", "vflow", "run", "copy", "-i", str(src), "-o", str(dst), "-q",
            "--set", "encode.codec=ffv1", "--set", "encode.crf=null", "--set", "encode.preset=null"]
    for s in sets:
        args += ["--set", s]
    subprocess.run(args, check=True)


def frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def figures(out: list[np.ndarray], ref: list[np.ndarray]) -> tuple[np.ndarray, float, float]:
    d = np.stack(out).astype(np.float64) - np.stack(ref)
    mse = float(np.mean(d ** 2))
    return d.mean(axis=(0, 1, 2)), float(np.abs(d).max()), 10 * np.log10(255 ** 2 / mse) if mse else float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8)
    args = ap.parse_args()
    rgb = source_rgb(args.frames)
    print("| source | matrix | vflow bias R, G, B | vflow max | vflow PSNR | swscale bias R, G, B | swscale PSNR |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for pix_fmt in FORMATS:
            for matrix in (6, 1):
                src, dst = t / f"{pix_fmt.split()[0]}-{matrix}.mkv", t / f"{pix_fmt.split()[0]}-{matrix}-out.mkv"
                write_source(src, rgb, pix_fmt, matrix)
                vflow_copy(src, dst)
                src_frames = frames(src)
                ref = [reference(f, pix_fmt, matrix) for f in src_frames]
                out = [f.to_ndarray(format="rgb24") for f in frames(dst)]
                sws = [f.to_ndarray(format="rgb24", src_colorspace=Colorspace.ITU709 if matrix == 1 else
                                    Colorspace.ITU601, src_color_range=ColorRange.JPEG if pix_fmt.endswith("full range")
                                    else ColorRange.MPEG, dst_color_range=ColorRange.JPEG) for f in src_frames]
                vb, vmax, vpsnr = figures(out, ref)
                sb, _, spsnr = figures(sws, ref)
                name = {6: "BT.601", 1: "BT.709"}[matrix]
                print(f"| {pix_fmt} | {name} | {', '.join(f'{x:+.3f}' for x in vb)} | {vmax:.2f} | {vpsnr:.1f} dB "
                      f"| {', '.join(f'{x:+.3f}' for x in sb)} | {spsnr:.1f} dB |")
        print()
        print("| real file, copied as it is | vflow bias R, G, B | vflow max | swscale bias R, G, B |")
        print("|---|---|---|---|")
        for clip in [VIDEO / "interlaced_dv_ntsc_sony_good_quality_5frames.dv",
                     VIDEO / "interlaced_dv_ntsc_sony_perfect_1frame.dv"]:
            dst = t / f"{clip.stem}.mkv"
            vflow_copy(clip, dst)
            src_frames = frames(clip)
            name = src_frames[0].format.name
            ref = [reference(f, name, 6) for f in src_frames]  # DV: BT.601, limited range
            out = [f.to_ndarray(format="rgb24") for f in frames(dst)]
            sws = [f.to_ndarray(format="rgb24", src_colorspace=Colorspace.ITU601, src_color_range=ColorRange.MPEG,
                                dst_color_range=ColorRange.JPEG) for f in src_frames]
            vb, vmax, _ = figures(out, ref)
            sb, _, _ = figures(sws, ref)
            print(f"| {clip.name} ({name}) | {', '.join(f'{x:+.3f}' for x in vb)} | {vmax:.2f} "
                  f"| {', '.join(f'{x:+.3f}' for x in sb)} |")
        print()
        print("| passes through yuv420p (FFV1) | bias R, G, B against the original RGB |")
        print("|---|---|")
        src = t / "rgb.mkv"
        with av.open(str(src), "w") as out:
            s = out.add_stream("ffv1", rate=25)
            s.width, s.height, s.pix_fmt = 640, 360, "bgr0"
            for i, image in enumerate(rgb):
                f = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="bgr0")
                f.pts = i
                out.mux(s.encode(f))
            out.mux(s.encode(None))
        current = src
        for n in (1, 2):
            yuv, back = t / f"pass{n}.mkv", t / f"pass{n}-rgb.mkv"
            vflow_copy(current, yuv, "encode.pix_fmt=yuv420p")
            vflow_copy(yuv, back)
            got = [f.to_ndarray(format="rgb24") for f in frames(back)]
            bias, _, _ = figures(got, [x.astype(np.float64) for x in rgb])
            print(f"| {n} | {', '.join(f'{x:+.3f}' for x in bias)} |")
            current = back


if __name__ == "__main__":
    main()
