"""``sbts tsview``: a displacement map on top, the history of one pixel below.

The pixel comes from ``--yx``/``--lalo``, a click on the map (interactive), or by default the
pixel of largest displacement on the shown date.  Each history is plotted with a least-squares fit
of a time-function model (linear + annual by default, the same design matrix as ``sbts velocity``)
whose velocity is given in the legend: the number people compare with GNSS or with velocity.h5.
Several files (e.g. before/after a correction) are overlaid, each shifted by ``offset`` so the
curves do not hide each other.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.errors import DataError, InputError
from sbts.core.io.products import Product, TimeSeries
from sbts.core.model.dates import DAYS_PER_YEAR, format_date
from sbts.core.model.timefunc import TimeFunctionModel
from sbts.core.viz import common as c
from sbts.core.viz.maps import Layer, draw_map, prepare_maps

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PixelFit:
    """Least-squares fit of a time-function model to one pixel's history (metres, years)."""

    model: TimeFunctionModel
    origin: _dt.date
    coef: np.ndarray
    rms: float

    @property
    def velocity(self) -> float:
        """m/year (0 when the model has no linear term)."""
        return float(self.coef[1]) if self.model.polynomial >= 1 else 0.0

    @property
    def annual_amplitude(self) -> float | None:
        if 1.0 not in self.model.periods:
            return None
        k = self.model.polynomial + 1 + 2 * self.model.periods.index(1.0)
        return float(np.hypot(self.coef[k], self.coef[k + 1]))

    def evaluate(self, dates: Sequence[_dt.date]) -> np.ndarray:
        return self.model.design_matrix(list(dates), origin=self.origin) @ self.coef


def fit_pixel(dates: Sequence[_dt.date], values: np.ndarray, polynomial: int = 1,
              periods: Sequence[float] = (1.0,)) -> PixelFit | None:
    """Fit ``values`` (m) at ``dates``; None when fewer than 3 finite dates.

    Periodic terms need a time span of at least one period and two dates more than unknowns;
    otherwise they are left out (an annual term fitted to 5 months of data is meaningless).
    """
    dates = list(dates)
    values = np.asarray(values, np.float64)
    ok = np.isfinite(values)
    if ok.sum() < 3:
        return None
    used = [d for d, k in zip(dates, ok) if k]
    span = (used[-1] - used[0]).days / DAYS_PER_YEAR
    periods = tuple(p for p in periods if span >= p)
    model = TimeFunctionModel(polynomial=polynomial, periods=periods)
    if ok.sum() < model.num_columns + 2:
        model = TimeFunctionModel(polynomial=min(polynomial, 1))
    G = model.design_matrix(used, origin=used[0])
    coef, *_ = np.linalg.lstsq(G, values[ok], rcond=None)
    rms = float(np.sqrt(np.mean((G @ coef - values[ok]) ** 2)))
    return PixelFit(model, used[0], coef, rms)


def pixel_history(product: TimeSeries, y: int, x: int, ref_yx: tuple[int, int] | None = None,
                  zero_first: bool = False) -> np.ndarray:
    """Displacement (m) of pixel (y, x) at every date; optionally re-referenced and zeroed at the start."""
    c.check_pixel(product.metadata, y, x)
    values = c.read_pixel(product.path, product.dataset_name, y, x).astype(np.float64)
    if ref_yx is not None:
        values = values - c.read_pixel(product.path, product.dataset_name, *ref_yx).astype(np.float64)
    if zero_first:
        finite = np.flatnonzero(np.isfinite(values))
        if finite.size:
            values = values - values[finite[0]]
    return values


def _open_ts(path: str | os.PathLike) -> TimeSeries:
    product = Product.open(path)
    if not isinstance(product, TimeSeries):
        raise InputError(f"{path}: not a time-series file (FILE_TYPE {product.metadata.file_type or 'unset'}); "
                         "tsview needs timeseries*.h5 or an HDF-EOS5 .he5")
    return product


def _default_date(ts) -> int:
    """The map's date when none is asked for: the last, unless it is the reference date (a map of
    zeros, as after reference_date picked the last date), then the first."""
    last = len(ts.dates) - 1
    ref = ts.metadata.reference.date
    if last > 0 and ref is not None and ts.date_strings[last] == f"{ref:%Y%m%d}":
        return 0
    return last


