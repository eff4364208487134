"""IONEX 1.0 global ionosphere maps (Schaer, Gurtner & Feltens 1998, "IONEX: the IONosphere Map EXchange
format version 1"): reader and the interpolation the format description recommends.

A file holds vertical TEC maps at regular epochs on a lat/lon grid at one shell height (``HGT1``), values
in units of 10^EXPONENT TECU, 9999 = no value.  Each map is a block ``START OF TEC MAP`` … ``END OF TEC
MAP`` with ``EPOCH OF CURRENT MAP`` and, per latitude, a ``LAT/LON1/LON2/DLON/H`` record followed by the
values as I5, 16 per line.  RMS and height maps (if any) are skipped.

Interpolation (format description §2, "Interpolation"): bilinear in space between the four nodes around
the point, and in time between the two maps around t with each map rotated by the Earth's rotation
relative to the Sun (the ionosphere is nearly fixed to the Sun):

    E(β, λ, t) = (T_{i+1} − t)/(T_{i+1} − T_i) · E_i(β, λ + (t − T_i)) + (t − T_i)/(T_{i+1} − T_i) · E_{i+1}(β, λ + (t − T_{i+1}))

with times converted to degrees of longitude at 360° per day.
"""

from __future__ import annotations

import datetime as _dt
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.api import InputError, read_text

NO_VALUE = 9999
DEG_PER_SECOND = 360.0 / 86400.0


@dataclass(frozen=True)
class IonexMaps:
    """The TEC maps of one IONEX file.

    Attributes
    ----------
    epochs : list of datetime.datetime
        UTC epoch of each map.
    lat, lon : numpy.ndarray
        Grid nodes (deg); ``lat`` as in the file (usually north to south), ``lon`` west to east.
    tec : numpy.ndarray
        (maps, lat, lon) vertical TEC in TECU (10^16 el/m²), NaN where the file has no value.
    height : float
        Single-layer (shell) height, m.
    radius : float
        Base Earth radius of the maps, m.
    path : pathlib.Path
    """

    epochs: list[_dt.datetime]
    lat: np.ndarray
    lon: np.ndarray
    tec: np.ndarray
    height: float
    radius: float
    path: Path

    def vtec(self, when: _dt.datetime, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Vertical TEC (TECU) at ``when`` and points ``lat``/``lon`` (deg), rotated-map interpolation."""
        seconds = np.array([(e - self.epochs[0]).total_seconds() for e in self.epochs])
        t = (when - self.epochs[0]).total_seconds()
        if not seconds[0] <= t <= seconds[-1]:
            raise InputError(f"{self.path}: its maps span {self.epochs[0]:%Y-%m-%d %H:%M} to "
                             f"{self.epochs[-1]:%Y-%m-%d %H:%M} UTC, not {when:%Y-%m-%d %H:%M:%S}; give the file of "
                             "that day")
        i = int(min(np.searchsorted(seconds, t, side="right") - 1, len(seconds) - 2))
        t0, t1 = seconds[i], seconds[i + 1]
        w1 = (t - t0) / (t1 - t0)
        e0 = self._space(i, lat, np.asarray(lon, np.float64) + (t - t0) * DEG_PER_SECOND)
        e1 = self._space(i + 1, lat, np.asarray(lon, np.float64) + (t - t1) * DEG_PER_SECOND)
        return (1.0 - w1) * e0 + w1 * e1

    def _space(self, k: int, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Bilinear interpolation of map ``k``; longitudes wrapped onto the grid's 360° span."""
        lon0, dlon = float(self.lon[0]), float(self.lon[1] - self.lon[0])
        span = abs(dlon) * (len(self.lon) - 1)
        lon = np.asarray(lon, np.float64)
        if span >= 360.0 - 1e-6:
            lon = (lon - lon0) % 360.0 + lon0
        lat0, dlat = float(self.lat[0]), float(self.lat[1] - self.lat[0])
        fy = np.clip((np.asarray(lat, np.float64) - lat0) / dlat, 0.0, len(self.lat) - 1.0)
        fx = np.clip((lon - lon0) / dlon, 0.0, len(self.lon) - 1.0)
        i0 = np.minimum(np.floor(fy).astype(np.intp), len(self.lat) - 2)
        j0 = np.minimum(np.floor(fx).astype(np.intp), len(self.lon) - 2)
        q, p = fy - i0, fx - j0
        m = self.tec[k]
        return ((1 - p) * (1 - q) * m[i0, j0] + p * (1 - q) * m[i0, j0 + 1] + q * (1 - p) * m[i0 + 1, j0]
                + p * q * m[i0 + 1, j0 + 1])


def _text(path: Path) -> str:
    if path.suffix.lower() == ".gz":
        try:
            with gzip.open(path, "rt", encoding="ascii", errors="replace") as f:
                return f.read()
        except OSError as exc:
            raise InputError(f"{path}: cannot be read as gzip ({exc}); give the uncompressed IONEX file") from None
    if path.suffix == ".Z":
        raise InputError(f"{path}: Unix-compressed (.Z) IONEX files are not read; uncompress it (gzip -d) first")
    return read_text(path, "IONEX file", limit=64 * 1024**2)


def _floats(text: str, what: str, path: Path, count: int) -> list[float]:
    try:
        values = [float(v) for v in text.split()[:count]]
    except ValueError:
        values = []
    if len(values) != count:
        raise InputError(f"{path}: IONEX header record {what!r} is {text.strip()!r}; expected {count} numbers")
    return values


def _epoch(text: str, path: Path) -> _dt.datetime:
    v = _floats(text, "EPOCH", path, 6)
    try:
        return _dt.datetime(int(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]), int(v[5]))
    except ValueError:
        raise InputError(f"{path}: IONEX epoch {text.strip()!r} is not a date") from None


