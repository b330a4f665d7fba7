"""What flows on the edges: video ``FrameBatch``es, ``AudioChunk``s, and the stream info negotiated at build time.

These names are public API: stages of other packages rely on them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import torch

# H.273 / FFmpeg code points (AVColorSpace, AVColorRange, AVColorPrimaries, AVColorTransferCharacteristic).
UNSPECIFIED = 2  # for matrix, primaries and transfer
RANGE_UNSPECIFIED, RANGE_TV, RANGE_PC = 0, 1, 2
# H.273 matrix code point -> (Kr, Kb): the luma weights are (Kr, 1 - Kr - Kb, Kb); unknown codes use BT.601's
KR_KB = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087),
         9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}


@dataclass(frozen=True)
class ColorInfo:
    """The colour metadata of a stream, as H.273 code points: matrix, range, primaries, transfer.

    ``matrix`` and ``range`` say how YUV maps to the RGB frames vflow carries; they are honoured when
    decoding to RGB and when encoding back, and tagged on the output so players show the same colours.
    """

    matrix: int = UNSPECIFIED
    range: int = RANGE_UNSPECIFIED
    primaries: int = UNSPECIFIED
    transfer: int = UNSPECIFIED

    def resolved(self, height: int, full_range_format: bool = False) -> "ColorInfo":
        """The colours a player assumes when tags are missing: BT.709 from 720 lines up, else BT.601; limited range."""
        matrix = self.matrix
        if matrix in (UNSPECIFIED, 3, 0):
            matrix = 1 if height >= 720 else 6
        rng = self.range or (RANGE_PC if full_range_format else RANGE_TV)
        return ColorInfo(matrix, rng, self.primaries, self.transfer)

    @property
    def hdr(self) -> bool:
        """Whether the transfer is an HDR one (PQ or HLG): code values are not an SDR picture's."""
        return self.transfer in HDR_TRANSFERS

    def luma_weights(self, height: int) -> tuple[float, float, float]:
        """The R, G, B weights of luma for this stream's matrix (as :meth:`resolved` assumes it): what every
        kernel that takes a grey level of RGB uses."""
        kr, kb = KR_KB.get(self.resolved(height).matrix, KR_KB[6])
        return kr, 1.0 - kr - kb, kb


BT601 = ColorInfo(matrix=6).luma_weights(480)   # the luma weights of a stream with no tags below 720 lines
HDR_TRANSFERS = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}  # H.273 transfer code points


@dataclass(frozen=True)
class MasteringDisplay:
    """HDR metadata of a stream: the mastering display (CIE 1931 xy of its R, G, B primaries and white
    point; min and max luminance in cd/m²) and the content light levels (MaxCLL, MaxFALL in cd/m²)."""

    primaries: tuple[tuple[float, float], ...] | None = None   # (R, G, B) x (x, y)
    white: tuple[float, float] | None = None
    luminance: tuple[float, float] | None = None               # (min, max)
    max_cll: int | None = None
    max_fall: int | None = None


@dataclass(frozen=True)
class VideoInfo:
    """What a video port carries, known before the first frame (negotiated at build time)."""

    width: int
    height: int
    time_base: Fraction
    frame_rate: Fraction | None = None     # average rate; pts are the truth (VFR is kept)
    color: ColorInfo = ColorInfo()
    frames: int | None = None              # expected frame count, for progress and ETA
    sample_aspect: Fraction | None = None
    field_order: str = "progressive"
    rotation: int = 0                      # degrees already applied by decode (frames are upright)
    tags: tuple[tuple[str, str], ...] = ()  # the source's metadata worth keeping: creation_time, timecode, title
    chapters: tuple[dict[str, Any], ...] = ()  # the source's chapters (PyAV's chapter dicts)
    depth: int = 8                         # bits of each RGB sample of the frames: 8 (uint8) or 16 (uint16)
    pix_fmt: str | None = None             # the source's pixel format (bit depth, chroma): what encode keeps
    hdr: MasteringDisplay | None = None    # the source's mastering display and light levels, passed through

    def replace(self, **fields: Any) -> "VideoInfo":
        return dataclasses.replace(self, **fields)

    def luma_weights(self) -> tuple[float, float, float]:
        """The R, G, B weights of this stream's luma (see :meth:`ColorInfo.luma_weights`)."""
        return self.color.luma_weights(self.height)

    @property
    def vmax(self) -> int:
        """The largest RGB code value of the frames: 255 or 65535."""
        return (1 << self.depth) - 1


