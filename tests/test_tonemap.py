"""tonemap: HDR (PQ, HLG) to SDR BT.709, so that SDR stages can follow; the colour science against its formulas."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vflow
from vflow.kernels import tonemap as tm
from vflow.kernels.tonemap import HLG, PQ, REFERENCE_WHITE, TO_709, linear_table, nits_to_pq, scene_to_hlg
from vflow.stages.tonemap import ToneMap
from vflow.testing import check_stage_contract

from test_deep_colour import PQ_MASTER, luma_levels, write_ramp

TO_2020 = np.linalg.inv(TO_709.astype(np.float64))


def mapped(codes: np.ndarray, transfer: int, knee: float = 0.7, peak: float = 1000.0) -> np.ndarray:
    """(N, 3) 16-bit HDR codes -> SDR codes / 65535 through the kernel."""
    frame = np.ascontiguousarray(codes.reshape(1, -1, 3), np.uint16)
    out = np.empty_like(frame)
    tm.tonemap(frame, linear_table(transfer, 65535), transfer == HLG, np.float32(knee),
               np.float32(peak / REFERENCE_WHITE), np.float32(1000 / REFERENCE_WHITE), out, 65535)
    return out.reshape(-1, 3) / 65535


def hdr_codes(display: np.ndarray, transfer: int) -> np.ndarray:
    """BT.2020 display light in units of reference white (N, 3) -> 16-bit PQ or HLG codes."""
    nits = display * REFERENCE_WHITE
    if transfer == PQ:
        signal = nits_to_pq(nits)
    else:  # the inverse of the OOTF (1000 cd/m², gamma 1.2), then the OETF
        yd = nits @ np.array([0.2627, 0.6780, 0.0593])
        ys = (yd / 1000) ** (1 / 1.2)
        scene = nits / (1000 * np.maximum(ys, 1e-12) ** 0.2)[:, None]
        signal = scene_to_hlg(scene)
    return np.rint(signal * 65535).astype(np.uint16)


@pytest.mark.parametrize("transfer", [PQ, HLG])
def test_reference_white_lands_near_sdr_white_and_the_ramp_keeps_its_order(transfer: int) -> None:
    white = mapped(hdr_codes(np.ones((1, 3)), transfer), transfer)
    assert np.allclose(white, 0.935, atol=0.01)                    # a little below white: room for highlights
    ramp = np.repeat(np.arange(0, 65536, 8, dtype=np.uint16)[:, None], 3, 1)
    out = mapped(ramp, transfer)[:, 0]
    assert out[0] == 0 and (np.diff(out) >= 0).all()
    assert mapped(hdr_codes(np.full((1, 3), 1000 / REFERENCE_WHITE), transfer), transfer).min() > 0.999


@settings(max_examples=40, deadline=None)
@given(rgb=st.tuples(*[st.floats(0.0, 1.0)] * 3), scale=st.floats(0.05, 0.65), transfer=st.sampled_from([PQ, HLG]))
def test_a_bt709_colour_below_the_knee_comes_back_as_it_was(rgb: tuple[float, float, float], scale: float,
                                                            transfer: int) -> None:
    """An SDR colour (BT.709, linear, dimmer than the knee) put into BT.2020 HDR and mapped back is the same
    colour: the primaries, the transfers and the OOTF are each other's inverses there."""
    sdr = np.array(rgb) * scale
    if sdr @ [0.2126, 0.7152, 0.0722] > 0.69:
        return
    display = TO_2020 @ sdr
    got = mapped(hdr_codes(display[None, :], transfer), transfer)[0]
    # in light (the display gamma turns a 1e-6 rounding near black into a visible-looking code difference)
    assert (np.abs(got**2.4 - sdr) <= 1e-4 + 3e-3 * sdr).all(), (got**2.4, sdr)


@settings(max_examples=30, deadline=None)
@given(rgb=st.tuples(*[st.floats(0.0, 1.0)] * 3), scale=st.floats(0.5, 60.0), transfer=st.sampled_from([PQ, HLG]))
def test_nothing_passes_sdr_white_and_hues_stay(rgb: tuple[float, float, float], scale: float, transfer: int) -> None:
    display = TO_2020 @ (np.array(rgb) * scale)
    if display.min() < 0 or display @ [0.2627, 0.6780, 0.0593] > 1000 / REFERENCE_WHITE:
        return
    got = mapped(hdr_codes(display[None, :], transfer), transfer)[0]
    assert got.max() <= 1.0
    sdr = np.array(rgb) * scale
    if sdr.max() > 0.05 and got.max() < 0.999:   # not desaturated at white: the channels keep their ratios
        lin = got ** 2.4
        assert np.allclose(lin / lin.max(), sdr / sdr.max(), atol=0.03)


def test_sdr_frames_pass_through_and_the_contract_holds() -> None:
    for depth in (8, 16):
        emitted = check_stage_contract(lambda: ToneMap(), frames=6, depth=depth)
        assert sum(len(b) for b in emitted) == 6


def test_bad_params() -> None:
    with pytest.raises(ValueError, match="knee"):
        ToneMap(knee=1.0)
    with pytest.raises(ValueError, match="peak"):
        ToneMap(peak=100.0)


@pytest.mark.timeout(120)
def test_an_hdr_phone_clip_goes_through_a_restore_graph_after_tonemap(tmp_path: Path) -> None:
    write_ramp(tmp_path / "in.mkv", "yuv420p10le", codec="libx265", frames=8, color=(9, 1, 9, 16),
               options={"x265-params": f"log-level=error:{PQ_MASTER}"})
    stages = {"decode": {"type": "decode", "params": {"path": str(tmp_path / "in.mkv")}},
              "scenes": {"type": "scene_split"}, "color": {"type": "color"},
              "smooth": {"type": "temporal_smooth", "params": {"mode": "both", "window": 5}},
              "encode": {"type": "encode", "params": {"path": str(tmp_path / "out.mkv"), "codec": "libx265"}}}
    edges = ["decode.video -> scenes -> smooth -> color -> encode.video"]
    with pytest.raises(vflow.GraphError, match="tonemap stage right after decode"):
        vflow.Pipeline.load({"vflow": 1, "stages": stages, "edges": edges}).build()
    stages["tonemap"] = {"type": "tonemap"}
    edges = ["decode.video -> tonemap -> scenes -> smooth -> color -> encode.video"]
    vflow.Pipeline.load({"vflow": 1, "stages": stages, "edges": edges}).run()
    kept, fmt, frame = luma_levels(tmp_path / "out.mkv")
    assert fmt == "yuv420p10le" and kept > 600                    # still 10-bit
    assert (frame.colorspace, frame.color_primaries, frame.color_trc) == (1, 1, 1)
    assert not [sd for sd in frame.side_data if "MASTERING" in str(sd.type)]
