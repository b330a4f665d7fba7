"""Training (vflow.train): the loss falls over 20 CPU steps, a checkpoint resumes to the identical next step,
the data stream is repeatable and keeps its validation files out, the discriminator's shape and spectral
norm, and ``vflow train``. Tiny synthetic data (a moving-pattern video and three photos), 32 px patches."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from vflow.cli import main
from vflow.models.film import film
from vflow.train.data import Clips, DataConfig, make_batch, splits
from vflow.train.degrade import degrade
from vflow.train.discriminator import UNetDiscriminator
from vflow.train.loop import CHECKPOINT, train


def pattern(h: int, w: int, shift: float, phase: float) -> np.ndarray:
    y, x = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    xs = x - shift
    rgb = np.stack([0.5 + 0.4 * np.sin(xs / 5 + phase), 0.5 + 0.4 * np.cos(y / 7 + phase),
                    ((xs // 9 + y // 9) % 2) * 0.6 + 0.2], -1)
    return (rgb * 255).round().astype(np.uint8)


def write_video(path: Path, frames: int = 12, size: tuple[int, int] = (64, 80), phase: float = 0.0) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=12, options={"crf": "12"})
        s.height, s.width, s.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            c.mux(s.encode(av.VideoFrame.from_ndarray(pattern(*size, 1.5 * i, phase), format="rgb24")))
        c.mux(s.encode())


def write_png(path: Path, phase: float) -> None:
    with av.open(str(path), "w", format="image2") as c:
        s = c.add_stream("png", rate=1)
        s.height, s.width, s.pix_fmt = 72, 96, "rgb24"
        c.mux(s.encode(av.VideoFrame.from_ndarray(pattern(72, 96, 0, phase), format="rgb24")))
        c.mux(s.encode())


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "video").mkdir()
    (root / "images").mkdir()
    write_video(root / "video" / "a.mp4", phase=0.0)
    write_video(root / "video" / "b.mp4", phase=1.3)
    for i in range(3):
        write_png(root / "images" / f"p{i}.png", phase=0.7 * i)
    return root


def config(root: Path, out: Path, steps: int, **loss: Any) -> dict[str, Any]:
    return {
        "seed": 3,
        "model": {"size": "film-s", "frames": 3, "scale": 1},
        "discriminator": {"width": 8},
        "data": {"root": str(root), "videos": ["video"], "images": ["images"], "val": ["video/b.mp4", "images/p2.png"],
                 "patch": 32, "batch": 2, "workers": 0, "val_clips": 2, "val_patch": 32,
                 "degrade_only": ["noise", "kernel_blur"]},
        "loss": {"l1": 1.0, "ssim": 0.0, "fft": 0.0, "gan": 0.0, **loss},
        "train": {"steps": steps, "warmup": 5, "lr_g": 2e-3, "lr_d": 1e-3, "ema": 0.9, "device": "cpu"},
        "log": {"dir": str(out), "val_every": 10, "ckpt_every": 10},
    }


def test_loss_falls(data_root: Path, tmp_path: Path) -> None:
    h = train(config(data_root, tmp_path / "run", 20), quiet=True)
    l1 = [r["l1"] for r in h]
    first, last = sum(l1[:5]) / 5, sum(l1[-5:]) / 5
    assert last < 0.9 * first, l1
    assert all(math.isfinite(r["val_psnr"]) for r in h if "val_psnr" in r)
    w = load_file(str(tmp_path / "run" / "film_ema.safetensors"))
    assert set(w) == set(film("film-s", 3).state_dict())


def test_resume_is_identical(data_root: Path, tmp_path: Path) -> None:
    gan = {"ssim": 0.1, "fft": 0.05, "gan": 0.05, "fm": 0.05}
    whole = train(config(data_root, tmp_path / "a", 12, **gan), quiet=True)
    assert "d" in whole[-1] and "fm" in whole[-1]          # the GAN is on after the warm-up
    train(config(data_root, tmp_path / "b", 10, **gan), quiet=True)
    with pytest.raises(FileExistsError):
        train(config(data_root, tmp_path / "b", 12, **gan), quiet=True)
    rest = train(config(data_root, tmp_path / "b", 12, **gan), resume=True, quiet=True)
    assert [r["step"] for r in rest] == [11.0, 12.0]
    assert rest == whole[10:]                               # bit-identical losses
    a = torch.load(tmp_path / "a" / CHECKPOINT, weights_only=False)
    b = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=False)
    for key in ("g", "d", "ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key


def test_data_repeatable_and_split(data_root: Path) -> None:
    cfg = DataConfig(root=data_root, videos=["video"], images=["images"], val=["video/b.mp4", "images/p2.png"],
                     frames=3, patch=(32, 64), batch=3, seed=5)
    train_src, val_src = splits(cfg)
    assert {p.name for p in train_src.videos + train_src.images} == {"a.mp4", "p0.png", "p1.png"}
    assert {p.name for p in val_src.videos + val_src.images} == {"b.mp4", "p2.png"}
    it = iter(Clips(cfg, start=4))
    d1, c1 = next(it)
    d2, c2 = make_batch(train_src, cfg, 5, 4)
    assert torch.equal(d1, d2) and torch.equal(c1, c2)
    assert d1.shape[:3] == (3, 3, 3) and c1.shape[-1] == d1.shape[-1] and c1.shape[-1] in (32, 48, 64)
    assert not torch.equal(make_batch(train_src, cfg, 5, 5)[1][:, :, :32, :32], c1[:, :, :32, :32])
    # the stream never opens a validation file
    opened: list[str] = []
    real_open = av.open

    def spy(path: Any, *a: Any, **k: Any) -> Any:
        opened.append(Path(str(path)).name)
        return real_open(path, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(av, "open", spy)
        for _ in range(6):
            next(it)
    assert opened and not {"b.mp4", "p2.png"} & set(opened)


def test_discriminator() -> None:
    d = UNetDiscriminator(width=8)
    out, feats = d(torch.rand(2, 3, 36, 44), features=True)
    assert out.shape == (2, 1, 36, 44) and len(feats) == 4
    sn = [n for n, _ in d.named_modules() if n.endswith("parametrizations.weight")]
    assert len(sn) == 8 and not hasattr(d.conv0, "parametrizations")


def test_cli_train(data_root: Path, tmp_path: Path) -> None:
    import yaml

    cfg = config(data_root, tmp_path / "run", 100)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--steps", "2", "-q", "--device", "cpu"]) == 0
    assert main(["train", str(path), "--steps", "3", "-q", "--resume"]) == 0
    assert torch.load(tmp_path / "run" / CHECKPOINT, weights_only=False)["step"] == 3
    assert main(["train", str(path), "--steps", "3", "-q"]) == 2     # refuses to overwrite a run


@pytest.mark.timeout(240)
def test_spawned_workers_give_the_same_steps_as_none(data_root: Path, tmp_path: Path) -> None:
    """DataLoader workers are spawned (a fork after the colour kernels' OpenMP threads ran aborted them),
    and the stream is the same with any number of them."""
    none = train(config(data_root, tmp_path / "w0", 3), quiet=True)
    cfg = config(data_root, tmp_path / "w2", 3)
    cfg["data"]["workers"] = 2
    assert train(cfg, quiet=True) == none


def test_learning_rate_falls_on_a_cosine_after_decay_from() -> None:
    from vflow.train.loop import lr_factor

    assert [lr_factor(s, 100, 60, 0.1) for s in (0, 59, 60)] == [1.0, 1.0, 1.0]
    assert lr_factor(80, 100, 60, 0.1) == pytest.approx(0.55)
    assert lr_factor(100, 100, 60, 0.1) == pytest.approx(0.1)
    assert lr_factor(50, 100, 100, 0.1) == 1.0          # decay_from at the end: constant


def test_a_config_extends_another_section_by_section(tmp_path: Path) -> None:
    import yaml

    from vflow.train.loop import load_config

    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"seed": 1, "train": {"steps": 10, "lr_g": 1e-3},
                                                         "data": {"root": "d"}, "log": {"dir": "runs/a"}}))
    (tmp_path / "cut.yaml").write_text(yaml.safe_dump({"extends": "base.yaml", "train": {"steps": 3},
                                                        "log": {"dir": "runs/b"}}))
    cfg = load_config(tmp_path / "cut.yaml", ["train.warmup=2"])
    assert cfg["seed"] == 1 and cfg["train"] == {"steps": 3, "lr_g": 1e-3, "warmup": 2}
    assert cfg["log"]["dir"] == str(tmp_path / "runs" / "b") and cfg["data"]["root"] == str(tmp_path / "d")
    (tmp_path / "loop.yaml").write_text(yaml.safe_dump({"extends": "loop.yaml"}))
    with pytest.raises(ValueError, match="loops"):
        load_config(tmp_path / "loop.yaml")


def test_strided_video_windows_skip_frames(data_root: Path) -> None:
    from vflow.train.data import read_window

    path = data_root / "video" / "a.mp4"
    one, two = read_window(path, 0, 5), read_window(path, 0, 3, stride=2)
    assert torch.equal(two, one[::2])
    assert torch.equal(read_window(path, 10, 3, stride=2)[1:], read_window(path, 11, 1).expand(2, -1, -1, -1))


@settings(max_examples=12, deadline=None)
@given(p_clean=st.sampled_from([0.0, 0.3, 1.0]), p_single=st.sampled_from([0.0, 0.4, 1.0]),
       index=st.integers(0, 50), scale=st.sampled_from([1, 2]))
def test_regimes_leave_clean_clips_alone_and_single_families_alone(data_root: Path, p_clean: float, p_single: float,
                                                                   index: int, scale: int) -> None:
    from vflow.train.data import degrade_mixed, regime
    from vflow.train.degrade import FAMILIES

    cfg = DataConfig(root=data_root, videos=["video"], images=["images"], val=["video/b.mp4"], frames=3, patch=32,
                     batch=4, scale=scale, p_clean=p_clean, p_single=min(p_single, 1 - p_clean))
    clean = torch.rand(4, 3, 3, 32, 32)
    rng, g = random.Random(f"r/{index}"), torch.Generator().manual_seed(index)
    out = degrade_mixed(clean, cfg, rng, g)
    assert out.shape == (4, 3, 3, 32 // scale, 32 // scale)
    rng = random.Random(f"r/{index}")
    drawn = [regime(cfg, rng) for _ in range(4)]
    assert set(drawn) <= {"mix", "clean", *FAMILIES}
    for i, kind in enumerate(drawn):
        if kind == "clean" and scale == 1:
            assert torch.equal(out[i], clean[i])
    if p_clean == 1.0:
        assert set(drawn) == {"clean"}
    if p_clean == 0.0 and p_single == 0.0:      # the plain chain, one call, as before the regimes
        plain = degrade(clean, scale, torch.Generator().manual_seed(index)).clips
        assert torch.equal(out, plain)


def test_one_family_alone_fires_only_that_family() -> None:
    from vflow.train.degrade import FAMILIES, families

    clean = torch.rand(6, 3, 3, 32, 32)
    for family in FAMILIES:
        rec = degrade(clean, 1, torch.Generator().manual_seed(1), only=[family]).record
        assert all(families(r) <= {family} for r in rec), (family, rec)


def test_init_starts_from_given_weights(data_root: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    train(config(data_root, first, 3), quiet=True)
    cfg = config(data_root, tmp_path / "tuned", 1)
    cfg["model"]["init"] = str(first / "film_ema.safetensors")
    cfg["train"]["lr_g"] = 0.0                     # no update: the EMA is the starting weights
    train(cfg, quiet=True)
    start, got = load_file(str(first / "film_ema.safetensors")), load_file(str(tmp_path / "tuned" / "film_ema.safetensors"))
    assert all(torch.equal(start[k], got[k]) for k in start)
    cfg = config(data_root, tmp_path / "wrong", 1)
    cfg["model"].update(size="film-m", init=str(first / "film_ema.safetensors"))
    with pytest.raises(ValueError, match="does not fit"):
        train(cfg, quiet=True)
    cfg["model"].update(size="film-s", init=str(tmp_path / "none.safetensors"))
    with pytest.raises(FileNotFoundError, match="model.init"):
        train(cfg, quiet=True)


def test_presmooth_gives_clips_as_restore_full_feeds_the_net() -> None:
    """``data.pre: denoise``: 8-bit levels, each clip through the temporal denoise as one shot."""
    from vflow.kernels.temporal import TemporalDenoiser
    from vflow.train.data import presmooth

    g = torch.Generator().manual_seed(3)
    clips = (0.5 + 0.1 * torch.randn(2, 5, 3, 24, 32, generator=g)).clamp(0, 1)
    out = presmooth(clips)
    assert out.shape == clips.shape and out.dtype == torch.float32
    u8 = clips.mul(255).round().to(torch.uint8).movedim(2, -1).numpy()
    want = np.stack([TemporalDenoiser()(c, np.zeros(5, np.int64)) for c in u8])
    np.testing.assert_array_equal(out.mul(255).round().to(torch.uint8).movedim(2, -1).numpy(), want)
    assert (out - clips).abs().mean() > 0.01   # the noise is taken
    with pytest.raises(ValueError, match="data.pre"):
        DataConfig(root=Path("."), pre="median")
