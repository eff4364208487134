"""``sbts gnss``: compare an InSAR time series with GNSS stations (UNR/NGL ``.tenv3`` files on disk).

Nothing is downloaded: the station files must already be in a local folder (one ``SITE*.tenv3``
each, as ``geodesy.unr.edu`` serves them).

UNR ``.tenv3`` layout (whitespace separated, one daily solution per line, an optional header line
starting with ``site``), columns as UNR documents them:

 1 site · 2 date ``YYMMMDD`` (e.g. 08MAR27) · 3 decimal year · 4 MJD · 5 GPS week · 6 day of GPS week ·
 7 reflon (longitude of the reference meridian, deg) · 8/9 east: integer and fractional part (m, from
 the reference meridian) · 10/11 north: integer and fractional part (m, from the equator) ·
 12/13 up: integer and fractional part (m, height) · 14 antenna height (m) · 15–17 σ east/north/up (m) ·
 18–20 correlations en/eu/nu · and, in files produced since UNR added them, 21–23 latitude (deg),
 longitude (deg, may be offset by a multiple of 360) and height (m) of that day's position.

A component is integer part + fractional part (both carry the sign).  Dates come from the MJD
column (exact), checked against the ``YYMMMDD`` text.  Older files have only 20 columns and no
latitude; their coordinates then come from a station list (``site_list``): UNR's
``DataHoldings.txt`` (``Sta Lat(deg) Long(deg) Hgt(m) ...``) or any ``SITE LAT LON`` text file;
longitudes are wrapped to [−180, 180).

Comparison: each station's ENU series is projected onto the LOS of its pixel,
``d_los = u·(d_e, d_n, d_u)`` (unit vector in :mod:`sbts.core.tools.common`), sampled at the InSAR
dates (the nearest GNSS day within ``max_gap_days``), and both series are referenced

* in space: to ``ref_site`` (InSAR minus InSAR at that station's pixel, GNSS minus that station's
  GNSS), or else to the InSAR reference point, assumed stable (GNSS used as is);
* in time: to REF_DATE when both series have it, else the first date both have.

Per station: number of dates, RMSE and mean of (InSAR − GNSS) in mm, Pearson correlation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sbts.core.errors import DataError, InputError
from sbts.core.io.blocks import Block
from sbts.core.io.products import TimeSeries
from sbts.core.io.workdir import GEOMETRY_GEO, GEOMETRY_RADAR, find_geometry
from sbts.core.tools.common import LosGeometry, enu_to_los, require_geo

logger = logging.getLogger(__name__)

MJD_EPOCH = dt.date(1858, 11, 17)
_MONTHS = {m: i + 1 for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
DEFAULT_OUTPUT = "gnss_comparison.txt"


@dataclasses.dataclass
class GnssSeries:
    """One station's daily ENU positions (m) from a .tenv3 file."""

    site: str
    dates: np.ndarray  # datetime64[D]
    east: np.ndarray
    north: np.ndarray
    up: np.ndarray
    sigma: np.ndarray  # (num_day, 3) east/north/up
    lat: float | None = None
    lon: float | None = None
    path: Path | None = None


def wrap_lon(lon: float) -> float:
    return (lon + 180.0) % 360.0 - 180.0


def _yymmmdd(text: str) -> dt.date:
    yy, mon, dd = int(text[:2]), _MONTHS[text[2:5].upper()], int(text[5:7])
    return dt.date(1900 + yy if yy >= 80 else 2000 + yy, mon, dd)  # GPS data start in 1980


def read_tenv3(path: str | os.PathLike) -> GnssSeries:
    """Parse a UNR .tenv3 file (layout in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    site, rows, dates, lat, lon = None, [], [], None, None
    for num, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        cols = line.split()
        if not cols or cols[0].lower() == "site" or line.lstrip().startswith("#"):
            continue
        if len(cols) < 20:
            raise InputError(f"{path}:{num}: {len(cols)} columns; a .tenv3 line has at least 20")
        try:
            mjd = int(float(cols[3]))
            values = [float(c) for c in cols[7:20]]
            day = MJD_EPOCH + dt.timedelta(days=mjd)
            if _yymmmdd(cols[1]) != day:
                raise InputError(f"{path}:{num}: date {cols[1]} disagrees with MJD {mjd} ({day})")
            if len(cols) >= 22:
                lat, lon = float(cols[20]), wrap_lon(float(cols[21]))
        except (ValueError, KeyError, IndexError):
            raise InputError(f"{path}:{num}: not a .tenv3 line: {line.strip()[:80]!r}") from None
        if site is None:
            site = cols[0].upper()
        elif cols[0].upper() != site:
            raise InputError(f"{path}:{num}: station {cols[0]} in the file of {site}")
        rows.append(values)
        dates.append(day)
    if not rows:
        raise InputError(f"{path}: no data lines")
    v = np.asarray(rows, np.float64)
    order = np.argsort(np.array(dates, "datetime64[D]"), kind="stable")
    v = v[order]
    return GnssSeries(site=site, dates=np.array(dates, "datetime64[D]")[order], east=v[:, 0] + v[:, 1],
                      north=v[:, 2] + v[:, 3], up=v[:, 4] + v[:, 5], sigma=v[:, 7:10], lat=lat, lon=lon,
                      path=path)


def read_site_list(path: str | os.PathLike) -> dict[str, tuple[float, float]]:
    """Station coordinates from ``SITE LAT LON ...`` lines (UNR DataHoldings.txt works as is)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        cols = line.split()
        if len(cols) < 3 or line.lstrip().startswith("#"):
            continue
        try:
            out[cols[0].upper()] = (float(cols[1]), wrap_lon(float(cols[2])))
        except ValueError:
            continue  # header line
    if not out:
        raise InputError(f"{path}: no 'SITE LAT LON' line")
    return out


