"""Turning a ``GraphSpec`` into running stages: validation before any frame flows, then ``Pipeline.run``."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from . import registry
from .errors import GraphError, VflowError
from .graph import EdgeSpec, Endpoint, GraphSpec, StageSpec, from_dict, load_file, load_text, substitute
from .outputs import check_not_inputs, discard_partials
from .runner import Node, Report, Runner, StageStats, safe_teardown
from .stage import Stage, StageContext, StreamInfo, coerce_param, stage_params
from .frames import HDR_TRANSFERS, VideoInfo

SAMPLE_CLIP = Path(__file__).resolve().parents[1] / "data" / "sample.mp4"
OUTPUT_DIR = Path("vflow-out")


def shipped_graphs_dir() -> Path:
    """``graphs/`` of the source tree (editable install) or of the wheel (``vflow/graphs``)."""
    pkg = Path(__file__).resolve().parents[1]
    for cand in (pkg / "graphs", pkg.parent / "graphs"):
        if cand.is_dir():
            return cand
    return pkg / "graphs"


def shipped_graphs() -> dict[str, Path]:
    d = shipped_graphs_dir()
    return {p.stem: p for p in sorted(d.glob("*.yaml"))} if d.is_dir() else {}


def resolve_graph(graph: str | Path) -> GraphSpec:
    """A graph file, the name of a shipped graph (``copy``), or YAML text."""
    text = str(graph)
    if "\n" in text:
        return load_text(text)
    path = Path(text)
    if path.is_file():
        return load_file(path)
    shipped = shipped_graphs()
    if path.stem in shipped and (path.parent == Path(".") or path.parent.name == "graphs"):
        return load_file(shipped[path.stem])
    raise GraphError(f"no graph file '{text}' and no shipped graph of that name; "
                     f"shipped graphs: {', '.join(shipped) or 'none'}")


class Pipeline:
    """A graph ready to build and run: ``Pipeline.load("copy", input="a.mp4", output="b.mp4").run()``."""

    def __init__(self, spec: GraphSpec, *, allow_modules: Sequence[str] = (), **variables: str | Path | None):
        """``allow_modules``: packages whose ``pkg.mod:Class`` stage types may be imported (the graph's own
        ``allow_modules`` list is not honoured by itself: pass it here if you trust the graph)."""
        self.spec = spec
        self.allow_modules = list(allow_modules)
        self.variables = {k: str(v) for k, v in variables.items() if v is not None}
        self.cancel_event = threading.Event()
        self._nodes: list[Node] | None = None
        self._infos: dict[tuple[str, str], StreamInfo] = {}
        self._edges: list[EdgeSpec] = []
        self._used = False
        self._building = threading.Lock()  # stage()/info() from another thread wait for run()'s build
        self.warnings: list[str] = []  # plain sentences from the stages (ctx.warn), in the order they came

    @classmethod
    def load(cls, graph: str | Path | dict[str, Any], *, allow_modules: Sequence[str] = (),
             **variables: str | Path | None) -> "Pipeline":
        """From a YAML file path, a shipped graph name, YAML text, or the plain-dict form."""
        spec = from_dict(graph) if isinstance(graph, dict) else resolve_graph(graph)
        return cls(spec, allow_modules=allow_modules, **variables)

    def set(self, assignment: str) -> "Pipeline":
        """Override a param, ``stage.param=value``, as ``--set`` does."""
        if self._nodes is not None:
            raise VflowError("params can only be set before the pipeline is built")
        self.spec.set_param(assignment)
        return self

    # -- build ---------------------------------------------------------------------------------
    def _default_variables(self) -> dict[str, str]:
        values = dict(self.variables)
        values.setdefault("input", self.spec.variables.get("input", str(SAMPLE_CLIP)))
        if "output" not in values and "output" not in self.spec.variables:
            values["output"] = str(OUTPUT_DIR / f"{Path(values['input']).stem}-{self.spec.name}.mp4")
        return values

    def build(self) -> "Pipeline":
        """Validate everything and set up each stage; raises GraphError naming the place. Idempotent, and
        safe from several threads (one builds, the others wait for its stages)."""
        with self._building:
            if self._nodes is None:
                self._build()
        return self

    def _build(self) -> None:
        substitute(self.spec, self._default_variables())
        stages = {name: _instantiate(s, self.allow_modules) for name, s in self.spec.stages.items()}
        edges = [_resolve_edge(e, self.spec, stages) for e in self.spec.edges]
        order = _check_topology(self.spec, stages, edges)
        read = [f for st in stages.values() for f in st.files_read()]
        for name, st in stages.items():
            try:
                check_not_inputs(st.files_written(), read)
            except VflowError as e:
                spec = self.spec.stages[name]
                raise GraphError(str(e), spec.where, name, spec.type) from None
        nodes: dict[str, Node] = {}
        set_up: list[Node] = []
        try:
            for name in order:
                node = self._setup(name, stages[name], edges)
                nodes[name] = node
                set_up.append(node)
        except BaseException:
            for node in set_up:
                safe_teardown(node, ok=False)
            raise
        for e in edges:
            nodes[e.src.stage].routes.setdefault(e.src.port, []).append((nodes[e.dst.stage], e.dst.port))
        self._nodes = [nodes[n] for n in order]
        self._edges = edges

    def _setup(self, name: str, stage: Stage, edges: list[EdgeSpec]) -> Node:
        spec = self.spec.stages[name]
        incoming = [e for e in edges if e.dst.stage == name]
        inputs = {e.dst.port: self._infos[(e.src.stage, e.src.port)] for e in incoming}
        connected = frozenset(e.src.port for e in edges if e.src.stage == name)
        ctx = StageContext(name=name, inputs=inputs, connected_outputs=connected, cancelled=self.cancel_event,
                           warn=lambda message: self.warnings.append(f"{name}: {message}"))
        for info in inputs.values():
            if isinstance(info, VideoInfo):
                _check_accepts(stage, info, spec)
        try:
            outputs = stage.setup(ctx)
        except VflowError as e:
            raise GraphError(str(e), spec.where, name, spec.type) from e
        except Exception as e:  # noqa: BLE001 - setup failures are bad input, reported with the stage
            raise GraphError(f"setup failed: {type(e).__name__}: {e}", spec.where, name, spec.type) from e
        if outputs is None:
            outputs = {p: info for p, info in inputs.items() if p in stage.outputs}
        for port in connected:
            if port not in outputs:
                raise GraphError(f"did not describe its output port '{port}' in setup()", spec.where, name, spec.type)
            self._infos[(name, port)] = outputs[port]
        video = next((i for i in inputs.values() if isinstance(i, VideoInfo)), None) or \
            next((i for i in outputs.values() if isinstance(i, VideoInfo)), None)
        qsize = spec.queue_size or self.spec.queue_size
        stats = StageStats(name, spec.type, qsize, expected_frames=video.frames if video else None)
        inbox = queue.Queue(maxsize=qsize) if incoming else None
        return Node(name, stage, stats, len(incoming), inbox, {})

    def check(self) -> None:
        """Validate without running (as ``vflow check``): build, then release what setup opened."""
        self.build()
        self.release()

    def release(self) -> None:
        """Tear the built stages down without running (what their setup opened is closed)."""
        self._teardown(ok=False)

    # -- run -----------------------------------------------------------------------------------
    def stage(self, name: str) -> Stage:
        """The built instance of stage ``name`` (e.g. a ``collect`` sink, to read what it gathered)."""
        self.build()
        for node in self._nodes or []:
            if node.name == name:
                return node.stage
        raise KeyError(f"no stage '{name}'; stages: {', '.join(self.spec.stages)}")

    def files_read(self) -> list[str]:
        """Every file the stages read (sources, reference images)."""
        self.build()
        return [f for n in self._nodes or [] for f in n.stage.files_read()]

    def info(self, stage: str, port: str) -> StreamInfo | None:
        """What stage ``stage`` said its output ``port`` carries (after ``build``; None if unconnected)."""
        return self._infos.get((stage, port))

    @property
    def edges(self) -> list[EdgeSpec]:
        """The graph's edges with both ports named (after ``build``)."""
        return list(self._edges)

    @property
    def stats(self) -> list[StageStats]:
        return [n.stats for n in self._nodes or []]

    def run(self, on_tick: Callable[[], None] | None = None) -> Report:
        """Build if needed, stream every frame through, and return the report. Raises StageError/Cancelled."""
        if self._used:
            raise VflowError("a Pipeline runs once; load it again to run again")
        self.build()
        self._used = True
        assert self._nodes is not None
        t0 = time.perf_counter()
        ok = False
        runner = Runner(self._nodes, self.cancel_event)
        try:
            runner.run(on_tick)
            ok = True
        finally:
            self._teardown(ok, abandoned=set(runner.abandoned))
        return Report(True, time.perf_counter() - t0, {n.name: n.stats for n in self._nodes}, None,
                      list(self.warnings))

    def cancel(self) -> None:
        """Stop a running pipeline from another thread; ``run`` then raises Cancelled."""
        self.cancel_event.set()

    def _teardown(self, ok: bool, abandoned: set[str] = frozenset()) -> None:
        """Tear every stage down, except those whose thread is still inside them (they do it themselves
        when they return): their partial outputs are removed now."""
        errors = []
        for n in reversed(self._nodes or []):
            if n.name in abandoned:
                discard_partials(n.stage)
            elif (e := safe_teardown(n, ok)) is not None:
                errors.append(e)
        if ok and errors:
            raise errors[0]


