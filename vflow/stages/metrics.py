"""metrics: PSNR and SSIM of a distorted stream against a reference, per frame and mean (numba kernels)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..kernels.metrics import psnr, ssim
from ..pipeline.frames import FrameBatch, VideoInfo
from ..pipeline.outputs import PartialFile
from ..pipeline.registry import stage
from ..pipeline.stage import Stage, StageContext


@stage("metrics")
class Metrics(Stage):
    """Compare two video streams frame by frame (in order): PSNR (dB) and SSIM (scikit-image's
    definition, 7x7 window, on RGB), per frame and mean, over the code range of the deeper input (an 8-bit
    input is compared with a 16-bit one as v x 257, 8-bit codes exactly). ``path`` writes them as JSON.
    The runtime holds the faster input back (``paired_inputs``), so at most about a batch of frames waits
    for its partner.

    ```yaml
    metrics: {type: metrics, params: {path: report.json}}
    edges: [ref.video -> metrics.reference, out.video -> metrics.distorted]
    ```
    """

    inputs = {"reference": FrameBatch, "distorted": FrameBatch}
    outputs: dict[str, type] = {}
    paired_inputs = True
    depths = frozenset({8, 16})

    def __init__(self, path: str | None = None, ssim: bool = True):
        self.path, self.with_ssim = path, ssim
        self.psnr: list[float] = []
        self.ssim: list[float] = []
        self.report: PartialFile | None = None

    def setup(self, ctx: StageContext) -> None:
        ref, dist = ctx.inputs["reference"], ctx.inputs["distorted"]
        assert isinstance(ref, VideoInfo) and isinstance(dist, VideoInfo)
        if (ref.width, ref.height) != (dist.width, dist.height):
            raise ValueError(f"reference is {ref.width}x{ref.height} but distorted is {dist.width}x{dist.height}")
        self._depth = max(ref.depth, dist.depth)
        self._range = float((1 << self._depth) - 1)
        self._pending: dict[str, list[np.ndarray]] = {"reference": [], "distorted": []}
        self._unmatched = {"reference": 0, "distorted": 0}  # frames past the other stream's end: counted, not kept
        self._ended: set[str] = set()
        self.report = PartialFile(self.path) if self.path else None
        return None

    @property
    def buffered(self) -> int:
        """Frames held waiting for their partner from the other input."""
        return sum(len(v) for v in self._pending.values())

    def process_port(self, port: str, item: Any) -> None:
        if self._ended:  # the other stream has ended: count these frames, do not hold them
            self._unmatched[port] += len(item)
            return
        frames = item.frames.numpy()
        if item.depth < self._depth:
            frames = frames.astype(np.uint16) * np.uint16(257)
        self._pending[port] += list(frames)
        n = min(len(v) for v in self._pending.values())
        if n:
            a, b = (np.stack(self._pending[p][:n]) for p in ("reference", "distorted"))
            self.psnr += [float(v) for v in psnr(a, b, self._range)]
            if self.with_ssim:
                self.ssim += [float(v) for v in ssim(a, b, self._range)]
            for p in self._pending:
                del self._pending[p][:n]

    def summary(self) -> dict[str, Any]:
        finite = [v for v in self.psnr if np.isfinite(v)]
        return {"frames": len(self.psnr),
                "psnr_mean": float(np.mean(finite)) if finite else float("inf"),
                "ssim_mean": float(np.mean(self.ssim)) if self.ssim else None,
                "psnr": self.psnr, "ssim": self.ssim}

    def input_ended(self, port: str) -> None:
        self._ended.add(port)

    def finish(self) -> None:
        left = {p: len(v) + self._unmatched[p] for p, v in self._pending.items() if v or self._unmatched[p]}
        if left:
            extra = " and ".join(f"{n} more frame(s) of {p}" for p, n in left.items())
            raise ValueError(f"the streams differ in length: {len(self.psnr)} frames compared, then {extra} "
                             f"with no partner")
        if self.report is not None:
            self.report.write_text(json.dumps(self.summary(), indent=2))

    def files_written(self) -> list[str]:
        return [self.path] if self.path else []

    def teardown(self, ok: bool) -> None:
        if self.report is not None:
            self.report.close(ok)
