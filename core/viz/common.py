"""Shared pieces of the plotting tools: figures, headless saving, coordinates, units, strided reads.

Figures are built as plain :class:`matplotlib.figure.Figure` objects (no pyplot state) unless the
user asked for an interactive window on a machine with a display; so batch runs, tests and
``sbts run --plot`` never need a GUI backend and never leak figures.  matplotlib is imported inside
the functions so that ``sbts --help`` stays light.

Plot coordinates: geocoded files are drawn in longitude/latitude (or the projected x/y of their
grid), radar files in full-resolution pixel columns/rows, whatever the display decimation; so a
marker, a click or a transect line means the same point at any zoom.
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sbts.core.errors import DataError, InputError
from sbts.core.io.h5 import open_h5
from sbts.core.model.metadata import Metadata

logger = logging.getLogger(__name__)

MAX_DISPLAY_PIXELS = 2000  # per axis: beyond this, maps are decimated for display
DEFAULT_DPI = 150.0

# the resolution and decimation of the pictures being drawn: ``sbts run`` sets them from
# ``mintpy.plot.dpi`` / ``mintpy.plot.maxMemory`` around the overview (:func:`picture_settings`)
_DPI: contextvars.ContextVar[float] = contextvars.ContextVar("sbts_plot_dpi", default=DEFAULT_DPI)
_MAX_PIXELS: contextvars.ContextVar[int] = contextvars.ContextVar("sbts_plot_max_pixels", default=MAX_DISPLAY_PIXELS)


@contextlib.contextmanager
def picture_settings(dpi: float | None = None, max_pixels: int | None = None):
    """Within the block, figures are written at ``dpi`` and maps decimated to ``max_pixels`` per
    axis unless a call says otherwise (the overview's callers set them once, not per plot)."""
    tokens = []
    if dpi is not None:
        tokens.append((_DPI, _DPI.set(float(dpi))))
    if max_pixels is not None:
        tokens.append((_MAX_PIXELS, _MAX_PIXELS.set(int(max_pixels))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


EARTH_RADIUS_KM = 6371.0088

# display unit → (file unit, factor)
_LENGTH = {"m": 1.0, "cm": 100.0, "mm": 1000.0, "km": 1e-3}


# ---------------------------------------------------------------------------- figures
def has_display() -> bool:
    """Whether an interactive window can be opened (X11/Wayland display, macOS or Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def want_interactive(display: bool) -> bool:
    """Interactive only when asked for and possible; otherwise everything is written with Agg."""
    return bool(display) and has_display()


def new_figure(interactive: bool = False, figsize: tuple[float, float] = (7.0, 5.5), **kwargs):
    """A Figure: through pyplot (a window) when interactive, else a standalone Agg-rendered one."""
    if interactive:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, **kwargs)
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, **kwargs)


def finish(fig, save: str | os.PathLike | None = None, interactive: bool = False,
           dpi: float | None = None) -> Path | None:
    """Write ``fig`` to ``save`` (format from the extension) and show it if interactive; ``dpi``
    default: :func:`picture_settings`' (150)."""
    dpi = _DPI.get() if dpi is None else dpi
    path = None
    if save is not None:
        path = Path(save)
        if path.suffix.lower().lstrip(".") not in ("png", "pdf", "svg", "jpg", "jpeg", "eps", "tif", "tiff"):
            raise InputError(f"--save {path}: use a .png, .pdf, .svg or .jpg file name")
        from sbts.core.io.h5 import atomic_output

        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lower().lstrip("."))
        logger.info("figure written to %s", path)
    if interactive:
        import matplotlib.pyplot as plt

        plt.show()
    return path


def close(fig) -> None:
    """Release a figure (only pyplot keeps references)."""
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # noqa: BLE001  # pragma: no cover - headless figure without a manager
        pass


# ---------------------------------------------------------------------------- coordinates
def is_geo(meta: Metadata) -> bool:
    return meta.grid.geo is not None


def is_degrees(meta: Metadata) -> bool:
    g = meta.grid.geo
    return g is not None and (g.x_unit or "degrees").lower().startswith("deg")


def extent(meta: Metadata) -> tuple[float, float, float, float]:
    """``imshow`` extent (left, right, bottom, top) of the whole raster in plot coordinates."""
    length, width = meta.grid.shape
    g = meta.grid.geo
    if g is None:
        return (-0.5, width - 0.5, length - 0.5, -0.5)
    return (g.x_first, g.x_first + width * g.x_step, g.y_first + length * g.y_step, g.y_first)


def yx_to_plot(meta: Metadata, y: float, x: float) -> tuple[float, float]:
    """Plot coordinates (horizontal, vertical) of the centre of pixel (y, x)."""
    g = meta.grid.geo
    if g is None:
        return float(x), float(y)
    lat, lon = g.yx_to_lalo(y, x)
    return lon, lat


def plot_to_yx(meta: Metadata, px: float, py: float) -> tuple[int, int]:
    """Pixel (row, col) under plot coordinates ``(px, py)``."""
    g = meta.grid.geo
    if g is None:
        return int(math.floor(py + 0.5)), int(math.floor(px + 0.5))
    return int(math.floor((py - g.y_first) / g.y_step)), int(math.floor((px - g.x_first) / g.x_step))


def label_axes(ax, meta: Metadata, ticks: bool = True) -> None:
    """Axis labels in the file's coordinates and an aspect that keeps ground distances square."""
    if not ticks:
        ax.set_xticks([])
        ax.set_yticks([])
    g = meta.grid.geo
    if g is None:
        if ticks:
            ax.set_xlabel("range (pixel)")
            ax.set_ylabel("azimuth (pixel)")
        ax.set_aspect("auto" if _radar_aspect(meta) is None else _radar_aspect(meta))
        return
    if is_degrees(meta):
        if ticks:
            ax.set_xlabel("longitude (°)")
            ax.set_ylabel("latitude (°)")
        lat_mid = g.y_first + 0.5 * meta.grid.length * g.y_step
        ax.set_aspect(1.0 / max(math.cos(math.radians(lat_mid)), 0.05))
    else:
        if ticks:
            ax.set_xlabel(f"easting ({g.x_unit})")
            ax.set_ylabel(f"northing ({g.y_unit})")
        ax.set_aspect("equal")
    if ticks:
        ax.ticklabel_format(useOffset=False, style="plain")


def _radar_aspect(meta: Metadata) -> float | None:
    """Ground aspect of radar pixels (azimuth / ground-range size), when the metadata says."""
    r = meta.radar
    if not (r.azimuth_pixel_size and r.range_pixel_size):
        return None
    inc = r.incidence_angle or 35.0
    ground_range = r.range_pixel_size / max(math.sin(math.radians(inc)), 0.1)
    return float(np.clip(r.azimuth_pixel_size / ground_range, 0.1, 10.0))


def check_pixel(meta: Metadata, y: int, x: int, what: str = "pixel") -> tuple[int, int]:
    length, width = meta.grid.shape
    if not (0 <= y < length and 0 <= x < width):
        raise DataError(f"{what} y={y}, x={x} is outside the image ({length} rows × {width} columns)")
    return int(y), int(x)


def lalo_to_yx(meta: Metadata, lat: float, lon: float, path: str | os.PathLike | None = None,
               what: str = "point") -> tuple[int, int]:
    """Pixel of (lat, lon): through the geo grid, else the nearest pixel of geometryRadar.h5's lat/lon."""
    g = meta.grid.geo
    if g is not None:
        y = int(math.floor((lat - g.y_first) / g.y_step))
        x = int(math.floor((lon - g.x_first) / g.x_step))
        length, width = meta.grid.shape
        if not (0 <= y < length and 0 <= x < width):
            raise DataError(f"{what} lat={lat}, lon={lon} is outside the image "
                            f"(lat {g.y_first + length * g.y_step:.4f}..{g.y_first:.4f}, "
                            f"lon {g.x_first:.4f}..{g.x_first + width * g.x_step:.4f})")
        return y, x
    from sbts.core.io.workdir import GEOMETRY_RADAR, find_geometry

    geom = None if path is None else find_geometry(path, names=(GEOMETRY_RADAR,))
    if geom is None:
        raise InputError(f"{what} given in lat/lon but the file is in radar coordinates and no "
                         "geometryRadar.h5 with latitude/longitude is beside it; give y/x instead")
    with open_h5(geom) as f:
        if "latitude" not in f or "longitude" not in f:
            raise InputError(f"{geom}: no latitude/longitude datasets; give y/x instead")
        la, lo = f["latitude"][()].astype(np.float64), f["longitude"][()].astype(np.float64)
    dist = (la - lat) ** 2 + ((lo - lon) * math.cos(math.radians(lat))) ** 2
    if not np.isfinite(dist).any():
        raise DataError(f"{geom}: latitude/longitude are all NaN")
    y, x = np.unravel_index(int(np.nanargmin(dist)), dist.shape)
    step = np.nanmedian(np.abs(np.diff(la, axis=0))) + np.nanmedian(np.abs(np.diff(lo, axis=1)))
    if np.sqrt(dist[y, x]) > 3 * step:
        raise DataError(f"{what} lat={lat}, lon={lon} is outside the area covered by {geom}")
    return int(y), int(x)


def pixel_from_options(meta: Metadata, yx: Sequence[int] | None, lalo: Sequence[float] | None,
                       path: str | os.PathLike | None = None, what: str = "pixel") -> tuple[int, int] | None:
    """(y, x) from a ``--yx`` or ``--lalo`` option (None when neither), checked to be in the image."""
    if yx is not None and lalo is not None:
        raise InputError(f"{what}: give either y/x or lat/lon, not both")
    if yx is not None:
        return check_pixel(meta, int(yx[0]), int(yx[1]), what)
    if lalo is not None:
        return lalo_to_yx(meta, float(lalo[0]), float(lalo[1]), path, what)
    return None


def great_circle_km(lat1, lon1, lat2, lon2):
    """Haversine distance (km) on a sphere of the mean Earth radius."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


# ---------------------------------------------------------------------------- units and colours
def unit_scale(unit: str | None, target: str | None = None) -> tuple[float, str]:
    """Factor from the file ``unit`` to the display unit, and that unit's label.

    Default display units are those people read maps in: cm for displacement, cm/year for
    velocity; other units are left alone.  ``target`` overrides (m, cm, mm, with /year kept).
    """
    unit = (unit or "").strip()
    base, _, per = unit.partition("/")
    if base not in _LENGTH:
        if target and target != unit:
            raise InputError(f"--unit {target}: data in {unit or 'no unit'} cannot be converted")
        return 1.0, unit
    if target is None:
        target_base = "cm" if base == "m" else base
    else:
        target_base, _, target_per = target.partition("/")
        if target_base not in _LENGTH or (target_per and target_per != per):
            raise InputError(f"--unit {target}: data in {unit} can be shown in m, cm or mm"
                             + (f" per {per}" if per else ""))
    factor = _LENGTH[target_base] / _LENGTH[base]
    return factor, target_base + (f"/{per}" if per else "")


SEQUENTIAL_CMAP = "viridis"  # magnitudes (≥ 0): standard deviations, amplitudes, residues


def is_magnitude_kind(name: str = "") -> bool:
    """Non-negative quantities (standard deviations, amplitudes, residues): a sequential map from 0."""
    lname = name.rsplit("/", 1)[-1].lower()
    return (lname.endswith(("std", "amplitude")) or lname in ("residue", "rms", "magnitude", "amplitude"))


def is_dem_error(name: str = "", path: str | os.PathLike | None = None) -> bool:
    """The DEM error (MintPy's demErr.h5, dataset ``dem``): signed, and shown in metres as MintPy does."""
    lname = name.rsplit("/", 1)[-1].lower()
    if lname in ("demerr", "dem_error", "demerror"):
        return True
    return lname == "dem" and path is not None and "demerr" in Path(path).stem.lower()


def is_signed_kind(unit: str | None, name: str = "") -> bool:
    """Displacement-like data (zero at the reference): a diverging colour map centred on 0."""
    u = (unit or "").split("/")[0]
    lname = name.rsplit("/", 1)[-1].lower()
    if lname in ("height", "latitude", "longitude", "slantrangedistance", "incidenceangle", "azimuthangle"):
        return False
    if is_magnitude_kind(name):
        return False
    return u in _LENGTH or u == "radian"


def display_kind(unit: str | None, name: str = "", path: str | os.PathLike | None = None) -> str:
    """How a dataset is drawn: ``dem_error``, ``magnitude``, ``signed`` or ``other``."""
    if is_dem_error(name, path):
        return "dem_error"
    u = (unit or "").split("/")[0]
    if is_magnitude_kind(name) and (u in _LENGTH or u in ("radian", "", "1")):
        return "magnitude"
    return "signed" if is_signed_kind(unit, name) else "other"


def default_cmap(unit: str | None, name: str = "", wrapped: bool = False, kind: str | None = None) -> str:
    lname = name.rsplit("/", 1)[-1].lower()
    if wrapped:
        return "twilight_shifted"
    if "coherence" in lname or lname in ("mask", "watermask", "shadowmask") or lname.startswith("mask"):
        return "gray"
    kind = kind or display_kind(unit, name)
    if kind in ("dem_error", "signed"):
        return "RdBu_r"
    if kind == "magnitude":
        return SEQUENTIAL_CMAP
    if lname == "height" or lname.startswith("dem"):
        return "terrain"
    return "viridis"


def robust_vlim(arrays: Sequence[np.ndarray], symmetric: bool, percentile: float = 2.0,
                fixed: tuple[float, float] | None = None, from_zero: bool = False) -> tuple[float, float]:
    """Colour limits: the 2–98 % range of the finite values (symmetric about 0 for signed data;
    from 0 to the 98th percentile for magnitudes).

    Percentiles rather than min/max so a few outliers (unwrapping errors, edges) do not wash out
    the map.
    """
    if fixed is not None:
        return float(fixed[0]), float(fixed[1])
    values = [a[np.isfinite(a)] for a in arrays]
    values = [v for v in values if v.size]
    if not values:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    v = np.concatenate([x.ravel() for x in values])
    if v.size > 2_000_000:
        v = v[:: v.size // 1_000_000]
    lo, hi = np.percentile(v, [percentile, 100 - percentile])
    if from_zero:
        hi = float(np.percentile(np.abs(v), 100 - percentile))
        return 0.0, hi if hi > 0 else 1.0
    if symmetric:
        m = max(abs(lo), abs(hi))
        if m == 0:
            m = 1.0
        return -float(m), float(m)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return float(lo), float(hi)


def is_bool_like(a: np.ndarray) -> bool:
    if a.dtype.kind == "b":
        return True
    f = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    return f.size > 0 and bool(np.all((f == 0) | (f == 1)))


def wrap(values: np.ndarray, lo: float = -math.pi, hi: float = math.pi) -> np.ndarray:
    """Rewrap values into [lo, hi)."""
    span = hi - lo
    return (values - lo) % span + lo


# ---------------------------------------------------------------------------- reading
def display_stride(shape: tuple[int, int], max_pixels: int | None = None) -> int:
    """Decimation step that keeps a map within ``max_pixels`` per axis (default:
    :func:`picture_settings`', else :data:`MAX_DISPLAY_PIXELS`)."""
    max_pixels = _MAX_PIXELS.get() if max_pixels is None else max_pixels
    return max(1, int(math.ceil(max(shape) / max(1, max_pixels))))


def read_strided(path: str | os.PathLike, name: str, index: int | None = None, stride: int = 1,
                 rows: slice | None = None, cols: slice | None = None) -> np.ndarray:
    """One 2-D layer, read as a strided hyperslab: only the displayed pixels are read into memory."""
    rows = rows or slice(None, None, stride)
    cols = cols or slice(None, None, stride)
    with open_h5(path) as f:
        if name not in f:
            raise InputError(f"{path}: no dataset {name!r} (has: {', '.join(f.keys())})")
        ds = f[name]
        try:
            data = ds[rows, cols] if ds.ndim == 2 else ds[index, rows, cols]
        except OSError as exc:
            raise InputError(f"{path}: dataset {name!r} cannot be read ({exc})") from None
    return np.asarray(data)


def read_pixel(path: str | os.PathLike, name: str, y: int, x: int) -> np.ndarray:
    """All layers of a dataset at one pixel (a scalar for 2-D datasets)."""
    with open_h5(path) as f:
        ds = f[name]
        return np.asarray(ds[y, x] if ds.ndim == 2 else ds[:, y, x])


HDFEOS5_MASK = "HDFEOS/GRIDS/timeseries/quality/mask"


def mask_dataset_name(path: str | os.PathLike) -> str:
    with open_h5(path) as f:
        if HDFEOS5_MASK in f:  # an HDF-EOS5 file carries its own reliable-pixel mask
            return HDFEOS5_MASK
        names = [n for n, o in f.items() if getattr(o, "ndim", 0) == 2]
    name = next((n for n in ("mask", "waterMask") if n in names), names[0] if names else None)
    if name is None:
        raise InputError(f"{path}: no 2-D dataset to use as a mask")
    return name


def read_mask(path: str | os.PathLike, shape: tuple[int, int], stride: int = 1,
              rows: slice | None = None, cols: slice | None = None) -> np.ndarray:
    """A mask (True = show) read with the same decimation as the data; any 2-D non-zero dataset."""
    name = mask_dataset_name(path)
    with open_h5(path) as f:
        if tuple(f[name].shape) != tuple(shape):
            raise InputError(f"{path}: mask {name!r} has shape {f[name].shape} but the data is {tuple(shape)}")
    data = read_strided(path, name, stride=stride, rows=rows, cols=cols)
    if data.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            return np.isfinite(data) & (data != 0)
    return data != 0


def auto_mask(path: str | os.PathLike) -> Path | None:
    """The mask for ``--mask auto``: the file itself when it is HDF-EOS5 (quality/mask), else the
    maskTempCoh.h5 beside it."""
    with open_h5(path) as f:
        if HDFEOS5_MASK in f:
            return Path(path)
    return find_beside(path, "maskTempCoh.h5")


def find_beside(path: str | os.PathLike, name: str) -> Path | None:
    """``name`` near ``path`` (files in inputs/ look in the work dir): see :mod:`sbts.core.io.workdir`."""
    from sbts.core.io.workdir import find_file

    return find_file([name], Path(path).resolve())


def match_names(pattern: str, names: Sequence[str]) -> list[str]:
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def hillshade(dem: np.ndarray, meta: Metadata, stride: int = 1) -> np.ndarray:
    """Shaded relief of a DEM (matplotlib LightSource, sun from the north-west), NaN-safe."""
    from matplotlib.colors import LightSource

    dem = np.asarray(dem, np.float64)
    fill = np.nanmedian(dem) if np.isfinite(dem).any() else 0.0
    dem = np.where(np.isfinite(dem), dem, fill)
    dx = dy = 30.0 * stride  # metres; a sensible default for radar pixels
    g = meta.grid.geo
    if g is not None and is_degrees(meta):
        lat_mid = g.y_first + 0.5 * meta.grid.length * g.y_step
        dy = abs(g.y_step) * 111_320.0 * stride
        dx = abs(g.x_step) * 111_320.0 * math.cos(math.radians(lat_mid)) * stride
    elif g is not None:
        dx, dy = abs(g.x_step) * stride, abs(g.y_step) * stride
    elif meta.radar.azimuth_pixel_size and meta.radar.range_pixel_size:
        dy = meta.radar.azimuth_pixel_size * stride
        dx = meta.radar.range_pixel_size / 0.6 * stride
    return LightSource(azdeg=315, altdeg=45).hillshade(dem, vert_exag=1.0, dx=dx, dy=dy)


def date_axis(ax) -> None:
    """Readable dates on the x axis (concise year/month labels)."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


__all__ = [
    "has_display", "want_interactive", "new_figure", "finish", "close", "extent", "yx_to_plot", "plot_to_yx",
    "label_axes", "check_pixel", "lalo_to_yx", "pixel_from_options", "great_circle_km", "unit_scale",
    "default_cmap", "robust_vlim", "display_kind", "is_magnitude_kind", "is_dem_error", "wrap", "display_stride", "read_strided", "read_pixel", "read_mask",
    "find_beside", "hillshade", "date_axis", "MAX_DISPLAY_PIXELS", "picture_settings", "DEFAULT_DPI",
]
