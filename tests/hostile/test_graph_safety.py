"""Hostile graph files: no code runs unless the user allows its module, duplicate keys are refused, values keep
the text the user wrote (``${input}``, ``--set``, unquoted YAML words), broken plugins fail only where used, and
any YAML text gives a GraphError with a message, never another exception.

Runtime: about 10 s on 2 cores (plus importing torch and PyAV); no frame is decoded.
"""

from __future__ import annotations

import importlib
import io
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import vflow
from vflow.cli import main
from vflow.pipeline import registry
from vflow.pipeline.graph import GraphSpec, confirm_allow_modules, load_text
from vflow.testing import Collect


@vflow.stage("safety-probe")
class Probe(vflow.Stage):
    """Keeps its params, to check what the graph gave it."""

    def __init__(self, mode: Literal["off", "on", "auto"] = "auto", label: str = "", count: int = 1,
                 flag: bool = False, ratio: float = 1.0, note: str | None = None):
        self.mode, self.label, self.count, self.flag, self.ratio, self.note = mode, label, count, flag, ratio, note

    def process(self, batch: vflow.FrameBatch) -> vflow.FrameBatch:
        return batch


def graph(probe_type: str = "safety-probe", params: str = "{}", head: str = "") -> str:
    """src (line 2+head) -> probe (line 3+head) -> sink."""
    return (f"{head}stages:\n"
            f"  src: {{type: synthetic, params: {{frames: 2}}}}\n"
            f"  probe: {{type: '{probe_type}', params: {params}}}\n"
            f"  sink: {{type: collect}}\n"
            f"edges: [src -> probe -> sink]\n")


def built_probe(text: str, **variables: str) -> Probe:
    p = vflow.Pipeline.load(text, **variables).build()
    probe = p.stage("probe")
    assert isinstance(probe, Probe)
    p.check()  # releases what setup opened
    return probe


def error_of(text: str, **kwargs: object) -> str:
    with pytest.raises(vflow.GraphError) as info:
        vflow.Pipeline.load(text, **kwargs).check()  # type: ignore[arg-type]
    return str(info.value)


# -- 1. a graph imports only the modules the user allows ------------------------------------------

EVIL = '''
import pathlib
pathlib.Path(__file__).with_name("IMPORTED").write_text("the graph ran my code")
print("EVIL CODE RAN")
'''

MYPKG_STAGES = '''
import vflow

class Tag(vflow.Stage):
    """Passes batches on."""

    def process(self, batch):
        return batch
'''


