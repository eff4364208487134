"""What a work directory holds, as the viewer lists it: maps, time series, masks, model files.

Files are looked for where the workflow writes them: ``DIR/*.h5`` (and ``*.he5``), ``DIR/geo/*.h5``
(geocoded products) and ``DIR/inputs/geometry*.h5``.  The interferogram stack is left out (its
layers are pairs, not maps of a product).  Each file is opened once through
:meth:`~sbts.core.io.products.Product.open`; one that cannot be read is logged and skipped, so a
half-written file never stops the viewer.

Layers are addressed by ``"<file relative to DIR>:<dataset>"``; the server only ever opens files of
this catalogue (a request naming anything else is refused).  Files on different grids (radar and
``geo/``) are kept apart by a grid id: the page shows one grid at a time.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sbts.core.errors import InputError, SbtsError
from sbts.core.io.products import Product, TimeSeries
from sbts.core.model.metadata import Metadata
from sbts.core.viz import common as c
from sbts.core.viz.maps import dataset_unit, short_name

logger = logging.getLogger(__name__)

MASK_NAMES = ("mask", "waterMask")  # True/non-zero = keep (MintPy); shadowMask (True = shadow) is not one
_SKIP = re.compile(r"^(ifgramStack|.*\.tmp|.*\.part).*", re.IGNORECASE)
# the order files appear in the page: products people open first, then the chain, then the rest
_ORDER = ("velocity", "geo_velocity", "timeseries", "geo_timeseries", "temporalCoherence", "geo_temporalCoherence",
          "avgSpatialCoh", "maskTempCoh", "demErr")


@dataclass(frozen=True)
class GridInfo:
    """One raster grid of the work directory; ``mode`` says how the page places it on screen."""

    id: str
    length: int
    width: int
    geo: object | None  # GeoGrid
    mode: str  # "mercator": lat/lon grid shown on Web-Mercator tiles; "pixel": image rows/columns

    def as_json(self) -> dict:
        out = {"id": self.id, "length": self.length, "width": self.width, "mode": self.mode}
        if self.geo is not None:
            g = self.geo
            out["geo"] = {"x_first": g.x_first, "y_first": g.y_first, "x_step": g.x_step, "y_step": g.y_step,
                          "x_unit": g.x_unit, "epsg": g.epsg}
        return out


@dataclass
class Layer:
    """A map the page can show: a 2-D dataset, or a time series (one map per date)."""

    id: str
    file: str  # relative to the work directory
    path: Path
    dataset: str  # path inside the file
    name: str  # short dataset name
    unit: str  # the file's unit
    shown_unit: str
    factor: float  # file unit → shown unit
    kind: str  # sbts.core.viz.common.display_kind, or "mask"
    cmap: str
    grid: str
    reference: tuple[int, int] | None
    ref_date: str | None = None
    dates: list[str] | None = None  # time series only
    std_dataset: str | None = None  # a time series' per-date standard deviation (3-D), when the file has one
    empty_probe: tuple[str, int | None] | None = None  # (dataset, layer) whose exact zeros mean "no data"
    meta: Metadata | None = field(default=None, repr=False)

    @property
    def is_series(self) -> bool:
        return self.dates is not None

    @property
    def signed(self) -> bool:
        """Values relative to a reference point: re-referencing to another pixel makes sense
        (not for the phase of a periodic term, an angle of its own)."""
        return self.kind in ("signed", "dem_error") and not (self.name.endswith("Phase") and self.unit == "radian"
                                                             and self.name != "unwrapPhase")

    def as_json(self) -> dict:
        out = {"id": self.id, "file": self.file, "dataset": self.dataset, "name": self.name, "unit": self.shown_unit,
               "file_unit": self.unit, "factor": self.factor, "kind": self.kind, "cmap": self.cmap, "grid": self.grid,
               "reference": list(self.reference) if self.reference else None, "ref_date": self.ref_date,
               "series": self.is_series, "label": self.label, "signed": self.signed}
        if self.dates is not None:
            out["dates"] = self.dates
            out["has_std"] = self.std_dataset is not None
        return out

    @property
    def label(self) -> str:
        return f"{self.file}: {self.name}" if not self.is_series else self.file


@dataclass
class Catalog:
    """The maps, time series and masks of a work directory, by grid."""

    root: Path
    grids: dict[str, GridInfo]
    layers: dict[str, Layer]
    masks: dict[str, Layer]
    models: dict[str, Path]  # grid id → velocity file whose time functions model the histories
    geometry: dict[str, Path]  # grid id → geometry file (incidence/azimuth angles)

    def layer(self, layer_id: str) -> Layer:
        try:
            return self.layers[layer_id]
        except KeyError:
            raise InputError(f"no layer {layer_id!r} in {self.root}") from None

    def mask(self, mask_id: str) -> Layer:
        try:
            return self.masks[mask_id]
        except KeyError:
            raise InputError(f"no mask {mask_id!r} in {self.root}") from None

    def series(self, layer_id: str) -> Layer:
        layer = self.layer(layer_id)
        if not layer.is_series:
            raise InputError(f"{layer_id} is not a time series")
        return layer

    def default_series(self, grid: str) -> str | None:
        """The time series a click plots: the most corrected one of the grid (``timeseries_ERA5_demErr``
        before ``timeseries``), residuals last."""
        series = [x for x in self.layers.values() if x.is_series and x.grid == grid]
        if not series:
            return None
        return max(series, key=lambda x: ("Residual" not in x.file, Path(x.file).stem.count("_"),
                                          -list(self.layers).index(x.id))).id

    def default_layer(self) -> Layer:
        """What the page opens on: the velocity, else the last time series, else the first map."""
        for layer in self.layers.values():
            if layer.name == "velocity" and not layer.is_series:
                return layer
        for layer in self.layers.values():
            if layer.is_series:
                return layer
        return next(iter(self.layers.values()))

    def as_json(self) -> dict:
        return {
            "root": str(self.root),
            "grids": [dict(g.as_json(), default_series=self.default_series(g.id)) for g in self.grids.values()],
            "layers": [layer.as_json() for layer in self.layers.values()],
            "masks": [m.as_json() for m in self.masks.values()],
            "models": {g: str(p.relative_to(self.root)) for g, p in self.models.items()},
            "default_layer": self.default_layer().id,
        }


def _candidates(root: Path) -> list[Path]:
    files = [p for p in root.glob("*.h5")] + [p for p in root.glob("*.he5")]
    files += list((root / "geo").glob("*.h5")) if (root / "geo").is_dir() else []
    files += list((root / "inputs").glob("geometry*.h5")) if (root / "inputs").is_dir() else []
    files = [p for p in files if p.is_file() and not _SKIP.match(p.name)]

    def rank(p: Path) -> tuple:
        stem = p.stem
        base = next((k for k, n in enumerate(_ORDER) if stem == n), None)
        if base is None:
            base = next((k for k, n in enumerate(_ORDER) if stem.startswith(n)), len(_ORDER))
        return (p.parent.name == "inputs", "Residual" in stem, base, str(p.relative_to(root)))

    return sorted(files, key=rank)


def _grid_key(meta: Metadata) -> tuple:
    g = meta.grid.geo
    geo = None if g is None else (round(g.x_first, 9), round(g.y_first, 9), round(g.x_step, 12), round(g.y_step, 12))
    return (meta.grid.length, meta.grid.width, geo)


def _is_mask(product: Product, name: str) -> bool:
    """A keep-mask: ``mask``/``waterMask`` stored as booleans (maskTempCoh.h5, waterMask.h5), or as
    integers in a ``mask*.h5`` file; counts stored as ``mask`` (numInvIfgram.h5,
    numTriNonzeroIntAmbiguity.h5) are maps, not masks."""
    if short_name(name) not in MASK_NAMES or len(product.dataset_shape(name)) != 2:
        return False
    kind = np.dtype(product._dtypes[name]).kind
    return kind == "b" or (kind in "iu" and product.path.stem.lower().startswith(("mask", "watermask")))


def build_catalog(work_dir: str | os.PathLike) -> Catalog:
    """Scan ``work_dir`` (see the module docstring); an error when it holds nothing to show."""
    root = Path(work_dir).resolve()
    if not root.is_dir():
        raise InputError(f"{work_dir}: not a folder; give the work directory of a run (where velocity.h5 is)")
    grids: dict[tuple, GridInfo] = {}
    layers: dict[str, Layer] = {}
    masks: dict[str, Layer] = {}
    models: dict[str, Path] = {}
    geometry: dict[str, Path] = {}
    for path in _candidates(root):
        rel = path.relative_to(root).as_posix()
        try:
            product = Product.open(path)
        except (SbtsError, OSError) as exc:
            logger.warning("serve: %s skipped (%s)", rel, exc)
            continue
        meta = product.metadata
        key = _grid_key(meta)
        if key not in grids:
            geo = meta.grid.geo
            mode = "mercator" if geo is not None and c.is_degrees(meta) else "pixel"
            grids[key] = GridInfo(f"g{len(grids)}", meta.grid.length, meta.grid.width, geo, mode)
        grid = grids[key].id
        ref = (meta.reference.y, meta.reference.x) if meta.reference.has_point else None
        if ref is not None and not (0 <= ref[0] < meta.grid.length and 0 <= ref[1] < meta.grid.width):
            ref = None
        ref_date = meta.reference.date.strftime("%Y%m%d") if meta.reference.date else None
        if isinstance(product, TimeSeries):
            _add_series(layers, product, rel, grid, ref, ref_date)  # (HDF-EOS5: its 2-D datasets follow)
        if meta.file_type == "velocity" and product.has("velocity") and product.has("intercept") \
                and "START_DATE" in meta.extra and grid not in models:
            models[grid] = path
        if meta.file_type == "geometry" and product.has("incidenceAngle") and grid not in geometry:
            geometry[grid] = path
        probe = ("velocity", None) if meta.file_type == "velocity" and product.has("velocity") else None
        for name in product.datasets:
            shape = product.dataset_shape(name)
            if len(shape) != 2:
                continue
            layer = _map_layer(product, rel, name, grid, ref, ref_date, probe)
            layers[layer.id] = layer
            if _is_mask(product, name):
                masks[layer.id] = layer
    if not layers:
        raise InputError(f"{root}: no sbts/MintPy product (velocity.h5, timeseries*.h5, ...) to show; "
                         "run `sbts run` (or `sbts demo`) first")
    by_id = {g.id: g for g in grids.values()}
    logger.info("serve: %d maps, %d time series, %d masks in %s", sum(not x.is_series for x in layers.values()),
                sum(x.is_series for x in layers.values()), len(masks), root)
    return Catalog(root, by_id, layers, masks, models, geometry)


def _map_layer(product: Product, rel: str, name: str, grid: str, ref, ref_date, probe) -> Layer:
    unit = dataset_unit(product, name)
    kind = c.display_kind(unit, name, product.path)
    short = short_name(name)
    if kind in ("signed", "magnitude", "dem_error"):
        factor, shown = c.unit_scale(unit, "m" if kind == "dem_error" else None)
    else:
        factor, shown = 1.0, unit
    is_mask = _is_mask(product, name)
    cmap = c.default_cmap(unit, short, kind=None if is_mask else kind)
    return Layer(id=f"{rel}:{name}", file=rel, path=product.path, dataset=name, name=short, unit=unit,
                 shown_unit=shown, factor=factor, kind="mask" if is_mask else kind, cmap=cmap, grid=grid,
                 reference=ref, ref_date=ref_date, empty_probe=probe if kind in ("signed", "magnitude") else None,
                 meta=product.metadata)


def _add_series(layers: dict[str, Layer], ts: TimeSeries, rel: str, grid: str, ref, ref_date) -> None:
    name = ts.dataset_name
    unit = ts.metadata.unit or "m"
    factor, shown = c.unit_scale(unit)
    std = name + "Std" if ts.has(name + "Std") and ts.dataset_shape(name + "Std") == ts.dataset_shape(name) else None
    n = len(ts.dates)
    ref_index = ts.dates.index(ts.metadata.reference.date) if ts.metadata.reference.date in ts.dates else None
    probe_index = n - 1 if ref_index is None or ref_index < n / 2 else 0
    probe = (name, probe_index) if probe_index != ref_index else None
    layer = Layer(id=f"{rel}:{name}", file=rel, path=ts.path, dataset=name, name=short_name(name), unit=unit,
                  shown_unit=shown, factor=factor, kind="signed", cmap="RdBu_r", grid=grid, reference=ref,
                  ref_date=ref_date, dates=list(ts.date_strings), std_dataset=std, empty_probe=probe,
                  meta=ts.metadata)
    layers[layer.id] = layer


__all__ = ["Catalog", "Layer", "GridInfo", "build_catalog", "MASK_NAMES"]
