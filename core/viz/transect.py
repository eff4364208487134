"""``sbts plot transect``: values along a line, for one or several files.

The line is sampled every ~1 pixel (nearest or bilinear); only the window of the raster that the
line crosses is read.  Distances are great-circle kilometres for files on a lat/lon grid, grid units
(km) for projected grids, pixels for radar files.  A small map shows where the line lies.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.errors import DataError, InputError
from sbts.core.io.products import Product, TimeSeries
from sbts.core.viz import common as c
from sbts.core.viz.maps import Layer, draw_map, prepare_maps, resolve_layers

logger = logging.getLogger(__name__)


@dataclass
class Profile:
    """Samples along a line: pixel coordinates, distance from the start, values in display units."""

    path: Path
    label: str
    ys: np.ndarray
    xs: np.ndarray
    distance: np.ndarray
    distance_unit: str
    values: np.ndarray
    unit: str


def line_points(start_yx: tuple[float, float], end_yx: tuple[float, float], spacing: float = 1.0):
    """Pixel coordinates (float) of points from start to end, ``spacing`` pixels apart (both ends kept)."""
    (y0, x0), (y1, x1) = start_yx, end_yx
    length = math.hypot(y1 - y0, x1 - x0)
    n = max(2, int(math.ceil(length / max(spacing, 1e-6))) + 1)
    t = np.linspace(0.0, 1.0, n)
    return y0 + t * (y1 - y0), x0 + t * (x1 - x0)


def sample(data: np.ndarray, ys: np.ndarray, xs: np.ndarray, method: str = "nearest") -> np.ndarray:
    """Values of ``data`` at fractional pixel coordinates; NaN outside the array.

    ``bilinear`` interpolates between the four neighbours (a NaN neighbour gives NaN, so no-data
    does not leak into averages); ``nearest`` takes the pixel containing the point.
    """
    data = np.asarray(data, np.float64)
    length, width = data.shape
    out = np.full(ys.shape, np.nan)
    if method == "nearest":
        yi, xi = np.floor(ys + 0.5).astype(int), np.floor(xs + 0.5).astype(int)
        ok = (yi >= 0) & (yi < length) & (xi >= 0) & (xi < width)
        out[ok] = data[yi[ok], xi[ok]]
        return out
    if method != "bilinear":
        raise InputError(f"transect interpolation {method!r}: use nearest or bilinear")
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    y1 = np.minimum(y0 + 1, length - 1)
    x1 = np.minimum(x0 + 1, width - 1)
    ok = (y0 >= 0) & (x0 >= 0) & (ys <= length - 1) & (xs <= width - 1)
    a, b, cc, d = (data[y0[ok], x0[ok]], data[y0[ok], x1[ok]], data[y1[ok], x0[ok]], data[y1[ok], x1[ok]])
    out[ok] = (a * (1 - fx[ok]) * (1 - fy[ok]) + b * fx[ok] * (1 - fy[ok])
               + cc * (1 - fx[ok]) * fy[ok] + d * fx[ok] * fy[ok])
    return out


def _distance(meta, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, str]:
    g = meta.grid.geo
    if g is None:
        return np.hypot(ys - ys[0], xs - xs[0]), "pixel"
    lat = g.y_first + (ys + 0.5) * g.y_step
    lon = g.x_first + (xs + 0.5) * g.x_step
    if c.is_degrees(meta):
        return c.great_circle_km(lat[0], lon[0], lat, lon), "km"
    scale = 1e-3 if (g.x_unit or "m").lower().startswith("m") else 1.0
    return np.hypot(lat - lat[0], lon - lon[0]) * scale, "km"


def _endpoints(meta, path, start_yx, end_yx, start_lalo, end_lalo) -> tuple[tuple[float, float], tuple[float, float]]:
    """Line ends in fractional pixel coordinates of this file (lat/lon converted exactly when geocoded)."""
    if start_lalo is not None and end_lalo is not None:
        g = meta.grid.geo
        if g is None:
            s = c.lalo_to_yx(meta, *start_lalo, path, "transect start")
            e = c.lalo_to_yx(meta, *end_lalo, path, "transect end")
            return (float(s[0]), float(s[1])), (float(e[0]), float(e[1]))
        c.lalo_to_yx(meta, *start_lalo, what="transect start")  # inside the image?
        c.lalo_to_yx(meta, *end_lalo, what="transect end")

        def frac(lat, lon):
            return (lat - g.y_first) / g.y_step - 0.5, (lon - g.x_first) / g.x_step - 0.5

        return frac(*start_lalo), frac(*end_lalo)
    if start_yx is None or end_yx is None:
        raise InputError("transect: give --start-yx and --end-yx, or --start-lalo and --end-lalo")
    s = c.check_pixel(meta, int(start_yx[0]), int(start_yx[1]), "transect start")
    e = c.check_pixel(meta, int(end_yx[0]), int(end_yx[1]), "transect end")
    return (float(s[0]), float(s[1])), (float(e[0]), float(e[1]))


def _layer(product: Product, dataset: str | None) -> Layer:
    specs = [dataset] if dataset else None
    if specs is None and isinstance(product, TimeSeries):
        specs = [product.date_strings[-1]]
    layers = resolve_layers(product, specs)
    if len(layers) != 1:
        names = ", ".join(layer.label for layer in layers[:5])
        raise InputError(f"{product.path}: choose one map for the transect with --dataset (found {names}...)")
    return layers[0]


def transect_profile(path: str | os.PathLike, *, start_yx=None, end_yx=None, start_lalo=None, end_lalo=None,
                     dataset: str | None = None, method: str = "nearest", unit: str | None = None,
                     spacing: float = 1.0) -> Profile:
    """Sample one file along the line; reads only the rows/columns the line crosses."""
    product = Product.open(path)
    meta = product.metadata
    layer = _layer(product, dataset)
    (y0, x0), (y1, x1) = _endpoints(meta, product.path, start_yx, end_yx, start_lalo, end_lalo)
    ys, xs = line_points((y0, x0), (y1, x1), spacing)
    length, width = meta.grid.shape
    r0, r1 = max(0, int(math.floor(min(y0, y1)))), min(length, int(math.ceil(max(y0, y1))) + 2)
    c0, c1 = max(0, int(math.floor(min(x0, x1)))), min(width, int(math.ceil(max(x0, x1))) + 2)
    window = layer.read(rows=slice(r0, r1), cols=slice(c0, c1))
    values = sample(window, ys - r0, xs - c0, method)
    signed = c.is_signed_kind(layer.unit, layer.dataset)
    factor, shown = c.unit_scale(layer.unit, unit) if signed or unit else (1.0, layer.unit)
    distance, dunit = _distance(meta, ys, xs)
    label = product.path.name + ("" if layer.label == product.path.stem else f" {layer.label}")
    return Profile(product.path, label, ys, xs, distance, dunit, values * factor, shown)


def plot_transect(files: Sequence[str | os.PathLike], *, start_yx=None, end_yx=None, start_lalo=None,
                  end_lalo=None, dataset: str | None = None, method: str = "nearest", unit: str | None = None,
                  offset: float = 0.0, save: str | os.PathLike | None = None, display: bool = False):
    """Profiles of ``files`` along one line, with a map of the first file and the line on it.

    Returns (Figure, list of Profile).
    """
    if not files:
        raise InputError("transect: give at least one file")
    profiles = [transect_profile(f, start_yx=start_yx, end_yx=end_yx, start_lalo=start_lalo, end_lalo=end_lalo,
                                 dataset=dataset, method=method, unit=unit) for f in files]
    units = {p.unit for p in profiles}
    if not any(np.isfinite(p.values).any() for p in profiles):
        raise DataError("transect: no valid value along the line (all NaN)")
    interactive = c.want_interactive(display)
    fig = c.new_figure(interactive, figsize=(9.0, 4.2), layout="constrained")
    gs = fig.add_gridspec(1, 2, width_ratios=[1, 2.4])
    ax_map, ax = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    product = Product.open(files[0])
    md = prepare_maps(product, [_layer(product, dataset)], unit=unit)
    im = draw_map(ax_map, md.arrays[0], product.metadata, md)
    cb = fig.colorbar(im, ax=ax_map, orientation="horizontal", shrink=0.9, pad=0.02)
    cb.set_label(md.units[0], fontsize=8)
    cb.ax.tick_params(labelsize=7)
    p0 = profiles[0]
    pts = [c.yx_to_plot(product.metadata, y, x) for y, x in ((p0.ys[0], p0.xs[0]), (p0.ys[-1], p0.xs[-1]))]
    ax_map.plot([pts[0][0], pts[1][0]], [pts[0][1], pts[1][1]], "k-", lw=2)
    ax_map.plot(*pts[0], "o", color="k", mfc="w", ms=6)
    ax_map.plot(*pts[1], "o", color="k", ms=6)
    from matplotlib.ticker import MaxNLocator

    ax_map.tick_params(labelsize=7)
    ax_map.xaxis.set_major_locator(MaxNLocator(3))
    ax_map.yaxis.set_major_locator(MaxNLocator(4))
    ax_map.set_title(product.path.name, fontsize=9)
    for k, p in enumerate(profiles):
        shift = k * offset
        ax.plot(p.distance, p.values + shift, "-", lw=1.2, marker=".", ms=3,
                label=p.label + (f" ({shift:+g})" if shift else ""))
    ax.set_xlabel(f"distance from start (o) along the line ({p0.distance_unit})")
    ax.set_ylabel(" / ".join(sorted(u for u in units if u)) or "value")
    ax.set_xlim(0, float(p0.distance[-1]) if p0.distance[-1] > 0 else 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"transect: {len(p0.values)} samples, {method}", fontsize=10)
    c.finish(fig, save, interactive)
    return fig, profiles


__all__ = ["Profile", "line_points", "sample", "transect_profile", "plot_transect"]
