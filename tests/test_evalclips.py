"""vflow.evalclips: evaluation clips with known truth, in a tune part and a check part that share nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vflow.evalclips import CHECK_FILES, KINDS, files, make, run_stage, scene_ids

REPO = Path(__file__).resolve().parents[1]


def test_check_files_are_the_training_validation_split() -> None:
    cfg = yaml.safe_load((REPO / "configs" / "film1x.yaml").read_text())
    assert set(CHECK_FILES) == set(cfg["data"]["val"])


def test_parts_share_no_file(data_dir: Path) -> None:
    tune, check = files(data_dir, "tune"), files(data_dir, "check")
    a, b = set(tune.videos + tune.images), set(check.videos + check.images)
    assert a and b and not a & b
    with pytest.raises(ValueError, match="part"):
        files(data_dir, "train")  # type: ignore[arg-type]


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(KINDS), part=st.sampled_from(["tune", "check"]), index=st.integers(0, 1000))
def test_every_kind_makes_a_repeatable_clip(data_dir: Path, kind: str, part: str, index: int) -> None:
    clip = make(kind, part, index, data_dir)  # type: ignore[arg-type]
    again = make(kind, part, index, data_dir)  # type: ignore[arg-type]
    assert np.array_equal(clip.frames, again.frames) and np.array_equal(clip.truth, again.truth)
    t = len(clip.frames)
    assert clip.frames.shape == clip.truth.shape == (t, 144, 256, 3) and clip.frames.dtype == np.uint8
    assert all(0 < c < t for c in clip.cuts) and list(clip.cuts) == sorted(set(clip.cuts))
    assert all(0 <= a <= b < t for a, b in clip.gradual)
    if kind in ("cuts", "action", "light", "exposure"):   # the truth is the clip itself
        assert np.array_equal(clip.frames, clip.truth)
    else:
        assert not np.array_equal(clip.frames, clip.truth)


@settings(max_examples=8, deadline=None)
@given(index=st.integers(0, 1000))
def test_hard_cuts_are_where_the_picture_jumps(data_dir: Path, index: int) -> None:
    """At a known cut the frame difference is far above the median of the clip's other differences."""
    clip = make("cuts", "tune", index, data_dir)
    f = clip.frames.astype(np.float32)
    diff = np.abs(f[1:] - f[:-1]).mean((1, 2, 3))
    inside = np.delete(diff, [c - 1 for c in clip.cuts])
    assert all(diff[c - 1] > 3 * np.median(inside) for c in clip.cuts)
    assert scene_ids(clip)[-1] == len(clip.cuts)


def test_most_cut_clips_have_hard_cuts(data_dir: Path) -> None:
    assert sum(bool(make("cuts", "check", i, data_dir).cuts) for i in range(6)) >= 4


def test_run_stage_keeps_every_frame(data_dir: Path) -> None:
    from vflow.stages.color import Color

    clip = make("cuts", "check", 3, data_dir)
    out = run_stage(Color(levels=False), clip, batch=5)
    assert np.array_equal(out, clip.frames)


@settings(max_examples=6, deadline=None)
@given(index=st.integers(0, 1000))
def test_action_clips_hold_cuts_and_passers(data_dir: Path, index: int) -> None:
    """An ``action`` clip has a hard cut between every two shots, and inside its shots frames that change
    as much as a cut does (something passing the lens), which are not cuts: at least half as much as its
    weakest cut (the median of a clip's two cuts was one strong cut's: check clip 763, 38.8 against 42.5 and
    118.2)."""
    clip = make("action", "check", index, data_dir)
    assert len(clip.cuts) >= 2 and not clip.gradual
    f = clip.frames.astype(np.float32)
    diff = np.abs(f[1:] - f[:-1]).mean((1, 2, 3))
    inside = np.delete(diff, [c - 1 for c in clip.cuts])
    assert inside.max() > 0.5 * min(diff[c - 1] for c in clip.cuts)