def _check_accepts(stage: Stage, info: VideoInfo, spec: StageSpec) -> None:
    """Refuse frames the stage does not take (their depth, an HDR transfer), naming the way out."""
    source = f"{info.pix_fmt} " if info.pix_fmt else ""
    if info.depth not in stage.depths:
        raise GraphError(f"takes {' or '.join(map(str, sorted(stage.depths)))}-bit frames, and the frames reaching "
                         f"it are {info.depth}-bit (from a deep-colour {source}source): set decode.depth: 8 to "
                         f"convert them (their extra precision is lost), or leave this stage out",
                         spec.where, spec.name, spec.type)
    if info.color.hdr and not stage.hdr:
        raise GraphError(f"works on SDR pictures and the source is HDR ({HDR_TRANSFERS[info.color.transfer]} "
                         f"transfer): it would change its colours wrongly. Put a tonemap stage right after decode "
                         f"(HDR to SDR BT.709), or leave this stage out (copy, scene_split and temporal_smooth with "
                         f"mode: denoise keep HDR as it is)", spec.where, spec.name, spec.type)


def _instantiate(spec: StageSpec, allow_modules: Sequence[str] = ()) -> Stage:
    try:
        cls = registry.lookup(spec.type, allow_modules)
    except LookupError as e:
        raise GraphError(str(e), spec.where, spec.name) from None
    params = stage_params(cls)
    values: dict[str, Any] = {}
    for pname, value in spec.params.items():
        where = spec.param_where.get(pname, spec.where)
        if pname not in params:
            raise GraphError(f"unknown param '{pname}'; valid params: {', '.join(params) or 'none'}",
                             where, spec.name, spec.type)
        try:
            values[pname] = coerce_param(params[pname], value, spec.param_text.get(pname))
        except ValueError as e:
            raise GraphError(str(e), where, spec.name, spec.type) from None
    missing = [p.name for p in params.values() if p.required and p.name not in values]
    if missing:
        raise GraphError(f"missing required param(s): {', '.join(missing)}", spec.where, spec.name, spec.type)
    try:
        return cls(**values)
    except (ValueError, TypeError) as e:
        raise GraphError(str(e), spec.where, spec.name, spec.type) from None


