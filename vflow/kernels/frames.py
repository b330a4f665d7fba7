"""What the per-scene frame kernels (denoise, deflicker, colorize) share: their input check and frame loop."""

from __future__ import annotations

import numpy as np


def fixed_weights(weights: tuple[float, float, float], total: int) -> np.ndarray:
    """Luma weights as int32 that sum to ``total`` (for fixed-point kernels), green taking the rounding."""
    r, b = round(weights[0] * total), round(weights[2] * total)
    return np.array([r, total - r - b, b], np.int32)


def check_frames(frames: np.ndarray, scene_ids: np.ndarray) -> None:
    """The shapes every per-scene frame kernel takes: (N, H, W, 3) uint8 frames and one scene id each."""
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    if len(scene_ids) != len(frames):
        raise ValueError(f"{len(scene_ids)} scene ids for {len(frames)} frames")


class SceneKernel:
    """A streaming kernel with state per scene: ``(N, H, W, 3)`` uint8 frames in, as many out, each frame
    through :meth:`_step` with its scene index, after :meth:`_buffers` has sized the state for the frames."""

    def __call__(self, frames: np.ndarray, scene_ids: np.ndarray) -> np.ndarray:
        """Process ``(N, H, W, 3)`` uint8 frames; ``scene_ids[i]`` is frame i's scene index."""
        check_frames(frames, scene_ids)
        out = np.empty_like(frames)
        if len(frames) == 0:
            return out
        frames = np.ascontiguousarray(frames)
        self._buffers(*frames.shape[1:3])
        for i in range(len(frames)):
            self._step(frames[i], int(scene_ids[i]), out[i])
        return out

    def _buffers(self, h: int, w: int) -> None:
        """Allocate what the frames of this size need (called before every batch: return early if sized)."""

    def _step(self, frame: np.ndarray, scene: int, out: np.ndarray) -> None:
        raise NotImplementedError
