"""scene_split: mark each frame's shot (scene index) with the numba cut detector; optionally write a scene list."""

from __future__ import annotations

import csv
import io
import json
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import torch

from ..kernels.scene import SceneDetector
from ..pipeline.frames import FrameBatch
from ..pipeline.outputs import PartialFile
from ..pipeline.registry import stage
from ..pipeline.stage import Stage, StageContext, stream_luma


@stage("scene_split")
class SceneSplit(Stage):
    """Detect hard cuts (robust to flashes, flicker, gate weave and grain of old film) and set ``scene``.

    Temporal stages downstream reset their state where the scene index changes. The detector decides a
    frame once it has seen a few frames after it, so batches leave this stage about one batch late.
    ``list_path`` (``.csv`` or ``.json``) writes the scene list with frame numbers and timecodes, like
    PySceneDetect's.

    ```yaml
    scenes: {type: scene_split, params: {min_scene_len: 8, list_path: scenes.csv}}
    ```
    """

    depths = frozenset({8, 16})

    def __init__(self, min_scene_len: int = 8, min_score: float = 12.0, list_path: str | None = None):
        if min_scene_len < 1:
            raise ValueError("min_scene_len must be at least 1")
        if list_path is not None and Path(list_path).suffix.lower() not in (".csv", ".json"):
            raise ValueError("list_path must end in .csv or .json")
        self.min_scene_len, self.min_score, self.list_path = min_scene_len, min_score, list_path
        self.cuts: list[int] = []
        self.listing: PartialFile | None = None

    def context(self) -> tuple[int, int]:
        """A cut is decided from ``window`` frames each side and the median of the ``history`` differences before."""
        return self.detector.history + self.detector.window, self.detector.window

    def setup(self, ctx: StageContext) -> None:
        self.detector = SceneDetector(min_scene_len=self.min_scene_len, min_score=self.min_score,
                                      luma=stream_luma(ctx))
        self._held: deque[tuple[int, FrameBatch]] = deque()  # (index of its first frame, batch)
        self._pushed = 0
        self._scenes: list[list] = []  # per scene: first frame, its time, last frame, its time (for the list)
        self.listing = PartialFile(self.list_path) if self.list_path else None
        return None

    def process(self, batch: FrameBatch) -> Iterator[FrameBatch]:
        self._held.append((self._pushed, batch))
        self._pushed += len(batch)
        self.cuts += self.detector.push(batch.frames.numpy())
        yield from self._release(decided=self._pushed - self.detector.lookahead)

    def finish(self) -> Iterator[FrameBatch]:
        self.cuts += self.detector.flush()
        yield from self._release(decided=self._pushed)
        if self.listing is not None:
            self.listing.write_text(self._scene_list(self.listing.path.suffix.lower()))

    def _release(self, decided: int) -> Iterator[FrameBatch]:
        """Emit the held batches whose every frame has been decided, with their scene indices."""
        while self._held and self._held[0][0] + len(self._held[0][1]) <= decided:
            start, batch = self._held.popleft()
            index = torch.arange(start, start + len(batch))
            scene = torch.searchsorted(torch.tensor(self.cuts, dtype=torch.int64), index, right=True)
            if self.listing is not None:
                self._note_bounds(start, batch, scene)
            yield batch.replace(scene=scene)

    def _note_bounds(self, start: int, batch: FrameBatch, scene: torch.Tensor) -> None:
        """Keep each scene's first and last frame with their times: memory grows with scenes, not frames."""
        for i, (s, p) in enumerate(zip(scene.tolist(), batch.pts.tolist())):
            t = p * batch.time_base
            if s == len(self._scenes):
                self._scenes.append([start + i, t, start + i, t])
            else:
                self._scenes[s][2:] = [start + i, t]

    def _scene_list(self, suffix: str) -> str:
        """The scenes with first/last frame and timecodes, as CSV or JSON."""
        rows = [{"scene": i, "start_frame": a, "end_frame": b, "start_time": _timecode(ta), "end_time": _timecode(tb),
                 "start_seconds": float(ta), "end_seconds": float(tb)}
                for i, (a, ta, b, tb) in enumerate(self._scenes)]
        if suffix == ".json":
            return json.dumps({"cuts": self.cuts, "scenes": rows}, indent=2)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()

    def files_written(self) -> list[str]:
        return [self.list_path] if self.list_path else []

    def teardown(self, ok: bool) -> None:
        if self.listing is not None:
            self.listing.close(ok)


def _timecode(seconds: Fraction) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