def _resolve_edge(edge: EdgeSpec, spec: GraphSpec, stages: dict[str, Stage]) -> EdgeSpec:
    for end in (edge.src, edge.dst):
        if end.stage not in stages:
            raise GraphError(f"edge names unknown stage '{end.stage}'; stages: {', '.join(stages)}", edge.where)
    src, dst = stages[edge.src.stage], stages[edge.dst.stage]
    for end, ports, what in ((edge.src, src.outputs, "output"), (edge.dst, dst.inputs, "input")):
        if end.port is not None and end.port not in ports:
            raise GraphError(f"stage '{end.stage}' ({spec.stages[end.stage].type}) has no {what} port '{end.port}'; "
                             f"{what} ports: {', '.join(ports) or 'none'}", edge.where)
    outs = [edge.src.port] if edge.src.port else list(src.outputs)
    ins = [edge.dst.port] if edge.dst.port else list(dst.inputs)
    pairs = [(o, i) for o in outs for i in ins if src.outputs[o] is dst.inputs[i]]
    if len(pairs) != 1:
        why = "no port pair of the same kind" if not pairs else "ambiguous ports"
        raise GraphError(f"cannot connect '{edge.src.stage}' to '{edge.dst.stage}': {why}; name them "
                         f"(outputs of '{edge.src.stage}': {_ports(src.outputs)}; inputs of '{edge.dst.stage}': "
                         f"{_ports(dst.inputs)})", edge.where)
    o, i = pairs[0]
    return EdgeSpec(Endpoint(edge.src.stage, o), Endpoint(edge.dst.stage, i), edge.where)