@dataclass(frozen=True)
class AudioInfo:
    """What an audio port carries: one entry per audio stream of the source.

    ``streams`` holds the source's PyAV streams (templates for stream copy and decoders); ``decoded`` says
    the chunks carry decoded frames (after a filter), not the source's compressed packets.
    """

    streams: tuple[Any, ...] = ()
    decoded: bool = False

    def replace(self, **fields: Any) -> "AudioInfo":
        return dataclasses.replace(self, **fields)


@dataclass(frozen=True, eq=False)
class FrameBatch:
    """N video frames: ``frames`` is a CPU uint8 or uint16 tensor (N, H, W, 3) RGB, contiguous.

    The depth (8 or 16 bits: ``VideoInfo.depth``) is chosen at build time by decode and is the same for
    every batch of a stream; 16-bit frames use the full range 0..65535 whatever the source's bit depth.

    ``pts`` (int64, one per frame) counts ``time_base`` units; ``scene`` (int64) is each frame's scene
    index (0 until a scene splitter runs); ``seq`` numbers batches in stream order. Batches are shared
    between fan-out branches: never modify ``frames`` in place, make a new batch with ``replace``.
    """

    frames: torch.Tensor
    pts: torch.Tensor
    time_base: Fraction
    seq: int = 0
    scene: torch.Tensor | None = None
    color: ColorInfo = field(default_factory=ColorInfo)

    def __post_init__(self) -> None:
        f = self.frames
        if f.dtype not in (torch.uint8, torch.uint16) or f.dim() != 4 or f.shape[-1] != 3:
            raise ValueError(f"FrameBatch.frames must be uint8 or uint16 (N, H, W, 3), got {f.dtype} {tuple(f.shape)}")
        if f.device.type != "cpu" or not f.is_contiguous():
            raise ValueError("FrameBatch.frames must be a contiguous CPU tensor")
        if self.pts.dtype != torch.int64 or self.pts.shape != (f.shape[0],):
            raise ValueError(f"FrameBatch.pts must be int64 with one entry per frame, got {tuple(self.pts.shape)}")
        if self.scene is None:
            object.__setattr__(self, "scene", torch.zeros(f.shape[0], dtype=torch.int64))
        elif self.scene.shape != (f.shape[0],):
            raise ValueError("FrameBatch.scene must have one entry per frame")

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def depth(self) -> int:
        """Bits per RGB sample: 8 or 16."""
        return 8 if self.frames.dtype == torch.uint8 else 16

    @property
    def vmax(self) -> int:
        """The largest code value: 255 or 65535."""
        return (1 << self.depth) - 1

    def seconds(self, i: int = 0) -> float:
        """Presentation time of frame ``i`` in seconds."""
        return float(int(self.pts[i]) * self.time_base)

    def replace(self, **fields: Any) -> "FrameBatch":
        """A new batch with some fields changed (the others shared)."""
        return dataclasses.replace(self, **fields)


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """Audio of one source stream: compressed ``packets`` (stream copy) or decoded ``frames`` (filtering).

    Exactly one of the two lists is non-empty. ``stream`` is the index among the source's audio streams;
    timestamps live on the packets/frames themselves, in ``time_base`` units.
    """

    stream: int
    time_base: Fraction
    packets: tuple[Any, ...] = ()
    frames: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if bool(self.packets) == bool(self.frames):
            raise ValueError("AudioChunk needs packets or frames, not both and not neither")

    @property
    def pts(self) -> int | None:
        first = (self.packets or self.frames)[0]
        return first.pts

    def seconds(self) -> float | None:
        return None if self.pts is None else float(self.pts * self.time_base)

    def replace(self, **fields: Any) -> "AudioChunk":
        return dataclasses.replace(self, **fields)
