"""The CLI's working paths: ``vflow check``, ``vflow stages``, ``vflow run`` (shipped graph by name, ``--json``,
``--set``, the bundled sample into ./vflow-out/). Runtime: about 15 s on 2 cores."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers_media import read_facts, write_clip

from vflow.cli import main
from vflow.pipeline.registry import lookup
from vflow.pipeline.stage import stage_params


@pytest.fixture(scope="module")
def clip24(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-frame 128x96 H.264 clip at 25 fps."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_clip(path, frames=24, size=(128, 96))
    return path


def vflow(capfd: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``vflow ARGS`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capfd.readouterr()
    return code, captured.out, captured.err


@pytest.mark.timeout(30)
def test_check_accepts_a_good_graph_and_writes_nothing(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                                       clip24: Path) -> None:
    out = tmp_path / "out.mp4"
    code, stdout, err = vflow(capfd, "check", "copy", "-i", clip24, "-o", out)
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert lines[0] == "copy: ok (2 stages, 2 edges)"
    assert lines[1] == f"  encode: {out}: libx264 yuv420p 128x96 (source yuv420p, 8-bit frames)"
    assert not out.exists() and not out.with_name("out.mp4.partial").exists()


@pytest.mark.timeout(30)
def test_check_rejects_a_bad_param(capfd: pytest.CaptureFixture[str], tmp_path: Path, clip24: Path) -> None:
    code, stdout, err = vflow(capfd, "check", "copy", "-i", clip24, "-o", tmp_path / "out.mp4",
                              "--set", "encode.crff=3")
    assert code == 2 and stdout == ""
    assert err.strip() == ("vflow: error: --set encode.crff=3: stage 'encode' (encode): unknown param 'crff'; "
                           "valid params: path, codec, crf, preset, pix_fmt, threads, audio_codec, audio_bitrate, "
                               "audio_only")


@pytest.mark.timeout(30)
def test_stages_lists_params_types_defaults_and_docs(capfd: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # no wrapping of long rows
    code, stdout, _ = vflow(capfd, "stages")
    assert code == 0
    sections = dict(re.findall(r"^(\w+)\s+\(vflow\.[\w.]+\)(.*?)(?=^\w+\s+\(|\Z)", stdout, re.S | re.M))
    for name, summary in (("decode", "Decode a video file into RGB frame batches"),
                          ("encode", "Encode frames to a file (x264, x265, SVT-AV1, FFV1 lossless, ProRes)")):
        section = sections[name]
        assert summary in section
        for p in stage_params(lookup(name)).values():
            default = "(required)" if p.required else repr(p.default)
            row = rf"│ {re.escape(p.name)}\s+│ {re.escape(p.type_name)}\s+│ {re.escape(default)}\s+│"
            assert re.search(row, section), f"{name}.{p.name}"
    assert re.search(r"│ batch\s+│ int\s+│ 8\s+│", sections["decode"])
    assert re.search(r"│ path\s+│ str\s+│ \(required\)\s+│", sections["encode"])
    assert re.search(r"│ codec\s+│ libx264\|libx265\|libsvtav1\|ffv1\|prores_ks\s+│ 'libx264'\s+│", sections["encode"])


@pytest.mark.timeout(60)
def test_run_shipped_graph_by_name(capfd: pytest.CaptureFixture[str], tmp_path: Path, clip24: Path) -> None:
    out = tmp_path / "out.mp4"
    code, _, err = vflow(capfd, "run", "copy", "-i", clip24, "-o", out)
    assert code == 0, err
    assert f"wrote {out}" in err.replace("\n", "")
    assert read_facts(out, sample=()).frames == 24


@pytest.mark.timeout(60)
def test_run_json_report(capfd: pytest.CaptureFixture[str], tmp_path: Path, clip24: Path) -> None:
    report = tmp_path / "report.json"
    code, _, err = vflow(capfd, "run", "copy", "-i", clip24, "-o", tmp_path / "out.mp4", "-q", "--json", report)
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["ok"] is True and data["error"] is None and data["wall_s"] > 0
    decode, encode = data["stages"]["decode"], data["stages"]["encode"]
    assert (decode["frames_in"], decode["frames_out"]) == (0, 24)
    assert (encode["frames_in"], encode["frames_out"]) == (24, 0)
    for s in (decode, encode):
        assert s["state"] == "done" and 0 < s["wall_s"] <= data["wall_s"]
        assert s["busy_s"] >= 0 and s["wait_s"] >= 0
    assert decode["peak_queue"] == 0  # a source has no inbox
    assert 1 <= encode["peak_queue"] <= encode["queue_size"] == 4


@pytest.mark.timeout(60)
def test_run_set_overrides_a_param(capfd: pytest.CaptureFixture[str], tmp_path: Path, clip24: Path) -> None:
    sizes = {}
    for crf in (10, 30):
        out = tmp_path / f"crf{crf}.mp4"
        code, _, err = vflow(capfd, "run", "copy", "-i", clip24, "-o", out, "-q", "--set", f"encode.crf={crf}")
        assert code == 0, err
        sizes[crf] = out.stat().st_size
    assert sizes[30] < 0.6 * sizes[10], sizes


@pytest.mark.timeout(60)
def test_run_without_input_uses_the_bundled_sample(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = vflow(capfd, "run", "copy", "-q")
    assert code == 0, err
    assert [p.name for p in (tmp_path / "vflow-out").iterdir()] == ["sample-copy.mp4"]
    facts = read_facts(tmp_path / "vflow-out" / "sample-copy.mp4", sample=())
    assert facts.frames == 135 and (facts.width, facts.height) == (288, 240)
    assert [a.codec for a in facts.audio] == ["aac"]