@pytest.fixture
def evil_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``evil.py`` (which leaves IMPORTED when imported) and ``mypkg/stages.py``, on sys.path and in the cwd."""
    name = f"evil_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(EVIL)
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text(EVIL.replace("IMPORTED", "IMPORTED_MYPKG"))
    (tmp_path / "mypkg" / "stages.py").write_text(MYPKG_STAGES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in ("mypkg", "mypkg.stages"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    return tmp_path


def evil_name(evil_dir: Path) -> str:
    return next(evil_dir.glob("evil_*.py")).stem


def test_a_module_type_is_not_imported_by_check(evil_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    evil = evil_name(evil_dir)
    path = evil_dir / "g.yaml"
    path.write_text(graph(f"{evil}:Anything"))
    msg = error_of(str(path))
    assert msg == (f"{path}:3:3: stage 'probe': stage class '{evil}:Anything' needs module '{evil}', which is not "
                   f"allowed to be imported (a graph file must not run code you did not choose); allow it with "
                   f"--allow-module {evil} (Python: allow_modules=['{evil}'])")
    assert not (evil_dir / "IMPORTED").exists() and evil not in sys.modules
    assert "EVIL CODE RAN" not in capfd.readouterr().out


def test_cli_check_refuses_a_module_type(evil_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    evil = evil_name(evil_dir)
    (evil_dir / "g.yaml").write_text(graph(f"{evil}:Anything"))
    assert main(["check", "g.yaml"]) == 2
    out, err = capfd.readouterr()
    assert err.startswith("vflow: error: g.yaml:3:3: stage 'probe': stage class") and err.count("\n") == 1
    assert f"--allow-module {evil}" in err
    assert "EVIL CODE RAN" not in out and not (evil_dir / "IMPORTED").exists()


def test_this_does_not_print_the_zen_of_python(capfd: pytest.CaptureFixture[str]) -> None:
    assert "this" not in sys.modules
    assert "--allow-module this" in error_of(graph("this:x"))
    assert "this" not in sys.modules
    assert "Beautiful is better" not in capfd.readouterr().out


@settings(deadline=None, max_examples=60)
@given(st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), min_size=1, max_size=3),
       st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True))
@example(["antigravity"], "x")
@example(["json", "tool"], "Tool")
def test_no_module_type_imports_anything_unless_allowed(parts: list[str], attr: str) -> None:
    """Whatever ``pkg.mod:Class`` a graph names, nothing is imported: the lookup fails before any import."""
    module = ".".join(parts)
    if module in sys.modules or module.split(".")[0] in {"vflow", *registry._entry_point_packages()}:
        return  # already imported (nothing runs), vflow's own or a plugin's

    def no_import(name: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"imported {name}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(importlib, "import_module", no_import)
        with pytest.raises(LookupError) as info:
            registry.lookup(f"{module}:{attr}")
    assert "not allowed to be imported" in str(info.value) or "No module named" in str(info.value)


def test_allow_modules_allows_a_package_and_its_modules(evil_dir: Path) -> None:
    text = graph("mypkg.stages:Tag")
    assert "--allow-module mypkg " in error_of(text)
    assert "--allow-module mypkg " in error_of(text, allow_modules=["mypk", "mypkg.other", "stages"])
    assert "mypkg" not in sys.modules
    p = vflow.Pipeline.load(text, allow_modules=["mypkg"])
    p.check()
    assert type(p.stage("probe")).__module__ == "mypkg.stages"
    assert (evil_dir / "mypkg" / "IMPORTED_MYPKG").exists()


def test_cli_allow_module(evil_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (evil_dir / "g.yaml").write_text(graph("mypkg.stages:Tag"))
    assert main(["check", "g.yaml", "--allow-module", "other", "--allow-module", "mypkg"]) == 0
    assert "g.yaml: ok (3 stages, 2 edges)" in capfd.readouterr().out


def test_a_graph_allow_list_is_refused_without_a_terminal(evil_dir: Path, capfd: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (evil_dir / "g.yaml").write_text(graph("mypkg.stages:Tag", head="vflow: 1\nallow_modules: [mypkg]\n"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a TTY: nobody to ask
    assert main(["check", "g.yaml"]) == 2
    err = capfd.readouterr().err
    assert err == ("vflow: error: g.yaml:2:1: the graph asks to import the Python module(s) mypkg (allow_modules), "
                   "which runs their code; not allowed without your consent: pass --allow-module mypkg if you trust "
                   "them\n")
    assert "mypkg" not in sys.modules
    assert main(["check", "g.yaml", "--allow-module", "mypkg"]) == 0


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer, allowed", [("y\n", True), ("yes\n", True), ("n\n", False), ("", False)])
def test_a_graph_allow_list_is_asked_on_a_terminal(evil_dir: Path, capfd: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch, answer: str,
                                                   allowed: bool) -> None:
    (evil_dir / "g.yaml").write_text(graph("mypkg.stages:Tag", head="allow_modules: [mypkg]\n"))
    monkeypatch.setattr(sys, "stdin", _Terminal(answer))
    assert main(["check", "g.yaml"]) == (0 if allowed else 2)
    err = capfd.readouterr().err
    assert err.startswith("g.yaml:1:1: the graph asks to import (and run) the Python module(s) mypkg. Allow? [y/N]")
    assert ("mypkg" in sys.modules) is allowed


def test_the_library_does_not_honour_a_graph_allow_list_by_itself(evil_dir: Path) -> None:
    text = graph("mypkg.stages:Tag", head="allow_modules: [mypkg]\n")
    assert "not allowed to be imported" in error_of(text)
    spec = load_text(text)
    assert spec.allow_modules == ["mypkg"] and "allow_modules:\n- mypkg" in spec.to_yaml()
    assert confirm_allow_modules(spec, ["mypkg"], ask=False) == ["mypkg"]
    for allowed in ([], ["mypkg.stages"]):
        with pytest.raises(vflow.GraphError, match="pass --allow-module mypkg if you trust them"):
            confirm_allow_modules(spec, allowed, ask=False)


@pytest.mark.parametrize("value", ["[my-pkg]", "[../evil]", "{a: b}", "[1]"])
def test_allow_modules_must_be_module_names(value: str) -> None:
    with pytest.raises(vflow.GraphError) as info:
        load_text(graph(head=f"allow_modules: {value}\n"))
    assert str(info.value) == ("<graph>:1:16: 'allow_modules' must be a list of module names (mypkg, mypkg.stages)")


@pytest.mark.parametrize("type_name", ["..evil:X", "evil:", ":X", "a b:X", "{'a': 'b'}", "vflow.__main__:X"])
def test_a_malformed_module_type_is_a_graph_error(type_name: str) -> None:
    assert error_of(graph(type_name.replace("'", "''"))).startswith("<graph>:3:3: stage 'probe': ")


def test_the_package_of_an_entry_point_is_allowed(evil_dir: Path, scratch_registry: None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [EntryPoint("my-tag", "mypkg.stages:Tag", "vflow.stages")]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps if group == "vflow.stages" else [])
    assert type(vflow.Pipeline.load(graph("mypkg.stages:Tag")).stage("probe")).__name__ == "Tag"


# -- 2. duplicate keys ----------------------------------------------------------------------------

def test_two_stages_of_the_same_name_are_refused() -> None:
    text = graph() + "stages:\n  encode: {type: collect}\n"
    with pytest.raises(vflow.GraphError) as info:
        load_text(text, source="g.yaml")
    assert str(info.value) == ("g.yaml:6:1: duplicate key 'stages' (first given at line 1, column 1); "
                               "each key may appear only once")


def test_two_encode_stages_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("stages:\n  encode: {type: collect}\n  src: {type: synthetic}\n  encode: {type: collect}\n"
                    "edges: [src -> encode]\n")
    assert error_of(str(path)) == (f"{path}:4:3: duplicate key 'encode' (first given at line 2, column 3); "
                                   "each key may appear only once")


@settings(deadline=None, max_examples=30)
@given(st.sampled_from(["path", "label", "frames", "type", "1", "true"]), st.booleans())
def test_a_duplicate_param_is_refused_in_block_and_flow_style(key: str, flow: bool) -> None:
    params = f"{{{key}: a, x: 1, {key}: b}}" if flow else f"\n      {key}: a\n      x: 1\n      {key}: b"
    text = f"stages:\n  probe:\n    type: safety-probe\n    params: {params}\n"
    first, second = ("4:14", f"4:{14 + len(f'{key}: a, x: 1, ')}") if flow else ("5:7", "7:7")
    with pytest.raises(vflow.GraphError) as info:
        load_text(text)
    line, col = first.split(":")
    assert str(info.value) == (f"<graph>:{second}: duplicate key '{load_text_key(key)}' (first given at line {line}, "
                               f"column {col}); each key may appear only once")


def load_text_key(key: str) -> object:
    return {"1": 1, "true": True}.get(key, key)


def test_a_merge_key_is_not_a_duplicate() -> None:
    """``<<: *defaults`` then a key of the mapping's own: the own key wins, as in YAML."""
    text = textwrap.dedent("""\
        stages:
          src: {type: synthetic, params: {frames: 2}}
          probe:
            type: safety-probe
            params: {<<: [{label: shared, count: 2}, {note: n}], count: 3}
          sink: {type: collect}
        edges: [src -> probe -> sink]
    """)
    probe = built_probe(text)
    assert (probe.label, probe.count, probe.note) == ("shared", 3, "n")


