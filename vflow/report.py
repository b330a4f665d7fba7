"""``vflow run ... --report report.html``: one self-contained page a family can read (no network assets).

It holds the graph as a picture, the input and output files (codec, size, depth, colour, audio, duration),
the frames in and out of every stage, throughput, queue fill and memory over time as plots, the warnings,
before/after stills of a few moments, and PSNR/SSIM against a reference when one is given. The figures
are also embedded as JSON (``<script type="application/json" id="vflow-report">``) for machines.
"""

from __future__ import annotations

import base64
import json
import time
from html import escape
from pathlib import Path
from typing import Any

import av

from .compare import timed_frames
from .drawing import as_svg
from .media.images import png_bytes
from .pipeline import Pipeline, Report
from .pipeline.sampling import Samples

PLOT_W, PLOT_H, PLOT_PAD = 560, 180, 40
COLOURS = ("#2f6db5", "#d9822b", "#2e8b57", "#b03a48", "#7b5ea7", "#4f8f8f", "#8c6d31", "#555555")
STYLE = """body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
td.n,th.n{text-align:right}.ok{color:#2e8b57}.bad{color:#b03a48}.warn{color:#8a6d00}
figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}figcaption{font-size:.9em;color:#555}
.pair{display:flex;gap:6px}.pair img{width:100%;max-width:540px;image-rendering:auto}
.plots{display:flex;flex-wrap:wrap;gap:1em}svg{max-width:100%;height:auto}"""


def reference_scores(reference: str | Path, distorted: str | Path, ssim: bool = True,
                     path: str | None = None) -> dict[str, Any]:
    """PSNR (and SSIM) of ``distorted`` against ``reference``, frame by frame (the ``metrics`` stage's summary;
    ``path``: its per-frame JSON)."""
    graph = {"stages": {"ref": {"type": "decode", "params": {"path": str(reference), "deinterlace": "off"}},
                        "dist": {"type": "decode", "params": {"path": str(distorted), "deinterlace": "off"}},
                        "metrics": {"type": "metrics", "params": {"path": path, "ssim": ssim}}},
             "edges": ["ref.video -> metrics.reference", "dist.video -> metrics.distorted"]}
    pipeline = Pipeline.load(graph)
    pipeline.run()
    return pipeline.stage("metrics").summary()  # type: ignore[attr-defined]


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def media_facts(path: str | Path) -> dict[str, Any]:
    """What a player would say about a file: container, duration and each stream's format."""
    with av.open(str(path)) as c:
        streams = []
        for s in c.streams:
            cc = s.codec_context
            if s.type == "video":
                fmt = cc.format
                depth = fmt.components[0].bits if fmt is not None and fmt.components else None
                streams.append({"type": "video", "codec": cc.name, "size": f"{cc.width}x{cc.height}",
                                "pix_fmt": cc.pix_fmt, "depth": depth,
                                "rate": f"{float(s.average_rate):.3f}" if s.average_rate else None,
                                "frames": s.frames or None,
                                "colour": colour_names(cc.colorspace, cc.color_range, cc.color_primaries,
                                                       cc.color_trc)})
            elif s.type == "audio":
                streams.append({"type": "audio", "codec": cc.name, "rate": cc.sample_rate,
                                "channels": cc.channels, "layout": cc.layout.name if cc.layout else None})
            else:
                streams.append({"type": s.type, "codec": cc.name if cc else None})
        return {"path": str(path), "format": c.format.long_name or c.format.name, "duration_s":
                round(c.duration / 1e6, 3) if c.duration else None, "size_bytes": Path(path).stat().st_size,
                "streams": streams}


_MATRIX = {0: "RGB", 1: "BT.709", 5: "BT.601", 6: "BT.601", 9: "BT.2020", 10: "BT.2020 CL"}
_PRIMARIES = {1: "BT.709", 5: "BT.601 PAL", 6: "BT.601 NTSC", 9: "BT.2020"}
_TRANSFER = {1: "BT.709", 6: "BT.601", 8: "linear", 13: "sRGB", 14: "BT.2020", 15: "BT.2020", 16: "PQ", 18: "HLG"}


def colour_names(matrix: int, rng: int, primaries: int, transfer: int) -> str:
    """A stream's colour tags in words ("unset" where the file says nothing)."""
    name = lambda table, code: table.get(int(code or 2), "unset" if int(code or 2) == 2 else f"code {code}")  # noqa
    return (f"matrix {name(_MATRIX, matrix)}, {({1: 'limited', 2: 'full'}).get(int(rng or 0), 'unset')} range, "
            f"primaries {name(_PRIMARIES, primaries)}, transfer {name(_TRANSFER, transfer)}")


