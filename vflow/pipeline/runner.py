"""The runtime: one thread per stage, a bounded inbox per stage (per input port for a stage that pairs its
inputs), in-band EOS and failure, cancel and joins."""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from .errors import Cancelled, StageError, VflowError
from .frames import AudioChunk, FrameBatch
from .signals import EOS, StageFailure
from .stage import Stage, iter_results, port_kind

POLL_S = 0.05      # how often blocked waits look at the cancel flag
JOIN_S = 1.5       # how long a stop may wait for the stage threads before it abandons the busy ones


class _Stop(Exception):
    """Raised inside a stage thread when the run is cancelled or an upstream stage failed."""


@dataclass
class StageStats:
    """Live figures of one stage; the progress view reads them while the run goes on."""

    name: str
    type_name: str
    queue_size: int
    expected_frames: int | None = None
    frames_in: int = 0
    frames_out: int = 0
    items_in: int = 0
    busy_s: float = 0.0
    wait_s: float = 0.0
    wall_s: float = 0.0
    queue_fill: int = 0
    peak_queue: int = 0
    state: str = "waiting"
    last_pts: float | None = None


@dataclass
class Report:
    """What a run did: per-stage frame counts, times and peak queue fill, and its warnings (plain sentences:
    damaged frames, timestamp repairs, dropped streams)."""

    ok: bool
    wall_s: float
    stages: dict[str, StageStats] = field(default_factory=dict)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "wall_s": round(self.wall_s, 4), "error": self.error,
                "warnings": list(self.warnings), "stages": {n: asdict(s) for n, s in self.stages.items()}}


class FrameCountError(VflowError):
    """A stage emitted a different number of frames than it took, without declaring why."""


@dataclass
class Node:
    """A stage at run time: its instance, inbox and outgoing edges per port."""

    name: str
    stage: Stage
    stats: StageStats
    n_inputs: int
    inbox: "queue.Queue[tuple[str, Any]] | None"
    routes: dict[str, list[tuple["Node", str]]]
    lock: threading.Lock = field(default_factory=threading.Lock)
    finished: bool = False     # its thread has left the stage's code for good
    abandoned: bool = False    # the run stopped while its thread was still inside the stage: it tears down itself
    port_inboxes: "dict[str, queue.Queue[tuple[str, Any]]]" = field(default_factory=dict)  # paired_inputs only

    def __post_init__(self) -> None:
        if self.stage.paired_inputs and self.inbox is not None:  # a bounded inbox per port: backpressure per input
            self.port_inboxes = {p: queue.Queue(maxsize=self.inbox.maxsize) for p in self.stage.inputs}

    def abandon(self) -> bool:
        """Hand teardown to the stage's own thread if it is still running; True if it was."""
        with self.lock:
            self.abandoned = not self.finished
            return self.abandoned


def _check_frame_count(node: Node) -> None:
    """The frame-accounting invariant of a stage with one video input and video out (the stage contract)."""
    stage, stats = node.stage, node.stats
    if stage.frame_count_changes or list(stage.inputs.values()).count(FrameBatch) != 1 \
            or FrameBatch not in stage.outputs.values() or stats.frames_in == stats.frames_out:
        return
    what = "lost" if stats.frames_out < stats.frames_in else "added"
    raise FrameCountError(f"took {stats.frames_in} frames and emitted {stats.frames_out}: "
                          f"{abs(stats.frames_in - stats.frames_out)} frame(s) {what}, and the stage does not "
                          f"declare that it changes the frame count (Stage.frame_count_changes)")


