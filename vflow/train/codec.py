"""Real lossy codecs through PyAV, in memory: JPEG (FFmpeg's ``mjpeg`` at a fixed qscale) per frame, and a
clip encoded as a short H.264 or MPEG-2 video and decoded back, frame for frame.

Colours: BT.601 in torch for the whole clip at once (rounded to nearest, so the pass adds the codec's loss
and no converter bias; full range for JPEG, limited for video), 4:2:0 chroma by 2x2 means, back by bilinear
interpolation. Odd sizes are padded to even (edge pixels) and cropped back.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import torch
import torch.nn.functional as F

VIDEO_CODECS = ("libx264", "mpeg2video")
KR, KB = 0.299, 0.114


def _to_i420(clip: torch.Tensor, full: bool) -> np.ndarray:
    """(T, 3, H, W) float in [0, 1] -> (T, 3H'/2, W') uint8 I420 on the CPU, H' and W' padded to even."""
    h, w = clip.shape[-2:]
    x = F.pad(clip, (0, w % 2, 0, h % 2), mode="replicate") if (h | w) & 1 else clip
    x = x.float().clamp(0, 1)
    r, g, b = x.unbind(1)
    y = KR * r + (1 - KR - KB) * g + KB * b
    uv = F.avg_pool2d(torch.stack([(b - y) / (2 - 2 * KB), (r - y) / (2 - 2 * KR)], 1), 2)
    y = y * 255 if full else 16 + 219 * y
    uv = uv * (255 if full else 224) + 128
    t, hh, ww = y.shape
    planes = [y.reshape(t, -1), uv[:, 0].reshape(t, -1), uv[:, 1].reshape(t, -1)]
    out = torch.cat(planes, 1).round().clamp(0, 255).to(torch.uint8).reshape(t, hh * 3 // 2, ww)
    return out.cpu().numpy()


def _from_i420(frames: list[np.ndarray], full: bool, like: torch.Tensor) -> torch.Tensor:
    """The inverse of ``_to_i420``: a float (T, 3, H, W) clip like ``like`` (its size, device and dtype)."""
    a = torch.from_numpy(np.stack(frames)).to(like.device).float()
    t, rows, ww = a.shape
    hh = rows * 2 // 3
    flat = a.reshape(t, -1)
    n = hh * ww
    y = flat[:, :n].reshape(t, hh, ww)
    uv = flat[:, n:].reshape(t, 2, hh // 2, ww // 2)
    y = y / 255 if full else (y - 16) / 219
    uv = F.interpolate((uv - 128) / (255 if full else 224), scale_factor=2, mode="bilinear", align_corners=False)
    u, v = uv.unbind(1)
    r = y + (2 - 2 * KR) * v
    b = y + (2 - 2 * KB) * u
    g = (y - KR * r - KB * b) / (1 - KR - KB)
    h, w = like.shape[-2:]
    return torch.stack([r, g, b], 1)[..., :h, :w].clamp(0, 1).to(like.dtype)


def jpeg(clip: torch.Tensor, qscale: int) -> torch.Tensor:
    """Each frame of ``clip`` (T, 3, H, W) through JPEG at ``qscale`` (2 = best .. 31 = worst; 2-4 is about
    quality 90, 10 about 50, 20 about 25)."""
    i420 = _to_i420(clip, full=True)
    enc = av.codec.CodecContext.create("mjpeg", "w")
    enc.width, enc.height = i420.shape[2], i420.shape[1] * 2 // 3
    enc.pix_fmt, enc.time_base = "yuvj420p", Fraction(1, 25)
    enc.qmin = enc.qmax = int(qscale)
    enc.thread_count = 1
    dec = av.codec.CodecContext.create("mjpeg", "r")
    dec.thread_count = 1
    out: list[np.ndarray] = []
    for frame in i420:
        for packet in enc.encode(av.VideoFrame.from_ndarray(frame, format="yuvj420p")):
            out += [f.to_ndarray() for f in dec.decode(packet)]
    for packet in enc.encode(None):
        out += [f.to_ndarray() for f in dec.decode(packet)]
    return _from_i420(out, True, clip)


def video(clip: torch.Tensor, codec: str, crf: float = 30, qscale: int = 8, keyint: int = 25,
          preset: str = "veryfast") -> torch.Tensor:
    """``clip`` (T, 3, H, W) encoded as a 25 fps video and decoded back (the same T frames). ``libx264`` runs
    at constant quality ``crf`` with ``preset``; ``mpeg2video`` at a fixed quantiser ``qscale`` (2..31): a
    bitrate target means nothing over a few frames, whose first ones the rate control would spoil."""
    i420 = _to_i420(clip, full=False)
    t, h, w = i420.shape[0], i420.shape[1] * 2 // 3, i420.shape[2]
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
    out: list[np.ndarray] = []
    packets = []
    for i, frame in enumerate(i420):
        f = av.VideoFrame.from_ndarray(frame, format="yuv420p")
        f.pts, f.time_base = i, enc.time_base
        packets += enc.encode(f)
    packets += enc.encode(None)
    for packet in packets:
        out += [f.to_ndarray() for f in dec.decode(packet)]
    out += [f.to_ndarray() for f in dec.decode(None)]
    if len(out) != t:
        raise RuntimeError(f"{codec} gave back {len(out)} frames of {t}")
    return _from_i420(out, False, clip)
