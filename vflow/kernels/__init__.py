"""Numba kernels for the classical restoration stages: scene cuts, temporal denoise, deflicker, metrics."""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def _thread_safe_layer() -> bool:
    """Whether numba's threading layer takes parallel kernels from several threads at once (TBB, OpenMP).
    Its ``workqueue`` fallback (no TBB, no OpenMP) aborts the whole process when two stage threads launch one
    each."""
    import numba

    try:  # what numba does at the first parallel launch: pick the layer, then ask it which one it took
        from numba.np.ufunc.parallel import _launch_threads

        _launch_threads()
        return numba.threading_layer() != "workqueue"
    except Exception:  # noqa: BLE001 - a numba without these internals: find the layer it would load
        if numba.config.THREADING_LAYER == "workqueue":
            return False
        for name in ("tbbpool", "omppool"):
            try:
                __import__(f"numba.np.ufunc.{name}")
                return True
            except ImportError:
                continue
        return False


THREAD_SAFE = _thread_safe_layer()
_LAUNCH = threading.Lock()  # under workqueue: one parallel kernel at a time, process-wide


def serialised(kernel: F) -> F:
    """Decorate a ``parallel=True`` kernel called from Python (not from other jitted code): the dispatcher
    itself where the threading layer is thread-safe, else a wrapper that runs it under one shared lock."""
    if THREAD_SAFE:
        return kernel

    @functools.wraps(kernel)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LAUNCH:
            return kernel(*args, **kwargs)

    return locked  # type: ignore[return-value]