def read_ionex(path: str | Path) -> IonexMaps:
    """The vertical TEC maps of the IONEX file ``path`` (plain text or ``.gz``)."""
    path = Path(path)
    lines = _text(path).splitlines()
    header: dict[str, str] = {}
    k = 0
    while k < len(lines):
        label = lines[k][60:].strip()
        if label == "END OF HEADER":
            break
        header.setdefault(label, lines[k][:60])
        k += 1
    else:
        raise InputError(f"{path}: no 'END OF HEADER' record; not an IONEX file")
    if "IONEX VERSION / TYPE" not in header:
        raise InputError(f"{path}: no 'IONEX VERSION / TYPE' record; not an IONEX file")
    if "MAP DIMENSION" in header and int(float(header["MAP DIMENSION"].split()[0])) != 2:
        raise InputError(f"{path}: 3-D IONEX maps are not supported (MAP DIMENSION != 2)")
    lat1, lat2, dlat = _floats(header.get("LAT1 / LAT2 / DLAT", ""), "LAT1 / LAT2 / DLAT", path, 3)
    lon1, lon2, dlon = _floats(header.get("LON1 / LON2 / DLON", ""), "LON1 / LON2 / DLON", path, 3)
    hgt = _floats(header.get("HGT1 / HGT2 / DHGT", ""), "HGT1 / HGT2 / DHGT", path, 3)[0]
    radius = _floats(header.get("BASE RADIUS", "6371.0"), "BASE RADIUS", path, 1)[0]
    exponent = int(_floats(header.get("EXPONENT", "-1"), "EXPONENT", path, 1)[0])
    if dlat == 0 or dlon == 0:
        raise InputError(f"{path}: IONEX grid step is zero (DLAT {dlat}, DLON {dlon})")
    nlat = int(round((lat2 - lat1) / dlat)) + 1
    nlon = int(round((lon2 - lon1) / dlon)) + 1
    lat = lat1 + dlat * np.arange(nlat)
    lon = lon1 + dlon * np.arange(nlon)
    epochs: list[_dt.datetime] = []
    maps: list[np.ndarray] = []
    k += 1
    while k < len(lines):
        if lines[k][60:].strip() != "START OF TEC MAP":
            k += 1
            continue
        grid = np.full((nlat, nlon), np.nan)
        epoch = None
        k += 1
        row = -1
        values: list[int] = []
        while k < len(lines) and lines[k][60:].strip() != "END OF TEC MAP":
            label = lines[k][60:].strip()
            if label == "EPOCH OF CURRENT MAP":
                epoch = _epoch(lines[k][:60], path)
            elif label == "LAT/LON1/LON2/DLON/H":
                if row >= 0:
                    _fill(grid, row, values, path)
                band = float(lines[k][2:8])
                row = int(round((band - lat1) / dlat))
                values = []
            else:
                text = lines[k].rstrip("\n")
                try:
                    values += [int(text[j:j + 5]) for j in range(0, len(text), 5) if text[j:j + 5].strip()]
                except ValueError:
                    raise InputError(f"{path}: line {k + 1} {text.strip()[:40]!r} is not IONEX values (I5)") from None
            k += 1
        if row >= 0:
            _fill(grid, row, values, path)
        if epoch is None:
            raise InputError(f"{path}: a TEC map has no 'EPOCH OF CURRENT MAP' record")
        epochs.append(epoch)
        maps.append(grid)
        k += 1
    if len(maps) < 2:
        raise InputError(f"{path}: {len(maps)} TEC map(s); interpolation in time needs at least 2")
    tec = np.stack(maps) * 10.0 ** exponent
    return IonexMaps(epochs, lat, lon, tec, hgt * 1e3, radius * 1e3, path)


def _fill(grid: np.ndarray, row: int, values: list[int], path: Path) -> None:
    if not 0 <= row < grid.shape[0] or len(values) != grid.shape[1]:
        raise InputError(f"{path}: a latitude band holds {len(values)} values for {grid.shape[1]} longitudes "
                         f"(or lies outside LAT1/LAT2); the file is damaged")
    v = np.asarray(values, np.float64)
    v[v == NO_VALUE] = np.nan
    grid[row] = v


def ionex_names(solution: str, day: _dt.date) -> list[str]:
    """File names of ``solution``'s daily map of ``day``: the IGS short name and the long (2023+) one."""
    doy = day.timetuple().tm_yday
    short = f"{solution.lower()}g{doy:03d}0.{day.year % 100:02d}i"
    long = f"{solution.upper()}0OPSFIN_{day.year:04d}{doy:03d}0000_01D_*_GIM.INX"
    return [short, short + ".gz", short + ".Z", long, long + ".gz"]


def find_ionex(folders: list[Path], solution: str, day: _dt.date) -> Path | None:
    """The IONEX file of ``day`` in the first folder holding one."""
    for folder in folders:
        if not folder.is_dir():
            continue
        for name in ionex_names(solution, day):
            found = sorted(folder.glob(name))
            if found:
                return found[0]
    return None
