"""Real lossy codecs through PyAV, in memory: JPEG (FFmpeg's ``mjpeg`` at a fixed qscale) per frame, and a
clip encoded as a short H.264 or MPEG-2 video and decoded back, frame for frame.

Colours go through vflow's one exact conversion (``vflow.media.color``: rounded to nearest, chroma at its
siting), BT.601, full range for JPEG and limited for video, so the pass adds the codec's loss and no converter
bias. Odd sizes are padded to even (edge pixels) and cropped back.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import torch
import torch.nn.functional as F

from ..media.color import from_rgb, to_rgb
from ..pipeline.frames import RANGE_PC, RANGE_TV, ColorInfo

VIDEO_CODECS = ("libx264", "mpeg2video")
_VIDEO, _JPEG = ColorInfo(6, RANGE_TV, 6, 6), ColorInfo(6, RANGE_PC, 6, 6)


def _frames(clip: torch.Tensor, pix_fmt: str, color: ColorInfo) -> list[av.VideoFrame]:
    """(T, 3, H, W) float in [0, 1] -> frames of ``pix_fmt``, the size padded to even."""
    h, w = clip.shape[-2:]
    x = clip.float()
    if (h | w) & 1:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    rgb = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return [from_rgb(image, pix_fmt, color) for image in rgb]


def _clip(frames: list[av.VideoFrame], color: ColorInfo, like: torch.Tensor) -> torch.Tensor:
    """Decoded frames back as a float (T, 3, H, W) clip like ``like`` (its size, device and dtype)."""
    rgb = torch.from_numpy(np.stack([to_rgb(f, color) for f in frames])).permute(0, 3, 1, 2)
    h, w = like.shape[-2:]
    return (rgb[..., :h, :w].to(like.device).float() / 255).to(like.dtype)


def jpeg(clip: torch.Tensor, qscale: int) -> torch.Tensor:
    """Each frame of ``clip`` (T, 3, H, W) through JPEG at ``qscale`` (2 = best .. 31 = worst; 2-4 is about
    quality 90, 10 about 50, 20 about 25)."""
    frames = _frames(clip, "yuvj420p", _JPEG)
    enc = av.codec.CodecContext.create("mjpeg", "w")
    enc.width, enc.height = frames[0].width, frames[0].height
    enc.pix_fmt, enc.time_base = "yuvj420p", Fraction(1, 25)
    enc.qmin = enc.qmax = int(qscale)
    enc.thread_count = 1
    dec = av.codec.CodecContext.create("mjpeg", "r")
    dec.thread_count = 1
    out: list[av.VideoFrame] = []
    for frame in [*frames, None]:
        for packet in enc.encode(frame):
            out += dec.decode(packet)
    return _clip(out, _JPEG, clip)


def video(clip: torch.Tensor, codec: str, crf: float = 30, qscale: int = 8, keyint: int = 25,
          preset: str = "veryfast") -> torch.Tensor:
    """``clip`` (T, 3, H, W) encoded as a 25 fps video and decoded back (the same T frames). ``libx264`` runs
    at constant quality ``crf`` with ``preset``; ``mpeg2video`` at a fixed quantiser ``qscale`` (2..31): a
    bitrate target means nothing over a few frames, whose first ones the rate control would spoil."""
    frames = _frames(clip, "yuv420p", _VIDEO)
    t, h, w = len(frames), frames[0].height, frames[0].width
    enc = av.codec.CodecContext.create(codec, "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 25), Fraction(25)
    enc.gop_size = int(keyint)
    enc.thread_count = 1   # single-threaded, so a seed gives the same bits (auto threads did not); and
                           # small clips gain nothing from threads: parallelism belongs to the data loader
    if codec == "libx264":
        # mbtree off: its assembly reads memory it never wrote (the same input gave 2-4 different streams)
        enc.options = {"crf": f"{crf:.1f}", "preset": preset, "x264-params": "mbtree=0"}
    elif codec == "mpeg2video":
        enc.qmin = enc.qmax = int(qscale)
        enc.max_b_frames = 2
    else:
        raise ValueError(f"unknown video codec '{codec}'; known: {', '.join(VIDEO_CODECS)}")
    dec = av.codec.CodecContext.create("h264" if codec == "libx264" else "mpeg2video", "r")
    dec.thread_count = 1
    packets = []
    for i, frame in enumerate(frames):
        frame.pts, frame.time_base = i, enc.time_base
        packets += enc.encode(frame)
    packets += enc.encode(None)
    out = [f for packet in [*packets, None] for f in dec.decode(packet)]
    if len(out) != t:
        raise RuntimeError(f"{codec} gave back {len(out)} frames of {t}")
    return _clip(out, _VIDEO, clip)
