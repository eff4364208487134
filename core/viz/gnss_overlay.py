"""GNSS stations on a velocity map: LOS velocities from local UNR ``.tenv3`` files, InSAR − GNSS statistics.

What MintPy's ``view.py --show-gnss --ref-gnss SITE`` shows, computed from files on disk (nothing is
downloaded; :mod:`sbts.core.tools.gnss` reads the files):

1. each station's daily east/north/up positions are projected onto the LOS of its pixel,
   ``d_los = u · (d_e, d_n, d_u)`` with ``u = (−sin θ sin α, sin θ cos α, cos θ)`` from the
   geometry file's ``incidenceAngle`` θ / ``azimuthAngle`` α (or the file's attributes; MintPy's
   convention, see :mod:`sbts.core.tools.common`), positive toward the satellite;
2. its LOS velocity is the least-squares slope of ``d_los`` against time (years = days / 365.25)
   over the velocity file's ``START_DATE``..``END_DATE``, as MintPy fits GNSS (a linear model); a
   station with fewer than 3 days there, or covering no more than a quarter of that span, has none;
3. with a reference station, both are re-referenced to it: the GNSS velocities minus the reference
   station's, the InSAR map minus its value at the reference station's pixel (the map is then shown
   relative to that station, as MintPy does); without one, GNSS is used as is and InSAR relative to
   its own reference point;
4. per station ``Δ = InSAR − GNSS`` at the station's pixel; over the stations other than the
   reference with both values: ``bias = mean(Δ)``, ``RMSE = √mean(Δ²)``.

The formal 1-σ of a GNSS slope (from its residuals, daily positions taken as independent) is
reported but too small for real, time-correlated GNSS noise: read it as a lower bound.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sbts.core.errors import DataError, InputError
from sbts.core.io.blocks import Block
from sbts.core.io.products import Product
from sbts.core.model.dates import DAYS_PER_YEAR, parse_date
from sbts.core.tools.common import LosGeometry, enu_to_los, require_geo
from sbts.core.tools.gnss import GnssSeries, find_tenv3, read_site_list, read_tenv3

logger = logging.getLogger(__name__)

MAX_LEGEND_STATIONS = 12


@dataclass
class StationVelocity:
    """One station: where it is, its LOS series and velocity, and InSAR's velocity at its pixel (m/year)."""

    site: str
    lat: float
    lon: float
    y: int
    x: int
    incidence: float
    azimuth: float
    dates: np.ndarray  # datetime64[D], daily
    los: np.ndarray  # m, LOS displacement (as read, not referenced)
    gnss: float = math.nan  # m/year, LOS, re-referenced
    gnss_std: float = math.nan
    insar: float = math.nan  # m/year, re-referenced
    num: int = 0  # days used in the fit

    @property
    def diff(self) -> float:
        return self.insar - self.gnss


@dataclass
class GnssOverlay:
    """Stations, the reference station, and the InSAR − GNSS statistics."""

    path: Path
    dataset: str
    stations: list[StationVelocity]
    ref_site: str | None = None
    ref_yx: tuple[int, int] | None = None
    start: _dt.date | None = None
    end: _dt.date | None = None
    notes: list[str] = field(default_factory=list)

    def compared(self) -> list[StationVelocity]:
        """The stations entering the statistics: not the reference, both velocities known."""
        return [s for s in self.stations if s.site != self.ref_site and np.isfinite(s.gnss) and np.isfinite(s.insar)]

    @property
    def num(self) -> int:
        return len(self.compared())

    @property
    def bias(self) -> float:
        d = np.array([s.diff for s in self.compared()])
        return float(d.mean()) if d.size else math.nan

    @property
    def rmse(self) -> float:
        d = np.array([s.diff for s in self.compared()])
        return float(np.sqrt(np.mean(d ** 2))) if d.size else math.nan

    def station(self, site: str) -> StationVelocity:
        for s in self.stations:
            if s.site == site.upper():
                return s
        raise InputError(f"no GNSS station {site!r} (stations: {', '.join(s.site for s in self.stations)})")

    def summary(self, factor: float = 1000.0, unit: str = "mm/year") -> str:
        ref = f", relative to {self.ref_site}" if self.ref_site else ""
        return (f"InSAR − GNSS{ref}: RMSE {self.rmse * factor:.2f} {unit}, bias {self.bias * factor:+.2f} {unit} "
                f"({self.num} station{'s' if self.num != 1 else ''})")

    def report(self, factor: float = 1000.0, unit: str = "mm/year") -> str:
        lines = [f"# {self.path.name}:{self.dataset} vs GNSS LOS velocity ({unit}), "
                 f"{_fmt_date(self.start)}..{_fmt_date(self.end)}",
                 "# site      lat        lon      y     x    gnss   insar   insar-gnss"]
        for s in self.stations:
            tag = "  (reference)" if s.site == self.ref_site else ""
            lines.append(f"{s.site:6s} {s.lat:9.4f} {s.lon:10.4f} {s.y:5d} {s.x:5d} {s.gnss * factor:7.2f} "
                         f"{s.insar * factor:7.2f} {s.diff * factor:8.2f}{tag}")
        lines.append("# " + self.summary(factor, unit))
        return "\n".join(lines)

    def as_json(self, factor: float, unit: str) -> dict:
        def num(v):
            return None if not np.isfinite(v) else float(v) * factor

        return {
            "unit": unit, "ref_site": self.ref_site, "ref_yx": list(self.ref_yx) if self.ref_yx else None,
            "start": _fmt_date(self.start), "end": _fmt_date(self.end), "file": self.path.name,
            "rmse": num(self.rmse), "bias": num(self.bias), "num": self.num, "notes": self.notes,
            "stations": [{"site": s.site, "lat": s.lat, "lon": s.lon, "y": s.y, "x": s.x, "gnss": num(s.gnss),
                          "gnss_std": num(s.gnss_std), "insar": num(s.insar), "diff": num(s.diff), "days": s.num,
                          "reference": s.site == self.ref_site} for s in self.stations],
        }


