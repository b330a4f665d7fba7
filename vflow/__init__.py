"""vflow: a streaming video-restoration engine. YAML graphs of pluggable stages on bounded queues."""

import os

# Before torch and numba load their OpenMP runtimes (numba's starts at the first parallel kernel, so this
# holds even when torch was imported first): idle OpenMP threads sleep instead of spinning at the end of
# each parallel loop. Each stage runs in its own thread next to the decoder's, so the cores are always
# shared; spinning threads then wait on descheduled ones and made numba kernels 2-8x slower on a busy
# 2-core machine (docs/performance.md). A value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path

from .pipeline import (
    AudioChunk, AudioInfo, Cancelled, ColorInfo, FrameBatch, GraphError, Pipeline, Report, Stage, StageContext,
    StageError, VflowError, VideoInfo, stage,
)

__version__ = "0.1.0"


def run(graph: str | Path | dict, **variables: str | Path | None) -> Report:
    """Load a graph (file, shipped name, YAML text or dict) with ``${variables}`` and run it."""
    return Pipeline.load(graph, **variables).run()


__all__ = [
    "AudioChunk", "AudioInfo", "Cancelled", "ColorInfo", "FrameBatch", "GraphError", "Pipeline", "Report", "Stage",
    "StageContext", "StageError", "VflowError", "VideoInfo", "run", "stage", "__version__",
]