class TsViewer:
    """The tsview figure and its state; ``on_click`` is the matplotlib event handler of the map."""

    def __init__(self, files: Sequence[str | os.PathLike], *, date: str | None = None,
                 ref_yx: tuple[int, int] | None = None, zero_first: bool = False,
                 mask: str | os.PathLike | None = None, unit: str = "cm", offset: float | None = None,
                 vlim: tuple[float, float] | None = None, periods: Sequence[float] = (1.0,), fit: bool = True,
                 interactive: bool = False, max_pixels: int | None = None) -> None:
        if not files:
            raise InputError("tsview: give at least one time-series file")
        self.products = [_open_ts(f) for f in files]
        self.main = self.products[0]
        meta = self.main.metadata
        self.ref_yx = None if ref_yx is None else c.check_pixel(meta, *ref_yx, what="reference point")
        self.zero_first = zero_first
        self.factor, self.unit = c.unit_scale(self.main.metadata.unit or "m", unit)
        self.offset = (2.0 if len(self.products) > 1 else 0.0) if offset is None else float(offset)
        self.periods = tuple(periods)
        self.fit = fit
        k = self.main.date_index(date) if date is not None else _default_date(self.main)
        self.date_index = k
        layer = Layer(self.main.path, self.main.dataset_name, self.main.date_strings[k], self.main.metadata.unit or "m",
                      index=k)
        if mask == "auto":
            mask = c.auto_mask(self.main.path)
        self.md = prepare_maps(self.main, [layer], mask=mask, vlim=vlim, unit=self.unit, ref_yx=self.ref_yx,
                               max_pixels=max_pixels)
        self.pixel: tuple[int, int] | None = None
        self.fits: list[PixelFit | None] = []
        self._build(interactive)

    # ------------------------------------------------------------------ figure
    def _build(self, interactive: bool) -> None:
        meta = self.main.metadata
        self.fig = c.new_figure(interactive, figsize=(8.0, 9.0), layout="constrained")
        gs = self.fig.add_gridspec(2, 1, height_ratios=[3, 2])
        self.ax_map = self.fig.add_subplot(gs[0])
        self.ax_ts = self.fig.add_subplot(gs[1])
        im = draw_map(self.ax_map, self.md.arrays[0], meta, self.md)
        cb = self.fig.colorbar(im, ax=self.ax_map, shrink=0.9)
        cb.set_label(f"displacement ({self.unit})")
        ref_date = meta.reference.date
        self.ax_map.set_title(f"{self.main.path.name}: {self.main.date_strings[self.date_index]}"
                              + (f", ref. date {format_date(ref_date)}" if ref_date else ""))
        (self.marker,) = self.ax_map.plot([], [], "+", color="k", ms=14, mew=2.5, zorder=6)
        (self.marker2,) = self.ax_map.plot([], [], "+", color="yellow", ms=11, mew=1.2, zorder=7)

    def connect(self) -> int:
        """Route clicks on the map to :meth:`on_click` (interactive use)."""
        return self.fig.canvas.mpl_connect("button_press_event", self.on_click)

    def on_click(self, event) -> bool:
        """Show the history of the clicked pixel; clicks outside the map or the image are ignored."""
        if getattr(event, "inaxes", None) is not self.ax_map or event.xdata is None or event.ydata is None:
            return False
        if getattr(event, "button", 1) not in (1, None):
            return False
        y, x = c.plot_to_yx(self.main.metadata, event.xdata, event.ydata)
        length, width = self.main.shape
        if not (0 <= y < length and 0 <= x < width):
            logger.info("click at y=%d, x=%d is outside the image", y, x)
            return False
        self.update(y, x)
        self.fig.canvas.draw_idle()
        return True

    # ------------------------------------------------------------------ the pixel panel
    def default_pixel(self) -> tuple[int, int]:
        """The pixel of largest |displacement| on the shown date (where there is something to see)."""
        data = self.md.arrays[0]
        if not np.isfinite(data).any():
            raise DataError(f"{self.main.path}: the shown date has no valid pixel; give --yx or --lalo")
        k = int(np.nanargmax(np.abs(data)))
        y, x = np.unravel_index(k, data.shape)
        return int(y) * self.md.stride, int(x) * self.md.stride

    def _pixel_in(self, product: TimeSeries, y: int, x: int) -> tuple[int, int] | None:
        """The same ground point in another file (same grid, or through lat/lon when both are geocoded)."""
        if product is self.main or (product.shape == self.main.shape and product.metadata.grid.geo == self.main.metadata.grid.geo):
            return y, x
        g = self.main.metadata.grid.geo
        if g is not None and product.metadata.grid.geo is not None:
            lat, lon = g.yx_to_lalo(y, x)
            try:
                return c.lalo_to_yx(product.metadata, lat, lon)
            except DataError:
                return None
        if product.shape == self.main.shape:
            return y, x
        raise InputError(f"{product.path}: grid differs from {self.main.path} and is not geocoded; "
                         "tsview cannot overlay it")

    def update(self, y: int, x: int) -> None:
        """Redraw the history panel for pixel (y, x)."""
        meta = self.main.metadata
        y, x = c.check_pixel(meta, y, x)
        self.pixel = (y, x)
        px, py = c.yx_to_plot(meta, y, x)
        self.marker.set_data([px], [py])
        self.marker2.set_data([px], [py])
        ax = self.ax_ts
        ax.clear()
        self.fits = []
        colours = ["C0", "C3", "C2", "C1", "C4", "C5"]
        for k, product in enumerate(self.products):
            colour = colours[k % len(colours)]
            where = self._pixel_in(product, y, x)
            if where is None:
                logger.info("%s does not cover pixel y=%d, x=%d", product.path.name, y, x)
                self.fits.append(None)
                continue
            ref = None if self.ref_yx is None else self._pixel_in(product, *self.ref_yx)
            values = pixel_history(product, *where, ref_yx=ref, zero_first=self.zero_first)
            shift = k * self.offset
            label = product.path.name + (f" ({shift:+g} {self.unit})" if shift else "")
            dates = list(product.dates)
            ax.plot(dates, values * self.factor + shift, "o", color=colour, ms=4, mec="k", mew=0.3, label=label)
            fit = fit_pixel(dates, values, periods=self.periods) if self.fit else None
            self.fits.append(fit)
            if fit is not None:
                dense = _dense_dates(dates[0], dates[-1])
                text = f"fit: {fit.velocity * self.factor:.2f} {self.unit}/year"
                if fit.annual_amplitude is not None:
                    text += f", annual {fit.annual_amplitude * self.factor:.2f} {self.unit}"
                ax.plot(dense, fit.evaluate(dense) * self.factor + shift, "-", color=colour, lw=1.2, alpha=0.8,
                        label=text)
        ax.axhline(0, color="0.6", lw=0.6, zorder=0)
        ax.set_ylabel(f"displacement ({self.unit})")
        c.date_axis(ax)
        ax.grid(alpha=0.3)
        where = f"y={y}, x={x}"
        if meta.grid.geo is not None:
            lat, lon = meta.grid.geo.yx_to_lalo(y, x)
            where += f" (lat {lat:.5f}, lon {lon:.5f})" if c.is_degrees(meta) else f" ({lon:.1f}, {lat:.1f})"
        ref_text = ""
        if self.ref_yx is not None:
            ref_text = f", relative to y={self.ref_yx[0]}, x={self.ref_yx[1]}"
        ax.set_title(f"pixel {where}{ref_text}", fontsize=10)
        ax.legend(fontsize=8, loc="best", framealpha=0.8)


