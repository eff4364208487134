"""What the viewer's routes compute, independent of HTTP: layer info, tiles, point values, histories,
the GNSS overlay and the map figure.  :mod:`.app` only parses requests and sends the answers."""

from __future__ import annotations

import datetime as _dt
import io
import logging
import math
import os

import numpy as np

from sbts.core.errors import InputError
from sbts.core.model.dates import parse_date
from sbts.core.serve.catalog import Catalog, Layer, build_catalog
from sbts.core.serve.history import history_csv, pixel_history
from sbts.core.serve.rasters import PREFETCH_DATES, RasterStore
from sbts.core.serve.tiles import TILE, colour_table, colourise, empty_png, encode_png, lnglat_bounds, tile_indices
from sbts.core.viz import common as c

logger = logging.getLogger(__name__)


class ViewerState:
    """The catalogue of a work directory and everything cached while the viewer runs."""

    def __init__(self, work_dir: str | os.PathLike, *, basemap: str | None = None,
                 basemap_attribution: str | None = None, gnss_dir: str | os.PathLike | None = None,
                 ref_gnss: str | None = None, gnss_site_list: str | os.PathLike | None = None,
                 store: RasterStore | None = None) -> None:
        self.catalog: Catalog = build_catalog(work_dir)
        self.store = store or RasterStore()
        self.models: dict = {}
        self._vlims: dict[tuple, tuple[float, float]] = {}
        if basemap is not None and not all(k in basemap for k in ("{z}", "{x}", "{y}")):
            raise InputError(f"--basemap {basemap}: an XYZ tile URL needs {{z}}, {{x}} and {{y}} "
                             "(e.g. https://tile.example.org/{z}/{x}/{y}.png)")
        self.basemap = basemap
        self.basemap_attribution = basemap_attribution or ""
        self.overlay = None
        self.overlay_layer: Layer | None = None
        if gnss_dir is not None:
            self._load_gnss(gnss_dir, ref_gnss, gnss_site_list)
        elif ref_gnss is not None:
            raise InputError("--ref-gnss needs --gnss DIR (the folder of the .tenv3 files)")

    # ------------------------------------------------------------------ catalogue
    def info(self) -> dict:
        out = self.catalog.as_json()
        for g in out["grids"]:
            g["bounds"] = lnglat_bounds(self.catalog.grids[g["id"]])
        out["basemap"] = self.basemap
        out["basemap_attribution"] = self.basemap_attribution
        out["gnss"] = self.overlay is not None
        out["tile_size"] = TILE
        return out

    def layer_info(self, layer_id: str) -> dict:
        """A layer's default colours: limits from its overview (time series: the date farthest from the
        reference date, shared by every date so the slider compares like with like)."""
        layer = self.catalog.layer(layer_id)
        out = layer.as_json()
        out["vlim"] = list(self.default_vlim(layer))
        return out

    def default_vlim(self, layer: Layer) -> tuple[float, float]:
        key = (layer.id, self.store._stamp(layer.path))
        if key in self._vlims:
            return self._vlims[key]
        if layer.kind == "mask" or "coherence" in layer.name.lower():
            lim = (0.0, 1.0)
        else:
            index = None
            if layer.is_series:
                index = layer.empty_probe[1] if layer.empty_probe else len(layer.dates) - 1
            ov = self.store.overview(layer.path, layer.dataset, index).data.astype(np.float64)
            if layer.empty_probe is not None:
                probe = self.store.overview(layer.path, layer.empty_probe[0], layer.empty_probe[1]).data
                ov = np.where(probe == 0, np.nan, ov)
            lim = c.robust_vlim([ov * layer.factor], symmetric=layer.signed, from_zero=layer.kind == "magnitude")
        self._vlims[key] = lim
        return lim

    # ------------------------------------------------------------------ tiles
    def _index(self, layer: Layer, index: int | None) -> int | None:
        if not layer.is_series:
            return None
        if index is None:
            return len(layer.dates) - 1
        if not 0 <= index < len(layer.dates):
            raise InputError(f"{layer.id}: date index {index} outside 0..{len(layer.dates) - 1}")
        return index

    def _check_pixel(self, layer: Layer, yx: tuple[int, int] | None, what: str) -> tuple[int, int] | None:
        if yx is None:
            return None
        g = self.catalog.grids[layer.grid]
        if not (0 <= yx[0] < g.length and 0 <= yx[1] < g.width):
            raise InputError(f"{what} y={yx[0]}, x={yx[1]} is outside the {g.length} × {g.width} grid")
        return yx

    def tile(self, layer_id: str, z: int, tx: int, ty: int, *, index: int | None = None,
             vmin: float | None = None, vmax: float | None = None, cmap: str | None = None,
             mask: str | None = None, ref: tuple[int, int] | None = None) -> bytes:
        layer = self.catalog.layer(layer_id)
        index = self._index(layer, index)
        grid = self.catalog.grids[layer.grid]
        cmap = cmap or layer.cmap
        colour_table(cmap)  # an unknown name is refused even for an empty tile
        if (vmin is None) != (vmax is None) or (vmin is not None and not vmax > vmin):
            raise InputError(f"colour limits vmin={vmin}, vmax={vmax}: give both, the maximum larger than the minimum")
        ref = self._check_pixel(layer, ref, "reference pixel")
        mask_layer = self.catalog.mask(mask) if mask else None
        if mask_layer is not None and mask_layer.grid != layer.grid:
            raise InputError(f"mask {mask} is on another grid than {layer_id}")
        rows, cols = tile_indices(grid, z, tx, ty)
        if (rows < 0).all() or (cols < 0).all():
            return empty_png()
        if layer.is_series:
            near = [index + d for k in range(1, PREFETCH_DATES + 1) for d in (k, -k)]
            self.store.prefetch(layer.path, layer.dataset, [k for k in near if 0 <= k < len(layer.dates)])
        data = self.store.sample(layer.path, layer.dataset, index, rows, cols).astype(np.float64)
        data = self._hide_empty(layer, data, rows, cols)
        if ref is not None and layer.signed:
            data = data - self.store.value(layer.path, layer.dataset, index, *ref)
        if mask_layer is not None:
            keep = self.store.sample(mask_layer.path, mask_layer.dataset, None, rows, cols)
            data = np.where(np.nan_to_num(keep) != 0, data, np.nan)
        lo, hi = self.default_vlim(layer) if vmin is None else (vmin, vmax)
        rgba = colourise(data * layer.factor, lo, hi, cmap)
        return encode_png(rgba)

    def _hide_empty(self, layer: Layer, data: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """MintPy writes 0, not NaN, where a pixel has no data: those are left transparent (not the
        colour of zero), judged on the layer's probe (a time series' date farthest from the reference
        date; a velocity file's velocity), the reference pixel excepted."""
        if layer.empty_probe is None:
            return data
        name, index = layer.empty_probe
        probe = self.store.sample(layer.path, name, index, rows, cols)
        empty = probe == 0
        if layer.reference is not None:
            empty &= ~((rows[:, None] == layer.reference[0]) & (cols[None, :] == layer.reference[1]))
        return np.where(empty, np.nan, data)

    # ------------------------------------------------------------------ pixels
    def point(self, grid_id: str, y: int, x: int, ref: tuple[int, int] | None = None) -> dict:
        """Every map of a grid at one pixel (display units; signed maps minus ``ref`` when given)."""
        if grid_id not in self.catalog.grids:
            raise InputError(f"no grid {grid_id!r}")
        g = self.catalog.grids[grid_id]
        if not (0 <= y < g.length and 0 <= x < g.width):
            raise InputError(f"pixel y={y}, x={x} is outside the {g.length} × {g.width} grid")
        out = {"y": y, "x": x, "values": []}
        if g.geo is not None:
            out["lat"], out["lon"] = g.geo.yx_to_lalo(y, x)
        for layer in self.catalog.layers.values():
            if layer.grid != grid_id or layer.is_series:
                continue
            v = self.store.value(layer.path, layer.dataset, None, y, x)
            if ref is not None and layer.signed:
                v -= self.store.value(layer.path, layer.dataset, None, *ref)
            out["values"].append({"layer": layer.id, "name": layer.name, "file": layer.file,
                                  "value": v * layer.factor if np.isfinite(v) else None, "unit": layer.shown_unit})
        return out

    def history(self, series_id: str, y: int, x: int, ref: tuple[int, int] | None = None) -> dict:
        return pixel_history(self.catalog, self.store, series_id, y, x, ref, self.models)

    def history_csv(self, series_id: str, y: int, x: int, ref: tuple[int, int] | None = None,
                    site: str | None = None) -> str:
        hist = self.history(series_id, y, x, ref)
        gnss = self.gnss_series(site, series_id) if site else None
        return history_csv(hist, gnss)

    # ------------------------------------------------------------------ GNSS
    def _load_gnss(self, gnss_dir, ref_gnss, site_list) -> None:
        from sbts.core.viz.gnss_overlay import gnss_velocity_overlay

        velocity = next((layer for layer in self.catalog.layers.values()
                         if layer.name == "velocity" and not layer.is_series
                         and self.catalog.grids[layer.grid].mode == "mercator"), None)
        if velocity is None:
            raise InputError(f"--gnss: no geocoded velocity map (velocity.h5 or geo/geo_velocity.h5) in "
                             f"{self.catalog.root} to compare with")
        self.overlay = gnss_velocity_overlay(velocity.path, gnss_dir, dataset=velocity.dataset, ref_site=ref_gnss,
                                             site_list=site_list)
        self.overlay_layer = velocity
        logger.info("%s", self.overlay.summary())

    def gnss(self) -> dict:
        if self.overlay is None:
            raise InputError("no GNSS overlay: start the viewer with --gnss DIR")
        layer = self.overlay_layer
        out = self.overlay.as_json(layer.factor, layer.shown_unit)
        out["layer"] = layer.id
        out["grid"] = layer.grid
        return out

    def gnss_series(self, site: str, series_id: str | None = None) -> dict:
        """A station's daily LOS displacement for the history chart, in the series' display unit, over
        the series' dates, zero at its reference date, minus the reference station's."""
        from sbts.core.viz.gnss_overlay import los_series

        if self.overlay is None:
            raise InputError("no GNSS overlay: start the viewer with --gnss DIR")
        factor, unit, window, ref_date = 100.0, "cm", None, None
        if series_id:
            layer = self.catalog.series(series_id)
            factor, unit = layer.factor, layer.shown_unit
            first, last = parse_date(layer.dates[0]), parse_date(layer.dates[-1])
            window = (first - _dt.timedelta(days=30), last + _dt.timedelta(days=30))
            ref_date = parse_date(layer.ref_date) if layer.ref_date else first
        dates, los = los_series(self.overlay, site, ref_date, window)
        st = self.overlay.station(site)
        return {"site": st.site, "y": st.y, "x": st.x, "unit": unit, "ref_site": self.overlay.ref_site,
                "dates": [str(d).replace("-", "") for d in dates], "values": [float(v) * factor for v in los]}

    # ------------------------------------------------------------------ colours and figures
    @staticmethod
    def colours(name: str) -> list[str]:
        return ["#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgba[:3])) for rgba in colour_table(name)]

    def figure_png(self, layer_id: str, *, index: int | None = None, vmin: float | None = None,
                   vmax: float | None = None, cmap: str | None = None, mask: str | None = None,
                   ref: tuple[int, int] | None = None, a: tuple[int, int] | None = None,
                   b: tuple[int, int] | None = None) -> bytes:
        """The shown map as a figure with its colour bar (``sbts view``'s drawing), markers A and B."""
        from sbts.core.io.products import Product
        from sbts.core.viz.gnss_overlay import draw_overlay
        from sbts.core.viz.maps import prepare_maps, render, resolve_layers

        layer = self.catalog.layer(layer_id)
        index = self._index(layer, index)
        ref = self._check_pixel(layer, ref, "reference pixel")
        product = Product.open(layer.path)
        spec = layer.dates[index] if layer.is_series else layer.dataset
        layers = resolve_layers(product, [spec])
        mask_path = self.catalog.mask(mask).path if mask else None
        vlim = (vmin, vmax) if vmin is not None and vmax is not None else self.default_vlim(layer)
        unit = layer.shown_unit if layer.kind in ("signed", "magnitude", "dem_error") else None
        md = prepare_maps(product, layers, mask=mask_path, vlim=vlim, cmap=cmap or layer.cmap, unit=unit,
                          ref_yx=ref if layer.signed else None)
        fig = render(product, md)
        ax = fig.axes[0]
        meta = product.metadata
        for yx, colour, name in ((a, "#d62728", "A"), (b, "#1f77b4", "B")):
            if yx is not None:
                px, py = c.yx_to_plot(meta, *self._check_pixel(layer, yx, f"pixel {name}"))
                ax.plot(px, py, "o", ms=8, mfc=colour, mec="k", zorder=15)
                ax.annotate(name, (px, py), xytext=(5, 5), textcoords="offset points", fontsize=9, zorder=15)
        if self.overlay is not None and layer.id == self.overlay_layer.id:
            draw_overlay(ax, self.overlay, md.cmaps[0], md.vlims[0], layer.factor, layer.shown_unit)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        return buf.getvalue()

    def close(self) -> None:
        self.store.close()


def parse_yx(text: str | None, what: str) -> tuple[int, int] | None:
    """``"y,x"`` → (y, x); None for an empty value."""
    if text is None or text == "":
        return None
    try:
        y, x = (int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{what}={text!r}: give a pixel as y,x (two integers)") from None
    return y, x


def finite_or_none(value: str | None, what: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        v = float(value)
    except ValueError:
        raise InputError(f"{what}={value!r} is not a number") from None
    if not math.isfinite(v):
        raise InputError(f"{what}={value!r} is not a finite number")
    return v


__all__ = ["ViewerState", "parse_yx", "finite_or_none"]
