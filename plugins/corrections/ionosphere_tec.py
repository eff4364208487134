"""``sbts correct ionosphere_tec``: ionospheric delay from global TEC maps (IONEX), mintpy.ionosphericDelay.method = tec.

The ionosphere advances the carrier phase: the phase path is shorter than the geometric one by

    ΔL [m] = K · STEC / f²        K = 40.31 m³/s², STEC in electrons/m² (1 TECU = 1e16), f = c / WAVELENGTH

so it looks like motion toward the satellite: in the sbts/MintPy displacement sign it enters the time
series as +ΔL (Chen & Zebker 2012, eq. 1; Yunjun et al. 2022, TGRS).  The slant TEC comes from the
vertical TEC of a global ionosphere map with the single-layer model: the ray from each pixel toward the
satellite crosses the shell of the map (``HGT1``, 450 km for JPL/CODE/IGS, on ``BASE RADIUS``) at the
ionospheric pierce point, offset from the pixel toward the satellite by the Earth-central angle
ψ = θ − θ_i, where sin θ_i = R/(R + H) · sin θ is the incidence at the shell; there

    STEC = VTEC(IPP, t) / cos θ_i

with VTEC interpolated from the IONEX maps as the format recommends (bilinear in space, rotated maps
linear in time; see ``_ionex.py``) at the acquisition time (date + ``CENTER_LINE_UTC``).  The absolute
delays go to ``inputs/TEC<first letter of the solution>lr.h5`` (MintPy's name: ``TECjlr.h5`` for the JPL
low-resolution maps; displacement sign, metres, no REF_*
attributes); the corrected series is ``ts − (ΔL − ΔL[REF_Y/REF_X] − ΔL[REF_DATE])`` → ``<input>_ion.h5``.

Files: the daily IONEX map of each date, named as the IGS archives name them (``jplg3190.15i`` — the
solution's three letters + ``g`` + day of year + ``0.`` + two-digit year + ``i``, plain or ``.gz``, or the
long name ``JPL0OPSFIN_20153190000_01D_02H_GIM.INX``) in ``mintpy.ionosphericDelay.tecDir`` (default
``${WEATHER_DIR}/IONEX``, else ``./IONEX``).  Nothing is downloaded.  Dates without a file are listed and
left uncorrected; the reference date must have one.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Correction,
    CorrectionContext,
    CorrectionResult,
    InputError,
    Template,
    TemplateError,
    TimeSeries,
    TimeSeriesWriter,
    hookimpl,
    pixel_bytes,
    plan_blocks_for,
)
from sbts.plugins.corrections._ionex import IonexMaps, find_ionex, ionex_names, read_ionex
from sbts.plugins.corrections._iono_common import (
    EXCLUDE_DATE12_KEY,
    EXCLUDE_DATE_KEY,
    METHOD_KEY,
    P,
    ionosphere_method,
)
from sbts.plugins.corrections._los import azimuth_angle
from sbts.plugins.corrections._tropo_common import (
    GeometryAccess,
    apply_delay,
    delay_key_attrs,
    delay_signatures,
    resolve_path,
    reusable_delay_file,
    reusable_layers,
)

logger = logging.getLogger(__name__)

DIR_KEY = P + ".tecDir"
SOLUTION_KEY = P + ".tecSolution"
EXCLUDE_KEYS = (EXCLUDE_DATE_KEY, EXCLUDE_DATE12_KEY)
K = 40.31  # m³/s²: ionospheric refraction constant (group/phase delay = K·TEC/f²)
SPEED_OF_LIGHT = 299792458.0  # m/s
TECU = 1e16  # electrons/m²


def phase_advance(stec_tecu: np.ndarray, frequency: float) -> np.ndarray:
    """K·STEC/f² (m): how much shorter the phase path is than the geometric one (STEC in TECU, f in Hz)."""
    return K * np.asarray(stec_tecu, np.float64) * TECU / frequency ** 2


def pierce_point(lat: np.ndarray, lon: np.ndarray, incidence: np.ndarray, azimuth: np.ndarray, radius: float,
                 height: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(latitude, longitude, incidence at the shell), degrees, of the rays from the pixels to the satellite.

    ``azimuth`` is MintPy's azimuthAngle (LOS ground→satellite, from north, anticlockwise), so the
    pierce point lies at bearing −azimuth (clockwise from north) and central angle ψ = θ − θ_i.
    """
    inc = np.deg2rad(np.asarray(incidence, np.float64))
    inc_i = np.arcsin(radius / (radius + height) * np.sin(inc))
    psi = inc - inc_i
    bearing = -np.deg2rad(np.asarray(azimuth, np.float64))
    phi = np.deg2rad(np.asarray(lat, np.float64))
    lam = np.deg2rad(np.asarray(lon, np.float64))
    phi_p = np.arcsin(np.sin(phi) * np.cos(psi) + np.cos(phi) * np.sin(psi) * np.cos(bearing))
    lam_p = lam + np.arctan2(np.sin(bearing) * np.sin(psi) * np.cos(phi), np.cos(psi) - np.sin(phi) * np.sin(phi_p))
    return np.rad2deg(phi_p), np.rad2deg(lam_p), np.rad2deg(inc_i)


