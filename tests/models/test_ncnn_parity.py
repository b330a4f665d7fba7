"""Converted weights reproduce the ncnn runtime (CPU, fp32) on real images to > 100 dB PSNR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

ncnn = pytest.importorskip("ncnn", reason="the ncnn runtime (pip install ncnn) is needed for parity tests")

# (zoo name, ncnn file stem, crop side): RRDB is slow on CPU, so its crops are small.
CASES = [
    ("realesr-animevideov3", "realesr-animevideov3-x4", 64),
    ("realesrgan-x4plus-anime", "realesrgan-x4plus-anime", 32),
    ("realesrgan-x4plus", "realesrgan-x4plus", 32),
]


def load_ncnn(folder: Path, stem: str) -> ncnn.Net:
    """An ncnn model with exact fp32 CPU settings."""
    net = ncnn.Net()
    opt = net.opt
    opt.use_vulkan_compute = False
    opt.use_fp16_packed = opt.use_fp16_storage = opt.use_fp16_arithmetic = opt.use_bf16_storage = False
    opt.use_winograd_convolution = False
    opt.num_threads = 2
    net.load_param(str(folder / f"{stem}.param"))
    net.load_model(str(folder / f"{stem}.bin"))
    return net


def run_ncnn(net: ncnn.Net, x: np.ndarray) -> np.ndarray:
    """Run an ncnn model on a ``(3, H, W)`` float32 array."""
    mat = ncnn.Mat(x)
    extractor = net.create_extractor()
    extractor.input("data", mat)
    ret, out = extractor.extract("output")
    assert ret == 0, f"ncnn extract failed with {ret}"
    return np.array(out).copy()  # copy: the output Mat's memory dies with the extractor


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def crop(image: np.ndarray, side: int) -> np.ndarray:
    """A centred ``(3, side, side)`` float32 crop in [0, 1]."""
    h, w = image.shape[0] // 2 - side // 2, image.shape[1] // 2 - side // 2
    return np.ascontiguousarray(image[h : h + side, w : w + side].transpose(2, 0, 1), dtype=np.float32) / 255


@pytest.mark.parametrize(("name", "stem", "side"), CASES)
def test_matches_ncnn(
    name: str, stem: str, side: int, images: dict[str, np.ndarray], ncnn_dir: Path, zoo_models: dict[str, nn.Module]
) -> None:
    net = load_ncnn(ncnn_dir, stem)
    for image_name, image in images.items():
        x = crop(image, side)
        with torch.no_grad():
            ours = zoo_models[name](torch.from_numpy(x)[None])[0].clamp(0, 1).numpy()
        theirs = np.clip(run_ncnn(net, x), 0, 1)
        assert ours.shape == theirs.shape == (3, 4 * side, 4 * side)
        value = psnr(ours, theirs)
        print(f"{name} on {image_name}: {value:.1f} dB")
        assert value > 100, f"{name} on {image_name}: {value:.1f} dB"


@pytest.mark.parametrize("scale", [2, 3])
def test_animevideov3_x2_x3_are_x4_plus_bicubic(
    scale: int, images: dict[str, np.ndarray], ncnn_dir: Path, zoo_models: dict[str, nn.Module]
) -> None:
    x = crop(images["kodak/kodim15.png"], 64)
    with torch.no_grad():
        x4 = zoo_models["realesr-animevideov3"](torch.from_numpy(x)[None])
    ours = F.interpolate(x4, scale_factor=scale / 4, mode="bicubic")[0].clamp(0, 1).numpy()
    theirs = np.clip(run_ncnn(load_ncnn(ncnn_dir, f"realesr-animevideov3-x{scale}"), x), 0, 1)
    value = psnr(ours, theirs)
    print(f"realesr-animevideov3-x{scale}: {value:.1f} dB")
    assert value > 100, f"x{scale}: {value:.1f} dB"