# -- 3./4. values keep the text written -----------------------------------------------------------

NUMBERISH = ["017", "12:30", "0x1F", "0o17", "1_000", "1e3", "1.5", ".inf", "-.5", "+12", "0b101", "190:20:30",
             "2001-01-01", "true", "off", "on", "yes", "no", "y", "n", "null", "~", "", " 017 ", "0017.mp4"]


@settings(deadline=None, max_examples=80)
@given(st.one_of(st.sampled_from(NUMBERISH), st.from_regex(r"[-+]?[0-9_:.]{1,8}(e[-+]?[0-9]{1,2})?", fullmatch=True),
                 st.text(max_size=12)))
def test_a_variable_into_a_string_param_keeps_its_exact_text(value: str) -> None:
    p = vflow.Pipeline.load(graph(params='{label: "${input}", note: "${input}"}'), input=value).build()
    probe = p.stage("probe")
    assert isinstance(probe, Probe) and probe.label == value and probe.note == value
    assert p.spec.stages["probe"].params["label"] == value
    p.check()


def test_a_variable_still_feeds_number_and_bool_params() -> None:
    probe = built_probe(graph(params='{count: "${n}", ratio: "${r}", flag: "${f}", mode: "${m}"}'),
                        n="16", r="0.25", f="true", m="off")
    assert (probe.count, probe.ratio, probe.flag, probe.mode) == (16, 0.25, True, "off")


