"""Resampling between radar and geographic (or projected) coordinates, block by block.

Two kinds of lookup table tell where each pixel lies (MintPy's two cases):

- ``latitude``/``longitude`` rasters on the *radar* grid (ISCE, DORIS: ``geometryRadar.h5``);
- ``azimuthCoord``/``rangeCoord`` rasters on a *geographic* grid (GAMMA, ROI_PAC: ``geometryGeo.h5``),
  giving the radar row/column (index coordinates, integer = pixel centre) of each geo pixel.

Every output pixel is resampled from one fractional position in the source image: nearest
(``round``) is a gather, bilinear the four corners of that position with one set of indices and
weights for every layer of a time series (:func:`_bilinear`, equal to
``scipy.ndimage.map_coordinates(order=1, mode="nearest")`` within 2 ulp).
When the position is a *lookup value* (radar→geo with azimuth/range coordinates, geo→radar with
latitude/longitude) it is read directly.  When the lookup is on the *source* grid (radar→geo with
latitude/longitude, geo→radar with azimuth/range coordinates) it is inverted: a KD-tree over a
subsampled lookup gives a first guess, a few Newton steps on the bilinear lookup give the exact
fractional position (exact for affine lookups, so no triangulation is needed).

The output is processed in blocks of the OUTPUT grid; each block reads only the source window its
positions fall in, so memory stays bounded.  Files are written atomically (:class:`H5Writer`).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.compute.scheduling import describe, memory_per_task, run_blocks, workers_within
from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.errors import InputError, TemplateError, shown
from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.h5 import H5Writer, open_h5, read_metadata
from sbts.core.io.products import Product
from sbts.core.io.progress import progress
from sbts.core.model.metadata import GeoGrid, Grid, Metadata

logger = logging.getLogger(__name__)

METHODS = ("nearest", "linear")
# categorical layers: interpolating them would invent classes
NEAREST_ONLY = {"connectComponent", "waterMask", "shadowMask", "mask", "dropIfgram"}
_NEWTON_STEPS = 8
_COARSE_POINTS = 250_000  # size of the KD-tree of the subsampled lookup
_NEWTON_CHUNK = 1 << 16  # points per Newton batch (their ~30 float64 temporaries stay in cache)
_GUESS_STEP = 4  # first guesses of an output block from every 4th target in each direction

Coords = tuple[np.ndarray, np.ndarray]  # (rows, cols) fractional source indices, NaN = no source


@dataclass(frozen=True)
class GeocodeOptions:
    """Output grid and interpolation (``mintpy.geocode.*``)."""

    lalo_step: tuple[float, float] | None = None  # (dlat, dlon) or (dy, dx) in the output CRS units
    bbox: tuple[float, float, float, float] | None = None  # S, N, W, E
    method: str = "nearest"
    fill: float = float("nan")
    epsg: int | None = None  # output CRS (radar→geo); None/4326 = lat/lon
    utm: bool = False  # output in the UTM zone of the scene centre (resolved into epsg)
    max_memory: float = DEFAULT_MAX_MEMORY_GB

    def __post_init__(self) -> None:
        # checked up front: a zero step or an upside-down box would otherwise give an infinite or a
        # huge all-NaN grid, found only after minutes of writing
        if self.lalo_step is not None:
            step = tuple(self.lalo_step)
            if len(step) != 2 or not all(math.isfinite(v) and v != 0 for v in step):
                raise InputError(f"output pixel size (--lalo-step / mintpy.geocode.laloStep) {step}: "
                                 "give two non-zero numbers DLAT DLON")
        if self.bbox is not None:
            box = tuple(self.bbox)
            if len(box) != 4 or not all(math.isfinite(v) for v in box):
                raise InputError(f"output extent (--bbox / mintpy.geocode.SNWE) {box}: give four numbers S N W E")
            s, n, w, e = box
            if not s < n:
                raise InputError(f"output extent (--bbox / mintpy.geocode.SNWE) S N W E = {s:g} {n:g} {w:g} {e:g}: "
                                 f"south {s:g} must be below north {n:g}")
            if not w < e:
                raise InputError(f"output extent (--bbox / mintpy.geocode.SNWE) S N W E = {s:g} {n:g} {w:g} {e:g}: "
                                 f"west {w:g} must be less than east {e:g}")
        if not (self.max_memory > 0 and math.isfinite(self.max_memory)):
            raise InputError(f"memory budget {self.max_memory}: must be a positive number of GB")

    @classmethod
    def from_template(cls, template, **overrides) -> GeocodeOptions:
        """Read mintpy.geocode.SNWE / laloStep / interpMethod / fillValue (``no``/``auto`` = default)."""
        snwe = template.get_numbers("mintpy.geocode.SNWE", 4) if template.get("mintpy.geocode.SNWE") else None
        step = template.get_numbers("mintpy.geocode.laloStep", 2) if template.get("mintpy.geocode.laloStep") else None
        fill = template.get("mintpy.geocode.fillValue")  # "0" is zero; only "no" means NaN
        try:
            fill_value = float(fill) if fill not in (None, "") else float("nan")
        except ValueError:
            raise TemplateError(f"{template.source}: mintpy.geocode.fillValue = {shown(fill)} is not a number "
                                "(nan, 0, -9999 ...)") from None
        values = dict(bbox=tuple(snwe) if snwe else None, lalo_step=tuple(step) if step else None,
                      method=template.get_str("mintpy.geocode.interpMethod", METHODS) or "nearest",
                      fill=fill_value)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# ------------------------------------------------------------------------- CRS helpers
Transform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # (x, y) → (x, y)


def _identity(x, y):
    return x, y


def crs_transform(src_epsg: int | None, dst_epsg: int | None) -> Transform:
    """(x/lon, y/lat) from one EPSG code to another with GDAL's osr; identity when they agree."""
    src, dst = src_epsg or 4326, dst_epsg or 4326
    if src == dst:
        return _identity
    return CrsTransform(int(src), int(dst))


