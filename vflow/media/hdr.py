"""HDR metadata: the mastering display and content light levels of a stream, read from a decoded frame's side
data and written back as the encoder options that carry them (x265, SVT-AV1)."""

from __future__ import annotations

import struct

import av

from ..pipeline.frames import MasteringDisplay

_MDCV = "MASTERING_DISPLAY_METADATA"
_CLL = "CONTENT_LIGHT_LEVEL"
CARRIERS = ("libx265", "libsvtav1")  # the encoders vflow passes the mastering display and light levels to


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def mastering_of(frame: av.VideoFrame) -> MasteringDisplay | None:
    """The frame's AVMasteringDisplayMetadata and AVContentLightMetadata side data, None when it has neither."""
    found: dict[str, bytes] = {}
    for sd in frame.side_data:
        kind = getattr(sd.type, "name", str(sd.type))
        if kind in (_MDCV, _CLL):
            found[kind] = bytes(sd)
    if not found:
        return None
    primaries = white = luminance = None
    max_cll = max_fall = None
    if len(mdcv := found.get(_MDCV, b"")) >= 88:
        v = struct.unpack("<20i2i", mdcv[:88])   # 3x2 + 2 + 2 rationals (num, den), has_primaries, has_luminance
        q = [_ratio(v[i], v[i + 1]) for i in range(0, 20, 2)]
        if v[20]:
            primaries = ((q[0], q[1]), (q[2], q[3]), (q[4], q[5]))   # R, G, B
            white = (q[6], q[7])
        if v[21]:
            luminance = (q[8], q[9])
    if len(cll := found.get(_CLL, b"")) >= 8:
        max_cll, max_fall = struct.unpack("<2I", cll[:8])
    return MasteringDisplay(primaries, white, luminance, max_cll, max_fall)


def encoder_params(codec: str, hdr: MasteringDisplay) -> str:
    """``hdr`` in the syntax of ``x265-params`` / ``svtav1-params`` (``key=value:key=value``); '' for others."""
    parts = []
    if codec == "libx265":  # chromaticity in 0.00002 units, luminance in 0.0001 cd/m²
        if hdr.primaries and hdr.white and hdr.luminance:
            (r, g, b), wp = hdr.primaries, hdr.white
            xy = "".join(f"{k}({round(p[0] / 0.00002)},{round(p[1] / 0.00002)})"
                         for k, p in (("G", g), ("B", b), ("R", r), ("WP", wp)))
            parts.append(f"master-display={xy}L({round(hdr.luminance[1] / 0.0001)},{round(hdr.luminance[0] / 0.0001)})")
        if hdr.max_cll is not None:
            parts.append(f"max-cll={hdr.max_cll},{hdr.max_fall or 0}")
    elif codec == "libsvtav1":
        if hdr.primaries and hdr.white and hdr.luminance:
            (r, g, b), wp = hdr.primaries, hdr.white
            xy = "".join(f"{k}({p[0]:.5f},{p[1]:.5f})" for k, p in (("G", g), ("B", b), ("R", r), ("WP", wp)))
            parts.append(f"mastering-display={xy}L({hdr.luminance[1]:.4f},{hdr.luminance[0]:.4f})")
        if hdr.max_cll is not None:
            parts.append(f"content-light={hdr.max_cll},{hdr.max_fall or 0}")
    return ":".join(parts)