@dataclass(frozen=True)
class TecOptions:
    folder: str = ""
    solution: str = "jpl"


class IonosphereTec(Correction):
    """Removes the ionospheric phase advance of global TEC maps (IONEX) mapped to the LOS."""

    name = "ionosphere_tec"
    summary = "Remove the ionospheric delay from global TEC maps (IONEX files: JPL, CODE, IGS ...)."
    suffix = "ion"
    stage = "timeseries"
    step = "correct_ionosphere"
    after = "correct_SET"
    keys = {
        METHOD_KEY: "no (default) | split_spectrum | tec: the workflow's choice (`sbts correct ionosphere_tec` runs this)",
        DIR_KEY: "folder of the daily IONEX files (default ${WEATHER_DIR}/IONEX, else ./IONEX)",
        SOLUTION_KEY: "jpl (default) | cod | igs | esa | upc | ...: the analysis centre, first letters of the file names",
    }

    def parse_options(self, template: Template) -> TecOptions:
        for key in EXCLUDE_KEYS:
            value = str(template.values.get(key, "")).strip()
            if value.lower() not in ("", "auto", "no", "none"):
                raise TemplateError(f"{key} = {value}: it selects the pairs of the split-spectrum "
                                    f"inversion and means nothing for {METHOD_KEY} = tec; remove it or set it to no")
        solution = (template.get(SOLUTION_KEY) or "jpl").strip().lower()
        if not (solution.isalnum() and len(solution) == 3):
            raise TemplateError(f"{SOLUTION_KEY} = {solution!r}: give the three letters of the analysis centre "
                                "(jpl, cod, igs, esa, upc, uqr ...)")
        return TecOptions(folder=template.raw(DIR_KEY), solution=solution)

    def enabled(self, template: Template, metadata) -> bool:
        return ionosphere_method(template) == "tec"

    def reads(self, options: TecOptions, work_dir: Path) -> list[Path]:
        """The geometry and the files of the IONEX folder (a day's map that arrives, or a final
        solution in place of a rapid one, runs the correction again)."""
        ionex = [p for folder in tec_folders(options.folder, Path(work_dir)) if folder.is_dir()
                 for p in sorted(folder.iterdir()) if p.is_file()]
        return [*super().reads(options, work_dir), *ionex]

    def run(self, context: CorrectionContext) -> CorrectionResult:
        options = self.options_of(context)
        ts = TimeSeries(context.input_file)
        meta = ts.metadata
        utc = meta.radar.center_line_utc
        if utc is None:
            raise InputError(f"{ts.path}: CENTER_LINE_UTC (acquisition time, s of day) is missing; the TEC maps "
                             "are interpolated to it (set CENTER_LINE_UTC = ... in the template)")
        wavelength = meta.radar.wavelength
        if wavelength is None or not wavelength > 0:
            raise InputError(f"{ts.path}: WAVELENGTH is missing; the ionospheric delay scales with 1/f² "
                             "(set WAVELENGTH = ... in the template)")
        frequency = SPEED_OF_LIGHT / wavelength
        seconds = int(round(float(utc)))
        times = [_dt.datetime(d.year, d.month, d.day) + _dt.timedelta(seconds=seconds) for d in ts.dates]
        folders = tec_folders(options.folder, Path(context.work_dir))
        files: dict[int, Path] = {}
        for i, t in enumerate(times):
            found = find_ionex(folders, options.solution, t.date())
            if found is not None:
                files[i] = found
        missing = [ts.date_strings[i] for i in range(len(times)) if i not in files]
        if not files:
            raise InputError(f"no IONEX file of solution {options.solution!r} found in "
                             f"{' or '.join(str(f) for f in folders)} for the {len(times)} dates of {ts.path.name} "
                             f"(expected e.g. {ionex_names(options.solution, times[0].date())[0]}); put the daily "
                             f"maps there or set {DIR_KEY}")
        if missing:
            logger.warning("%d date(s) have no IONEX file and stay uncorrected: %s", len(missing), ", ".join(missing))
        geom = GeometryAccess(context, ts)
        purpose = "the ionospheric delay from TEC maps"
        if not geom.available("incidenceAngle"):
            raise geom.missing_error("incidenceAngle", purpose)
        delay_path = Path(context.work_dir) / "inputs" / f"TEC{options.solution[0]}lr.h5"
        delay_path.parent.mkdir(parents=True, exist_ok=True)
        geom_id = geom.content_id()
        keys = {i: f"{times[i].isoformat()}|{f.resolve()}|{f.stat().st_size}|{f.stat().st_mtime_ns}"
                for i, f in sorted(files.items())}
        base, sig = delay_signatures(["TEC", options.solution, repr(frequency), geom_id, *ts.shape], keys)
        if reusable_delay_file(delay_path, ts, sig):
            logger.info("reusing %s (same IONEX files, times and geometry)", delay_path)
        else:  # the dates already in the file (same IONEX file, time and geometry) are copied
            reuse = reusable_layers(delay_path, ts, base, keys)
            maps = {path: read_ionex(path) for path in sorted({f for i, f in files.items() if i not in reuse})}
            write_tec_file(context, ts, geom, {i: (times[i], maps.get(f)) for i, f in files.items()}, frequency,
                           delay_path, {METHOD_KEY: "tec", SOLUTION_KEY: options.solution, "SBTS_DELAY_INPUTS": sig,
                                        **delay_key_attrs(base, keys, sorted(files))}, reuse)
        out = Path(context.output_file)
        corrected, skipped = apply_delay(context, ts, delay_path, out,
                                         {METHOD_KEY: "tec", SOLUTION_KEY: options.solution}, "ionospheric (TEC)")
        summary = (f"removed the ionospheric delay of {options.solution.upper()} TEC maps from {len(corrected)} of "
                   f"{len(ts.dates)} dates" + (f"; no IONEX file for {', '.join(skipped)}" if skipped else ""))
        logger.info(summary)
        return CorrectionResult(out, extra_outputs=(delay_path,), summary=summary)