def test_cli_input_that_looks_like_a_number_stays_a_file_name(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["check", graph(params='{label: "${input}"}'), "-i", "017"]) == 0
    p = vflow.Pipeline.load(graph(params='{label: "${input}"}'), input="12:30")
    assert p.stage("probe").label == "12:30"  # type: ignore[attr-defined]


YAML11_WORDS = ["off", "on", "yes", "no", "Off", "ON", "Yes", "NO", "true", "False", "017", "12:30", "1.0", "7"]


@pytest.mark.parametrize("word", YAML11_WORDS)
def test_set_keeps_the_word_for_a_string_param(word: str) -> None:
    p = vflow.Pipeline.load(graph()).set(f"probe.label={word}").set(f"probe.note={word}")
    probe = p.stage("probe")
    assert probe.label == word and probe.note == word  # type: ignore[attr-defined]


@pytest.mark.parametrize("word", ["off", "on", "auto"])
def test_set_accepts_the_documented_words_of_a_literal_param(word: str) -> None:
    assert vflow.Pipeline.load(graph()).set(f"probe.mode={word}").stage("probe").mode == word  # type: ignore


def test_cli_set_deinterlace_off(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["check", graph(), "--set", "probe.mode=off", "--set", "probe.flag=off",
                 "--set", "probe.count=3"]) == 0
    assert "ok (3 stages, 2 edges)" in capfd.readouterr().out


@pytest.mark.parametrize("word", YAML11_WORDS)
def test_an_unquoted_word_in_yaml_keeps_its_text_for_a_string_param(word: str) -> None:
    probe = built_probe(graph(params=f"{{label: {word}, note: {word}}}"))
    assert probe.label == word and probe.note == word


def test_unquoted_yaml_words_into_typed_params() -> None:
    probe = built_probe(graph(params="{mode: off, flag: off, count: 7, ratio: 2}"))
    assert (probe.mode, probe.flag, probe.count, probe.ratio) == ("off", False, 7, 2.0)
    assert vflow.Pipeline.load(graph()).set("probe.mode=on").stage("probe").mode == "on"  # type: ignore


def test_a_word_outside_a_literal_is_named_as_written() -> None:
    assert error_of(graph(params="{mode: no}")) == ("<graph>:3:42: stage 'probe' (safety-probe): param 'mode' must be "
                                                    "one of off, on, auto; got 'no'")
    with pytest.raises(vflow.GraphError) as info:
        vflow.Pipeline.load(graph()).set("probe.count=off").build()
    assert str(info.value) == ("--set probe.count=off: stage 'probe' (safety-probe): param 'count' must be int; "
                               "got 'off' (str)")


# -- 5. entry points -------------------------------------------------------------------------------