def _fmt_date(d: _dt.date | None) -> str:
    return d.strftime("%Y%m%d") if d else "-"


def los_velocity(dates: np.ndarray, los: np.ndarray, start: _dt.date | None, end: _dt.date | None
                 ) -> tuple[float, float, int]:
    """(slope m/year, its formal 1-σ, days used) over ``start``..``end`` (rules in the module docstring)."""
    days = np.asarray(dates, "datetime64[D]")
    keep = np.isfinite(los)
    if start is not None:
        keep &= days >= np.datetime64(start, "D")
    if end is not None:
        keep &= days <= np.datetime64(end, "D")
    n = int(keep.sum())
    if n < 3:
        return math.nan, math.nan, n
    t = (days[keep] - days[keep][0]).astype(np.float64) / DAYS_PER_YEAR
    if start is not None and end is not None and t[-1] <= (end - start).days / DAYS_PER_YEAR / 4:
        return math.nan, math.nan, n
    d = los[keep]
    tc = t - t.mean()
    sxx = float(np.sum(tc ** 2))
    slope = float(np.sum(tc * (d - d.mean())) / sxx)
    resid = d - d.mean() - slope * tc
    std = float(math.sqrt(np.sum(resid ** 2) / (n - 2) / sxx)) if n > 2 else math.nan
    return slope, std, n


def _find_geometry(path: Path, geometry: str | os.PathLike | None):
    if geometry is not None:
        return Path(geometry)
    from sbts.core.io.workdir import find_geometry

    return find_geometry(path, path.parent, names=("geometryGeo.h5", "geometryRadar.h5"))


def _los_geometry(product: Product, geometry: str | os.PathLike | None) -> LosGeometry:
    found = _find_geometry(product.path, geometry)
    if found is not None:
        try:
            return LosGeometry(product.metadata, product.path, found)
        except InputError as exc:
            if geometry is not None:
                raise
            logger.warning("%s not used for the LOS angles (%s)", found, exc)
    return LosGeometry(product.metadata, product.path, None)


def _insar_at(product: Product, dataset: str, y: int, x: int, mask: np.ndarray | None) -> float:
    v = float(product.read(dataset, Block(y, y + 1, x, x + 1)).reshape(-1)[0])
    ref = product.metadata.reference
    if v == 0.0 and not (ref.has_point and (ref.y, ref.x) == (y, x)):
        return math.nan  # MintPy's "no data" zero
    if mask is not None and not mask[y, x]:
        return math.nan
    return v


