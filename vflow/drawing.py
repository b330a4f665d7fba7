"""A graph as a picture: the text ``vflow check`` prints and the SVG of ``vflow check --draw`` and the report."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from .pipeline import Pipeline
from .pipeline.frames import AudioChunk

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 170, 46, 70, 22, 16
VIDEO, AUDIO = "#2f6db5", "#2e8b57"


@dataclass(frozen=True)
class Node:
    name: str
    type: str
    column: int
    row: int


@dataclass(frozen=True)
class Edge:
    src: str
    src_port: str
    dst: str
    dst_port: str
    audio: bool


def layout(pipeline: Pipeline) -> tuple[list[Node], list[Edge]]:
    """Stages in columns by their longest path from a source (the built graph: ports resolved)."""
    pipeline.build()
    names = list(pipeline.spec.stages)
    edges = [Edge(e.src.stage, e.src.port or "", e.dst.stage, e.dst.port or "",
                  pipeline.stage(e.src.stage).outputs.get(e.src.port or "") is AudioChunk) for e in pipeline.edges]
    column = {n: 0 for n in names}
    for _ in names:  # longest path: relax as often as there are stages (the graph has no cycle)
        for e in edges:
            column[e.dst] = max(column[e.dst], column[e.src] + 1)
    rows: dict[int, int] = {}
    nodes = []
    for n in names:
        c = column[n]
        nodes.append(Node(n, pipeline.spec.stages[n].type, c, rows.get(c, 0)))
        rows[c] = rows.get(c, 0) + 1
    return nodes, edges


def as_text(pipeline: Pipeline) -> str:
    """One line per stage, in graph order: its type and where each of its outputs goes."""
    nodes, edges = layout(pipeline)
    width = max(len(n.name) for n in nodes)
    types = max(len(n.type) for n in nodes)
    lines = []
    for n in sorted(nodes, key=lambda n: (n.column, n.row)):
        outs = [f"{e.src_port} -> {e.dst}.{e.dst_port}" for e in edges if e.src == n.name]
        lines.append(f"{n.name:<{width}}  {n.type:<{types}}  {', '.join(outs) or '(sink)'}")
    return "\n".join(lines)


def as_svg(pipeline: Pipeline) -> str:
    """The graph as a self-contained SVG: a box per stage (name, type), an arrow per edge (blue video, green
    audio), columns from the sources on the left."""
    nodes, edges = layout(pipeline)
    at = {n.name: (PAD + n.column * (BOX_W + GAP_X), PAD + n.row * (BOX_H + GAP_Y)) for n in nodes}
    width = PAD * 2 + (max(n.column for n in nodes) + 1) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + (max(n.row for n in nodes) + 1) * (BOX_H + GAP_Y) - GAP_Y
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
             f"<title>{escape(pipeline.spec.name)}: {len(nodes)} stages</title>",
             '<defs>' + "".join(f'<marker id="arrow-{k}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
                                f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
                                for k, c in (("video", VIDEO), ("audio", AUDIO))) + "</defs>"]
    for e in edges:
        (x0, y0), (x1, y1) = at[e.src], at[e.dst]
        x0, y0, y1 = x0 + BOX_W, y0 + BOX_H / 2, y1 + BOX_H / 2
        kind, colour = ("audio", AUDIO) if e.audio else ("video", VIDEO)
        mid = (x0 + x1) / 2
        parts.append(f'<path d="M{x0},{y0} C{mid},{y0} {mid},{y1} {x1},{y1}" fill="none" stroke="{colour}" '
                     f'stroke-width="2" marker-end="url(#arrow-{kind})"><title>{escape(e.src)}.{escape(e.src_port)} '
                     f'-&gt; {escape(e.dst)}.{escape(e.dst_port)}</title></path>')
    for n in nodes:
        x, y = at[n.name]
        parts.append(f'<g><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#f4f6f8" '
                     f'stroke="#445"/><text x="{x + 10}" y="{y + 19}" font-weight="bold">{escape(n.name)}</text>'
                     f'<text x="{x + 10}" y="{y + 36}" fill="#556">{escape(n.type)}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts)
