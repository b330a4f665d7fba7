"""vflow: a streaming video-restoration engine. YAML graphs of pluggable stages on bounded queues.

The public names load on first use (PEP 562), so ``vflow``'s command line starts, and answers a Ctrl-C, before
torch and PyAV are imported.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Before torch and numba load their OpenMP runtimes (numba's starts at the first parallel kernel, so this
# holds even when torch was imported first): idle OpenMP threads sleep instead of spinning at the end of
# each parallel loop. Each stage runs in its own thread next to the decoder's, so the cores are always
# shared; spinning threads then wait on descheduled ones and made numba kernels 2-8x slower on a busy
# 2-core machine (docs/performance.md). A value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def numba_cache_dir(package: Path, home: Path) -> str | None:
    """Where numba must cache compiled kernels when neither the package folder nor the user's cache is
    writable (numba would raise at import); None when one of them is."""
    for d in (package / "kernels" / "__pycache__", package / "kernels", home / ".cache", home):
        if d.is_dir() and os.access(d, os.W_OK):
            return None
    return str(Path(tempfile.gettempdir()) / f"vflow-numba-{os.getuid() if hasattr(os, 'getuid') else 'user'}")


if "NUMBA_CACHE_DIR" not in os.environ:
    _cache = numba_cache_dir(Path(__file__).resolve().parent, Path.home())
    if _cache is not None:
        os.environ["NUMBA_CACHE_DIR"] = _cache

__version__ = "0.1.0"

_PUBLIC = ("AudioChunk", "AudioInfo", "Cancelled", "ColorInfo", "FrameBatch", "GraphError", "Pipeline", "Report",
           "Stage", "StageContext", "StageError", "VflowError", "VideoInfo", "stage")

if TYPE_CHECKING:
    from .pipeline import (
        AudioChunk, AudioInfo, Cancelled, ColorInfo, FrameBatch, GraphError, Pipeline, Report, Stage, StageContext,
        StageError, VflowError, VideoInfo, stage,
    )


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(".pipeline", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vflow' has no attribute '{name}'")


def run(graph: str | Path | dict, **variables: str | Path | None) -> "Report":
    """Load a graph (file, shipped name, YAML text or dict) with ``${variables}`` and run it."""
    from .pipeline import Pipeline

    return Pipeline.load(graph, **variables).run()


__all__ = [*_PUBLIC, "run", "__version__"]
