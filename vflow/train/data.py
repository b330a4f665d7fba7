"""Training data: clean clips streamed from the clean videos and the photo sets, degraded on the fly.

Every batch is a pure function of ``(seed, batch index)``: it picks its sources, windows, crops and the
degradation from generators seeded by both, so a run is repeatable, any number of DataLoader workers gives
the same stream, and resuming needs only the index of the next batch (the data position). Nothing is loaded
ahead: a video is decoded from its start up to a random window of ``frames`` frames, a photo is decoded
(JPEGs downscaled x2 to hide their own compression), cropped and turned into a slow pan/zoom clip.

Validation is its own split: files named in the config are held out of training entirely, and the validation
batches are drawn from them with their own seed, once.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import IterableDataset, get_worker_info

from ..media.color import color_of, to_rgb
from ..media.probe import read_image
from ..models.film import window_indices
from .degrade import FAMILIES, degrade, pan_zoom_clip

VIDEO_EXT = {".mp4", ".mkv", ".mov", ".y4m", ".h264", ".264", ".avi", ".webm"}
IMAGE_EXT = {".jpg", ".jpeg", ".png"}
CUT = 0.12          # mean absolute difference of consecutive frames taken as a scene cut


@dataclass(frozen=True)
class DataConfig:
    """Where the clean data is and how batches are drawn. Paths are relative to ``root``; a directory in
    ``videos``/``images`` means its files; ``val`` files are held out of training."""

    root: Path
    videos: Sequence[str] = ()
    images: Sequence[str] = ()
    val: Sequence[str] = ()
    frames: int = 5
    scale: int = 1
    patch: tuple[int, int] = (96, 128)       # side drawn per batch, in steps of 16 (or one value)
    batch: int = 8
    video_fraction: float = 0.5              # chance a clip comes from a video (when both kinds exist)
    seed: int = 0
    val_clips: int = 16
    val_patch: int = 128
    val_seed: int = 1_000_003
    degrade_only: Sequence[str] | None = None   # limit the chain (operators or families), e.g. for tests
    p_clean: float = 0.0                     # share of clips left as they are: the net learns to do no harm
    p_single: float = 0.0                    # share degraded by one family alone (drawn evenly), not the mix
    pre: str = ""                            # "denoise": the net sees clips after temporal_smooth's denoise, as
                                             # restore_full feeds it (and 8-bit, as a file holds them)

    def __post_init__(self) -> None:
        if self.pre not in ("", "denoise"):
            raise ValueError(f"data.pre must be '' or 'denoise', not {self.pre!r}")


@dataclass
class Sources:
    """The files of one split."""

    videos: list[Path] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)


def _expand(root: Path, names: Sequence[str], exts: set[str]) -> list[Path]:
    out: list[Path] = []
    for name in names:
        p = (root / name).resolve()
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower() in exts)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"training data: {p} does not exist")
    return out


def splits(cfg: DataConfig) -> tuple[Sources, Sources]:
    """(train, validation) files. Validation files never appear in training."""
    videos, images = _expand(cfg.root, cfg.videos, VIDEO_EXT), _expand(cfg.root, cfg.images, IMAGE_EXT)
    held = {(cfg.root / v).resolve() for v in cfg.val}
    missing = held - set(videos) - set(images)
    if missing:
        raise FileNotFoundError(f"validation files not among the data: {', '.join(map(str, sorted(missing)))}")
    train = Sources([v for v in videos if v not in held], [i for i in images if i not in held])
    val = Sources([v for v in videos if v in held], [i for i in images if i in held])
    if not (train.videos or train.images) or not (val.videos or val.images):
        raise ValueError("training data: both the training and the validation split need at least one file")
    return train, val


_DECODED: dict[Path, list[av.VideoFrame]] = {}


def decoded(path: Path) -> list[av.VideoFrame]:
    """Every frame of a training video, decoded once per process and kept as the decoder's own YUV frames
    (a 300-frame 720p clip is about 400 MB): the same frames as decoding from the start each time (exact
    and repeatable for any container, even raw streams without timestamps), without the cost."""
    if path not in _DECODED:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.thread_count = 1
            _DECODED[path] = list(c.decode(s))
        if not _DECODED[path]:
            raise ValueError(f"training data: {path} has no video frames")
    return _DECODED[path]


def frame_count(path: Path) -> int:
    return len(decoded(path))


def read_window(path: Path, start: int, frames: int, stride: int = 1) -> torch.Tensor:
    """Frames ``start, start + stride, ...`` (``frames`` of them) of a video as (T, 3, H, W) uint8 (a short
    file repeats its last frame)."""
    all_frames = decoded(path)
    picked = [all_frames[min(i, len(all_frames) - 1)] for i in range(start, start + stride * frames, stride)]
    return torch.stack([torch.from_numpy(to_rgb(f, color_of(f))).permute(2, 0, 1) for f in picked])


def load_image(path: Path) -> torch.Tensor:
    """A photo as (3, H, W) float in [0, 1]; JPEGs downscaled x2 (antialiased)."""
    img = read_image(path, "training photo").permute(2, 0, 1).float() / 255
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img = F.interpolate(img[None], scale_factor=0.5, mode="bilinear", antialias=True, align_corners=False)[0]
    return img.clamp(0, 1)


def _video_clip(path: Path, size: int, frames: int, rng: random.Random) -> torch.Tensor:
    n = frame_count(path)
    # every other clip skips frames (2 to 4 apart): motion as fast as hand-held film, cartoons on twos or a
    # low frame rate, so the net learns to leave neighbours out where they do not line up (no ghosts)
    stride = rng.choice((1, 1, 1, 2, 3, 4))
    span = stride * (frames - 1) + 1
    clip = read_window(path, rng.randrange(max(1, n - span + 1)), frames, stride)
    h, w = clip.shape[-2:]
    # a random zoom out (down to half size) where the frame allows: more scene in a patch, less blur
    lo = max(size / min(h, w), 0.5)
    crop = min(min(h, w), round(size / rng.uniform(min(lo, 1.0), 1.0)))
    y, x = rng.randrange(h - crop + 1), rng.randrange(w - crop + 1)
    clip = clip[..., y : y + crop, x : x + crop].float() / 255
    if crop != size:
        clip = F.interpolate(clip, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    diffs = (clip[1:] - clip[:-1]).abs().mean((1, 2, 3))
    scene = [0] + torch.cumsum((diffs > CUT).long(), 0).tolist()
    return clip[window_indices(frames, frames // 2, frames, scene)]     # never mix shots around the centre


def _photo_clip(path: Path, size: int, frames: int, rng: random.Random, g: torch.Generator) -> torch.Tensor:
    img = load_image(path)
    h, w = img.shape[-2:]
    crop = min(h, w, round(size * rng.uniform(1.0, 1.6)))
    y, x = rng.randrange(h - crop + 1), rng.randrange(w - crop + 1)
    fast = rng.random() < 0.25                    # a quick pan now and then: neighbours that do not line up
    return pan_zoom_clip(img[:, y : y + crop, x : x + crop], frames, (size, size), g,
                         speed=0.06 if fast else 0.004)


def clean_batch(src: Sources, cfg: DataConfig, rng: random.Random, g: torch.Generator, size: int,
                clips: int) -> torch.Tensor:
    """``clips`` clean clips (B, T, 3, size, size) from the files of one split."""
    out = []
    for _ in range(clips):
        video = bool(src.videos) and (not src.images or rng.random() < cfg.video_fraction)
        clip = (_video_clip(rng.choice(src.videos), size, cfg.frames, rng) if video
                else _photo_clip(rng.choice(src.images), size, cfg.frames, rng, g))
        out.append(clip.flip(-1) if rng.random() < 0.5 else clip)
    return torch.stack(out).clamp(0, 1)


def make_batch(src: Sources, cfg: DataConfig, seed: int, index: int, size: int | None = None,
               clips: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``index`` of the stream ``seed``: (degraded (B, T, 3, s/scale, s/scale), clean centre
    frames (B, 3, s, s)), the same for the same arguments."""
    rng = random.Random(f"{seed}/{index}")
    g = torch.Generator().manual_seed(rng.getrandbits(63))
    lo, hi = cfg.patch
    drawn = rng.choice(range(lo, hi + 1, 16)) if lo < hi else lo
    size = size or drawn
    clean = clean_batch(src, cfg, rng, g, size, clips or cfg.batch)
    degraded = degrade_mixed(clean, cfg, rng, g)
    return (presmooth(degraded) if cfg.pre == "denoise" else degraded), clean[:, cfg.frames // 2].contiguous()


def presmooth(clips: torch.Tensor) -> torch.Tensor:
    """Clips (B, T, 3, H, W) float as restore_full's model gets them: 8-bit, through the temporal denoise
    (each clip one shot)."""
    from ..kernels.temporal import TemporalDenoiser

    u8 = clips.clamp(0, 1).mul(255).round().to(torch.uint8).movedim(2, -1).numpy()
    out = np.stack([TemporalDenoiser()(np.ascontiguousarray(c), np.zeros(len(c), np.int64)) for c in u8])
    return torch.from_numpy(out).movedim(-1, 2).float().div(255)


def regime(cfg: DataConfig, rng: random.Random) -> str:
    """What one clip gets: ``mix`` (the whole chain), ``clean`` (nothing) or one family's name alone."""
    u = rng.random()
    if u < cfg.p_clean:
        return "clean"
    if u < cfg.p_clean + cfg.p_single:
        return rng.choice(FAMILIES)
    return "mix"


def degrade_mixed(clean: torch.Tensor, cfg: DataConfig, rng: random.Random, g: torch.Generator) -> torch.Tensor:
    """The clips degraded each by its :func:`regime`: a chain per group of clips that share one, in the
    order the groups first appear (one call, the plain chain, when every clip gets the mix)."""
    kinds = [regime(cfg, rng) for _ in range(len(clean))] if cfg.p_clean or cfg.p_single else ["mix"] * len(clean)
    h, w = clean.shape[-2:]
    out = clean.new_empty((*clean.shape[:3], h // cfg.scale, w // cfg.scale))
    for kind in dict.fromkeys(kinds):
        idx = torch.tensor([i for i, k in enumerate(kinds) if k == kind])
        part = clean[idx]
        if kind == "clean":
            done = part if cfg.scale == 1 else _downscale(part, cfg.scale)
        else:
            only = cfg.degrade_only if kind == "mix" else [kind]
            done = degrade(part, cfg.scale, g, only=only).clips
        out[idx] = done
    return out


def _downscale(clips: torch.Tensor, scale: int) -> torch.Tensor:
    """A clean clip at ``1/scale`` (antialiased bicubic): what a clean low-resolution source is."""
    b, t, c, h, w = clips.shape
    small = F.interpolate(clips.reshape(b * t, c, h, w), size=(h // scale, w // scale), mode="bicubic",
                          antialias=True, align_corners=False)
    return small.reshape(b, t, c, h // scale, w // scale).clamp(0, 1)


class Clips(IterableDataset):
    """The endless training stream from batch ``start`` on: already batched (use ``batch_size=None``).
    Worker ``w`` of ``k`` makes batches ``start + w, start + w + k, ...``; the DataLoader takes them in turn,
    so the order is the same for any number of workers."""

    def __init__(self, cfg: DataConfig, start: int = 0) -> None:
        self.cfg, self.start = cfg, start
        self.train = splits(cfg)[0]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        w, k = (info.id, info.num_workers) if info is not None else (0, 1)
        index = self.start + w
        while True:
            yield make_batch(self.train, self.cfg, self.cfg.seed, index)
            index += k


def validation(cfg: DataConfig, batch: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The fixed validation batches: ``val_clips`` clips of ``val_patch`` px from the held-out files, every
    one through the whole chain (the mix: comparable between runs whatever their regimes)."""
    val = splits(cfg)[1]
    cfg = dataclasses.replace(cfg, p_clean=0.0, p_single=0.0)
    n = cfg.val_clips
    return [make_batch(val, cfg, cfg.val_seed, i, cfg.val_patch, min(batch, n - i * batch))
            for i in range((n + batch - 1) // batch)]


def one_thread(_: int) -> None:
    """DataLoader ``worker_init_fn``: one torch thread per worker (two under contention were 20x slower), and
    an exit that skips C++ static destructors: at a normal exit a worker's thread pools (OpenMP, numba, x264)
    could abort it ("terminate called without an active exception"), which the DataLoader's SIGCHLD handler
    turns into an error in the training process, after its last step."""
    torch.set_num_threads(1)
    atexit.register(os._exit, 0)
