"""``sbts correct solid_earth_tides``: solid Earth tides (Milbert 2018 ``solid.for``; Yunjun et al. 2022, TGRS).

The body tide moves the ground by up to ~30 cm (mostly up/down) with periods of half a day and a day;
each acquisition sees it at its own time, so an interferogram holds a long-wavelength ramp.  For every
date t_i (date + ``CENTER_LINE_UTC``, rounded to the second) the east/north/up tide is computed with
PySolid (``pysolid`` on PyPI, which wraps Milbert's IERS-2010 ``solid.for``) on a coarse lat/lon grid
(0.1°, ~11 km: the tide varies over thousands of km, so bilinear interpolation to each pixel adds
< 1e-6 m) covering the scene, interpolated to each pixel's latitude/longitude and projected onto the
line of sight:

    SET_i(x) [m] = u(x) · (e, n, up)(x, t_i)        u = ground→satellite unit vector (see ``_los.py``)

in the displacement sign of sbts/MintPy (positive toward the satellite: a tide moving the ground up
shortens the range and is positive).  The absolute tides go to ``inputs/SET.h5`` (timeseries layout,
no REF_* attributes); the corrected series is ``ts − (SET − SET[REF_Y/REF_X] − SET[REF_DATE])``, so it
keeps its references, written as ``<input>_SET.h5``.  Both passes are block-wise under --max-memory.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Correction,
    CorrectionContext,
    CorrectionResult,
    InputError,
    PluginError,
    Template,
    TimeSeries,
    TimeSeriesWriter,
    hookimpl,
    pixel_bytes,
    plan_blocks_for,
)
from sbts.plugins.corrections._los import azimuth_angle, bilinear, los_unit_vector, scene_bounds
from sbts.plugins.corrections._tropo_common import (
    GeometryAccess,
    apply_delay,
    delay_key_attrs,
    delay_signatures,
    reusable_delay_file,
    reusable_layers,
)

logger = logging.getLogger(__name__)

KEY = "mintpy.solidEarthTides"
GRID_STEP = 0.1  # degrees between the nodes where the tide is computed (bilinear in between)


def require_pysolid():
    """PySolid is an optional dependency (the ``tides`` extra): say how to get it, before any work."""
    try:
        import pysolid
    except ImportError as exc:
        raise PluginError(f"{KEY} = yes needs the Python package pysolid, which is not installed ({exc}): "
                          "pip install 'sbts[tides]' (or pip install pysolid), or set it to no") from None
    return pysolid


def acquisition_times(ts: TimeSeries) -> list[_dt.datetime]:
    """Date + CENTER_LINE_UTC of every date of ``ts`` (UTC, to the second)."""
    utc = ts.metadata.radar.center_line_utc
    if utc is None:
        raise InputError(f"{ts.path}: CENTER_LINE_UTC (acquisition time, s of day) is missing; the solid Earth tide "
                         "depends on the hour (set CENTER_LINE_UTC = ... in the template)")
    seconds = int(round(float(utc)))
    return [_dt.datetime(d.year, d.month, d.day) + _dt.timedelta(seconds=seconds) for d in ts.dates]


@dataclass(frozen=True)
class TideGrid:
    """East/north/up tides (m) on a regular lat/lon grid: ``enu[date, component, row, col]``."""

    lat0: float
    dlat: float
    lon0: float
    dlon: float
    enu: np.ndarray

    def at(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """(dates, 3, *lat.shape) by bilinear interpolation."""
        return bilinear(self.enu, self.lat0, self.dlat, self.lon0, self.dlon, lat, lon)


def tide_grid(times: list[_dt.datetime], bounds: tuple[float, float, float, float],
              step: float = GRID_STEP) -> TideGrid:
    """The tides at ``times`` on nodes every ``step`` degrees covering ``bounds`` (S, N, W, E) with one node margin."""
    pysolid = require_pysolid()
    s, n, w, e = bounds
    lat0, lon0 = n + step, w - step
    rows = int(np.ceil((n - s) / step)) + 3
    cols = int(np.ceil((e - w) / step)) + 3
    atr = {"Y_FIRST": lat0, "Y_STEP": -step, "X_FIRST": lon0, "X_STEP": step, "LENGTH": rows, "WIDTH": cols}
    enu = np.empty((len(times), 3, rows, cols), np.float64)
    for i, t in enumerate(times):
        # step_size of 1 m: pysolid evaluates every node given (no internal coarsening)
        enu[i] = np.stack(pysolid.calc_solid_earth_tides_grid(t, atr, step_size=1.0, display=False, verbose=False))
    return TideGrid(lat0, -step, lon0, step, enu)


@dataclass(frozen=True)
class SetOptions:
    on: bool = False


class SolidEarthTides(Correction):
    """Removes the solid Earth tide in the LOS, relative to the reference pixel and date (PySolid)."""

    name = "solid_earth_tides"
    summary = "Remove the solid Earth tides (PySolid) projected onto the line of sight."
    suffix = "SET"
    stage = "timeseries"
    step = "correct_SET"
    after = "correct_LOD"
    keys = {KEY: "no (default) | yes: remove the solid Earth tides (needs pysolid: pip install 'sbts[tides]')"}

    def parse_options(self, template: Template) -> SetOptions:
        return SetOptions(on=template.get_bool(KEY))

    def enabled(self, template: Template, metadata) -> bool:
        return template.get_bool(KEY)

    def run(self, context: CorrectionContext) -> CorrectionResult:
        require_pysolid()
        ts = TimeSeries(context.input_file)
        times = acquisition_times(ts)
        geom = GeometryAccess(context, ts)
        purpose = "the solid Earth tides"
        if not geom.available("incidenceAngle"):
            raise geom.missing_error("incidenceAngle", purpose)
        n = len(ts.dates)
        set_path = Path(context.work_dir) / "inputs" / "SET.h5"
        set_path.parent.mkdir(parents=True, exist_ok=True)
        base, sig = delay_signatures(["SET", GRID_STEP, geom.content_id(), *ts.shape], _date_keys(times))
        if reusable_delay_file(set_path, ts, sig):
            logger.info("reusing %s (same dates, times and geometry)", set_path)
        else:  # the dates already in SET.h5 (same time, geometry and grid) are copied, the others computed
            write_set_file(context, ts, geom, times, set_path, sig, base)
        out = Path(context.output_file)
        corrected, _ = apply_delay(context, ts, set_path, out, {KEY: "yes"}, "solid Earth tide")
        summary = f"removed the solid Earth tides from {len(corrected)} of {n} dates ({set_path.name})"
        logger.info(summary)
        return CorrectionResult(out, extra_outputs=(set_path,), summary=summary)


def _date_keys(times: list[_dt.datetime]) -> dict[int, str]:
    """What each date's tide comes from (besides the geometry and grid): its acquisition time."""
    return {i: t.isoformat() for i, t in enumerate(times)}


