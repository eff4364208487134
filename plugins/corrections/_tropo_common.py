"""Helpers shared by the geometry-dependent corrections (troposphere, DEM error, LOD).

Geometry: layers come from the geometry file (``inputs/geometryRadar.h5`` / ``geometryGeo.h5``); where a
layer is absent, a scalar attribute stands in for it (``INCIDENCE_ANGLE``, ``SLANT_RANGE_DISTANCE`` ...,
from the time series, the geometry file or an UPPER_CASE template key), because SNAP/GMTSAR products
give only scene values.  Nothing else is guessed: a layer that has neither stops with an
:class:`InputError` naming the layer, the file and the attributes that would do.

Absolute delays (``inputs/ERA5.h5``, ``inputs/GACOS.h5``) are stored un-referenced, in displacement
sign (metres, positive toward the satellite, so a delay — a range increase — is negative), and are
removed the way MintPy's ``diff.py`` does: re-referenced in space to ``REF_Y/REF_X`` and in time to
``REF_DATE`` of the time series, then subtracted.  Dates without a delay stay uncorrected.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Block,
    CorrectionContext,
    DataError,
    Geometry,
    InputError,
    TimeSeries,
    TimeSeriesWriter,
    pixel_bytes,
    plan_blocks_for,
    progress,
    run_blocks,
    workers_within,
)

logger = logging.getLogger(__name__)

# layer → scalar attributes accepted in its place (first found wins)
SCALAR_FALLBACKS = {
    "incidenceAngle": ("INCIDENCE_ANGLE", "CENTER_INCIDENCE_ANGLE"),
    "slantRangeDistance": ("SLANT_RANGE_DISTANCE",),
    "height": (),
    "latitude": (),
    "longitude": (),
}


def resolve_path(value: str, work_dir: Path) -> Path:
    path = Path(os.path.expanduser(os.path.expandvars(value)))
    return path if path.is_absolute() else work_dir / path


def provenance(context: CorrectionContext, prefix: str, keys: Sequence[str] | None = None) -> dict[str, str]:
    """Resolved values of the template keys under ``prefix`` (written into the outputs' attributes)."""
    section = context.template.section(prefix)
    if keys is not None:
        section = {k: v for k, v in section.items() if k in keys}
    return section


_HASH_BLOCK_BYTES = 64 << 20  # rows of a geometry layer hashed at once
_CONTENT_IDS: dict[tuple, str] = {}  # geometry_content_id by (file, inode, times, size)


def geometry_content_id(path: str | os.PathLike) -> str:
    """sha256 of a geometry file's 2-D layers (name, dtype, shape, values) and of its attributes
    other than sbts's bookkeeping (see :meth:`GeometryAccess.content_id`).  Read by row blocks of
    ``_HASH_BLOCK_BYTES`` (the digest is that of whole layers) and remembered per file version, so
    the corrections of one run hash a geometry once."""
    import h5py

    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
    if key in _CONTENT_IDS:
        return _CONTENT_IDS[key]
    h = hashlib.sha256()
    with h5py.File(path, "r") as f:
        for name in sorted(f):
            obj = f[name]
            if isinstance(obj, h5py.Dataset) and obj.ndim == 2:
                h.update(f"{name}|{obj.dtype.str}|{obj.shape}".encode())
                rows = max(1, _HASH_BLOCK_BYTES // max(1, obj.shape[1] * obj.dtype.itemsize))
                for start in range(0, obj.shape[0], rows):
                    h.update(np.ascontiguousarray(obj[start:start + rows]).tobytes())
        attrs = {k: str(v) for k, v in f.attrs.items() if not k.startswith("SBTS_")}
    h.update(json.dumps(attrs, sort_keys=True).encode())
    _CONTENT_IDS[key] = h.hexdigest()
    return _CONTENT_IDS[key]


class GeometryAccess:
    """Block-wise access to the geometry layers of a time series, with the scalar fallbacks."""

    def __init__(self, context: CorrectionContext, ts: TimeSeries) -> None:
        self.ts = ts
        self.context = context
        self._warned: set[str] = set()
        self.path = context.geometry_file
        self.geometry: Geometry | None = None
        if self.path is not None:
            if not Path(self.path).exists():
                raise InputError(f"{self.path}: geometry file not found (give an existing one with -g)")
            self.geometry = Geometry(self.path)
            if self.geometry.shape != ts.shape:
                raise InputError(f"{self.path}: geometry is {self.geometry.shape[0]}×{self.geometry.shape[1]} but "
                                 f"{ts.path} is {ts.shape[0]}×{ts.shape[1]}; use the geometry of the same grid")

    # ------------------------------------------------------------------ lookup
    def has_layer(self, name: str) -> bool:
        return self.geometry is not None and self.geometry.has(name) and len(self.geometry.dataset_shape(name)) == 2

    def scalar(self, name: str) -> tuple[float, str] | None:
        """The scalar fallback of layer ``name`` and the attribute it came from."""
        sources = [self.ts.metadata]
        if self.geometry is not None:
            sources.append(self.geometry.metadata)
        overrides = self.context.template.metadata_overrides()
        for key in SCALAR_FALLBACKS.get(name, ()):
            for meta in sources:
                value = meta.to_attrs().get(key)
                if value not in (None, "", "None", "nan"):
                    try:
                        return float(value), key
                    except ValueError:
                        raise InputError(f"{meta.extra.get('FILE_PATH', self.ts.path)}: {key} = {value!r} "
                                         "is not a number") from None
            if key in overrides:
                try:
                    return float(overrides[key]), key
                except ValueError:
                    raise InputError(f"template: {key} = {overrides[key]!r} is not a number") from None
        return self._swath_centre(name, sources)

    def _swath_centre(self, name: str, sources) -> tuple[float, str] | None:
        """Last resort, as MintPy's dem_error.py: the centre of the range swath from STARTING_RANGE,
        RANGE_PIXEL_SIZE and WIDTH (and its incidence from EARTH_RADIUS/HEIGHT).  Exact at the centre
        of a radar-coded image; for a geocoded one WIDTH counts map columns, so it is an estimate
        (MintPy's geocoded GAMMA and ROI_PAC stacks carry nothing better)."""
        if name not in ("slantRangeDistance", "incidenceAngle"):
            return None
        for meta in sources:
            r = meta.radar
            if r.starting_range is None or r.range_pixel_size is None:
                continue
            centre = r.starting_range + r.range_pixel_size * (meta.grid.width - 1) / 2.0
            how = "STARTING_RANGE + RANGE_PIXEL_SIZE·(WIDTH−1)/2"
            if name == "slantRangeDistance":
                value = centre
            elif r.earth_radius is not None and r.height is not None:
                re_, rs = r.earth_radius, r.earth_radius + r.height
                cos_inc = (rs ** 2 - re_ ** 2 - centre ** 2) / (2.0 * re_ * centre)
                value = float(np.degrees(np.arccos(np.clip(cos_inc, -1.0, 1.0))))
                how += " with EARTH_RADIUS/HEIGHT"
            else:
                continue
            if meta.grid.is_geocoded and name not in self._warned:
                self._warned.add(name)
                logger.warning("%s: no %s layer nor %s attribute; using %.6g from %s (an estimate on a geocoded "
                               "grid, as MintPy does)", self.ts.path.name, name,
                               " / ".join(SCALAR_FALLBACKS[name]), value, how)
            return value, how
        return None

    def content_id(self) -> str:
        """What the geometry holds, by content: a digest of its 2-D layers and of the attributes the
        delays read (grid, corners, acquisition).  The per-date delay files (``SET.h5``, the weather
        models', ``TEC*.h5``) key their kept dates on it, so a geometry written again with the same
        values (a reload after new acquisitions, ``--force``) keeps them; '' without a geometry file."""
        if self.geometry is None or self.path is None:
            return ""
        return geometry_content_id(self.path)

    def _corners(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(lat, lon) of the four corners, MintPy's order (first line near, first line far, last line
        near, last line far), from the time series or the geometry attributes; None if incomplete."""
        sources = [self.ts.metadata] + ([self.geometry.metadata] if self.geometry is not None else [])
        for meta in sources:
            attrs = meta.to_attrs()
            try:
                lat = np.array([float(attrs[f"LAT_REF{i}"]) for i in range(1, 5)])
                lon = np.array([float(attrs[f"LON_REF{i}"]) for i in range(1, 5)])
            except (KeyError, TypeError, ValueError):
                continue
            if np.isfinite(lat).all() and np.isfinite(lon).all() and (np.abs(lat) <= 90).all():
                return lat, lon
        return None

    def available(self, name: str) -> bool:
        return self.has_layer(name) or self.scalar(name) is not None

    def missing_error(self, name: str, purpose: str) -> InputError:
        where = (f"the geometry file {self.path} has no {name!r} layer" if self.path is not None else
                 f"no geometry file was found (expected {name!r} in inputs/geometryRadar.h5 or "
                 f"inputs/geometryGeo.h5 of {self.context.work_dir}; give one with -g)")
        attrs = SCALAR_FALLBACKS.get(name, ())
        fallback = (f", and neither {self.ts.path} nor the geometry has the scalar attribute "
                    f"{' / '.join(attrs)} to use instead (set e.g. {attrs[0]} = ... in the template)"
                    if attrs else "")
        return InputError(f"{name!r} is needed for {purpose} but {where}{fallback}")

    def read(self, name: str, block: Block | None, purpose: str) -> np.ndarray:
        """Layer ``name`` over ``block`` as float64 (a scalar fallback broadcast to the block)."""
        shape = block.shape if block is not None else self.ts.shape
        if self.has_layer(name):
            return np.asarray(self.geometry.read(name, block), np.float64)
        found = self.scalar(name)
        if found is None:
            raise self.missing_error(name, purpose)
        return np.full(shape, found[0], np.float64)

    def describe(self, name: str) -> str:
        if self.has_layer(name):
            return f"{name} of {Path(self.path).name}"
        found = self.scalar(name)
        return f"{found[1]} = {found[0]:g}" if found else "missing"

    def lat_lon(self, block: Block | None, purpose: str) -> tuple[np.ndarray, np.ndarray]:
        """Latitude/longitude (deg) of the pixel centres: geometry layers, else the geocoded grid,
        else (radar coordinates) the four corners LAT_REF1..4/LON_REF1..4 interpolated as MintPy does."""
        if self.has_layer("latitude") and self.has_layer("longitude"):
            return (np.asarray(self.geometry.read("latitude", block), np.float64),
                    np.asarray(self.geometry.read("longitude", block), np.float64))
        geo = self.ts.metadata.grid.geo or (self.geometry.metadata.grid.geo if self.geometry is not None else None)
        b = block or Block(0, self.ts.shape[0], 0, self.ts.shape[1])
        if geo is None:
            corners = self._corners()
            if corners is None:
                raise InputError(
                    f"latitude/longitude are needed for {purpose}: {self.ts.path} is in radar coordinates and "
                    + (f"the geometry file {self.path} has no 'latitude'/'longitude' layers"
                       if self.path is not None else "no geometry file was found (give one with -g)")
                    + ", and it has no corner coordinates LAT_REF1..4/LON_REF1..4 either")
            if "corners" not in self._warned:
                self._warned.add("corners")
                logger.info("%s: no latitude/longitude layers; for %s, the four corners LAT_REF1..4/LON_REF1..4 "
                            "interpolated over the radar grid give them (as MintPy does)", self.ts.path.name, purpose)
            return radar_corner_lat_lon(corners, self.ts.shape, b)
        rows = np.arange(b.row_start, b.row_stop) + 0.5
        cols = np.arange(b.col_start, b.col_stop) + 0.5
        y = geo.y_first + rows * geo.y_step
        x = geo.x_first + cols * geo.x_step
        xx, yy = np.meshgrid(x, y)
        if geo.x_unit.lower().startswith("deg") or geo.epsg == 4326:
            return yy, xx
        if geo.epsg is None:
            raise InputError(f"{self.ts.path}: the grid is projected ({geo.x_unit}) but has no EPSG attribute; "
                             f"cannot compute latitude/longitude for {purpose}")
        from pyproj import Transformer

        t = Transformer.from_crs(geo.epsg, 4326, always_xy=True)
        lon, lat = t.transform(xx, yy)
        return np.asarray(lat), np.asarray(lon)


def radar_corner_lat_lon(corners: tuple[np.ndarray, np.ndarray], shape: tuple[int, int], block: Block
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Latitude/longitude of the pixels of ``block`` of a radar grid of ``shape``, bilinear between
    the four corner pixels (first line near and far range, last line near and far range).

    Radar geometry is not bilinear in lat/lon (the swath is curved, and the relief moves a pixel by
    its height · cot(incidence)), so this is a coarse position, within the scene's corners: what
    MintPy uses too, for quantities that vary over tens of kilometres (solid Earth tides on a 0.1°
    grid, weather-model and ionospheric delays).  A lookup table with latitude/longitude layers
    gives the exact positions."""
    lat, lon = corners
    length, width = shape
    v = (np.arange(block.row_start, block.row_stop) / max(length - 1, 1))[:, None]
    u = (np.arange(block.col_start, block.col_stop) / max(width - 1, 1))[None, :]

    def interpolate(c: np.ndarray) -> np.ndarray:
        return (1 - v) * ((1 - u) * c[0] + u * c[1]) + v * ((1 - u) * c[2] + u * c[3])

    return interpolate(lat), interpolate(lon)


# ---------------------------------------------------------------------------- references
def reference_date_index(ts: TimeSeries) -> int:
    """Index of REF_DATE (the first date when the file has none: an inverted series starts at 0)."""
    ref = ts.metadata.reference.date
    if ref is not None and ref in ts.dates:
        return ts.dates.index(ref)
    if ref is not None:
        logger.warning("%s: REF_DATE %s is not one of its dates; using the first date", ts.path, ref)
    return 0


def reference_pixel(ts: TimeSeries) -> tuple[int, int] | None:
    ref = ts.metadata.reference
    if ref.has_point and 0 <= ref.y < ts.shape[0] and 0 <= ref.x < ts.shape[1]:
        return ref.y, ref.x
    if ref.has_point:
        logger.warning("REF_Y/REF_X = %s/%s is outside the %d×%d image: no spatial re-referencing", ref.y, ref.x,
                       *ts.shape)
    else:
        logger.warning("%s has no REF_Y/REF_X: the correction is not re-referenced in space", ts.path)
    return None


# ---------------------------------------------------------------------------- delay files
def _no_read(_date: int) -> None:
    return None


def _delay_map(compute: Callable[[int], np.ndarray], date: int, _inputs: None) -> np.ndarray:
    return np.asarray(compute(date), np.float32)


def write_delay_file(path: Path, ts: TimeSeries, date_index: Sequence[int], compute: Callable[[int], np.ndarray],
                     extra: dict[str, str], base: str | None = None,
                     keys: dict[int, str] | None = None, *, workers: int = 1, cluster: str | None = None,
                     max_memory: float | None = None, bytes_per_pixel: float = 0.0, what: str = "delays") -> Path:
    """Write absolute delays (displacement sign, m) for the dates ``date_index`` of ``ts``.

    ``compute(i)`` returns the 2-D map of date ``ts.dates[i]``.  The dates are independent, so they are
    computed by the run's ``workers`` (the pool, or dask with ``cluster``; ``compute`` must then be
    picklable and light: :func:`~sbts.core.api.task_arrays` for its image-sized inputs), in any order, and each map
    is written to its own layer as it comes; the file is the same whoever computed it.  A date's map is
    computed whole (the weather model is read and interpolated once a date): with ``max_memory`` (GB)
    and ``bytes_per_pixel`` (what one task holds), fewer dates run at once in the pool when the budget
    does not hold ``workers`` of them (on dask, its workers' memory limits rule).  No REF_* attributes: the file is absolute.

    New acquisitions: with ``base`` (the signature of what every date shares — model, geometry,
    grid) and ``keys`` (per date index, what that date's delay comes from — its weather file, size
    and time), a date whose key is in the existing file at ``path``, written with the same base, is
    copied from it instead of computed: appending an acquisition computes one date, not all.
    """
    reuse = reusable_layers(path, ts, base, keys) if base is not None and keys is not None else {}
    if base is not None and keys is not None:
        extra = {**extra, **delay_key_attrs(base, keys, date_index)}
    meta = ts.metadata.replace(reference=type(ts.metadata.reference)()).with_extra(**extra)
    dates = [ts.date_strings[i] for i in date_index]
    bperp = np.asarray(ts.bperp)[list(date_index)] if len(date_index) else np.zeros(0)
    full = Block(0, ts.shape[0], 0, ts.shape[1])
    old = TimeSeries(path) if reuse else None
    layer_of = {i: j for j, i in enumerate(date_index)}
    todo = [i for i in date_index if i not in reuse]
    with TimeSeriesWriter(path, meta, dates, bperp) as w:
        for i, k in reuse.items():
            assert old is not None
            w.write("timeseries", old.read_dates(full, np.array([k]))[0], full, layers=layer_of[i])
        date_bytes = bytes_per_pixel * ts.shape[0] * ts.shape[1] if max_memory is not None else 0.0
        at_once = workers_within(max_memory or 0.0, date_bytes, workers, cluster, len(todo))
        if at_once < workers_within(0.0, 0.0, workers, cluster, len(todo)):
            logger.info("%s: %d date(s) at once (each holds ~%.0f MB; maxMemory %.3g GB)", what, at_once,
                        date_bytes / 1024**2, max_memory)
        results = run_blocks(todo, _no_read, functools.partial(_delay_map, compute), workers=at_once,
                             cluster=cluster)
        for i, layer in progress(results, what, "date", total=len(todo)):
            w.write("timeseries", layer, full, layers=layer_of[i])
    if reuse:
        logger.info("%s: %d date(s) computed, %d kept from the previous file (same inputs)", path.name,
                    len(todo), len(reuse))
    return path


_BASE_ATTR = "SBTS_DELAY_BASE"  # signature of what every date of a delay file shares
_KEYS_ATTR = "SBTS_DELAY_KEYS"  # JSON list, per date of the file, of the hash of its own inputs


def delay_key_attrs(base: str, keys: dict[int, str], date_index: Sequence[int]) -> dict[str, str]:
    """The attributes that let a later run copy this file's dates (see :func:`write_delay_file`)."""
    return {_BASE_ATTR: base, _KEYS_ATTR: json.dumps([_key_hash(keys[i]) for i in date_index])}


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def reusable_layers(path: Path, ts: TimeSeries, base: str, keys: dict[int, str]) -> dict[int, int]:
    """{date index of ``ts``: layer of the file at ``path``} for the dates whose delay can be copied."""
    if not path.exists():
        return {}
    try:
        old = TimeSeries(path)
        stored = json.loads(old.metadata.extra.get(_KEYS_ATTR, "[]"))
    except (InputError, ValueError):
        return {}
    if old.shape != ts.shape or old.metadata.extra.get(_BASE_ATTR) != base or len(stored) != len(old.dates):
        return {}
    where = {(d, h): j for j, (d, h) in enumerate(zip(old.date_strings, stored))}
    out = {}
    for i, key in keys.items():
        j = where.get((ts.date_strings[i], _key_hash(key)))
        if j is not None:
            out[i] = j
    return out


def delay_file_signature(items: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(items)).encode()).hexdigest()[:32]


def delay_signatures(items: Sequence, keys: dict[int, str]) -> tuple[str, str]:
    """(base, whole) signatures of a delay file: ``items`` what every date shares, ``keys`` (by
    date index) what each date's delay comes from; the whole one covers both (full reuse, see
    :func:`reusable_delay_file`), the base one lets single dates be copied (:func:`write_delay_file`)."""
    return delay_file_signature(items), delay_file_signature([*items, *keys.values()])


def reusable_delay_file(path: Path, ts: TimeSeries, signature: str) -> bool:
    """True when ``path`` was written from the same inputs for this grid (MintPy's update mode)."""
    if not path.exists():
        return False
    try:
        old = TimeSeries(path)
    except InputError:
        return False
    return old.shape == ts.shape and old.metadata.extra.get("SBTS_DELAY_INPUTS") == signature


def apply_delay(context: CorrectionContext, ts: TimeSeries, delay_path: Path, output: Path,
                extra: dict[str, str], label: str) -> tuple[list[str], list[str]]:
    """``output = ts − re-referenced delay`` block by block (MintPy's ``diff.py --force``).

    The delay at each date is taken relative to its value at REF_Y/REF_X and to the delay map of the
    series' REF_DATE, so the corrected series keeps its references (0 at the reference pixel and date).
    Returns (corrected dates, uncorrected dates).  Pixels 0 at every date (no data) stay 0.
    """
    delay = TimeSeries(delay_path)
    if delay.shape != ts.shape:
        raise InputError(f"{delay_path}: {delay.shape[0]}×{delay.shape[1]} does not match {ts.path} "
                         f"({ts.shape[0]}×{ts.shape[1]}); delete it so it is recomputed")
    pos = {d: j for j, d in enumerate(delay.date_strings)}
    idx_ts = [i for i, d in enumerate(ts.date_strings) if d in pos]
    idx_delay = [pos[ts.date_strings[i]] for i in idx_ts]
    missing = [d for d in ts.date_strings if d not in pos]
    ref_i = reference_date_index(ts)
    ref_date = ts.date_strings[ref_i]
    if ref_date not in pos:
        raise InputError(f"{delay_path} has no delay for the reference date {ref_date} of {ts.path}: every "
                         f"date is corrected relative to it; provide its {label} input")
    j_ref = pos[ref_date]
    ref_yx = reference_pixel(ts)
    if ref_yx is not None:
        ry, rx = ref_yx
        at_ref = np.asarray(delay.read_dates(Block(ry, ry + 1, rx, rx + 1)), np.float64)[:, 0, 0]
        if not np.all(np.isfinite(at_ref[idx_delay])):
            raise DataError(f"{delay_path}: the delay is NaN at the reference pixel REF_Y/REF_X = {ry}/{rx}; "
                            "the weather/GACOS data do not cover it")
    else:
        at_ref = np.zeros(len(delay.dates))
    n = len(ts.dates)
    meta = ts.metadata.with_extra(**extra)
    blocks = plan_blocks_for(ts.shape, pixel_bytes(n, 4, copies=4, extra=8), context.max_memory, ts.chunk_shape(ts.dataset_name))
    with TimeSeriesWriter(output, meta, ts.date_strings, ts.bperp, dataset=ts.dataset_name,
                          unit=ts.metadata.unit or "m") as w:
        for block in blocks:
            data = ts.read_dates(block).astype(np.float32, copy=False)
            nodata = np.all(data == 0, axis=0)
            out = np.array(data, np.float32)
            if idx_ts:
                d = np.asarray(delay.read_dates(block, np.array(idx_delay)), np.float64)
                d_ref = np.asarray(delay.read_dates(block, j_ref), np.float64) - at_ref[j_ref]
                corr = d - at_ref[idx_delay][:, None, None] - d_ref[None]
                out[idx_ts] = (data[idx_ts] - corr).astype(np.float32)
                del d, d_ref, corr
            out[:, nodata] = 0
            w.write(ts.dataset_name, out, block)
            del data, out  # released before the next block is read
    corrected = [ts.date_strings[i] for i in idx_ts]
    if missing:
        logger.warning("%s: no %s delay for %d date(s), left uncorrected: %s", ts.path.name, label, len(missing),
                       ", ".join(missing))
    return corrected, missing


def expected_output(context: CorrectionContext, default_suffix: str, suffix: str) -> Path:
    """The output name for a suffix chosen at run time (``_MERRA`` for weatherModel = MERRA ...)."""
    from sbts.core.api import suffixed

    if suffix != default_suffix and Path(context.output_file) == suffixed(Path(context.input_file), default_suffix):
        return suffixed(Path(context.input_file), suffix)
    return Path(context.output_file)


def incidence_cosine(geom: GeometryAccess, block: Block | None, purpose: str) -> np.ndarray:
    """cos θ of the incidence angle; NaN where θ is 0/NaN (no geometry: those pixels get no delay)."""
    inc = geom.read("incidenceAngle", block, purpose)
    cos = np.cos(np.deg2rad(inc))
    cos[~np.isfinite(inc) | (inc <= 0) | (inc >= 90)] = np.nan
    return cos
