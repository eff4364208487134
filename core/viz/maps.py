"""``sbts view``: maps of any dataset of an sbts/MintPy file.

What can be shown (``DATASET`` arguments, several allowed):

* a 2-D dataset by name (``velocity``, ``height``, ``temporalCoherence``, ``mask`` ...);
* time series: a date ``YYYYMMDD``, a glob over dates (``2020*``), the 3-D dataset name (all
  dates), or an interferogram ``date1_date2`` reconstructed as ``ts[date2] − ts[date1]``;
* interferogram stack: a pair ``date1_date2`` (unwrapPhase), ``coherence-date1_date2`` (any stack
  dataset), a glob over pairs, or a dataset name (all pairs).

Several layers become a grid of subplots sharing one colour scale.  Rasters larger than the
display are read as a strided hyperslab (only the shown pixels are read), so a 20k×20k map costs
what a 2k×2k one does.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.errors import InputError
from sbts.core.io.h5 import open_h5
from sbts.core.io.products import UNITS, HdfEos5TimeSeries, IfgramStack, Product, TimeSeries
from sbts.core.model.dates import format_date, parse_date
from sbts.core.viz import common as c

logger = logging.getLogger(__name__)

MAX_SUBPLOTS = 48
_DATE8 = re.compile(r"^\d{8}$")
_DATE12 = re.compile(r"^\d{8}_\d{8}$")
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Layer:
    """One 2-D map to draw: a dataset, or a layer of a 3-D one, or the difference of two layers."""

    path: Path
    dataset: str
    label: str
    unit: str
    index: int | None = None
    minus_index: int | None = None  # reconstructed interferogram: layer[index] - layer[minus_index]
    dropped: bool = False

    def read(self, stride: int = 1, rows: slice | None = None, cols: slice | None = None) -> np.ndarray:
        data = c.read_strided(self.path, self.dataset, self.index, stride, rows, cols)
        if data.dtype.kind == "b":
            data = data.astype(np.float32)
        data = data.astype(np.float64, copy=False)
        if self.minus_index is not None:
            data = data - c.read_strided(self.path, self.dataset, self.minus_index, stride, rows, cols)
        return data

    def value_at(self, y: int, x: int) -> float:
        series = c.read_pixel(self.path, self.dataset, y, x)
        if self.index is None:
            return float(series)
        value = float(series[self.index])
        return value - float(series[self.minus_index]) if self.minus_index is not None else value


# ---------------------------------------------------------------------------- dataset selection
def short_name(dataset: str) -> str:
    """The dataset's own name without its group path (HDF-EOS5: ``.../quality/temporalCoherence``)."""
    return dataset.rsplit("/", 1)[-1]


def dataset_unit(product: Product, name: str) -> str:
    """Unit of a dataset: its own UNIT (HDF-EOS5: Units) attribute, else the known MintPy unit, else the file's."""
    name = product.resolve(name)
    with open_h5(product.path) as f:
        u = f[name].attrs.get("UNIT") if name in f else None
    if u is not None:
        return u.decode() if isinstance(u, bytes) else str(u)
    if isinstance(product, HdfEos5TimeSeries) and product.has(name):
        u = product.dataset_unit(name)
        if u is not None:
            return u
    name = short_name(name)
    base = name[:-3] if name.endswith("Std") else name
    if isinstance(product, TimeSeries) and name == product.dataset_name:
        return product.metadata.unit or "m"
    if base in UNITS:
        return UNITS[base]
    if base.startswith("velocity"):
        return "m/year"
    if base == "acceleration":
        return "m/year^2"
    if base.endswith("Phase") and base != "unwrapPhase":
        return "radian"
    if base.endswith("Amplitude") or base in ("intercept", "dem_error", "demErr") or base.startswith(("step", "exp", "log")):
        return "m"
    return product.metadata.unit or ""


def _two_d(product: Product) -> list[str]:
    return [n for n in product.datasets if len(product.dataset_shape(n)) == 2]


def _three_d(product: Product) -> list[str]:
    return [n for n in product.datasets if len(product.dataset_shape(n)) == 3]