class CrsTransform:
    """(x/lon, y/lat) from EPSG ``src`` to EPSG ``dst`` with GDAL's osr; NaN in, NaN out.

    A picklable callable: the workers that solve a mapping's coordinates get it with the mapping,
    and build the osr transformation again (osr objects do not pickle).
    """

    def __init__(self, src: int, dst: int) -> None:
        self.src, self.dst = src, dst
        self._ct = self._transformation()  # an unknown code fails here, where the mapping is built

    def _transformation(self):
        try:
            from osgeo import osr
        except ImportError as exc:
            raise InputError(f"a projected grid (EPSG:{self.src} → EPSG:{self.dst}) needs GDAL's Python bindings "
                             f"({exc})") from None
        osr.UseExceptions()
        a, b = osr.SpatialReference(), osr.SpatialReference()
        a.ImportFromEPSG(self.src)
        b.ImportFromEPSG(self.dst)
        for srs in (a, b):
            srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        return osr.CoordinateTransformation(a, b)

    def __getstate__(self) -> dict:
        return {"src": self.src, "dst": self.dst}

    def __setstate__(self, state: dict) -> None:
        self.src, self.dst = state["src"], state["dst"]
        self._ct = self._transformation()

    def __call__(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        out_x, out_y = np.full(x.shape, np.nan), np.full(y.shape, np.nan)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            pts = np.asarray(self._ct.TransformPoints(np.c_[x[ok], y[ok]]))
            out_x[ok], out_y[ok] = pts[:, 0], pts[:, 1]
        return out_x, out_y


def utm_epsg(lat: float, lon: float) -> int:
    """EPSG code of the WGS84 UTM zone holding (lat, lon)."""
    zone = int((lon + 180) // 6) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def pixel_centres(geo: GeoGrid, block: Block) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the centres of the pixels of ``block`` (X_FIRST/Y_FIRST are pixel corners)."""
    ys = geo.y_first + (np.arange(block.row_start, block.row_stop) + 0.5) * geo.y_step
    xs = geo.x_first + (np.arange(block.col_start, block.col_stop) + 0.5) * geo.x_step
    x, y = np.meshgrid(xs, ys)
    return x, y


def geo_index(geo: GeoGrid, x: np.ndarray, y: np.ndarray) -> Coords:
    """Fractional (row, col) of points in a geographic grid (integer = pixel centre)."""
    return (y - geo.y_first) / geo.y_step - 0.5, (x - geo.x_first) / geo.x_step - 0.5


# ------------------------------------------------------------------------- lookup table
@dataclass
class Lookup:
    """A geometry file used as lookup table: ``kind`` is ``latlon`` (radar grid) or ``rdc`` (geo grid)."""

    path: Path
    kind: str
    product: Product

    @classmethod
    def open(cls, path: str | os.PathLike) -> Lookup:
        product = Product.open(path)
        if product.has("latitude") and product.has("longitude") and not product.metadata.grid.is_geocoded:
            return cls(Path(path), "latlon", product)
        if product.has("azimuthCoord") and product.has("rangeCoord") and product.metadata.grid.is_geocoded:
            return cls(Path(path), "rdc", product)
        raise InputError(f"{path}: not a lookup table: it needs latitude/longitude in radar coordinates "
                         "(geometryRadar.h5) or azimuthCoord/rangeCoord on a geographic grid (geometryGeo.h5)")

    @property
    def meta(self) -> Metadata:
        return self.product.metadata

    def read2(self, names: tuple[str, str], block: Block | None) -> tuple[np.ndarray, np.ndarray]:
        a, b = (self.product.read(n, block).astype(np.float64) for n in names)
        bad = ~np.isfinite(a) | ~np.isfinite(b)
        if self.kind == "latlon":
            bad |= (a == 0) & (b == 0)  # ISCE writes 0 outside the DEM
        else:
            bad |= (a <= 0) & (b <= 0)  # GAMMA: (0, 0) outside the radar image
        a[bad] = np.nan
        b[bad] = np.nan
        return a, b


@dataclass(frozen=True)
class _LookupRead:
    """Two coordinate rasters of the lookup over a window (:meth:`Lookup.read2`), for
    :class:`InverseLookup`; with ``tf``, (first, second) = (lat, lon) become the output CRS's (y, x).
    A picklable callable: the mapping goes to the workers that solve its coordinates."""

    lookup: Lookup
    names: tuple[str, str]
    tf: Transform | None = None

    def __call__(self, block: Block | None) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.lookup.read2(self.names, block)
        if self.tf is None:
            return a, b
        x, y = self.tf(b, a)
        return y, x


def _is_lookup(path: Path) -> bool:
    try:
        Lookup.open(path)
    except InputError:
        return False
    return True


def find_lookup(path: str | os.PathLike, geo2radar: bool = False) -> Path:
    """The geometry file near ``path`` that can serve as lookup table (radar one first)."""
    from sbts.core.io.workdir import GEOMETRY_FILES, find_file

    path = Path(path).resolve()
    # a radar-coded geometry file with latitude/longitude is its own lookup table (not for geo2radar)
    found = find_file(GEOMETRY_FILES, path, accept=_is_lookup, exclude=path if geo2radar else None)
    if found is not None:
        return found
    raise InputError(f"no lookup table found near {path} (looked for inputs/geometryRadar.h5 with "
                     "latitude/longitude or inputs/geometryGeo.h5 with azimuthCoord/rangeCoord); give one with -l")


# ------------------------------------------------------------------------- inversion engine
class InverseLookup:
    """Fractional source (row, col) where two coordinate rasters on the source grid take given values.

    ``read(block) -> (c1, c2)`` reads the coordinate rasters (NaN = unknown) of a source window.
    """

    def __init__(self, read: Callable[[Block], tuple[np.ndarray, np.ndarray]], shape: tuple[int, int],
                 max_memory: float = DEFAULT_MAX_MEMORY_GB) -> None:
        from scipy.spatial import cKDTree

        self.read, self.shape = read, shape
        length, width = shape
        self.step = k = max(1, int(math.ceil(math.sqrt(length * width / _COARSE_POINTS))))
        pts, rows, cols = [], [], []
        for block in plan_blocks(shape, 16 * 3, max_memory):  # subsample block by block, globally aligned
            c1, c2 = read(block)
            r = np.arange(block.row_start, block.row_stop)
            c = np.arange(block.col_start, block.col_stop)
            rsel, csel = (r % k) == k // 2, (c % k) == k // 2
            if k > 1:  # the last row/column too, so the footprint edge is in the tree
                rsel |= r == length - 1
                csel |= c == width - 1
            a, b = c1[np.ix_(rsel, csel)], c2[np.ix_(rsel, csel)]
            rr, cc = np.meshgrid(r[rsel], c[csel], indexing="ij")
            ok = np.isfinite(a) & np.isfinite(b)
            pts.append(np.c_[a[ok], b[ok]])
            rows.append(rr[ok])
            cols.append(cc[ok])
        points = np.concatenate(pts) if pts else np.empty((0, 2))
        if points.shape[0] == 0:
            raise InputError("the lookup table has no valid pixel")
        self.rows, self.cols = np.concatenate(rows), np.concatenate(cols)
        self.scale = np.nanstd(points, axis=0)
        self.scale[~(self.scale > 0)] = 1.0
        self.tree = cKDTree(points / self.scale)

    def solve(self, t1: np.ndarray, t2: np.ndarray) -> Coords:
        """Source (row, col) of the target values ``(t1, t2)``; NaN where outside the source.

        First guesses come from the KD-tree; for a 2-D block of targets (an output block), only every
        :data:`_GUESS_STEP`-th target in each direction is looked up and the others start from their
        nearest such node (the tree query is most of the cost otherwise).  Newton steps on the
        bilinear lookup follow; a point that neither converges nor walks off the image is solved
        again from its own tree guess, so the result is that of the exact first guess (within the
        1e-6-pixel convergence test).
        """
        shape = t1.shape
        coarse = t1.ndim == 2 and min(shape) >= 2 * _GUESS_STEP  # first guesses from every 4th target
        guess = self._node_guess(t1, t2) if coarse else None
        t1, t2 = t1.ravel(), t2.ravel()
        out_r, out_c = np.full(t1.size, np.nan), np.full(t1.size, np.nan)
        ok = np.isfinite(t1) & np.isfinite(t2)
        if not ok.any():
            return out_r.reshape(shape), out_c.reshape(shape)
        a1, a2 = t1[ok], t2[ok]
        if guess is None:
            r0, c0 = self._tree_guess(a1, a2)
        else:
            r0, c0 = guess[0].ravel()[ok], guess[1].ravel()[ok]
            del guess  # the block-shaped guesses are no longer needed
            missing = np.flatnonzero(np.isnan(r0))  # its node's target is not finite: its own guess
            if missing.size:
                r0[missing], c0[missing] = self._tree_guess(a1[missing], a2[missing])
        margin = self.step + 2
        length, width = self.shape
        win = Block(max(0, int(r0.min()) - margin), min(length, int(r0.max()) + margin + 1),
                    max(0, int(c0.min()) - margin), min(width, int(c0.max()) + margin + 1))
        c1, c2 = (_extend(a) for a in self.read(win))
        h, w = c1.shape
        if h < 2 or w < 2:  # a one-pixel-wide source has no gradient: nearest coarse pixel only
            if coarse:
                r0, c0 = self._tree_guess(a1, a2)
            out_r[ok], out_c[ok] = r0, c0
            return out_r.reshape(shape), out_c.reshape(shape)
        # one pixel of linear extrapolation around the window, so positions up to half a pixel
        # outside the footprint edge (still inside its pixels) converge like interior ones
        # the two rasters and their derivatives side by side: one set of bilinear corner indices
        # and weights per step serves all six (map_coordinates would recompute it six times)
        grid = (h + 2, w + 2)
        rasters = np.empty((6,) + grid)
        rasters[0] = np.pad(c1, 1, mode="reflect", reflect_type="odd")
        rasters[1] = np.pad(c2, 1, mode="reflect", reflect_type="odd")
        del c1, c2
        _gradient(rasters[0], rasters[2], rasters[3])
        _gradient(rasters[1], rasters[4], rasters[5])
        rasters = rasters.reshape(6, -1)
        r, c = r0 - win.row_start + 1, c0 - win.col_start + 1
        delta = np.zeros_like(r)
        # the image edges in window coordinates (the window starts one padding pixel before win)
        bounds = (-3.5 - (win.row_start - 1), length + 2.5 - (win.row_start - 1),
                  -3.5 - (win.col_start - 1), width + 2.5 - (win.col_start - 1))
        _newton(rasters, grid, a1, a2, r, c, delta, np.arange(r.size), bounds)
        if coarse:
            retry = np.flatnonzero(~(delta < 1e-3) & ~np.isinf(delta))
            if retry.size:
                rr, cc = self._tree_guess(a1[retry], a2[retry])
                r[retry] = np.clip(rr - win.row_start + 1, 0, grid[0] - 1)
                c[retry] = np.clip(cc - win.col_start + 1, 0, grid[1] - 1)
                _newton(rasters, grid, a1, a2, r, c, delta, retry, bounds)
        r, c = r + win.row_start - 1, c + win.col_start - 1
        inside = (delta < 1e-3) & (r >= -0.5) & (r <= length - 0.5) & (c >= -0.5) & (c <= width - 0.5)
        r[~inside], c[~inside] = np.nan, np.nan
        out_r[ok], out_c[ok] = r, c
        return out_r.reshape(shape), out_c.reshape(shape)

    def _tree_guess(self, a1: np.ndarray, a2: np.ndarray) -> Coords:
        """(row, col) of the nearest subsampled lookup pixel of each target."""
        _, idx = self.tree.query(np.c_[a1, a2] / self.scale)
        return self.rows[idx].astype(np.float64), self.cols[idx].astype(np.float64)

    def _node_guess(self, t1: np.ndarray, t2: np.ndarray) -> Coords:
        """(row, col) first guesses of a 2-D block of targets from every _GUESS_STEP-th one (NaN where
        the node's target is not finite)."""
        s = _GUESS_STEP
        h, w = t1.shape
        rows, cols = np.arange(0, h, s), np.arange(0, w, s)
        n1, n2 = t1[np.ix_(rows, cols)], t2[np.ix_(rows, cols)]
        gr, gc = np.full(n1.shape, np.nan), np.full(n1.shape, np.nan)
        fin = np.isfinite(n1) & np.isfinite(n2)
        if fin.any():
            gr[fin], gc[fin] = self._tree_guess(n1[fin], n2[fin])
        ii = np.minimum((np.arange(h) + s // 2) // s, rows.size - 1)
        jj = np.minimum((np.arange(w) + s // 2) // s, cols.size - 1)
        return gr[np.ix_(ii, jj)], gc[np.ix_(ii, jj)]


def _gradient(a: np.ndarray, d_row: np.ndarray, d_col: np.ndarray) -> None:
    """``np.gradient(a)`` (unit spacing, first-order edges; the same arithmetic, hence the same bits)
    written into ``d_row``, ``d_col``: no temporaries of the window's size."""
    for axis, out in ((0, d_row), (1, d_col)):
        f, g = np.moveaxis(a, axis, 0), np.moveaxis(out, axis, 0)
        np.subtract(f[2:], f[:-2], out=g[1:-1])
        g[1:-1] /= 2.0
        g[0] = f[1] - f[0]
        g[-1] = f[-1] - f[-2]


def _newton(rasters, shape, a1, a2, r, c, delta, active, bounds) -> None:
    """Newton steps on the bilinear lookup for the points ``active``; ``r``, ``c``, ``delta`` in place.

    ``rasters``: the two coordinate rasters and their four derivatives, flattened (6, h·w) on a grid
    of ``shape``; ``a1``, ``a2`` the targets.  ``delta`` receives each point's last step (NaN: a
    singular Jacobian; inf: the point walked more than 3 pixels beyond ``bounds``, i.e. off the
    image — a target outside the footprint does that instead of converging).
    """
    if active.size > _NEWTON_CHUNK:  # points are independent: in chunks, the temporaries stay small
        for s0 in range(0, active.size, _NEWTON_CHUNK):
            _newton(rasters, shape, a1, a2, r, c, delta, active[s0:s0 + _NEWTON_CHUNK], bounds)
        return
    r_lo, r_hi, c_lo, c_hi = bounds
    for _ in range(_NEWTON_STEPS):
        ra, ca = r[active], c[active]
        v1, v2, j11, j12, j21, j22 = _bilinear(rasters, *_bilinear_setup(ra, ca, shape))
        det = j11 * j22 - j12 * j21
        with np.errstate(all="ignore"):
            e1, e2 = a1[active] - v1, a2[active] - v2
            dr = (j22 * e1 - j12 * e2) / det
            dc = (-j21 * e1 + j11 * e2) / det
        bad = ~np.isfinite(dr) | ~np.isfinite(dc)
        dr[bad], dc[bad] = np.nan, np.nan
        ra += dr
        ca += dc
        r[active], c[active] = ra, ca
        step = np.hypot(dr, dc)
        step[(ra < r_lo) | (ra > r_hi) | (ca < c_lo) | (ca > c_hi)] = np.inf
        delta[active] = step
        keep = step > 1e-6  # NaN compares False: a failed point stops
        keep &= np.isfinite(step)
        active = active[keep]
        if not active.size:
            break


def _bilinear_setup(r: np.ndarray, c: np.ndarray, shape: tuple[int, int]):
    """Flat indices of the four corners and their bilinear weights for positions (r, c) on a grid of
    ``shape``; positions outside it take the edge values (``map_coordinates(order=1, mode="nearest")``,
    equal to it within 2 ulp, and NaN where it gives NaN)."""
    h, w = shape
    fi, fj = np.floor(r), np.floor(c)
    fr, fc = r - fi, c - fj
    # the corners outside the grid take the edge's index ("nearest" extension of the grid)
    i0 = np.clip(fi, 0, h - 1).astype(np.intp)
    i1 = np.clip(fi + 1, 0, h - 1).astype(np.intp)
    j0 = np.clip(fj, 0, w - 1).astype(np.intp)
    j1 = np.clip(fj + 1, 0, w - 1).astype(np.intp)
    i0 *= w
    i1 *= w
    gr, gc = 1.0 - fr, 1.0 - fc
    return (i0 + j0, i0 + j1, i1 + j0, i1 + j1), (gr * gc, gr * fc, fr * gc, fr * fc)


def _bilinear(flat: np.ndarray, idx, wts) -> np.ndarray:
    """(..., N) float64 bilinear values of ``flat`` (..., h·w) at the corners and weights of
    :func:`_bilinear_setup`."""
    out = np.multiply(flat[..., idx[0]], wts[0], dtype=np.float64)
    for k in (1, 2, 3):  # one corner gathered at a time; float64 gathers are weighted in place
        corner = flat[..., idx[k]]
        if corner.dtype == np.float64:
            corner *= wts[k]
            out += corner
        else:
            out += corner * wts[k]
    return out


def _extend(a: np.ndarray, depth: int = 2) -> np.ndarray:
    """``a`` with the NaN pixels next to its valid ones filled by linear extrapolation along rows and
    columns, ``depth`` pixels deep (exact for an affine lookup).  A GAMMA/ROI_PAC lookup table is
    NaN outside the radar footprint, so the bilinear Newton steps toward a radar pixel on the rim of
    the image would meet NaN neighbours and fail: geo→radar left the image's first and last rows and
    columns empty."""
    a = np.array(a, np.float64)
    if not np.isnan(a).any() or np.isnan(a).all():
        return a
    for _ in range(depth):
        nan = np.isnan(a)
        total, count = np.zeros(a.shape), np.zeros(a.shape)
        for axis in (0, 1):
            n = a.shape[axis]
            for step in (1, -1):
                near, far = np.full(a.shape, np.nan), np.full(a.shape, np.nan)
                take = [slice(None)] * 2
                put = [slice(None)] * 2
                if n > 2:  # the value one and two pixels away in this direction
                    put[axis], take[axis] = (slice(0, n - 1), slice(1, n)) if step == 1 else (slice(1, n), slice(0, n - 1))
                    near[tuple(put)] = a[tuple(take)]
                    put[axis], take[axis] = (slice(0, n - 2), slice(2, n)) if step == 1 else (slice(2, n), slice(0, n - 2))
                    far[tuple(put)] = a[tuple(take)]
                guess = 2.0 * near - far
                ok = nan & np.isfinite(guess)
                total[ok] += guess[ok]
                count[ok] += 1
        filled = count > 0
        if not filled.any():
            break
        a[filled] = total[filled] / count[filled]
    return a


# ------------------------------------------------------------------------- mappings
class _Mapping:
    """Where each output pixel comes from: ``coords(block)`` → source (row, col), NaN = nothing."""

    out_grid: Grid
    src_shape: tuple[int, int]

    def coords(self, block: Block) -> Coords:  # pragma: no cover - interface
        raise NotImplementedError


def _auto_step(lookup: Lookup, epsg: int | None, tf: Transform) -> tuple[float, float]:
    """(dy, dx) keeping the radar pixel area, square on the ground (MintPy's laloStep default)."""
    length, width = lookup.meta.grid.shape
    y0, y1 = max(0, length // 2 - 50), min(length, length // 2 + 50)
    x0, x1 = max(0, width // 2 - 50), min(width, width // 2 + 50)
    lat, lon = lookup.read2(("latitude", "longitude"), Block(y0, y1, x0, x1))
    x, y = tf(lon, lat)
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise InputError(f"{lookup.path}: too small to estimate the output pixel size; give --lalo-step")
    xr, xc = np.gradient(x)
    yr, yc = np.gradient(y)
    area = float(np.nanmedian(np.abs(xr * yc - xc * yr)))
    if not area > 0:
        raise InputError(f"{lookup.path}: cannot estimate the output pixel size; give --lalo-step")
    if epsg in (None, 4326):
        coslat = math.cos(math.radians(float(np.nanmedian(lat))))
        dy = math.sqrt(area * coslat)
        return dy, dy / coslat
    d = math.sqrt(area)
    return d, d


def _snap_grid(s: float, n: float, w: float, e: float, dy: float, dx: float,  # noqa: ARG001 - anchored at N/W
               epsg: int | None) -> GeoGrid:
    unit = "degrees" if epsg in (None, 4326) else "meters"
    return GeoGrid(x_first=w, y_first=n, x_step=abs(dx), y_step=-abs(dy), x_unit=unit, y_unit=unit,
                   epsg=int(epsg or 4326))


def _grid_from(bbox, step, epsg) -> Grid:
    s, n, w, e = bbox
    dy, dx = abs(step[0]), abs(step[1])
    rows, cols = (n - s) / dy, (e - w) / dx
    if not (math.isfinite(rows) and math.isfinite(cols)) or rows * cols > 1e13:
        raise InputError(f"the output grid of S N W E = {s:.6g} {n:.6g} {w:.6g} {e:.6g} at steps {dy:.3g}, {dx:.3g} "
                         "is far too large: give a larger --lalo-step (mintpy.geocode.laloStep)")
    length, width = max(1, int(round(rows))), max(1, int(round(cols)))
    return Grid(length, width, _snap_grid(s, n, w, e, dy, dx, epsg))


# an output grid this many times larger than the radar image (and above MIN_REFUSED pixels) is a
# mistake (a box far larger than the data, or a tiny step), refused before minutes of writing NaN
MAX_GROWTH = 100
MIN_REFUSED = 4_000_000


def check_output_grid(bbox, extent, out_grid: Grid, src_shape: tuple[int, int]) -> None:
    """Refuse a box that misses the data and a grid far larger than the data it holds."""
    s, n, w, e = bbox
    ds, dn, dw, de = extent
    if all(math.isfinite(v) for v in extent) and (n < ds or s > dn or e < dw or w > de):
        raise InputError(f"the output extent S N W E = {s:.6g} {n:.6g} {w:.6g} {e:.6g} does not overlap the data "
                         f"({ds:.6g} {dn:.6g} {dw:.6g} {de:.6g}): every pixel would be empty; check --bbox / SNWE")
    pixels = out_grid.length * out_grid.width
    src = max(1, src_shape[0] * src_shape[1])
    if pixels > MIN_REFUSED and pixels > MAX_GROWTH * src:
        raise InputError(f"the output grid would be {out_grid.length}×{out_grid.width} pixels, {pixels / src:.0f} "
                         f"times the {src_shape[0]}×{src_shape[1]} input: give a larger --lalo-step "
                         "(mintpy.geocode.laloStep) or a smaller --bbox (mintpy.geocode.SNWE)")


class LatLonToGeo(_Mapping):
    """Radar → geo with latitude/longitude on the radar grid: invert the lookup."""

    def __init__(self, lookup: Lookup, opts: GeocodeOptions) -> None:
        self.src_shape = lookup.meta.grid.shape
        epsg = opts.epsg if opts.epsg not in (None, 4326) else None
        tf = crs_transform(4326, epsg)
        read = _LookupRead(lookup, ("latitude", "longitude"), tf)
        self.inverse = InverseLookup(read, self.src_shape, opts.max_memory)
        # the lookup's extent, from the coordinates of every valid pixel (block by block)
        lo, hi = np.array([np.inf, np.inf]), np.array([-np.inf, -np.inf])
        for block in plan_blocks(self.src_shape, 48, opts.max_memory):
            y, x = read(block)
            if np.isfinite(y).any():
                lo = np.minimum(lo, [np.nanmin(y), np.nanmin(x)])
                hi = np.maximum(hi, [np.nanmax(y), np.nanmax(x)])
        extent = (lo[0], hi[0], lo[1], hi[1])
        if not np.isfinite(lo).all():
            raise InputError(f"{lookup.path}: latitude/longitude hold no valid value: nothing to geocode")
        if opts.bbox is not None and epsg is not None:
            s, n, w, e = opts.bbox  # a lat/lon box: its projected extent
            xs, ys = tf(np.array([w, e, w, e]), np.array([s, s, n, n]))
            bbox = (ys.min(), ys.max(), xs.min(), xs.max())
        elif opts.bbox is not None:
            bbox = opts.bbox
        else:
            bbox = extent
        step = opts.lalo_step or _auto_step(lookup, epsg, tf)
        if opts.bbox is None:  # pad half a pixel so the outermost pixel centres are inside the grid
            bbox = (bbox[0] - abs(step[0]) / 2, bbox[1] + abs(step[0]) / 2,
                    bbox[2] - abs(step[1]) / 2, bbox[3] + abs(step[1]) / 2)
        self.out_grid = _grid_from(bbox, step, epsg or 4326)
        check_output_grid(bbox, extent, self.out_grid, self.src_shape)

    def coords(self, block: Block) -> Coords:
        x, y = pixel_centres(self.out_grid.geo, block)
        return self.inverse.solve(y, x)


def _looks_ratio(data_meta: Metadata, lookup_meta: Metadata) -> tuple[float, float, float, float]:
    """(y offset, y scale, x offset, x scale) from full-resolution lookup indices to the data's pixels."""
    sy = sx = 1.0
    r, lr = data_meta.radar, lookup_meta.radar
    if r.alooks and lr.alooks and r.alooks > lr.alooks:
        sy = r.alooks / lr.alooks
    if r.rlooks and lr.rlooks and r.rlooks > lr.rlooks:
        sx = r.rlooks / lr.rlooks
    y0 = float(data_meta.extra.get("SUBSET_YMIN", 0) or 0)
    x0 = float(data_meta.extra.get("SUBSET_XMIN", 0) or 0)
    return y0, sy, x0, sx


class RdcToGeo(_Mapping):
    """Radar → geo with azimuth/range coordinates on a geo grid: read them at each output pixel."""

    def __init__(self, lookup: Lookup, data_meta: Metadata, opts: GeocodeOptions) -> None:
        self.lookup = lookup
        self.src_shape = data_meta.grid.shape
        self.offsets = _looks_ratio(data_meta, lookup.meta)
        lk = lookup.meta.grid
        self.same = opts.lalo_step is None and opts.bbox is None and opts.epsg in (None, lk.geo.epsg or 4326)
        if self.same:
            self.out_grid = Grid(lk.length, lk.width, lk.geo)
            return
        epsg = opts.epsg or lk.geo.epsg or 4326
        self.tf = crs_transform(epsg, lk.geo.epsg or 4326)
        g = lk.geo
        extent = (g.y_first + lk.length * g.y_step, g.y_first, g.x_first, g.x_first + lk.width * g.x_step)
        extent = (min(extent[:2]), max(extent[:2]), min(extent[2:]), max(extent[2:]))
        if opts.bbox is not None:
            bbox = opts.bbox
            check_output_grid(bbox, extent, Grid(1, 1), self.src_shape)  # overlap only
        else:
            bbox = extent
        if epsg != (lk.geo.epsg or 4326):
            back = crs_transform(lk.geo.epsg or 4326, epsg)
            xs, ys = back(np.array([bbox[2], bbox[3], bbox[2], bbox[3]]), np.array([bbox[0], bbox[0], bbox[1], bbox[1]]))
            bbox = (ys.min(), ys.max(), xs.min(), xs.max())
            coslat = math.cos(math.radians(g.y_first + lk.length * g.y_step / 2))
            step = opts.lalo_step or (abs(g.y_step) * 111_320.0, abs(g.x_step) * 111_320.0 * coslat)
        else:
            step = opts.lalo_step or (abs(g.y_step), abs(g.x_step))
        self.method = opts.method
        self.out_grid = _grid_from(bbox, step, epsg)
        check_output_grid(bbox, (-np.inf,) * 4, self.out_grid, self.src_shape)  # size only

    def coords(self, block: Block) -> Coords:
        from scipy.ndimage import map_coordinates

        if self.same:
            az, rg = self.lookup.read2(("azimuthCoord", "rangeCoord"), block)
        else:
            x, y = pixel_centres(self.out_grid.geo, block)
            x, y = self.tf(x, y)
            li, lj = geo_index(self.lookup.meta.grid.geo, x, y)
            length, width = self.lookup.meta.grid.shape
            ok = np.isfinite(li) & (li >= -0.5) & (li <= length - 0.5) & (lj >= -0.5) & (lj <= width - 0.5)
            az, rg = np.full(li.shape, np.nan), np.full(li.shape, np.nan)
            if ok.any():
                win = Block(max(0, int(np.floor(li[ok].min())) - 1), min(length, int(np.ceil(li[ok].max())) + 2),
                            max(0, int(np.floor(lj[ok].min())) - 1), min(width, int(np.ceil(lj[ok].max())) + 2))
                a, r = self.lookup.read2(("azimuthCoord", "rangeCoord"), win)
                pos = (li[ok] - win.row_start, lj[ok] - win.col_start)
                order = 0 if self.method == "nearest" else 1
                az[ok] = map_coordinates(a, pos, order=order, mode="nearest")
                rg[ok] = map_coordinates(r, pos, order=order, mode="nearest")
        y0, sy, x0, sx = self.offsets
        rows = (az - y0 - (sy - 1) / 2) / sy
        cols = (rg - x0 - (sx - 1) / 2) / sx
        return _inside(rows, cols, self.src_shape)


class GeoToLatLonRadar(_Mapping):
    """Geo → radar with latitude/longitude on the radar grid: each radar pixel reads its position."""

    def __init__(self, lookup: Lookup, data_meta: Metadata) -> None:
        self.lookup = lookup
        self.geo = data_meta.grid.geo
        self.src_shape = data_meta.grid.shape
        self.tf = crs_transform(4326, self.geo.epsg)
        self.out_grid = Grid(*lookup.meta.grid.shape)

    def coords(self, block: Block) -> Coords:
        lat, lon = self.lookup.read2(("latitude", "longitude"), block)
        x, y = self.tf(lon, lat)
        rows, cols = geo_index(self.geo, x, y)
        return _inside(rows, cols, self.src_shape)


class GeoToRdcRadar(_Mapping):
    """Geo → radar with azimuth/range coordinates on a geo grid: invert the lookup."""

    def __init__(self, lookup: Lookup, data_meta: Metadata, opts: GeocodeOptions) -> None:
        self.lookup = lookup
        self.geo = data_meta.grid.geo
        self.src_shape = data_meta.grid.shape
        lk = lookup.meta.grid
        self.tf = crs_transform(lk.geo.epsg, self.geo.epsg)

        read = _LookupRead(lookup, ("azimuthCoord", "rangeCoord"))
        self.inverse = InverseLookup(read, lk.shape, opts.max_memory)
        hi = np.array([0.0, 0.0])
        for block in plan_blocks(lk.shape, 32, opts.max_memory):
            a, r = read(block)
            if np.isfinite(a).any():
                hi = np.maximum(hi, [np.nanmax(a), np.nanmax(r)])
        length = int(lookup.meta.extra.get("RADAR_LENGTH", 0) or 0) or int(math.floor(hi[0])) + 1
        width = int(lookup.meta.extra.get("RADAR_WIDTH", 0) or 0) or int(math.floor(hi[1])) + 1
        self.out_grid = Grid(length, width)

    def coords(self, block: Block) -> Coords:
        rows = np.arange(block.row_start, block.row_stop, dtype=np.float64)
        cols = np.arange(block.col_start, block.col_stop, dtype=np.float64)
        c, r = np.meshgrid(cols, rows)
        li, lj = self.inverse.solve(r, c)
        g = self.lookup.meta.grid.geo
        lat = g.y_first + (li + 0.5) * g.y_step
        lon = g.x_first + (lj + 0.5) * g.x_step
        x, y = self.tf(lon, lat)
        rr, cc = geo_index(self.geo, x, y)
        return _inside(rr, cc, self.src_shape)


class GeoToGeo(_Mapping):
    """A geocoded grid → another coordinate system (a UTM grid → latitude/longitude, for KMZ and
    HDF-EOS5): each output pixel centre, transformed into the source CRS with GDAL's osr, reads the
    source there.  The output covers the source footprint with pixels of about the same size."""

    def __init__(self, data_meta: Metadata, opts: GeocodeOptions) -> None:
        g = data_meta.grid.geo
        self.geo = g
        self.src_shape = length, width = data_meta.grid.shape
        src_epsg, dst_epsg = g.epsg or 4326, opts.epsg or 4326
        self.tf = crs_transform(dst_epsg, src_epsg)
        fwd = crs_transform(src_epsg, dst_epsg)
        if opts.bbox is not None:
            bbox = opts.bbox
            if dst_epsg != 4326:
                s, n, w, e = bbox
                xs, ys = crs_transform(4326, dst_epsg)(np.array([w, e, w, e]), np.array([s, s, n, n]))
                bbox = (ys.min(), ys.max(), xs.min(), xs.max())
        else:  # the footprint: the outline of the source grid (pixel corners), transformed
            t = np.linspace(0.0, 1.0, 65)
            rows = np.concatenate([t * length, np.full_like(t, length), t[::-1] * length, np.zeros_like(t)])
            cols = np.concatenate([np.zeros_like(t), t * width, np.full_like(t, width), t[::-1] * width])
            xs, ys = fwd(g.x_first + cols * g.x_step, g.y_first + rows * g.y_step)
            bbox = (np.nanmin(ys), np.nanmax(ys), np.nanmin(xs), np.nanmax(xs))
        if opts.lalo_step is not None:
            step = opts.lalo_step
        else:  # one source pixel at the centre, in the output units
            cy, cx = g.y_first + length / 2 * g.y_step, g.x_first + width / 2 * g.x_step
            xs, ys = fwd(np.array([cx, cx + g.x_step, cx]), np.array([cy, cy, cy + g.y_step]))
            step = (abs(ys[2] - ys[0]), abs(xs[1] - xs[0]))
            if not (step[0] > 0 and step[1] > 0):
                raise InputError(f"cannot transform the grid of EPSG:{src_epsg} to EPSG:{dst_epsg}; give --lalo-step")
        self.out_grid = _grid_from(bbox, step, dst_epsg)

    def coords(self, block: Block) -> Coords:
        x, y = pixel_centres(self.out_grid.geo, block)
        x, y = self.tf(x, y)
        rows, cols = geo_index(self.geo, x, y)
        return _inside(rows, cols, self.src_shape)


def _inside(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> Coords:
    bad = ~((rows >= -0.5) & (rows <= shape[0] - 0.5) & (cols >= -0.5) & (cols <= shape[1] - 0.5))
    rows, cols = np.array(rows, np.float64), np.array(cols, np.float64)
    rows[bad], cols[bad] = np.nan, np.nan
    return rows, cols


# ------------------------------------------------------------------------- sampling
def source_window(coords: Coords, src_shape: tuple[int, int]) -> Block | None:
    """The source window holding the pixels ``coords`` need (one pixel of margin), or None: none."""
    rows, cols = coords
    ok = np.isfinite(rows) & np.isfinite(cols)
    if not ok.any():
        return None
    length, width = src_shape
    r, c = rows[ok], cols[ok]
    return Block(max(0, int(np.floor(r.min())) - 1), min(length, int(np.ceil(r.max())) + 2),
                 max(0, int(np.floor(c.min())) - 1), min(width, int(np.ceil(c.max())) + 2))


def sample_window(data: np.ndarray | None, win: Block | None, coords: Coords, method: str, fill: float,
                  dtype: np.dtype, lead: tuple[int, ...] = ()) -> np.ndarray:
    """Values at ``coords`` (nearest or bilinear) of ``data``, the source read in ``win``
    (:func:`source_window`; None when no coordinate is valid).

    Every layer is gathered with one flat index per pixel (``np.take`` along the pixels: half the
    time of indexing rows and columns), straight into the output; the pixels without a source take
    the fill value afterwards, so the output is written once instead of filled, then scattered into.
    """
    rows, cols = coords
    shape = rows.shape
    integer = np.dtype(dtype).kind in "biu"
    fill_value = (0 if not np.isfinite(fill) else fill) if integer else fill
    ok = np.isfinite(rows) & np.isfinite(cols)
    if win is None or data is None or not ok.any():
        return np.full(lead + shape, fill_value, dtype=dtype)
    every = bool(ok.all())
    r, c = (rows, cols) if every else (rows[ok], cols[ok])
    pos_r, pos_c = r - win.row_start, c - win.col_start
    flat = data.reshape((-1, win.shape[0] * win.shape[1]))
    if method == "nearest" or integer:
        ri = np.clip(np.floor(pos_r + 0.5).astype(np.intp), 0, win.shape[0] - 1)
        ci = np.clip(np.floor(pos_c + 0.5).astype(np.intp), 0, win.shape[1] - 1)
        ri *= win.shape[1]
        ri += ci
        index = ri.reshape(-1)
        if not every:  # the pixels without a source read any value, then take the fill value
            index = np.zeros(ok.size, np.intp)
            index[ok.reshape(-1)] = ri
        if flat.dtype == np.dtype(dtype):
            out = np.empty(lead + shape, dtype=dtype)
            np.take(flat, index, axis=1, out=out.reshape(flat.shape[0], -1))
        else:
            out = np.take(flat, index, axis=1).astype(dtype).reshape(lead + shape)
    else:  # all layers at once: one set of corner indices and weights
        values = _bilinear(flat, *_bilinear_setup(pos_r.reshape(-1), pos_c.reshape(-1), win.shape))
        if every:
            return values.astype(dtype, copy=False).reshape(lead + shape)
        out = np.empty(lead + shape, dtype=dtype)
        out.reshape(flat.shape[0], -1)[:, ok.reshape(-1)] = values.astype(dtype, copy=False)
    if not every:
        np.copyto(out, np.asarray(fill_value).astype(dtype), where=~ok)
    return out


def sample(read: Callable[[Block], np.ndarray], coords: Coords, src_shape: tuple[int, int], method: str,
           fill: float, dtype: np.dtype, lead: tuple[int, ...] = ()) -> np.ndarray:
    """Values of the source at ``coords`` (nearest or bilinear), reading only the window they need."""
    win = source_window(coords, src_shape)
    return sample_window(read(win) if win is not None else None, win, coords, method, fill, dtype, lead)


@dataclass(frozen=True)
class _Layer:
    """How one dataset is resampled: its name, interpolation, fill value, output dtype and leading shape."""

    name: str
    method: str
    fill: float
    dtype: np.dtype
    lead: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class SampleTask:
    """One output block and the source (row, col) of its pixels: a picklable work item of
    :func:`~sbts.core.compute.scheduling.run_blocks` (the coordinates travel with it)."""

    block: Block
    rows: np.ndarray
    cols: np.ndarray


def _read_sources(product: Product, names: tuple[str, ...], src_shape: tuple[int, int],
                  task: SampleTask) -> tuple[Block | None, dict[str, np.ndarray]]:
    """The source window of ``task`` and every dataset read there (the I/O of a block)."""
    win = source_window((task.rows, task.cols), src_shape)
    if win is None:
        return None, {}
    return win, {name: product.read(name, win) for name in names}


def _sample_block(layers: tuple[_Layer, ...], task: SampleTask,
                  inputs: tuple[Block | None, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Every dataset of ``task``'s output block, sampled from the windows read (the numbers of a block)."""
    win, data = inputs
    coords = (task.rows, task.cols)
    return {la.name: sample_window(data.get(la.name), win, coords, la.method, la.fill, la.dtype, la.lead)
            for la in layers}


# ------------------------------------------------------------------------- files
def _scene_utm(lookup: Lookup) -> int:
    length, width = lookup.meta.grid.shape
    if lookup.kind == "latlon":
        la, lo = lookup.read2(("latitude", "longitude"), Block(length // 2, length // 2 + 1, width // 2, width // 2 + 1))
        lat, lon = float(la[0, 0]), float(lo[0, 0])
    else:
        lat, lon = lookup.meta.grid.geo.yx_to_lalo(length / 2, width / 2)
    if not (np.isfinite(lat) and np.isfinite(lon)):
        raise InputError(f"{lookup.path}: no position at the scene centre; give --epsg instead of --utm")
    return utm_epsg(lat, lon)


def _output_metadata(meta: Metadata, mapping: _Mapping, lookup: Lookup, geo2radar: bool, method: str) -> Metadata:
    ref = meta.reference
    extra = {k: v for k, v in meta.extra.items() if not k.startswith("SUBSET_") and k not in ("UTM_ZONE",)}
    out = meta.replace(grid=mapping.out_grid, extra=extra)
    if not geo2radar:
        geo = mapping.out_grid.geo
        lat, lon = ref.lat, ref.lon
        if (lat is None or lon is None) and ref.has_point and lookup.kind == "latlon":
            b = Block(ref.y, ref.y + 1, ref.x, ref.x + 1)
            la, lo = lookup.read2(("latitude", "longitude"), b)
            lat, lon = float(la[0, 0]), float(lo[0, 0])
        elif (lat is None or lon is None) and ref.has_point and isinstance(mapping, RdcToGeo):
            lat, lon = _geo_position_of(lookup, mapping, ref.y, ref.x)
        if lat is not None and lon is not None and np.isfinite(lat) and np.isfinite(lon):
            x, y = crs_transform(4326, geo.epsg)(np.array([lon]), np.array([lat]))
            row, col = geo_index(geo, x, y)
            y_i, x_i = int(np.floor(row[0] + 0.5)), int(np.floor(col[0] + 0.5))
            if ref.has_point:
                y_i, x_i = _pixel_fed_by(mapping, ref.y, ref.x, y_i, x_i)
            if 0 <= y_i < mapping.out_grid.length and 0 <= x_i < mapping.out_grid.width:
                out = out.with_reference(y=y_i, x=x_i, lat=lat, lon=lon)
            else:
                out = out.with_reference(y=None, x=None)
        elif ref.has_point:
            logger.warning("REF_LAT/REF_LON unknown: REF_Y/REF_X dropped from the geocoded file")
            out = out.with_reference(y=None, x=None)
    else:
        extra = {k: v for k, v in out.extra.items() if k != "EPSG"}
        out = out.replace(extra=extra)
        if ref.lat is not None and ref.lon is not None:
            y_i, x_i = _radar_pixel_of(lookup, ref.lat, ref.lon)
            out = out.with_reference(y=y_i, x=x_i)
        else:
            out = out.with_reference(y=None, x=None)
    return out.with_extra(**{"mintpy.geocode.interpMethod": method})


def _pixel_fed_by(mapping: _Mapping, y: int, x: int, y_i: int, x_i: int, radius: int = 3) -> tuple[int, int]:
    """The output pixel near (y_i, x_i) whose source position is nearest the reference pixel (y, x).

    The output pixel nearest to REF_LAT/REF_LON need not be the one resampling takes from the
    reference pixel (the two grids are not aligned); choosing the pixel fed by it keeps the
    geocoded reference pixel at zero, as in the radar-coded file.
    """
    length, width = mapping.out_grid.length, mapping.out_grid.width
    block = Block(max(0, y_i - radius), min(length, y_i + radius + 1), max(0, x_i - radius), min(width, x_i + radius + 1))
    if block.row_start >= block.row_stop or block.col_start >= block.col_stop:
        return y_i, x_i
    rows, cols = (np.asarray(a, dtype=np.float64) for a in mapping.coords(block))
    d = (rows - y) ** 2 + (cols - x) ** 2
    # the pixels nearest-neighbour sampling (as in `sample`) fills from (y, x); else the nearest one
    fed = (np.floor(rows + 0.5) == y) & (np.floor(cols + 0.5) == x)
    d = np.where(fed, d, np.inf) if fed.any() else d
    if not np.isfinite(d).any():
        return y_i, x_i
    k = int(np.argmin(np.where(np.isfinite(d), d, np.inf)))
    if d.flat[k] > 1.0:  # the reference pixel feeds no output pixel nearby (coarser output grid)
        return y_i, x_i
    return block.row_start + k // block.shape[1], block.col_start + k % block.shape[1]


def _geo_position_of(lookup: Lookup, mapping: RdcToGeo, y: int, x: int) -> tuple[float | None, float | None]:
    """Latitude/longitude (lookup grid units) of radar pixel (y, x): the centre of the lookup pixel
    whose azimuth/range coordinates come nearest to it, searched block by block (GAMMA, ROI_PAC)."""
    y0, sy, x0, sx = mapping.offsets
    az, rg = y0 + y * sy + (sy - 1) / 2, x0 + x * sx + (sx - 1) / 2
    best, where = np.inf, None
    for block in plan_blocks(lookup.meta.grid.shape, 32, 0.25):
        a, r = lookup.read2(("azimuthCoord", "rangeCoord"), block)
        d = (a - az) ** 2 + (r - rg) ** 2
        if np.isfinite(d).any():
            k = int(np.nanargmin(d))
            if d.flat[k] < best:
                best = d.flat[k]
                where = (block.row_start + k // block.shape[1], block.col_start + k % block.shape[1])
    if where is None or best > 2.0:  # the pixel is not covered by the lookup table
        return None, None
    g = lookup.meta.grid.geo
    northing, easting = g.yx_to_lalo(*where)
    lon, lat = crs_transform(g.epsg or 4326, 4326)(np.array([easting]), np.array([northing]))
    return float(lat[0]), float(lon[0])


def _radar_pixel_of(lookup: Lookup, lat: float, lon: float) -> tuple[int | None, int | None]:
    if lookup.kind == "latlon":
        best, where = np.inf, (None, None)
        for block in plan_blocks(lookup.meta.grid.shape, 32, 0.25):
            la, lo = lookup.read2(("latitude", "longitude"), block)
            d = (la - lat) ** 2 + ((lo - lon) * math.cos(math.radians(lat))) ** 2
            if np.isfinite(d).any():
                k = int(np.nanargmin(d))
                if d.flat[k] < best:
                    best = d.flat[k]
                    where = (block.row_start + k // block.shape[1], block.col_start + k % block.shape[1])
        return where
    g = lookup.meta.grid.geo
    i, j = g.lalo_to_yx(lat, lon)
    if not (0 <= i < lookup.meta.grid.length and 0 <= j < lookup.meta.grid.width):
        return None, None
    a, r = lookup.read2(("azimuthCoord", "rangeCoord"), Block(i, i + 1, j, j + 1))
    if not np.isfinite(a[0, 0]):
        return None, None
    return int(round(a[0, 0])), int(round(r[0, 0]))


def geocode_file(path: str | os.PathLike, lookup_file: str | os.PathLike | None = None,
                 out_file: str | os.PathLike | None = None, geo2radar: bool = False,
                 options: GeocodeOptions | None = None, mappings: dict | None = None, num_worker: int = 1,
                 cluster: str | None = None) -> Path:
    """Resample every 2-D layer of every dataset of ``path``; returns the output file.

    Default output: ``geo/geo_<name>.h5`` beside the input (radar→geo) or ``rdr_<name>.h5``
    (geo→radar), MintPy's names.  ``mappings`` (a dict the caller keeps between files) reuses the
    mapping, and the source coordinates of every output pixel it holds, for the next file on the
    same grid with the same lookup: they are computed once for all the files of a run.  The output
    blocks are sampled here, in a pool of ``num_worker`` processes or on dask (``cluster``: ``"local"``
    or a scheduler address) from coordinates solved here, with identical results.
    """
    opts = options or GeocodeOptions()
    if opts.method not in METHODS:
        raise InputError(f"interpolation {opts.method!r}: use one of {', '.join(METHODS)}")
    path = Path(path)
    product = Product.open(path)
    meta = product.metadata
    if not geo2radar and meta.grid.is_geocoded and opts.epsg is not None \
            and int(opts.epsg) != int(meta.grid.geo.epsg or 4326):
        return _warp_file(product, out_file, opts, num_worker, cluster)
    lookup = Lookup.open(lookup_file or find_lookup(path, geo2radar))
    if opts.utm and not geo2radar:
        import dataclasses

        opts = dataclasses.replace(opts, epsg=_scene_utm(lookup), utm=False)
    if geo2radar and not meta.grid.is_geocoded:
        raise InputError(f"{path} is already in radar coordinates (no Y_FIRST): nothing to do with --geo2radar")
    if not geo2radar:
        if meta.grid.is_geocoded:
            raise InputError(f"{path} is already geocoded (it has Y_FIRST); use --geo2radar to go back")
        if lookup.kind == "latlon" and lookup.meta.grid.shape != meta.grid.shape:
            raise InputError(f"{path} is {meta.grid.shape} but the lookup {lookup.path} is "
                             f"{lookup.meta.grid.shape}: they must share the radar grid")
    # what the mapping depends on: the lookup, the direction, the data's grid, looks and subset, the options
    key = (str(Path(lookup.path).resolve()), geo2radar, repr(meta.grid), meta.radar.alooks, meta.radar.rlooks,
           meta.extra.get("SUBSET_YMIN"), meta.extra.get("SUBSET_XMIN"), repr(opts))
    mapping = mappings.get(key) if mappings is not None else None
    if mapping is None:
        if geo2radar:
            mapping = (GeoToLatLonRadar(lookup, meta) if lookup.kind == "latlon"
                       else GeoToRdcRadar(lookup, meta, opts))
        else:
            mapping = LatLonToGeo(lookup, opts) if lookup.kind == "latlon" else RdcToGeo(lookup, meta, opts)
        if mappings is not None:
            mappings[key] = mapping
    if out_file is None:
        out_file = (path.parent / f"rdr_{path.name}" if geo2radar else path.parent / "geo" / f"geo_{path.name}")
    out_file = Path(out_file)
    if out_file.resolve() == path.resolve():
        raise InputError(f"{out_file}: the output would overwrite the input")
    out_meta = _output_metadata(meta, mapping, lookup, geo2radar, opts.method)
    _write(product, mapping, out_meta, out_file, opts, num_worker, cluster)
    logger.info("wrote %s (%d×%d)", out_file, *mapping.out_grid.shape)
    return out_file


def _warp_file(product: Product, out_file: str | os.PathLike | None, opts: GeocodeOptions, num_worker: int = 1,
               cluster: str | None = None) -> Path:
    """A geocoded file on one coordinate system resampled onto another (:class:`GeoToGeo`)."""
    path, meta = product.path, product.metadata
    mapping = GeoToGeo(meta, opts)
    out_file = Path(out_file) if out_file is not None else path.parent / "geo" / f"geo_{path.name}"
    if out_file.resolve() == Path(path).resolve():
        raise InputError(f"{out_file}: the output would overwrite the input")
    extra = {k: v for k, v in meta.extra.items() if not k.startswith("SUBSET_") and k != "UTM_ZONE"}
    out = meta.replace(grid=mapping.out_grid, extra=extra)
    ref = meta.reference
    out = out.with_reference(y=None, x=None, lat=None, lon=None)
    if ref.has_point:  # the reference pixel's centre, in the output coordinates
        cy, cx = meta.grid.geo.yx_to_lalo(ref.y, ref.x)
        x, y = crs_transform(meta.grid.geo.epsg or 4326, mapping.out_grid.geo.epsg)(np.array([cx]), np.array([cy]))
        row, col = geo_index(mapping.out_grid.geo, x, y)
        y_i, x_i = int(np.floor(row[0] + 0.5)), int(np.floor(col[0] + 0.5))
        if 0 <= y_i < mapping.out_grid.length and 0 <= x_i < mapping.out_grid.width:
            out = out.with_reference(y=y_i, x=x_i, lat=float(y[0]), lon=float(x[0]))
    out = out.with_extra(**{"mintpy.geocode.interpMethod": opts.method})
    _write(product, mapping, out, out_file, opts, num_worker, cluster)
    logger.info("wrote %s (%d×%d, EPSG:%s)", out_file, *mapping.out_grid.shape, mapping.out_grid.geo.epsg)
    return out_file


def _write(product: Product, mapping: _Mapping, meta: Metadata, out_file: Path, opts: GeocodeOptions,
           num_worker: int = 1, cluster: str | None = None) -> None:
    """Resample ``product`` into ``out_file``.

    The source coordinates are solved in blocks of a fixed partition (:func:`_coord_blocks`: set by
    the budget, not by the workers, since a point's Newton start depends on its block), so every
    way gives the same bits.  When the coordinates of every output pixel fit in a quarter of the
    budget they are solved once (:func:`_all_coords`, kept for the other files of the grid) and the
    output blocks (the rest of the budget shared by the workers) are sampled from them, here, in a
    pool of ``num_worker`` processes or on dask (``cluster``).  Otherwise each coordinate block is
    a task that solves its coordinates and samples its pixels where it runs
    (:func:`_solve_and_sample`), as many at once as the budget holds."""
    src_shape = product.shape
    out_shape = mapping.out_grid.shape
    names = list(product.datasets)
    spatial = {n: len(product.dataset_shape(n)) >= 2 and tuple(product.dataset_shape(n)[-2:]) == src_shape
               for n in names}
    layers = sum(int(np.prod(product.dataset_shape(n)[:-2] or (1,))) for n in names if spatial[n])
    # coordinates + output and source windows of every layer, and the next block's source read ahead
    per_pixel = 8 * 4 + 8 * 4 * max(1, layers)
    every = _all_coords(mapping, opts.max_memory, num_worker, cluster) if any(spatial.values()) else None
    with open_h5(product.path) as src, H5Writer(out_file, meta) as w:
        specs = []
        for name in names:
            ds = src[name]
            attrs = {k: v for k, v in ds.attrs.items() if k != "MODIFICATION_TIME"}
            if not spatial[name]:
                w.create(name, data=ds[()], attrs=attrs)
                continue
            dtype = np.dtype(ds.dtype if ds.dtype.kind in "biuf" else np.float32)
            specs.append(_Layer(name, "nearest" if name in NEAREST_ONLY else opts.method, opts.fill, dtype,
                                tuple(product.dataset_shape(name)[:-2])))
            w.create(name, shape=tuple(ds.shape[:-2]) + out_shape, dtype=dtype, attrs=attrs,
                     compression=ds.compression)
        if not specs:
            return
        read = functools.partial(_read_sources, product, tuple(s.name for s in specs), src_shape)
        compute = functools.partial(_sample_block, tuple(specs))
        if every is not None:
            rows, cols = every
            blocks = plan_blocks(out_shape, per_pixel, memory_per_task(opts.max_memory * 0.75, num_worker, cluster))
            tasks = [SampleTask(b, rows[b.slices], cols[b.slices]) for b in blocks]
            del rows, cols
            logger.info("geocode %s: %d block(s)%s", product.path.name, len(tasks), describe(num_worker, cluster))
            results = run_blocks(tasks, read, compute, workers=num_worker, cluster=cluster)
        else:
            tasks = _coord_blocks(out_shape, opts.max_memory)
            quarter = _coord_block_bytes(opts.max_memory)
            biggest = max(b.shape[0] * b.shape[1] for b in tasks)
            out_bytes = sum(int(np.prod(la.lead or (1,))) * la.dtype.itemsize for la in specs)
            # the coordinate solve's work; then the coordinates and outputs kept, and one sample block
            per_task = max(biggest * _COORD_BYTES_PER_PIXEL, biggest * (16 + out_bytes) + quarter)
            workers = workers_within(opts.max_memory, per_task, num_worker, cluster, len(tasks))
            logger.info("geocode %s: the coordinates of the %d×%d output pixels exceed a quarter of the budget: "
                        "%d block(s) each solving its coordinates and sampling its pixels%s", product.path.name,
                        *out_shape, len(tasks), describe(workers, cluster))
            results = run_blocks(tasks, _no_inputs, functools.partial(
                _solve_and_sample, mapping, read, compute, per_pixel, quarter / 1024**3), workers=workers,
                cluster=cluster)
        for task, values in progress(results, f"geocode {product.path.name}", "block", total=len(tasks)):
            for name, out in values.items():
                w.write(name, out, task.block if isinstance(task, SampleTask) else task)


def _solve_and_sample(mapping: _Mapping, read, compute, per_pixel: float, budget: float, block: Block,
                      _inputs: None) -> dict[str, np.ndarray]:
    """A task of the coordinates over a quarter of the budget: the source coordinates of ``block``
    (one of :func:`_coord_blocks`), then its pixels sampled in sub-blocks of ``budget`` GB (sampling
    is per pixel: the same values whatever the sub-blocks); every dataset of the block."""
    rows, cols = mapping.coords(block)
    out: dict[str, np.ndarray] = {}
    for sub in plan_blocks(block.shape, per_pixel, budget):
        task = SampleTask(Block(sub.row_start + block.row_start, sub.row_stop + block.row_start,
                                sub.col_start + block.col_start, sub.col_stop + block.col_start),
                          rows[sub.slices], cols[sub.slices])
        for name, values in compute(task, read(task)).items():
            if name not in out:
                out[name] = np.empty(values.shape[:-2] + block.shape, values.dtype)
            out[name][..., sub.rows, sub.cols] = values
    return out


#: most bytes of work (224 B an output pixel) in one block of the coordinate solve, ~300 000 output
#: pixels: the blocks are the same whatever the workers (a point's Newton start depends on its
#: block), so the coordinates are the same bits here, in the pool and on dask
_COORD_BLOCK_BYTES = 64 * 1024**2
_COORD_BYTES_PER_PIXEL = 224


def _all_coords(mapping: _Mapping, max_memory: float, num_worker: int = 1, cluster: str | None = None) -> Coords | None:
    """The source (row, col) of every output pixel, computed once per mapping and kept on it when the
    two float64 maps take at most a quarter of the budget (else None: computed per block).

    The blocks (at most :data:`_COORD_BLOCK_BYTES` of work each, and a quarter of the budget) are
    solved here, in the pool (as many at once as half the budget holds) or on dask: the mapping goes
    to the workers with each block (the inverse lookup's KD-tree: ~12 MB).
    """
    cached = getattr(mapping, "_every", None)
    if cached is None:
        length, width = mapping.out_grid.shape
        if 16 * length * width > max_memory * 1024**3 / 4:
            cached = False
        else:
            rows, cols = np.empty((length, width)), np.empty((length, width))
            # the Newton solve holds ~28 float64 values per output pixel: the six rasters' bilinear
            # values and one corner gathered (12), the corner indices and weights (8), position,
            # step, targets and first guesses (8)
            blocks = _coord_blocks((length, width), max_memory)
            biggest = max(b.shape[0] * b.shape[1] for b in blocks) * _COORD_BYTES_PER_PIXEL
            workers = workers_within(max_memory / 2, biggest, num_worker, cluster, len(blocks))
            logger.info("geocode: the source coordinates of %d×%d output pixels, %d block(s)%s", length, width,
                        len(blocks), describe(workers, cluster))
            results = run_blocks(blocks, _no_inputs, functools.partial(_coords_block, mapping),
                                 workers=workers, cluster=cluster)
            for block, (r, c) in progress(results, "geocode: coordinates", "block", total=len(blocks)):
                rows[block.slices], cols[block.slices] = r, c
            cached = (rows, cols)
        mapping._every = cached  # type: ignore[attr-defined]
    return cached or None


def _coord_block_bytes(max_memory: float) -> float:
    """The most work (bytes) in one block of the coordinate solve: :data:`_COORD_BLOCK_BYTES`, and a
    quarter of the budget."""
    return min(max_memory * 1024**3 / 4, _COORD_BLOCK_BYTES)


def _coord_blocks(shape: tuple[int, int], max_memory: float) -> list[Block]:
    """The blocks the source coordinates are solved in (:func:`_coord_block_bytes` of work each),
    the same whatever the workers."""
    return plan_blocks(shape, _COORD_BYTES_PER_PIXEL, _coord_block_bytes(max_memory) / 1024**3)


def _no_inputs(_block: Block) -> None:
    """The read of a coordinate block: the mapping reads the lookup window it needs itself."""
    return None


def _coords_block(mapping: _Mapping, block: Block, _inputs: None) -> Coords:
    """The source (row, col) of the output pixels of ``block`` (a task of :func:`_all_coords`)."""
    return mapping.coords(block)


def geocode_files(paths: Sequence[str | os.PathLike], lookup_file=None, out_dir=None, geo2radar=False,
                  options: GeocodeOptions | None = None, num_worker: int = 1,
                  cluster: str | None = None) -> list[Path]:
    """:func:`geocode_file` for several files, into ``out_dir`` when given; files on one grid share
    their mapping (the coordinates are computed once); the blocks run here, in a pool of
    ``num_worker`` processes or on dask (``cluster``)."""
    mappings: dict = {}
    outputs = []
    for p in paths:
        p = Path(p)
        out = None
        if out_dir is not None:
            out = Path(out_dir) / (f"rdr_{p.name}" if geo2radar else f"geo_{p.name}")
        outputs.append(geocode_file(p, lookup_file, out, geo2radar, options, mappings=mappings,
                                    num_worker=num_worker, cluster=cluster))
    return outputs


def is_geocoded(path: str | os.PathLike) -> bool:
    return read_metadata(path).grid.is_geocoded


__all__ = ["GeocodeOptions", "Lookup", "InverseLookup", "geocode_file", "geocode_files", "find_lookup",
           "crs_transform", "utm_epsg", "sample", "sample_window", "source_window", "SampleTask"]
