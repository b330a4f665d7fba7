"""The degradation model: clean clips in, degraded clips out, for training and evaluating restoration models.

``degrade(clean, scale, generator)`` takes clips (B, T, 3, H, W) float in [0, 1] on any device and runs, per
clip, with parameters drawn per clip and jittered per frame:

1. Real-ESRGAN's first round (Wang et al. 2021): blur (Gaussian iso/anisotropic, generalized, plateau or
   sinc kernels), resize, Gaussian or Poisson noise (colour or grey), JPEG;
2. film: dye fading and colour cast, grain, dust, scratches, flicker, gate weave;
3. the second round: blur, resize, noise;
4. resize to the output size (H / scale, W / scale) and a sinc filter (ringing);
5. analogue video: VHS chroma bleed and delay, tracking noise, dropouts, interlace combing residue; JPEG;
6. a real codec pass last, H.264 or MPEG-2 through PyAV: compression after grain is what home video is.

Each step fires with its own chance; resizes are drawn once per batch (as Real-ESRGAN does), so all clips
keep one size. The result carries a record per clip of the operators that fired and their parameters, by
family (``blur``, ``noise``, ``compression``, ``film``, ``vhs``) for per-family evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F

from . import codec, footage
from .blur import filter2d, kernels
from .draws import Draws, Range

OPERATORS: dict[str, str] = {   # operator -> family, in the order they run
    "kernel_blur": "blur", "resize": "blur", "noise": "noise", "jpeg": "compression",
    "fade": "film", "grain": "film", "dust": "film", "scratches": "film", "flicker": "film", "weave": "film",
    "sinc": "blur", "chroma_bleed": "vhs", "chroma_delay": "vhs", "tracking": "vhs", "dropouts": "vhs",
    "interlace": "vhs", "codec": "compression",
}
FAMILIES = ("blur", "noise", "compression", "film", "vhs")
_KERNELS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
_MODES = ("area", "bilinear", "bicubic")


@dataclass(frozen=True)
class Round:
    """One round of Real-ESRGAN's chain. Ranges are milder than its x4 recipe: the targets here are scale 1
    and 2, and the film and video steps add their own damage."""

    p_blur: float = 0.8
    kernel_weights: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)   # in the order of _KERNELS
    p_sinc_kernel: float = 0.1
    kernel_size: tuple[int, int] = (7, 21)
    sigma: Range = (0.2, 2.0)
    beta_generalized: Range = (0.5, 4.0)
    beta_plateau: Range = (1.0, 2.0)
    resize_weights: tuple[float, float, float] = (0.2, 0.6, 0.2)              # up, down, keep
    resize: Range = (0.5, 1.5)
    p_noise: float = 0.6
    p_gaussian: float = 0.5                                                    # else Poisson
    noise_sigma: Range = (1 / 255, 15 / 255)
    poisson_scale: Range = (0.05, 1.5)
    p_gray_noise: float = 0.4
    p_jpeg: float = 0.3
    jpeg_qscale: tuple[int, int] = (2, 12)


@dataclass(frozen=True)
class Codec:
    """The last step: a real video codec."""

    p: float = 0.9
    weights: tuple[float, float] = (0.7, 0.3)            # libx264, mpeg2video
    crf: Range = (23.0, 40.0)
    qscale: tuple[int, int] = (3, 16)
    presets: tuple[str, ...] = ("ultrafast", "veryfast", "medium")
    keyint: tuple[int, int] = (10, 50)


@dataclass(frozen=True)
class DegradeConfig:
    """Chances and ranges of the whole chain."""

    first: Round = Round()
    second: Round = Round(p_blur=0.5, sigma=(0.2, 1.2), resize=(0.6, 1.2), p_noise=0.4, noise_sigma=(1 / 255, 10 / 255),
                          poisson_scale=(0.05, 1.0), p_jpeg=0.2)
    film: footage.Film = footage.Film()
    vhs: footage.Vhs = footage.Vhs()
    p_final_sinc: float = 0.3
    codec: Codec = Codec()


@dataclass
class Fired:
    """One operator applied to one clip, with its parameters."""

    name: str
    family: str
    params: dict[str, float | str] = field(default_factory=dict)


class Degraded(NamedTuple):
    clips: torch.Tensor          # (B, T, 3, H / scale, W / scale) float in [0, 1]
    record: list[list[Fired]]    # per clip, the operators in the order they ran


def families(fired: list[Fired]) -> set[str]:
    """The families of the operators that fired on one clip."""
    return {f.family for f in fired}


class _Chain:
    def __init__(self, d: Draws, batch: int, only: Collection[str] | None, always: bool):
        self.d, self.only, self.always = d, None if only is None else set(only), always
        unknown = (self.only or set()) - set(OPERATORS) - set(FAMILIES)
        if unknown:
            raise ValueError(f"unknown operators or families {sorted(unknown)}; "
                             f"known: {', '.join(FAMILIES)}, {', '.join(OPERATORS)}")
        self.record: list[list[Fired]] = [[] for _ in range(batch)]

    def enabled(self, name: str) -> bool:
        return self.only is None or name in self.only or OPERATORS[name] in self.only

    def log(self, clips: list[int], name: str, params: dict[str, torch.Tensor | list[str] | float | str]) -> None:
        for j, b in enumerate(clips):
            values = {k: (v[j] if isinstance(v, list) else float(v[j]) if isinstance(v, torch.Tensor) else v)
                      for k, v in params.items()}
            self.record[b].append(Fired(name, OPERATORS[name], values))

    def apply(self, x: torch.Tensor, name: str, p: float,
              op: Callable[[torch.Tensor], tuple[torch.Tensor, dict]], **extra: float | str) -> torch.Tensor:
        """Run ``op`` on the clips it fires on (chance ``p`` each), clamp, and record it."""
        hit = torch.rand(x.shape[0], generator=self.d.cpu) < p
        if not self.enabled(name):
            return x
        if self.always:
            hit[:] = True
        idx = hit.nonzero().squeeze(1)
        if idx.numel() == 0:
            return x
        out, params = op(x[idx.to(x.device)])
        self.log(idx.tolist(), name, {**params, **extra})
        return x.index_copy(0, idx.to(x.device), out.clamp(0, 1).to(x.dtype))


def _blur(x: torch.Tensor, r: Round, d: Draws) -> tuple[torch.Tensor, dict]:
    n, t, c, h, w = x.shape
    lo, hi = r.kernel_size
    size = d.integers(lo // 2, hi // 2, n) * 2 + 1
    choice = d.choice(r.kernel_weights, n)
    sinc = d.chance(r.p_sinc_kernel, n)
    aniso = choice % 2 == 1
    family = choice // 2                                             # gaussian, generalized, plateau
    sx = d.uniform(r.sigma, n)
    sy = torch.where(aniso, d.uniform(r.sigma, n), sx)
    theta = torch.where(aniso, d.uniform((-math.pi, math.pi), n), 0.0)
    beta = torch.where(family == 1, d.uniform(r.beta_generalized, n), d.uniform(r.beta_plateau, n))
    omega = torch.where(size < 13, d.uniform((math.pi / 3, math.pi), n), d.uniform((math.pi / 5, math.pi), n))
    kind = torch.where(sinc, 3, family)
    # the optics drift a little from frame to frame
    j = d.jitter(torch.ones(n, device=x.device), t, 0.05)
    k = kernels(*(v.repeat_interleave(t) for v in (kind, size)), (sx[:, None] * j).reshape(-1),
                (sy[:, None] * j).reshape(-1), *(v.repeat_interleave(t) for v in (theta, beta, omega)), hi)
    out = filter2d(x.reshape(n * t, c, h, w), k).reshape(x.shape)
    names = [("sinc" if s else _KERNELS[int(i)]) for s, i in zip(sinc.tolist(), choice.tolist())]
    return out, {"kernel": names, "size": size, "sigma_x": sx, "sigma_y": sy}


def _noise(x: torch.Tensor, r: Round, d: Draws) -> tuple[torch.Tensor, dict]:
    """Gaussian noise, or Poisson (shot) noise through its Gaussian approximation (variance = the count at
    255 levels, times ``scale``; exact enough above the darkest levels, 10x faster than ``torch.poisson``);
    colour or grey (the same noise on the three channels)."""
    n, t = x.shape[:2]
    gaussian = d.chance(r.p_gaussian, n)
    gray = d.chance(r.p_gray_noise, n).view(-1, 1, 1, 1, 1)
    sigma = d.uniform(r.noise_sigma, n)
    scale = d.uniform(r.poisson_scale, n)
    noise = d.randn_field(*x.shape)
    noise = torch.where(gray, noise[:, :, :1], noise)
    shot = torch.where(gray, footage.luma(x), x).clamp(0, 1).div(255).sqrt() * scale.view(-1, 1, 1, 1, 1)
    sd = d.jitter(sigma, t, 0.1).view(n, t, 1, 1, 1)
    amp = torch.where(gaussian.view(-1, 1, 1, 1, 1), sd, shot)
    kind = ["gaussian" if b else "poisson" for b in gaussian.tolist()]
    level = torch.where(gaussian, sigma * 255, scale)
    return x + amp * noise, {"kind": kind, "level": level, "gray": gray.flatten().float()}


def _jpeg(x: torch.Tensor, r: Round, d: Draws) -> tuple[torch.Tensor, dict]:
    q = d.integers(*r.jpeg_qscale, x.shape[0])
    return torch.stack([codec.jpeg(clip, int(qi)) for clip, qi in zip(x, q.tolist())]), {"qscale": q}


def _sinc(x: torch.Tensor, d: Draws) -> tuple[torch.Tensor, dict]:
    n, t, c, h, w = x.shape
    omega = d.uniform((math.pi / 3, math.pi), n)
    ones = torch.ones(n, device=x.device)
    k = kernels(torch.full((n,), 3, device=x.device), ones * 21, ones, ones, 0 * ones, ones, omega, 21)
    return filter2d(x.reshape(n, t * c, h, w), k).reshape(x.shape), {"omega": omega}


def _codec(x: torch.Tensor, c: Codec, d: Draws) -> tuple[torch.Tensor, dict]:
    n = x.shape[0]
    which = d.choice(c.weights, n).tolist()
    crf, q = d.uniform(c.crf, n), d.integers(*c.qscale, n)
    preset, keyint = d.choice((1.0,) * len(c.presets), n).tolist(), d.integers(*c.keyint, n)
    out, names, presets = [], [], []
    for i in range(n):
        name = codec.VIDEO_CODECS[which[i]]
        out.append(codec.video(x[i], name, crf=float(crf[i]), qscale=int(q[i]), keyint=int(keyint[i]),
                               preset=c.presets[preset[i]]))
        names.append(name)
        presets.append(c.presets[preset[i]] if which[i] == 0 else "-")
    level = torch.where(torch.tensor(which, device=crf.device) == 0, crf, q.float())
    return torch.stack(out), {"codec": names, "level": level, "preset": presets}


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    b, t, c = x.shape[:3]
    flat = x.reshape(b * t, c, *x.shape[-2:])
    out = F.interpolate(flat, size=size, mode=mode) if mode == "area" else \
        F.interpolate(flat, size=size, mode=mode, align_corners=False)
    return out.reshape(b, t, c, *size).clamp(0, 1)


def _random_resize(x: torch.Tensor, r: Round, chain: _Chain, round_: int) -> torch.Tensor:
    """One factor and mode for the whole batch (Real-ESRGAN does the same), so the clips keep one size."""
    d = chain.d
    way = int(d.choice(r.resize_weights, 1))
    factor = float(d.uniform((1.0, r.resize[1]) if way == 0 else (r.resize[0], 1.0), 1))
    mode = _MODES[int(d.integers(0, 2, 1))]
    if not chain.enabled("resize") or (way == 2 and not chain.always):
        return x
    h, w = x.shape[-2:]
    size = (max(8, round(h * factor)), max(8, round(w * factor)))
    chain.log(list(range(x.shape[0])), "resize", {"factor": factor, "mode": mode, "round": round_})
    return _resize(x, size, mode)


def degrade(clean: torch.Tensor, scale: int = 1, generator: torch.Generator | None = None,
            config: DegradeConfig = DegradeConfig(), only: Collection[str] | None = None,
            always: bool = False) -> Degraded:
    """Degrade clips ``clean`` (B, T, 3, H, W) float in [0, 1]; H and W divisible by ``scale`` (1 or 2).

    ``generator`` (a CPU ``torch.Generator``) makes it repeatable. ``only`` limits the chain to these
    operators or families (``OPERATORS``, ``FAMILIES``); ``always`` makes every allowed operator fire
    (to show one family alone). Returns the clips (B, T, 3, H / scale, W / scale) and their record."""
    if clean.ndim != 5 or clean.shape[2] != 3:
        raise ValueError(f"expected clips (B, T, 3, H, W), got {tuple(clean.shape)}")
    h, w = clean.shape[-2:]
    if scale not in (1, 2) or h % scale or w % scale:
        raise ValueError(f"scale must be 1 or 2 and divide the size {w}x{h}; got {scale}")
    d = Draws(generator, clean.device)
    chain = _Chain(d, clean.shape[0], only, always)
    x = clean.float().clamp(0, 1)
    cfg = config
    for i, r in ((1, cfg.first), (2, cfg.second)):
        x = chain.apply(x, "kernel_blur", r.p_blur, lambda v: _blur(v, r, d), round=i)
        x = _random_resize(x, r, chain, i)
        x = chain.apply(x, "noise", r.p_noise, lambda v: _noise(v, r, d), round=i)
        if i == 1:
            x = chain.apply(x, "jpeg", r.p_jpeg, lambda v: _jpeg(v, r, d), round=i)
            for name in ("fade", "grain", "dust", "scratches", "flicker", "weave"):
                op = getattr(footage, name)
                x = chain.apply(x, name, getattr(cfg.film, f"p_{name}"), lambda v: op(v, cfg.film, d))
    target = (h // scale, w // scale)
    if x.shape[-2:] != target:
        mode = _MODES[int(d.integers(0, 2, 1))]
        chain.log(list(range(x.shape[0])), "resize", {"factor": target[0] / x.shape[-2], "mode": mode, "round": 3})
        x = _resize(x, target, mode)
    x = chain.apply(x, "sinc", cfg.p_final_sinc, lambda v: _sinc(v, d))
    for name in ("chroma_bleed", "chroma_delay", "tracking", "dropouts", "interlace"):
        op = getattr(footage, name)
        x = chain.apply(x, name, getattr(cfg.vhs, f"p_{name}"), lambda v: op(v, cfg.vhs, d))
    x = chain.apply(x, "jpeg", cfg.second.p_jpeg, lambda v: _jpeg(v, cfg.second, d), round=2)
    x = chain.apply(x, "codec", cfg.codec.p, lambda v: _codec(v, cfg.codec, d))
    return Degraded(x.to(clean.dtype) if clean.is_floating_point() else x, chain.record)


def pan_zoom_clip(image: torch.Tensor, frames: int, size: tuple[int, int], generator: torch.Generator | None = None,
                  zoom: Range = (1.0, 1.3), speed: float = 0.004, zoom_rate: float = 0.003) -> torch.Tensor:
    """A clip (T, 3, h, w) from a still ``image`` (3, H, W) float: a slow, steady pan and zoom, as a camera
    moving over a photo. ``size`` is (h, w); ``zoom`` bounds the zoom (1 = the largest crop of the output's
    shape); the centre moves at most ``speed`` of the image's size a frame and the zoom changes at most by
    ``zoom_rate`` a frame. JPEG photos are best downscaled x2 first, to hide their own compression."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    _, hi, wi = image.shape
    h, w = size

    def u(lo: float, top: float) -> float:
        return lo + (top - lo) * float(torch.rand((), generator=g))

    fit_x, fit_y = min(1.0, (w / h) / (wi / hi)), min(1.0, (wi / hi) / (w / h))   # half-extents, [-1, 1] coords
    pitch = fit_x * wi / (zoom[0] * w)                       # image px per output px at the widest crop
    if pitch > 1.25:                                         # downscale first (antialiased): no aliasing
        image = F.interpolate(image[None].float(), scale_factor=1.25 / pitch, mode="bilinear", antialias=True,
                              align_corners=False)[0]
    steps = torch.arange(frames, dtype=torch.float32)
    z = (u(*zoom) * torch.exp(u(-zoom_rate, zoom_rate) * steps)).clamp(*zoom)
    angle, v = u(-math.pi, math.pi), 2 * u(0.0, speed)       # 2: the image spans [-1, 1]
    theta = torch.zeros(frames, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = fit_x / z, fit_y / z
    for i, (c, room) in enumerate(((math.cos(angle), 1 - theta[0, 0, 0]), (math.sin(angle), 1 - theta[0, 1, 1]))):
        start = u(-float(room), float(room))
        # keep the window inside the image whatever the zoom
        theta[:, i, 2] = torch.minimum(torch.maximum(start + c * v * steps, -(1 - theta[:, i, i])), 1 - theta[:, i, i])
    grid = F.affine_grid(theta.to(image.device), [frames, 3, h, w], align_corners=False)
    src = image.float().expand(frames, -1, -1, -1)
    return F.grid_sample(src, grid, mode="bicubic", padding_mode="border", align_corners=False).clamp(0, 1)
