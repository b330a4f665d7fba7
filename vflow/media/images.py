"""Still pictures: RGB arrays as PNG (FFmpeg's encoder, through PyAV) and text labels on them (Pillow)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..pipeline.outputs import PartialFile
from .probe import MediaError


def png_bytes(rgb: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 RGB image as PNG bytes."""
    enc = av.codec.CodecContext.create("png", "w")
    enc.width, enc.height, enc.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
    packets = enc.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")) + enc.encode(None)
    return b"".join(bytes(p) for p in packets)


def write_png(path: str | Path, rgb: np.ndarray, what: str = "picture") -> None:
    """``rgb`` as a PNG file, written atomically; an unwritable place is a MediaError naming ``what``."""
    out = PartialFile(path)
    try:
        out.partial.parent.mkdir(parents=True, exist_ok=True)
        out.partial.write_bytes(png_bytes(rgb))
        out.ready()
    except OSError as e:
        raise MediaError(f"{what} '{path}' cannot be written ({e.strerror or e})") from None
    finally:
        out.close(ok=True)


def label(image: np.ndarray, text: str, x: int = 6, y: int = 6, size: int = 14, band: bool = True) -> np.ndarray:
    """A copy of ``image`` with ``text`` written at (x, y), white, on a dark outlined band (``band``)."""
    picture = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size)
    if band:
        box = draw.textbbox((x, y), text, font=font)
        draw.rectangle((box[0] - 4, box[1] - 3, box[2] + 4, box[3] + 3), fill=(30, 30, 30), outline=(220, 220, 220))
    draw.text((x, y), text, fill=(230, 230, 230), font=font)
    return np.asarray(picture)
