"""``vflow degrade``: the degradation chain shown on any image or clip, as a PNG grid.

Rows are frames; columns are the clean clip, each family alone (every operator of it firing) and the
whole chain as the seed draws it. A scale-2 result is shown at the clean size (nearest neighbour).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from ..media.color import color_of, to_rgb
from ..media.images import label, write_png
from ..media.probe import MediaError, open_input
from ..pipeline.outputs import check_not_inputs, check_writable
from .degrade import FAMILIES, Fired, degrade, pan_zoom_clip

GAP, LABEL = 4, 16          # px between cells; height of the label strip


def load_clip(path: str | Path, frames: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """The first ``frames`` frames of a video, or a pan and zoom over an image (or a one-frame video), as
    (T, 3, h, w) float with the longest side at most ``size`` and both sides multiples of 4."""
    p = Path(path)
    got: list[torch.Tensor] = []
    with open_input(p) as container:
        if not container.streams.video:
            raise MediaError(f"input file '{p}' has no video stream")
        try:
            for frame in container.decode(video=0):
                got.append(torch.from_numpy(to_rgb(frame, color_of(frame))).permute(2, 0, 1).float() / 255)
                if len(got) == frames:
                    break
        except av.FFmpegError as e:
            if not got:
                raise MediaError(f"input file '{p}' cannot be decoded ({e})") from None
    if not got:
        raise MediaError(f"input file '{p}' has no video frames")
    h, w = got[0].shape[-2:]
    f = min(1.0, size / max(h, w))
    out_h, out_w = max(4, int(h * f) // 4 * 4), max(4, int(w * f) // 4 * 4)
    if len(got) == 1 and frames > 1:
        return pan_zoom_clip(got[0], frames, (out_h, out_w), generator)
    clip = torch.stack(got)
    return F.interpolate(clip, size=(out_h, out_w), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def _describe(fired: list[Fired]) -> str:
    def fmt(v: float | str) -> str:
        return v if isinstance(v, str) else f"{v:.3g}"
    return "; ".join(f"{f.name}({', '.join(f'{k}={fmt(v)}' for k, v in f.params.items())})" for f in fired)


def grid(columns: list[tuple[str, torch.Tensor]]) -> np.ndarray:
    """(H, W, 3) uint8: one column per (label, clip (T, 3, h, w)), frames as rows, labels on top."""
    t, _, h, w = columns[0][1].shape
    n = len(columns)
    out = np.full((LABEL + t * h + (t + 1) * GAP, n * w + (n + 1) * GAP, 3), 40, np.uint8)
    for i, (name, clip) in enumerate(columns):
        x0 = GAP + i * (w + GAP)
        out[:LABEL, x0:x0 + w] = label(out[:LABEL, x0:x0 + w], name.upper(), x=2, y=2, size=11, band=False)
        cells = (clip.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for j, cell in enumerate(cells):
            y0 = LABEL + GAP + j * (h + GAP)
            out[y0:y0 + h, x0:x0 + w] = cell
    return out


def preview(path: str | Path, output: str | Path, seed: int = 0, frames: int = 3, scale: int = 1,
            size: int = 256) -> str:
    """Write the grid for ``path`` to ``output``; returns a summary of what the whole chain did."""
    out = Path(output)
    check_writable(out.resolve().parent)
    check_not_inputs([out], [path], "grid")
    clean = load_clip(path, frames, size, torch.Generator().manual_seed(seed))[None]
    columns = [("clean", clean[0])]
    fired: list[Fired] = []
    for family in (*FAMILIES, "all"):
        only, always = (None, False) if family == "all" else ({family}, True)
        clips, record = degrade(clean, scale, torch.Generator().manual_seed(seed), only=only, always=always)
        if scale != 1:
            clips = F.interpolate(clips[0], scale_factor=scale, mode="nearest")[None]
        columns.append((family, clips[0]))
        fired = record[0]
    write_png(out, grid(columns), "grid")
    names = ", ".join(name for name, _ in columns)
    t = clean.shape[1]
    return (f"wrote {out} ({len(columns)} columns: {names}; {t} frame{'s' * (t != 1)})\n"
            f"all: {_describe(fired) or 'nothing fired'}")
