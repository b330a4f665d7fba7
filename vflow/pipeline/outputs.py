"""Atomic outputs: a stage writes ``NAME.partial`` and the file takes its name only when the run succeeded."""

from __future__ import annotations

import os
from pathlib import Path


class PartialFile:
    """``partial`` is where to write; ``ready()`` marks it complete; ``close(ok)`` (from ``teardown``)
    renames a complete file into place when the run succeeded and removes it otherwise. Idempotent."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self._ready = False

    def write_text(self, text: str) -> None:
        """Write the whole file and mark it complete."""
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        self.partial.write_text(text)
        self.ready()

    def ready(self) -> None:
        self._ready = True

    def close(self, ok: bool) -> None:
        if ok and self._ready:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)
        self._ready = False


def discard_partials(owner: object) -> None:
    """Remove the partial files of every ``PartialFile`` that ``owner`` holds (a stage abandoned while busy)."""
    for value in vars(owner).values():
        if isinstance(value, PartialFile):
            value.partial.unlink(missing_ok=True)
