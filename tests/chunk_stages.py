"""A stage for the chunked-run tests, importable by their worker processes (``chunk_stages:DieOnce``)."""

from __future__ import annotations

import os
from pathlib import Path

import vflow


class DieOnce(vflow.Stage):
    """Passes frames through; the first process to see a frame kills itself (a worker lost mid-chunk)."""

    def __init__(self, marker: str):
        self.marker = Path(marker)

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        try:
            self.marker.touch(exist_ok=False)
        except FileExistsError:
            return batch
        os._exit(9)
