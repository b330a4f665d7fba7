"""``train(config)``: the adversarial training of a FilmNet generator against a U-Net discriminator.

Per step: the generator restores the centre frame of each degraded window; its loss is L1 (+ SSIM, FFT
magnitude) and, after ``warmup`` steps of reconstruction alone, the GAN loss (+ feature matching) from the
discriminator, which then takes its own step on clean against restored frames. An EMA of the generator's
weights is what validation measures and what ships. AMP (bf16) on CUDA only.

Checkpoints (``ckpt_every``) hold everything a run needs to continue identically: both nets, the EMA, both
optimizers, the step, the torch/numpy/python RNG states and the data position (the index of the next
batch, see :mod:`vflow.train.data`); beside them the EMA generator alone as safetensors. ``resume=True``
continues from the last one: step ``k + 1`` after resuming is bit-identical to an uninterrupted run's.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import save_file
from torch.utils.data import DataLoader

from ..models.film import FilmNet, film
from .data import Clips, DataConfig, one_thread, validation
from .discriminator import UNetDiscriminator
from .losses import Weights, feature_matching, gan_d, gan_g, pixel_losses

CHECKPOINT = "last.pt"


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """A training config from YAML (over the file its ``extends`` names), with ``KEY.SUB=VALUE`` overrides
    (values parsed as YAML). Relative ``data.root`` and ``log.dir`` are taken from the config file's directory."""
    path = Path(path)
    cfg = _read(path)
    for o in overrides:
        key, eq, value = o.partition("=")
        if not eq:
            raise ValueError(f"override expects KEY=VALUE, got {o!r}")
        *parents, last = key.strip().split(".")
        node = cfg
        for k in parents:
            node = node.setdefault(k, {})
        node[last] = yaml.safe_load(value)
    for section, key in (("data", "root"), ("log", "dir"), ("model", "init")):
        if cfg.get(section, {}).get(key) is None:
            continue
        p = Path(cfg[section][key])
        cfg[section][key] = str(p if p.is_absolute() else (path.parent / p).resolve())
    return cfg


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file, merged over the one its ``extends`` names (relative to it), section by section."""
    if path.resolve() in seen:
        raise ValueError(f"{path}: 'extends' loops back to itself")
    cfg = yaml.safe_load(path.read_text()) or {}
    base = cfg.pop("extends", None)
    if base is None:
        return cfg
    merged = _read(path.parent / base, (*seen, path.resolve()))
    for key, value in cfg.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def data_config(cfg: dict[str, Any]) -> DataConfig:
    d, m = dict(cfg["data"]), cfg["model"]
    patch = d.pop("patch")
    patch = (patch, patch) if isinstance(patch, int) else tuple(patch)
    return DataConfig(root=Path(d.pop("root")), frames=m["frames"], scale=m["scale"], patch=patch,
                      seed=cfg.get("seed", 0), **{k: v for k, v in d.items() if k != "workers"})


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR per image of (N, 3, H, W) in [0, 1]."""
    mse = ((a.float().clamp(0, 1) - b.float()) ** 2).mean((1, 2, 3)).clamp_min(1e-10)
    return -10 * torch.log10(mse)


@torch.no_grad()
def evaluate(net: FilmNet, batches: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> float:
    """Mean PSNR (dB) of ``net``'s output over validation batches (the input's own is :func:`input_psnr`)."""
    net.eval()
    vals = [psnr(net(deg.to(device)).cpu(), clean) for deg, clean in batches]
    return float(torch.cat(vals).mean())


def input_psnr(batches: list[tuple[torch.Tensor, torch.Tensor]], frames: int) -> float:
    """Mean PSNR of the degraded centre frames (bicubic to the clean size) against the clean ones."""
    vals = []
    for deg, clean in batches:
        x = deg[:, frames // 2]
        if x.shape[-1] != clean.shape[-1]:
            x = F.interpolate(x, size=clean.shape[-2:], mode="bicubic", align_corners=False)
        vals.append(psnr(x, clean))
    return float(torch.cat(vals).mean())


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_weights(net: FilmNet, path: Path, step: int) -> None:
    """The generator's weights alone as safetensors, with its constructor config and step as metadata."""
    tmp = path.with_suffix(".partial")
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp),
              metadata={"arch": "FilmNet", "config": json.dumps(net.config()), "step": str(step)})
    os.replace(tmp, path)


