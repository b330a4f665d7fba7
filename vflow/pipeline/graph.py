"""Graph specs: YAML (with line marks kept for error messages) <-> Python dicts <-> ``GraphSpec``."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import GraphError, Location
from .registry import MODULE_NAME, is_allowed

DEFAULT_QUEUE_SIZE = 4
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
MAX_NODES = 100_000  # YAML nodes after expanding aliases: a graph is small; this stops "billion laughs"
_MERGE = "tag:yaml.org,2002:merge"


@dataclass
class StageSpec:
    """One stage of a graph, as written."""

    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    queue_size: int | None = None
    where: Location | None = None
    param_where: dict[str, Location] = field(default_factory=dict)
    # how a param was written where YAML read it as a bool, number or date (``off``, ``017``, ``12:30``), and
    # the text of a whole-``${var}`` param: a string param takes this text, never YAML's reading of it
    param_text: dict[str, str] = field(default_factory=dict)


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
    # modules the graph asks to import for ``pkg.mod:Class`` types; honoured only once the user confirms
    # (``confirm_allow_modules``) or passes them to ``Pipeline(allow_modules=...)``
    allow_modules: list[str] = field(default_factory=list)
    allow_where: Location | None = None

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
        if self.allow_modules:
            out["allow_modules"] = list(self.allow_modules)
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
        except (yaml.YAMLError, ValueError):
            value = raw
        spec = self.stages[stage_name]
        spec.params[param] = value
        spec.param_where[param] = where
        spec.param_text.pop(param, None)
        if _typed_scalar(value):
            spec.param_text[param] = raw.strip()


def _fmt(e: Endpoint) -> str:
    return e.stage if e.port is None else f"{e.stage}.{e.port}"


def load_text(text: str, source: str = "<graph>") -> GraphSpec:
    """Parse graph YAML, keeping each node's position for error messages. Duplicate keys, unknown tags,
    recursive or exploding aliases are errors; every failure is a GraphError naming the place."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = Location(source, mark.line + 1, mark.column + 1) if mark else Location(source)
        raise GraphError(f"invalid YAML: {e.problem or e.context}", where) from None
    except yaml.YAMLError as e:  # ReaderError: a character YAML does not allow
        pos = getattr(e, "position", 0)
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        reason = getattr(e, "reason", "")
        raise GraphError(f"invalid YAML: {reason or 'unreadable text'}", Location(source, line, col)) from None
    except RecursionError:
        raise GraphError("invalid YAML: nested too deeply", Location(source)) from None
    if node is None:
        raise GraphError("the graph is empty", Location(source, 1, 1))
    reader = _Reader(source)
    try:
        data = reader.read(node, ())
    except RecursionError:
        raise GraphError("invalid YAML: nested too deeply", Location(source)) from None
    name = Path(source).stem if source.endswith((".yaml", ".yml")) else "graph"
    return from_dict(data, source=source, marks=reader.marks, name=name, texts=reader.texts)


def load_file(path: str | Path) -> GraphSpec:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise GraphError(f"cannot read graph file '{p}': {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise GraphError(f"graph file '{p}' is not UTF-8 text") from None
    return load_text(text, source=str(path))


class _Reader:
    """YAML nodes -> plain data, with the position of every node and key (``marks``) and the text of plain
    scalars that YAML types (``texts``), both keyed by the path of keys and indices from the root."""

    def __init__(self, source: str):
        self.source = source
        self.marks: dict[tuple[Any, ...], Location] = {}
        self.texts: dict[tuple[Any, ...], str] = {}
        self.nodes = 0
        self.open: set[int] = set()  # ids of the collections being read (a recursive alias meets one again)

    def at(self, node: yaml.Node) -> Location:
        return Location(self.source, node.start_mark.line + 1, node.start_mark.column + 1)

    def read(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise GraphError(f"the graph is too large (over {MAX_NODES} YAML nodes once aliases are expanded)",
                             self.at(node))
        self.marks[path] = self.at(node)
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node)
            if node.style is None and _typed_scalar(value):
                self.texts[path] = node.value
            return value
        if id(node) in self.open:
            raise GraphError("an alias refers to a node that contains it (recursive alias)", self.at(node))
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.read(v, path + (i,)) for i, v in enumerate(node.value)]
            return self.mapping(node, path)
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: tuple[Any, ...]) -> dict[Any, Any]:
        merged: dict[Any, Any] = {}
        out: dict[Any, Any] = {}
        first: dict[Any, Location] = {}
        for k, v in node.value:
            if k.tag == _MERGE:  # ``<<: *defaults``: the mapping's own keys win
                for sub in v.value if isinstance(v, yaml.SequenceNode) else [v]:
                    if not isinstance(sub, yaml.MappingNode):
                        raise GraphError("'<<' merges only mappings", self.at(sub))
                    merged = {**self.read(sub, path), **merged}
                continue
            key = self.scalar(k)
            try:
                hash(key)
            except TypeError:
                raise GraphError("a mapping key must be a plain value, not a list or mapping", self.at(k)) from None
            if key in first:
                raise GraphError(f"duplicate key '{key}' (first given at line {first[key].line}, "
                                 f"column {first[key].column}); each key may appear only once", self.at(k))
            first[key] = self.at(k)
            self.marks[path + (key, "<key>")] = self.at(k)
            out[key] = self.read(v, path + (key,))
        self.marks[path] = self.at(node)
        return {**merged, **out}

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise GraphError("a mapping key must be a plain value, not a list or mapping", self.at(node))
        loader = yaml.SafeLoader("")
        try:
            return loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as e:
            raise GraphError(f"invalid YAML: {e.problem or e.context}", self.at(node)) from None
        except Exception as e:  # noqa: BLE001 - a date like 2001-13-45, an empty !!int, too many digits
            raise GraphError(f"invalid value '{node.value[:40]}' for tag {node.tag}: {type(e).__name__}: {e}",
                             self.at(node)) from None
        finally:
            loader.dispose()


