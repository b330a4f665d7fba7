"""Atomic outputs: a stage writes ``NAME.partial`` and the file takes its name only when the run succeeded."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import VflowError


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


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: ``dir/../x``, symlinks and hard links included."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()


def check_not_inputs(written: Iterable[str | Path], read: Iterable[str | Path], what: str = "output") -> None:
    """Refuse to write over a file the run reads."""
    read = list(read)
    for out in written:
        for src in read:
            if same_file(out, src):
                raise VflowError(f"{what} '{out}' is the input file '{src}': vflow never writes over its source; "
                                 f"choose another output name")


def check_writable(directory: Path) -> None:
    """The directory (or, if missing, its nearest existing parent) must accept a new file."""
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise VflowError(f"output directory '{directory}': '{probe}' is not a directory")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise VflowError(f"output directory '{directory}' is not writable ({e.strerror or e})") from None
