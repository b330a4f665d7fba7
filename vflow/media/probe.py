"""Opening media files with errors that say what is wrong with which file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import torch

from ..pipeline.errors import VflowError
from .color import color_of, to_rgb



# output name extension -> the muxer vflow writes it with (encode, and the chunked runs' join)
OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
                  ".nut": "nut", ".ts": "mpegts"}

class MediaError(VflowError):
    """A file that cannot be read or written as media."""


def open_input(path: str | Path) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        raise MediaError(f"input file '{p}' does not exist")
    if p.is_dir():
        raise MediaError(f"input '{p}' is a directory, not a video file")
    try:
        container = av.open(str(p), "r")
    except PermissionError:
        raise MediaError(f"input file '{p}' is not readable (permission denied)") from None
    except av.FFmpegError as e:
        raise MediaError(f"input file '{p}' is not a video FFmpeg can read ({e.strerror or e}); "
                         f"is it truncated or not a video?") from None
    size = p.stat().st_size
    end = max((e.pos + e.size for s in container.streams for e in s.index_entries if e.pos >= 0), default=0)
    if end > size:  # the demuxer would just stop early: a short output and no error
        container.close()
        raise MediaError(f"input file '{p}' is truncated: its index points to byte {end} but the file has "
                         f"only {size} bytes (an interrupted copy or download?)")
    return container


AVFMT_NOTIMESTAMPS = 0x80


def frame_rate(stream: av.video.stream.VideoStream) -> Fraction | None:
    """The stream's average frame rate, ignoring the bogus values some demuxers report (DV: 60000).

    A raw elementary stream (``.h264``) has no timestamps: its demuxer reports a default 25 fps, so the
    rate the bitstream itself declares comes first there."""
    rates = [stream.average_rate, stream.guessed_rate, stream.base_rate]
    if stream.container.format.flags & AVFMT_NOTIMESTAMPS:
        rates.insert(0, stream.codec_context.framerate)
    for rate in rates:
        if rate and 0 < rate < 1000:
            return Fraction(rate)
    return None


def expected_frames(stream: av.video.stream.VideoStream, rate: Fraction | None) -> int | None:
    if stream.frames:
        return int(stream.frames)
    container = stream.container
    if rate and container.duration:
        return round(container.duration / av.time_base * rate)
    return None


def read_image(path: str | Path, what: str = "image") -> torch.Tensor:
    """An image file (anything FFmpeg reads; a video gives its first frame) as (H, W, 3) uint8 RGB.
    ``what`` names the file in errors, e.g. "reference image"."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{what} '{p}' does not exist")
    try:
        with av.open(str(p)) as c:
            frame = next(c.decode(video=0))
            return torch.from_numpy(to_rgb(frame, color_of(frame)))
    except (av.FFmpegError, StopIteration, OSError) as e:
        raise MediaError(f"{what} '{p}' cannot be read ({e})") from None
