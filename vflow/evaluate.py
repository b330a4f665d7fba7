"""``vflow eval --model``: restoration methods side by side on degraded/clean clips, per degradation family.

The clips are made from the *validation* files of a training config (held out of training entirely): clean
windows of the held-out videos and slow pan/zooms over the held-out photos, degraded with
:func:`vflow.train.degrade.degrade`, one family at a time (every operator of the family firing) and as the
full random mix of the training chain (every family possible, the real codec pass last), then rounded to 8
bits as a file would be; and undegraded (``clean``: a method should leave it as it is). They are drawn with
:data:`EVAL_SEED`, a seed that no training, validation or tuning run uses: these figures are for checking
only.

A method maps degraded clips (T, H, W, 3) uint8 to restored ones of the clean size: ``input`` (nothing),
``hqdn3d`` and ``nlmeans`` (FFmpeg's filters, settings in :data:`FILTERS`, through the ``ffmpeg`` binary of
``imageio-ffmpeg``: PyAV's FFmpeg has no GPL filters), ``model:NAME`` (the restore stage with that model;
upscaling models are brought back to the clean size on the device) and ``graph:NAME`` (a whole graph run on
the clip as a lossless file, its output lossless too).
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from .evalclips import to_uint8
from .kernels.metrics import psnr, ssim
from .pipeline.frames import FrameBatch, VideoInfo
from .pipeline.stage import StageContext
from .train.data import DataConfig, clean_batch, splits
from .train.degrade import FAMILIES, degrade

EVAL_SEED = 7_000_003          # checking only: never drawn by training, validation or tuning
EVAL_CLIPS = 16   # clips per row: with 4, a row's figure depended on the sample (the mix's gain +0.5 to +2.4 dB)
MIX, CLEAN = "mix", "clean"
ROWS = (*FAMILIES, MIX, CLEAN)     # clean: the clean clip itself, where doing no harm is the best score
DEFAULT_METHODS = ("input", "hqdn3d", "nlmeans", "graph:restore_classic", "model:realesr-animevideov3",
                   "model:realesrgan-x4plus")
# hqdn3d at FFmpeg's defaults (4:3:6:4.5); nlmeans at s=3 (its default, 1, leaves 8-bit frames unchanged)
FILTERS = {"hqdn3d": "hqdn3d", "nlmeans": "nlmeans=s=3"}

Clip = np.ndarray       # (T, H, W, 3) uint8
Method = Callable[[Sequence[Clip]], list[Clip]]      # clips in, each restored, in order


@dataclass(frozen=True)
class Pair:
    """One evaluation clip: its family row, the degraded clip and the clean one, (T, H, W, 3) uint8."""

    family: str
    degraded: Clip
    clean: Clip


def eval_pairs(cfg: DataConfig, clips: int = EVAL_CLIPS, frames: int = 9, size: int = 192, rows: Sequence[str] = ROWS,
               seed: int = EVAL_SEED) -> list[Pair]:
    """``clips`` pairs per row of ``rows`` (families, ``mix``, ``clean``) from the validation files of ``cfg``."""
    val = splits(cfg)[1]
    data = dataclasses.replace(cfg, frames=frames)
    pairs = []
    for row in rows:
        if row not in ROWS:
            raise ValueError(f"unknown row {row!r}; known: {', '.join(ROWS)}")
        rng = random.Random(f"{seed}/{row}")         # by name: a row's clips do not depend on the others asked
        g = torch.Generator().manual_seed(rng.getrandbits(63))
        clean = clean_batch(val, data, rng, g, size, clips)
        if row == CLEAN:
            degraded = clean
        elif row == MIX:
            degraded = degrade(clean, 1, g).clips
        else:
            degraded = degrade(clean, 1, g, only=[row], always=True).clips
        for d, c in zip(to_uint8(degraded), to_uint8(clean)):
            pairs.append(Pair(row, d, c))
    return pairs


def ffmpeg_exe() -> str | None:
    """The ``ffmpeg`` binary of ``imageio-ffmpeg`` (it has FFmpeg's GPL filters), else one on the PATH."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return shutil.which("ffmpeg")


def _each(run: Callable[[Clip], Clip]) -> Method:
    return lambda clips: [run(c) for c in clips]


def ffmpeg_filter(vf: str) -> Method:
    """An FFmpeg video filter over a clip, raw RGB through a pipe (planar RGB inside, so no chroma loss)."""
    exe = ffmpeg_exe()
    if exe is None:
        raise FileNotFoundError("no ffmpeg binary for the FFmpeg filter baselines: pip install imageio-ffmpeg")

    def run(clip: Clip) -> Clip:
        t, h, w, _ = clip.shape
        cmd = [exe, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "24", "-i", "-",
               "-vf", f"format=gbrp,{vf},format=gbrp", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        done = subprocess.run(cmd, input=clip.tobytes(), capture_output=True, check=False)
        if done.returncode:
            raise RuntimeError(f"ffmpeg -vf {vf}: {done.stderr.decode(errors='replace').strip()}")
        return np.frombuffer(done.stdout, np.uint8).reshape(t, h, w, 3)

    return _each(run)


def model_method(name: str, device: str = "cpu") -> Method:
    """The restore stage with model ``name`` (its output brought to the input's size), in memory: the clips
    (all of one size) as one stream through one stage, each clip its own shot, so that no window mixes two
    clips and the model is loaded once."""
    from .stages.restore import Restore

    def run(clips: Sequence[Clip]) -> list[Clip]:
        if not clips:
            return []
        h, w = clips[0].shape[1:3]
        if any(c.shape[1:3] != (h, w) for c in clips):
            raise ValueError(f"model:{name}: the clips must all be {w}x{h}")
        stage = Restore(model=name, scale=1, device=device, batch=4)
        info = VideoInfo(width=w, height=h, time_base=Fraction(1, 24), frame_rate=Fraction(24))
        stage.setup(StageContext(name="restore", inputs={"video": info}, connected_outputs=frozenset({"video"})))
        out, start = [], 0
        for shot, clip in enumerate(clips):
            t = len(clip)
            out += stage.process(FrameBatch(frames=torch.from_numpy(np.ascontiguousarray(clip)),
                                            pts=torch.arange(start, start + t), time_base=Fraction(1, 24),
                                            scene=torch.full((t,), shot, dtype=torch.int64)))
            start += t
        out += stage.finish()
        frames = torch.cat([b.frames for b in out]).numpy()
        return np.split(frames, np.cumsum([len(c) for c in clips])[:-1])

    return run


def write_lossless(clip: Clip, path: Path) -> None:
    """A clip as FFV1 (bgr0, lossless) in Matroska at 24 fps."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = clip.shape[2], clip.shape[1], "bgr0"
        for i, rgb in enumerate(clip):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))


def read_rgb(path: Path) -> Clip:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def graph_method(graph: str, device: str = "cpu") -> Method:
    """A whole graph (a shipped name or a file) on the clip as a lossless file, its output FFV1 too."""
    from .pipeline import Pipeline

    def run(clip: Clip) -> Clip:
        with tempfile.TemporaryDirectory(prefix="vflow-eval-") as tmp:
            src, dst = Path(tmp) / "in.mkv", Path(tmp) / "out.mkv"
            write_lossless(clip, src)
            p = Pipeline.load(graph, input=src, output=dst)
            for setting in ("encode.codec=ffv1", "encode.crf=null", "encode.preset=null"):
                p.set(setting)
            if "restore" in p.spec.stages:
                p.set(f"restore.device={device}")
            p.run()
            return read_rgb(dst)

    return _each(run)


def method(spec: str, device: str = "cpu") -> Method:
    """A method by its name in the table: ``input``, ``hqdn3d``, ``nlmeans``, ``model:NAME``, ``graph:NAME``."""
    if spec == "input":
        return list
    if spec in FILTERS:
        return ffmpeg_filter(FILTERS[spec])
    kind, _, name = spec.partition(":")
    if kind == "model" and name:
        return model_method(name, device)
    if kind == "graph" and name:
        return graph_method(name, device)
    raise ValueError(f"unknown method {spec!r}: input, hqdn3d, nlmeans, model:NAME or graph:NAME")


@dataclass(frozen=True)
class Score:
    method: str
    family: str
    psnr: float
    ssim: float
    frames: int


def score(pairs: Sequence[Pair], methods: Sequence[str], device: str = "cpu",
          progress: Callable[[str], None] | None = None) -> list[Score]:
    """Mean PSNR and SSIM (over frames, against the clean clips) of each method, per family row and over all."""
    out = []
    for spec in methods:
        run = method(spec, device)
        per: dict[str, tuple[list[float], list[float]]] = {}
        for pair, got in zip(pairs, run([pair.degraded for pair in pairs])):
            if got.shape != pair.clean.shape:
                raise ValueError(f"{spec}: output {got.shape} is not the clean clip's {pair.clean.shape}")
            p, s = per.setdefault(pair.family, ([], []))
            p += np.minimum(psnr(got, pair.clean), 99.99).tolist()      # equal frames: infinite PSNR
            s += ssim(got, pair.clean).tolist()
        for family, (p, s) in per.items():
            out.append(Score(spec, family, float(np.mean(p)), float(np.mean(s)), len(p)))
        if progress:
            progress(spec)
    return out


def table(scores: Sequence[Score]) -> str:
    """Markdown: one row per method, PSNR / SSIM per family and the mean over the degraded rows."""
    families = list(dict.fromkeys(s.family for s in scores))
    methods = list(dict.fromkeys(s.method for s in scores))
    cell = {(s.method, s.family): s for s in scores}
    head = "| method | " + " | ".join(families) + " | mean |"
    lines = [head, "|" + "---|" * (len(families) + 2)]
    for m in methods:
        row = [cell[(m, f)] for f in families if (m, f) in cell and f != CLEAN]
        cells = [f"{cell[(m, f)].psnr:.2f} / {cell[(m, f)].ssim:.3f}" if (m, f) in cell else "" for f in families]
        mean = f"{np.mean([r.psnr for r in row]):.2f} / {np.mean([r.ssim for r in row]):.3f}" if row else ""
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines)