def tec_folders(value: str, work_dir: Path) -> list[Path]:
    """``tecDir`` resolved; unset or with an unset ``${WEATHER_DIR}``: ``./IONEX`` of the work directory."""
    value = os.path.expandvars(value or "")
    if not value or "$" in value or value.lower() in ("auto", "no", "none"):
        value = "./IONEX"
    return [resolve_path(value, work_dir)]


def write_tec_file(context: CorrectionContext, ts: TimeSeries, geom: GeometryAccess,
                   dates: dict[int, tuple[_dt.datetime, IonexMaps | None]], frequency: float, path: Path,
                   extra: dict[str, str], reuse: dict[int, int] | None = None) -> Path:
    """The LOS phase advance K·STEC/f² (m, displacement sign) of the dates in ``dates``, block by block.

    ``reuse`` {date index: layer of the existing ``path``}: those dates are copied from it (their maps
    may be None), the others computed — a new acquisition reads one IONEX file, not all.
    """
    purpose = "the ionospheric delay from TEC maps"
    reuse = reuse or {}
    order = sorted(dates)
    n = len(order)
    new = [j for j, i in enumerate(order) if i not in reuse]
    kept = [j for j, i in enumerate(order) if i in reuse]
    meta = ts.metadata.replace(reference=type(ts.metadata.reference)()).with_extra(**extra)
    blocks = plan_blocks_for(ts.shape, pixel_bytes(n, 8, copies=2, extra=96), context.max_memory, None)
    logger.info("ionospheric delay of %d dates from IONEX maps (f = %.4f GHz) → %s%s", len(new), frequency / 1e9,
                path, f"; {len(kept)} date(s) kept from the previous file (same inputs)" if kept else "")
    old = TimeSeries(path) if kept else None
    with TimeSeriesWriter(path, meta, [ts.date_strings[i] for i in order], np.asarray(ts.bperp)[order],
                          unit="m") as w:
        for block in blocks:
            out = np.empty((n, *block.shape), np.float32)
            if new:
                lat, lon = geom.lat_lon(block, purpose)
                inc = geom.read("incidenceAngle", block, purpose)
                az = azimuth_angle(geom, block, purpose)
                bad = ~(np.isfinite(lat) & np.isfinite(lon) & ((lat != 0) | (lon != 0)) & np.isfinite(inc)
                        & (inc > 0) & (inc < 90) & np.isfinite(az))
                pierce: dict[tuple[float, float], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
                for j in new:
                    when, maps = dates[order[j]]
                    assert maps is not None
                    shell = (maps.radius, maps.height)  # the same for every map of one analysis centre
                    if shell not in pierce:
                        pierce[shell] = pierce_point(lat, lon, inc, az, *shell)
                    ipp_lat, ipp_lon, inc_i = pierce[shell]
                    stec = maps.vtec(when, ipp_lat, ipp_lon) / np.cos(np.deg2rad(inc_i))
                    delay = phase_advance(stec, frequency)
                    delay[bad] = np.nan
                    out[j] = delay
            if old is not None:
                out[kept] = old.read_dates(block, np.array([reuse[order[j]] for j in kept]))
            w.write("timeseries", out, block)
    return path


@hookimpl
def sbts_corrections():
    return [IonosphereTec()]
