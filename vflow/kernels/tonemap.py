"""HDR (PQ or HLG, BT.2020) to SDR (BT.709, BT.1886 display) per pixel, in float32 numba.

The signal becomes display light in cd/m² (PQ's EOTF; HLG's inverse OETF and its OOTF for a 1000 cd/m²
display, system gamma 1.2), BT.2020 primaries become BT.709 ones (a 3x3 matrix on linear light), and the
luminance, in units of HDR reference white (203 cd/m², BT.2408), goes through a curve that is the identity
up to ``knee`` and a shoulder above it that reaches SDR white at the source's peak (continuous in value and
slope, never passing white), each pixel's RGB scaled by its luminance's ratio so that hues stay. Colours still
above SDR white after that lose saturation, not luminance. The result is encoded for a BT.1886 display
(gamma 2.4), the way BT.709-tagged video is shown.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from . import serialised
from ..pipeline.frames import HDR_TRANSFERS

REFERENCE_WHITE = 203.0   # cd/m² of HDR reference white (BT.2408): SDR white is mapped from about here
HLG_PEAK = 1000.0         # cd/m² of the display HLG's OOTF is computed for
PQ, HLG = sorted(HDR_TRANSFERS)   # H.273 transfer code points 16 and 18

# BT.2020 -> BT.709 on linear light (BT.2087), and the luma weights of each
TO_709 = np.array([[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]], np.float32)
KW_2020 = np.array([0.2627, 0.6780, 0.0593], np.float32)
KW_709 = np.array([0.2126, 0.7152, 0.0722], np.float32)


def pq_to_nits(e: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084 EOTF: signal 0..1 -> cd/m² (float64)."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = np.power(np.clip(e, 0, 1), 1 / m2)
    return 10000 * np.power(np.maximum(p - c1, 0) / (c2 - c3 * p), 1 / m1)


def nits_to_pq(y: np.ndarray) -> np.ndarray:
    """The inverse: cd/m² -> PQ signal 0..1."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = np.power(np.clip(y / 10000, 0, 1), m1)
    return np.power((c1 + c2 * p) / (1 + c3 * p), m2)


def hlg_to_scene(e: np.ndarray) -> np.ndarray:
    """ARIB STD-B67 inverse OETF: signal 0..1 -> scene linear light 0..1 (float64)."""
    a, b = 0.17883277, 1 - 4 * 0.17883277
    c = 0.5 - a * np.log(4 * a)
    e = np.clip(e, 0, 1)
    return np.where(e <= 0.5, e * e / 3, (np.exp((e - c) / a) + b) / 12)


def scene_to_hlg(s: np.ndarray) -> np.ndarray:
    """The HLG OETF: scene linear 0..1 -> signal."""
    a, b = 0.17883277, 1 - 4 * 0.17883277
    c = 0.5 - a * np.log(4 * a)
    s = np.clip(s, 0, 1)
    return np.where(s <= 1 / 12, np.sqrt(3 * s), a * np.log(np.maximum(12 * s - b, 1e-12)) + c)


def linear_table(transfer: int, vmax: int) -> np.ndarray:
    """Code 0..vmax -> linear light per channel: PQ in units of reference white, HLG scene light 0..1."""
    e = np.arange(vmax + 1) / vmax
    table = pq_to_nits(e) / REFERENCE_WHITE if transfer == PQ else hlg_to_scene(e)
    return table.astype(np.float32)


@nb.njit(nogil=True, cache=True, inline="always", fastmath=True)
def _shoulder(x: float, knee: float, span: float) -> float:
    """The identity to ``knee``, then ``knee + (1 - knee) f(t)`` with ``t = (x - knee) / (1 - knee)`` and the
    extended Reinhard curve ``f(t) = t (1 + t / T^2) / (1 + t)``: slope 1 at the knee, SDR white at ``t = T``
    (``span``: the source's peak), flat at white beyond it."""
    if x <= knee:
        return x
    r = np.float32(1.0) - knee
    t = min((x - knee) / r, span)
    return knee + r * t * (np.float32(1.0) + t / (span * span)) / (np.float32(1.0) + t)


@serialised
@nb.njit(nogil=True, cache=True, parallel=True, fastmath=True)
def tonemap(frame: np.ndarray, lin: np.ndarray, hlg: bool, knee: float, peak: float, hlg_scale: float,
            out: np.ndarray, vmax: int) -> None:
    """``frame`` (H, W, 3) HDR codes -> ``out`` SDR codes 0..``vmax`` (see the module docstring). ``lin`` is
    :func:`linear_table`; ``peak`` the source's brightest light and ``hlg_scale`` the HLG display's peak, both
    in units of reference white."""
    h, w, _ = frame.shape
    m, k20, k709 = TO_709, KW_2020, KW_709
    inv_gamma = np.float32(1.0 / 2.4)
    top = np.float32(vmax)
    span = max((peak - knee) / (np.float32(1.0) - knee), np.float32(1e-3))
    for y in nb.prange(h):
        for x in range(w):
            r, g, b = lin[frame[y, x, 0]], lin[frame[y, x, 1]], lin[frame[y, x, 2]]
            if hlg:  # the OOTF: display light = peak * Ys^(gamma - 1) * scene light, gamma 1.2
                ys = k20[0] * r + k20[1] * g + k20[2] * b
                f = hlg_scale * ys ** np.float32(0.2) if ys > 0 else np.float32(0.0)
                r, g, b = r * f, g * f, b * f
            r2 = max(m[0, 0] * r + m[0, 1] * g + m[0, 2] * b, np.float32(0.0))
            g2 = max(m[1, 0] * r + m[1, 1] * g + m[1, 2] * b, np.float32(0.0))
            b2 = max(m[2, 0] * r + m[2, 1] * g + m[2, 2] * b, np.float32(0.0))
            lum = k709[0] * r2 + k709[1] * g2 + k709[2] * b2
            if lum > 0:
                s = _shoulder(lum, knee, span) / lum
                r2, g2, b2 = r2 * s, g2 * s, b2 * s
                lum *= s
                peak = max(r2, g2, b2)
                if peak > 1:  # still above SDR white: towards the luminance, keeping it
                    t = (np.float32(1.0) - lum) / (peak - lum)
                    r2, g2, b2 = lum + (r2 - lum) * t, lum + (g2 - lum) * t, lum + (b2 - lum) * t
            out[y, x, 0] = min(max(r2, np.float32(0.0)) ** inv_gamma * top + np.float32(0.5), top)
            out[y, x, 1] = min(max(g2, np.float32(0.0)) ** inv_gamma * top + np.float32(0.5), top)
            out[y, x, 2] = min(max(b2, np.float32(0.0)) ** inv_gamma * top + np.float32(0.5), top)