def gnss_velocity_overlay(path: str | os.PathLike, gnss_dir: str | os.PathLike, *, dataset: str = "velocity",
                          ref_site: str | None = None, geometry: str | os.PathLike | None = None,
                          site_list: str | os.PathLike | None = None, mask: str | os.PathLike | None = None,
                          sites: Sequence[str] | None = None) -> GnssOverlay:
    """The stations of ``gnss_dir`` inside the grid of the velocity file ``path`` (see the module docstring)."""
    product = Product.open(path)
    meta = product.metadata
    geo = require_geo(meta, product.path)
    product._require(product.resolve(dataset))
    dataset = product.resolve(dataset)
    if len(product.dataset_shape(dataset)) != 2:
        raise InputError(f"{path}: {dataset!r} is not a map; the GNSS overlay compares velocity maps")
    extra = meta.extra
    start = parse_date(extra["START_DATE"]) if str(extra.get("START_DATE", "")).strip() else None
    end = parse_date(extra["END_DATE"]) if str(extra.get("END_DATE", "")).strip() else None
    coords = read_site_list(site_list) if site_list is not None else {}
    mask_arr = None
    if mask is not None:
        from sbts.core.viz.common import read_mask

        mask_arr = read_mask(mask, meta.grid.shape)
    los_geom = _los_geometry(product, geometry)
    length, width = meta.grid.shape
    stations: list[StationVelocity] = []
    notes: list[str] = []
    wanted = list(sites) + ([ref_site] if ref_site else []) if sites else None
    for file in find_tenv3(gnss_dir, wanted):
        s: GnssSeries = read_tenv3(file)
        if s.site in coords:
            s.lat, s.lon = coords[s.site]
        if s.lat is None:
            notes.append(f"{s.site}: no coordinates (20-column .tenv3; give a station list)")
            continue
        y = math.floor((s.lat - geo.y_first) / geo.y_step)
        x = math.floor((s.lon - geo.x_first) / geo.x_step)
        if not (0 <= y < length and 0 <= x < width):
            logger.debug("%s (%.4f, %.4f) is outside the grid", s.site, s.lat, s.lon)
            continue
        inc, az = los_geom.angles(Block(y, y + 1, x, x + 1) if los_geom.geometry is not None else None)
        inc, az = float(np.ravel(inc)[0]), float(np.ravel(az)[0])
        los = enu_to_los(s.east - s.east[0], s.north - s.north[0], s.up - s.up[0], inc, az)
        st = StationVelocity(s.site, float(s.lat), float(s.lon), y, x, inc, az, s.dates, np.asarray(los, np.float64))
        st.gnss, st.gnss_std, st.num = los_velocity(s.dates, st.los, start, end)
        if not np.isfinite(st.gnss):
            notes.append(f"{s.site}: too few GNSS days in {_fmt_date(start)}..{_fmt_date(end)} for a velocity")
        st.insar = _insar_at(product, dataset, y, x, mask_arr)
        stations.append(st)
    if not stations:
        raise DataError(f"no GNSS station of {gnss_dir} lies inside the grid of {Path(path).name} "
                        "with known coordinates")
    overlay = GnssOverlay(product.path, dataset, stations, start=start, end=end, notes=notes)
    if ref_site is not None:
        ref = next((s for s in stations if s.site == ref_site.upper()), None)
        if ref is None:
            raise InputError(f"--ref-gnss {ref_site}: not among the stations inside the grid "
                             f"({', '.join(s.site for s in stations)})")
        if not np.isfinite(ref.gnss):
            raise InputError(f"--ref-gnss {ref_site}: no GNSS velocity over "
                             f"{_fmt_date(start)}..{_fmt_date(end)} (too few days)")
        ref_insar = float(product.read(dataset, Block(ref.y, ref.y + 1, ref.x, ref.x + 1)).reshape(-1)[0])
        if not np.isfinite(ref_insar):
            raise InputError(f"--ref-gnss {ref_site}: the map has no value at its pixel y={ref.y}, x={ref.x}")
        ref_gnss = ref.gnss
        for s in stations:
            s.gnss = s.gnss - ref_gnss
            s.insar = s.insar - ref_insar if s is not ref else 0.0
        overlay.ref_site = ref.site
        overlay.ref_yx = (ref.y, ref.x)
    for note in notes:
        logger.info("GNSS: %s", note)
    return overlay


