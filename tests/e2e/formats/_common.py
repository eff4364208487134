"""Shared by the format writers: the synthetic stack seen as a radar image, and small file helpers.

The synthetic stack (:func:`sbts.core.demo.synthetic.make_synthetic_stack`) lies on a lat/lon grid.  The
radar-coded formats (GAMMA, ROI_PAC, ISCE) treat that grid as the *radar* grid instead: row = azimuth
line, column = range sample, with the pixel spacings of the stack's attributes (AZIMUTH_PIXEL_SIZE
along track, RANGE_PIXEL_SIZE / sin θ on the ground).  :class:`RadarFrame` places that radar image
on the Earth — an affine map from (line, sample) to (lat, lon) rotated by the heading, lines
advancing along the track (north for an ascending pass), samples toward the look direction — and
gives both kinds of lookup table: lat/lon per radar pixel (ISCE) and radar (line, sample) per pixel
of a lat/lon grid around the footprint (GAMMA ``*.UTM_TO_RDC``, ROI_PAC ``geomap*.trans``).  Being
affine, the mapping is exact both ways, so the tests can geocode the truth independently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPEED_OF_LIGHT = 299_792_458.0
EARTH_MEAN_RADIUS = 6_371_008.8  # m, for degrees ↔ metres on the small footprint


def pairs(synth) -> list[tuple[str, str, int]]:
    """(date1, date2, pair index) as YYYYMMDD strings."""
    ds = synth.date_list
    return [(ds[i], ds[j], k) for k, (i, j) in enumerate(zip(synth.date1_index, synth.date2_index))]


def yymmdd(date: str) -> str:
    return date[2:]


def stamps(folder: Path, pattern: str) -> dict[str, tuple[int, int]]:
    """Inode and modification time of each file of ``folder`` matching ``pattern``: a file written
    again (under a temporary name, then renamed) changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(Path(folder).glob(pattern))}


def hold_back(root: Path, date: str, held: Path):
    """Move aside the top-most files and folders under ``root`` (outside ``root/work`` and ``held``)
    whose name holds ``date`` (YYYYMMDD, YYYY-MM-DD, or ROI_PAC's YYMMDD), as if that acquisition
    had not arrived yet.  Returns the function that brings them back."""
    forms = (date, f"{date[:4]}-{date[4:6]}-{date[6:]}", date[2:])
    skip = (Path(root) / "work", Path(held))
    late: list[Path] = []
    for p in sorted(Path(root).rglob("*")):
        if any(p == q or p.is_relative_to(q) for q in (*skip, *late)):
            continue
        if any(f in p.name for f in forms):
            late.append(p)
    assert late, f"nothing under {root} names {date}"
    Path(held).mkdir(parents=True, exist_ok=True)
    for k, p in enumerate(late):
        p.rename(Path(held) / str(k))

    def arrive() -> None:
        for k, p in enumerate(late):
            (Path(held) / str(k)).rename(p)

    return arrive


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_template(root: Path, name: str, lines: dict[str, str]) -> Path:
    """``root/work/<name>.cfg`` with the file patterns only (MintPy's defaults for the rest)."""
    body = "".join(f"{k:<27s} = {v}\n" for k, v in lines.items())
    return write_text(root / "work" / f"{name}.cfg", f"# {name}: file patterns only; every other option is MintPy's default\n" + body)


