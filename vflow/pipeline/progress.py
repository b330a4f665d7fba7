"""The rich live view of a run (frames, fps, queue fill, busy %, ETA) and its closing summary table."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .runner import StageStats

if TYPE_CHECKING:
    from .chunked import Progress


def _table(stats: list[StageStats], elapsed: float, title: str, final: bool) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    for col in ("stage", "type", "state", "frames", "fps", "queue", "peak", "busy %"):
        table.add_column(col, justify="left" if col in ("stage", "type", "state") else "right")
    if not final:
        table.add_column("ETA", justify="right")
    for s in stats:
        frames = max(s.frames_in, s.frames_out)
        wall = s.wall_s if final and s.wall_s else elapsed
        fps = frames / wall if wall > 0 else 0.0
        busy = (s.busy_s if final else max(0.0, elapsed - s.wait_s)) / wall * 100 if wall > 0 else 0.0
        row = [s.name, s.type_name, s.state, str(frames), f"{fps:.1f}", f"{s.queue_fill}/{s.queue_size}",
               str(s.peak_queue), f"{min(busy, 100):.0f}"]
        if not final:
            row.append(_eta(s, frames, fps))
        table.add_row(*row)
    return table


def _eta(s: StageStats, frames: int, fps: float) -> str:
    if not s.expected_frames or fps <= 0 or s.state != "running":
        return ""
    left = max(0, s.expected_frames - frames) / fps
    return time.strftime("%H:%M:%S", time.gmtime(left))


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(max(0.0, seconds)))


def total_line(stats: list[StageStats], elapsed: float) -> str:
    """The whole run in one line: frames through the last stage of N (the decoder's count), fps, elapsed, ETA."""
    if not stats:
        return "no stages"
    expected = next((s.expected_frames for s in stats if s.expected_frames), None)
    done = max(stats[-1].frames_in, stats[-1].frames_out)
    fps = done / elapsed if elapsed > 0 else 0.0
    of = f"/{expected}" if expected else ""
    share = f" ({100 * done / expected:.0f} %)" if expected else ""
    eta = f", ETA {_clock((expected - done) / fps)}" if expected and fps > 0 and done < expected else ""
    return f"{done}{of} frames{share}, {fps:.1f} fps, elapsed {_clock(elapsed)}{eta}"


class LiveView:
    """Refreshed from the runner's main-thread tick; ``close`` prints the summary and the run's warnings.
    On a terminal: a live table, a line per stage, under the run's total line. Elsewhere (a log file, a
    pipe): the total line every ``log_every`` seconds, plain text, no escape codes."""

    def __init__(self, stats: list[StageStats], warnings: list[str] | None = None, console: Console | None = None,
                 log_every: float = 5.0):
        self.stats = stats
        self.warnings = warnings if warnings is not None else []
        self.console = console or Console(stderr=True)
        self.t0 = time.perf_counter()
        self.log_every, self._logged = log_every, self.t0
        self.live = Live(self._render(False), console=self.console, refresh_per_second=4, transient=True) \
            if self.console.is_terminal else None

    def _render(self, final: bool, failed: bool = False) -> Group:
        elapsed = time.perf_counter() - self.t0
        state = ("stopped after" if failed else "done in") if final else "running"
        table = _table(self.stats, elapsed, f"vflow {state} {elapsed:.1f} s: {total_line(self.stats, elapsed)}",
                       final)
        shown = self.warnings if final else self.warnings[-3:]
        lines = [Text(f"warning: {w}", style="yellow") for w in shown]
        if not final and len(self.warnings) > len(shown):
            lines.insert(0, Text(f"{len(self.warnings)} warnings (all of them at the end)", style="yellow"))
        return Group(table, *lines)

    def __enter__(self) -> "LiveView":
        if self.live is not None:
            self.live.__enter__()
        return self

    def tick(self) -> None:
        if self.live is not None:
            self.live.update(self._render(False))
        elif (now := time.perf_counter()) - self._logged >= self.log_every:
            self._logged = now
            self.console.print(f"vflow: {total_line(self.stats, now - self.t0)}", markup=False, highlight=False)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
        self.console.print(self._render(True, failed=exc_type is not None))


class ChunkView:
    """The live view of a chunked run: frames across chunks with ETA, and each chunk's state."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.t0 = time.perf_counter()
        self.live = Live(Text("planning chunks..."), console=self.console, refresh_per_second=4, transient=True)
        self._start_frames: int | None = None

    def __enter__(self) -> "ChunkView":
        self.live.__enter__()
        return self

    def update(self, progress: "Progress") -> None:
        self.live.update(self._render(progress))

    def _render(self, progress: "Progress") -> Group:
        elapsed = time.perf_counter() - self.t0
        done = progress.frames_done
        if self._start_frames is None:
            self._start_frames = done  # reused chunks do not count for the speed
        fps = (done - self._start_frames) / elapsed if elapsed > 0 else 0.0
        eta = time.strftime("%H:%M:%S", time.gmtime((progress.frames_total - done) / fps)) if fps > 0 else "--:--:--"
        finished = sum(c.state == "done" for c in progress.chunks)
        head = Text(f"chunks {finished}/{len(progress.chunks)} ({progress.reused} reused, {len(progress.running)} "
                    f"running)  frames {done}/{progress.frames_total}  {fps:.1f} fps  elapsed "
                    f"{time.strftime('%H:%M:%S', time.gmtime(elapsed))}  ETA {eta}")
        marks = Text()
        for c in progress.chunks:  # one mark per chunk: done, running, pending
            if c.state == "done":
                marks.append("■", style="green")
            elif c.index in progress.running:
                marks.append("▶", style="yellow")
            else:
                marks.append("·", style="dim")
        return Group(head, marks)

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)
