"""Graph specs: YAML (with line marks kept for error messages) <-> Python dicts <-> ``GraphSpec``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import GraphError, Location

DEFAULT_QUEUE_SIZE = 4
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass
class StageSpec:
    """One stage of a graph, as written."""

    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    queue_size: int | None = None
    where: Location | None = None
    param_where: dict[str, Location] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    stage: str
    port: str | None


@dataclass
class EdgeSpec:
    """``src.port -> dst.port``; ports may be None (resolved when unambiguous)."""

    src: Endpoint
    dst: Endpoint
    where: Location | None = None


@dataclass
class GraphSpec:
    """A whole graph: its stages, edges, runtime settings and variable defaults."""

    stages: dict[str, StageSpec]
    edges: list[EdgeSpec]
    queue_size: int = DEFAULT_QUEUE_SIZE
    variables: dict[str, str] = field(default_factory=dict)
    source: str = "<graph>"
    name: str = "graph"

    def to_dict(self) -> dict[str, Any]:
        """The plain-data form, which ``from_dict`` and YAML read back."""
        stages: dict[str, Any] = {}
        for s in self.stages.values():
            entry: dict[str, Any] = {"type": s.type}
            if s.params:
                entry["params"] = dict(s.params)
            if s.queue_size is not None:
                entry["queue_size"] = s.queue_size
            stages[s.name] = entry
        edges = [f"{_fmt(e.src)} -> {_fmt(e.dst)}" for e in self.edges]
        out: dict[str, Any] = {"vflow": 1, "runtime": {"queue_size": self.queue_size}}
        if self.variables:
            out["vars"] = dict(self.variables)
        out.update(stages=stages, edges=edges)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def set_param(self, assignment: str) -> None:
        """Apply ``stage.param=value`` (value parsed as YAML), as given to ``--set``."""
        key, eq, raw = assignment.partition("=")
        stage_name, dot, param = key.strip().partition(".")
        where = Location(f"--set {assignment}")
        if not eq or not dot or not param:
            raise GraphError("expects stage.param=value", where)
        if stage_name not in self.stages:
            raise GraphError(f"names unknown stage '{stage_name}'; stages: {', '.join(self.stages)}", where)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        spec = self.stages[stage_name]
        spec.params[param] = value
        spec.param_where[param] = where


def _fmt(e: Endpoint) -> str:
    return e.stage if e.port is None else f"{e.stage}.{e.port}"


def load_text(text: str, source: str = "<graph>") -> GraphSpec:
    """Parse graph YAML, keeping each node's position for error messages."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = Location(source, mark.line + 1, mark.column + 1) if mark else None
        raise GraphError(f"invalid YAML: {e.problem}", where) from None
    if node is None:
        raise GraphError("the graph is empty", Location(source, 1, 1))
    marks: dict[tuple[Any, ...], Location] = {}
    data = _to_python(node, (), marks, source)
    name = Path(source).stem if source.endswith((".yaml", ".yml")) else "graph"
    return from_dict(data, source=source, marks=marks, name=name)


