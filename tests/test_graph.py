"""Graph YAML, variables, ``--set``, the dict <-> YAML round trip, validation errors and the stage registry.

Every validation error is checked by its whole message, including ``file:line:column`` of the YAML written here.
Runtime: about 1.5 s of tests on 2 cores (plus importing torch and PyAV).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import av
import pytest

import vflow
from vflow.pipeline import registry
from vflow.pipeline.build import SAMPLE_CLIP
from vflow.pipeline.graph import Endpoint, from_dict, load_text
from vflow.testing import SyntheticSource

REPO = Path(__file__).resolve().parents[1]

# Line numbers below refer to this text: dec at 3:3, its path at 6:7, batch at 7:7, enc at 8:3, edges at 12:5, 13:5.
GRAPH = """\
vflow: 1
stages:
  dec:
    type: decode
    params:
      path: "${input}"
      batch: 4
  enc:
    type: encode
    params: {path: "${output}", crf: 20}
edges:
  - dec.video -> enc.video
  - dec.audio -> enc.audio
"""


@vflow.stage("graph-identity")
class Identity(vflow.Stage):
    """Passes every batch on unchanged."""

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        return batch


@vflow.stage("graph-merge")
class Merge(vflow.Stage):
    """Two video inputs, one output (for fan-in topologies)."""

    inputs = {"a": vflow.FrameBatch, "b": vflow.FrameBatch}

    def process_port(self, port: str, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        return batch


@vflow.stage("graph-recording-source")
class RecordingSource(SyntheticSource):
    """A synthetic source that records its lifecycle calls in a class-level list."""

    calls: list[str] = []

    def setup(self, ctx: vflow.StageContext) -> dict[str, vflow.VideoInfo]:
        self.calls.append("setup")
        return super().setup(ctx)

    def generate(self) -> Any:
        self.calls.append("generate")
        yield from super().generate()

    def teardown(self, ok: bool) -> None:
        self.calls.append(f"teardown({ok})")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "graph.yaml"
    path.write_text(text)
    return path


def build_error(path: Path, **variables: Any) -> str:
    """The message of the GraphError that building the graph file raises."""
    with pytest.raises(vflow.GraphError) as info:
        vflow.Pipeline.load(path, **variables).build()
    return str(info.value)


# -- YAML, chains, variables ------------------------------------------------------------------------

def test_chain_with_ports_only_at_the_ends() -> None:
    spec = load_text("stages: {a: synthetic, b: graph-identity, c: collect}\nedges: [a.video -> b -> c.video]")
    assert [(e.src, e.dst) for e in spec.edges] == [
        (Endpoint("a", "video"), Endpoint("b", None)), (Endpoint("b", None), Endpoint("c", "video"))]


def test_port_named_inside_a_chain_is_an_error() -> None:
    with pytest.raises(vflow.GraphError) as info:
        load_text("stages: {a: synthetic, b: graph-identity, c: collect}\nedges:\n  - a -> b.video -> c\n")
    assert str(info.value) == ("<graph>:3:5: ports can only be named at the ends of a chain: 'b.video' "
                               "in 'a -> b.video -> c'")


@pytest.mark.timeout(30)
def test_chain_without_ports_runs_every_frame_through() -> None:
    p = vflow.Pipeline.load("stages:\n  src: {type: synthetic, params: {frames: 9, batch: 2}}\n"
                            "  mid: {type: graph-identity}\n  sink: {type: collect}\nedges:\n  - src -> mid -> sink\n")
    p.run()
    assert p.stage("sink").pts() == list(range(9))


def test_input_and_output_variables_fill_the_params(clip: Path, tmp_path: Path) -> None:
    p = vflow.Pipeline.load(GRAPH, input=clip, output=tmp_path / "out.mp4").build()
    assert p.stage("dec").path == str(clip)
    assert p.stage("enc").path == tmp_path / "out.mp4"
    p.check()


def test_without_input_and_output_the_sample_goes_to_vflow_out(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    p = vflow.Pipeline.load(write(tmp_path, GRAPH)).build()
    assert p.stage("dec").path == str(SAMPLE_CLIP)
    assert p.stage("enc").path == Path("vflow-out") / "sample-graph.mp4"
    p.check()


VARS_GRAPH = GRAPH.replace('path: "${input}"', 'path: "${dir}/${clip}.mp4"').replace(
    "vflow: 1\n", "vflow: 1\nvars: {clip: tiny}\n")


def test_vars_defaults_fill_the_params(clip: Path, tmp_path: Path) -> None:
    p = vflow.Pipeline.load(VARS_GRAPH, dir=clip.parent, output=tmp_path / "out.mp4").build()
    assert p.stage("dec").path == str(clip)
    p.check()


def test_given_variables_override_vars_defaults(clip: Path, tmp_path: Path) -> None:
    path = write(tmp_path, VARS_GRAPH)
    assert build_error(path, dir=clip.parent, clip="other") == (
        f"{path}:4:3: stage 'dec' (decode): input file '{clip.parent}/other.mp4' does not exist")


def test_undefined_variable_is_an_error_at_the_param(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("${input}", "${nowhere}/a.mp4"))
    assert build_error(path) == (f"{path}:6:7: stage 'dec': param 'path' uses undefined variable ${{nowhere}}; "
                                 "defined: input, output")


# -- --set ------------------------------------------------------------------------------------------

def test_set_overrides_a_param_parsed_as_yaml(clip: Path, tmp_path: Path) -> None:
    p = vflow.Pipeline.load(GRAPH, input=clip, output=tmp_path / "o.mp4").set("dec.batch=5").set("enc.preset=fast")
    p.build()
    assert p.stage("dec").batch == 5
    assert p.stage("enc").options["preset"] == "fast"
    p.check()


def test_set_unknown_stage_is_an_error() -> None:
    with pytest.raises(vflow.GraphError) as info:
        vflow.Pipeline.load(GRAPH).set("dce.batch=5")
    assert str(info.value) == "--set dce.batch=5: names unknown stage 'dce'; stages: dec, enc"


def test_set_unknown_param_is_an_error_at_build(clip: Path) -> None:
    p = vflow.Pipeline.load(GRAPH, input=clip).set("dec.bach=5")
    with pytest.raises(vflow.GraphError) as info:
        p.build()
    assert str(info.value) == ("--set dec.bach=5: stage 'dec' (decode): unknown param 'bach'; "
                               "valid params: path, batch, threads, stream, deinterlace, deinterlace_rate, max_damaged, start, end, "
                                   "field_order, depth")


def test_set_without_stage_dot_param_is_an_error() -> None:
    with pytest.raises(vflow.GraphError) as info:
        vflow.Pipeline.load(GRAPH).set("batch=5")
    assert str(info.value) == "--set batch=5: expects stage.param=value"


def test_set_after_build_is_refused(clip: Path, tmp_path: Path) -> None:
    p = vflow.Pipeline.load(GRAPH, input=clip, output=tmp_path / "o.mp4").build()
    with pytest.raises(vflow.VflowError, match="params can only be set before the pipeline is built"):
        p.set("dec.batch=5")
    p.check()


# -- dict <-> YAML ----------------------------------------------------------------------------------

GRAPH_DICT: dict[str, Any] = {
    "vflow": 1,
    "runtime": {"queue_size": 3},
    "vars": {"n": "x"},
    "stages": {
        "src": {"type": "synthetic", "params": {"frames": 7, "batch": 3}},
        "mid": {"type": "graph-identity", "queue_size": 2},
        "sink": {"type": "collect"},
    },
    "edges": ["src.video -> mid", "mid -> sink.video"],
}


def test_dict_yaml_round_trip() -> None:
    spec = from_dict(GRAPH_DICT)
    assert spec.to_dict() == GRAPH_DICT
    again = load_text(spec.to_yaml())
    assert again.to_dict() == GRAPH_DICT
    assert again.stages["mid"].queue_size == 2 and again.queue_size == 3


def test_chain_is_written_back_as_single_edges() -> None:
    text = "stages: {a: synthetic, b: graph-identity, c: collect}\nedges: [a -> b -> c]\n"
    assert load_text(text).to_dict()["edges"] == ["a -> b", "b -> c"]


@pytest.mark.timeout(30)
def test_pipeline_loads_and_runs_a_python_dict() -> None:
    p = vflow.Pipeline.load(GRAPH_DICT)
    report = p.run()
    assert p.stage("sink").pts() == list(range(7))
    assert report.stages["mid"].queue_size == 2 and report.stages["sink"].queue_size == 3


# -- shipped graphs -------------------------------------------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("graph", ["copy", str(REPO / "graphs" / "copy.yaml")], ids=["by-name", "by-file"])
def test_shipped_copy_graph_runs(graph: str, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy.mp4"
    report = vflow.Pipeline.load(graph, input=clip, output=out).run()
    assert report.stages["encode"].frames_in == 12
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 12
    assert not out.with_name("copy.mp4.partial").exists()


def test_shipped_graph_keeps_its_file_and_name() -> None:
    spec = vflow.Pipeline.load("copy").spec
    assert Path(spec.source).resolve() == (REPO / "graphs" / "copy.yaml").resolve()
    assert spec.name == "copy"


def test_unknown_graph_name_lists_shipped_graphs() -> None:
    with pytest.raises(vflow.GraphError) as info:
        vflow.Pipeline.load("no-such-graph")
    assert str(info.value).startswith("no graph file 'no-such-graph' and no shipped graph of that name; "
                                      "shipped graphs: ")
    assert "copy" in str(info.value)


# -- validation: each error names file:line:column and the stage --------------------------------------

def test_unknown_stage_type_suggests_the_closest(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("type: decode", "type: decod"))
    msg = build_error(path)
    assert msg.startswith(f"{path}:3:3: stage 'dec': unknown stage type 'decod'; did you mean 'decode'? known types: ")
    assert {"collect", "decode", "encode", "synthetic"} <= set(msg.split("known types: ")[1].split(", "))


def test_unknown_param_lists_valid_params(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("batch: 4", "bach: 4"))
    assert build_error(path) == (f"{path}:7:7: stage 'dec' (decode): unknown param 'bach'; "
                                 "valid params: path, batch, threads, stream, deinterlace, deinterlace_rate, max_damaged, start, end, "
                                   "field_order, depth")


def test_mistyped_param(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("batch: 4", 'batch: "eight"'))
    assert build_error(path) == f"{path}:7:7: stage 'dec' (decode): param 'batch' must be int; got 'eight' (str)"


def test_param_outside_a_literal(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("crf: 20}", "crf: 20, codec: h264}"))
    assert build_error(path) == (f"{path}:10:42: stage 'enc' (encode): param 'codec' must be one of "
                                 "libx264, libx265, libsvtav1, ffv1, prores_ks; got 'h264'")


def test_missing_required_param(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace('      path: "${input}"\n', ""))
    assert build_error(path) == f"{path}:3:3: stage 'dec' (decode): missing required param(s): path"


def test_unknown_port_lists_the_ports(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("dec.video ->", "dec.vid ->"))
    assert build_error(path) == (f"{path}:12:5: stage 'dec' (decode) has no output port 'vid'; "
                                 "output ports: video, audio")


def test_ambiguous_connection_lists_both_sides(tmp_path: Path) -> None:
    both = "  - dec.video -> enc.video\n  - dec.audio -> enc.audio\n"
    path = write(tmp_path, GRAPH.replace(both, "  - dec -> enc\n"))
    assert build_error(path) == (
        f"{path}:12:5: cannot connect 'dec' to 'enc': ambiguous ports; name them "
        "(outputs of 'dec': video (FrameBatch), audio (AudioChunk); "
        "inputs of 'enc': video (FrameBatch), audio (AudioChunk))")


def test_ports_of_different_kinds_cannot_connect(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("dec.video -> enc.video", "dec.audio -> enc.video").replace(
        "  - dec.audio -> enc.audio\n", ""))
    assert build_error(path) == (
        f"{path}:12:5: cannot connect 'dec' to 'enc': no port pair of the same kind; name them "
        "(outputs of 'dec': video (FrameBatch), audio (AudioChunk); inputs of 'enc': video (FrameBatch), "
        "audio (AudioChunk))")


CYCLE = """\
stages:
  src: {type: synthetic}
  merge: {type: graph-merge}
  loop: {type: graph-identity}
