"""Stopping: Ctrl-C, SIGTERM/SIGHUP and ``Pipeline.cancel`` keep their deadline even while a stage is inside a
long call; Ctrl-C while vflow starts is one line; an error in the main thread's loop stops every stage and is
raised as itself; numba's cache never breaks the import. Runtime: about 20 s on 2 cores."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from media_cases import partials, write_test_clip

import vflow
import vflow.testing  # noqa: F401 - the synthetic source and collect sink
from vflow import numba_cache_dir
from vflow.pipeline.runner import JOIN_S

BUSY = '''
import pathlib, time, vflow

class Busy(vflow.Stage):
    """Spends ``seconds`` inside process() (a CPU restore batch takes seconds)."""

    def __init__(self, seconds: float = 30.0):
        self.seconds = seconds

    def process(self, batch):
        pathlib.Path(__file__).with_name("entered").touch()
        time.sleep(self.seconds)
        return batch
'''


def stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("vflow:")]


@pytest.fixture()
def busy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "vflow_busy.py").write_text(BUSY)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "vflow_busy"


@pytest.mark.timeout(60)
def test_ctrl_c_inside_a_long_process_call_exits_at_once(tmp_path: Path, busy_module: str) -> None:
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_test_clip(src, 50)
    graph = tmp_path / "g.yaml"
    graph.write_text(f'''
vflow: 1
stages:
  decode: {{type: decode, params: {{path: "${{input}}"}}}}
  busy: {{type: "{busy_module}:Busy"}}
  encode: {{type: encode, params: {{path: "${{output}}", preset: ultrafast}}}}
edges: [decode.video -> busy -> encode.video]
''')
    env = {"PYTHONPATH": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "vflow", "run", str(graph), "-i", str(src), "-o", str(out), "-q",
                             "--allow-module", busy_module], stderr=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, **env})
    deadline = time.monotonic() + 30
    while not (tmp_path / "entered").exists():  # until the busy stage is asleep inside process()
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()  # type: ignore[union-attr]
        time.sleep(0.05)
    proc.send_signal(2)
    sent = time.monotonic()
    err = proc.communicate(timeout=20)[1]
    took = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert took < JOIN_S + 1.0, f"{took:.2f} s"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "busy" in err, err
    assert not out.exists() and not partials(tmp_path)


@pytest.mark.timeout(30)
def test_cancel_keeps_its_deadline_with_a_stage_inside_a_long_call(busy_module: str) -> None:
    p = vflow.Pipeline.load({"stages": {"src": {"type": "synthetic", "params": {"frames": 64}},
                                        "busy": {"type": f"{busy_module}:Busy", "params": {"seconds": 5.0}},
                                        "sink": "collect"}, "edges": ["src -> busy -> sink"]},
                            allow_modules=[busy_module]).build()
    threading.Timer(0.5, p.cancel).start()
    t0 = time.monotonic()
    with pytest.raises(vflow.Cancelled, match="busy"):
        p.run()
    assert time.monotonic() - t0 < 0.5 + JOIN_S + 0.5
    deadline = time.monotonic() + 10
    while stage_threads() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stage_threads() == []  # it returned, saw the stop and left


@pytest.mark.timeout(30)
def test_an_error_in_the_main_loop_stops_every_stage_and_is_raised() -> None:
    p = vflow.Pipeline.load({"stages": {"src": {"type": "synthetic", "params": {"frames": 100000}},
                                        "sink": "collect"}, "edges": ["src -> sink"]})

    def tick() -> None:
        raise RuntimeError("the progress view broke")

    with pytest.raises(RuntimeError, match="the progress view broke"):
        p.run(on_tick=tick)
    assert p.cancel_event.is_set()
    deadline = time.monotonic() + JOIN_S + 1
    while stage_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stage_threads() == []


@pytest.fixture(scope="module")
def python_startup() -> float:
    """Seconds the interpreter itself takes to start (its site packages): a Ctrl-C before that is Python's."""
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.monotonic() - t0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("delay", [0.05, 0.3, 0.8])
def test_ctrl_c_while_starting_is_one_line(tmp_path: Path, delay: float, python_startup: float) -> None:
    """While vflow imports torch, PyAV and numba, and builds the graph."""
    src = tmp_path / "in.mp4"
    write_test_clip(src, 4)
    proc = subprocess.Popen([sys.executable, "-m", "vflow", "run", "copy", "-i", str(src), "-o",
                             str(tmp_path / "out.mp4"), "-q"], stderr=subprocess.PIPE, text=True)
    time.sleep(python_startup + delay)
    proc.send_signal(2)
    err = proc.communicate(timeout=20)[1]
    assert proc.returncode in (0, 130), err  # 0: it had already finished
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    assert not partials(tmp_path)


def test_numba_cache_falls_back_when_nothing_is_writable(tmp_path: Path) -> None:
    """Neither the package folder nor HOME writable (a read-only install, a service user): a temp folder."""
    locked = Path("/proc/self")  # not writable, even for root
    assert numba_cache_dir(locked, locked) is not None
    (tmp_path / "kernels").mkdir()
    assert numba_cache_dir(tmp_path, locked) is None  # the package folder takes the cache
    (tmp_path / ".cache").mkdir()
    assert numba_cache_dir(locked, tmp_path) is None  # the user's cache folder takes it


@pytest.mark.timeout(60)
def test_vflow_imports_with_an_unwritable_home(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "import vflow.kernels.yuv, vflow; print('ok')"],
                          env={**__import__("os").environ, "HOME": "/proc/self"}, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
