"""``sbts filter``: spatial filters of maps/time series and temporal filters of time series.

Spatial (per map, per date for a time series), NaN-aware so no-data never spreads:

- ``gaussian``  σ pixels: low-pass ``Σw·v / Σw`` over valid pixels (normalised convolution; a
  constant field stays constant up to the edges);
- ``lowpass``   N pixels: the same with an N×N box (moving average);
- ``highpass``  σ pixels: the value minus its Gaussian low-pass (removes long wavelengths: ramps,
  troposphere) ;
- ``median``    N pixels: N×N median of the valid pixels (removes isolated spikes, keeps edges).

A filtered time series is not re-referenced in space: after a low-pass the reference pixel holds
the local mean, not zero (re-reference with the reference-point step if needed).

Images are processed in blocks sized from ``max_memory``, each read with a halo wide enough for
the kernel (4σ, or N/2) so the result equals filtering the whole map at once; a map that fits the
budget is one block.  Pixels that were NaN stay NaN.

Temporal (time series only), per pixel along the dates:

- ``temporal-gaussian`` σ months: ``w_ij ∝ exp(−(t_i − t_j)²/2σ²)`` normalised over the valid dates
  (uneven sampling handled; a linear trend is kept away from the ends);
- ``temporal-median``  N acquisitions (odd): running median over N consecutive dates.

The result is re-referenced to REF_DATE (the first date when absent) so it stays zero there.
Outputs: ``<stem>_<filter><param>.h5`` (``_tempGaussian``/``_tempMedian`` for temporal filters, as
MintPy names them) with only the filtered dataset (other datasets, e.g. velocityStd, no longer match).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.errors import InputError
from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.h5 import H5Writer, check_distinct
from sbts.core.io.products import Product, TimeSeries, TimeSeriesWriter
from sbts.core.io.progress import progress
from sbts.core.tools.common import main_dataset

logger = logging.getLogger(__name__)

SPATIAL = ("gaussian", "median", "lowpass", "highpass")
TEMPORAL = ("temporal-gaussian", "temporal-median")
DEFAULT_PARAM = {"gaussian": 3.0, "median": 5, "lowpass": 5, "highpass": 3.0,
                 "temporal-gaussian": 3.0, "temporal-median": 5}
_TAG = {"temporal-gaussian": "tempGaussian", "temporal-median": "tempMedian"}


# ---------------------------------------------------------------------------- kernels
def _check_param(kind: str, param: float) -> None:
    if kind not in SPATIAL + TEMPORAL:
        raise InputError(f"unknown filter {kind!r}; choose one of {', '.join(SPATIAL + TEMPORAL)}")
    if not param > 0:
        raise InputError(f"filter {kind}: the parameter must be positive, got {param}")
    if kind in ("median", "lowpass", "temporal-median") and (param != int(param) or param < 2):
        raise InputError(f"filter {kind}: the window must be an integer of at least 2, got {param}")
    if kind == "temporal-median" and int(param) % 2 == 0:
        raise InputError(f"filter {kind}: the window must be odd (centred on each date), got {int(param)}")


def halo(kind: str, param: float) -> int:
    """Pixels of context a spatial kernel needs on each side (scipy's Gaussian radius is 4σ)."""
    if kind in ("gaussian", "highpass"):
        return int(4.0 * param + 0.5)
    return int(param) // 2


def _normalised(data: np.ndarray, valid: np.ndarray, smooth) -> np.ndarray:
    num = smooth(np.where(valid, data, 0.0))
    den = smooth(valid.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-9, num / den, np.nan)


def _nanmedian_window(data: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Centred running nanmedian; the edges repeat the border values, as scipy's mode='nearest'."""
    pad = [(s // 2, s - 1 - s // 2) for s in size]
    padded = np.pad(data, pad, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, size)
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN, as wanted
            return np.nanmedian(windows.reshape(windows.shape[:data.ndim] + (-1,)), axis=-1)


def spatial_filter_map(data: np.ndarray, kind: str, param: float) -> np.ndarray:
    """Filter one 2-D map (float64 result); NaN pixels stay NaN and never contaminate neighbours."""
    from scipy import ndimage

    _check_param(kind, param)
    data = np.asarray(data, np.float64)
    valid = np.isfinite(data)
    if kind in ("gaussian", "highpass"):
        low = _normalised(data, valid, lambda a: ndimage.gaussian_filter(a, param, mode="constant", cval=0.0))
        out = low if kind == "gaussian" else data - low
    elif kind == "lowpass":
        n = int(param)
        out = _normalised(data, valid, lambda a: ndimage.uniform_filter(a, n, mode="constant", cval=0.0))
    elif kind == "median":
        n = int(param)
        out = ndimage.median_filter(data, size=n, mode="nearest") if valid.all() else _nanmedian_window(data, (n, n))
    else:
        raise InputError(f"{kind!r} is not a spatial filter ({', '.join(SPATIAL)})")
    out[~valid] = np.nan
    return out


def temporal_filter_array(data: np.ndarray, years: np.ndarray, kind: str, param: float,
                          ref_index: int | None = 0) -> np.ndarray:
    """Filter a (num_date, ...) array along axis 0; re-referenced to ``ref_index`` unless None."""
    from scipy import ndimage

    _check_param(kind, param)
    data = np.asarray(data, np.float64)
    valid = np.isfinite(data)
    n = data.shape[0]
    if kind == "temporal-gaussian":
        sigma = param / 12.0
        t = np.asarray(years, np.float64)
        w = np.exp(-0.5 * ((t[:, None] - t[None, :]) / sigma) ** 2)
        flat, vflat = data.reshape(n, -1), valid.reshape(n, -1)
        num = w @ np.where(vflat, flat, 0.0)
        den = w @ vflat.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(den > 1e-12, num / den, np.nan).reshape(data.shape)
    elif kind == "temporal-median":
        size = (int(param),) + (1,) * (data.ndim - 1)
        out = (ndimage.median_filter(data, size=size, mode="nearest") if valid.all()
               else _nanmedian_window(data, size))
    else:
        raise InputError(f"{kind!r} is not a temporal filter ({', '.join(TEMPORAL)})")
    out[~valid] = np.nan
    if ref_index is not None:
        out = out - out[ref_index]
    return out


# ---------------------------------------------------------------------------- files
def output_name(path: str | os.PathLike, kind: str, param: float) -> Path:
    path = Path(path)
    return path.with_name(f"{path.stem}_{_TAG.get(kind, kind)}{param:g}.h5")


def filter_file(path: str | os.PathLike, kind: str = "gaussian", param: float | None = None,
                dataset: str | None = None, output: str | os.PathLike | None = None,
                max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """Filter one dataset of ``path`` (see the module docstring) and write it; returns the output path."""
    param = DEFAULT_PARAM.get(kind, 1.0) if param is None else float(param)
    _check_param(kind, param)
    product = Product.open(path)
    name = dataset or main_dataset(product)
    product._require(name)
    ndim = len(product.dataset_shape(name))
    if ndim not in (2, 3):
        raise InputError(f"{product.path}: dataset {name!r} is not a map or a stack of maps")
    out = Path(output) if output is not None else output_name(product.path, kind, param)
    check_distinct(out, product.path)
    extra = {"FILTER_TYPE": kind, "FILTER_PARAM": f"{param:g}", "FILTER_SOURCE": f"{product.path.name}:{name}"}
    if kind in TEMPORAL:
        if not isinstance(product, TimeSeries) or name != product.dataset_name:
            raise InputError(f"{product.path}: temporal filters need a time series file, "
                             f"not {product.metadata.file_type!r}")
        _temporal(product, kind, param, out, extra, max_memory)
    else:
        _spatial(product, name, kind, param, out, extra, max_memory)
    logger.info("wrote %s (%s filter, %g)", out, kind, param)
    return out


def _spatial(product: Product, name: str, kind: str, param: float, out: Path, extra: dict,
             max_memory: float) -> None:
    shape = product.shape
    h = halo(kind, param)
    per_pixel = 8.0 * (8 if kind != "median" else int(param) ** 2 + 4)
    blocks = plan_blocks(shape, per_pixel, max_memory, min_rows=min(shape[0], max(1, 2 * h)))
    meta = product.metadata.with_extra(**extra)
    is_ts = isinstance(product, TimeSeries) and name == product.dataset_name
    layers = product.dataset_shape(name)[0] if len(product.dataset_shape(name)) == 3 else None
    if is_ts:
        writer = TimeSeriesWriter(out, meta, product.date_strings, product.bperp, dataset=name,
                                  unit=product.metadata.unit or "m")
    else:
        writer = H5Writer(out, meta)
    with writer as w:
        if not is_ts:
            w.create(name, shape=product.dataset_shape(name), dtype=np.float32)
            for small in product.datasets:  # index datasets (date, bperp, dropIfgram) keep the file readable
                dims = product.dataset_shape(small)
                if len(dims) < 2 or tuple(dims[-2:]) != shape:
                    w.create(small, data=product.read(small))
        for layer in progress(range(layers or 1), f"{kind} filter", "map"):
            for block in blocks:
                r0, r1 = max(0, block.row_start - h), min(shape[0], block.row_stop + h)
                c0, c1 = max(0, block.col_start - h), min(shape[1], block.col_stop + h)
                wide = Block(r0, r1, c0, c1)
                data = product.read(name, wide, index=layer) if layers else product.read(name, wide)
                filtered = spatial_filter_map(data, kind, param)
                inner = filtered[block.row_start - r0:block.row_stop - r0, block.col_start - c0:block.col_stop - c0]
                w.write(name, inner.astype(np.float32), block, layers=layer if layers else None)


def _temporal(ts: TimeSeries, kind: str, param: float, out: Path, extra: dict, max_memory: float) -> None:
    from sbts.core.model.dates import years_since

    n = len(ts.dates)
    if kind == "temporal-median" and int(param) > n:
        raise InputError(f"{ts.path}: median window {int(param)} is longer than the {n} dates")
    ref_date = ts.metadata.reference.date
    ref_index = ts.dates.index(ref_date) if ref_date in ts.dates else 0
    years = years_since(ts.dates)
    per_pixel = 8.0 * n * (4 if kind == "temporal-gaussian" else int(param) + 3)
    blocks = plan_blocks(ts.shape, per_pixel, max_memory, ts.chunk_shape(ts.dataset_name))
    meta = ts.metadata.with_extra(**extra).with_reference(date=ts.dates[ref_index])
    with TimeSeriesWriter(out, meta, ts.date_strings, ts.bperp, dataset=ts.dataset_name,
                          unit=ts.metadata.unit or "m") as w:
        for block in progress(blocks, f"{kind} filter", "block"):
            data = ts.read_dates(block)
            w.write(ts.dataset_name, temporal_filter_array(data, years, kind, param, ref_index).astype(np.float32),
                    block)
            del data  # released before the next block is read


__all__ = ["spatial_filter_map", "temporal_filter_array", "filter_file", "output_name", "halo",
           "SPATIAL", "TEMPORAL", "DEFAULT_PARAM"]