def write_set_file(context: CorrectionContext, ts: TimeSeries, geom: GeometryAccess, times: list[_dt.datetime],
                   path: Path, signature: str, base: str | None = None) -> Path:
    """``inputs/SET.h5``: the LOS tide of every date (m, positive toward the satellite), block by block.

    With ``base`` (the signature of the geometry and grid), the dates of an existing ``path`` written
    with the same base and acquisition time are copied and only the others computed (a new
    acquisition costs one date of PySolid, not all).
    """
    purpose = "the solid Earth tides"
    n = len(times)
    keys = _date_keys(times)
    reuse = reusable_layers(path, ts, base, keys) if base is not None else {}
    new = [i for i in range(n) if i not in reuse]
    # per pixel: the interpolated (n, 3) tides in float64, the LOS (n) and the geometry layers
    blocks = plan_blocks_for(ts.shape, pixel_bytes(n, 8, copies=5, extra=64), context.max_memory, None)
    grid = None
    if new:
        bounds = scene_bounds(geom, blocks, purpose)
        grid = tide_grid([times[i] for i in new], bounds)
        logger.info("solid Earth tides: %d dates at %s UTC on a %d×%d grid of %.2f° over S%.3f N%.3f W%.3f E%.3f",
                    len(new), times[new[0]].time().isoformat(), grid.enu.shape[2], grid.enu.shape[3], GRID_STEP,
                    *bounds)
    if reuse:
        logger.info("solid Earth tides: %d date(s) computed, %d kept from the previous %s (same times and "
                    "geometry)", len(new), len(reuse), path.name)
    extra = {KEY: "yes", "SBTS_DELAY_INPUTS": signature, "SET_GRID_STEP": repr(GRID_STEP)}
    if base is not None:
        extra.update(delay_key_attrs(base, keys, range(n)))
    meta = ts.metadata.replace(reference=type(ts.metadata.reference)()).with_extra(**extra)
    old = TimeSeries(path) if reuse else None
    with TimeSeriesWriter(path, meta, ts.date_strings, ts.bperp, unit="m") as w:
        for block in blocks:
            out = np.empty((n,) + block.shape, np.float32)
            if grid is not None:
                lat, lon = geom.lat_lon(block, purpose)
                inc = geom.read("incidenceAngle", block, purpose)
                az = azimuth_angle(geom, block, purpose)
                ue, un, uu = los_unit_vector(inc, az)
                enu = grid.at(lat, lon)  # (new dates, 3, rows, cols)
                los = enu[:, 0] * ue + enu[:, 1] * un + enu[:, 2] * uu
                bad = ~(np.isfinite(lat) & np.isfinite(lon) & ((lat != 0) | (lon != 0)) & np.isfinite(inc)
                        & (inc > 0) & (inc < 90))
                los[:, bad] = np.nan
                out[new] = los
                del enu, los
            if old is not None:
                out[list(reuse)] = old.read_dates(block, np.array(list(reuse.values())))
            w.write("timeseries", out, block)
    return path


@hookimpl
def sbts_corrections():
    return [SolidEarthTides()]