def _dense_dates(first: _dt.date, last: _dt.date, num: int = 200) -> list[_dt.date]:
    days = np.linspace(0, (last - first).days, num)
    return [first + _dt.timedelta(days=int(round(d))) for d in days]


def tsview(files: Sequence[str | os.PathLike], *, yx: tuple[int, int] | None = None,
           lalo: tuple[float, float] | None = None, ref_yx: tuple[int, int] | None = None,
           ref_lalo: tuple[float, float] | None = None, date: str | None = None, zero_first: bool = False,
           mask: str | os.PathLike | None = None, unit: str = "cm", offset: float | None = None,
           vlim: tuple[float, float] | None = None, periods: Sequence[float] = (1.0,), fit: bool = True,
           save: str | os.PathLike | None = None, display: bool = False) -> TsViewer:
    """Build the tsview figure for a pixel; write ``save``; if interactive, wire clicks and show it."""
    interactive = c.want_interactive(display)
    first = _open_ts(files[0]) if files else None
    if first is not None and ref_lalo is not None:
        ref_yx = c.pixel_from_options(first.metadata, None, ref_lalo, first.path, "reference point")
    viewer = TsViewer(files, date=date, ref_yx=ref_yx, zero_first=zero_first, mask=mask, unit=unit, offset=offset,
                      vlim=vlim, periods=periods, fit=fit, interactive=interactive)
    pixel = c.pixel_from_options(viewer.main.metadata, yx, lalo, viewer.main.path, "pixel")
    if pixel is None:
        pixel = viewer.default_pixel()
        logger.info("pixel y=%d, x=%d (largest displacement on %s); choose another with --yx or --lalo",
                    *pixel, viewer.main.date_strings[viewer.date_index])
    viewer.update(*pixel)
    for fit, product in zip(viewer.fits, viewer.products):
        if fit is not None:
            logger.info("%s at y=%d, x=%d: velocity %.2f %s/year", product.path.name, *pixel,
                        fit.velocity * viewer.factor, viewer.unit)
    if interactive:
        viewer.connect()
    c.finish(viewer.fig, save, interactive)
    return viewer


def default_output_name(pixel: tuple[int, int] | None) -> Path:
    return Path("tsview.png" if pixel is None else f"tsview_y{pixel[0]}_x{pixel[1]}.png")


__all__ = ["PixelFit", "fit_pixel", "pixel_history", "TsViewer", "tsview", "default_output_name"]
