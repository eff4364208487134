"""The pictures a user looks at first, written into ``<work_dir>/pic/`` from whatever exists.

Used by ``sbts run`` (``mintpy.plot``, ``--plot``) and ``sbts demo``.  Each picture is independent: a missing input is
skipped and a failing plot is logged and skipped, so the overview never fails the processing run
that asked for it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from sbts.core.errors import SbtsError
from sbts.core.io.products import Product, TimeSeries
from sbts.core.model.dates import years_since
from sbts.core.viz import common as c

logger = logging.getLogger(__name__)

TS_GRID_DATES = 8


def latest_timeseries(work_dir: Path) -> Path | None:
    """The most recently written ``timeseries*.h5`` (the end of the correction chain); residuals
    (``timeseriesResidual*.h5``, written after the chain by the DEM-error and RMS steps) excluded."""
    files = [p for p in work_dir.glob("timeseries*.h5") if p.is_file() and not p.name.startswith("timeseriesResidual")]
    return max(files, key=lambda p: p.stat().st_mtime_ns) if files else None


def linear_rate(ts: TimeSeries, stride: int = 1) -> np.ndarray:
    """Per-pixel least-squares linear rate (m/year) on a decimated grid, one date in memory at a time."""
    t = years_since(ts.dates)
    acc = None
    for k, tk in enumerate(t):
        d = c.read_strided(ts.path, ts.dataset_name, k, stride).astype(np.float64)
        ok = np.isfinite(d)
        d = np.where(ok, d, 0.0)
        if acc is None:
            acc = [np.zeros(d.shape) for _ in range(5)]
        acc[0] += ok
        acc[1] += ok * tk
        acc[2] += ok * tk * tk
        acc[3] += d
        acc[4] += d * tk
    n, st, stt, sd, std = acc
    with np.errstate(invalid="ignore", divide="ignore"):
        den = n * stt - st * st
        rate = (n * std - st * sd) / den
    return np.where((n >= 2) & (den > 0), rate, np.nan)


def _velocity_map(work_dir: Path, ts_file: Path | None, mask: Path | None):
    """(product, MapData, label) of the best available velocity: fitted, stacking, or ts linear rate."""
    from sbts.core.viz.maps import Layer, MapData, no_data_mask, prepare_maps, resolve_layers, time_span

    for name, dataset in (("velocity.h5", "velocity"), ("avgPhaseVelocity.h5", "velocity")):
        path = work_dir / name
        if path.is_file():
            product = Product.open(path)
            if product.has(dataset):
                md = prepare_maps(product, resolve_layers(product, [dataset]), mask=mask)
                return product, md, None  # the default title: name, time span, reference date
    if ts_file is None:
        return None
    ts = Product.open(ts_file)
    stride = c.display_stride(ts.shape)
    rate = linear_rate(ts, stride)
    empty = no_data_mask(ts, stride)
    if empty is not None:
        rate = np.where(empty, np.nan, rate)
    if mask is not None:
        rate = np.where(c.read_mask(mask, ts.shape, stride), rate, np.nan)
    meta = ts.metadata
    ref = (meta.reference.y, meta.reference.x) if meta.reference.has_point else None
    arrays = [rate * 100.0]
    md = MapData(arrays, [Layer(ts.path, "velocity", "velocity", "m/year")], ["cm/year"],
                 [c.robust_vlim(arrays, symmetric=True)], ["RdBu_r"], stride, ref)
    span = time_span(ts)
    ref_date = ts.metadata.reference.date
    title = f"{ts_file.name}: linear rate" + (f", {span}" if span else "") + (
        f", ref. date {ref_date:%Y%m%d}" if ref_date else "")
    return ts, md, title


def _max_velocity_pixel(md) -> tuple[int, int] | None:
    data = md.arrays[0]
    if not np.isfinite(data).any():
        return None
    y, x = np.unravel_index(int(np.nanargmax(np.abs(data))), data.shape)
    return int(y) * md.stride, int(x) * md.stride


def plot_overview(work_dir: str | os.PathLike, pixel_yx: tuple[int, int] | None = None) -> list[Path]:
    """Write the overview pictures into ``<work_dir>/pic/``; return the files written."""
    from sbts.core.viz.maps import render, view
    from sbts.core.viz.network import plot_network
    from sbts.core.viz.rms import plot_rms
    from sbts.core.viz.timeseries import tsview

    work = Path(work_dir)
    pic = work / "pic"
    pic.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    mask = work / "maskTempCoh.h5" if (work / "maskTempCoh.h5").is_file() else None
    ts_file = latest_timeseries(work)

    def attempt(what: str, func, *outputs: Path) -> None:
        try:
            func()
        except Exception as exc:  # noqa: BLE001 - a picture never fails the run that processed the data
            logger.warning("overview: %s skipped (%s: %s)", what, type(exc).__name__, exc)
            return
        written.extend(p for p in outputs if p.is_file())

    stack = work / "inputs" / "ifgramStack.h5"
    if stack.is_file():
        attempt("network", lambda: plot_network(stack, save=pic / "network.png"),
                pic / "network.png", pic / "coherenceMatrix.png", pic / "bperpHistory.png")
    for name in ("avgSpatialCoh", "temporalCoherence", "maskTempCoh"):
        src = work / f"{name}.h5"
        if src.is_file():
            attempt(name, lambda src=src, name=name: view(src, save=pic / f"{name}.png"), pic / f"{name}.png")

    velocity_md = None

    def velocity() -> None:
        nonlocal velocity_md
        found = _velocity_map(work, ts_file, mask)
        if found is None:
            raise SbtsError("no velocity.h5, avgPhaseVelocity.h5 or time series")
        product, md, title = found
        velocity_md = md
        c.finish(render(product, md, title=title), pic / "velocity.png")

    attempt("velocity", velocity, pic / "velocity.png")
    if ts_file is not None:
        ts = Product.open(ts_file)
        if isinstance(ts, TimeSeries) and ts.date_strings:
            pick = np.unique(np.round(np.linspace(0, len(ts.date_strings) - 1,
                                                  min(TS_GRID_DATES, len(ts.date_strings)))).astype(int))
            dates = [ts.date_strings[k] for k in pick]
            out = pic / f"{ts_file.stem}.png"
            attempt("time-series maps", lambda: view(ts_file, dates, mask=mask, save=out), out)
            pixel = pixel_yx
            if pixel is None and velocity_md is not None and velocity_md.arrays[0].shape == tuple(
                    -(-s // velocity_md.stride) for s in ts.shape):
                pixel = _max_velocity_pixel(velocity_md)
            out_ts = pic / "tsview.png"
            attempt("tsview", lambda: tsview([ts_file], yx=pixel, mask=mask, save=out_ts), out_ts)
    for rms_file in sorted(work.glob("rms_*.txt")):
        out = pic / f"{rms_file.stem}.png"
        attempt(rms_file.name, lambda rms_file=rms_file, out=out: plot_rms(rms_file, save=out), out)
    logger.info("overview: %d pictures in %s", len(written), pic)
    return written


__all__ = ["plot_overview", "linear_rate", "latest_timeseries"]
