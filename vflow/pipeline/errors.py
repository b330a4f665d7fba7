"""Errors that vflow reports to users: one paragraph, naming the file, the YAML line or the stage."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a graph file: ``file:line:column`` (1-based); line 0 names a place outside a file (``--set``)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


class VflowError(Exception):
    """Base of every error vflow reports to users; ``str(err)`` is the whole message."""


class GraphError(VflowError):
    """A graph that cannot be built: bad YAML, unknown stage or param, bad edge, cycle, bad input/output."""

    def __init__(self, message: str, where: Location | None = None, stage: str | None = None,
                 type_name: str | None = None):
        self.where, self.stage, self.detail = where, stage, message
        prefix = f"{where}: " if where else ""
        if stage is not None:
            prefix += f"stage '{stage}'" + (f" ({type_name})" if type_name else "") + ": "
        super().__init__(prefix + message)


class StageError(VflowError):
    """A stage failed while frames were flowing; names the stage, its type and the pts it was at."""

    def __init__(self, stage: str, type_name: str, pts: float | None, cause: BaseException):
        self.stage, self.type_name, self.pts, self.cause = stage, type_name, pts, cause
        at = f" at pts {pts:.3f} s" if pts is not None else ""
        reason = str(cause) or type(cause).__name__
        super().__init__(f"stage '{stage}' ({type_name}) failed{at}: {type(cause).__name__}: {reason}")


class Cancelled(VflowError):
    """The run was stopped from outside (Ctrl-C, SIGTERM/SIGHUP or ``Pipeline.cancel``); ``signal`` is the
    interrupt that stopped it, if any (the CLI's exit status is 128 + its number)."""

    def __init__(self, message: str, interrupt: BaseException | None = None):
        super().__init__(message)
        self.signal: int = getattr(interrupt, "signum", 2) if interrupt is not None else 2