def default_specs(product: Product) -> list[str]:
    """What ``sbts view FILE`` shows: all dates, all pairs' unwrapPhase, or every 2-D dataset."""
    if isinstance(product, TimeSeries):
        return [product.dataset_name]
    if isinstance(product, IfgramStack):
        return ["unwrapPhase" if product.has("unwrapPhase") else _three_d(product)[0]]
    names = _two_d(product)
    if not names:
        raise InputError(f"{product.path}: no 2-D dataset to show")
    return names


def resolve_layers(product: Product, specs: Sequence[str] | None = None) -> list[Layer]:
    """The maps that ``specs`` select in ``product`` (see the module docstring for the forms)."""
    specs = list(specs) if specs else default_specs(product)
    layers: list[Layer] = []
    for spec in specs:
        layers += _resolve_one(product, spec)
    return layers


def _unknown(product: Product, spec: str) -> InputError:
    extra = ""
    if isinstance(product, TimeSeries) and product.date_strings:
        extra = f"; dates {product.date_strings[0]}..{product.date_strings[-1]}"
    elif isinstance(product, IfgramStack):
        extra = f"; pairs such as {product.pairs.date12[0]}" if len(product.pairs) else ""
    names = [short_name(n) for n in _two_d(product) + _three_d(product)]
    return InputError(f"{product.path}: no dataset, date or pair matches {spec!r} "
                      f"(datasets: {', '.join(names)}{extra})")


def _resolve_one(product: Product, spec: str) -> list[Layer]:
    path = product.path
    names = product.datasets
    spec = product.resolve(spec)
    dataset, sel = spec, None
    if spec not in names and "-" in spec and spec.split("-", 1)[0] in names:
        dataset, sel = spec.split("-", 1)
    if dataset in names and sel is None:
        shape = product.dataset_shape(dataset)
        unit = dataset_unit(product, dataset)
        if len(shape) == 2:
            return [Layer(path, dataset, short_name(dataset), unit)]
        if len(shape) == 3:
            return _all_layers(product, dataset, unit)
        raise InputError(f"{path}: dataset {dataset!r} is not a map (shape {shape})")
    if isinstance(product, TimeSeries):
        ds = dataset if dataset in names else product.dataset_name
        sel = spec if sel is None else sel
        unit = dataset_unit(product, ds)
        if _DATE8.match(sel):
            k = product.date_index(sel)
            return [Layer(path, ds, product.date_strings[k], unit, index=k)]
        if _DATE12.match(sel):
            d1, d2 = sel.split("_")
            i1, i2 = product.date_index(d1), product.date_index(d2)
            return [Layer(path, ds, f"{product.date_strings[i1]}_{product.date_strings[i2]}", unit,
                          index=i2, minus_index=i1)]
        if _GLOB.search(sel):
            hits = [k for k, d in enumerate(product.date_strings) if c.match_names(sel, [d])]
            if hits:
                return [Layer(path, ds, product.date_strings[k], unit, index=k) for k in hits]
    elif isinstance(product, IfgramStack):
        ds = dataset if dataset in names else ("unwrapPhase" if product.has("unwrapPhase") else _three_d(product)[0])
        sel = spec if sel is None else sel
        unit = dataset_unit(product, ds)
        date12 = product.pairs.date12
        if _DATE12.match(sel):
            name = _normal_date12(sel)
            if name not in date12:
                raise InputError(f"{path}: interferogram {sel} is not in the stack ({len(date12)} pairs, "
                                 f"{date12[0]}..{date12[-1]})")
            k = date12.index(name)
            return [Layer(path, ds, f"{ds} {name}", unit, index=k, dropped=not product.pairs.keep[k])]
        if _GLOB.search(sel):
            hits = [k for k, d in enumerate(date12) if c.match_names(sel, [d])]
            if hits:
                return [Layer(path, ds, f"{ds} {date12[k]}", unit, index=k, dropped=not product.pairs.keep[k])
                        for k in hits]
    if _GLOB.search(spec):
        hits = c.match_names(spec, names)
        if hits:
            return [layer for name in hits for layer in _resolve_one(product, name)]
    if _DATE8.match(spec) and isinstance(product, TimeSeries):
        product.date_index(spec)  # raises the "date not in the time series" message
    raise _unknown(product, spec)


