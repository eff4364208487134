"""Where the synthetic stack has no usable signal: the lake and the radar shadow.

* The lake (an irregular ellipse in the north-east) is the water body: ``water_mask`` is False
  there (MintPy: True = land), ``conn_comp = 0``, coherence ~ U(0.05, 0.15)
  (:mod:`sbts.core.demo.decorrelation`), and its phase is uniform noise, or exactly 0 (MintPy
  no-data) in a random ``water_nodata_fraction`` of the pairs, as unwrappers leave masked water.
* Shadow is computed by ray casting along image rows (approximating the range direction by the E-W
  axis, 13° off): a pixel is shadowed if terrain nearer the radar rises above the ray at elevation
  90° − θ.  Shadow pixels have coherence 0.05.

The lake's phase draws from the ``water`` random stream *after* the decorrelation model drew the
lake's coherence from it: the two share the stream, in that order.
"""

from __future__ import annotations

import numpy as np

from sbts.core.demo.fields import blob


def lake(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(L, W) bool, True on the lake."""
    length, width = shape
    lake_cy = (0.27 + rng.uniform(-0.03, 0.03)) * (length - 1)
    lake_cx = (0.76 + rng.uniform(-0.03, 0.03)) * (width - 1)
    return blob((length, width), lake_cy, lake_cx, 0.12 * length, 0.11 * width, rng)


def radar_shadow(height: np.ndarray, incidence_deg: np.ndarray, pixel_x: float, far_range_increasing_x: bool,
                 water: np.ndarray | None = None) -> np.ndarray:
    """(L, W) bool radar shadow by ray casting along rows (range ≈ E-W); never on ``water``."""
    h = height.astype(np.float64)
    if not far_range_increasing_x:
        h = h[:, ::-1]
        inc = incidence_deg[:, ::-1]
    else:
        inc = incidence_deg
    tan_elev = np.tan(np.deg2rad(90.0 - inc.astype(np.float64)))
    x = np.arange(h.shape[1]) * pixel_x
    # x' < x blocks the ray to x if h(x') > h(x) + (x − x')·tan(elevation)
    g = h + x[None, :] * tan_elev
    prev_max = np.maximum.accumulate(np.concatenate([np.full((h.shape[0], 1), -np.inf), g[:, :-1]],
                                                    axis=1), axis=1)
    mask = prev_max > g
    mask = mask if far_range_increasing_x else mask[:, ::-1]
    if water is not None:
        mask &= ~water
    return mask


def lake_phase(phase: np.ndarray, water: np.ndarray, nodata_fraction: float, rng: np.random.Generator) -> None:
    """Overwrite the lake's phase in place: 0 (no data) in a random fraction of pairs, else uniform noise."""
    num_pair = phase.shape[0]
    n_water = int(water.sum())
    nodata_pairs = rng.random(num_pair) < nodata_fraction
    for k in range(num_pair):
        if nodata_pairs[k]:
            phase[k][water] = 0.0
        else:
            phase[k][water] = rng.uniform(-np.pi, np.pi, n_water)
