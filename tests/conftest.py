"""Shared fixtures: the real test data in ../shared/data and a tiny clip generated with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import os

import av
import numpy as np
import pytest
from hypothesis import settings

# The same hypothesis draws in every run by default, so that a run (CI's above all) does not depend on luck;
# VFLOW_HYPOTHESIS=explore draws afresh each time, to look for new failing held-out clips and inputs.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("VFLOW_HYPOTHESIS", "repeatable"))

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIP_FRAMES = 12
CLIP_SIZE = (64, 48)  # width, height


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data; tests that need it are skipped where it is missing."""
    if not DATA.is_dir():
        pytest.skip(f"shared test data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame 64x48 H.264 mp4 at 25 fps (pts 0..11), a moving gradient."""
    path = tmp_path_factory.mktemp("clip") / "tiny.mp4"
    width, height = CLIP_SIZE
    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "18"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 25)
        for i in range(CLIP_FRAMES):
            rgb = np.stack([(x * 4 + 8 * i) % 256, (y * 5) % 256, np.full_like(x, 128)], axis=-1).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path

