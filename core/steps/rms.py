"""Residual RMS per date (Yunjun et al. 2019, §4.9): best reference date and noisy dates.

Input is a residual time series (``timeseriesResidual.h5`` from the topographic-residual step, or
any time series).  Per date a ramp (``mintpy.residualRMS.deramp``, default quadratic) is fitted on
the reliable pixels (``mintpy.residualRMS.maskFile``, default ``maskTempCoh.h5``), evaluated over
the whole image, taken relative to REF_Y/REF_X and removed — except on pixels whose value is 0
(no data), which stay 0 — so orbit/long-wavelength residue does not count as noise.  Then, over
the mask pixels (every finite value counts, zeros included, as MintPy's ``timeseries_rms``)::

    RMS_i = sqrt(mean(r_i²))
    reference date = argmin_i RMS_i                         (the least noisy acquisition)
    outlier dates:  RMS_i > cutoff · median(RMS) / 0.6745   (MAD-based threshold with centre 0)

``median(|RMS − 0|)/0.6745`` is the median-absolute-deviation estimate of the standard deviation
of a zero-centred Gaussian, so the threshold is ``cutoff`` such sigmas (default 3).

Writes in the work dir what MintPy's ``timeseries_rms.py`` writes, in its formats: the deramped
residual ``<stem>_ramp.h5`` (MintPy's ``timeseriesResidual_ramp.h5``; not written without a ramp,
the input is then used as is), ``rms_<stem>[_ramp].txt`` (``#`` header, then ``date<TAB>RMS`` in
**metres**, which MintPy's ``plot_timeseries_rms`` reads and scales to mm), ``reference_date.txt``
(one date) and ``exclude_date.txt`` (one date per line; removed when there is no outlier, so a
stale list from a previous run is never used), plus a bar plot ``rms_<stem>.pdf`` / ``.png``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sbts.core.compute.scheduling import describe, memory_per_task, run_blocks
from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB, ComputeOptions
from sbts.core.config.options import FileOption
from sbts.core.config.template import Template
from sbts.core.errors import DataError, InputError, TemplateError, shown
from sbts.core.io.blocks import Block, pixel_bytes, plan_blocks_for
from sbts.core.io.products import MapProduct, TimeSeries, TimeSeriesWriter
from sbts.core.io.progress import progress
from sbts.core.io.workdir import WorkDir
from sbts.core.model.ramps import RAMP_KINDS, BlockRamp, RampSums, evaluate_ramps_at

logger = logging.getLogger(__name__)

KEY = "mintpy.residualRMS."
MAD_TO_SIGMA = 0.6745
_LAYER_BYTES = 3 * 8 + 8 + 8 + 2  # scratch per pixel of a block in _rms_block, whatever the number of dates


@dataclass
class RmsResult:
    """RMS per date (m), the chosen reference date, the outlier dates and the files written."""

    dates: list[str]
    rms: np.ndarray
    reference_date: str
    exclude_dates: list[str]
    threshold: float
    cutoff: float
    files: list[Path] = field(default_factory=list)

    @property
    def outputs(self) -> list[Path]:
        """The files written (alias of ``files``)."""
        return self.files


def outlier_threshold(rms: np.ndarray, cutoff: float) -> float:
    """``cutoff · median(|rms − 0|) / 0.6745``: MAD-based threshold with centre 0."""
    return float(cutoff * np.nanmedian(np.abs(rms)) / MAD_TO_SIGMA)


@dataclass(frozen=True)
class RmsOptions:
    """``mintpy.residualRMS.*``, parsed: the ramp removed first, the outlier cutoff, the mask file."""

    deramp: str | None = "quadratic"
    cutoff: float = 3.0
    mask_file: FileOption = FileOption(KEY + "maskFile", "maskTempCoh.h5")

    @classmethod
    def from_template(cls, t: Template) -> RmsOptions:
        cutoff = t.get_float(KEY + "cutoff")
        if cutoff is None or not cutoff > 0:
            raise TemplateError(f"{t.source}: {KEY}cutoff = {shown(t.raw(KEY + 'cutoff'))} must be a positive number")
        return cls(deramp=_deramp_kind(t), cutoff=cutoff, mask_file=FileOption.from_template(t, KEY + "maskFile"))


def _deramp_kind(t: Template) -> str | None:
    value = t.raw(KEY + "deramp").strip().lower()
    for kind in RAMP_KINDS:
        if value == kind:
            return kind
    if value in ("no", "none", "false", "off", "n", "0"):
        return None
    raise TemplateError(f"{t.source}: {KEY}deramp = {shown(value)} is not one of: {', '.join(RAMP_KINDS)} (or no)")


def _mask_path(option: FileOption, work_dir: Path) -> Path | None:
    path = option.path(work_dir)
    if path is None:
        return None
    if path.exists():
        return path
    if option.explicit:
        raise InputError(f"{path}: mask file not found ({KEY}maskFile = {option.value}); give an existing mask "
                         f"or set {KEY}maskFile = no to use all pixels")
    logger.warning("%s not found: RMS over all valid pixels (set %smaskFile to choose a mask)", path, KEY)
    return None


class _Mask:
    def __init__(self, path: Path | None, shape: tuple[int, int]) -> None:
        self.product = MapProduct(path) if path is not None else None
        self.name = None
        if self.product is not None:
            if self.product.shape != shape:
                raise InputError(f"{path}: mask is {self.product.shape[0]}×{self.product.shape[1]} but the time "
                                 f"series is {shape[0]}×{shape[1]}; use a mask of the same grid")
            two_d = [n for n in self.product.datasets if len(self.product.dataset_shape(n)) == 2]
            if not two_d:
                raise InputError(f"{path}: no 2-D dataset to use as a mask")
            self.name = "mask" if "mask" in two_d else two_d[0]

    def read(self, block: Block) -> np.ndarray:
        if self.product is None:
            return np.ones(block.shape, bool)
        data = self.product.read(self.name, block)
        return np.isfinite(data) & (data != 0) if data.dtype.kind == "f" else data != 0


def _fit_ramps(ts: TimeSeries, mask: _Mask, kind: str, max_memory: float, num_worker: int = 1,
               cluster: str | None = None) -> np.ndarray:
    """Ramp coefficients per date from every valid mask pixel (as MintPy), read block by block.

    A pixel that is 0 at every date (no data) is left out.  The normal equations are summed row by
    row (:class:`sbts.core.model.ramps.RampSums`), so the fit needs one block in memory and gives
    the same coefficients whatever the budget and the workers (the blocks' rows are formed here,
    in the pool or on dask).
    """
    sums, any_mask = RampSums.of_series(ts, mask.read, kind, max_memory, num_worker, cluster)
    if not any_mask:
        raise DataError("the mask selects no pixel: no ramp can be fitted (mintpy.residualRMS.maskFile)")
    if not sums.count:
        raise DataError(f"{ts.path}: no valid pixel inside the mask to fit a ramp on")
    coeffs = sums.solve()
    bad = [ts.date_strings[i] for i in np.flatnonzero(~np.isfinite(coeffs).all(axis=1))]
    if bad:
        raise DataError(f"{ts.path}: too few valid mask pixels to fit a {kind} ramp on {', '.join(bad)}")
    return coeffs


def date_rms(ts: TimeSeries, mask: _Mask, kind: str | None, max_memory: float,
             deramped: Path | None = None, num_worker: int = 1, cluster: str | None = None) -> np.ndarray:
    """RMS (m) of each date over the mask pixels, after removing a ramp of ``kind`` (or none).

    With a ramp, the deramped series is written to ``deramped`` (when given) block by block.
    """
    n, shape = len(ts.dates), ts.shape
    coeffs = ref = None
    if kind is not None:
        coeffs = _fit_ramps(ts, mask, kind, max_memory, num_worker, cluster)
        r = ts.metadata.reference
        if r.has_point and 0 <= r.y < shape[0] and 0 <= r.x < shape[1]:
            ref = evaluate_ramps_at(coeffs, r.y, r.x, shape, kind)
        else:
            ref = np.zeros(n)
    write = kind is not None and deramped is not None
    # per pixel and date: the block as read (float32, overwritten with the output) and the next one
    # read ahead; per pixel of one date (_rms_block works date by date): three float64 layers, the
    # mask's flat indices and gathered values (8 bytes each) and two boolean maps
    blocks = plan_blocks_for(shape, pixel_bytes(n, 4, copies=2, extra=_LAYER_BYTES),
                             memory_per_task(max_memory, num_worker, cluster), ts.chunk_shape(ts.dataset_name))
    logger.info("RMS of %d dates over %d block(s)%s", n, len(blocks), describe(num_worker, cluster))
    sums: dict[Block, tuple[np.ndarray, np.ndarray]] = {}
    with contextlib.ExitStack() as stack:
        writer = None
        if write:
            writer = stack.enter_context(TimeSeriesWriter(
                deramped, ts.metadata, ts.date_strings, ts.bperp, dataset="timeseries",
                unit=ts.metadata.unit or "m"))
        results = run_blocks(blocks, functools.partial(_read_rms_block, ts, mask, write),
                             functools.partial(_rms_block, n, coeffs, ref, shape, kind, write),
                             workers=num_worker, cluster=cluster)
        for block, (out, total, count) in progress(results, "residual RMS", "block", total=len(blocks)):
            if writer is not None and out is not None:
                writer.write("timeseries", out, block)
            sums[block] = (total, count)
    # added in block order, whatever order the blocks finished in: the same sums every way
    total = np.zeros(n)
    count = np.zeros(n)
    for block in blocks:
        if block in sums:
            total += sums[block][0]
            count += sums[block][1]
    if not count.any():
        raise DataError(f"{ts.path}: no valid pixel inside the mask; cannot compute the RMS")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.sqrt(total / count), np.nan)


def _read_rms_block(ts: TimeSeries, mask: _Mask, write: bool, block: Block) -> tuple[np.ndarray, np.ndarray | None]:
    """The mask of one block and its series (as stored), unless nothing of it is used."""
    m = mask.read(block)
    if not write and not m.any():
        return m, None
    return m, ts.read_dates(block)


def _rms_block(n: int, coeffs: np.ndarray | None, ref: np.ndarray | None, shape: tuple[int, int], kind: str | None,
               write: bool, block: Block, inputs) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """The deramped block (float32, when written) and the sum of squares and count per date over its mask pixels.

    Date by date through three reused float64 layers (the date, its ramp, a temporary), with the
    ramp terms of the block computed once (:class:`~sbts.core.model.ramps.BlockRamp`).  The block
    read for this call is overwritten with the deramped values and returned: no second block
    buffer.  The numbers are those of the plain per-date formulas: ``data − (ramp − ref)`` except
    where the data are 0 (no data, left 0 as MintPy's deramp), then ``Σ r²`` over the finite mask
    values, summed in mask (row-major) order.
    """
    m, data = inputs
    if data is None:
        return None, np.zeros(n), np.zeros(n)
    total, count = np.zeros(n), np.zeros(n)
    out = None if not write else data if data.dtype == np.float32 else np.empty(data.shape, np.float32)
    ramp = BlockRamp(shape, kind, block) if kind is not None else None
    picked = None if m.all() else np.flatnonzero(m)  # every pixel: the whole layer, no gather
    layer, model = np.empty(data.shape[1:]), np.empty(data.shape[1:])
    for k in range(n):
        np.copyto(layer, data[k])
        if ramp is not None:
            ramp.evaluate(coeffs[k], out=model)
            model -= ref[k]
            np.subtract(layer, model, out=layer, where=layer != 0)  # no-data (0) stays 0
        if out is not None:
            out[k] = layer
        total[k], count[k] = _sum_squares(layer.reshape(-1) if picked is None else layer.reshape(-1)[picked])
    return out, total, count


def _sum_squares(r: np.ndarray) -> tuple[float, int]:
    """``Σ r²`` over the finite values of ``r`` (1-D, overwritten) and how many there are."""
    ok = np.isfinite(r)
    good = int(np.count_nonzero(ok))
    if good < r.size:
        r[~ok] = 0.0
    np.square(r, out=r)
    return float(r.sum()), good


def _write_text(path: Path, text: str) -> Path:
    from sbts.core.io.h5 import atomic_write_text

    return atomic_write_text(path, text)


def plot_rms(dates: list[str], rms_mm: np.ndarray, ref_index: int, threshold_mm: float, cutoff: float,
             outliers: np.ndarray, paths: list[Path], title: str = "") -> None:
    """Bar plot of the RMS per date, reference date and outliers highlighted, threshold as a line.

    Uses the Agg canvas directly (no pyplot, no display, no global backend change).  The tight
    layout is applied once, not installed as the figure's layout engine: with an engine (even the
    placeholder ``tight_layout()`` leaves) every ``savefig`` draws the figure twice.
    """
    import datetime as _dt

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import TightLayoutEngine

    x = [_dt.datetime.strptime(d, "%Y%m%d") for d in dates]
    spacing = np.median(np.diff([v.toordinal() for v in x])) if len(x) > 1 else 12
    colors = np.array(["tab:blue"] * len(dates), dtype=object)
    colors[outliers] = "tab:red"
    colors[ref_index] = "tab:green"
    fig = Figure(figsize=(8, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(x, np.nan_to_num(rms_mm), width=max(1.0, 0.7 * spacing), color=list(colors))
    ax.axhline(threshold_mm, color="tab:gray", ls="--", lw=1,
               label=f"{cutoff:g} × median/0.6745 = {threshold_mm:.2f} mm")
    ax.bar([x[ref_index]], [rms_mm[ref_index]], width=max(1.0, 0.7 * spacing), color="tab:green",
           label=f"reference date {dates[ref_index]}")
    if outliers.any():
        ax.bar([x[i] for i in np.flatnonzero(outliers)], rms_mm[outliers], width=max(1.0, 0.7 * spacing),
               color="tab:red", label=f"{int(outliers.sum())} outlier date(s)")
    ax.set_ylabel("Residual RMS (mm)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    TightLayoutEngine().execute(fig)  # what fig.tight_layout() does, leaving no engine behind
    from sbts.core.io.h5 import atomic_output

    for path in paths:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=150, format=path.suffix.lstrip(".") or "png")


def residual_rms(ts_path: str | os.PathLike, template: Template | None = None,
                 work_dir: str | os.PathLike | None = None, max_memory: float = DEFAULT_MAX_MEMORY_GB,
                 plot: bool = True, options: RmsOptions | None = None, num_worker: int = 1,
                 cluster: str | None = None) -> RmsResult:
    """Compute the residual RMS per date of ``ts_path``; write the text files (and plot) into ``work_dir``.

    ``options`` (default: parsed from ``template``) say what to do; ``work_dir`` defaults to the
    input's folder; it also resolves a relative mask file.
    """
    if options is None:
        options = RmsOptions.from_template(template or Template())
    ts_path = Path(ts_path)
    ts = TimeSeries(ts_path)
    wd = Path(work_dir) if work_dir is not None else ts_path.resolve().parent
    wd.mkdir(parents=True, exist_ok=True)
    kind = options.deramp
    cutoff = options.cutoff
    mask_path = _mask_path(options.mask_file, wd)
    mask = _Mask(mask_path, ts.shape)
    logger.info("residual RMS of %s (%d dates): %s, mask %s", ts_path.name, len(ts.dates),
                f"{kind} ramp removed" if kind else "no deramping", mask_path or "none (all pixels)")
    deramped = wd / f"{ts_path.stem}_ramp.h5" if kind else None
    if deramped is not None and deramped.resolve() == ts_path.resolve():
        raise InputError(f"{ts_path}: the deramped residual would overwrite the input; rename it")
    rms = date_rms(ts, mask, kind, max_memory, deramped, num_worker, cluster)
    if not np.isfinite(rms).any():
        raise DataError(f"{ts_path}: RMS undefined at every date")
    ref_index = int(np.nanargmin(rms))
    threshold = outlier_threshold(rms, cutoff)
    outliers = np.isfinite(rms) & (rms > threshold)
    dates = list(ts.date_strings)
    excluded = [dates[i] for i in np.flatnonzero(outliers)]

    stem = ts_path.stem + ("_ramp" if kind else "")
    rms_mm = rms * 1000.0
    header = [
        "# Root Mean Square in space for each acquisition of time-series",
        f"# Timeseries file: {stem}.h5",
        f"# Mask file: {mask_path.name if mask_path else 'None'}",
        f"# (sbts rms) ramp removed: {kind or 'no'}; reference date (min RMS): {dates[ref_index]}",
        f"# (sbts rms) outlier threshold: {cutoff:g} * median(RMS) / {MAD_TO_SIGMA} = {threshold * 1000:.4f} mm",
        "# Date\t\tRMS (m)",
    ]
    lines = [f"{d}\t{float(v)!r}" for d, v in zip(dates, rms)]
    files = [deramped] if kind else []
    files += [
        _write_text(wd / f"rms_{stem}.txt", "\n".join(header + lines) + "\n"),
        _write_text(wd / "reference_date.txt", dates[ref_index] + "\n"),
    ]
    exclude = wd / "exclude_date.txt"
    if excluded:
        files.append(_write_text(exclude, "".join(d + "\n" for d in excluded)))
    elif exclude.exists():  # MintPy removes a stale list when no date is an outlier
        exclude.unlink()
    if plot:
        figs = [wd / f"rms_{stem}.pdf", wd / f"rms_{stem}.png"]
        plot_rms(dates, rms_mm, ref_index, threshold * 1000, cutoff, outliers, figs,
                 title=f"{ts_path.name}: residual RMS" + (f" after removing a {kind} ramp" if kind else ""))
        files += figs
    logger.info("reference date %s (RMS %.2f mm); %d date(s) above %.2f mm: %s", dates[ref_index],
                rms_mm[ref_index], len(excluded), threshold * 1000, ", ".join(excluded) or "none")
    return RmsResult(dates, rms, dates[ref_index], excluded, threshold, cutoff, files)


def run(options: RmsOptions, workdir: WorkDir, compute: ComputeOptions, source: Path) -> list[Path]:
    """The residual_RMS step of ``sbts run`` on ``source`` (the DEM-error step's residual)."""
    return list(residual_rms(source, work_dir=workdir.root, max_memory=compute.max_memory, options=options,
                             num_worker=compute.num_worker, cluster=compute.cluster).files)


__all__ = ["run", "RmsOptions", "RmsResult", "residual_rms", "date_rms", "outlier_threshold", "plot_rms"]