edges:
  - src -> merge.a
  - merge -> loop -> merge.b
"""


def test_cycle_names_its_stages(tmp_path: Path) -> None:
    path = write(tmp_path, CYCLE)
    assert build_error(path) == f"{path}:7:5: the graph has a cycle through stages: merge, loop"


def test_cycle_does_not_blame_stages_downstream_of_it(tmp_path: Path) -> None:
    path = write(tmp_path, CYCLE.replace("  loop:", "  sink: {type: collect}\n  loop:") + "  - loop -> sink\n")
    assert build_error(path) == f"{path}:8:5: the graph has a cycle through stages: merge, loop"


def test_dangling_input(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("  - dec.video -> enc.video\n", ""))
    assert build_error(path) == (f"{path}:8:3: stage 'enc' (encode): input port 'video' is not connected "
                                 "(dangling input); audio_only: true writes the audio alone")


def test_input_fed_twice(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("edges:", "  gen: {type: synthetic}\nedges:") + "  - gen -> enc.video\n")
    assert build_error(path) == f"{path}:15:5: input 'enc.video' is fed twice (also at {path}:13:5)"


def test_unconnected_stage(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("edges:", "  lonely: {type: synthetic}\nedges:"))
    assert build_error(path) == f"{path}:11:3: stage 'lonely' (synthetic): is not connected to any other stage"


def test_missing_input_file(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH)
    missing = tmp_path / "missing.mp4"
    assert build_error(path, input=missing) == (f"{path}:3:3: stage 'dec' (decode): input file '{missing}' "
                                                "does not exist")


def test_input_that_is_not_a_video(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH)
    msg = build_error(path, input=path)
    assert msg.startswith(f"{path}:3:3: stage 'dec' (decode): input file '{path}' is not a video FFmpeg can read")


def test_output_in_a_directory_that_cannot_exist(clip: Path, tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH)
    out = path / "sub" / "out.mp4"  # under a regular file
    assert build_error(path, input=clip, output=out) == (
        f"{path}:8:3: stage 'enc' (encode): output directory '{path}/sub': '{path}' is not a directory")


def test_output_with_unknown_container(clip: Path, tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH)
    msg = build_error(path, input=clip, output=tmp_path / "out.xyz")
    assert msg.startswith(f"{path}:8:3: stage 'enc' (encode): output '{tmp_path}/out.xyz': "
                          "unknown container extension '.xyz'")


def test_failed_setup_tears_down_earlier_stages_before_any_frame(tmp_path: Path) -> None:
    RecordingSource.calls.clear()
    path = write(tmp_path, "stages:\n  src: {type: graph-recording-source}\n"
                           "  enc: {type: encode, params: {path: '${output}'}}\nedges: [src -> enc.video]\n")
    msg = build_error(path, output=path / "out.mp4")
    assert msg.startswith(f"{path}:3:3: stage 'enc' (encode): output directory")
    assert RecordingSource.calls == ["setup", "teardown(False)"]


# -- registry -------------------------------------------------------------------------------------

@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by the test are forgotten afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_stage_decorator_registers_under_its_name(scratch_registry: None) -> None:
    @vflow.stage("reg-demo")
    class Demo(vflow.Stage):
        def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
            return batch

    assert registry.lookup("reg-demo") is Demo
    assert Demo.registry_name == "reg-demo"
    assert registry.available()["reg-demo"] is Demo


def test_second_class_under_a_taken_name_is_an_error(scratch_registry: None) -> None:
    class Other(vflow.Stage):
        pass

    with pytest.raises(ValueError) as info:
        vflow.stage("graph-identity")(Other)
    assert str(info.value) == (
        f"stage name 'graph-identity' is already registered by {__name__}.Identity; "
        f"{__name__}.test_second_class_under_a_taken_name_is_an_error.<locals>.Other cannot take it")
    assert registry.lookup("graph-identity") is Identity


def test_registering_the_same_class_again_is_allowed(scratch_registry: None) -> None:
    assert vflow.stage("graph-identity")(Identity) is Identity


def test_decorating_a_non_stage_class_is_an_error() -> None:
    with pytest.raises(TypeError, match=r"@vflow.stage\('reg-bad'\) must decorate a vflow.Stage subclass"):
        vflow.stage("reg-bad")(dict)


def test_param_without_type_hint_fails_at_registration() -> None:
    class Untyped(vflow.Stage):
        def __init__(self, amount=1.0):  # type: ignore[no-untyped-def]
            self.amount = amount

    with pytest.raises(TypeError, match="Untyped.__init__: param 'amount' has no type hint"):
        vflow.stage("reg-untyped")(Untyped)


@pytest.mark.timeout(30)
def test_module_colon_class_type_in_yaml() -> None:
    p = vflow.Pipeline.load("stages:\n  src: {type: 'vflow.testing:SyntheticSource', params: {frames: 5}}\n"
                            f"  mid: {{type: '{__name__}:Identity'}}\n  sink: {{type: collect}}\n"
                            "edges: [src -> mid -> sink]\n")
    p.run()
    assert p.stage("sink").pts() == list(range(5))


def test_module_colon_class_that_is_not_a_stage_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("type: decode", "type: 'collections:OrderedDict'"))
    assert build_error(path) == f"{path}:3:3: stage 'dec': 'collections:OrderedDict' is not a vflow.Stage subclass"


def test_module_colon_class_that_cannot_be_imported(tmp_path: Path) -> None:
    path = write(tmp_path, GRAPH.replace("type: decode", "type: 'vflow_no_such_module:Decode'"))
    assert build_error(path) == (f"{path}:3:3: stage 'dec': cannot import stage class "
                                 "'vflow_no_such_module:Decode': No module named 'vflow_no_such_module'")


PLUGIN = '''
import vflow

class Halve(vflow.Stage):
    """Keeps every other frame."""

    frame_count_changes = "keeps every other frame"

    def process(self, batch):
        return batch.replace(frames=batch.frames[::2].contiguous(), pts=batch.pts[::2].contiguous(),
                             scene=batch.scene[::2].contiguous())
'''


@pytest.mark.timeout(30)
def test_entry_point_in_vflow_stages_group_is_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          scratch_registry: None) -> None:
    (tmp_path / "vflow_demo_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "vflow_demo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vflow-demo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[vflow.stages]\ndemo-halve = vflow_demo_plugin:Halve\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_loaded", False)

    assert registry.lookup("demo-halve").__module__ == "vflow_demo_plugin"
    p = vflow.Pipeline.load(textwrap.dedent("""\
        stages:
          src: {type: synthetic, params: {frames: 8}}
          half: {type: demo-halve}
          sink: {type: collect}
        edges: [src -> half -> sink]
    """))
    p.run()
    assert p.stage("sink").pts() == [0, 2, 4, 6]


def test_a_param_that_is_one_variable_takes_its_yaml_value(tmp_path: Path) -> None:
    """``frames: "${n}"`` feeds an int param (the value is read as YAML, like --set)."""
    import vflow.testing  # noqa: F401

    text = ('vars: {n: "5", name: clip}\n'
            'stages:\n'
            '  src: {type: synthetic, params: {frames: "${n}"}}\n'
            '  out: {type: collect}\n'
            'edges: ["src -> out"]\n')
    pipeline = vflow.Pipeline.load(text, n="7")
    pipeline.run()
    assert len(pipeline.stage("out").pts()) == 7
