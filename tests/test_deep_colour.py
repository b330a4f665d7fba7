"""Deep colour end to end: 10/12-bit, 4:2:2 and HDR sources keep their precision, chroma and tags."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import av
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vflow
from vflow.media.color import PLANAR, bits_of
from vflow.media.hdr import mastering_of
from vflow.pipeline.errors import GraphError
from vflow.pipeline.stage import iter_results
from vflow.stages.color import Color
from vflow.stages.colorize import Colorize
from vflow.stages.encode import keeping_format
from vflow.stages.metrics import Metrics
from vflow.stages.restore import Restore
from vflow.stages.scene_split import SceneSplit
from vflow.stages.temporal_smooth import TemporalSmooth
from vflow.stages.trim import Trim
from vflow.testing import check_stage_contract, synthetic_batches, synthetic_info

from helpers_media import DATA, run_cli

PQ_MASTER = ("master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):"
             "max-cll=1000,400")


def write_ramp(path: Path, pix_fmt: str, codec: str = "ffv1", frames: int = 6, width: int = 1024, height: int = 64,
               options: dict[str, str] | None = None, color: tuple[int, int, int, int] = (1, 1, 1, 1)) -> int:
    """A clip whose luma is a ramp over every limited-range level of ``pix_fmt``'s depth, moving a column a
    frame (a slow chroma ramp below it), and return how many luma levels it holds.
    ``color``: (matrix, range, primaries, transfer)."""
    fmt = PLANAR[pix_fmt]
    k = 1 << (fmt.depth - 8)
    lo, hi = 16 * k, 235 * k
    ramp = np.rint(lo + np.arange(width) * (hi - lo) / (width - 1)).astype(np.uint16)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        cc = stream.codec_context
        cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = color
        for i in range(frames):
            frame = av.VideoFrame(width, height, pix_fmt)
            for p, plane in enumerate(frame.planes):
                a = np.frombuffer(plane, fmt.dtype).reshape(plane.height, plane.line_size // fmt.dtype().itemsize)
                if p == 0:   # moving one column a frame, so that frames can be told apart
                    a[:, : plane.width] = np.roll(ramp, i)[None, :]
                else:  # neutral chroma above, a ramp around it below
                    cw = plane.width
                    a[:, :cw] = 128 * k
                    a[plane.height // 2:, :cw] = np.rint(128 * k + (np.arange(cw) - cw / 2) * 40 * k / cw)
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return len(np.unique(ramp))


def luma_levels(path: Path) -> tuple[int, str, av.VideoFrame]:
    """Distinct luma codes of the first frame's ramp rows (in its own depth), its pixel format, the frame."""
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        fmt = PLANAR[frame.format.name]
        plane = frame.planes[0]
        y = np.frombuffer(plane, fmt.dtype).reshape(plane.height, -1)[: plane.height // 2, : plane.width]
        return len(np.unique(y)), frame.format.name, frame


def one_stage_graph(d: Path, name: str, kind: str) -> dict[str, Any]:
    """decode ``d/in.mkv`` -> one stage -> encode ``d/o.mkv``, as a dict graph."""
    return {"vflow": 1, "stages": {"decode": {"type": "decode", "params": {"path": str(d / "in.mkv")}},
                                   name: {"type": kind},
                                   "encode": {"type": "encode", "params": {"path": str(d / "o.mkv")}}},
            "edges": [f"decode.video -> {name} -> encode.video"]}


def copy(src: Path, dst: Path, *sets: str) -> None:
    p = vflow.Pipeline.load("copy", input=str(src), output=str(dst))
    for s in sets:
        p.set(s)
    p.run()


@pytest.mark.timeout(120)
def test_a_10_bit_ramp_keeps_its_levels_through_copy_into_ffv1(tmp_path: Path) -> None:
    levels = write_ramp(tmp_path / "in.mkv", "yuv420p10le")
    assert levels == 877
    copy(tmp_path / "in.mkv", tmp_path / "out.mkv", "encode.codec=ffv1", "encode.crf=null", "encode.preset=null")
    kept, fmt, _ = luma_levels(tmp_path / "out.mkv")
    assert fmt == "yuv420p10le"            # no option but the codec: 10-bit out
    assert kept >= 0.99 * levels


@pytest.mark.timeout(120)
def test_asking_x264_for_10_bits_gives_10_bit_content(tmp_path: Path) -> None:
    """The issue's case: pix_fmt yuv420p10le used to give 220 of a 10-bit ramp's 877 levels (8-bit frames)."""
    levels = write_ramp(tmp_path / "in.mkv", "yuv420p10le")
    copy(tmp_path / "in.mkv", tmp_path / "out.mp4", "encode.pix_fmt=yuv420p10le")
    kept, fmt, _ = luma_levels(tmp_path / "out.mp4")
    assert fmt == "yuv420p10le" and kept >= 0.95 * levels


@pytest.mark.timeout(120)
def test_a_422_10_bit_ramp_stays_422_10_bit_through_copy_into_prores(tmp_path: Path) -> None:
    levels = write_ramp(tmp_path / "in.mkv", "yuv422p10le")
    copy(tmp_path / "in.mkv", tmp_path / "out.mov", "encode.codec=prores_ks", "encode.crf=null", "encode.preset=null")
    kept, fmt, _ = luma_levels(tmp_path / "out.mov")
    assert fmt == "yuv422p10le"
    assert kept >= 0.95 * levels


@pytest.mark.timeout(120)
@pytest.mark.parametrize("codec", ["libx265", "libsvtav1"])
def test_a_bt2020_pq_source_keeps_depth_tags_and_mastering_metadata(tmp_path: Path, codec: str) -> None:
    write_ramp(tmp_path / "in.mkv", "yuv420p10le", codec="libx265", color=(9, 1, 9, 16),
               options={"x265-params": f"log-level=error:{PQ_MASTER}"})
    copy(tmp_path / "in.mkv", tmp_path / "out.mkv", f"encode.codec={codec}", "encode.preset=null", "encode.crf=null")
    _, fmt, frame = luma_levels(tmp_path / "out.mkv")
    assert bits_of(fmt) == 10
    assert (frame.colorspace, frame.color_primaries, frame.color_trc) == (9, 9, 16)
    hdr = mastering_of(frame)
    assert hdr is not None and hdr.max_cll == 1000 and hdr.max_fall == 400
    assert hdr.luminance == pytest.approx((0.005, 1000.0), rel=2e-3)   # AV1 holds 1/16384 cd/m² steps
    assert hdr.primaries is not None and hdr.white is not None
    assert [c for p in hdr.primaries for c in p] == pytest.approx([0.68, 0.32, 0.265, 0.69, 0.15, 0.06], abs=1e-4)
    assert hdr.white == pytest.approx((0.3127, 0.329), abs=1e-4)


@pytest.mark.timeout(300)
def test_restore_classic_keeps_a_10_bit_ramp_10_bit(tmp_path: Path) -> None:
    write_ramp(tmp_path / "in.mkv", "yuv420p10le", frames=12)
    vflow.Pipeline.load("restore_classic", input=str(tmp_path / "in.mkv"), output=str(tmp_path / "out.mp4")).run()
    kept, fmt, _ = luma_levels(tmp_path / "out.mp4")
    assert fmt == "yuv420p10le"
    assert kept >= 600


@pytest.mark.timeout(60)
def test_an_8_bit_only_stage_refuses_deep_frames_naming_the_way_out(tmp_path: Path) -> None:
    @vflow.stage("test-eight-bit-only")
    class EightOnly(vflow.Stage):
        def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
            return batch

    write_ramp(tmp_path / "in.mkv", "yuv420p10le", frames=2)
    graph = one_stage_graph(tmp_path, "eight", "test-eight-bit-only")
    with pytest.raises(GraphError, match=r"stage 'eight'.*takes 8-bit frames.*16-bit.*yuv420p10le.*decode.depth: 8"):
        vflow.Pipeline.load(graph).build()
    p = vflow.Pipeline.load(graph)
    p.set("decode.depth=8")
    p.run()
    assert luma_levels(tmp_path / "o.mkv")[1] == "yuv420p"   # 8-bit frames: an 8-bit file


@pytest.mark.timeout(60)
def test_an_sdr_only_stage_refuses_pq_input(tmp_path: Path) -> None:
    write_ramp(tmp_path / "in.mkv", "yuv420p10le", frames=2, color=(9, 1, 9, 16))
    graph = one_stage_graph(tmp_path, "color", "color")
    with pytest.raises(GraphError, match=r"stage 'color'.*SDR.*PQ"):
        vflow.Pipeline.load(graph).build()


@pytest.mark.timeout(60)
def test_the_cli_names_the_stage_that_refuses_deep_frames(tmp_path: Path) -> None:
    write_ramp(tmp_path / "in.mkv", "yuv420p10le", frames=2, color=(9, 1, 9, 16))
    r = run_cli(["run", "restore_classic", "-i", str(tmp_path / "in.mkv"), "-o", str(tmp_path / "o.mp4")])
    assert r.returncode != 0 and "stage 'smooth'" in r.stderr and "PQ" in r.stderr, r.stderr
    assert not list(tmp_path.glob("o.mp4*"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(codec=st.sampled_from(["libx264", "libx265", "libsvtav1", "ffv1", "prores_ks"]),
       source=st.sampled_from(sorted(n for n in PLANAR if not n.startswith("yuvj")) + ["p010le", "nv12", "gray10le",
                                                                                        "rgb48le", "gbrp10le"]),
       depth=st.sampled_from([8, 16]))
def test_the_kept_format_is_one_the_codec_takes_and_loses_only_what_it_says(codec: str, source: str,
                                                                           depth: int) -> None:
    name, lost = keeping_format(codec, source, depth)
    assert name in [f.name for f in av.codec.Codec(codec, "w").video_formats]
    want = min(bits_of(source), 16) if depth == 16 else 8
    if codec == "ffv1" and depth == 8:
        assert name == "bgr0"
    elif bits_of(name) < want:
        assert f"{bits_of(name)}-bit of {want}" in lost
    if not lost and source in PLANAR and not (codec == "ffv1" and depth == 8):
        s, o = PLANAR[source], PLANAR[name]
        assert o.sx + o.sy <= s.sx + s.sy


# -- every built-in stage at 16 bits --------------------------------------------------------------

REFERENCE = DATA / "images" / "documerica" / "557061.jpg"
SIXTEEN: dict[str, Callable[[], vflow.Stage]] = {
    "scene_split": lambda: SceneSplit(),
    "denoise": lambda: TemporalSmooth(mode="denoise"),
    "deflicker": lambda: TemporalSmooth(mode="deflicker", window=9),
    "both": lambda: TemporalSmooth(mode="both", window=9),
    "levels": lambda: Color(levels=True, white_balance=True, saturation=1.2),
    "transfer": lambda: Color(reference=str(REFERENCE), transfer="histogram"),
    "colorize": lambda: Colorize(reference=str(REFERENCE)),
    "restore": lambda: Restore(model="vflow-film-1x", device="cpu", batch=2),
    "trim": lambda: Trim(start=0.1),
    "metrics": lambda: Metrics(),
}


def _frames(emitted: list[Any]) -> np.ndarray:
    return np.concatenate([b.frames.numpy() for b in emitted if isinstance(b, vflow.FrameBatch)])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(SIXTEEN))
def test_every_built_in_stage_keeps_the_contract_at_16_bits(name: str) -> None:
    emitted = check_stage_contract(SIXTEEN[name], frames=10, depth=16)
    if name == "metrics":
        return
    out = _frames(emitted)
    assert out.dtype == np.uint16
    assert len(np.unique(out)) > 256, "the output was quantised to 8 bits"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(set(SIXTEEN) - {"metrics", "trim", "both"}))
def test_a_16_bit_stage_does_what_it_does_at_8_bits(name: str) -> None:
    """The same frames at 8 bits and x 257 at 16: the outputs agree within rounding (every threshold of the
    stages is in 8-bit levels, whatever the depth). ``both`` chains two of them: its denoise then sees the
    deflicker's 8-bit rounding, which moves a few edge pixels' weights, so it is left to its parts."""
    outs = []
    for depth in (8, 16):
        st = SIXTEEN[name]()
        info = synthetic_info(64, 48, frames=12, depth=depth)
        st.setup(vflow.StageContext(name=name, inputs={"video": info}, connected_outputs=frozenset({"video"})))
        got: list[Any] = []
        for b in synthetic_batches(12, 4):
            if depth == 16:
                b = b.replace(frames=b.frames.to(torch.int32).mul(257).to(torch.uint16))
            got += list(iter_results(st.process(b)))
        got += list(iter_results(st.finish()))
        st.teardown(True)
        outs.append(_frames(got).astype(np.float64))
    eight, sixteen = outs
    assert eight.shape == sixteen.shape
    diff = np.abs(sixteen / 257 - eight)
    assert diff.mean() < 0.5 and np.quantile(diff, 0.999) <= 2.0, (diff.mean(), diff.max())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pix_fmt=st.sampled_from(["yuv420p10le", "yuv422p10le", "yuv444p10le", "yuv420p12le", "yuv444p12le",
                                "yuv422p16le"]),
       width=st.integers(32, 160).map(lambda n: 2 * (n // 2)), height=st.integers(8, 48).map(lambda n: 4 * (n // 4)),
       frames=st.integers(1, 5), batch=st.integers(1, 4))
def test_deep_sources_of_any_format_and_size_copy_into_ffv1_keeping_every_luma_code(
        tmp_path_factory: pytest.TempPathFactory, pix_fmt: str, width: int, height: int, frames: int,
        batch: int) -> None:
    d = tmp_path_factory.mktemp("deep")
    write_ramp(d / "in.mkv", pix_fmt, frames=frames, width=width, height=height)
    copy(d / "in.mkv", d / "out.mkv", "encode.codec=ffv1", "encode.crf=null", "encode.preset=null",
         f"decode.batch={batch}")
    with av.open(str(d / "in.mkv")) as a, av.open(str(d / "out.mkv")) as b:
        ins, outs = list(a.decode(video=0)), list(b.decode(video=0))
    assert len(ins) == len(outs) == frames
    for src, out in zip(ins, outs):
        assert out.format.name == pix_fmt
        fmt = PLANAR[pix_fmt]
        rows = height // 2 - 2     # the neutral-chroma rows: nothing clips there
        y_in, y_out = (np.frombuffer(f.planes[0], fmt.dtype).reshape(height, -1)[:rows, :width] for f in (src, out))
        assert np.array_equal(y_in, y_out)


@pytest.mark.timeout(300)
def test_a_chunked_run_of_a_10_bit_422_source_is_the_streaming_run(tmp_path: Path) -> None:
    from vflow.pipeline.chunked import Options, run_chunked

    write_ramp(tmp_path / "in.mkv", "yuv422p10le", frames=30, width=256, height=64)
    sets = ("encode.codec=ffv1", "encode.crf=null", "encode.preset=null")
    copy(tmp_path / "in.mkv", tmp_path / "stream.mkv", *sets)
    p = vflow.Pipeline.load("copy", input=str(tmp_path / "in.mkv"), output=str(tmp_path / "chunks.mkv"))
    for s in sets:
        p.set(s)
    assert run_chunked(p, Options("chunks", 0.4, workers=1), warn=lambda m: None)["chunks"]["total"] >= 3
    with av.open(str(tmp_path / "stream.mkv")) as a, av.open(str(tmp_path / "chunks.mkv")) as b:
        ours, theirs = list(a.decode(video=0)), list(b.decode(video=0))
    assert len(ours) == len(theirs) == 30
    for x, y in zip(ours, theirs):
        assert y.format.name == "yuv422p10le"
        assert all(bytes(p) == bytes(q) for p, q in zip(x.planes, y.planes))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("graph", ["copy", "restore_classic", "restore_fast", "restore_full"])
@pytest.mark.parametrize("source", ["yuv420p", "yuv422p10le", "yuv444p12le"])
def test_every_shipped_graph_writes_the_source_s_depth_and_chroma(tmp_path: Path, graph: str, source: str) -> None:
    frames = 6
    write_ramp(tmp_path / "in.mkv", source, frames=frames, width=128, height=64)
    report = vflow.Pipeline.load(graph, input=str(tmp_path / "in.mkv"), output=str(tmp_path / "out.mkv")).run()
    with av.open(str(tmp_path / "out.mkv")) as c:
        out = list(c.decode(video=0))
    want, _ = keeping_format("libx264", source, 16 if bits_of(source) > 8 else 8)
    assert len(out) == frames and {f.format.name for f in out} == {want}
    assert want.startswith(source[:7])          # H.264 keeps the chroma format (12-bit: as 10-bit)
    assert report.stages["encode"].frames_in == frames


@pytest.mark.timeout(120)
def test_an_hlg_phone_clip_keeps_its_transfer_through_copy_and_is_refused_by_sdr_stages(tmp_path: Path) -> None:
    write_ramp(tmp_path / "in.mkv", "yuv420p10le", codec="libx265", color=(9, 1, 9, 18),
               options={"x265-params": "log-level=error"})
    copy(tmp_path / "in.mkv", tmp_path / "out.mkv", "encode.codec=libx265")
    _, fmt, frame = luma_levels(tmp_path / "out.mkv")
    assert fmt == "yuv420p10le" and (frame.colorspace, frame.color_primaries, frame.color_trc) == (9, 9, 18)
    with pytest.raises(GraphError, match=r"stage 'color'.*HLG.*tonemap"):
        vflow.Pipeline.load(one_stage_graph(tmp_path, "color", "color")).build()
