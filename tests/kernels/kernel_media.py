"""Helpers for the kernel tests: real clips from shared/data and seeded synthetic grain."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def decode(name: str, start: int = 0, count: int | None = None, width: int | None = None) -> np.ndarray:
    """Frames ``start .. start+count`` of a clip under shared/data as ``(N, H, W, 3)`` uint8 RGB,
    scaled by FFmpeg to ``width`` (aspect kept, even height) if given."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"missing test data {path}")
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        size = {}
        if width is not None:
            size = {"width": width, "height": round(stream.height * width / stream.width / 2) * 2}
        for i, frame in enumerate(container.decode(stream)):
            if i >= start:
                frames.append(frame.to_ndarray(format="rgb24", **size))
            if count is not None and len(frames) == count:
                break
    return np.stack(frames)


def cuts() -> dict:
    path = DATA / "cuts.json"
    return json.loads(path.read_text())["clips"] if path.exists() else {}


def grain(frames: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Add seeded Gaussian grain whose sigma grows with luma (0.5x in black to 1.5x in white)."""
    rng = np.random.default_rng(seed)
    luma = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    scale = sigma * (0.5 + luma / 255.0)
    noisy = frames + rng.standard_normal(frames.shape, np.float32) * scale[..., None]
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