def _ports(ports: dict[str, type]) -> str:
    return ", ".join(f"{p} ({t.__name__})" for p, t in ports.items()) or "none"


def _check_topology(spec: GraphSpec, stages: dict[str, Stage], edges: list[EdgeSpec]) -> list[str]:
    """Dangling or doubly-fed inputs, unconnected stages, cycles; returns the stages in graph order."""
    fed: dict[tuple[str, str], EdgeSpec] = {}
    for e in edges:
        key = (e.dst.stage, e.dst.port or "")
        if key in fed:
            raise GraphError(f"input '{e.dst.stage}.{e.dst.port}' is fed twice (also at {fed[key].where})", e.where)
        fed[key] = e
    touched = {e.src.stage for e in edges} | {e.dst.stage for e in edges}
    for name, stage in stages.items():
        s = spec.stages[name]
        for port in stage.inputs:
            if (name, port) not in fed and port not in stage.optional_inputs:
                raise GraphError(f"input port '{port}' is not connected (dangling input)", s.where, name, s.type)
        if name not in touched and len(stages) > 1:
            raise GraphError("is not connected to any other stage", s.where, name, s.type)
    indeg = {n: 0 for n in stages}
    for e in edges:
        indeg[e.dst.stage] += 1
    order = [n for n in stages if indeg[n] == 0]
    for n in order:  # Kahn's algorithm; `order` grows while we walk it
        for e in edges:
            if e.src.stage == n:
                indeg[e.dst.stage] -= 1
                if indeg[e.dst.stage] == 0:
                    order.append(e.dst.stage)
    if len(order) != len(stages):
        cyc = [n for n in stages if n not in order]
        while True:  # drop the stages that are only downstream of the cycle
            on_cycle = [n for n in cyc if any(e.src.stage == n and e.dst.stage in cyc for e in edges)]
            if on_cycle == cyc:
                break
            cyc = on_cycle
        first = next(e for e in edges if e.src.stage in cyc and e.dst.stage in cyc)
        raise GraphError(f"the graph has a cycle through stages: {', '.join(cyc)}", first.where)
    return order
