"""Per-channel affine maps of whole frames, ``out = clip(round(scale[c] * v + offset[c]))``, at either depth:
through a table of every code for 8-bit frames (a gather), computed per pixel for 16-bit ones (a table of
65536 codes per channel would cost more to fill than most frames to map)."""

from __future__ import annotations

import numba as nb
import numpy as np

from . import serialised


def map_channels(frame: np.ndarray, scale: np.ndarray, offset: np.ndarray, out: np.ndarray) -> None:
    """``frame`` (H, W, 3) uint8 or uint16 -> ``out`` (same shape and dtype), channel ``c`` mapped to
    ``scale[c] * v + offset[c]`` (offsets in the frame's codes), rounded and clipped to the code range."""
    scale, offset = np.asarray(scale, np.float32), np.asarray(offset, np.float32)
    if frame.dtype == np.uint8:
        v = np.arange(256, dtype=np.float32)[None, :]
        lut = np.clip(np.floor(v * scale[:, None] + offset[:, None] + 0.5), 0, 255).astype(np.uint8)
        _gather(frame, lut, out)
    else:
        _affine(frame, scale, offset, np.float32(np.iinfo(frame.dtype).max), out)


@serialised
@nb.njit(nogil=True, cache=True, parallel=True)
def _gather(frame: np.ndarray, lut: np.ndarray, out: np.ndarray) -> None:
    h, w, _ = frame.shape
    for y in nb.prange(h):
        for x in range(w):
            for c in range(3):
                out[y, x, c] = lut[c, frame[y, x, c]]


@serialised
@nb.njit(nogil=True, cache=True, parallel=True, fastmath=True)
def _affine(frame: np.ndarray, scale: np.ndarray, offset: np.ndarray, top: np.float32, out: np.ndarray) -> None:
    h, w, _ = frame.shape
    for y in nb.prange(h):
        for x in range(w):
            for c in range(3):
                v = np.float32(frame[y, x, c]) * scale[c] + offset[c] + np.float32(0.5)
                out[y, x, c] = min(max(v, np.float32(0.0)), top)
