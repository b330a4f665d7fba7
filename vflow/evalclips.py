"""Evaluation clips with known truth, made from the shared material, for the classical stages.

Each clip is what a stage is shown (``frames``) beside what a perfect stage returns (``truth``), with the
hard cuts it holds and its gradual transitions (dissolves), all known by construction. Kinds
(:data:`KINDS`):

- ``cuts``: shots cut together from different clips and photos (pans and zooms, some fast), with
  distractors that are not cuts: flashes, fast motion, fades through black and dissolves;
- ``action``: hard cuts between shots full of fast action: whip pans, and things passing close to the lens
  (another picture, soft-edged and motion-blurred, sweeping across most of the frame in 3-6 frames);
- ``light``: one shot with a real brightness change (a fade to or from black, a light switched on or off):
  the truth is the clip itself, which a deflicker must leave alone;
- ``flicker``: a shot, sometimes with a real brightness change too, under per-frame flicker; the truth is
  the unflickered clip;
- ``exposure``: clean, well-exposed shots, as they are or graded as a night scene or with a deliberate warm
  cast: the truth is the clip itself, which a levels correction must leave alone;
- ``faded``: a clean shot with faded dyes, a colour cast and lifted blacks; the truth is the clean shot;
- ``oldfilm``: the old-footage mix (grain, dust, scratches, flicker, soft optics, then a real H.264 pass).

Two parts that share nothing: ``tune`` (seeds from :data:`TUNE_SEED` on, the files that training uses) for
choosing settings, and ``check`` (seeds from :data:`CHECK_SEED` on, the files held out of training,
:data:`CHECK_FILES`) for the figures reported. A clip is a pure function of (kind, part, index).
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from .pipeline.frames import BT601, FrameBatch, VideoInfo
from .pipeline.stage import StageContext, iter_results
from .train.data import IMAGE_EXT, frame_count, load_image, read_window
from .train.degrade import degrade, pan_zoom_clip
from .train.draws import Draws
from .train.footage import Film, fade

Part = Literal["tune", "check"]
TUNE_SEED, CHECK_SEED = 31_000_000, 47_000_000
VIDEOS = ("video/clean_nocut_caminandes_640x360.mp4", "video/clean_scenecut_tears_of_steel_640x360.mp4",
          "video/clean_openh264_flower_1280x720_300f.h264")
IMAGES = ("images/documerica", "images/fsa_owi", "images/kodak")
# the validation split of configs/film1x.yaml: held out of training, and of tuning here
CHECK_FILES = ("video/clean_nocut_caminandes_640x360.mp4", "images/kodak/kodim03.png", "images/kodak/kodim13.png",
               "images/kodak/kodim21.png", "images/documerica/542968.jpg", "images/documerica/545563.jpg",
               "images/documerica/549601.jpg", "images/fsa_owi/LC-USF33-006507.jpg",
               "images/fsa_owi/LC-USF34-018841.jpg", "images/fsa_owi/LC-USF34-037715.jpg")
OLDFILM = ("grain", "dust", "scratches", "flicker", "kernel_blur", "codec")


@dataclass(frozen=True)
class EvalClip:
    """One clip: ``frames`` (T, H, W, 3) uint8 as a stage sees them, ``truth`` the same shape, ``cuts`` the
    first frames of new shots (hard cuts), ``gradual`` the (first, last) frames of dissolves and fades
    between shots, where a detection is neither right nor wrong."""

    name: str
    frames: np.ndarray
    truth: np.ndarray
    fps: int = 24
    cuts: tuple[int, ...] = ()
    gradual: tuple[tuple[int, int], ...] = ()
    params: dict[str, float | str] = field(default_factory=dict)


@dataclass
class _Files:
    videos: list[Path]
    images: list[Path]
    cuts: dict[Path, list[int]]


def files(root: Path, part: Part) -> _Files:
    """The clean videos and photos of one part, with the known cuts of the videos (read once per process)."""
    if part not in ("tune", "check"):
        raise ValueError(f"part must be 'tune' or 'check', not {part!r}")
    return _files(Path(root).resolve(), part)


@functools.lru_cache(maxsize=4)
def _files(root: Path, part: Part) -> _Files:
    held = {(root / f).resolve() for f in CHECK_FILES}
    videos = [(root / v).resolve() for v in VIDEOS]
    images: list[Path] = []
    for d in IMAGES:
        images += sorted(p.resolve() for p in (root / d).iterdir() if p.suffix.lower() in IMAGE_EXT)
    keep = (lambda p: p in held) if part == "check" else (lambda p: p not in held)
    known = json.loads((root / "cuts.json").read_text())["clips"]
    cuts = {(root / k).resolve(): v["hard_cuts"] for k, v in known.items()}
    return _Files([v for v in videos if keep(v)], [i for i in images if keep(i)], cuts)


def _shot(src: _Files, rng: random.Random, g: torch.Generator, size: tuple[int, int], frames: int,
          fast: bool = False) -> tuple[torch.Tensor, list[int]]:
    """A clean clip (T, 3, h, w) float and the cuts inside it (a video window may cross the video's own)."""
    h, w = size
    if src.videos and rng.random() < 0.4:
        path = rng.choice(src.videos)
        n = frame_count(path)
        start = rng.randrange(max(1, n - frames))
        clip = read_window(path, start, frames).float() / 255
        ch, cw = clip.shape[-2:]
        scale = max(h / ch, w / cw) * rng.uniform(1.0, 1.5)
        clip = F.interpolate(clip, scale_factor=scale, mode="bilinear", antialias=True, align_corners=False)
        y, x = rng.randrange(clip.shape[-2] - h + 1), rng.randrange(clip.shape[-1] - w + 1)
        inside = [c - start for c in src.cuts.get(path, []) if start < c < start + frames]
        return clip[..., y : y + h, x : x + w].clamp(0, 1), inside
    img = _photo(rng.choice(src.images))
    speed = rng.uniform(0.02, 0.05) if fast else rng.uniform(0.0, 0.006)
    return pan_zoom_clip(img, frames, size, g, speed=speed), []


@functools.lru_cache(maxsize=32)
def _photo(path: Path) -> torch.Tensor:
    """A photo (3, H, W) float, at most 720 px on its short side: plenty for clips of a few hundred pixels."""
    img = load_image(path)
    short = min(img.shape[-2:])
    if short > 720:
        img = F.interpolate(img[None], scale_factor=720 / short, mode="bilinear", antialias=True,
                            align_corners=False)[0].clamp(0, 1)
    return img


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(..., 3, H, W) float in [0, 1] -> (..., H, W, 3) uint8, rounded to nearest: frames as a file holds them."""
    return x.clamp(0, 1).mul(255).round().to(torch.uint8).movedim(-3, -1).contiguous().numpy()


def _ramp(n: int, up: bool) -> torch.Tensor:
    r = torch.linspace(0, 1, n + 2)[1:-1]
    return r if up else r.flip(0)


def make(kind: str, part: Part, index: int, root: Path, size: tuple[int, int] = (144, 256)) -> EvalClip:
    """Clip ``index`` of ``kind`` in ``part``."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    base = TUNE_SEED if part == "tune" else CHECK_SEED
    rng = random.Random(f"{base + index}/{kind}")
    g = torch.Generator().manual_seed(rng.getrandbits(63))
    src = files(root, part)
    return _MAKERS[kind](src, rng, g, size, f"{kind}/{part}/{index}")


def _cuts(src: _Files, rng: random.Random, g: torch.Generator, size: tuple[int, int], name: str) -> EvalClip:
    shots: list[torch.Tensor] = []
    cuts: list[int] = []
    gradual: list[tuple[int, int]] = []
    at = free = 0                                 # frames so far; the last shot's frames in no transition
    for _ in range(rng.randint(3, 7)):
        n = rng.randint(12, 40)
        clip, inside = _shot(src, rng, g, size, n, fast=rng.random() < 0.25)
        if rng.random() < 0.25:                    # a photographer's flash or a lightning: 1-2 bright frames
            k, t = rng.randint(1, 2), rng.randrange(2, n - 3)
            clip[t : t + k] = (clip[t : t + k] * rng.uniform(1.6, 2.5) + 0.1).clamp(0, 1)
        used = 0                                   # this shot's first frames taken by the transition in
        join = rng.choice(("cut", "cut", "cut", "dissolve", "black")) if shots else "none"
        k = min(rng.randint(6, 14), free - 2, n // 2 - 1)
        if join != "cut" and k < 3:
            join = "cut" if shots else "none"
        if join == "dissolve":                     # the last shot's last k frames blend into this one's first k
            a = _ramp(k, up=True).view(-1, 1, 1, 1)
            shots[-1][-k:] = (1 - a) * shots[-1][-k:] + a * clip[:k]
            clip, inside = clip[k:], [c - k for c in inside if c > k]
            gradual.append((at - k, at - 1))
        elif join == "black":                      # fade out through black and in again: not a hard cut
            shots[-1][-k:] *= _ramp(k, up=False).view(-1, 1, 1, 1)
            clip[:k] *= _ramp(k, up=True).view(-1, 1, 1, 1)
            gradual.append((at - k, at + k - 1))
            used = k
        elif join == "cut":
            cuts.append(at)
        cuts += [at + c for c in inside if c >= used]   # a shot's own cuts, unless blended into a transition
        shots.append(clip)
        at += len(clip)
        free = len(clip) - used
    frames = to_uint8(torch.cat(shots))
    cuts = [c for c in cuts if not any(a <= c <= b for a, b in gradual)]   # a shot's own cut, blended away
    return EvalClip(name, frames, frames, cuts=tuple(sorted(cuts)), gradual=tuple(gradual))


def _passer(clip: torch.Tensor, cover: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Something passing close to the lens inside a shot (a body, a car): ``cover`` (3, h, w'), soft-edged and
    blurred along its motion, sweeps across the frame in a few frames, hiding most of it midway."""
    n, _, h, w = clip.shape
    k = rng.randint(3, 6)
    t0 = rng.randrange(1, max(2, n - k - 1))
    cw = cover.shape[-1]
    ramp = torch.linspace(0, 1, cw)
    alpha = (torch.minimum(ramp, 1 - ramp) * 8).clamp(0, 1).view(1, 1, cw)       # soft left and right edges
    out = clip.clone()
    right = rng.random() < 0.5
    for i in range(k):
        x = int(-cw + (w + cw) * (i + 0.5) / k)
        x = w - cw - x if right else x
        a, b = max(0, x), min(w, x + cw)
        if a < b:
            patch, m = cover[:, :, a - x : b - x], alpha[:, :, a - x : b - x]
            out[t0 + i, :, :, a:b] = m * patch + (1 - m) * out[t0 + i, :, :, a:b]
    return out


def _action(src: _Files, rng: random.Random, g: torch.Generator, size: tuple[int, int], name: str) -> EvalClip:
    """Hard cuts between shots full of fast action: whip pans, and things passing close to the lens."""
    h, w = size
    shots, cuts, at = [], [], 0
    for i in range(rng.randint(3, 7)):
        n = rng.randint(12, 40)
        clip, inside = _shot(src, rng, g, size, n, fast=rng.random() < 0.5)
        for _ in range(rng.randint(1, 2)):
            other, _ = _shot(src, rng, g, size, 1)
            width = int(w * rng.uniform(0.5, 1.1))
            cover = F.interpolate(other[:, :, :, : max(1, min(w, width))], size=(h, width), mode="bilinear",
                                  align_corners=False)[0]
            cover = F.avg_pool2d(cover[None], (1, 9), 1, (0, 4), count_include_pad=False)[0]   # motion blur
            clip = _passer(clip, cover * rng.uniform(0.3, 1.0), rng)
        if i:
            cuts.append(at)
        cuts += [at + c for c in inside]
        shots.append(clip)
        at += n
    frames = to_uint8(torch.cat(shots))
    return EvalClip(name, frames, frames, cuts=tuple(sorted(cuts)))


def _light_change(clip: torch.Tensor, rng: random.Random) -> tuple[torch.Tensor, str]:
    """A real brightness change in a shot: a fade to or from black, or a light switched on or off."""
    n = len(clip)
    what = rng.choice(("fade_out", "fade_in", "light_on", "light_off"))
    if what.startswith("fade"):
        k = rng.randint(n // 3, n - 4)             # about a second at 24 fps
        ramp = torch.ones(n)
        if what == "fade_out":
            ramp[n - k :] = _ramp(k, up=False)
        else:
            ramp[:k] = _ramp(k, up=True)
        return clip * ramp.view(-1, 1, 1, 1), what
    t, k, gain = rng.randrange(n // 4, 3 * n // 4), rng.randint(1, 3), rng.uniform(1.4, 2.2)
    ramp = torch.ones(n)
    ramp[t : t + k] = torch.linspace(1, gain, k + 1)[1:]
    ramp[t + k :] = gain
    if what == "light_off":
        ramp = ramp.flip(0)
    return (clip * ramp.view(-1, 1, 1, 1) / gain).clamp(0, 1), what


def _light(src: _Files, rng: random.Random, g: torch.Generator, size: tuple[int, int], name: str) -> EvalClip:
    clip, inside = _shot(src, rng, g, size, rng.randint(36, 60))
    clip, what = _light_change(clip, rng)
    frames = to_uint8(clip)
    return EvalClip(name, frames, frames, cuts=tuple(inside), params={"change": what})


def _flicker(src: _Files, rng: random.Random, g: torch.Generator, size: tuple[int, int], name: str) -> EvalClip:
    clip, inside = _shot(src, rng, g, size, rng.randint(36, 60))
    what = "none"
    if rng.random() < 0.5:
        clip, what = _light_change(clip, rng)
    amp = rng.uniform(0.03, 0.12)
    gains = 1 + amp * torch.randn(len(clip), generator=g).clamp(-2.5, 2.5)
    flickered = (clip * gains.view(-1, 1, 1, 1)).clamp(0, 1)
    return EvalClip(name, to_uint8(flickered), to_uint8(clip), cuts=tuple(inside),
                    params={"flicker": amp, "change": what})


def _exposure(src: _Files, rng: random.Random, g: torch.Generator, size: tuple[int, int], name: str) -> EvalClip:
    clip, inside = _shot(src, rng, g, size, rng.randint(12, 24))
    grade = rng.choice(("as_is", "as_is", "night", "warm"))
    if grade == "night":                           # a dark scene: low whites, deep blacks
        clip = clip.pow(rng.uniform(1.2, 1.8)) * rng.uniform(0.3, 0.6)
    elif grade == "warm":                          # candle or sunset light, kept on purpose
        clip = clip * torch.tensor([1.0, rng.uniform(0.82, 0.92), rng.uniform(0.6, 0.78)]).view(1, 3, 1, 1)
    frames = to_uint8(clip)
    return EvalClip(name, frames, frames, cuts=tuple(inside), params={"grade": grade})


def _faded(src: _Files, rng: random.Random, g: torch.Generator, size: tuple[int, int], name: str) -> EvalClip:
    clip, inside = _shot(src, rng, g, size, rng.randint(12, 24))
    cfg = Film(lift=(0.03, 0.2))
    out, params = fade(clip[None], cfg, Draws(g, clip.device))
    return EvalClip(name, to_uint8(out[0]), to_uint8(clip), cuts=tuple(inside),
                    params={k: float(v[0]) for k, v in params.items()})


def _oldfilm(src: _Files, rng: random.Random, g: torch.Generator, size: tuple[int, int], name: str) -> EvalClip:
    clip, inside = _shot(src, rng, g, size, rng.randint(16, 32))
    out = degrade(clip[None], 1, g, only=OLDFILM, always=True).clips[0]
    return EvalClip(name, to_uint8(out), to_uint8(clip), cuts=tuple(inside))


_MAKERS = {"cuts": _cuts, "action": _action, "light": _light, "flicker": _flicker, "exposure": _exposure,
           "faded": _faded, "oldfilm": _oldfilm}
KINDS = tuple(_MAKERS)


def clips(kind: str, part: Part, count: int, root: Path, size: tuple[int, int] = (144, 256),
          first: int = 0) -> list[EvalClip]:
    """``count`` clips of ``kind`` in ``part``, from index ``first`` on."""
    return [make(kind, part, i, root, size) for i in range(first, first + count)]


def clip_psnr(a: np.ndarray, b: np.ndarray, cap: float = 99.99) -> float:
    """PSNR (dB) over a whole clip, uint8 levels; ``cap`` where the clips are (nearly) equal."""
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return min(cap, 10 * math.log10(255**2 / mse)) if mse else cap


def luma_means(frames: np.ndarray) -> np.ndarray:
    """The mean BT.601 luma of each frame of (T, H, W, 3) uint8."""
    return (frames.reshape(len(frames), -1, 3).astype(np.float64) @ np.array(BT601)).mean(1)


def flicker_jitter(frames: np.ndarray, truth: np.ndarray) -> float:
    """What flicker is: the mean frame-to-frame change of the mean-luma error against the truth."""
    return float(np.abs(np.diff(luma_means(frames) - luma_means(truth))).mean())


def match_cuts(found: Sequence[int], truth: Sequence[int], ignore: Sequence[tuple[int, int]] = (),
               tolerance: int = 1) -> tuple[int, int, int]:
    """(hits, misses, false cuts): a detection within ``tolerance`` frames of an unused true cut is a hit;
    detections inside an ``ignore`` range (a dissolve, a fade; widened by ``tolerance``) count neither way."""
    found = [f for f in found if not any(a - tolerance <= f <= b + tolerance for a, b in ignore)]
    unused, hits = set(truth), 0
    for t in found:
        match = next((u for u in sorted(unused) if abs(u - t) <= tolerance), None)
        if match is not None:
            unused.discard(match)
            hits += 1
    return hits, len(truth) - hits, len(found) - hits


def scene_ids(clip: EvalClip) -> np.ndarray:
    """The shot index of every frame, from the known cuts."""
    ids = np.zeros(len(clip.frames), np.int64)
    for c in clip.cuts:
        ids[c:] += 1
    return ids


def run_stage(stage: Any, clip: EvalClip, batch: int = 8) -> np.ndarray:
    """``stage`` (built, not set up) over the clip's frames in batches, with the known shots as scene ids;
    the frames it returns, (T, H, W, 3) uint8."""
    t, h, w, _ = clip.frames.shape
    info = VideoInfo(width=w, height=h, time_base=Fraction(1, clip.fps), frame_rate=Fraction(clip.fps), frames=t)
    stage.setup(StageContext(name="eval", inputs={"video": info}, connected_outputs=frozenset({"video"})))
    ids, out = torch.from_numpy(scene_ids(clip)), []
    for s in range(0, t, batch):
        b = FrameBatch(frames=torch.from_numpy(np.ascontiguousarray(clip.frames[s : s + batch])),
                       pts=torch.arange(s, min(t, s + batch)), time_base=Fraction(1, clip.fps),
                       scene=ids[s : s + batch])
        out += [r.frames for r in iter_results(stage.process(b))]
    out += [r.frames for r in iter_results(stage.finish())]
    return torch.cat(out).numpy()