def los_series(overlay: GnssOverlay, site: str, ref_date: _dt.date | None = None,
               window: tuple[_dt.date, _dt.date] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A station's daily LOS displacement (m) for a history chart: minus the reference station's (on the
    days both have), within ``window``, and zero at ``ref_date`` (the nearest day within 6 days; else
    zero mean)."""
    st = overlay.station(site)
    dates, los = st.dates, st.los.copy()
    if overlay.ref_site is not None and st.site != overlay.ref_site:
        ref = overlay.station(overlay.ref_site)
        common, i, j = np.intersect1d(dates, ref.dates, return_indices=True)
        dates, los = common, los[i] - ref.los[j]
    elif overlay.ref_site is not None:
        los = np.zeros_like(los)
    if window is not None:
        keep = (dates >= np.datetime64(window[0], "D")) & (dates <= np.datetime64(window[1], "D"))
        dates, los = dates[keep], los[keep]
    if los.size:
        if ref_date is not None:
            gap = np.abs(dates - np.datetime64(ref_date, "D")).astype(np.int64)
            k = int(np.argmin(gap))
            los = los - (los[k] if gap[k] <= 6 else los.mean())
        else:
            los = los - los.mean()
    return dates, los


# ---------------------------------------------------------------------------- drawing (sbts view)
def draw_overlay(ax, overlay: GnssOverlay, cmap: str, vlim: tuple[float, float], factor: float, unit: str,
                 label: bool = False):
    """Stations as markers coloured on the map's colour scale; statistics and per-station Δ in the legend.

    Returns the marker collection (its face colours are the stations' GNSS velocities through the
    map's colour map and limits).
    """
    import matplotlib
    from matplotlib.lines import Line2D

    cm = matplotlib.colormaps[cmap]
    norm = matplotlib.colors.Normalize(vmin=vlim[0], vmax=vlim[1])
    known = [s for s in overlay.stations if np.isfinite(s.gnss)]
    unknown = [s for s in overlay.stations if not np.isfinite(s.gnss)]
    values = np.array([s.gnss * factor for s in known])
    sc = ax.scatter([s.lon for s in known], [s.lat for s in known], c=values, cmap=cm, norm=norm, s=70,
                    edgecolors="k", linewidths=0.9, zorder=12)
    if unknown:
        ax.scatter([s.lon for s in unknown], [s.lat for s in unknown], s=50, facecolors="none",
                   edgecolors="0.3", linewidths=0.9, zorder=11)
    if overlay.ref_site is not None:
        ref = overlay.station(overlay.ref_site)
        ax.scatter([ref.lon], [ref.lat], marker="s", s=130, facecolors="none", edgecolors="k", linewidths=1.8,
                   zorder=13)
    if label:
        for s in overlay.stations:
            ax.annotate(s.site, (s.lon, s.lat), xytext=(4, 4), textcoords="offset points", fontsize=7, zorder=14)
    handles = [Line2D([], [], ls="", marker="o", mfc="w", mec="k",
                      label=f"GNSS LOS velocity ({unit})" + (f", ref. {overlay.ref_site}" if overlay.ref_site else "")),
               Line2D([], [], ls="", label=f"InSAR − GNSS: RMSE {overlay.rmse * factor:.2f}, "
                                          f"bias {overlay.bias * factor:+.2f} ({overlay.num} stations)")]
    compared = sorted(overlay.compared(), key=lambda s: -abs(s.diff))
    for s in compared[:MAX_LEGEND_STATIONS]:
        handles.append(Line2D([], [], ls="", label=f"{s.site}: Δ {s.diff * factor:+.2f}"))
    if len(compared) > MAX_LEGEND_STATIONS:
        handles.append(Line2D([], [], ls="", label=f"… {len(compared) - MAX_LEGEND_STATIONS} more (sbts view -v)"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2 if len(handles) > 4 else 1,
              fontsize=7, frameon=False, handlelength=1.0, title="GNSS (UNR .tenv3)", title_fontsize=7)
    return sc


def overlay_for_view(product: Product, layers, gnss_dir, ref_gnss: str | None, site_list, mask) -> GnssOverlay:
    """The overlay of ``sbts view FILE [DATASET] --gnss DIR``: one velocity map is required."""
    if len(layers) != 1 or layers[0].index is not None:
        raise InputError("--gnss compares velocities: show one velocity map (e.g. sbts view velocity.h5 velocity "
                         "--gnss DIR)")
    unit = layers[0].unit or ""
    if not unit.endswith("/year"):
        raise InputError(f"--gnss compares velocities, but {layers[0].dataset!r} is in {unit or 'no unit'}; "
                         "show a velocity (m/year) dataset")
    overlay = gnss_velocity_overlay(product.path, gnss_dir, dataset=layers[0].dataset, ref_site=ref_gnss,
                                    site_list=site_list, mask=mask)
    logger.info("%s", overlay.report())
    return overlay


__all__ = ["GnssOverlay", "StationVelocity", "gnss_velocity_overlay", "los_velocity", "los_series",
           "draw_overlay", "overlay_for_view"]
