"""vflow: a streaming video-restoration engine. YAML graphs of pluggable stages on bounded queues."""

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
