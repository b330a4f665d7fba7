"""The ncnn converter rejects files it cannot convert faithfully, naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from vflow.models.ncnn import NcnnFormatError, convert


def test_converter_rejects_trailing_bicubic(ncnn_dir: Path) -> None:
    with pytest.raises(NcnnFormatError, match=r"realesr-animevideov3-x2\.param: layer Resize_40: .*use the x4"):
        convert(ncnn_dir / "realesr-animevideov3-x2.param", ncnn_dir / "realesr-animevideov3-x2.bin")


def test_converter_rejects_truncated_bin(ncnn_dir: Path, tmp_path: Path) -> None:
    data = (ncnn_dir / "realesr-animevideov3-x4.bin").read_bytes()
    (tmp_path / "short.bin").write_bytes(data[:-8])
    with pytest.raises(NcnnFormatError, match=r"short\.bin: truncated"):
        convert(ncnn_dir / "realesr-animevideov3-x4.param", tmp_path / "short.bin")


def test_converter_rejects_non_param_file(tmp_path: Path) -> None:
    (tmp_path / "bad.param").write_text("hello\n")
    with pytest.raises(NcnnFormatError, match=r"bad\.param: not an ncnn text \.param file"):
        convert(tmp_path / "bad.param", tmp_path / "bad.bin")