class Runner:
    """Runs built nodes to completion; the first failure cancels the whole graph."""

    def __init__(self, nodes: list[Node], cancel: threading.Event):
        self.nodes = nodes
        self.cancel = cancel
        self._error: StageError | None = None
        self._lock = threading.Lock()
        self.abandoned: list[str] = []
        self._live = 0      # stage threads not yet ended
        self._ended = threading.Condition(self._lock)  # notified as each one ends
        self._waiting = 0   # of those, how many are inside a blocking get or put

    def _count_wait(self, delta: int) -> None:
        with self._lock:
            self._waiting += delta

    # -- stage threads -------------------------------------------------------------------------
    def _get(self, node: Node, open_ports: Counter[str], taken: dict[str, int]) -> tuple[str, Any]:
        """The next item from ``node``'s inbox. A ``paired_inputs`` stage takes it from the open port that has
        delivered the fewest frames, so the faster producer waits on its own full inbox. Should every stage
        thread be waiting as well (one source feeding both ports, through a stage that holds more frames than
        the queues do), an item from any port is taken instead: the run never deadlocks, it buffers."""
        t0 = time.perf_counter()
        self._count_wait(1)
        stuck = 0
        try:
            while True:
                if self.cancel.is_set():
                    raise _Stop
                box = node.inbox
                if node.port_inboxes:
                    port = min((p for p, n in open_ports.items() if n > 0), key=taken.__getitem__)
                    box = node.port_inboxes[port]
                assert box is not None
                try:
                    got = box.get(timeout=POLL_S)
                except queue.Empty:
                    if not node.port_inboxes:
                        continue
                    stuck = stuck + 1 if self._waiting >= self._live else 0
                    full = [b for p, b in node.port_inboxes.items() if open_ports[p] > 0 and b.qsize()]
                    if stuck < 3 or not full:
                        continue
                    got = full[0].get_nowait()
                boxes = node.port_inboxes.values() if node.port_inboxes else (box,)
                node.stats.queue_fill = sum(b.qsize() for b in boxes)
                return got
        finally:
            self._count_wait(-1)
            node.stats.wait_s += time.perf_counter() - t0

    def _put(self, src: Node, dst: Node, msg: tuple[str, Any], sentinel: bool = False) -> None:
        """Put into ``dst``'s bounded inbox, blocking (backpressure) until there is room or the run stops."""
        box = dst.port_inboxes.get(msg[0], dst.inbox)
        assert box is not None
        t0 = time.perf_counter()
        self._count_wait(1)
        try:
            while True:
                if self.cancel.is_set() and not sentinel:
                    raise _Stop
                try:
                    box.put(msg, timeout=POLL_S)
                except queue.Full:
                    if sentinel and self.cancel.is_set():
                        return  # best effort: downstream sees the cancel flag anyway
                    continue
                fill = box.qsize()
                dst.stats.queue_fill = fill
                dst.stats.peak_queue = max(dst.stats.peak_queue, fill)
                return
        finally:
            self._count_wait(-1)
            src.stats.wait_s += time.perf_counter() - t0

    def _emit(self, node: Node, result: Any) -> None:
        ports = node.stage.outputs
        if len(ports) == 1:
            port, item = next(iter(ports)), result
        elif isinstance(result, tuple) and len(result) == 2 and result[0] in ports:
            port, item = result
        else:
            raise TypeError(f"a stage with several outputs ({', '.join(ports)}) must yield (port, item) pairs")
        kind = port_kind(item)
        if kind is not ports[port]:
            raise TypeError(f"output port '{port}' carries {ports[port].__name__}, got {kind.__name__}")
        if isinstance(item, FrameBatch):
            node.stats.frames_out += len(item)
        for dst, dst_port in node.routes.get(port, ()):
            self._put(node, dst, (dst_port, item))

    def _broadcast(self, node: Node, signal: Any) -> None:
        for edges in node.routes.values():
            for dst, dst_port in edges:
                self._put(node, dst, (dst_port, signal), sentinel=True)

    def _fail(self, node: Node, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                err = StageError(node.name, node.stats.type_name, node.stats.last_pts, exc)
                err.__cause__ = exc
                self._error = err
        self.cancel.set()

    def _main(self, node: Node) -> None:
        stats, stage = node.stats, node.stage
        t_start = time.perf_counter()
        stats.state = "running"
        try:
            if node.n_inputs == 0:
                for result in stage.generate():
                    self._note_pts(stats, result)
                    self._emit(node, result)
            else:
                open_inputs = node.n_inputs
                open_ports = Counter(p for n in self.nodes for edges in n.routes.values() for d, p in edges if d is node)
                taken = dict.fromkeys(open_ports, 0)
                while open_inputs:
                    port, item = self._get(node, open_ports, taken)
                    if item is EOS:
                        open_inputs -= 1
                        open_ports[port] -= 1
                        if open_inputs and not open_ports[port]:
                            stage.input_ended(port)
                        continue
                    if isinstance(item, StageFailure):
                        raise _Stop
                    stats.items_in += 1
                    taken[port] += len(item) if isinstance(item, FrameBatch) else 1
                    if isinstance(item, FrameBatch):
                        stats.frames_in += len(item)
                    self._note_pts(stats, item)
                    for result in iter_results(stage.process_port(port, item)):
                        self._emit(node, result)
                for result in iter_results(stage.finish()):
                    self._emit(node, result)
                _check_frame_count(node)
            self._broadcast(node, EOS)
            stats.state = "done"
        except _Stop:
            stats.state = "stopped"
            self._broadcast(node, StageFailure(node.name))
        except BaseException as exc:  # noqa: BLE001 - every failure is reported once, with the stage
            stats.state = "failed"
            self._fail(node, exc)
            self._broadcast(node, StageFailure(node.name))
        finally:
            stats.wall_s = time.perf_counter() - t_start
            stats.busy_s = max(0.0, stats.wall_s - stats.wait_s)
            with node.lock:
                node.finished = True
                late = node.abandoned
            if late:  # the run has already returned: nobody else may touch this stage now
                safe_teardown(node, ok=False)
            with self._ended:
                self._live -= 1
                self._ended.notify_all()

    @staticmethod
    def _note_pts(stats: StageStats, item: Any) -> None:
        if isinstance(item, tuple) and len(item) == 2:
            item = item[1]
        if isinstance(item, FrameBatch) and len(item):
            stats.last_pts = item.seconds(0)
        elif isinstance(item, AudioChunk) and stats.last_pts is None:
            stats.last_pts = item.seconds()

    # -- main thread ---------------------------------------------------------------------------
    def run(self, on_tick: Callable[[], None] | None = None, tick_s: float = 0.1) -> None:
        """Start every stage thread and wait; raises StageError, or Cancelled on Ctrl-C, a stop signal or
        ``cancel``. Every stop keeps the deadline: a stage still busy inside its code after ``JOIN_S``
        is abandoned (it tears itself down when it returns) instead of holding the run."""
        threads = {n.name: threading.Thread(target=self._main, args=(n,), name=f"vflow:{n.name}", daemon=False)
                   for n in self.nodes}
        interrupt: BaseException | None = None
        self._live = len(threads)
        for t in threads.values():
            t.start()
        try:
            # waits on a condition, never in Thread.join: a KeyboardInterrupt inside join (Python < 3.12)
            # marks the joined thread as ended while it still runs
            while not self.cancel.is_set() and not self._wait_ended(tick_s):
                if on_tick is not None:
                    on_tick()
        except KeyboardInterrupt as e:  # Ctrl-C, or a stop signal the CLI turned into one
            interrupt = e
        finally:
            self.cancel.set()  # whatever happened in this loop, no stage runs on headless
            self._wait_ended(JOIN_S)
            self.abandoned = [n.name for n in self.nodes if n.abandon()]
            for name, t in threads.items():
                if name not in self.abandoned:
                    t.join(timeout=POLL_S)  # it has left the stage's code; let the thread itself end
        if on_tick is not None:
            on_tick()
        if self._error is not None:
            raise self._error
        stopped = "every stage stopped" if not self.abandoned else \
            f"stage(s) {', '.join(self.abandoned)} were inside a long call and are left to return, the others stopped"
        if interrupt is not None:
            what = getattr(interrupt, "what", "Ctrl-C")
            raise Cancelled(f"interrupted ({what}): {stopped}; partial output was removed", interrupt)
        if any(n.stats.state != "done" for n in self.nodes):
            raise Cancelled(f"the run was cancelled: {stopped}; partial output was removed")

    def _wait_ended(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for every stage thread to end; True if they all have."""
        deadline = time.monotonic() + timeout
        with self._ended:
            while self._live and (left := deadline - time.monotonic()) > 0:
                self._ended.wait(left)
            return self._live == 0


def safe_teardown(node: Node, ok: bool) -> VflowError | None:
    """``teardown`` that reports instead of raising; a failed teardown on success is undone (``ok=False``)."""
    try:
        node.stage.teardown(ok)
    except Exception as e:  # noqa: BLE001
        err = VflowError(f"stage '{node.name}' ({node.stats.type_name}) failed to finish its output: {e}")
        if ok:
            try:
                node.stage.teardown(False)
            except Exception:  # noqa: BLE001
                pass
        return err
    return None