def moments(path: str | Path, n: int) -> list[float]:
    """The middles of the ``n`` longest shots of ``path``, in time order (a few scenes, not a few seconds);
    with fewer shots, moments spread over the whole file make up the number."""
    from .preview import shots

    found = shots(str(path))
    picked = [(a + b) / 2 for a, b in sorted(found, key=lambda ab: ab[1] - ab[0], reverse=True)[:n]]
    if found:
        start, end = found[0][0], found[-1][1]
        spread = [start + (end - start) * (k + 0.5) / n for k in range(n)]
        for t in sorted(spread, key=lambda s: -min(abs(s - p) for p in picked)):
            if len(picked) >= n:
                break
            picked.append(t)
    return sorted(picked)


def stills(before: str | Path, after: str | Path, n: int = 3) -> list[tuple[float, bytes, bytes]]:
    """The middle of each of the ``n`` longest shots, as the input's and the output's frame at that time."""
    out = []
    for want in moments(after, n):
        a = next(timed_frames(after, want), None)
        b = next(timed_frames(before, a[0]), None) if a is not None else None
        if a is not None and b is not None:
            out.append((a[0], png_bytes(b[1]), png_bytes(a[1])))
    return out


def line_plot(title: str, unit: str, t: list[float], series: dict[str, list[float]]) -> str:
    """An inline SVG line plot of each series over ``t`` (seconds), with its legend."""
    top = max([max(ys) for ys in series.values() if ys] + [1e-9])
    t_end = max(t[-1] if t else 1.0, 1e-9)
    sx = lambda x: PLOT_PAD + x / t_end * (PLOT_W - 2 * PLOT_PAD)  # noqa: E731
    sy = lambda y: PLOT_H - PLOT_PAD + 10 - y / top * (PLOT_H - 2 * PLOT_PAD)  # noqa: E731
    rows = (len(series) + 3) // 4  # the legend, four to a row
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{PLOT_W}" height="{PLOT_H + 18 * rows}" '
             f'font-family="sans-serif" font-size="11"><title>{escape(title)}</title>',
             f'<text x="{PLOT_PAD}" y="14" font-size="13" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{PLOT_PAD}" y1="{sy(0)}" x2="{PLOT_W - PLOT_PAD}" y2="{sy(0)}" stroke="#999"/>',
             f'<line x1="{PLOT_PAD}" y1="{sy(0)}" x2="{PLOT_PAD}" y2="{sy(top)}" stroke="#999"/>',
             f'<text x="{PLOT_PAD - 4}" y="{sy(top) + 4}" text-anchor="end">{top:.3g}</text>',
             f'<text x="{PLOT_PAD - 4}" y="{sy(0) + 4}" text-anchor="end">0</text>',
             f'<text x="{PLOT_W - PLOT_PAD}" y="{sy(0) + 14}" text-anchor="end">{t_end:.1f} s</text>',
             f'<text x="{PLOT_PAD + 4}" y="{sy(top) - 4}" fill="#555">{escape(unit)}</text>']
    for i, (name, ys) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(t, ys))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        x, y = PLOT_PAD + (i % 4) * 125, PLOT_H + 14 + 18 * (i // 4)
        parts.append(f'<rect x="{x}" y="{y - 9}" width="12" height="4" fill="{colour}"/>'
                     f'<text x="{x + 18}" y="{y - 4}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _rates(t: list[float], frames: list[int], window: float = 2.0) -> list[float]:
    """Frames per second over the last ``window`` seconds at each sample (batches come in bursts)."""
    out, j = [], 0
    for i in range(len(t)):
        while j < i and t[i] - t[j + 1] >= window:
            j += 1
        out.append((frames[i] - frames[j]) / (t[i] - t[j]) if t[i] > t[j] else 0.0)
    return out


def _facts_table(facts: dict[str, Any]) -> str:
    rows = [f"<tr><th>file</th><td>{escape(facts['path'])}</td></tr>",
            f"<tr><th>container</th><td>{escape(facts['format'])}, {facts['duration_s']} s, "
            f"{facts['size_bytes'] / 2**20:.1f} MiB</td></tr>"]
    for s in facts["streams"]:
        details = ", ".join(f"{k} {v}" for k, v in s.items() if k != "type" and v is not None)
        rows.append(f"<tr><th>{escape(s['type'])}</th><td>{escape(details)}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _files(pipeline: Pipeline, kind: str, param: str = "path") -> list[str]:
    return [str(s.params[param]) for s in pipeline.spec.stages.values() if s.type == kind and s.params.get(param)]


def render(pipeline: Pipeline, report: Report, samples: Samples | None, scores: dict[str, Any] | None = None,
           stills_n: int = 3) -> str:
    """The report page as HTML text."""
    inputs, outputs = _files(pipeline, "decode"), _files(pipeline, "encode")
    facts_in = [media_facts(p) for p in inputs if Path(p).is_file()]
    facts_out = [media_facts(p) for p in outputs if report.ok and Path(p).is_file()]
    status = '<span class="ok">finished</span>' if report.ok else f'<span class="bad">failed: ' \
                                                                  f'{escape(report.error or "")}</span>'
    html = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>vflow report: "
            f"{escape(pipeline.spec.name)}</title><style>{STYLE}</style></head><body>",
            f"<h1>vflow: {escape(pipeline.spec.name)}</h1>",
            f"<p>{status} in {report.wall_s:.1f} s, {time.strftime('%Y-%m-%d %H:%M')}; graph "
            f"{escape(pipeline.spec.source)}</p>",
            "<h2>The graph</h2>", as_svg(pipeline)]
    for title, facts in (("Input", facts_in), ("Output", facts_out)):
        html.append(f"<h2>{title}</h2>" + ("".join(_facts_table(f) for f in facts) or "<p>none</p>"))
    html.append("<h2>Stages</h2><table><tr><th>stage</th><th>type</th><th class=n>frames in</th>"
                "<th class=n>frames out</th><th class=n>fps</th><th class=n>busy %</th><th class=n>peak queue</th></tr>")
    for s in report.stages.values():
        frames = max(s.frames_in, s.frames_out)
        fps = frames / s.wall_s if s.wall_s else 0.0
        busy = s.busy_s / s.wall_s * 100 if s.wall_s else 0.0
        html.append(f"<tr><td>{escape(s.name)}</td><td>{escape(s.type_name)}</td><td class=n>{s.frames_in}</td>"
                    f"<td class=n>{s.frames_out}</td><td class=n>{fps:.1f}</td><td class=n>{busy:.0f}</td>"
                    f"<td class=n>{s.peak_queue}/{s.queue_size}</td></tr>")
    html.append("</table>")
    if samples is not None and samples.t:
        rates = {n: _rates(samples.t, f) for n, f in samples.frames.items()}
        html += ['<h2>Over time</h2><div class="plots">',
                 line_plot("Throughput per stage", "frames/s", samples.t, rates),
                 line_plot("Queue fill (batches waiting in each stage's inbox)", "batches", samples.t,
                           {n: [float(q) for q in qs] for n, qs in samples.queue.items()}),
                 line_plot("Memory (resident set)", "MiB", samples.t, {"RSS": [r / 2**20 for r in samples.rss]}),
                 "</div>"]
    html.append("<h2>Warnings</h2>" + ("<ul>" + "".join(f'<li class="warn">{escape(w)}</li>' for w in report.warnings)
                                        + "</ul>" if report.warnings else "<p>none: no damaged frame, no repair</p>"))
    if scores:
        html.append("<h2>Against the reference</h2><table>" + "".join(
            f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in scores.items()) + "</table>")
    if report.ok and inputs and outputs and Path(outputs[0]).is_file():
        html.append("<h2>Before and after</h2>")
        for t, before, after in stills(inputs[0], outputs[0], stills_n):
            html.append(f'<figure><div class="pair"><img alt="before, {t:.2f} s" src="{data_uri(before)}">'
                        f'<img alt="after, {t:.2f} s" src="{data_uri(after)}"></div>'
                        f"<figcaption>{t:.2f} s: before (left), after (right)</figcaption></figure>")
    figures = {"report": report.to_dict(), "samples": samples.to_dict() if samples else None,
               "input": facts_in, "output": facts_out, "scores": scores}
    html.append(f'<script type="application/json" id="vflow-report">{_script_safe(json.dumps(figures))}</script>')
    html.append("</body></html>")
    return "\n".join(html)


def _script_safe(text: str) -> str:
    return text.replace("</", "<\\/")