def _normal_date12(text: str) -> str:
    d1, d2 = text.split("_")
    return f"{format_date(parse_date(d1))}_{format_date(parse_date(d2))}"


def _all_layers(product: Product, dataset: str, unit: str) -> list[Layer]:
    n = product.dataset_shape(dataset)[0]
    if isinstance(product, TimeSeries):
        return [Layer(product.path, dataset, product.date_strings[k], unit, index=k) for k in range(n)]
    if isinstance(product, IfgramStack):
        p = product.pairs
        names = p.date12
        return [Layer(product.path, dataset, names[k], unit, index=k, dropped=not p.keep[k]) for k in range(n)]
    return [Layer(product.path, dataset, f"{dataset}[{k}]", unit, index=k) for k in range(n)]


def _subsample(layers: list[Layer], limit: int) -> list[Layer]:
    if len(layers) <= limit:
        return layers
    keep = np.unique(np.round(np.linspace(0, len(layers) - 1, limit)).astype(int))
    logger.info("%d maps selected: showing %d evenly spaced ones (select dates or pairs to see others)",
                len(layers), keep.size)
    return [layers[k] for k in keep]


# ---------------------------------------------------------------------------- preparing the data
@dataclass
class MapData:
    """Display-ready maps (decimated, re-referenced, in display units, masked) and how to draw them.

    Layers of one dataset share a colour scale (dates or pairs compare at a glance); different
    datasets (a geometry file, velocity.h5) get one scale each.
    """

    arrays: list[np.ndarray]
    layers: list[Layer]
    units: list[str]
    vlims: list[tuple[float, float]]
    cmaps: list[str]
    stride: int
    reference: tuple[int, int] | None

    @property
    def shared(self) -> bool:
        return len({(layer.dataset, u) for layer, u in zip(self.layers, self.units)}) <= 1

    @property
    def unit(self) -> str:
        return self.units[0] if self.units else ""

    @property
    def vlim(self) -> tuple[float, float]:
        return self.vlims[0]


