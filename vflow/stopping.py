"""Stop signals: SIGTERM and SIGHUP are handled like Ctrl-C (SIGINT), so every way of stopping a run stops every
stage, removes partial output and exits 128 + the signal.

While frames flow (inside ``while_running``) a signal raises ``Interrupted`` in the main thread, which then only
waits on the stage threads and turns it into a clean stop. Before and after (imports, building the graph)
nothing is half written, and raising there could land inside a C++ callback (torch's import), which aborts the
process instead: the program then says so in one line and leaves at once.

This module is light on purpose: the command line installs it before torch and PyAV load.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator

_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
if hasattr(signal, "SIGHUP"):
    _NAMES[signal.SIGHUP] = "SIGHUP"
_running = threading.Event()


class Interrupted(KeyboardInterrupt):
    """A stop signal; ``signum`` gives the exit status (128 + signum), ``what`` names it."""

    def __init__(self, signum: int):
        super().__init__(_NAMES.get(signum, f"signal {signum}"))
        self.signum, self.what = signum, _NAMES.get(signum, f"signal {signum}")


def _handle(signum: int, frame: Any) -> None:
    if _running.is_set():
        raise Interrupted(signum)
    print(f"vflow: interrupted ({_NAMES.get(signum, signum)}); no file was left half written", file=sys.stderr,
          flush=True)
    os._exit(128 + signum)


@contextmanager
def stop_signals() -> Iterator[None]:
    """Within this block (main thread only), SIGINT, SIGTERM and SIGHUP stop the program (see the module)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handle) for s in _NAMES}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def while_running() -> Iterator[None]:
    """The run itself: stop signals raise ``Interrupted`` in the main thread."""
    _running.set()
    try:
        yield
    finally:
        _running.clear()
