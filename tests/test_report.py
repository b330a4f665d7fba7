"""``vflow run --report``: a self-contained page, and ``vflow check --draw``: the graph as text and SVG."""

from __future__ import annotations

import json
import re
import xml.dom.minidom
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers_media import run_cli

SAMPLE = Path(__file__).resolve().parents[1] / "vflow" / "data" / "sample.mp4"


class Page(HTMLParser):
    """What a test needs of the report: every tag with its attributes, the text of each table row, the JSON."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self.script = ""
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "script"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "td" and self.rows:
            self.rows[-1].append(data.strip())
        elif self._in == "script":
            self.script += data


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Page, dict, str]:
    tmp = tmp_path_factory.mktemp("report")
    result = run_cli(["run", "restore_classic", "-i", str(SAMPLE), "-o", str(tmp / "out.mp4"), "-q",
                      "--report", str(tmp / "r.html"), "--json", str(tmp / "r.json"), "--reference", str(SAMPLE)],
                     timeout=300)
    assert result.returncode == 0, result.stderr
    text = (tmp / "r.html").read_text()
    return Page(text), json.loads((tmp / "r.json").read_text()), text


def test_report_has_no_network_reference(report: tuple[Page, dict, str]) -> None:
    page, _, text = report
    for tag, attrs in page.tags:
        for key in ("src", "href", "xlink:href", "action", "poster"):
            value = attrs.get(key) or ""
            assert not re.match(r"^(https?:)?//", value), f"<{tag} {key}={value[:60]}>"
        assert tag not in ("link", "iframe", "object", "embed")
        assert not (tag == "script" and attrs.get("src"))
    assert "url(http" not in text and "@import" not in text


def test_report_embeds_pictures_and_names_every_stage_with_the_runs_frame_counts(
        report: tuple[Page, dict, str]) -> None:
    page, figures, _ = report
    images = [a for t, a in page.tags if t == "img" and (a.get("src") or "").startswith("data:image/png;base64,")]
    svgs = [t for t, _ in page.tags if t == "svg"]
    assert len(images) >= 4 and len(svgs) >= 4  # before/after stills; the graph and three plots
    stage_rows = {r[0]: r for r in page.rows if r and r[0] in figures["stages"]}
    assert set(stage_rows) == set(figures["stages"]) == {"decode", "scenes", "smooth", "color", "audio", "encode"}
    for name, s in figures["stages"].items():
        assert stage_rows[name][1] == s["type_name"]
        assert (int(stage_rows[name][2]), int(stage_rows[name][3])) == (s["frames_in"], s["frames_out"])
    assert figures["stages"]["encode"]["frames_in"] == 135


def test_report_holds_memory_samples_and_the_reference_scores(report: tuple[Page, dict, str]) -> None:
    page, _, _ = report
    data = json.loads(page.script)
    samples = data["samples"]
    assert len(samples["t"]) == len(samples["rss"]) >= 3 and min(samples["rss"]) > 50 * 2**20
    assert data["scores"]["frames"] == 135 and 25 < data["scores"]["PSNR (dB)"] < 60
    assert data["input"][0]["streams"][0]["colour"].startswith("matrix BT.601")


def test_check_draws_the_graph(tmp_path: Path) -> None:
    result = run_cli(["check", "restore_classic", "--draw", str(tmp_path / "g.svg")])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "restore_classic: ok (6 stages, 6 edges)"
    assert lines[1].startswith("  encode: ") and "libx264 yuv420p" in lines[1]   # what it will write
    assert re.match(r"decode\s+decode\s+video -> scenes.video, audio -> audio.audio$", lines[2])
    assert re.match(r"encode\s+encode\s+\(sink\)$", lines[7])
    svg = xml.dom.minidom.parse(str(tmp_path / "g.svg"))
    assert len(svg.getElementsByTagName("rect")) == 6 and len(svg.getElementsByTagName("path")) >= 6
    names = {t.firstChild.data for t in svg.getElementsByTagName("text")}
    assert {"decode", "scenes", "smooth", "color", "audio", "encode", "temporal_smooth"} <= names


def test_a_folder_run_keeps_names_skips_complete_outputs_and_goes_on_after_a_failure(tmp_path: Path) -> None:
    tapes, out = tmp_path / "tapes", tmp_path / "restored"
    (tapes / "sub").mkdir(parents=True)
    for name in ("a.mp4", "sub/b.mp4"):
        (tapes / name).write_bytes(SAMPLE.read_bytes())
    (tapes / "broken.mp4").write_bytes(b"not a video")
    (tapes / "notes.txt").write_text("not a video either: not even tried")
    first = run_cli(["run", "copy", "-i", str(tapes), "-o", str(out), "--recursive", "-q"], timeout=300)
    assert first.returncode == 1
    assert first.stdout.splitlines()[0] == f"3 files: 2 done, 0 skipped, 1 failed; index: {out / 'index.html'}"
    assert f"failed: {tapes / 'broken.mp4'}: " in first.stdout and "not a video FFmpeg can read" in first.stdout
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == \
        ["a.html", "a.mp4", "index.html", "sub/b.html", "sub/b.mp4"]
    index = Page((out / "index.html").read_text())
    assert [r[2] for r in index.rows if r] == ["done", "failed", "done"]
    assert [a["href"] for t, a in index.tags if t == "a"] == ["a.html", "sub/b.html"]
    again = run_cli(["run", "copy", "-i", str(tapes), "-o", str(out), "--recursive", "-q"], timeout=300)
    assert again.stdout.splitlines()[0].startswith("3 files: 0 done, 2 skipped, 1 failed")
    flat = run_cli(["run", "copy", "-i", str(tapes), "-o", str(tmp_path / "flat"), "-q"], timeout=300)
    assert flat.stdout.splitlines()[0].startswith("2 files: 1 done, 0 skipped, 1 failed")


def test_progress_in_a_log_is_plain_lines(tmp_path: Path) -> None:
    result = run_cli(["run", "copy", "-o", str(tmp_path / "o.mp4")])  # stderr is a pipe here, not a terminal
    assert result.returncode == 0 and "\x1b[" not in result.stderr
    assert re.search(r"vflow done in [\d.]+ s: 135/135 frames \(100 %\), [\d.]+ fps", result.stderr.replace("\n", " "))