def find_tenv3(gnss_dir: str | os.PathLike, sites: Sequence[str] | None = None) -> list[Path]:
    """The .tenv3 files of ``gnss_dir`` (of ``sites`` only, when given; file name = SITE[.frame].tenv3)."""
    folder = Path(gnss_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: GNSS folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".tenv3")
    if sites:
        wanted = {s.upper() for s in sites}
        files = [p for p in files if p.name.split(".")[0].upper() in wanted]
        missing = wanted - {p.name.split(".")[0].upper() for p in files}
        if missing:
            raise InputError(f"{folder}: no .tenv3 file for {', '.join(sorted(missing))}")
    if not files:
        raise InputError(f"{folder}: no .tenv3 files (download them from UNR first; sbts does not)")
    return files


def sample_at(series: GnssSeries, dates: np.ndarray, max_gap_days: int) -> np.ndarray:
    """(num_date, 3) ENU at ``dates``: nearest GNSS day within ``max_gap_days``, else NaN."""
    t = series.dates.astype(np.int64)
    q = np.asarray(dates, "datetime64[D]").astype(np.int64)
    pos = np.clip(np.searchsorted(t, q), 1, max(1, t.size - 1)) if t.size > 1 else np.zeros(q.size, int)
    if t.size > 1:
        left = pos - 1
        pos = np.where(np.abs(t[left] - q) <= np.abs(t[pos] - q), left, pos)
    enu = np.stack([series.east, series.north, series.up], axis=1)[pos]
    enu[np.abs(t[pos] - q) > max_gap_days] = np.nan
    return enu


@dataclasses.dataclass
class SiteComparison:
    site: str
    lat: float
    lon: float
    y: int
    x: int
    insar: np.ndarray  # m, referenced, at the InSAR dates
    gnss: np.ndarray  # m, LOS, referenced, at the InSAR dates
    num: int = 0
    rmse: float = math.nan
    bias: float = math.nan
    corr: float = math.nan


def _reference_in_time(a: np.ndarray, b: np.ndarray, ref_index: int) -> tuple[np.ndarray, np.ndarray]:
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return a * np.nan, b * np.nan
    i = ref_index if both[ref_index] else int(np.flatnonzero(both)[0])
    return a - a[i], b - b[i]


def compare_gnss(timeseries: str | os.PathLike, gnss_dir: str | os.PathLike, sites: Sequence[str] | None = None,
                 ref_site: str | None = None, geometry: str | os.PathLike | None = None,
                 site_list: str | os.PathLike | None = None, max_gap_days: int = 1) -> list[SiteComparison]:
    """Per-station InSAR vs GNSS-in-LOS series and statistics (see the module docstring)."""
    ts = TimeSeries(timeseries)
    geo = require_geo(ts.metadata, ts.path)
    coords = read_site_list(site_list) if site_list is not None else {}
    wanted = list(sites) + ([ref_site] if ref_site and ref_site.upper() not in {s.upper() for s in sites} else []) \
        if sites else None
    stations = {}
    length, width = ts.shape
    for path in find_tenv3(gnss_dir, wanted):
        s = read_tenv3(path)
        if s.site in coords:
            s.lat, s.lon = coords[s.site]
        if s.lat is None:
            logger.warning("%s: no latitude/longitude (old 20-column .tenv3); give a station list "
                           "(--site-list DataHoldings.txt); skipped", s.site)
            continue
        y = math.floor((s.lat - geo.y_first) / geo.y_step)
        x = math.floor((s.lon - geo.x_first) / geo.x_step)
        if not (0 <= y < length and 0 <= x < width):
            logger.info("%s (%.4f, %.4f) is outside the InSAR grid; skipped", s.site, s.lat, s.lon)
            continue
        stations[s.site] = (s, y, x)
    if ref_site is not None and ref_site.upper() not in stations:
        raise InputError(f"reference station {ref_site} is not among the usable stations "
                         f"({', '.join(stations) or 'none'})")
    if not stations:
        raise DataError(f"no GNSS station of {gnss_dir} lies inside the InSAR grid with known coordinates")

    los_geom = _geometry(ts, geometry)
    dates = np.array(ts.dates, "datetime64[D]")
    ref_date = ts.metadata.reference.date
    ref_index = ts.dates.index(ref_date) if ref_date in ts.dates else 0
    series = {}
    for site, (s, y, x) in stations.items():
        block = Block(y, y + 1, x, x + 1)
        inc, az = los_geom.angles(block if los_geom.geometry is not None else None)
        enu = sample_at(s, dates, max_gap_days)
        gnss = enu_to_los(enu[:, 0], enu[:, 1], enu[:, 2], np.ravel(inc)[0], np.ravel(az)[0])
        insar = ts.read_dates(block).reshape(-1).astype(np.float64)
        series[site] = (insar, gnss, y, x, s)
    out = []
    ref = series.get(ref_site.upper()) if ref_site else None
    for site, (insar, gnss, y, x, s) in series.items():
        if ref is not None:
            if site == ref_site.upper():
                continue
            insar, gnss = insar - ref[0], gnss - ref[1]
        insar, gnss = _reference_in_time(insar, gnss, ref_index)
        c = SiteComparison(site, s.lat, s.lon, y, x, insar, gnss)
        both = np.isfinite(insar) & np.isfinite(gnss)
        c.num = int(both.sum())
        if c.num:
            diff = insar[both] - gnss[both]
            c.rmse, c.bias = float(np.sqrt(np.mean(diff ** 2))), float(np.mean(diff))
            if c.num >= 3 and np.std(insar[both]) > 0 and np.std(gnss[both]) > 0:
                c.corr = float(np.corrcoef(insar[both], gnss[both])[0, 1])
        else:
            logger.warning("%s: no date with both InSAR and GNSS data", site)
        out.append(c)
    return out


