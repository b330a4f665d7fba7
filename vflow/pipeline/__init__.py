"""The vflow engine: graph specs, the stage registry and contract, the threaded runtime."""

from .build import Pipeline, resolve_graph, shipped_graphs
from .errors import Cancelled, GraphError, Location, StageError, VflowError
from .frames import AudioChunk, AudioInfo, ColorInfo, FrameBatch, VideoInfo
from .graph import GraphSpec, from_dict, load_file, load_text
from .registry import available, lookup, stage
from .runner import Report, StageStats
from .stage import Stage, StageContext

__all__ = [
    "AudioChunk", "AudioInfo", "Cancelled", "ColorInfo", "FrameBatch", "GraphError", "GraphSpec", "Location",
    "Pipeline", "Report", "Stage", "StageContext", "StageError", "StageStats", "VflowError", "VideoInfo",
    "available", "from_dict", "load_file", "load_text", "lookup", "resolve_graph", "shipped_graphs", "stage",
]