@dataclass(frozen=True)
class RadarFrame:
    """The synthetic grid as a radar image placed on the Earth (see the module docstring)."""

    length: int
    width: int
    lat_c: float  # centre of the image (deg)
    lon_c: float
    heading: float  # deg, clockwise from north
    az_spacing: float  # m on the ground along track
    rg_spacing: float  # m on the ground across track

    @classmethod
    def of(cls, synth) -> RadarFrame:
        a = synth.attrs
        length, width = synth.shape
        lat_c = float(np.mean(synth.lat_axis))
        lon_c = float(np.mean(synth.lon_axis))
        inc = math.radians(float(np.median(synth.incidence_angle)))
        return cls(length, width, lat_c, lon_c, float(a["HEADING"]), float(a["AZIMUTH_PIXEL_SIZE"]),
                   float(a["RANGE_PIXEL_SIZE"]) / math.sin(inc))

    # (line, sample) → (north, east) metres from the image centre: along track and toward the look
    def _matrix(self) -> np.ndarray:
        h = math.radians(self.heading)
        look = h + math.pi / 2  # right looking
        return np.array([[math.cos(h) * self.az_spacing, math.cos(look) * self.rg_spacing],
                         [math.sin(h) * self.az_spacing, math.sin(look) * self.rg_spacing]])

    def _metres_per_degree(self) -> tuple[float, float]:
        m = math.radians(1.0) * EARTH_MEAN_RADIUS
        return m, m * math.cos(math.radians(self.lat_c))

    def latlon(self, line, sample) -> tuple[np.ndarray, np.ndarray]:
        """Latitude/longitude of (fractional) radar pixel centres."""
        line, sample = np.asarray(line, np.float64), np.asarray(sample, np.float64)
        m = self._matrix()
        dl, ds = line - (self.length - 1) / 2, sample - (self.width - 1) / 2
        north, east = m[0, 0] * dl + m[0, 1] * ds, m[1, 0] * dl + m[1, 1] * ds
        mlat, mlon = self._metres_per_degree()
        return self.lat_c + north / mlat, self.lon_c + east / mlon

    def radar_index(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (line, sample) of points (the exact inverse of :meth:`latlon`)."""
        mlat, mlon = self._metres_per_degree()
        north = (np.asarray(lat, np.float64) - self.lat_c) * mlat
        east = (np.asarray(lon, np.float64) - self.lon_c) * mlon
        inv = np.linalg.inv(self._matrix())
        dl = inv[0, 0] * north + inv[0, 1] * east
        ds = inv[1, 0] * north + inv[1, 1] * east
        return dl + (self.length - 1) / 2, ds + (self.width - 1) / 2

    def radar_latlon_grids(self) -> tuple[np.ndarray, np.ndarray]:
        """(L, W) latitude and longitude of every radar pixel centre (ISCE's lat.rdr / lon.rdr)."""
        ii, jj = np.mgrid[: self.length, : self.width]
        return self.latlon(ii, jj)

    def corners(self) -> list[tuple[float, float]]:
        """(lat, lon) of the four corner pixels: first line near/far range, last line near/far range."""
        out = []
        for i, j in ((0, 0), (0, self.width - 1), (self.length - 1, 0), (self.length - 1, self.width - 1)):
            la, lo = self.latlon(i, j)
            out.append((float(la), float(lo)))
        return out

    # -------------------------------------------------------------- geocoded lookup grid
    def geo_grid(self, step: float = 1.0 / 3600.0) -> dict:
        """A lat/lon grid (pixel-corner Y_FIRST/X_FIRST) holding the footprint with a margin of 2 pixels."""
        lat, lon = self.radar_latlon_grids()
        n, s = lat.max() + 2 * step, lat.min() - 2 * step
        w, e = lon.min() - 2 * step, lon.max() + 2 * step
        y_first = math.ceil(n / step) * step
        x_first = math.floor(w / step) * step
        length = int(math.ceil((y_first - s) / step))
        width = int(math.ceil((e - x_first) / step))
        return {"y_first": y_first, "x_first": x_first, "y_step": -step, "x_step": step,
                "length": length, "width": width}

    def lookup(self, grid: dict) -> tuple[np.ndarray, np.ndarray]:
        """(line, sample) float32 of each pixel centre of ``grid``; 0, 0 outside the image (GAMMA, ROI_PAC)."""
        rows = np.arange(grid["length"])
        cols = np.arange(grid["width"])
        lat = grid["y_first"] + (rows[:, None] + 0.5) * grid["y_step"] + 0 * cols[None, :]
        lon = grid["x_first"] + (cols[None, :] + 0.5) * grid["x_step"] + 0 * rows[:, None]
        line, sample = self.radar_index(lat, lon)
        inside = (line >= -0.5) & (line <= self.length - 0.5) & (sample >= -0.5) & (sample <= self.width - 0.5)
        line = np.where(inside, line, 0.0).astype(np.float32)
        sample = np.where(inside, sample, 0.0).astype(np.float32)
        return line, sample

    def nearest_radar_pixel(self, grid: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, inside) of the radar pixel nearest to each pixel of ``grid``: geocoding the
        truth with nearest neighbour, independently of sbts."""
        line, sample = self.lookup(grid)
        inside = (line != 0) | (sample != 0)
        return (np.clip(np.floor(line + 0.5).astype(int), 0, self.length - 1),
                np.clip(np.floor(sample + 0.5).astype(int), 0, self.width - 1), inside)
