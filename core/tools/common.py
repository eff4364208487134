"""Helpers shared by the analysis tools: picking a dataset, aligning geocoded grids, LOS geometry.

LOS unit vector (MintPy angle conventions, see :mod:`sbts.core.model.metadata`)
-------------------------------------------------------------------------
θ = ``incidenceAngle`` (from the vertical), α = ``azimuthAngle``: azimuth of the horizontal part of
the ground→satellite vector, from north, *anticlockwise* positive.  A compass bearing (clockwise from
north) of that horizontal direction is therefore −α, and its east/north components are
(sin(−α), cos(−α)) = (−sin α, cos α).  With the vertical part cos θ and horizontal length sin θ the
ground→satellite unit vector in (east, north, up) is::

    u = (−sin θ · sin α,  sin θ · cos α,  cos θ)

and a ground displacement d = (d_e, d_n, d_u) appears in the LOS as ``d_los = u · d``, positive toward
the satellite — the sign of ``timeseries``/``velocity``.  Without per-pixel angles, α follows from the
``HEADING`` attribute (clockwise from north): the ground→satellite bearing is ``HEADING + 90°·side``
(``ANTENNA_SIDE`` −1 = right looking, the default), so ``α = −HEADING − 90°·side`` (= 90° − HEADING
for right-looking sensors: ≈ +102.7° ascending, ≈ −102.7° descending for Sentinel-1).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from sbts.core.errors import InputError
from sbts.core.io.blocks import Block
from sbts.core.io.products import Geometry, Product, TimeSeries
from sbts.core.model.dates import parse_date
from sbts.core.model.metadata import GeoGrid, Grid, Metadata

logger = logging.getLogger(__name__)

# datasets that name the product, by FILE_TYPE (otherwise: the first 2-D dataset)
_MAIN = ("velocity", "timeseries", "temporalCoherence", "coherence", "mask", "height", "displacement")


def main_dataset(product: Product) -> str:
    """The dataset a tool works on when none is named: the one matching FILE_TYPE, else the first map."""
    names = product.datasets
    ftype = product.metadata.file_type
    if ftype in names:
        return ftype
    if isinstance(product, TimeSeries):
        return product.dataset_name
    for name in _MAIN:
        if name in names:
            return name
    for name in names:
        if len(product.dataset_shape(name)) in (2, 3) and name not in ("date", "bperp"):
            return name
    raise InputError(f"{product.path}: no map dataset in the file")


def resolve_map(product: Product, dataset: str | None) -> tuple[str, int | None]:
    """(dataset, layer) of one 2-D map: a dataset name, or a date (YYYYMMDD) of a time series."""
    if isinstance(product, TimeSeries):
        if dataset is None or dataset == product.dataset_name:
            index = len(product.dates) - 1
            logger.info("%s: using the last date %s", product.path.name, product.date_strings[index])
            return product.dataset_name, index
        if product.has(dataset) and len(product.dataset_shape(dataset)) == 2:
            return dataset, None
        try:
            parse_date(dataset)
        except Exception:  # noqa: BLE001 - any unparsable text is "not a date"
            product._require(dataset)
        return product.dataset_name, product.date_index(dataset)
    name = dataset or main_dataset(product)
    product._require(name)
    if len(product.dataset_shape(name)) != 2:
        raise InputError(f"{product.path}: dataset {name!r} has shape {product.dataset_shape(name)}; "
                         "a 2-D map is needed here")
    return name, None


def map_reader(product: Product, dataset: str | None = None):
    """A function ``block -> 2-D array`` reading one map of ``product`` (see :func:`resolve_map`)."""
    name, layer = resolve_map(product, dataset)

    def read(block: Block | None = None) -> np.ndarray:
        return product.read(name, block, index=layer) if layer is not None else product.read(name, block)

    read.dataset = name
    return read


def read_map(product: Product, dataset: str | None = None, block: Block | None = None) -> np.ndarray:
    """One 2-D map of ``product``, whole or one block: see :func:`resolve_map`."""
    return map_reader(product, dataset)(block)


def require_geo(meta: Metadata, path: str | os.PathLike) -> GeoGrid:
    geo = meta.grid.geo
    if geo is None:
        raise InputError(f"{path}: not geocoded (no X_FIRST/Y_FIRST); run `sbts geocode` first")
    return geo


def same_step(a: GeoGrid, b: GeoGrid, rtol: float = 1e-4) -> bool:
    return (abs(a.x_step - b.x_step) <= rtol * abs(a.x_step)
            and abs(a.y_step - b.y_step) <= rtol * abs(a.y_step))


def pixel_offset(ref: GeoGrid, other: GeoGrid, path: str | os.PathLike) -> tuple[int, int]:
    """(rows, cols) of ``other``'s first pixel on ``ref``'s grid; steps must match.

    A sub-pixel misalignment is rounded to the nearest pixel (nearest-neighbour resampling onto the
    first grid) and logged, since the tools compare values pixel by pixel.
    """
    if not same_step(ref, other):
        raise InputError(
            f"{path}: pixel size {other.y_step:g}/{other.x_step:g} differs from the first file's "
            f"{ref.y_step:g}/{ref.x_step:g}; resample it to the same step first (sbts geocode --lalo-step)")
    fy = (other.y_first - ref.y_first) / ref.y_step
    fx = (other.x_first - ref.x_first) / ref.x_step
    dy, dx = int(round(fy)), int(round(fx))
    if max(abs(fy - dy), abs(fx - dx)) > 0.01:
        logger.warning("%s: grid shifted by %.2f/%.2f pixel from the first file; nearest pixel used",
                       Path(path).name, fy - dy, fx - dx)
    return dy, dx


def crop_metadata(meta: Metadata, y0: int, x0: int, length: int, width: int) -> Metadata:
    """Metadata of the window starting at pixel (y0, x0) (may be negative: an enlarged grid).

    The corner moves with the window; REF_Y/REF_X follow it and are dropped when they fall outside.
    """
    geo = meta.grid.geo
    if geo is not None:
        geo = dataclasses.replace(geo, y_first=geo.y_first + y0 * geo.y_step, x_first=geo.x_first + x0 * geo.x_step)
    out = meta.replace(grid=Grid(length, width, geo))
    ref = meta.reference
    if ref.has_point:
        ry, rx = ref.y - y0, ref.x - x0
        if 0 <= ry < length and 0 <= rx < width:
            out = out.with_reference(y=ry, x=rx)
        else:
            out = out.with_reference(y=None, x=None, lat=None, lon=None)
    return out


# ---------------------------------------------------------------------------- LOS geometry
def azimuth_from_heading(heading: float, antenna_side: int | None = -1) -> float:
    """MintPy azimuthAngle (LOS ground→satellite, from north, anticlockwise) from HEADING, degrees."""
    side = -1 if antenna_side is None else (1 if antenna_side > 0 else -1)
    az = -heading - 90.0 * side
    return float((az + 180.0) % 360.0 - 180.0)


def los_unit_vector(incidence: np.ndarray | float, azimuth: np.ndarray | float) -> tuple[np.ndarray, ...]:
    """(east, north, up) components of the ground→satellite unit vector; angles in degrees."""
    inc = np.deg2rad(np.asarray(incidence, np.float64))
    az = np.deg2rad(np.asarray(azimuth, np.float64))
    return -np.sin(inc) * np.sin(az), np.sin(inc) * np.cos(az), np.cos(inc)


def enu_to_los(east, north, up, incidence, azimuth) -> np.ndarray:
    """Project east/north/up displacements onto the LOS (positive toward the satellite)."""
    ue, un, uu = los_unit_vector(incidence, azimuth)
    return east * ue + north * un + up * uu


def scalar_angles(meta: Metadata, path: str | os.PathLike) -> tuple[float, float]:
    """(incidence, azimuth) from attributes, for files without a geometry file."""
    inc = meta.radar.incidence_angle
    if inc is None:
        for key in ("CENTER_INCIDENCE_ANGLE", "incidenceAngle"):
            if key in meta.extra:
                try:
                    inc = float(meta.extra[key])
                    break
                except ValueError:
                    pass
    heading = meta.radar.heading
    if "AZIMUTH_ANGLE" in meta.extra:
        az = float(meta.extra["AZIMUTH_ANGLE"])
    elif heading is not None:
        az = azimuth_from_heading(heading, meta.radar.antenna_side)
    else:
        az = None
    if inc is None or az is None:
        missing = " and ".join(k for k, v in (("INCIDENCE_ANGLE", inc), ("HEADING", az)) if v is None)
        raise InputError(f"{path}: no geometry file given and the attributes lack {missing}; "
                         "pass the geometry file (incidenceAngle, azimuthAngle)")
    return float(inc), float(az)


class LosGeometry:
    """Per-pixel (or scalar) incidence/azimuth angles on a product's grid.

    From a geometry file with ``incidenceAngle`` and ``azimuthAngle`` on the same grid as the data,
    else from the attributes (INCIDENCE_ANGLE / CENTER_INCIDENCE_ANGLE, HEADING, ANTENNA_SIDE).
    """

    def __init__(self, meta: Metadata, source: str | os.PathLike, geometry: str | os.PathLike | None = None):
        self.geometry = None
        self.scalar = None
        if geometry is not None:
            geom = Geometry(geometry)
            for name in ("incidenceAngle", "azimuthAngle"):
                geom._require(name)
            if geom.shape != meta.grid.shape:
                raise InputError(f"{geometry}: grid {geom.shape} differs from {source} {meta.grid.shape}")
            self.geometry = geom
        else:
            self.scalar = scalar_angles(meta, source)
            logger.info("%s: scalar geometry incidence %.2f°, azimuth %.2f° from the attributes",
                        Path(source).name, *self.scalar)

    def angles(self, block: Block | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.geometry is None:
            return np.float64(self.scalar[0]), np.float64(self.scalar[1])
        inc = self.geometry.read("incidenceAngle", block).astype(np.float64)
        az = self.geometry.read("azimuthAngle", block).astype(np.float64)
        return inc, az


def default_output_dir(path: str | os.PathLike) -> Path:
    """The work directory of a file: the parent of ``inputs/`` for stack files, else its folder."""
    parent = Path(path).resolve().parent
    return parent.parent if parent.name == "inputs" else parent


__all__ = [
    "main_dataset", "resolve_map", "map_reader", "read_map", "require_geo", "same_step", "pixel_offset",
    "crop_metadata",
    "azimuth_from_heading", "los_unit_vector", "enu_to_los", "scalar_angles", "LosGeometry",
    "default_output_dir",
]
