"""Old-footage operators: film (dye fading, grain, dust, scratches, flicker, gate weave) and analogue video
(VHS chroma bleed and delay, tracking noise, dropouts, interlace combing residue), all procedural: no
template sets (the film-noise scans of the papers carry non-commercial terms).

Every operator takes clips ``x`` (N, T, 3, H, W) in [0, 1], its config and the call's ``Draws``; it draws
its parameters per clip, jitters them per frame where the real defect varies, and returns the new clips
and its per-clip parameters (N,) for the record. Sizes are in pixels of the clip as it is at that point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..pipeline.frames import BT601
from .blur import filter2d, gaussian
from .draws import Draws, Range

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Film:
    """Film defects: the chance of each per clip, then the ranges its parameters are drawn from."""

    p_fade: float = 0.3
    p_grain: float = 0.6
    p_dust: float = 0.4
    p_scratches: float = 0.3
    p_flicker: float = 0.4
    p_weave: float = 0.15
    desaturate: Range = (0.0, 0.5)      # dye fading: mix toward luma
    cast: float = 0.12                  # channel gains 1 +- cast
    lift: Range = (0.0, 0.08)           # faded blacks
    grain: Range = (0.01, 0.07)         # std of the grain at mid-grey
    grain_size: Range = (0.3, 1.2)      # its blur sigma, px
    p_grain_color: float = 0.3
    dust_rate: Range = (0.3, 4.0)       # specks per 10,000 px per frame (log-uniform)
    dust_size: Range = (0.5, 2.0)       # speck sigma, px
    dust_sticky: float = 0.3            # a share of specks that stay 2-4 frames
    scratches: int = 3                  # at most this many per clip
    scratch_width: Range = (0.4, 1.5)   # sigma, px
    scratch_drift: float = 0.4          # px per frame, one sigma
    scratch_intensity: Range = (0.25, 0.8)
    flicker: Range = (0.01, 0.08)       # gain std per frame
    weave: Range = (0.2, 0.8)           # translation std per frame, px


@dataclass(frozen=True)
class Vhs:
    """Analogue video defects."""

    p_chroma_bleed: float = 0.25
    p_chroma_delay: float = 0.2
    p_tracking: float = 0.1
    p_dropouts: float = 0.15
    p_interlace: float = 0.1
    bleed: Range = (1.0, 4.0)           # horizontal chroma sigma, px
    delay: Range = (1.0, 3.5)           # chroma shift, px
    tracking_band: Range = (0.03, 0.1)  # band height, share of the rows
    tracking_shift: Range = (2.0, 12.0) # the band's horizontal tear, px
    dropouts: int = 4                   # streak slots per frame
    dropout_rate: Range = (0.1, 0.5)    # chance of each slot per frame
    dropout_length: Range = (0.03, 0.25)  # share of the width
    comb_shift: Range = (0.0, 1.5)      # odd rows' horizontal offset, px


KR, KG, KB = BT601     # analogue video (the VHS operators) and film dyes are modelled on BT.601's luma


def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of (..., 3, H, W) as (..., 1, H, W)."""
    return KR * x[..., :1, :, :] + KG * x[..., 1:2, :, :] + KB * x[..., 2:, :, :]


def _blend(x: torch.Tensor, alpha: torch.Tensor, value: torch.Tensor | float) -> torch.Tensor:
    return x * (1 - alpha) + alpha * value


