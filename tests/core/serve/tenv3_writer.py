"""Synthetic UNR ``.tenv3`` files (the documented column layout) for stations with known motion.

Written independently of sbts's reader and LOS code: the LOS unit vector here is spelled out from
MintPy's angle convention (incidence θ from the vertical, azimuth α of the ground→satellite vector
from north, anticlockwise): ``u = (−sin θ sin α, sin θ cos α, cos θ)``.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
MJD0 = dt.date(1858, 11, 17)
FRAME_OFFSET = 0.004  # m/year: GNSS velocities are in a global frame, InSAR relative to its reference point


def los_vector(incidence_deg: float, azimuth_deg: float) -> tuple[float, float, float]:
    inc, az = math.radians(incidence_deg), math.radians(azimuth_deg)
    return -math.sin(inc) * math.sin(az), math.sin(inc) * math.cos(az), math.cos(inc)


def enu_for_los(v_los: float, incidence_deg: float, azimuth_deg: float, ve: float, vn: float) -> tuple[float, float, float]:
    """(ve, vn, vu) whose LOS projection is ``v_los`` for the given horizontal part."""
    ue, un, uu = los_vector(incidence_deg, azimuth_deg)
    return ve, vn, (v_los - ve * ue - vn * un) / uu


def tenv3_line(site: str, day: dt.date, e: float, n: float, u: float, lat: float, lon: float) -> str:
    """One 23-column line; components as integer + fractional metres (both carrying the sign)."""
    mjd = (day - MJD0).days
    week, dow = divmod(mjd - 44244, 7)
    decyr = day.year + (day.timetuple().tm_yday - 0.5) / 365.25

    def split(v: float) -> tuple[int, float]:
        whole = int(v)  # truncation: the fraction keeps the sign of the value
        return whole, v - whole

    e0, ef = split(e)
    n0, nf = split(n)
    u0, uf = split(u)
    return (f"{site} {day:%y}{MONTHS[day.month - 1]}{day:%d} {decyr:9.4f} {mjd:5d} {week:4d} {dow:1d} "
            f"{lon:7.1f} {e0:7d} {ef:9.6f} {n0:8d} {nf:9.6f} {u0:5d} {uf:9.6f} 0.0000 0.000800 0.000900 0.003000 "
            f"0.010000 -0.020000 0.030000 {lat:14.10f} {lon + 360.0:15.10f} {2240.5:10.5f}")


def write_station(folder: Path, site: str, lat: float, lon: float, first: dt.date, last: dt.date,
                  velocity_enu: tuple[float, float, float], origin: tuple[float, float, float] = (1000.0, 2100000.0, 2240.0)
                  ) -> Path:
    """Daily positions ``origin + v·t`` (t = days since ``first`` / 365.25) from ``first`` to ``last``."""
    lines = ["site YYMMMDD yyyy.yyyy __MJD week d reflon _e0(m) __east(m) ____n0(m) _north(m) u0(m) ____up(m) "
             "_ant(m) sig_e(m) sig_n(m) sig_u(m) __corr_en __corr_eu __corr_nu _latitude(deg) _longitude(deg) __height(m)"]
    day = first
    while day <= last:
        t = (day - first).days / 365.25
        e, n, u = (o + v * t for o, v in zip(origin, velocity_enu))
        lines.append(tenv3_line(site, day, e, n, u, lat, lon))
        day += dt.timedelta(days=1)
    path = Path(folder) / f"{site}.tenv3"
    path.write_text("\n".join(lines) + "\n")
    return path
