"""YUV <-> RGB with the stream's own matrix, range and chroma siting (BT.601/709/2020, limited/full).

Planar YUV (the formats of nearly every video file) goes through vflow's exact kernels
(``vflow.kernels.yuv``): rounding to nearest, chroma interpolated bilinearly at its sited position. Other
formats (NV12, packed YUV, palettes) go through swscale with accurate rounding and full chroma
interpolation. ``rgb24`` stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from ..kernels.yuv import rgb_to_yuv, yuv_to_rgb
from ..pipeline.frames import KR_KB, RANGE_PC, ColorInfo

# H.273 matrix code point -> swscale's colourspace for the formats the kernels do not take (Kr, Kb: KR_KB)
_SWS_MATRIX = {1: Colorspace.ITU709, 4: Colorspace.FCC, 5: Colorspace.ITU601, 6: Colorspace.ITU601,
               7: Colorspace.SMPTE240M, 9: Colorspace.BT2020, 10: Colorspace.BT2020}
_FULL_RANGE_FORMATS = ("yuvj", "gbr", "rgb", "bgr", "gray")
RGB_FORMATS = {8: "rgb24", 16: "rgb48le"}  # the packed RGB formats of vflow's frames, by depth
# swscale: bilinear, accurate rounding, full chroma interpolation in and out
_SWS_EXACT = 2 | 0x40000 | 0x2000 | 0x4000


@dataclass(frozen=True)
class Planar:
    """A planar YUV pixel format: chroma subsampling shifts, bit depth and the usual chroma siting."""

    sx: int
    sy: int
    depth: int
    cosited_x: bool = True    # H.264/MPEG-2/DV "left": chroma on the first luma column of its pair

    @property
    def dtype(self) -> type:
        return np.uint8 if self.depth == 8 else np.uint16


def _planar_formats() -> dict[str, Planar]:
    table: dict[str, Planar] = {}
    for name, (sx, sy) in {"420": (1, 1), "422": (1, 0), "444": (0, 0), "411": (2, 0), "440": (0, 1)}.items():
        for depth, suffix in ((8, "p"), (10, "p10le"), (12, "p12le"), (16, "p16le")):
            table[f"yuv{name}{suffix}"] = Planar(sx, sy, depth)
        table[f"yuvj{name}p"] = Planar(sx, sy, 8, cosited_x=False)  # JPEG/MJPEG: chroma centred
    return {name: fmt for name, fmt in table.items() if name in av.video.format.names}


PLANAR = _planar_formats()


def color_of(frame: av.VideoFrame) -> ColorInfo:
    """The colours a frame was tagged with, with missing matrix/range resolved as players resolve them."""
    tagged = ColorInfo(frame.colorspace, frame.color_range, frame.color_primaries, frame.color_trc)
    return tagged.resolved(frame.height, frame.format.name.startswith(_FULL_RANGE_FORMATS))


def _levels(color: ColorInfo, depth: int) -> tuple[float, float, float, float]:
    """(yoff, yscale, coff, cscale): luma = (code - yoff) * yscale, chroma = (code - coff) * cscale."""
    k = 1 << (depth - 8)
    if color.range == RANGE_PC:
        top = (1 << depth) - 1
        return 0.0, 1.0 / top, 128.0 * k, 1.0 / top
    return 16.0 * k, 1.0 / (219.0 * k), 128.0 * k, 1.0 / (224.0 * k)


def _plane(frame: av.VideoFrame, i: int, dtype: type) -> np.ndarray:
    """Plane ``i`` of ``frame`` as a (height, width) view of its buffer (writable)."""
    p = frame.planes[i]
    size = np.dtype(dtype).itemsize
    return np.frombuffer(p, dtype).reshape(p.height, p.line_size // size)[:, : p.width]


def _sws(color: ColorInfo) -> tuple[Colorspace, ColorRange]:
    rng = ColorRange.JPEG if color.range == RANGE_PC else ColorRange.MPEG
    return _SWS_MATRIX.get(color.matrix, Colorspace.ITU601), rng


def to_rgb(frame: av.VideoFrame, color: ColorInfo, depth: int = 8) -> np.ndarray:
    """A decoded frame as (H, W, 3) RGB, converted with ``color``'s matrix and range: uint8 for ``depth`` 8,
    uint16 over the full 0..65535 for 16 (whatever the frame's own bit depth)."""
    name = frame.format.name
    rgb_name = RGB_FORMATS[depth]
    if name == rgb_name:
        return frame.to_ndarray()
    fmt = PLANAR.get(name)
    if fmt is None:
        matrix, rng = _sws(color)
        # threads=1: swscale's slice threads sync ~10 times a frame and stall on a busy machine
        return frame.to_ndarray(format=rgb_name, src_colorspace=matrix, src_color_range=rng,
                                dst_color_range=ColorRange.JPEG, interpolation=_SWS_EXACT, threads=1)
    out = np.empty((frame.height, frame.width, 3), np.uint8 if depth == 8 else np.uint16)
    kr, kb = KR_KB.get(color.matrix, KR_KB[6])
    yuv_to_rgb(_plane(frame, 0, fmt.dtype), _plane(frame, 1, fmt.dtype), _plane(frame, 2, fmt.dtype), out,
               fmt.sx, fmt.sy, fmt.cosited_x, kr, kb, *_levels(color, fmt.depth), (1 << depth) - 1)
    return out


def from_rgb(rgb: np.ndarray, pix_fmt: str, color: ColorInfo) -> av.VideoFrame:
    """An (H, W, 3) RGB array (uint8, or uint16 over 0..65535) as a frame of ``pix_fmt``, converted with
    ``color``'s matrix and range."""
    depth = 8 if rgb.dtype == np.uint8 else 16
    fmt = PLANAR.get(pix_fmt)
    if fmt is None:
        frame = av.VideoFrame.from_numpy_buffer(rgb, format=RGB_FORMATS[depth])  # no copy: sws reads the array
        if pix_fmt == RGB_FORMATS[depth]:
            return frame
        if pix_fmt.startswith(("gbr", "rgb", "bgr")):
            return frame.reformat(format=pix_fmt)
        matrix, rng = _sws(color)
        return frame.reformat(format=pix_fmt, src_colorspace=matrix, dst_colorspace=matrix,
                              src_color_range=ColorRange.JPEG, dst_color_range=rng, interpolation=_SWS_EXACT)
    h, w = rgb.shape[:2]
    frame = av.VideoFrame(w, h, pix_fmt)
    kr, kb = KR_KB.get(color.matrix, KR_KB[6])
    rgb_to_yuv(np.ascontiguousarray(rgb), _plane(frame, 0, fmt.dtype), _plane(frame, 1, fmt.dtype),
               _plane(frame, 2, fmt.dtype), fmt.sx, fmt.sy, fmt.cosited_x, kr, kb, (1 << depth) - 1,
               *_levels(color, fmt.depth), (1 << fmt.depth) - 1)
    return frame


def bits_of(pix_fmt: str) -> int:
    """Significant bits per sample of a pixel format (``yuv422p10le``: 10; ``p010le``: 10; ``rgb24``: 8)."""
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.FFmpegError):
        return 8


def subsampling(pix_fmt: str) -> tuple[int, int] | None:
    """The chroma subsampling shifts (x, y) of a YUV pixel format: 4:2:0 (1, 1), 4:2:2 (1, 0); None for a
    format with no chroma of its own (RGB, grey, palette) or an unknown name."""
    try:
        fmt = av.VideoFormat(pix_fmt, 64, 64)
    except ValueError:
        return None
    if fmt.is_rgb or fmt.has_palette or len(fmt.components) < 3:
        return None
    return (64 // fmt.chroma_width()).bit_length() - 1, (64 // fmt.chroma_height()).bit_length() - 1
