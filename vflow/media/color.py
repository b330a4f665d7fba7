"""YUV <-> RGB conversion with the stream's own matrix and range (BT.601 vs BT.709, limited vs full)."""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from ..pipeline.frames import RANGE_PC, ColorInfo

# H.273 matrix code point -> swscale colourspace
_SWS_MATRIX = {1: Colorspace.ITU709, 4: Colorspace.FCC, 5: Colorspace.ITU601, 6: Colorspace.ITU601,
               7: Colorspace.SMPTE240M, 9: Colorspace.BT2020, 10: Colorspace.BT2020}
_FULL_RANGE_FORMATS = ("yuvj", "gbr", "rgb", "bgr", "gray")


def color_of(frame: av.VideoFrame) -> ColorInfo:
    """The colours a frame was tagged with, with missing matrix/range resolved as players resolve them."""
    tagged = ColorInfo(frame.colorspace, frame.color_range, frame.color_primaries, frame.color_trc)
    return tagged.resolved(frame.height, frame.format.name.startswith(_FULL_RANGE_FORMATS))


def _sws(color: ColorInfo) -> tuple[Colorspace, ColorRange]:
    rng = ColorRange.JPEG if color.range == RANGE_PC else ColorRange.MPEG
    return _SWS_MATRIX.get(color.matrix, Colorspace.ITU601), rng


def to_rgb(frame: av.VideoFrame, color: ColorInfo) -> np.ndarray:
    """A decoded frame as (H, W, 3) uint8 RGB, converted with ``color``'s matrix and range."""
    if frame.format.name == "rgb24":
        return frame.to_ndarray()
    matrix, rng = _sws(color)
    # threads=1: swscale's own slice threads (PyAV's default, auto) sync ~10 times a frame and stall
    # on a busy machine; the decoder's threads and the other stages already use the cores
    return frame.to_ndarray(format="rgb24", src_colorspace=matrix, src_color_range=rng,
                            dst_color_range=ColorRange.JPEG, threads=1)


def from_rgb(rgb: np.ndarray, pix_fmt: str, color: ColorInfo) -> av.VideoFrame:
    """An (H, W, 3) uint8 RGB array as a frame of ``pix_fmt``, converted with ``color``'s matrix and range."""
    frame = av.VideoFrame.from_numpy_buffer(rgb, format="rgb24")  # no copy: sws reads the array itself
    if pix_fmt == "rgb24":
        return frame
    if pix_fmt.startswith(("gbr", "rgb", "bgr")):
        return frame.reformat(format=pix_fmt)
    matrix, rng = _sws(color)
    return frame.reformat(format=pix_fmt, src_colorspace=matrix, dst_colorspace=matrix,
                          src_color_range=ColorRange.JPEG, dst_color_range=rng)
