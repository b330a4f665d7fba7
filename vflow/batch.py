"""Folders of tapes: ``vflow run GRAPH -i tapes/ -o restored/`` runs every video in turn, keeping names.

A file whose output is already there is skipped (outputs take their name only when complete, so one that
exists is whole): a folder run that stopped continues where it was. A failed file does not stop the others.
Each file gets its report next to its output; ``index.html`` lists them all, rewritten after every file.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path

from .pipeline.outputs import PartialFile

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".dv", ".mpg", ".mpeg", ".m2v", ".vob", ".ts",
                  ".m2ts", ".mts", ".wmv", ".flv", ".3gp", ".ogv", ".mxf", ".y4m", ".h264", ".264", ".hevc"}


@dataclass
class Item:
    source: Path
    output: Path
    report: Path
    state: str = "pending"   # pending, done, skipped, failed
    why: str = ""
    wall_s: float = 0.0


def plan_folder(folder: Path, out_dir: Path, recursive: bool = False, suffix: str = ".mp4") -> list[Item]:
    """Every video file of ``folder`` (and its subfolders with ``recursive``), sorted, each with its output
    ``out_dir/REL/NAME{suffix}`` and report ``out_dir/REL/NAME.html``."""
    pattern = "**/*" if recursive else "*"
    sources = sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                     and out_dir.resolve() not in p.resolve().parents)
    items = []
    for src in sources:
        rel = src.relative_to(folder).with_suffix("")
        items.append(Item(src, out_dir / rel.with_name(rel.name + suffix), out_dir / rel.with_name(rel.name + ".html")))
    return items


def write_index(path: Path, items: list[Item], graph: str) -> None:
    """``index.html``: each file with its state, why it failed, its time and a link to its report."""
    rows = []
    for it in items:
        link = os.path.relpath(it.report, path.parent)
        report = f'<a href="{escape(link)}">report</a>' if it.report.exists() else ""
        rows.append(f"<tr><td>{escape(str(it.source))}</td><td>{escape(os.path.relpath(it.output, path.parent))}</td>"
                    f'<td class="{it.state}">{it.state}</td><td>{escape(it.why)}</td>'
                    f"<td class=n>{it.wall_s:.1f}</td><td>{report}</td></tr>")
    counts = {s: sum(it.state == s for it in items) for s in ("done", "skipped", "failed", "pending")}
    page = PartialFile(path)
    page.write_text(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>vflow: "
        f"{escape(graph)}</title><style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:3px 10px;"
        "border-bottom:1px solid #eee;text-align:left}.n{text-align:right}.failed{color:#b03a48}"
        ".done{color:#2e8b57}</style></head><body>"
        f"<h1>vflow {escape(graph)}: {len(items)} files</h1><p>"
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" ({time.strftime('%Y-%m-%d %H:%M')})</p>"
        "<table><tr><th>input</th><th>output</th><th>state</th><th>why</th><th class=n>s</th><th></th></tr>"
        + "".join(rows) + "</table></body></html>")
    page.close(ok=True)
