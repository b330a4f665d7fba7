"""Stop signals: SIGTERM and SIGHUP are handled like Ctrl-C (SIGINT), as a ``KeyboardInterrupt`` in the main
thread, so every way of stopping a run stops every stage, removes partial output and exits 128 + the signal.

This module is light on purpose: the command line installs it before torch and PyAV load.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
if hasattr(signal, "SIGHUP"):
    _NAMES[signal.SIGHUP] = "SIGHUP"


class Interrupted(KeyboardInterrupt):
    """A stop signal; ``signum`` gives the exit status (128 + signum), ``what`` names it."""

    def __init__(self, signum: int):
        super().__init__(_NAMES.get(signum, f"signal {signum}"))
        self.signum, self.what = signum, _NAMES.get(signum, f"signal {signum}")


def _raise(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextmanager
def stop_signals() -> Iterator[None]:
    """Within this block (main thread only), SIGINT, SIGTERM and SIGHUP raise ``Interrupted``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in _NAMES}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