def _geometry(ts: TimeSeries, geometry: str | os.PathLike | None) -> LosGeometry:
    if geometry is not None:
        return LosGeometry(ts.metadata, ts.path, geometry)
    found = find_geometry(ts.path, names=(GEOMETRY_GEO, GEOMETRY_RADAR))
    if found is not None:
        try:
            geom = LosGeometry(ts.metadata, ts.path, found)
            logger.info("LOS geometry from %s", found)
            return geom
        except InputError as exc:
            logger.warning("%s not used (%s)", found, exc)
    return LosGeometry(ts.metadata, ts.path, None)


def format_report(results: Sequence[SiteComparison], timeseries: str | os.PathLike, ref_site: str | None) -> str:
    lines = [f"# InSAR {Path(timeseries).name} vs GNSS (UNR tenv3) projected to the LOS, positive toward the satellite",
             f"# spatial reference: {'station ' + ref_site.upper() if ref_site else 'InSAR reference point'}",
             "# site      lat        lon      y     x  num  rmse_mm  bias_mm    corr"]
    for c in results:
        lines.append(f"{c.site:6s} {c.lat:9.4f} {c.lon:10.4f} {c.y:5d} {c.x:5d} {c.num:4d} {c.rmse * 1e3:8.2f} "
                     f"{c.bias * 1e3:8.2f} {c.corr:7.3f}")
    return "\n".join(lines) + "\n"


def plot_comparison(results: Sequence[SiteComparison], dates: Sequence[dt.date], path: str | os.PathLike) -> Path:
    """One panel per station: InSAR (dots) and GNSS in LOS (line), mm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(results))
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.2 * n), sharex=True, squeeze=False)
    for ax, c in zip(axes[:, 0], results):
        ax.plot(dates, c.gnss * 1e3, "-", color="0.3", label="GNSS (LOS)")
        ax.plot(dates, c.insar * 1e3, "o", ms=3, color="tab:red", label="InSAR")
        ax.set_ylabel("LOS (mm)")
        ax.set_title(f"{c.site}  RMSE {c.rmse * 1e3:.1f} mm  r = {c.corr:.2f}", fontsize=9)
    axes[0, 0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    from sbts.core.io.h5 import atomic_output

    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=100, format=Path(path).suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return Path(path)


def run_gnss_comparison(timeseries: str | os.PathLike, gnss_dir: str | os.PathLike,
                        output: str | os.PathLike | None = None, plot: bool = True, **kwargs) -> tuple[Path, Path | None, list[SiteComparison]]:
    """Compare, write the text report (and the plot beside it); returns (report, plot, results)."""
    results = compare_gnss(timeseries, gnss_dir, **kwargs)
    out = Path(output) if output is not None else Path(timeseries).resolve().parent / DEFAULT_OUTPUT
    from sbts.core.io.h5 import atomic_write_text

    atomic_write_text(out, format_report(results, timeseries, kwargs.get("ref_site")))
    figure = None
    if plot:
        figure = plot_comparison(results, TimeSeries(timeseries).dates, out.with_suffix(".png"))
    logger.info("wrote %s%s (%d stations)", out, f" and {figure}" if figure else "", len(results))
    return out, figure, results


__all__ = ["read_tenv3", "read_site_list", "find_tenv3", "sample_at", "compare_gnss", "run_gnss_comparison",
           "format_report", "plot_comparison", "GnssSeries", "SiteComparison", "wrap_lon"]
