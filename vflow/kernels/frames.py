"""What the per-scene frame kernels (denoise, deflicker, colorize) share: their input check and frame loop."""

from __future__ import annotations

import numpy as np


def fixed_weights(weights: tuple[float, float, float], total: int) -> np.ndarray:
    """Luma weights as int32 that sum to ``total`` (for fixed-point kernels), green taking the rounding."""
    r, b = round(weights[0] * total), round(weights[2] * total)
    return np.array([r, total - r - b, b], np.int32)


def check_frames(frames: np.ndarray, scene_ids: np.ndarray) -> None:
    """The shapes every per-scene frame kernel takes: (N, H, W, 3) uint8 or uint16 frames, one scene id each."""
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected (N, H, W, 3) uint8 or uint16 frames, got {frames.shape} {frames.dtype}")
    if len(scene_ids) != len(frames):
        raise ValueError(f"{len(scene_ids)} scene ids for {len(frames)} frames")


class SceneKernel:
    """A streaming kernel with state per scene: ``(N, H, W, 3)`` uint8 or uint16 frames in, as many out, each frame
    through :meth:`_step` with its scene index, after :meth:`_buffers` has sized the state for the frames."""

    def __call__(self, frames: np.ndarray, scene_ids: np.ndarray) -> np.ndarray:
        """Process ``(N, H, W, 3)`` frames; ``scene_ids[i]`` is frame i's scene index."""
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


class ShotWindow:
    """A streaming kernel that holds frames of the current shot: push ``(N, H, W, 3)`` frames with their
    scene ids and get back the frames that are ready, in order; ``flush`` returns the rest when the shot (or
    the stream) ends. Calling it on a whole clip does both. Subclasses add a frame (:meth:`_add`), say which
    frames are ready (:meth:`_emit`) and clear their state (:meth:`_reset`, which sets ``_scene`` to None)."""

    _scene: int | None

    def __call__(self, frames: np.ndarray, scene_ids: np.ndarray) -> np.ndarray:
        out = self.push(frames, scene_ids) + self.flush()
        return np.stack(out) if out else np.empty_like(frames)

    def push(self, frames: np.ndarray, scene_ids: np.ndarray) -> list[np.ndarray]:
        check_frames(frames, scene_ids)
        out: list[np.ndarray] = []
        for frame, scene in zip(frames, np.asarray(scene_ids).tolist()):
            if scene != self._scene or self._new_shot(frame):
                out += self.flush()
                self._scene = scene
            self._add(np.ascontiguousarray(frame))
            out += self._emit(final=False)
        return out

    def flush(self) -> list[np.ndarray]:
        """The waiting frames of the current shot, which has ended."""
        out = self._emit(final=True)
        self._reset()
        return out

    def _new_shot(self, frame: np.ndarray) -> bool:
        """Whether this frame must start afresh though its scene id is the same (e.g. a new frame size)."""
        return False

    def _add(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def _emit(self, final: bool) -> list[np.ndarray]:
        raise NotImplementedError

    def _reset(self) -> None:
        raise NotImplementedError