def no_data_mask(product: Product, stride: int = 1) -> np.ndarray | None:
    """True where a time series or velocity file has no data, on the display grid (None: nothing to hide).

    MintPy (and sbts) write 0, not NaN, where the inversion left a pixel empty; drawn as is, those pixels
    take the colour of zero displacement.  A pixel is empty when its value is exactly 0 on the date
    farthest from the reference date (time series) or in ``velocity`` (velocity files), other than the
    reference pixel, which is 0 by definition.
    """
    meta = product.metadata
    if isinstance(product, TimeSeries):
        n = len(product.dates)
        ref_date = meta.reference.date
        ref_index = product.dates.index(ref_date) if ref_date in product.dates else None
        probe = n - 1 if ref_index is None or ref_index < n / 2 else 0
        if probe == ref_index:
            return None  # a single date, the reference: zero everywhere
        data = c.read_strided(product.path, product.dataset_name, probe, stride)
    elif meta.file_type == "velocity" and product.has("velocity"):
        data = c.read_strided(product.path, "velocity", None, stride)
    else:
        return None
    empty = data == 0
    ref = meta.reference
    if ref.has_point and ref.y % stride == 0 and ref.x % stride == 0 and \
            0 <= ref.y // stride < empty.shape[0] and 0 <= ref.x // stride < empty.shape[1]:
        empty[ref.y // stride, ref.x // stride] = False
    return empty if empty.any() else None


def _zero_is_no_data(product: Product, layer: Layer) -> bool:
    """Interferogram phase: 0 means 'not unwrapped' (MintPy's convention), never a measured value."""
    return isinstance(product, IfgramStack) and short_name(layer.dataset) in ("unwrapPhase", "wrapPhase")


def prepare_maps(product: Product, layers: Sequence[Layer], *, mask: str | os.PathLike | None = None,
                 vlim: tuple[float, float] | None = None, cmap: str | None = None, unit: str | None = None,
                 ref_yx: tuple[int, int] | None = None, wrap: bool = False,
                 wrap_range: tuple[float, float] | None = None,
                 max_pixels: int | None = None) -> MapData:
    """Read and transform the layers for display (shared by ``view``, ``tsview`` and the overview).

    Colours: displacement-like data on a diverging map centred on 0 (symmetric limits); magnitudes
    (standard deviations, amplitudes, residues) on a sequential map from 0; the DEM error in metres
    (as MintPy); no data (NaN, masked, or the 0 that MintPy writes for empty pixels) is left
    transparent over the grey background, never in the colour of zero.
    """
    meta = product.metadata
    stride = c.display_stride(meta.grid.shape, max_pixels)
    if stride > 1:
        logger.info("%s: %d×%d pixels shown every %d pixels", product.path.name, *meta.grid.shape, stride)
    ref = ref_yx if ref_yx is not None else (
        (meta.reference.y, meta.reference.x) if meta.reference.has_point else None)
    if ref is not None and not (0 <= ref[0] < meta.grid.length and 0 <= ref[1] < meta.grid.width):
        ref = None  # a stale REF_Y/REF_X outside a cropped file: nothing to draw
    valid = None if mask is None else c.read_mask(mask, meta.grid.shape, stride)
    empty = no_data_mask(product, stride)
    stored_ref = (meta.reference.y, meta.reference.x) if meta.reference.has_point else None
    arrays, units, kinds, drawn = [], [], [], []
    for layer in layers:
        kind = c.display_kind(layer.unit, layer.dataset, product.path)
        length_like = kind in ("signed", "magnitude", "dem_error")
        target = unit if unit else ("m" if kind == "dem_error" else None)
        factor, shown_unit = c.unit_scale(layer.unit, target) if length_like or unit else (1.0, layer.unit)
        data = layer.read(stride)
        boolean = kind == "other" and c.is_bool_like(data)
        if _zero_is_no_data(product, layer):
            zero = data == 0
            if stored_ref is not None and stored_ref[0] % stride == 0 and stored_ref[1] % stride == 0:
                zero[stored_ref[0] // stride, stored_ref[1] // stride] = False
            data = np.where(zero, np.nan, data)
        if empty is not None:
            data = np.where(empty, np.nan, data)
        if ref_yx is not None and kind in ("signed", "dem_error"):
            data = data - layer.value_at(*ref_yx)
        data = data * factor
        if wrap:
            data, shown_unit = _rewrap(data, layer.unit, shown_unit, factor, meta, wrap_range)
        if valid is not None:
            data = np.where(valid, data, np.nan)
        arrays.append(data)
        units.append(shown_unit)
        kinds.append("wrapped" if wrap else ("mask" if boolean else kind))
        drawn.append("mask" if boolean else short_name(layer.dataset))
    vlims, cmaps = [], []
    groups: dict[tuple[str, str], list[int]] = {}
    for k, layer in enumerate(layers):
        groups.setdefault((layer.dataset, units[k]), []).append(k)
    limits: dict[int, tuple[float, float]] = {}
    for members in groups.values():
        k0 = members[0]
        fixed = vlim
        if fixed is None and (kinds[k0] == "mask" or "coherence" in drawn[k0].lower()) and not wrap:
            fixed = (0.0, 1.0)  # coherence and masks are read on their natural 0–1 scale
        if fixed is None and wrap:
            fixed = wrap_range if wrap_range is not None else (-math.pi, math.pi)
        lim = c.robust_vlim([arrays[k] for k in members], symmetric=kinds[k0] in ("signed", "dem_error"),
                            fixed=fixed, from_zero=kinds[k0] == "magnitude")
        for k in members:
            limits[k] = lim
    for k, layer in enumerate(layers):
        vlims.append(limits[k])
        kind = None if kinds[k] in ("mask", "wrapped") else kinds[k]
        cmaps.append(cmap or c.default_cmap(layer.unit, drawn[k], wrapped=wrap, kind=kind))
    return MapData(arrays, list(layers), units, vlims, cmaps, stride, ref)


def _rewrap(data: np.ndarray, file_unit: str, shown_unit: str, factor: float, meta,
            wrap_range: tuple[float, float] | None) -> tuple[np.ndarray, str]:
    """Rewrapped values: into ``wrap_range`` (display units), else as phase in (−π, π]."""
    if wrap_range is not None:
        return c.wrap(data, *wrap_range), shown_unit
    base, _, per = file_unit.partition("/")
    if base == "radian":
        return c.wrap(data / factor), file_unit
    if base in ("m", "cm", "mm"):
        wavelength = meta.radar.require_wavelength()
        metres = data / factor * {"m": 1.0, "cm": 0.01, "mm": 0.001}[base]
        return c.wrap(-4 * math.pi / wavelength * metres), "radian" + (f"/{per}" if per else "")
    raise InputError(f"--wrap: data in {file_unit or 'no unit'} is not a phase or a displacement; "
                     "give --wrap-range MIN MAX")


# ---------------------------------------------------------------------------- drawing
def draw_map(ax, data: np.ndarray, meta, md: MapData, dem_shade: np.ndarray | None = None, ticks: bool = True,
             ref_marker: bool = True, k: int = 0):
    """Map ``k`` of ``md`` on ``ax`` in the file's coordinates; returns the image for the colour bar."""
    ext = c.extent(meta)
    ax.set_facecolor("0.82")  # no-data (NaN, masked) grey, distinct from the white of zero on RdBu
    if dem_shade is not None:
        ax.imshow(dem_shade, cmap="gray", extent=ext, interpolation="nearest", vmin=0, vmax=1)
    im = ax.imshow(np.ma.masked_invalid(data), cmap=md.cmaps[k], vmin=md.vlims[k][0], vmax=md.vlims[k][1], extent=ext,
                   interpolation="nearest", alpha=0.75 if dem_shade is not None else None)
    if ref_marker and md.reference is not None:
        px, py = c.yx_to_plot(meta, *md.reference)
        ax.plot(px, py, "ks", ms=6 if ticks else 4, mfc="none", mew=1.5, zorder=5)
        ax.plot(px, py, "ws", ms=3 if ticks else 2, mew=0, zorder=5)
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    c.label_axes(ax, meta, ticks=ticks)
    return im


def colorbar_label(md: MapData, k: int = 0) -> str:
    layer, unit = md.layers[k], md.units[k]
    name = short_name(layer.dataset)
    return f"{name} ({unit})" if unit and unit != "1" else name


def view(path: str | os.PathLike, datasets: Sequence[str] | None = None, *, mask: str | os.PathLike | None = None,
         vlim: tuple[float, float] | None = None, cmap: str | None = None, unit: str | None = None,
         ref_yx: tuple[int, int] | None = None, ref_lalo: tuple[float, float] | None = None,
         dem: str | os.PathLike | None = None, wrap: bool = False, wrap_range: tuple[float, float] | None = None,
         title: str | None = None, save: str | os.PathLike | None = None, display: bool = False,
         max_pixels: int | None = None, max_subplots: int = MAX_SUBPLOTS,
         gnss: str | os.PathLike | None = None, ref_gnss: str | None = None, gnss_label: bool = False,
         gnss_site_list: str | os.PathLike | None = None):
    """Draw the selected maps of ``path``; write ``save`` and/or show them; return the Figure.

    ``mask`` may be ``"auto"`` for the ``maskTempCoh.h5`` beside the file.  ``gnss``: a folder of UNR
    ``.tenv3`` files whose LOS velocities are drawn on the map (:mod:`sbts.core.viz.gnss_overlay`);
    with ``ref_gnss`` the map is shown relative to that station.
    """
    product = Product.open(path)
    meta = product.metadata
    if gnss is not None and not datasets:
        datasets = ["velocity"]
    layers = _subsample(resolve_layers(product, datasets), max_subplots)
    if mask == "auto":
        mask = c.auto_mask(product.path)
        if mask is None:
            raise InputError(f"--mask auto: no maskTempCoh.h5 beside {product.path}")
    ref = c.pixel_from_options(meta, ref_yx, ref_lalo, product.path, "reference point")
    overlay = None
    if gnss is not None:
        from sbts.core.viz.gnss_overlay import overlay_for_view

        overlay = overlay_for_view(product, layers, gnss, ref_gnss, gnss_site_list, mask)
        if overlay.ref_yx is not None:
            if ref is not None:
                raise InputError("--ref-gnss sets the reference point: leave out --ref-yx/--ref-lalo")
            ref = overlay.ref_yx
    elif ref_gnss is not None:
        raise InputError("--ref-gnss needs --gnss DIR (the folder of the .tenv3 files)")
    md = prepare_maps(product, layers, mask=mask, vlim=vlim, cmap=cmap, unit=unit, ref_yx=ref, wrap=wrap,
                      wrap_range=wrap_range, max_pixels=max_pixels)
    shade = None
    if dem is not None:
        shade = c.hillshade(read_dem(dem, meta.grid.shape, md.stride), meta, md.stride)
    fig = render(product, md, shade, title=title, display=display)
    if overlay is not None:
        from sbts.core.viz.gnss_overlay import draw_overlay

        factor = c.unit_scale(md.layers[0].unit, md.units[0])[0]
        draw_overlay(fig.axes[0], overlay, md.cmaps[0], md.vlims[0], factor, md.units[0], label=gnss_label)
    c.finish(fig, save, c.want_interactive(display))
    return fig


def read_dem(path: str | os.PathLike, shape: tuple[int, int], stride: int) -> np.ndarray:
    """``height`` of a geometry file (or the first 2-D dataset of any file), decimated like the data."""
    with open_h5(path) as f:
        names = [n for n, o in f.items() if getattr(o, "ndim", 0) == 2]
        he5_height = "HDFEOS/GRIDS/timeseries/geometry/height"
        name = he5_height if he5_height in f else "height" if "height" in names else (names[0] if names else None)
        if name is None:
            raise InputError(f"--dem {path}: no 2-D dataset (height) in the file")
        if tuple(f[name].shape) != tuple(shape):
            raise InputError(f"--dem {path}: {name!r} is {f[name].shape} but the data is {tuple(shape)}")
    return c.read_strided(path, name, stride=stride).astype(np.float64)


def render(product: Product, md: MapData, shade: np.ndarray | None = None, title: str | None = None,
           display: bool = False):
    """Lay the prepared maps out: one large map, or a grid of subplots sharing one colour bar."""
    meta = product.metadata
    n = len(md.arrays)
    interactive = c.want_interactive(display)
    length, width = meta.grid.shape
    aspect = length / max(width, 1)
    if meta.grid.geo is not None and c.is_degrees(meta):
        g = meta.grid.geo
        aspect /= max(math.cos(math.radians(g.y_first + 0.5 * length * g.y_step)), 0.05)
    if n == 1:
        fig = c.new_figure(interactive, figsize=(7.5, max(3.5, min(9.0, 6.0 * aspect + 1.0))), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        layer = md.layers[0]
        im = draw_map(ax, md.arrays[0], meta, md, shade)
        cb = fig.colorbar(im, ax=ax, shrink=0.9, extend=_extend(md, [0]))
        cb.set_label(colorbar_label(md, 0))
        ax.set_title(title or _single_title(product, layer))
        return fig
    ncols = min(n, max(1, int(math.ceil(math.sqrt(n / max(aspect, 0.2) * 0.9)))))
    nrows = int(math.ceil(n / ncols))
    panel = min(2.6, 15.0 / ncols)
    fig = c.new_figure(interactive, figsize=(panel * ncols + 1.2, panel * aspect * nrows + 1.0),
                       layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    im = None
    for k, ax in enumerate(axes.ravel()):
        if k >= n:
            ax.set_axis_off()
            continue
        layer = md.layers[k]
        im = draw_map(ax, md.arrays[k], meta, md, shade, ticks=False, k=k)
        if md.shared:
            ax.set_title(layer.label.split(" ")[-1] + (" (dropped)" if layer.dropped else ""),
                         fontsize=8, color="0.5" if layer.dropped else "k", pad=2)
        else:
            ax.set_title(layer.label, fontsize=9, pad=2)
            cb = fig.colorbar(im, ax=ax, shrink=0.8, extend=_extend(md, [k]))
            cb.ax.tick_params(labelsize=7)
            if md.units[k] and md.units[k] != "1":
                cb.set_label(md.units[k], fontsize=8)
    if md.shared:
        cb = fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, extend=_extend(md, range(n)))
        cb.set_label(colorbar_label(md, 0))
    fig.suptitle(title or _multi_title(product, md))
    return fig


def _extend(md: MapData, which) -> str:
    """Colour-bar arrows where values fall outside the colour limits."""
    finite = [(md.arrays[k][np.isfinite(md.arrays[k])], md.vlims[k]) for k in which]
    lo = any(f.size and f.min() < v[0] for f, v in finite)
    hi = any(f.size and f.max() > v[1] for f, v in finite)
    return {(True, True): "both", (True, False): "min", (False, True): "max"}.get((lo, hi), "neither")


def _date_text(value) -> str | None:
    if value is None or str(value).strip() in ("", "None", "none"):
        return None
    try:
        return format_date(parse_date(str(value).strip()))
    except (InputError, ValueError):
        return None


def time_span(product: Product) -> str | None:
    """``first–last`` dates the product covers (time series dates, or START_DATE/END_DATE of a map)."""
    if isinstance(product, TimeSeries) and product.date_strings:
        return f"{product.date_strings[0]}–{product.date_strings[-1]}"
    extra = product.metadata.extra
    start, end = _date_text(extra.get("START_DATE")), _date_text(extra.get("END_DATE"))
    if start is None and end is None and extra.get("DATE12"):
        parts = str(extra["DATE12"]).replace("-", "_").split("_")
        if len(parts) == 2:
            start, end = _date_text(parts[0]), _date_text(parts[1])
    if start and end:
        return f"{start}–{end}"
    return None


def _context(product: Product, span: bool = True) -> str:
    """The time span and reference date of a product, for titles: ``, 20190104–20210105, ref. 20190104``."""
    parts = []
    text = time_span(product) if span else None
    if text:
        parts.append(text)
    ref_date = product.metadata.reference.date
    if ref_date is not None and not isinstance(product, IfgramStack):
        parts.append(f"ref. date {format_date(ref_date)}")
    return (", " + ", ".join(parts)) if parts else ""


def _single_title(product: Product, layer: Layer) -> str:
    name = product.path.name
    if isinstance(product, TimeSeries):
        if layer.minus_index is not None:
            return f"{name}: {layer.label} (reconstructed)"
        return f"{name}: {layer.label}{_context(product)}"
    label = short_name(layer.dataset) if layer.label == layer.dataset else layer.label
    if isinstance(product, IfgramStack):
        return f"{name}: {label}" + (" (dropped)" if layer.dropped else "")
    return f"{name}: {label}{_context(product)}"


def _multi_title(product: Product, md: MapData) -> str:
    layer = md.layers[0]
    if not md.shared:
        return f"{product.path.name}{_context(product)}"
    return f"{product.path.name}: {short_name(layer.dataset)}, {len(md.layers)} maps{_context(product)}"


def default_output_name(path: str | os.PathLike, datasets: Sequence[str] | None) -> Path:
    """``<stem>[_<dataset>].png`` in the current folder (for headless runs without ``--save``)."""
    stem = Path(path).stem
    if datasets:
        tag = re.sub(r"[^A-Za-z0-9_.-]+", "", "_".join(datasets))[:60]
        stem += f"_{tag}" if tag else ""
    return Path(stem + ".png")


__all__ = ["Layer", "MapData", "resolve_layers", "prepare_maps", "draw_map", "render", "view", "read_dem",
           "default_output_name", "dataset_unit", "no_data_mask", "time_span", "short_name"]
