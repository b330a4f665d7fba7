"""The degradation model (vflow.train): repeatability, shapes, each operator alone, the temporal behaviour of
grain and scratches, the real codec pass, pan/zoom clips from stills, and ``vflow degrade``. Runtime: about
15 s on 2 cores."""

from __future__ import annotations

import math
from pathlib import Path

import av
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vflow.cli import main
from vflow.train import OPERATORS, DegradeConfig, degrade, families, pan_zoom_clip
from vflow.train import codec
from vflow.train.blur import filter2d, gaussian, kernels
from vflow.train.degrade import Codec
from vflow.media.images import write_png
from vflow.train.preview import GAP, LABEL


def moving(b: int = 2, t: int = 4, h: int = 64, w: int = 64) -> torch.Tensor:
    """Colourful clips with edges and texture that move 1.5 px a frame: (B, T, 3, H, W) in [0, 1]."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    clips = []
    for i in range(b):
        frames = []
        for j in range(t):
            xs = x - 1.5 * j + 7 * i
            frames.append(torch.stack([0.5 + 0.4 * torch.sin(xs / 4), 0.5 + 0.4 * torch.cos(y / 6 + i),
                                       ((xs // 8 + y // 8) % 2) * 0.6 + 0.2]))
        clips.append(torch.stack(frames))
    return torch.stack(clips)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / float(((a - b) ** 2).mean()))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_same_seed_same_clips_other_seed_other_clips() -> None:
    clean = moving()
    a, rec_a = degrade(clean, 1, seeded(7))
    b, rec_b = degrade(clean, 1, seeded(7))
    c, _ = degrade(clean, 1, seeded(8))
    assert torch.equal(a, b) and rec_a == rec_b
    assert not torch.equal(a, c)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(b=st.integers(1, 3), t=st.integers(1, 5), h=st.sampled_from([32, 48, 66]), w=st.sampled_from([32, 40, 70]),
       scale=st.sampled_from([1, 2]), seed=st.integers(0, 2**31))
def test_shapes_dtype_and_range(b: int, t: int, h: int, w: int, scale: int, seed: int) -> None:
    clean = moving(b, t, h, w)
    out, record = degrade(clean, scale, seeded(seed))
    assert out.shape == (b, t, 3, h // scale, w // scale) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1 and torch.isfinite(out).all()
    assert len(record) == b
    for fired in record:
        assert families(fired) <= {"blur", "noise", "compression", "film", "vhs"}
        assert all(OPERATORS[f.name] == f.family for f in fired)


def test_scale_must_divide_the_size() -> None:
    with pytest.raises(ValueError, match="scale must be 1 or 2 and divide the size 33x32"):
        degrade(moving(1, 1, 32, 33), 2)


@pytest.mark.parametrize("name", list(OPERATORS))
def test_each_operator_alone_changes_the_clip_a_bounded_amount(name: str) -> None:
    clean = moving(2, 4)
    out, record = degrade(clean, 1, seeded(3), only={name}, always=True)
    change = float((out - clean).abs().mean())
    assert 1e-5 < change < 0.2, change
    assert all({f.name for f in fired} == {name} for fired in record)


def test_only_a_family_keeps_the_record_to_it() -> None:
    _, record = degrade(moving(3, 3), 1, seeded(1), only={"film"}, always=True)
    assert all(families(fired) == {"film"} for fired in record)
    with pytest.raises(ValueError, match="unknown operators or families"):
        degrade(moving(1, 1), 1, only={"sharpen"})


def _flat(t: int) -> torch.Tensor:
    return torch.full((1, t, 3, 64, 64), 0.5)


def test_grain_is_new_every_frame() -> None:
    out, _ = degrade(_flat(4), 1, seeded(2), only={"grain"}, always=True)
    r = (out - 0.5)[0, :, 1].reshape(4, -1)
    assert float(r.std()) > 0.005
    corr = torch.corrcoef(r)
    assert float(corr[~torch.eye(4, dtype=torch.bool)].abs().max()) < 0.1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scratches_persist_across_frames(seed: int) -> None:
    out, record = degrade(_flat(5), 1, seeded(seed), only={"scratches"}, always=True)
    cols = (out - 0.5)[0, :, 1].abs().mean(1)                        # (T, W): where the scratches are
    cols = F.avg_pool1d(cols[:, None], 5, 1, 2)[:, 0]                  # tolerate a slow drift
    corr = torch.corrcoef(cols)
    assert float(corr[0, 1:].min()) > 0.5, corr[0]
    assert record[0][0].params["count"] >= 1


def test_codec_pass_keeps_the_frame_count() -> None:
    clip = moving(1, 7, 34, 46)[0]
    for t in (1, 2, 7):
        for name in codec.VIDEO_CODECS:
            assert codec.video(clip[:t], name, crf=35, qscale=10).shape == (t, 3, 34, 46)
    assert codec.video(clip[:3, :, :33, :45], "libx264").shape == (3, 3, 33, 45)   # odd sizes: padded, cropped


def test_codec_pass_lowers_psnr_more_at_high_crf() -> None:
    grey = moving(1, 5)[0].mean(1, keepdim=True)          # grey, so 4:2:0 chroma does not cap the PSNR
    noisy = (grey + 0.03 * torch.randn(5, 1, 64, 64, generator=seeded(0))).clamp(0, 1).expand(-1, 3, -1, -1)
    high, low = codec.video(noisy, "libx264", crf=42), codec.video(noisy, "libx264", crf=16)
    assert psnr(high, noisy) < 27 and psnr(low, noisy) > 34
    mpeg2 = [psnr(codec.video(noisy, "mpeg2video", qscale=q), noisy) for q in (24, 2)]
    assert mpeg2[0] < mpeg2[1]
    assert psnr(codec.jpeg(noisy, 25), noisy) < psnr(codec.jpeg(noisy, 2), noisy)
    cfg = DegradeConfig(codec=Codec(crf=(42, 45), weights=(1.0, 0.0)))
    out, record = degrade(noisy[None], 1, seeded(0), cfg, only={"codec"}, always=True)
    assert psnr(out[0], noisy) < 27 and record[0][0].params["codec"] == "libx264"


def test_kernels_sum_to_one_and_filter_matches_conv2d() -> None:
    n = 6
    k = kernels(torch.arange(n) % 4, torch.tensor([7, 9, 11, 13, 21, 21]), torch.full((n,), 1.5),
                torch.full((n,), 0.8), torch.full((n,), 0.6), torch.full((n,), 1.5), torch.full((n,), 1.2), 21)
    assert torch.allclose(k.sum((1, 2)), torch.ones(n), atol=1e-5)
    assert float(k[0, :, :3].abs().max()) == 0                           # a size-7 kernel is zero outside 7x7
    x = torch.rand(n, 3, 40, 48, generator=seeded(0))
    ref = torch.stack([F.conv2d(F.pad(x[i:i + 1], (10,) * 4, mode="reflect"), k[i].expand(3, 1, 21, 21), groups=3)[0]
                       for i in range(n)])
    assert torch.allclose(filter2d(x, k), ref, atol=1e-5)
    g = gaussian(torch.tensor([1.0]), 7)[0]
    assert math.isclose(float(g[3, 4] / g[3, 3]), math.exp(-0.5), rel_tol=1e-4)


def test_pan_zoom_clip_is_slow_and_repeatable() -> None:
    image = moving(1, 1, 300, 400)[0, 0]
    a = pan_zoom_clip(image, 6, (96, 128), seeded(4))
    assert a.shape == (6, 3, 96, 128) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, pan_zoom_clip(image, 6, (96, 128), seeded(4)))
    steps = (a[1:] - a[:-1]).abs().mean((1, 2, 3))
    assert float((a[-1] - a[0]).abs().mean()) > 0.01 and float(steps.max()) < 0.15


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda() -> None:
    out, _ = degrade(moving(2, 3).cuda(), 2, seeded(0))
    assert out.is_cuda and out.shape == (2, 3, 3, 32, 32)


def vflow(capfd: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def _png_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        return frame.width, frame.height


def test_cli_writes_the_grid_of_a_clip(capfd: pytest.CaptureFixture[str], tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "grid.png"
    code, stdout, err = vflow(capfd, "degrade", clip, "-o", out, "--frames", "2", "--seed", "3")
    assert code == 0, err
    assert stdout.startswith(f"wrote {out} (7 columns: clean, blur, noise, compression, film, vhs, all; 2 frames)")
    assert _png_size(out) == (7 * 64 + 8 * GAP, LABEL + 2 * 48 + 3 * GAP)   # the 64x48 fixture clip


def test_cli_pans_over_an_image_at_scale_2(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    image = tmp_path / "still.png"
    write_png(image, (moving(1, 1, 90, 120)[0, 0].permute(1, 2, 0) * 255).to(torch.uint8).numpy())
    out = tmp_path / "grid.png"
    code, _, err = vflow(capfd, "degrade", image, "-o", out, "--frames", "3", "--scale", "2")
    assert code == 0, err
    assert _png_size(out) == (7 * 120 + 8 * GAP, LABEL + 3 * 88 + 4 * GAP)  # 90 rows -> 88 (a multiple of 4)


def test_cli_names_a_missing_file_in_one_line(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, stdout, err = vflow(capfd, "degrade", tmp_path / "nope.mp4", "-o", tmp_path / "grid.png")
    assert code == 2 and stdout == ""
    assert err == f"vflow: error: input file '{tmp_path / 'nope.mp4'}' does not exist\n"
    assert not (tmp_path / "grid.png").exists()