def init_weights(net: FilmNet, path: Path) -> None:
    """Load a generator's weights (safetensors, as :func:`save_weights` writes) to start from; they must fit."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise FileNotFoundError(f"model.init: {path} does not exist")
    try:
        net.load_state_dict(load_file(str(path)))
    except RuntimeError as e:
        raise ValueError(f"model.init: {path} does not fit the model of this config: {e}") from None


def lr_factor(step: int, steps: int, decay_from: int, floor: float) -> float:
    """The learning-rate multiplier at ``step``: 1 up to ``decay_from``, then a cosine down to ``floor`` at ``steps``."""
    if step < decay_from or steps <= decay_from:
        return 1.0
    done = min(1.0, (step - decay_from) / (steps - decay_from))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))


def _device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device cuda: no CUDA GPU here")
    return torch.device(name)


def train(cfg: dict[str, Any], resume: bool = False, quiet: bool = False) -> list[dict[str, float]]:
    """Train as ``cfg`` says (see ``configs/film1x.yaml``) up to ``train.steps``; returns the losses of
    the steps run here, one dict per step (``step``, each term, ``g``, ``d``; ``val_psnr`` where measured)."""
    t, m, lg = cfg["train"], cfg["model"], cfg["log"]
    seed = int(cfg.get("seed", 0))
    dev = _device(t.get("device", "auto"))
    amp = bool(t.get("amp", True)) and dev.type == "cuda"
    weights = Weights(**cfg.get("loss", {}))
    dcfg = data_config(cfg)
    out_dir = Path(lg["dir"])
    ckpt = out_dir / CHECKPOINT
    if ckpt.exists() and not resume:
        raise FileExistsError(f"{ckpt} exists: resume it (--resume) or choose another log.dir")
    if resume and not ckpt.exists():
        raise FileNotFoundError(f"nothing to resume: no {ckpt}")
    out_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    g_net = film(m["size"], m["frames"], m["scale"]).to(dev)
    if m.get("init") and not resume:        # fine-tune: start from these weights (a resume has its own)
        init_weights(g_net, Path(m["init"]))
    d_net = UNetDiscriminator(cfg.get("discriminator", {}).get("width", 32)).to(dev)
    ema = copy.deepcopy(g_net).eval().requires_grad_(False)
    betas = tuple(t.get("betas", (0.9, 0.99)))
    opt_g = torch.optim.AdamW(g_net.parameters(), float(t["lr_g"]), betas, weight_decay=float(t.get("wd_g", 0)))
    opt_d = torch.optim.AdamW(d_net.parameters(), float(t["lr_d"]), betas, weight_decay=float(t.get("wd_d", 0)))
    step = 0
    if resume:
        state = torch.load(ckpt, map_location=dev, weights_only=False)
        for obj, key in ((g_net, "g"), (d_net, "d"), (ema, "ema"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            obj.load_state_dict(state[key])
        step = state["step"]
        _set_rng_state(state["rng"])
        if state["data_position"] != step:
            raise ValueError(f"{ckpt}: data position {state['data_position']} is not step {step}")

    workers = int(cfg["data"].get("workers", 0))
    # spawned workers: the colour kernels' OpenMP threads make fork() unsafe once they have run
    loader = DataLoader(Clips(dcfg, start=step), batch_size=None, num_workers=workers, worker_init_fn=one_thread,
                        prefetch_factor=4 if workers else None, pin_memory=dev.type == "cuda",
                        multiprocessing_context="spawn" if workers else None, persistent_workers=False)
    val = validation(dcfg)
    val_in = input_psnr(val, m["frames"])
    steps, warmup, decay = int(t["steps"]), int(t.get("warmup", 0)), float(t.get("ema", 0.999))
    decay_from, floor = int(t.get("decay_from", steps)), float(t.get("lr_floor", 0.05))
    val_every, ckpt_every = int(lg.get("val_every", 1000)), int(lg.get("ckpt_every", 500))
    print_every = int(lg.get("print_every", 100))
    history: list[dict[str, float]] = []

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
               TextColumn("{task.description}"))
    data = iter(loader)
    last_val = ""
    with Progress(*columns, disable=quiet, transient=False) as bar:
        task = bar.add_task("", total=steps, completed=step)
        if not quiet:
            bar.console.print(f"validation: input PSNR {val_in:.2f} dB over {dcfg.val_clips} held-out clips")
        try:
            while step < steps:
                deg, clean = next(data)
                f = lr_factor(step, steps, decay_from, floor)
                for opt, key in ((opt_g, "lr_g"), (opt_d, "lr_d")):
                    for group in opt.param_groups:
                        group["lr"] = float(t[key]) * f
                deg, clean = deg.to(dev, non_blocking=True), clean.to(dev, non_blocking=True)
                g_net.train()
                gan_on = step >= warmup and weights.gan > 0
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    out = g_net(deg)
                    terms = pixel_losses(out.float(), clean, weights)
                    if gan_on:
                        d_net.requires_grad_(False)
                        logits, fake_feats = d_net(out, features=True)
                        terms["gan"] = weights.gan * gan_g(logits.float(), weights.gan_type)
                        if weights.fm > 0:
                            _, real_feats = d_net(clean, features=True)
                            terms["fm"] = weights.fm * feature_matching(fake_feats, real_feats)
                loss_g = sum(terms.values())
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()  # type: ignore[union-attr]
                opt_g.step()
                with torch.no_grad():
                    k = min(decay, (1 + step) / (10 + step))
                    for e, p in zip(ema.parameters(), g_net.parameters()):
                        e.lerp_(p.detach(), 1 - k)
                row = {"step": float(step + 1), **{n: v.item() for n, v in terms.items()}, "g": float(loss_g.detach())}
                if gan_on:
                    d_net.requires_grad_(True)
                    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                        loss_d = gan_d(d_net(clean).float(), d_net(out.detach()).float(), weights.gan_type)
                    opt_d.zero_grad(set_to_none=True)
                    loss_d.backward()
                    opt_d.step()
                    row["d"] = loss_d.item()
                step += 1
                if step % val_every == 0 or step == steps:
                    row["val_psnr"] = evaluate(ema, val, dev)
                    last_val = f" | val {row['val_psnr']:.2f} dB (input {val_in:.2f})"
                    if not quiet:
                        bar.console.print(f"step {step}: EMA validation PSNR {row['val_psnr']:.2f} dB, input {val_in:.2f} dB")
                if step % ckpt_every == 0 or step == steps:
                    _save(ckpt, {"g": g_net.state_dict(), "d": d_net.state_dict(), "ema": ema.state_dict(),
                                 "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step,
                                 "data_position": step, "rng": _rng_state(), "config": cfg})
                    save_weights(ema, out_dir / "film_ema.safetensors", step)
                history.append(row)
                losses = " ".join(f"{n} {v:.4f}" for n, v in row.items() if n not in ("step", "val_psnr") and math.isfinite(v))
                bar.update(task, completed=step, description=losses + last_val)
                if not quiet and not bar.console.is_terminal and step % print_every == 0:
                    bar.console.print(f"step {step}: {losses}")     # a log file gets a line now and then
        finally:
            getattr(data, "_shutdown_workers", lambda: None)()   # stop the workers now, not at garbage collection
    return history
