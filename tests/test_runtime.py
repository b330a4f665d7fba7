"""The threaded runtime: order, generators, finish, fan-out/fan-in, backpressure, failure, cancel, report.

Graphs use the ``synthetic`` source and ``collect`` sink of ``vflow.testing`` plus the small stages below.
Runtime: about 3.5 s of tests on 2 cores (plus importing torch and PyAV).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch

import vflow
from vflow.pipeline.runner import JOIN_S
from vflow.testing import Collect, SyntheticSource, synthetic_info


def vflow_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("vflow:")]


def graph(stages: dict[str, Any], *edges: str, queue_size: int = 4) -> dict[str, Any]:
    return {"runtime": {"queue_size": queue_size}, "stages": stages, "edges": list(edges)}


@vflow.stage("rt-identity")
class Identity(vflow.Stage):
    """Passes batches on unchanged, after sleeping ``sleep_ms`` for each."""

    def __init__(self, sleep_ms: int = 0) -> None:
        self.sleep_s = sleep_ms / 1000

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        time.sleep(self.sleep_s)
        return batch


@vflow.stage("rt-pick")
class Pick(vflow.Stage):
    """A generator: yields one single-frame batch per frame whose pts is listed (0..n items per batch)."""

    frame_count_changes = "a trim: keeps only the listed pts"

    def __init__(self, keep: str = "") -> None:
        self.keep = {int(p) for p in keep.split(",") if p}
        self.yields: list[int] = []

    def process(self, batch: vflow.FrameBatch) -> Iterator[vflow.FrameBatch]:
        n = 0
        for i, p in enumerate(batch.pts.tolist()):
            if p in self.keep:
                n += 1
                yield batch.replace(frames=batch.frames[i:i + 1].clone(), pts=batch.pts[i:i + 1].clone(),
                                    scene=batch.scene[i:i + 1].clone())
        self.yields.append(n)


@vflow.stage("rt-delay")
class Delay(vflow.Stage):
    """Holds each batch back by one; ``finish`` yields the last one."""

    def __init__(self) -> None:
        self.held: vflow.FrameBatch | None = None

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch | None:
        out, self.held = self.held, batch
        return out

    def finish(self) -> Iterator[vflow.FrameBatch]:
        if self.held is not None:
            yield self.held


@vflow.stage("rt-zip")
class Zip(vflow.Stage):
    """Fan-in: counts frames per input; at finish notes what it had seen and emits the last batch of ``b``."""

    inputs = {"a": vflow.FrameBatch, "b": vflow.FrameBatch}

    def __init__(self) -> None:
        self.frames = {"a": 0, "b": 0}
        self.last_b: vflow.FrameBatch | None = None
        self.at_finish: dict[str, int] | None = None

    def setup(self, ctx: vflow.StageContext) -> dict[str, vflow.VideoInfo]:
        return {"video": ctx.inputs["a"]}

    def process_port(self, port: str, batch: vflow.FrameBatch) -> None:
        self.frames[port] += len(batch)
        self.last_b = batch if port == "b" else self.last_b

    def finish(self) -> vflow.FrameBatch:
        self.at_finish = dict(self.frames)
        return self.last_b


@vflow.stage("rt-slow")
class Slow(Collect):
    """A collecting sink that sleeps per batch and measures how far its source has run ahead."""

    def __init__(self, sleep_ms: int = 10) -> None:
        super().__init__()
        self.sleep_s = sleep_ms / 1000
        self.source: Counting | None = None
        self.leads: list[int] = []

    def process_port(self, port: str, item: Any) -> None:
        super().process_port(port, item)
        if self.source is not None:
            self.leads.append(self.source.produced - len(self.batches))
        time.sleep(self.sleep_s)


@vflow.stage("rt-counting")
class Counting(SyntheticSource):
    """A synthetic source that counts the batches it produced."""

    def __init__(self, frames: int = 16, batch: int = 4) -> None:
        super().__init__(frames=frames, batch=batch)
        self.produced = 0

    def generate(self) -> Iterator[vflow.FrameBatch]:
        for b in super().generate():
            self.produced += 1
            yield b


@vflow.stage("rt-endless")
class Endless(vflow.Stage):
    """A source that never ends (until cancelled); records teardown."""

    inputs: dict[str, type] = {}

    def __init__(self) -> None:
        self.torn_down: list[bool] = []

    def setup(self, ctx: vflow.StageContext) -> dict[str, vflow.VideoInfo]:
        return {"video": synthetic_info()}

    def generate(self) -> Iterator[vflow.FrameBatch]:
        frame = torch.zeros(1, 48, 64, 3, dtype=torch.uint8)
        i = 0
        while True:
            yield vflow.FrameBatch(frames=frame, pts=torch.tensor([i]), time_base=synthetic_info().time_base, seq=i)
            i += 1

    def teardown(self, ok: bool) -> None:
        self.torn_down.append(ok)


@vflow.stage("rt-fail")
class Fail(vflow.Stage):
    """Raises ValueError in ``process`` at pts ``at`` (or in ``finish`` when at is -1); records teardown."""

    def __init__(self, at: int = 8) -> None:
        self.at = at
        self.torn_down: list[bool] = []

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        if self.at in batch.pts.tolist():
            raise ValueError(f"boom at {self.at}")
        return batch

    def finish(self) -> None:
        if self.at == -1:
            raise ValueError("boom in finish")

    def teardown(self, ok: bool) -> None:
        self.torn_down.append(ok)


@vflow.stage("rt-fail-source")
class FailSource(SyntheticSource):
    """A synthetic source whose generator raises after its third batch."""

    def generate(self) -> Iterator[vflow.FrameBatch]:
        for i, b in enumerate(super().generate()):
            if i == 3:
                raise OSError("disk gone")
            yield b


# -- order and items ------------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_every_frame_arrives_once_in_order_unchanged() -> None:
    p = vflow.Pipeline.load(graph({"src": {"type": "synthetic", "params": {"frames": 50, "batch": 3}},
                                   "mid": "rt-identity", "sink": "collect"}, "src -> mid -> sink"))
    p.run()
    expected = list(SyntheticSource(frames=50, batch=3).generate())
    sink = p.stage("sink")
    assert sink.pts() == list(range(50))
    assert [b.seq for b in sink.batches] == list(range(17))
    assert torch.equal(sink.frames(), torch.cat([b.frames for b in expected]))
    assert sink.finished


@pytest.mark.timeout(30)
def test_generator_stage_yields_zero_to_n_items() -> None:
    p = vflow.Pipeline.load(graph({"src": {"type": "synthetic", "params": {"frames": 12, "batch": 4}},
                                   "pick": {"type": "rt-pick", "params": {"keep": "0,1,2,9"}},
                                   "sink": "collect"}, "src -> pick -> sink"))
    report = p.run()
    assert p.stage("pick").yields == [3, 0, 1]
    assert [b.pts.tolist() for b in p.stage("sink").batches] == [[0], [1], [2], [9]]
    assert (report.stages["pick"].frames_in, report.stages["pick"].frames_out) == (12, 4)


class Dropper(vflow.Stage):
    """Loses the last frame of every batch and does not say so."""

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        return batch.replace(frames=batch.frames[:-1].clone(), pts=batch.pts[:-1].clone(),
                             scene=batch.scene[:-1].clone())


@pytest.mark.timeout(30)
def test_undeclared_frame_loss_fails_the_run() -> None:
    vflow.stage("rt-dropper")(Dropper)
    p = vflow.Pipeline.load(graph({"src": {"type": "synthetic", "params": {"frames": 12, "batch": 4}},
                                   "drop": "rt-dropper", "sink": "collect"}, "src -> drop -> sink"))
    with pytest.raises(vflow.StageError, match=r"stage 'drop' .*took 12 frames and emitted 9: 3 frame\(s\) lost"):
        p.run()


@pytest.mark.timeout(30)
def test_finish_yields_at_end_of_stream() -> None:
    p = vflow.Pipeline.load(graph({"src": {"type": "synthetic", "params": {"frames": 10, "batch": 4}},
                                   "delay": "rt-delay", "sink": "collect"}, "src -> delay -> sink"))
    p.run()
    assert [b.pts.tolist() for b in p.stage("sink").batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@pytest.mark.timeout(30)
def test_fan_out_gives_every_frame_to_each_branch() -> None:
    p = vflow.Pipeline.load(graph({"src": {"type": "synthetic", "params": {"frames": 30, "batch": 4}},
                                   "a": "collect", "b": {"type": "rt-slow", "params": {"sleep_ms": 2}}},
                                  "src -> a", "src -> b"))
    p.run()
    assert p.stage("a").pts() == list(range(30))
    assert p.stage("b").pts() == list(range(30))
    assert p.stage("a").batches[3] is p.stage("b").batches[3]  # shared, not copied


@pytest.mark.timeout(30)
def test_fan_in_finishes_after_both_inputs_ended() -> None:
    p = vflow.Pipeline.load(graph({"fast": {"type": "synthetic", "params": {"frames": 4}},
                                   "slow_src": {"type": "synthetic", "params": {"frames": 24, "batch": 2}},
                                   "lag": {"type": "rt-identity", "params": {"sleep_ms": 5}},
                                   "zip": "rt-zip", "sink": "collect"},
                                  "fast -> zip.a", "slow_src -> lag -> zip.b", "zip -> sink"))
    p.run()
    assert p.stage("zip").at_finish == {"a": 4, "b": 24}
    assert p.stage("sink").pts() == [22, 23]


# -- backpressure ---------------------------------------------------------------------------------

@pytest.mark.timeout(30)
@pytest.mark.parametrize("queue_size", [1, 3])
def test_slow_sink_holds_the_source_back(queue_size: int) -> None:
    p = vflow.Pipeline.load(graph({"src": {"type": "rt-counting", "params": {"frames": 30, "batch": 1}},
                                   "sink": {"type": "rt-slow", "params": {"sleep_ms": 10}}},
                                  "src -> sink", queue_size=queue_size)).build()
    p.stage("sink").source = p.stage("src")
    report = p.run()
    # ahead of the sink: at most queue_size batches queued + the one the source holds, blocked on the full queue
    assert queue_size <= max(p.stage("sink").leads) <= queue_size + 1
    assert report.stages["sink"].peak_queue == queue_size
    assert p.stage("sink").pts() == list(range(30))


@pytest.mark.timeout(30)
def test_per_stage_queue_size_overrides_the_runtime_one() -> None:
    p = vflow.Pipeline.load(graph({"src": {"type": "rt-counting", "params": {"frames": 20, "batch": 1}},
                                   "mid": {"type": "rt-identity"},
                                   "sink": {"type": "rt-slow", "params": {"sleep_ms": 10}, "queue_size": 1}},
                                  "src -> mid -> sink", queue_size=5)).build()
    p.stage("sink").source = p.stage("src")
    report = p.run()
    assert report.stages["sink"].queue_size == 1 and report.stages["mid"].queue_size == 5
    assert report.stages["sink"].peak_queue == 1
    # ahead of the sink: at most the two queues (5 + 1) and one batch in hand at each of src and mid
    assert 5 + 1 <= max(p.stage("sink").leads) <= 5 + 1 + 2


# -- failure and cancel ---------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_stage_error_names_stage_and_pts_and_stops_everything() -> None:
    p = vflow.Pipeline.load(graph({"src": {"type": "synthetic", "params": {"frames": 400, "batch": 4}},
                                   "bad": {"type": "rt-fail", "params": {"at": 8}}, "sink": "collect"},
                                  "src -> bad -> sink", queue_size=2))
    with pytest.raises(vflow.StageError) as info:
        p.run()
    err = info.value
    assert str(err) == "stage 'bad' (rt-fail) failed at pts 0.320 s: ValueError: boom at 8"
    assert (err.stage, err.type_name, err.pts) == ("bad", "rt-fail", 0.32)
    assert isinstance(err.__cause__, ValueError) and str(err.__cause__) == "boom at 8"
    assert [s.state for s in p.stats] == ["stopped", "failed", "stopped"]  # reported once, by the failing stage
    assert p.stage("bad").torn_down == [False]
    assert not p.stage("sink").finished
    received = p.stage("sink").pts()
    assert received == list(range(len(received))) and len(received) <= 8  # what got through before the stop
    assert vflow_threads() == []


@pytest.mark.timeout(30)
def test_error_in_finish_is_a_stage_error() -> None:
    p = vflow.Pipeline.load(graph({"src": {"type": "synthetic", "params": {"frames": 8}},
                                   "bad": {"type": "rt-fail", "params": {"at": -1}}, "sink": "collect"},
                                  "src -> bad -> sink"))
    with pytest.raises(vflow.StageError, match=r"^stage 'bad' \(rt-fail\) failed at pts 0.160 s: "
                                               r"ValueError: boom in finish$"):
        p.run()
    assert not p.stage("sink").finished
    assert vflow_threads() == []


@pytest.mark.timeout(30)
def test_error_in_a_source_stops_the_graph() -> None:
    p = vflow.Pipeline.load(graph({"src": {"type": "rt-fail-source", "params": {"frames": 40, "batch": 2}},
                                   "sink": "collect"}, "src -> sink"))
    with pytest.raises(vflow.StageError) as info:
        p.run()
    assert str(info.value) == "stage 'src' (rt-fail-source) failed at pts 0.160 s: OSError: disk gone"
    assert isinstance(info.value.__cause__, OSError)
    received = p.stage("sink").pts()
    assert received == list(range(len(received))) and len(received) <= 6
    assert not p.stage("sink").finished
    assert vflow_threads() == []


@pytest.mark.timeout(30)
def test_failing_sink_unblocks_a_source_waiting_on_a_full_queue() -> None:
    p = vflow.Pipeline.load(graph({"src": "rt-endless", "mid": "rt-identity",
                                   "bad": {"type": "rt-fail", "params": {"at": 50}}, "sink": "collect"},
                                  "src -> mid -> bad -> sink", queue_size=1))
    t0 = time.monotonic()
    with pytest.raises(vflow.StageError, match="stage 'bad'"):
        p.run()
    assert time.monotonic() - t0 < 10
    assert p.stage("src").torn_down == [False]
    assert vflow_threads() == []


@pytest.mark.timeout(30)
def test_cancel_from_another_thread_stops_within_2_s() -> None:
    p = vflow.Pipeline.load(graph({"src": "rt-endless", "sink": {"type": "rt-slow", "params": {"sleep_ms": 1}}},
                                  "src -> sink"))
    stopped_at: list[float] = []

    def cancel() -> None:  # once frames flow: a loaded machine may take longer than any fixed sleep to start
        deadline = time.monotonic() + 20
        while not p.stage("sink").batches and time.monotonic() < deadline:
            time.sleep(0.01)
        stopped_at.append(time.monotonic())
        p.cancel()

    canceller = threading.Thread(target=cancel)
    canceller.start()
    with pytest.raises(vflow.Cancelled, match="the run was cancelled"):
        p.run()
    elapsed = time.monotonic() - stopped_at[0]
    canceller.join()
    assert elapsed < JOIN_S
    assert len(p.stage("sink").batches) > 0 and not p.stage("sink").finished
    assert p.stage("src").torn_down == [False]
    assert vflow_threads() == []


@pytest.mark.timeout(30)
def test_a_pipeline_runs_once() -> None:
    p = vflow.Pipeline.load(graph({"src": "synthetic", "sink": "collect"}, "src -> sink"))
    p.run()
    with pytest.raises(vflow.VflowError, match="a Pipeline runs once"):
        p.run()


# -- report ---------------------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_report_counts_frames_per_stage() -> None:
    report = vflow.Pipeline.load(graph({"src": {"type": "synthetic", "params": {"frames": 10, "batch": 3}},
                                        "pick": {"type": "rt-pick", "params": {"keep": "1,2,3,7"}},
                                        "sink": "collect"}, "src -> pick -> sink")).run()
    src, pick, sink = (report.stages[n] for n in ("src", "pick", "sink"))
    assert report.ok and report.wall_s > 0
    assert (src.frames_in, src.frames_out) == (0, 10)
    assert (pick.frames_in, pick.frames_out, pick.items_in) == (10, 4, 4)
    assert (sink.frames_in, sink.frames_out, sink.items_in) == (4, 0, 4)
    assert [s.state for s in report.stages.values()] == ["done"] * 3
    assert report.to_dict()["stages"]["pick"]["frames_out"] == 4