@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entry points are loaded again, into a copy of the registry."""
    registry.available()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_BROKEN", {})
    monkeypatch.setattr(registry, "_loaded", False)


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: EntryPoint) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: list(eps) if group == "vflow.stages" else [])


PLUGIN = '''
import vflow
from vflow.testing import Collect

class MyCollect(Collect):
    """A collect sink of a plugin."""

class Fine(vflow.Stage):
    def process(self, batch):
        return batch
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh plugin module (its classes are not registered yet) on sys.path; returns its name."""
    name = f"vflow_safety_plugin_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(PLUGIN)
    (tmp_path / f"{name}_broken.py").write_text("raise RuntimeError('plugin bug at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_broken_entry_point_fails_only_the_graphs_that_use_it(scratch_registry: None, plugin: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, EntryPoint("gone", "vflow_no_such_plugin:Thing", "vflow.stages"),
                      EntryPoint("buggy", f"{plugin}_broken:Thing", "vflow.stages"),
                      EntryPoint("notastage", "collections:OrderedDict", "vflow.stages"),
                      EntryPoint("fine", f"{plugin}:Fine", "vflow.stages"))
    assert built_probe(graph()).mode == "auto"
    assert registry.lookup("fine").__name__ == "Fine"
    assert error_of(graph("gone")) == (
        "<graph>:3:3: stage 'probe': stage type 'gone' is not available: entry point 'gone = "
        "vflow_no_such_plugin:Thing' (module 'vflow_no_such_plugin') failed to load: ModuleNotFoundError: "
        "No module named 'vflow_no_such_plugin'")
    assert error_of(graph("buggy")).endswith(f"entry point 'buggy = {plugin}_broken:Thing' (module '{plugin}_broken') "
                                             "failed to load: RuntimeError: plugin bug at import")
    assert "OrderedDict'> is not a vflow.Stage subclass" in error_of(graph("notastage"))
    assert not {"gone", "buggy", "notastage"} & set(registry.available())


def test_a_broken_entry_point_names_its_package(scratch_registry: None, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "vflow_broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vflow-broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[vflow.stages]\nbroken-demo = vflow_broken_plugin_missing:Demo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "collect" in registry.available()
    assert error_of(graph("broken-demo")).endswith(
        "stage type 'broken-demo' is not available: entry point 'broken-demo = vflow_broken_plugin_missing:Demo' "
        "of package 'vflow-broken-plugin' failed to load: ModuleNotFoundError: No module named "
        "'vflow_broken_plugin_missing'")


def test_a_plugin_subclassing_a_built_in_stage_is_registered(scratch_registry: None, plugin: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, EntryPoint("my-collect", f"{plugin}:MyCollect", "vflow.stages"))
    cls = registry.lookup("my-collect")
    assert cls.__name__ == "MyCollect" and cls.registry_name == "my-collect"
    assert registry.lookup("collect") is Collect and Collect.registry_name == "collect"


# -- fuzz: any YAML text gives a GraphSpec or a GraphError ----------------------------------------

BASE = graph(params="{label: x, count: 2}", head="vflow: 1\nruntime: {queue_size: 2}\nvars: {a: b}\n")
YAML_CHARS = st.sampled_from(list("abc01:-_ ,.[]{}'\"!&*#|>%@`?<=~$\n\t\\") + ["${input}", "!!int", "&a", "*a", "<<"])


def _must_be_a_graph_error(text: str) -> None:
    try:
        spec = load_text(text)
    except vflow.GraphError as e:
        assert str(e).strip() and "\n" not in str(e), repr(str(e))
        return
    assert isinstance(spec, GraphSpec)
    try:
        vflow.Pipeline(spec, input="in.mp4", output="out.mp4").check()
    except vflow.VflowError as e:
        assert str(e).strip()


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(YAML_CHARS, max_size=60).map("".join))
@example("a: \x00")
@example("vflow: 2001-13-45")
@example("? [a]\n: b")
@example("a: &x [*x]")
@example("stages: !!binary zz")
@example("stages: !!python/object:os.system {}")
@example("---\na: 1\n---\nb: 2\n")
@example("[" * 3000)
@example("stages: {a: {type: {b: c}}}")
@example("stages: {a: {type: x, params: [1]}}")
@example("{<<: 1}")
def test_random_yaml_text_gives_a_graph_error(text: str) -> None:
    _must_be_a_graph_error(text)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(BASE)), st.integers(0, 3), YAML_CHARS), min_size=1, max_size=6))
def test_mutated_graph_text_gives_a_graph_error(edits: list[tuple[int, int, str]]) -> None:
    text = BASE
    for pos, cut, insert in edits:
        pos = min(pos, len(text))
        text = text[:pos] + insert + text[pos + cut:]
    _must_be_a_graph_error(text)


@pytest.mark.timeout(20)
def test_exploding_aliases_are_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(vflow.GraphError, match=r"too large \(over 100000 YAML nodes"):
        load_text("\n".join(lines) + "\n")


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(vflow.GraphError) as info:
        load_text("stages: &s {a: *s}\n")
    assert str(info.value) == "<graph>:1:9: an alias refers to a node that contains it (recursive alias)"
