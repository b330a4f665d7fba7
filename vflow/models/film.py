"""FilmNet: our compact multi-frame generator for old-footage restoration (``vflow-film-*``).

The net sees a window of ``frames`` neighbouring frames (``t - context .. t + context`` with ``context =
frames // 2``) and restores the centre one. Where a neighbour does not line up with the centre frame (a motion
gate: the mean absolute difference over a 5x5 neighbourhood above ``motion_gate``), its pixels are replaced by
the centre frame's, as at a cut: a fast-moving edge leaves no ghost. It works at ``1/unshuffle`` of the input
resolution: every frame is pixel-unshuffled (space to depth), the window is concatenated on channels (early
fusion), the features are modulated by the whole window's statistics (a global branch: their mean over the
picture, through a small MLP, gives a per-channel gain and offset: what faded dyes, a colour cast or flicker
need, which no local window sees), a plain ``conv + ReLU`` body with a long skip computes features, and a last
conv plus pixel shuffle predicts a full-resolution correction that is added to the centre frame (bilinearly
upsampled for scale 2). The last conv and the branch's last layer start at zero, so an untrained net is the
identity.

Receptive field: ``context`` frames on each side in time; in space, besides the global statistics, ``depth +
2`` 3x3 convs at ``1/unshuffle`` resolution, so an output pixel depends on input pixels at most ``radius =
unshuffle * (depth + 3) - 1`` away, 2 more with neighbours (the motion gate's 5x5). Tiles with that much
context give the untiled output up to the global statistics, which each tile takes from itself. A stage that
runs it declares ``context`` frames before and after, and builds each window with :func:`window_indices`,
which never crosses a scene cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

FILM_SIZES: dict[str, dict[str, int]] = {
    "film-s": {"width": 32, "depth": 4, "unshuffle": 4},
    "film-m": {"width": 48, "depth": 8, "unshuffle": 4},
    "film-l": {"width": 64, "depth": 12, "unshuffle": 4},
}


MOTION_GATE = 0.2    # 51 levels: no ghosts, and validation PSNR 26.102 dB against 26.103 without (shipped weights)


class FilmNet(nn.Module):
    """``(N, T, 3, H, W) -> (N, 3, H*s, W*s)``: the centre frame of each window, restored.

    RGB in [0, 1]; the output is not clamped. Any ``H, W`` works: they are replicate-padded to a
    multiple of ``unshuffle`` and the output cropped back. A 4-D ``(N, 3, H, W)`` input is taken as
    a window of one frame (``frames=1`` only).
    """

    def __init__(
        self, frames: int = 5, scale: int = 1, width: int = 32, depth: int = 4, unshuffle: int = 4
    ) -> None:
        super().__init__()
        if frames not in (1, 3, 5, 7):
            raise ValueError(f"FilmNet: frames must be 1, 3, 5 or 7, got {frames}")
        if scale not in (1, 2):
            raise ValueError(f"FilmNet: scale must be 1 or 2, got {scale}")
        if unshuffle not in (2, 4):
            raise ValueError(f"FilmNet: unshuffle must be 2 or 4, got {unshuffle}")
        if width < 1 or depth < 0:
            raise ValueError(f"FilmNet: width must be >= 1 and depth >= 0, got width={width}, depth={depth}")
        self.frames, self.scale, self.unshuffle = frames, scale, unshuffle
        self.context = frames // 2
        self.radius = unshuffle * (depth + 3) - 1 + (2 if frames > 1 else 0)
        self.head = nn.Conv2d(frames * 3 * unshuffle**2, width, 3, 1, 1)
        self.glob = nn.Sequential(nn.Linear(width, width), nn.ReLU(True), nn.Linear(width, 2 * width))
        nn.init.zeros_(self.glob[2].weight)
        nn.init.zeros_(self.glob[2].bias)
        convs = (nn.Conv2d(width, width, 3, 1, 1) for _ in range(depth))
        self.body = nn.Sequential(*(m for conv in convs for m in (conv, nn.ReLU(True))))
        self.tail = nn.Conv2d(width, 3 * (unshuffle * scale) ** 2, 3, 1, 1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def config(self) -> dict[str, int]:
        """The constructor arguments that rebuild this net."""
        return {
            "frames": self.frames,
            "scale": self.scale,
            "width": self.head.out_channels,
            "depth": len(self.body) // 2,
            "unshuffle": self.unshuffle,
        }

    motion_gate: float | None = MOTION_GATE     # None: neighbours as they are

    @property
    def tile_overlap(self) -> int:
        """The smallest multiple of 8 whose blended tiles (:class:`~vflow.pipeline.gpu.DeviceRunner`) are exact
        for the local receptive field (with tile sides that are multiples of ``unshuffle``, so that every tile
        keeps the frame's unshuffle grid)."""
        ov = 8
        while ov - ov // 4 < self.radius:
            ov += 8
        return ov

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.unsqueeze(1)
        n, t, c, h, w = x.shape
        if t != self.frames or c != 3:
            raise ValueError(f"FilmNet: expected (N, {self.frames}, 3, H, W), got {tuple(x.shape)}")
        f = self.unshuffle
        centre = x[:, self.context]
        if self.motion_gate is not None and t > 1:
            x = gate(x, self.context, self.motion_gate)
        if h % f or w % f:
            x = F.pad(x, (0, -w % f, 0, -h % f, 0, 0), mode="replicate")
        feat = F.relu(self.head(space_to_depth(x, f)))
        gain, offset = self.glob(feat.mean((2, 3))).chunk(2, dim=1)
        feat = feat * (1 + gain[:, :, None, None]) + offset[:, :, None, None]
        feat = feat + self.body(feat)
        out = F.pixel_shuffle(self.tail(feat), f * self.scale)[..., : h * self.scale, : w * self.scale]
        if self.scale > 1:
            # bilinear on a 3-channel channels_last tensor is ~3x slower than on a contiguous one
            centre = centre.contiguous()
            centre = F.interpolate(centre, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return centre + out


def gate(x: torch.Tensor, context: int, threshold: float) -> torch.Tensor:
    """The window ``x`` (N, T, C, H, W) with every neighbour pixel whose 5x5 mean absolute difference from the
    centre frame (averaged over channels) exceeds ``threshold`` replaced by the centre frame's pixel."""
    n, t, c, h, w = x.shape
    centre = x[:, context : context + 1]
    diff = (x - centre).abs().mean(2).reshape(n * t, 1, h, w)
    local = F.avg_pool2d(F.pad(diff, (2, 2, 2, 2), mode="replicate"), 5, 1).reshape(n, t, 1, h, w)
    return torch.where(local > threshold, centre, x)


def space_to_depth(x: torch.Tensor, f: int) -> torch.Tensor:
    """``(N, T, C, H, W) -> (N, T*C*f*f, H/f, W/f)`` in channels_last, in one copy whatever ``x``'s layout.

    Channels are ordered ``(t, c, i, j)``: each frame's ``F.pixel_unshuffle``, concatenated on channels.
    """
    n, t, c, h, w = x.shape
    y = x.reshape(n, t, c, h // f, f, w // f, f).permute(0, 3, 5, 1, 2, 4, 6)
    return y.reshape(n, h // f, w // f, t * c * f * f).permute(0, 3, 1, 2)


def film(size: str, frames: int = 5, scale: int = 1, **overrides: Any) -> FilmNet:
    """A :class:`FilmNet` of a named size from :data:`FILM_SIZES` (``film-s``, ``film-m``, ``film-l``)."""
    if size not in FILM_SIZES:
        raise ValueError(f"unknown FilmNet size {size!r}; known: {', '.join(FILM_SIZES)}")
    return FilmNet(frames=frames, scale=scale, **{**FILM_SIZES[size], **overrides})


def window_indices(n_frames: int, t: int, frames: int, scene_ids: Sequence[int] | None = None) -> list[int]:
    """The frame indices of the window centred on ``t``: ``t - frames//2 .. t + frames//2``.

    Indices past either end of the clip, or across a scene cut (a change of ``scene_ids``), repeat
    the nearest frame of ``t``'s own shot (the contiguous run of frames with ``t``'s scene id), so a
    window never mixes shots.
    """
    if frames < 1 or frames % 2 == 0:
        raise ValueError(f"window_indices: frames must be odd and >= 1, got {frames}")
    if not 0 <= t < n_frames:
        raise ValueError(f"window_indices: t={t} is outside a clip of {n_frames} frames")
    lo, hi = 0, n_frames - 1
    if scene_ids is not None:
        if len(scene_ids) != n_frames:
            raise ValueError(f"window_indices: {len(scene_ids)} scene ids for {n_frames} frames")
        r, scene = frames // 2, scene_ids[t]
        lo, hi = t, t
        while lo > max(0, t - r) and scene_ids[lo - 1] == scene:
            lo -= 1
        while hi < min(n_frames - 1, t + r) and scene_ids[hi + 1] == scene:
            hi += 1
    return [min(max(t + o, lo), hi) for o in range(-(frames // 2), frames // 2 + 1)]


def stack_windows(clip: torch.Tensor, frames: int, scene_ids: Sequence[int] | None = None) -> torch.Tensor:
    """``(T, C, H, W) -> (T, frames, C, H, W)``: the window of every frame of a clip, for :class:`FilmNet`."""
    n = clip.shape[0]
    idx = [window_indices(n, t, frames, scene_ids) for t in range(n)]
    return clip[torch.tensor(idx, dtype=torch.long, device=clip.device)]