def _per_frame(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Filter (N, T, C, H, W) with one kernel per clip (N, k, k)."""
    n, t, c, h, w = x.shape
    return filter2d(x.reshape(n, t * c, h, w), kernel).reshape(n, t, c, h, w)


def _hkernel(sigma: torch.Tensor, shift: torch.Tensor, k: int) -> torch.Tensor:
    """(N, k, k) kernels with one non-zero row: a horizontal Gaussian of ``sigma`` that moves the image
    ``shift`` px to the right."""
    r = torch.arange(k, device=sigma.device, dtype=torch.float32) - k // 2
    row = torch.exp(-0.5 * ((r + shift[:, None]) / sigma[:, None].clamp_min(0.25)) ** 2)
    out = torch.zeros(sigma.shape[0], k, k, device=sigma.device)
    out[:, k // 2] = row / row.sum(1, keepdim=True)
    return out


def fade(x: torch.Tensor, cfg: Film, d: Draws) -> tuple[torch.Tensor, Params]:
    """Dye fading and a colour cast, per clip: desaturation, channel gains, lifted blacks."""
    n = x.shape[0]
    sat = d.uniform(cfg.desaturate, n)
    gains = 1 + d.uniform((-cfg.cast, cfg.cast), n, 3)
    lift = d.uniform(cfg.lift, n)
    y = luma(x)
    out = y + (1 - sat.view(-1, 1, 1, 1, 1)) * (x - y)
    out = out * gains.view(n, 1, 3, 1, 1)
    out = lift.view(-1, 1, 1, 1, 1) + out * (1 - lift.view(-1, 1, 1, 1, 1))
    return out, {"desaturate": sat, "lift": lift, "gain_r": gains[:, 0], "gain_g": gains[:, 1], "gain_b": gains[:, 2]}


def grain(x: torch.Tensor, cfg: Film, d: Draws) -> tuple[torch.Tensor, Params]:
    """Film grain, new every frame, strongest in the mid-tones; monochrome or (sometimes) per dye layer."""
    n, t, _, h, w = x.shape
    strength = d.uniform(cfg.grain, n)
    size = d.uniform(cfg.grain_size, n)
    color = d.chance(cfg.p_grain_color, n)
    noise = d.randn_field(n, t, 3, h, w)
    noise = torch.where(color.view(-1, 1, 1, 1, 1), noise, noise[:, :, :1])
    k = gaussian(size, 7)
    noise = _per_frame(noise, k) / k.square().sum((1, 2)).sqrt().view(-1, 1, 1, 1, 1)
    lum = luma(x).clamp(0, 1)
    amp = d.jitter(strength, t, 0.1).view(n, t, 1, 1, 1) * (0.3 + 2.8 * lum * (1 - lum))
    return x + amp * noise, {"strength": strength, "size": size, "color": color.float()}


def dust(x: torch.Tensor, cfg: Film, d: Draws) -> tuple[torch.Tensor, Params]:
    """Dust and specks: small soft blobs, dark (dirt on the print) or bright (on the negative), a new set
    every frame, a few of them stuck for 2-4 frames."""
    n, t, _, h, w = x.shape
    rate = d.log_uniform(cfg.dust_rate, n) / 1e4
    size = d.uniform(cfg.dust_size, n)
    bright = d.uniform((0.0, 1.0), n)
    share = torch.stack([1 - bright, bright], 1).view(n, 1, 2, 1, 1)
    p = rate.view(-1, 1, 1, 1, 1) * share
    u = d.rand_field(n, t, 2, h, w)
    specks = (u < p) * (0.5 + 0.5 * u / p)                                # amplitude 0.5..1
    stuck = d.rand_field(n, 1, 2, h, w) < p * cfg.dust_sticky
    t0, dur = d.integers(0, max(t - 1, 0), n), d.integers(2, 4, n)
    frame = torch.arange(t, device=x.device)
    during = ((frame >= t0[:, None]) & (frame < (t0 + dur)[:, None])).view(n, t, 1, 1, 1)
    specks = torch.maximum(specks, (stuck & during).float())
    k = gaussian(size, 13)
    peak = k.amax((1, 2)).view(-1, 1, 1, 1, 1)
    alpha = (_per_frame(specks, k) / peak * 1.5).clamp(0, 1)
    dark_v, bright_v = d.uniform((0.0, 0.15), n).view(-1, 1, 1, 1, 1), d.uniform((0.85, 1.0), n).view(-1, 1, 1, 1, 1)
    out = _blend(_blend(x, alpha[:, :, :1], dark_v), alpha[:, :, 1:], bright_v)
    return out, {"rate": rate * 1e4, "size": size, "bright": bright}


def scratches(x: torch.Tensor, cfg: Film, d: Draws) -> tuple[torch.Tensor, Params]:
    """Vertical scratches that persist over the clip and drift slowly, wavy, of flickering intensity,
    bright or dark, over the full height or part of it."""
    n, t, _, h, w = x.shape
    s = cfg.scratches
    count = d.integers(1, s, n)
    on = (torch.arange(s, device=x.device) < count[:, None]).float()                     # (N, S)
    x0 = d.uniform((0.0, w - 1.0), n, s)
    walk = (d.normal(n, s, 1) * cfg.scratch_drift + 0.3 * d.normal(n, s, t)).cumsum(-1)  # (N, S, T)
    width = d.uniform(cfg.scratch_width, n, s)
    level = d.uniform(cfg.scratch_intensity, n, s)
    level = level[..., None] * (1 + 0.25 * d.normal(n, s, t)).clamp(0.3, 1.7)
    bright = d.chance(0.6, n, s).float()
    amp, period, phase = d.uniform((0.0, 2.0), n, s), d.uniform((0.5 * h, 4.0 * h), n, s), d.uniform((0, 6.3), n, s)
    full = d.chance(0.6, n, s)
    y0 = torch.where(full, 0.0, d.uniform((0.0, 0.5 * h), n, s))
    y1 = torch.where(full, float(h), y0 + d.uniform((0.3 * h, float(h)), n, s))
    ys = torch.arange(h, device=x.device, dtype=torch.float32)
    xs = torch.arange(w, device=x.device, dtype=torch.float32)
    wave = amp[..., None] * torch.sin(2 * math.pi * ys / period[..., None] + phase[..., None])   # (N, S, H)
    centre = x0[..., None, None] + walk[..., None] + wave[:, :, None]                           # (N, S, T, H)
    rows = ((ys >= y0[..., None]) & (ys < y1[..., None])).float()
    rows = rows * (0.75 + 0.25 * torch.sin(ys / 17 + phase[..., None]))                        # (N, S, H)
    prof = torch.exp(-0.5 * ((xs - centre[..., None]) / width[..., None, None, None]) ** 2)     # (N, S, T, H, W)
    a = prof * (on[..., None] * level)[..., None, None] * rows[:, :, None, :, None]
    a_bright = (a * bright[..., None, None, None]).sum(1).clamp(0, 1).unsqueeze(2)
    a_dark = (a * (1 - bright[..., None, None, None])).sum(1).clamp(0, 1).unsqueeze(2)
    out = _blend(_blend(x, a_dark, 0.05), a_bright, 0.95)
    per_clip = {"width": width, "intensity": level.mean(-1)}                                    # means of the scratches on
    return out, {"count": count.float(), **{k: (v * on).sum(1) / count for k, v in per_clip.items()}}


def flicker(x: torch.Tensor, cfg: Film, d: Draws) -> tuple[torch.Tensor, Params]:
    """Per-frame brightness flicker: a gain and an offset, with a gentle gradient across the frame."""
    n, t, _, h, w = x.shape
    a = d.uniform(cfg.flicker, n)
    gain = 1 + a[:, None] * d.normal(n, t).clamp(-2, 2)
    offset = 0.3 * a[:, None] * d.normal(n, t).clamp(-2, 2)
    gx, gy = 0.5 * a[:, None] * d.normal(n, t), 0.5 * a[:, None] * d.normal(n, t)
    xs = torch.linspace(-1, 1, w, device=x.device).view(1, 1, 1, 1, w)
    ys = torch.linspace(-1, 1, h, device=x.device).view(1, 1, 1, h, 1)
    field = gain.view(n, t, 1, 1, 1) + gx.view(n, t, 1, 1, 1) * xs + gy.view(n, t, 1, 1, 1) * ys
    return x * field + offset.view(n, t, 1, 1, 1), {"amount": a}


def _translate(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Move (N, T, C, H, W) by (dx, dy) px (N, T) with bilinear resampling and border padding."""
    n, t, c, h, w = x.shape
    theta = torch.zeros(n * t, 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2], theta[:, 1, 2] = -2 * dx.reshape(-1) / w, -2 * dy.reshape(-1) / h
    grid = F.affine_grid(theta, [n * t, c, h, w], align_corners=False)
    out = F.grid_sample(x.reshape(n * t, c, h, w), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(n, t, c, h, w)


def weave(x: torch.Tensor, cfg: Film, d: Draws) -> tuple[torch.Tensor, Params]:
    """Gate weave: a small sub-pixel translation every frame, more vertical than lateral."""
    n, t = x.shape[:2]
    a = d.uniform(cfg.weave, n)
    dy = a[:, None] * d.normal(n, t).clamp(-2.5, 2.5)
    dx = 0.5 * a[:, None] * d.normal(n, t).clamp(-2.5, 2.5)
    return _translate(x, dx, dy), {"amount": a}


def _yuv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    y = luma(x)
    return y, torch.cat([(x[..., 2:, :, :] - y) / (2 - 2 * KB), (x[..., :1, :, :] - y) / (2 - 2 * KR)], -3)


def _rgb(y: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    r = y + (2 - 2 * KR) * uv[..., 1:, :, :]
    b = y + (2 - 2 * KB) * uv[..., :1, :, :]
    return torch.cat([r, (y - KR * r - KB * b) / KG, b], -3)


def chroma(x: torch.Tensor, sigma: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """VHS colour-under: chroma low-passed horizontally (``sigma`` px) and delayed (``shift`` px), per clip."""
    y, uv = _yuv(x)
    k = 2 * math.ceil(3 * float(sigma.max()) + float(shift.abs().max())) + 1
    return _rgb(y, _per_frame(uv, _hkernel(sigma, shift, k)))


def chroma_bleed(x: torch.Tensor, cfg: Vhs, d: Draws) -> tuple[torch.Tensor, Params]:
    sigma = d.uniform(cfg.bleed, x.shape[0])
    return chroma(x, sigma, torch.zeros_like(sigma)), {"sigma": sigma}


def chroma_delay(x: torch.Tensor, cfg: Vhs, d: Draws) -> tuple[torch.Tensor, Params]:
    n = x.shape[0]
    shift = d.uniform(cfg.delay, n) * torch.where(d.chance(0.8, n), 1.0, -1.0)
    return chroma(x, torch.full_like(shift, 0.4), shift), {"shift": shift}


def tracking(x: torch.Tensor, cfg: Vhs, d: Draws) -> tuple[torch.Tensor, Params]:
    """Tracking noise: a band of torn, noisy rows near the bottom, moving a little every frame."""
    n, t, c, h, w = x.shape
    band = d.uniform(cfg.tracking_band, n) * h
    tear = d.uniform(cfg.tracking_shift, n)
    bottom = h - d.uniform((0.0, 0.03 * h), n)[:, None] + 2 * d.normal(n, t)                 # (N, T)
    ys = torch.arange(h, device=x.device, dtype=torch.float32)
    depth = ((ys - (bottom - band[:, None])[..., None]) / band[:, None, None]).clamp(0, 1)    # 0 above, 1 at bottom
    depth = depth * (ys < bottom[..., None])
    rows = tear[:, None, None] * depth * (0.5 + d.rand_field(n, t, h))                        # (N, T, H) px
    theta = torch.zeros(n * t, 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    grid = F.affine_grid(theta, [n * t, c, h, w], align_corners=False)
    grid[..., 0] -= (2 * rows / w).reshape(n * t, h, 1)
    out = F.grid_sample(x.reshape(n * t, c, h, w), grid, padding_mode="border", align_corners=False).reshape(x.shape)
    dashes = (d.rand_field(n, t, 1, h, max(w // 8, 1)) > 0.7).float()
    dashes = F.interpolate(dashes.reshape(n * t, 1, h, -1), size=(h, w), mode="bilinear", align_corners=False)
    noise = dashes.reshape(n, t, 1, h, w) * d.rand_field(n, t, 1, h, w) * depth[:, :, None, :, None]
    return out + 0.6 * noise, {"band": band / h, "tear": tear}


def dropouts(x: torch.Tensor, cfg: Vhs, d: Draws) -> tuple[torch.Tensor, Params]:
    """Dropouts: short horizontal streaks, mostly white, one or two rows high, a few per frame."""
    n, t, _, h, w = x.shape
    k = cfg.dropouts
    rate = d.uniform(cfg.dropout_rate, n)
    on = d.rand_field(n, t, k) < rate[:, None, None]
    row = d.integers(0, h - 1, n, t, k)
    tall = d.integers(1, 2, n, t, k)
    length = d.uniform(cfg.dropout_length, n, t, k) * w
    start = d.uniform((0.0, 1.0), n, t, k) * w - 0.5 * length
    white = d.chance(0.8, n, t, k).float()
    ys = torch.arange(h, device=x.device)
    xs = torch.arange(w, device=x.device, dtype=torch.float32)
    rows = ((ys >= row[..., None]) & (ys < (row + tall)[..., None]) & on[..., None]).float()             # (N, T, K, H)
    cols = (((xs - start[..., None]) / 2).clamp(0, 1)                                             # soft ends
            * (((start + length)[..., None] - xs) / 2).clamp(0, 1))                                    # (N, T, K, W)
    a = rows[..., None] * cols[..., None, :]                                                  # (N, T, K, H, W)
    a_white = (a * white[..., None, None]).sum(2).clamp(0, 1).unsqueeze(2)
    a_black = (a * (1 - white[..., None, None])).sum(2).clamp(0, 1).unsqueeze(2)
    out = _blend(_blend(x, a_black, 0.02), a_white, 0.97)
    return out, {"rate": rate}


def interlace(x: torch.Tensor, cfg: Vhs, d: Draws) -> tuple[torch.Tensor, Params]:
    """Combing residue: odd rows from the previous instant (the other field), a little off horizontally,
    so moving edges comb and still ones stay."""
    n, t = x.shape[:2]
    amount = d.uniform((0.5, 1.0), n)
    shift = d.uniform(cfg.comb_shift, n) * torch.where(d.chance(0.5, n), 1.0, -1.0)
    prev = torch.cat([x[:, :1], x[:, :-1]], 1)
    k = 2 * math.ceil(float(shift.abs().max()) + 1.5) + 1
    prev = _per_frame(prev, _hkernel(torch.full_like(shift, 0.4), shift, k))
    a = amount.view(-1, 1, 1, 1)
    out = x.clone()
    out[..., 1::2, :] = (1 - a[..., None]) * x[..., 1::2, :] + a[..., None] * prev[..., 1::2, :]
    return out, {"amount": amount, "shift": shift}