def load_file(path: str | Path) -> GraphSpec:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise GraphError(f"cannot read graph file '{p}': {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise GraphError(f"graph file '{p}' is not UTF-8 text") from None
    return load_text(text, source=str(path))


def _to_python(node: yaml.Node, path: tuple[Any, ...], marks: dict, source: str) -> Any:
    marks[path] = Location(source, node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for k, v in node.value:
            key = _scalar(k)
            marks[path + (key, "<key>")] = Location(source, k.start_mark.line + 1, k.start_mark.column + 1)
            out[key] = _to_python(v, path + (key,), marks, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, path + (i,), marks, source) for i, v in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def from_dict(data: Any, source: str = "<dict>", marks: dict | None = None, name: str = "graph") -> GraphSpec:
    """Build a GraphSpec from the plain-data form (as in YAML), checking its shape."""
    marks = marks or {}

    def at(*path: Any) -> Location | None:
        return marks.get(path) or (marks.get(path[:-1]) if path else None)

    def key_at(*path: Any) -> Location | None:
        return marks.get(path + ("<key>",)) or at(*path)

    if not isinstance(data, dict):
        raise GraphError("a graph must be a mapping with 'stages' and 'edges'", at())
    known = {"vflow", "runtime", "vars", "stages", "edges"}
    for key in data:
        if key not in known:
            raise GraphError(f"unknown top-level key '{key}'; valid keys: {', '.join(sorted(known))}", key_at(key))
    if data.get("vflow", 1) != 1:
        raise GraphError(f"unsupported graph version {data.get('vflow')!r}; this vflow reads version 1", at("vflow"))
    runtime = data.get("runtime") or {}
    if not isinstance(runtime, dict) or set(runtime) - {"queue_size"}:
        raise GraphError("'runtime' takes only 'queue_size'", at("runtime"))
    queue_size = _positive_int(runtime.get("queue_size", DEFAULT_QUEUE_SIZE), "queue_size", at("runtime", "queue_size"))
    variables = data.get("vars") or {}
    if not isinstance(variables, dict):
        raise GraphError("'vars' must be a mapping of name: default", at("vars"))

    raw_stages = data.get("stages")
    if not isinstance(raw_stages, dict) or not raw_stages:
        raise GraphError("'stages' must be a non-empty mapping of name: {type, params}", at("stages"))
    stages: dict[str, StageSpec] = {}
    for sname, entry in raw_stages.items():
        where = key_at("stages", sname)
        if not isinstance(sname, str) or not _NAME.match(sname):
            raise GraphError(f"invalid stage name {sname!r}", where)
        if isinstance(entry, str):
            entry = {"type": entry}
        if not isinstance(entry, dict) or "type" not in entry:
            raise GraphError("a stage needs a 'type'", where, sname)
        for key in entry:
            if key not in ("type", "params", "queue_size"):
                raise GraphError(f"unknown key '{key}'; valid keys: type, params, queue_size",
                                 key_at("stages", sname, key), sname)
        params = entry.get("params") or {}
        if not isinstance(params, dict):
            raise GraphError("'params' must be a mapping", at("stages", sname, "params"), sname)
        qs = entry.get("queue_size")
        stages[sname] = StageSpec(
            name=sname, type=str(entry["type"]), params=dict(params),
            queue_size=None if qs is None else _positive_int(qs, "queue_size", at("stages", sname, "queue_size")),
            where=where,
            param_where={p: key_at("stages", sname, "params", p) for p in params},
        )

    raw_edges = data.get("edges") or []
    if not isinstance(raw_edges, list):
        raise GraphError("'edges' must be a list of 'a.port -> b.port' chains", at("edges"))
    edges: list[EdgeSpec] = []
    for i, chain in enumerate(raw_edges):
        edges.extend(_parse_chain(chain, at("edges", i)))
    return GraphSpec(stages, edges, queue_size, {str(k): str(v) for k, v in variables.items()}, source, name)


def _positive_int(value: Any, what: str, where: Location | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GraphError(f"'{what}' must be a positive integer, got {value!r}", where)
    return value


def _parse_chain(chain: Any, where: Location | None) -> list[EdgeSpec]:
    if not isinstance(chain, str) or "->" not in chain:
        raise GraphError(f"an edge is a string 'a.port -> b.port' (chains allowed), got {chain!r}", where)
    parts = [p.strip() for p in chain.split("->")]
    ends = []
    for i, part in enumerate(parts):
        stage, dot, port = part.partition(".")
        if not _NAME.match(stage) or (dot and not _NAME.match(port)):
            raise GraphError(f"bad endpoint '{part}' in edge '{chain}'", where)
        if dot and 0 < i < len(parts) - 1:
            raise GraphError(f"ports can only be named at the ends of a chain: '{part}' in '{chain}'", where)
        ends.append(Endpoint(stage, port or None))
    return [EdgeSpec(a, b, where) for a, b in zip(ends, ends[1:])]


def substitute(spec: GraphSpec, values: dict[str, str]) -> None:
    """Replace ``${name}`` in string params with ``values`` (falling back to the graph's ``vars``)."""
    merged = {**spec.variables, **{k: v for k, v in values.items() if v is not None}}
    for s in spec.stages.values():
        for pname, value in s.params.items():
            if not isinstance(value, str):
                continue

            def repl(m: re.Match[str], s: StageSpec = s, pname: str = pname) -> str:
                if m.group(1) not in merged:
                    raise GraphError(f"param '{pname}' uses undefined variable ${{{m.group(1)}}}; "
                                     f"defined: {', '.join(sorted(merged)) or 'none'}", s.param_where.get(pname), s.name)
                return str(merged[m.group(1)])

            whole = _VAR.fullmatch(value)
            s.params[pname] = _scalar_value(repl(whole)) if whole else _VAR.sub(repl, value)


def _scalar_value(text: str) -> Any:
    """A param that is exactly one ``${variable}`` takes its value as YAML reads it (``16`` is an int)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else text

