"""In-band sentinels that travel through the queues with the data."""

from __future__ import annotations

from dataclasses import dataclass


class _EndOfStream:
    """End of one input edge. The runtime consumes it; a stage never sees it."""

    _instance: "_EndOfStream | None" = None

    def __new__(cls) -> "_EndOfStream":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "EOS"


EOS = _EndOfStream()


@dataclass(frozen=True)
class StageFailure:
    """An upstream stage failed: downstream stages stop without finishing their output."""

    stage: str
