"""The restore stage with a temporal model: windows within shots, streaming, batching and tiling invariance."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

import vflow
from vflow.models import detect_architecture, list_models, load_model
from vflow.models.film import FilmNet, film, stack_windows, window_indices
from vflow.pipeline.frames import FrameBatch
from vflow.pipeline.gpu import DeviceRunner, blend_ramp
from vflow.pipeline.windows import ShotWindows
from vflow.stages.restore import Restore
from vflow.testing import check_stage_contract, synthetic_info


def _batches(frames: torch.Tensor, scenes: list[int], sizes: list[int]) -> list[FrameBatch]:
    out, i = [], 0
    for n in sizes:
        out.append(FrameBatch(frames=frames[i:i + n].contiguous(), pts=torch.arange(i, i + n) * 3,
                              time_base=Fraction(1, 75), seq=len(out), scene=torch.tensor(scenes[i:i + n])))
        i += n
    return out


def _cuts(n: int, cut_at: list[int]) -> list[int]:
    return [sum(t >= c for c in cut_at) for t in range(n)]


def _split(n: int, draw: st.DrawFn) -> list[int]:
    sizes = []
    while n > 0:
        sizes.append(draw(st.integers(1, min(n, 9))))
        n -= sizes[-1]
    return sizes


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_shot_windows_give_every_frame_its_window_within_its_shot(data: st.DataObject) -> None:
    """Any stream length, batching, context and cut layout (scene ids rising or reused): frames leave in
    order, once, each with the window
    that window_indices gives over the whole clip, and the buffer never holds more than it must."""
    n = data.draw(st.integers(1, 40))
    context = data.draw(st.integers(0, 3))
    take = data.draw(st.integers(1, 8))
    cut_at = sorted(set(data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=5)))) if n > 1 else []
    scenes = _cuts(n, cut_at)
    if data.draw(st.booleans()):            # ids that come back (a custom splitter's labels): shots are runs
        scenes = [s % 2 for s in scenes]
    sizes = _split(n, data.draw)
    frames = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 2, 2, 3).contiguous()
    w, got, pts = ShotWindows(context), [], []
    for i, batch in enumerate(_batches(frames, scenes, sizes)):
        w.push(batch)
        final = i == len(sizes) - 1
        assert len(w._scene) <= take + 2 * context + max(sizes) + 1
        while (k := w.ready(final)) >= (1 if final else take):
            out = w.take(min(k, take), final)
            got += out.frames[out.index][:, :, 0, 0, 0].tolist()
            pts += out.pts.tolist()
    assert pts == [3 * t for t in range(n)]
    assert got == [window_indices(n, t, 2 * context + 1, scenes) for t in range(n)]


def test_take_more_than_ready_is_an_error() -> None:
    w = ShotWindows(2)
    w.push(_batches(torch.zeros(3, 2, 2, 3, dtype=torch.uint8), [0, 0, 0], [3])[0])
    assert w.ready() == 1 and w.ready(final=True) == 3
    with pytest.raises(ValueError, match="ready"):
        w.take(2)


def _random_film(tmp_path: Path, size: str = "film-s", frames: int = 5, scale: int = 1) -> Path:
    torch.manual_seed(1)
    net = film(size, frames, scale)
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.05)                  # not the identity it starts as
    path = tmp_path / "film.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def _run(path: Path, frames: torch.Tensor, scenes: list[int], sizes: list[int], batch: int, tile: int = 0) -> torch.Tensor:
    h, w = frames.shape[1:3]
    stage = Restore(model=str(path), device="cpu", batch=batch, tile=tile)
    stage.setup(vflow.StageContext(name="restore", inputs={"video": synthetic_info(w, h)},
                                   connected_outputs=frozenset({"video"})))
    out = []
    for b in _batches(frames, scenes, sizes):
        out += list(stage.process(b))
    out += list(stage.finish())
    assert torch.cat([b.pts for b in out]).tolist() == [3 * t for t in range(len(frames))]
    return torch.cat([b.frames for b in out])


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    from vflow.testing import synthetic_frames

    return synthetic_frames(13, 40, 32)


def test_film_restores_each_frame_from_its_window_whatever_the_batching(tmp_path: Path, clip: torch.Tensor) -> None:
    path = _random_film(tmp_path)
    scenes = _cuts(13, [6])
    net = load_model(path)
    x = clip.permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        want = (net(stack_windows(x, 5, scenes)).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    a = _run(path, clip, scenes, [4, 4, 5], batch=4)
    b = _run(path, clip, scenes, [1, 12], batch=3)
    c = _run(path, clip, scenes, [13], batch=1)
    for other in (b, c, want):          # oneDNN picks its conv algorithm by batch size: a level at most, rarely
        diff = (a.int() - other.int()).abs()
        assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 1e-3
    assert not torch.equal(a, clip)


def test_a_window_never_reaches_across_a_cut(tmp_path: Path, clip: torch.Tensor) -> None:
    path = _random_film(tmp_path)
    scenes = _cuts(13, [6])
    changed = clip.clone()
    changed[6:] = 255 - changed[6:]
    a, b = _run(path, clip, scenes, [8, 5], 4), _run(path, changed, scenes, [8, 5], 4)
    assert torch.equal(a[:6], b[:6])
    assert not torch.equal(a[6:], b[6:])


@pytest.mark.parametrize("size", ["film-s", "film-m"])
def test_film_tiles_with_its_default_overlap_are_the_untiled_frames(tmp_path: Path, size: str) -> None:
    """Exact up to the global statistics (zero in this net; each tile takes its own, bench/bench_tiling.py
    measures what that costs the trained model)."""
    from vflow.testing import synthetic_frames

    frames = synthetic_frames(5, 200, 136)
    path = _random_film(tmp_path, size)
    whole = _run(path, frames, [0] * 5, [5], 5)
    tiled = _run(path, frames, [0] * 5, [5], 5, tile=64)
    assert int((whole.int() - tiled.int()).abs().max()) <= 1
    assert float((whole.float() - tiled.float()).abs().mean()) < 0.01


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 90), st.integers(2, 40), st.integers(0, 12), st.integers(1, 4))
def test_blend_ramps_of_all_tiles_sum_to_one(size: int, tile: int, overlap: int, scale: int) -> None:
    band = min(overlap // 4, tile // 2)
    total = torch.zeros(size * scale)
    for start in range(0, size, tile):
        stop = min(start + tile, size)
        lo, hi = max(start - band, 0), min(stop + band, size)
        total[lo * scale:hi * scale] += blend_ramp(lo, hi, start, stop, size, band, scale)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-6)


def test_blended_tiles_of_a_wide_receptive_field_show_no_seam() -> None:
    """A model whose receptive field is wider than the overlap: blended tiles stay within a level of untiled."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 9, padding=4, padding_mode="replicate")
    with torch.no_grad():
        conv.weight.fill_(1 / 243)
        conv.bias.zero_()

    def blur(x: torch.Tensor) -> torch.Tensor:
        for _ in range(6):
            x = conv(x)
        return x

    from vflow.testing import synthetic_frames

    frames = synthetic_frames(2, 96, 80)
    runs = [DeviceRunner(blur, torch.device("cpu"), tile=t, tile_overlap=16) for t in (0, 32)]
    whole, tiled = ((r.submit(frames) + r.drain())[0][1] for r in runs)
    assert int((whole.int() - tiled.int()).abs().max()) <= 2


def test_film_is_detected_and_loaded_by_path(tmp_path: Path) -> None:
    for size, frames, scale in (("film-s", 1, 1), ("film-m", 5, 2), ("film-l", 7, 1)):
        net = film(size, frames, scale)
        assert detect_architecture(net.state_dict()) == ("film", net.config())
    loaded = load_model(_random_film(tmp_path, "film-s", 3, 2))
    assert isinstance(loaded, FilmNet) and (loaded.frames, loaded.scale) == (3, 2)


def test_the_shipped_model_is_listed_and_runs_in_the_restore_stage() -> None:
    info = {m.name: m for m in list_models()}["vflow-film-1x"]
    assert info.available and info.architecture == "film" and info.scale == 1
    assert info.size_bytes < 5 * 2**20
    out = check_stage_contract(lambda: Restore(batch=3, device="cpu"), frames=7, width=48, height=32)
    assert sum(len(b) for b in out) == 7 and out[0].frames.shape[1:] == (32, 48, 3)


def test_an_unknown_model_names_the_close_one() -> None:
    with pytest.raises(ValueError, match="vflow-film-1x"):
        load_model("vflow-flim-1x")