def _typed_scalar(value: Any) -> bool:
    """A scalar that YAML read as something other than text or null (bool, number, date)."""
    return value is not None and not isinstance(value, (str, list, dict))


def from_dict(data: Any, source: str = "<dict>", marks: dict | None = None, name: str = "graph",
              texts: dict | None = None) -> GraphSpec:
    """Build a GraphSpec from the plain-data form (as in YAML), checking its shape. ``marks`` and ``texts``
    come from the YAML reader: the place of each node, and how the typed plain scalars were written."""
    marks, texts = marks or {}, texts or {}

    def at(*path: Any) -> Location | None:
        return marks.get(path) or (marks.get(path[:-1]) if path else None)

    def key_at(*path: Any) -> Location | None:
        return marks.get(path + ("<key>",)) or at(*path)

    if not isinstance(data, dict):
        raise GraphError("a graph must be a mapping with 'stages' and 'edges'", at())
    known = {"vflow", "runtime", "vars", "stages", "edges", "allow_modules"}
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
    allow = data.get("allow_modules") or []
    if isinstance(allow, str):
        allow = [allow]
    if not isinstance(allow, list) or not all(isinstance(m, str) and MODULE_NAME.match(m) for m in allow):
        raise GraphError("'allow_modules' must be a list of module names (mypkg, mypkg.stages)", at("allow_modules"))

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
            param_text={p: texts[k] for p in params if (k := ("stages", sname, "params", p)) in texts},
        )

    raw_edges = data.get("edges") or []
    if not isinstance(raw_edges, list):
        raise GraphError("'edges' must be a list of 'a.port -> b.port' chains", at("edges"))
    edges: list[EdgeSpec] = []
    for i, chain in enumerate(raw_edges):
        edges.extend(_parse_chain(chain, at("edges", i)))
    return GraphSpec(stages, edges, queue_size, {str(k): str(v) for k, v in variables.items()}, source, name,
                     list(allow), key_at("allow_modules") if allow else None)


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
    """Replace ``${name}`` in string params with ``values`` (falling back to the graph's ``vars``). The result
    stays the exact text (``-i 017`` is the file '017'); a param that is one whole ``${variable}`` also keeps
    it in ``param_text``, so that an int, float or bool param reads it as YAML would (``--var n=16``)."""
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
            s.params[pname] = repl(whole) if whole else _VAR.sub(repl, value)
            if whole:
                s.param_text[pname] = s.params[pname]


def confirm_allow_modules(spec: GraphSpec, allowed: list[str], ask: bool | None = None) -> list[str]:
    """``allowed`` plus the graph's own ``allow_modules`` once the user confirms them: asked on the terminal
    when stdin is one (``ask``), otherwise refused with a GraphError that says to pass ``--allow-module``."""
    wanted = [m for m in spec.allow_modules if not is_allowed(m, allowed)]
    if not wanted:
        return list(allowed)
    names = ", ".join(wanted)
    if ask is None:
        ask = sys.stdin is not None and sys.stdin.isatty()
    if ask and sys.stdin is not None:
        print(f"{spec.allow_where or spec.source}: the graph asks to import (and run) the Python module(s) "
              f"{names}. Allow? [y/N] ", end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() in ("y", "yes"):
            return [*allowed, *wanted]
    flags = " ".join(f"--allow-module {m}" for m in wanted)
    raise GraphError(f"the graph asks to import the Python module(s) {names} (allow_modules), which runs their "
                     f"code; not allowed without your consent: pass {flags} if you trust them", spec.allow_where)
