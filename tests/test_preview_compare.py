"""``vflow preview`` (a few seconds of a graph, before|after) and ``vflow compare`` (frames matched by time)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vflow.compare import contact_sheet, matched, video

from helpers_media import VIDEO_DIR, run_cli


def frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def write(path: Path, frames: list[np.ndarray], times: list[Fraction]) -> None:
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=25)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "bgr0"
        s.time_base = Fraction(1, 100)
        for image, t in zip(frames, times):
            f = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="bgr0")
            f.pts, f.time_base = int(t * 100), Fraction(1, 100)
            out.mux(s.encode(f))
        out.mux(s.encode(None))


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A: 20 frames of 64x48, each a different flat colour; B: every other frame of A at 128x96 (an x2
    output at half the rate), so matching by index would pair the wrong frames."""
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 256, size=(20, 3))
    a = [np.broadcast_to(c.astype(np.uint8), (48, 64, 3)).copy() for c in colours]
    write(tmp_path / "a.mkv", a, [Fraction(i, 25) for i in range(20)])
    write(tmp_path / "b.mkv", [np.kron(f, np.ones((2, 2, 1), np.uint8)) for f in a[::2]],
          [Fraction(i, 25) for i in range(0, 20, 2)])
    return tmp_path / "a.mkv", tmp_path / "b.mkv"


def test_frames_are_matched_by_time_not_index(pair: tuple[Path, Path]) -> None:
    pairs = list(matched(*pair))
    assert [round(t * 25) for t, _, _ in pairs] == list(range(0, 20, 2))
    for _, a, b in pairs:
        assert b.shape == (96, 128, 3) and np.abs(a[0, 0].astype(int) - b[0, 0].astype(int)).max() <= 2


def test_contact_sheet_and_video_of_sides_of_different_sizes(pair: tuple[Path, Path], tmp_path: Path) -> None:
    assert contact_sheet(*pair, tmp_path / "s.png", frames=3, names=("in", "x2")) == 3
    with av.open(str(tmp_path / "s.png")) as c:
        sheet = next(c.decode(video=0))
    assert sheet.width > 2 * 128 and sheet.height >= 3 * 96
    for mode in ("side", "wipe", "diff"):
        assert video(*pair, tmp_path / f"{mode}.mp4", mode) == 10
        assert frame_count(tmp_path / f"{mode}.mp4") == 10


def test_cli_compare_names_bad_outputs(pair: tuple[Path, Path], tmp_path: Path) -> None:
    result = run_cli(["compare", str(pair[0]), str(pair[1]), "-o", str(tmp_path / "x.gif")])
    assert result.returncode == 2 and "-o must end in .png (a contact sheet) or .mp4 (a video), not '.gif'" in result.stderr
    result = run_cli(["compare", str(pair[0]), str(pair[1]), "-o", str(tmp_path / "x.png"), "--frames", "2"])
    assert result.returncode == 0 and result.stdout.strip() == f"wrote {tmp_path / 'x.png'} (2 moments)"


def test_preview_runs_only_its_seconds(data_dir: Path, tmp_path: Path) -> None:
    src = VIDEO_DIR / "clean_scenecut_tears_of_steel_640x360.mp4"  # 10 s at 24 fps, cuts at 21, 65, 185
    result = run_cli(["preview", "restore_classic", "-i", str(src), "-o", str(tmp_path), "--seconds", "2"],
                     timeout=300)
    assert result.returncode == 0, result.stderr
    # the longest shot is frames 65..184 (2.71-7.71 s): two seconds centred in it
    assert result.stdout.startswith("previewed 48 frames (4.21-6.21 s)")
    assert frame_count(tmp_path / "after.mp4") == 48 and frame_count(tmp_path / "preview.mp4") == 48
    with av.open(str(tmp_path / "preview.mp4")) as c:
        assert c.streams.video[0].codec_context.width == 2 * 640
    assert (tmp_path / "preview.png").stat().st_size > 10_000


def test_preview_at_a_given_time_with_a_set(tmp_path: Path) -> None:
    result = run_cli(["preview", "copy", "-o", str(tmp_path), "--at", "1.0", "--seconds", "0.5",
                      "--set", "encode.crf=30"], timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("previewed 12 frames (1.00-1.50 s)")
