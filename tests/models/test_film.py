"""FilmNet: shapes, identity at zero init, determinism, gradients, layouts; window_indices over clip layouts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from vflow.models.film import FILM_SIZES, MOTION_GATE, FilmNet, film, gate, space_to_depth, stack_windows, window_indices


def perturbed(net: FilmNet, seed: int = 0, global_branch: bool = True) -> FilmNet:
    """The net with non-zero last layers, as after training (the global branch's too, unless told not), and
    no motion gate (random frames are all motion to it; the gate has its own tests)."""
    torch.manual_seed(seed)
    net.motion_gate = None
    last = [net.tail, net.glob[2]] if global_branch else [net.tail]
    for layer in last:
        torch.nn.init.normal_(layer.weight, std=0.05)
        torch.nn.init.normal_(layer.bias, std=0.05)
    return net.eval()


@pytest.mark.parametrize("size", list(FILM_SIZES))
@pytest.mark.parametrize("scale", [1, 2])
def test_named_sizes_shapes(size: str, scale: int) -> None:
    net = film(size, frames=5, scale=scale)
    assert net.config() == {"frames": 5, "scale": scale, **FILM_SIZES[size]}
    with torch.inference_mode():
        assert net(torch.rand(2, 5, 3, 16, 24)).shape == (2, 3, 16 * scale, 24 * scale)


@pytest.mark.parametrize("frames", [1, 3, 5])
@pytest.mark.parametrize("scale", [1, 2])
@pytest.mark.parametrize("unshuffle", [2, 4])
@pytest.mark.parametrize("size", [(9, 11), (13, 6), (1, 1), (8, 16)])
def test_any_size_and_window(frames: int, scale: int, unshuffle: int, size: tuple[int, int]) -> None:
    net = perturbed(FilmNet(frames=frames, scale=scale, width=8, depth=1, unshuffle=unshuffle))
    assert net.context == frames // 2
    with torch.inference_mode():
        out = net(torch.rand(1, frames, 3, *size))
    assert out.shape == (1, 3, size[0] * scale, size[1] * scale)
    assert torch.isfinite(out).all()


def test_single_frame_takes_4d_input() -> None:
    net = perturbed(FilmNet(frames=1, width=8, depth=1))
    x = torch.rand(2, 3, 12, 8)
    with torch.inference_mode():
        assert torch.equal(net(x), net(x[:, None]))


@pytest.mark.parametrize("frames", [1, 3, 5])
@pytest.mark.parametrize("unshuffle", [2, 4])
def test_zero_init_is_identity(frames: int, unshuffle: int) -> None:
    x = torch.rand(2, frames, 3, 11, 14)
    with torch.inference_mode():
        assert torch.equal(FilmNet(frames, 1, width=8, depth=2, unshuffle=unshuffle)(x), x[:, frames // 2])
        up = F.interpolate(x[:, frames // 2], scale_factor=2, mode="bilinear", align_corners=False)
        assert torch.equal(FilmNet(frames, 2, width=8, depth=2, unshuffle=unshuffle)(x), up)


def test_uses_neighbours_and_centre() -> None:
    net = perturbed(FilmNet(frames=3, width=8, depth=1))
    x = torch.rand(1, 3, 3, 8, 8)
    with torch.inference_mode():
        base = net(x)
        for t in range(3):
            y = x.clone()
            y[:, t] = 1 - y[:, t]
            assert not torch.allclose(net(y), base), f"frame {t} of the window has no effect"


@pytest.mark.parametrize(("unshuffle", "depth"), [(2, 1), (4, 2)])
def test_receptive_field_is_radius(unshuffle: int, depth: int) -> None:
    """The local receptive field (the global branch, which sees everything, held at zero)."""
    torch.manual_seed(1)
    net = perturbed(FilmNet(frames=1, width=8, depth=depth, unshuffle=unshuffle), global_branch=False)
    size = 2 * net.radius + 4 * unshuffle
    x = torch.rand(1, 1, 3, size, size, requires_grad=True)
    y0 = x0 = size // 2
    net(x)[0, :, y0, x0].sum().backward()
    assert x.grad is not None
    ys, xs = x.grad[0, 0].abs().sum(0).nonzero(as_tuple=True)
    reach = max((ys - y0).abs().max().item(), (xs - x0).abs().max().item())
    assert net.radius - unshuffle < reach <= net.radius


def test_the_global_branch_sees_the_whole_picture() -> None:
    """A change far outside the local receptive field reaches the output only through the global statistics."""
    net = perturbed(FilmNet(frames=1, width=8, depth=1))
    x = torch.rand(1, 1, 3, 64, 64)
    y = x.clone()
    y[..., 48:, 48:] = 0
    with torch.inference_mode():
        assert not torch.allclose(net(x)[..., :8, :8], net(y)[..., :8, :8])
        local = perturbed(FilmNet(frames=1, width=8, depth=1), global_branch=False)
        assert torch.equal(local(x)[..., :8, :8], local(y)[..., :8, :8])


def test_deterministic() -> None:
    torch.manual_seed(3)
    a = perturbed(FilmNet(frames=5, scale=2, width=8, depth=2))
    torch.manual_seed(3)
    b = perturbed(FilmNet(frames=5, scale=2, width=8, depth=2))
    x = torch.rand(2, 5, 3, 12, 20)
    with torch.inference_mode():
        assert torch.equal(a(x), b(x))
        assert torch.equal(a(x), a(x))


def test_gradients_reach_every_parameter() -> None:
    net = perturbed(FilmNet(frames=3, scale=2, width=8, depth=2)).train()
    x = torch.rand(2, 3, 3, 8, 12, requires_grad=True)
    net(x).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert x.grad is not None and x.grad[:, 0].abs().sum() > 0


def test_zero_init_tail_still_learns() -> None:
    net = FilmNet(frames=3, width=8, depth=1)
    net(torch.rand(1, 3, 3, 8, 8)).sub(0.5).square().mean().backward()
    assert net.tail.weight.grad is not None and net.tail.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("scale", [1, 2])
def test_channels_last_matches_contiguous(scale: int) -> None:
    net = perturbed(FilmNet(frames=5, scale=scale, width=16, depth=2))
    x = torch.rand(2, 5, 3, 13, 18)
    with torch.inference_mode():
        ref = net(x)
        x_nhwc = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)  # decoded frames' layout
        out = net.to(memory_format=torch.channels_last)(x_nhwc)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale", [1, 2])
def test_half_precision_matches_fp32(scale: int) -> None:
    net = perturbed(FilmNet(frames=5, scale=scale, width=8, depth=1))
    x = torch.rand(1, 5, 3, 10, 14)
    with torch.inference_mode():
        ref = net(x)
        out = net.half().to(memory_format=torch.channels_last)(x.half())
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=5e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_matches_cpu() -> None:
    net = perturbed(FilmNet(frames=5, scale=2, width=16, depth=2))
    x = torch.rand(2, 5, 3, 33, 47)
    with torch.inference_mode():
        ref = net(x)
        gpu = net.cuda().half().to(memory_format=torch.channels_last)
        out = gpu(x.cuda().half()).float().cpu()
    torch.testing.assert_close(out, ref, rtol=0, atol=5e-3)


def test_space_to_depth_is_per_frame_pixel_unshuffle() -> None:
    x = torch.rand(2, 3, 3, 8, 12)
    ref = F.pixel_unshuffle(x.reshape(6, 3, 8, 12), 4).reshape(2, 3 * 48, 2, 3)
    out = space_to_depth(x, 4)
    assert torch.equal(out, ref)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_invalid_configs_and_inputs() -> None:
    with pytest.raises(ValueError, match="FilmNet: frames must be 1, 3, 5 or 7, got 4"):
        FilmNet(frames=4)
    with pytest.raises(ValueError, match="FilmNet: scale must be 1 or 2, got 4"):
        FilmNet(scale=4)
    with pytest.raises(ValueError, match="FilmNet: unshuffle must be 2 or 4, got 3"):
        FilmNet(unshuffle=3)
    with pytest.raises(ValueError, match=r"FilmNet: expected \(N, 5, 3, H, W\), got \(1, 3, 3, 8, 8\)"):
        FilmNet(frames=5)(torch.rand(1, 3, 3, 8, 8))
    with pytest.raises(ValueError, match="unknown FilmNet size 'film-xl'; known: film-s, film-m, film-l"):
        film("film-xl")


# window_indices ------------------------------------------------------------------------------------------


@st.composite
def clips(draw: st.DrawFn) -> tuple[list[int], int, int]:
    """(scene ids made of contiguous shots, a frame t, an odd window)."""
    shots = draw(st.lists(st.integers(1, 8), min_size=1, max_size=6))
    ids = [i for i, n in enumerate(shots) for _ in range(n)]
    return ids, draw(st.integers(0, len(ids) - 1)), draw(st.sampled_from([1, 3, 5, 7, 9]))


@settings(max_examples=300, deadline=None)
@given(clips())
def test_window_stays_in_its_shot(clip: tuple[list[int], int, int]) -> None:
    ids, t, frames = clip
    idx = window_indices(len(ids), t, frames, ids)
    r = frames // 2
    assert len(idx) == frames and idx[r] == t
    assert all(ids[i] == ids[t] for i in idx), "the window mixes shots"
    assert idx == sorted(idx) and all(abs(i - t) <= r for i in idx)
    shot = [i for i in range(len(ids)) if ids[i] == ids[t]]
    # each index is the frame it asks for, or the nearest frame of the shot to it
    assert idx == [min(shot, key=lambda i, j=t + o: abs(i - j)) for o in range(-r, r + 1)]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.data())
def test_window_without_scenes_replicates_ends(n: int, data: st.DataObject) -> None:
    t = data.draw(st.integers(0, n - 1))
    frames = data.draw(st.sampled_from([1, 3, 5, 7]))
    r = frames // 2
    idx = window_indices(n, t, frames)
    assert idx == [min(max(t + o, 0), n - 1) for o in range(-r, r + 1)]
    assert idx == window_indices(n, t, frames, [0] * n)


def test_window_examples() -> None:
    ids = [0, 0, 0, 1, 1, 2]
    assert window_indices(6, 0, 5, ids) == [0, 0, 0, 1, 2]
    assert window_indices(6, 2, 5, ids) == [0, 1, 2, 2, 2]
    assert window_indices(6, 3, 5, ids) == [3, 3, 3, 4, 4]
    assert window_indices(6, 5, 5, ids) == [5, 5, 5, 5, 5]
    assert window_indices(6, 1, 1, ids) == [1]


def test_window_invalid() -> None:
    with pytest.raises(ValueError, match="frames must be odd and >= 1, got 4"):
        window_indices(10, 0, 4)
    with pytest.raises(ValueError, match="t=10 is outside a clip of 10 frames"):
        window_indices(10, 10, 5)
    with pytest.raises(ValueError, match="3 scene ids for 10 frames"):
        window_indices(10, 0, 5, [0, 0, 0])


def test_stack_windows_feeds_the_net() -> None:
    clip = torch.rand(6, 3, 8, 8)
    ids = [0, 0, 0, 1, 1, 1]
    windows = stack_windows(clip, 3, ids)
    assert windows.shape == (6, 3, 3, 8, 8)
    assert torch.equal(windows[3], clip[[3, 3, 4]]) and torch.equal(windows[2], clip[[1, 2, 2]])
    with torch.inference_mode():
        assert torch.equal(FilmNet(frames=3, width=8, depth=1)(windows), clip)


def test_the_motion_gate_replaces_neighbour_pixels_that_moved() -> None:
    """A neighbour's pixels that differ from the centre frame by more than the gate (a fast edge) become the
    centre frame's; small differences (noise) are kept; the net with its gate is the net on the gated window."""
    x = torch.rand(1, 3, 3, 16, 16) * 0.2 + 0.4
    moved = x.clone()
    moved[:, 0, :, :, :8] = 1.0                       # the left half of frame t-1 is something else
    moved[:, 2] += 0.02                               # frame t+1: a little noise, below the gate
    gated = gate(moved, 1, MOTION_GATE)
    assert torch.equal(gated[:, 0, :, :, :7], moved[:, 1, :, :, :7])
    assert torch.equal(gated[:, 0, :, :, 11:], moved[:, 0, :, :, 11:])
    assert torch.equal(gated[:, 1:], moved[:, 1:])
    net = perturbed(FilmNet(frames=3, width=8, depth=1))
    with torch.inference_mode():
        off = net(gated)
        net.motion_gate = MOTION_GATE
        assert torch.equal(net(moved), off)
        assert not torch.equal(net(moved), net(x))
