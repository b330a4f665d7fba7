"""Figures over time for the run report: each stage's frames and queue fill, and the process's memory."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field

from .runner import StageStats

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """The process's resident memory now (Linux: /proc/self/statm), else its peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Samples:
    """Taken from the runner's tick at most every ``every_s`` seconds: ``t`` (s since start), ``rss``
    (bytes), and per stage its frames out and queue fill at each time."""

    stats: list[StageStats]
    every_s: float = 0.5
    t: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    frames: dict[str, list[int]] = field(default_factory=dict)
    queue: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._t0 = time.perf_counter()

    def tick(self) -> None:
        now = time.perf_counter() - self._t0
        if self.t and now - self.t[-1] < self.every_s:
            return
        self.t.append(round(now, 3))
        self.rss.append(rss_bytes())
        for s in self.stats:
            self.frames.setdefault(s.name, []).append(max(s.frames_in, s.frames_out))
            self.queue.setdefault(s.name, []).append(s.queue_fill)

    def to_dict(self) -> dict:
        return {"t": self.t, "rss": self.rss, "frames": self.frames, "queue": self.queue}
