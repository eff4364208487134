"""``sbts correct dem_error``: topographic residual (DEM error) correction (Fattahi & Amelung 2013).

Model of each pixel's displacement (m, + toward the satellite) at the fitted dates t_i::

    d(t_i) = Δz · B⊥(t_i) / (r · sin θ)  +  Σ_{k=0..p} c_k (t_i − t_0)^k  +  Σ_s a_s H(t_i − T_s)

Δz is the DEM error (m), B⊥ the perpendicular baseline of each date (``bperp`` of the time series, or a
3-D ``bperp`` of the geometry file), r the slant range and θ the incidence angle; the polynomial (degree
``polyOrder``) and the Heaviside steps (``stepDate``, H = 1 from the step date on) stand for the
deformation.  Outputs: ``<input>_demErr.h5`` = ts − B⊥·Δz/(r sin θ) (the DEM-error term only),
``demErr.h5`` (Δz, dataset ``dem``) and ``timeseriesResidual.h5`` = ts − G·X (the full model).

Why the solve is batched without a per-pixel loop
-------------------------------------------------
Write the model as y = b·β + P·c with b the B⊥ column (β = Δz/(r sin θ)) and P the polynomial and step
columns, shared by all pixels.  By the Frisch–Waugh–Lovell theorem the least-squares β equals the
regression of the residualised data on the residualised baseline::

    M = I − P P⁺  (one n×n projector for every pixel),   β = (M b)·(M y) / (M b)·(M b),   c = P⁺ (y − b β)

so a block of pixels costs two matrix products and a scalar division per pixel, with b either one vector
(1-D ``bperp``) or one column per pixel (3-D ``bperp``).  The geometry only scales the B⊥ column, so it
does not change the fit: Δz = β · r · sin θ afterwards, with per-pixel r, θ (``pixelwiseGeometry = yes``)
or their scene means — and the corrected series (ts − b·β) is the same either way.  B⊥ is taken relative
to the reference date (a per-pixel constant absorbed by c_0), so the series stays 0 at REF_DATE.

``phaseVelocity = yes`` fits the time-differenced series (y_{i+1} − y_i)/(t_{i+1} − t_i) over the kept
dates (c_0 drops out; it is restored as the mean offset for the residual), which is less sensitive to a
bias of the first date.  Excluded dates (``excludeDate`` or ``exclude_date.txt``) are left out of the fit
but corrected like the others.  Pixels with a NaN date, no data (0 at every date) or zero/NaN geometry are
left unchanged (Δz = 0, residual 0).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Block,
    Correction,
    CorrectionContext,
    CorrectionResult,
    DataError,
    H5Writer,
    InputError,
    Template,
    TemplateError,
    TimeSeries,
    TimeSeriesWriter,
    check_distinct,
    describe,
    format_date,
    hookimpl,
    memory_per_task,
    parse_date,
    plan_blocks,
    progress,
    read_text,
    run_blocks,
    shown,
)
from sbts.plugins.corrections._tropo_common import (
    GeometryAccess,
    provenance,
    reference_date_index,
    resolve_path,
)

logger = logging.getLogger(__name__)

KEY = "mintpy.topographicResidual"
POLY_KEY = KEY + ".polyOrder"
VEL_KEY = KEY + ".phaseVelocity"
STEP_KEY = KEY + ".stepDate"
EXCLUDE_KEY = KEY + ".excludeDate"
PIXELWISE_KEY = KEY + ".pixelwiseGeometry"
PURPOSE = "the DEM error (r·sin θ of the B⊥ term)"


@dataclass(frozen=True)
class DemErrorOptions:
    """``mintpy.topographicResidual.*``, parsed (the exclude-date file is read when the step runs)."""

    poly: int = 2
    phase_velocity: bool = False
    pixelwise: bool = True
    step_dates: tuple = ()
    exclude: tuple[str, ...] = ()
    exclude_explicit: bool = False
    exclude_raw: str = "exclude_date.txt"
    switched_off: bool = False  # the switch says no, but the correction was asked for by name


class DemError(Correction):
    """Estimates the DEM error from the baseline-correlated part of each pixel's series and removes it."""

    name = "dem_error"
    summary = "Estimate and remove the DEM error (topographic residual) correlated with B⊥ (Fattahi & Amelung 2013)."
    suffix = "demErr"
    stage = "timeseries"
    step = "correct_topography"
    after = "deramp"
    products = {"residual": "timeseriesResidual.h5"}  # what residual_RMS measures
    keys = {
        KEY: "yes | no: the workflow step switch (`sbts correct dem_error` always runs)",
        POLY_KEY: "degree of the deformation polynomial fitted with the DEM error (default 2)",
        VEL_KEY: "yes: fit the time-differenced series (phase velocity) instead of the displacement (default no)",
        STEP_KEY: "step dates YYYYMMDD[,YYYYMMDD...] of Heaviside terms (e.g. earthquakes); no = none",
        EXCLUDE_KEY: "dates left out of the fit: YYYYMMDD list, or a file (default exclude_date.txt, if it exists)",
        PIXELWISE_KEY: "yes: per-pixel slant range and incidence for Δz; no: scene means (the corrected series "
                       "is the same)",
    }

    def parse_options(self, template: Template) -> DemErrorOptions:
        t = template
        poly = t.get_int(POLY_KEY)
        poly = 0 if poly is None else poly
        if poly < 0:
            raise TemplateError(f"{POLY_KEY} = {poly}: must be >= 0")
        steps = []
        for item in t.get_list(STEP_KEY):
            try:
                steps.append(parse_date(item))
            except InputError:
                raise TemplateError(f"{STEP_KEY} = {shown(t.raw(STEP_KEY))}: {shown(item)} is not a date "
                                    "YYYYMMDD[THHMM]") from None
        items = tuple(t.get_list(EXCLUDE_KEY))
        if not (len(items) == 1 and not items[0].isdigit()):
            for item in items:
                try:
                    parse_date(item)
                except InputError:
                    raise TemplateError(f"{EXCLUDE_KEY} = {shown(t.raw(EXCLUDE_KEY))}: {shown(item)} is not a "
                                        "date") from None
        return DemErrorOptions(poly=poly, phase_velocity=t.get_bool(VEL_KEY), pixelwise=t.get_bool(PIXELWISE_KEY),
                               step_dates=tuple(steps), exclude=items, exclude_explicit=t.is_set(EXCLUDE_KEY),
                               exclude_raw=t.raw(EXCLUDE_KEY), switched_off=KEY in t.values and t.get(KEY) is None)

    def enabled(self, template: Template, metadata) -> bool:
        return template.get_bool(KEY)

    def run(self, context: CorrectionContext) -> CorrectionResult:
        options = self.options_of(context)
        ts = TimeSeries(context.input_file)
        n = len(ts.dates)
        if options.switched_off:
            logger.info("%s = no, but the DEM-error correction was asked for explicitly: running it", KEY)
        poly = options.poly
        velocity = options.phase_velocity
        pixelwise = options.pixelwise
        steps = _step_dates(options, ts)
        keep = _kept_dates(context, options, ts)

        geom = GeometryAccess(context, ts)
        for name in ("slantRangeDistance", "incidenceAngle"):
            if not geom.available(name):
                raise geom.missing_error(name, PURPOSE)
        bperp3d = _geometry_bperp(geom, n)
        ref_i = reference_date_index(ts)
        b1 = np.asarray(ts.bperp, np.float64) - float(ts.bperp[ref_i])
        bad = [ts.date_strings[i] for i in np.flatnonzero(~np.isfinite(np.asarray(ts.bperp, np.float64)))]
        if bperp3d is None and bad:  # NaN baselines would make every corrected pixel NaN
            raise DataError(f"{ts.path}: the perpendicular baseline ('bperp') of {len(bad)} date(s) is not a number "
                            f"({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}); load the baselines with the "
                            "stack (mintpy.load.bperpFile / the processor's baseline files)")
        if bperp3d is None and not np.any(b1):
            raise DataError(f"{ts.path}: all perpendicular baselines are equal ('bperp' dataset), so a DEM error "
                            "cannot be separated from the deformation; load the baselines with the stack")

        years = np.array([(d - ts.dates[0]).days for d in ts.dates], np.float64) / 365.25
        shared = _shared_columns(ts, years, poly, steps)
        fit = _FitOperator(shared, keep, years, velocity)
        if fit.num_rows < fit.num_params + 1:
            raise DataError(f"{ts.path}: {int(keep.sum())} date(s) left for the fit but the model has "
                            f"{fit.num_params + 1} parameters; lower {POLY_KEY}, remove steps or exclude fewer dates")

        scene = None if pixelwise else _scene_geometry(geom, context.max_memory)
        extra = provenance(context, KEY)
        out_meta = ts.metadata.with_extra(**extra)
        dem_meta = ts.metadata.for_product("dem", "m").with_extra(**extra)
        work = Path(context.work_dir)
        dem_path, res_path = work / "demErr.h5", work / self.products["residual"]
        check_distinct([dem_path, res_path], [ts.path, context.output_file], option="-o / -d")
        # the block being solved (corrected in place, its residual), the next one read ahead (float32),
        # the results waiting to be written; the float64 temporaries are per slab (_SLAB pixels), not per block
        # (a quarter of the task's budget for the slab's ~8 float64 arrays, the rest for the blocks)
        task_gb = memory_per_task(context.max_memory, context.num_worker, context.cluster)
        slab = int(max(16, min(_SLAB, task_gb / 4 * 1024**3 / (n * 8 * 8))))
        bytes_per_pixel = n * 4 * 4 + (n * 8 * 2 if bperp3d is not None else 0) + 64
        blocks = plan_blocks(ts.shape, bytes_per_pixel, task_gb * 0.75, ts.chunk_shape(ts.dataset_name))
        logger.info("DEM error: %d dates (%d fitted%s), polynomial %d, %d step(s), %s geometry, %d block(s)%s",
                    n, int(keep.sum()), ", phase velocity" if velocity else "", poly, len(steps),
                    "pixelwise" if pixelwise else "scene-mean", len(blocks),
                    describe(context.num_worker, context.cluster))
        stats = np.zeros(3)  # sum |Δz|, count, max |Δz|
        with contextlib.ExitStack() as stack:
            w_out = stack.enter_context(TimeSeriesWriter(context.output_file, out_meta, ts.date_strings, ts.bperp,
                                                         dataset=ts.dataset_name, unit=ts.metadata.unit or "m"))
            w_res = stack.enter_context(TimeSeriesWriter(res_path, out_meta, ts.date_strings, ts.bperp,
                                                         unit=ts.metadata.unit or "m"))
            w_dem = stack.enter_context(H5Writer(dem_path, dem_meta))
            w_dem.create("dem", shape=ts.shape, dtype=np.float32)
            results = run_blocks(blocks, functools.partial(_read_block, ts, geom, b1 if bperp3d is None else None,
                                                           ref_i, scene),
                                 functools.partial(_solve_block, fit, slab=slab), workers=context.num_worker,
                                 cluster=context.cluster)
            for block, (out, res, dz) in progress(results, "DEM error", "block", total=len(blocks)):
                w_out.write(ts.dataset_name, out, block)
                w_res.write("timeseries", res, block)
                w_dem.write("dem", dz, block)
                ok = dz != 0
                if ok.any():
                    stats += (np.abs(dz[ok]).sum(), ok.sum(), 0)
                    stats[2] = max(stats[2], float(np.abs(dz[ok]).max()))
        mean = stats[0] / stats[1] if stats[1] else 0.0
        summary = (f"estimated the DEM error on {int(stats[1])} pixels (mean |Δz| {mean:.1f} m, max {stats[2]:.1f} m) "
                   f"and removed it from {n} dates")
        logger.info(summary)
        return CorrectionResult(Path(context.output_file), extra_outputs=(dem_path, res_path), summary=summary)


# ---------------------------------------------------------------------------- the fit
# pixels whose float64 temporaries are held at once (2 MB each for 60 dates: they stay in the CPU caches,
# not in RAM; 4096 measured ~15 % faster than 16384 and 2048); a small memory budget makes the slabs smaller
_SLAB_DEFAULT = 4096
_SLAB = _SLAB_DEFAULT
# a slab with at least this fraction of valid pixels is solved whole (contiguous columns, the invalid
# ones reset afterwards) rather than gathered: copying scattered columns costs more than a few wasted ones
_DENSE = 0.5


class _FitOperator:
    """The shared part of the least-squares problem, as linear maps of a pixel's whole series (n dates).

    ``rows`` (D), ``proj`` (M) and ``pinv`` (P⁺) define the fit; the maps below fold them so that a
    slab of pixels is solved in a few matrix products of its contiguous columns, with no copy of the
    fitted rows:

    * ``lift`` = M D (rows × n): the residualised fitted rows, so (M b)·(M y) = (lift b)·(lift y);
    * ``gram`` = liftᵀ lift (n × n): β's numerator bᵀ·gram·y for a per-pixel B⊥ column b;
    * ``coef`` (q' × n) and ``cols`` (n × q'): the residual ts − G·X is corr − cols·(coef·corr), with
      corr = y − b β the corrected series.  With ``velocity`` the constant column, absent from the
      differenced fit, is restored as the mean offset of the kept dates: one more row/column.
    """

    def __init__(self, shared: np.ndarray, keep: np.ndarray, years: np.ndarray, velocity: bool) -> None:
        self.keep_idx = np.flatnonzero(keep)
        self.velocity = velocity
        self.years = years
        p = self.rows(shared)
        if velocity:  # the constant column differences to 0: drop it
            p = p[:, 1:]
        pinv = np.linalg.pinv(p) if p.shape[1] else np.zeros((0, p.shape[0]))
        proj = np.eye(p.shape[0]) - p @ pinv
        self.num_rows = p.shape[0]
        self.num_params = p.shape[1]
        n = shared.shape[0]
        d = self.rows(np.eye(n))  # D: (rows, n)
        self.lift = proj @ d
        self.gram = self.lift.T @ self.lift
        coef = pinv @ d
        cols = shared[:, 1:] if velocity else shared
        if velocity:  # offset = mean over the kept dates of corr − cols·coef·corr
            mean = np.zeros(n)
            mean[self.keep_idx] = 1.0 / self.keep_idx.size
            coef = np.vstack([coef, mean - (mean @ cols) @ coef])
            cols = np.hstack([cols, np.ones((n, 1))])
        self.coef = np.ascontiguousarray(coef)
        self.cols = np.ascontiguousarray(cols)

    def rows(self, x: np.ndarray) -> np.ndarray:
        """The fitted rows of ``x`` (n, ...): the kept dates, or their time differences / Δt."""
        k = x[self.keep_idx]
        if not self.velocity:
            return k
        dt = np.diff(self.years[self.keep_idx])
        return np.diff(k, axis=0) / dt.reshape((-1,) + (1,) * (k.ndim - 1))

    def residual(self, corr: np.ndarray) -> np.ndarray:
        """ts − G·X (float64, n × m) from the corrected series ``corr`` = y − b β: two thin products
        (q' ≤ a few terms) instead of the n × n operator I − cols·coef."""
        out = self.cols @ (self.coef @ corr)
        np.subtract(corr, out, out=out)
        return out


def _read_block(ts: TimeSeries, geom: GeometryAccess, b1: np.ndarray | None, ref_i: int,
                scene: tuple[float, float] | None, block: Block):
    """The I/O of one block: the series (float32), B⊥ (``b1`` or the block of the 3-D ``bperp``) and
    (r, sin θ) of its pixels."""
    data = ts.read_dates(block).astype(np.float32, copy=False)
    b = b1 if b1 is not None else _bperp_block(geom, block, ref_i)
    return data, b, _pixel_geometry(geom, block, scene)


def _solve_block(fit: _FitOperator, block: Block, inputs, slab: int = _SLAB_DEFAULT
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numbers of one block: :func:`_correct_block` of what :func:`_read_block` read."""
    data, b, geometry = inputs
    return _correct_block(data, b, fit, geometry, block, slab)


def _correct_block(data: np.ndarray, b: np.ndarray, fit: _FitOperator, geometry: tuple[np.ndarray, np.ndarray],
                   block: Block, slab: int = _SLAB_DEFAULT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corrected series, residual and Δz of one block (no Python loop over pixels), from its
    (r, sin θ) ``geometry`` (:func:`_pixel_geometry`).

    ``data`` (float32, owned by the caller's read) is corrected in place.  The pixels are fitted
    ``slab`` contiguous columns at a time in float64 (a column slice is read without a gather; a slab
    mostly invalid is gathered instead): every pixel's numbers are its own (whatever the slab or
    block size, up to the order in which BLAS adds a product's terms: ~1e-16 m), except the threshold
    below which a baseline spread counts as none, which is relative to the largest of the block.
    """
    n = data.shape[0]
    flat = data.reshape(n, -1)
    r, s = (v.reshape(-1) for v in geometry)
    valid = np.all(np.isfinite(flat), axis=0) & ~np.all(flat == 0, axis=0) & np.isfinite(r) & np.isfinite(s)
    res = np.empty_like(data, dtype=np.float32)  # every column is written below
    dz = np.zeros(block.shape, np.float32)
    res_flat = res.reshape(n, -1)
    dz_flat = dz.reshape(-1)
    if not valid.any():
        res.fill(0)
        return data, res, dz
    per_pixel_b = b.ndim > 1
    if per_pixel_b:  # β = bᵀ·gram·y / Σ (M b)², thresholded by the block's largest Σ (M b)²
        b_flat = b.reshape(n, -1)
        den = _baseline_spread(fit, b_flat, slab)
        threshold = 1e-12 * max(float(den[valid].max()), 1e-30)
    else:  # one B⊥ column: β = w·y / Σ (M b)², w = liftᵀ M b (or β = 0 if the baselines do not spread)
        mb1 = fit.lift @ b
        den1 = float(mb1 @ mb1)
        w = fit.lift.T @ mb1 if den1 > 1e-12 * max(den1, 1e-30) else None
    with np.errstate(invalid="ignore"):  # NaN/inf of the invalid columns of a dense slab, reset below
        for a in range(0, flat.shape[1], slab):
            z = slice(a, min(a + slab, flat.shape[1]))
            ok = valid[z]
            if ok.mean() < _DENSE:  # mostly invalid: gather the valid columns
                res_flat[:, z] = 0
                cols, bad = a + np.flatnonzero(ok), None
                if cols.size == 0:
                    continue
            else:  # solve the whole slab, then put its invalid pixels back as they were
                cols, bad = z, (a + np.flatnonzero(~ok) if not ok.all() else None)
                saved = flat[:, bad].copy() if bad is not None else None
            y = flat[:, cols].astype(np.float64)
            if per_pixel_b:
                bb = b_flat[:, cols]
                beta = _beta(np.einsum("ij,ij->j", bb, fit.gram @ y), den[cols], threshold)
            else:
                bb = b[:, None]
                beta = (w @ y) / den1 if w is not None else np.zeros(y.shape[1])
            y -= bb * beta[None]  # the corrected series, float64
            flat[:, cols] = y
            res_flat[:, cols] = fit.residual(y)
            dz_flat[cols] = beta * r[cols] * s[cols]
            if bad is not None:  # invalid pixels: the data unchanged, Δz = residual = 0
                flat[:, bad] = saved
                res_flat[:, bad] = 0
                dz_flat[bad] = 0
    return data, res, dz


def _baseline_spread(fit: _FitOperator, b_flat: np.ndarray, slab: int) -> np.ndarray:
    """Σ (M b)² of every pixel's B⊥ column (β's denominator; its largest sets the threshold below
    which a pixel's baseline spread counts as none), slab by slab: b has no NaN (``_bperp_block``)."""
    den = np.empty(b_flat.shape[1])
    for a in range(0, b_flat.shape[1], slab):
        mb = fit.lift @ b_flat[:, a:a + slab]
        den[a:a + slab] = np.einsum("ij,ij->j", mb, mb)
    return den


def _beta(num: np.ndarray, den: np.ndarray, threshold: float) -> np.ndarray:
    """β = num / den, 0 where the baseline spread ``den`` is at most ``threshold`` (no DEM error fitted)."""
    return np.where(den > threshold, num / np.where(den > 0, den, 1), 0.0)


def _pixel_geometry(geom: GeometryAccess, block: Block, scene: tuple[float, float] | None):
    """(r, sin θ) over the block; NaN where the geometry is missing/zero (such pixels are skipped)."""
    bad = np.zeros(block.shape, bool)
    for name in ("slantRangeDistance", "incidenceAngle"):  # zero/NaN geometry marks no-data pixels
        if geom.has_layer(name):
            v = geom.read(name, block, PURPOSE)
            bad |= ~np.isfinite(v) | (v <= 0)
    if scene is not None:
        r = np.full(block.shape, scene[0])
        s = np.full(block.shape, np.sin(np.deg2rad(scene[1])))
    else:
        r = geom.read("slantRangeDistance", block, PURPOSE)
        s = np.sin(np.deg2rad(geom.read("incidenceAngle", block, PURPOSE)))
    r[bad] = np.nan
    s[bad] = np.nan
    return r, s


def _scene_geometry(geom: GeometryAccess, max_memory: float) -> tuple[float, float]:
    """Scene means of slant range and incidence over the valid geometry pixels (block by block)."""
    means = []
    for name in ("slantRangeDistance", "incidenceAngle"):
        if not geom.has_layer(name):
            means.append(geom.scalar(name)[0])
            continue
        total, count = 0.0, 0
        for block in plan_blocks(geom.ts.shape, 16, max_memory, geom.geometry.chunk_shape(name)):
            v = geom.read(name, block, PURPOSE)
            ok = np.isfinite(v) & (v > 0)
            total += float(v[ok].sum())
            count += int(ok.sum())
        if count == 0:
            raise InputError(f"{geom.path}: {name} has no valid (positive) pixel")
        means.append(total / count)
    logger.info("DEM error: scene-mean slant range %.1f m, incidence %.2f°", *means)
    return means[0], means[1]


def _geometry_bperp(geom: GeometryAccess, n: int) -> bool | None:
    """True when the geometry file has a usable 3-D ``bperp`` (one layer per date), else None."""
    if geom.geometry is None or not geom.geometry.has("bperp"):
        return None
    shape = geom.geometry.dataset_shape("bperp")
    if len(shape) != 3:
        return None
    if shape[0] != n:
        logger.warning("%s: 3-D bperp has %d layers for %d dates; using the time series' bperp instead",
                       geom.path, shape[0], n)
        return None
    logger.info("DEM error: per-pixel B⊥ from the 3-D bperp of %s", geom.path)
    return True


def _bperp_block(geom: GeometryAccess, block: Block, ref_i: int) -> np.ndarray:
    b = np.asarray(geom.geometry.read("bperp", block), np.float64)
    b = b - b[ref_i][None]
    return np.nan_to_num(b)


def _shared_columns(ts: TimeSeries, years: np.ndarray, poly: int, steps: list) -> np.ndarray:
    cols = [years ** k for k in range(poly + 1)]
    for d in steps:
        cols.append(np.array([1.0 if t >= d else 0.0 for t in ts.dates]))
    return np.stack(cols, axis=1)


def _step_dates(options: DemErrorOptions, ts: TimeSeries) -> list:
    out = []
    for d in options.step_dates:
        if not ts.dates[0] < d <= ts.dates[-1]:
            logger.warning("%s: step date %s is outside %s..%s (no acquisition on both sides); ignored", STEP_KEY,
                           format_date(d), ts.date_strings[0], ts.date_strings[-1])
            continue
        out.append(d)
    return out


def _kept_dates(context: CorrectionContext, options: DemErrorOptions, ts: TimeSeries) -> np.ndarray:
    """Mask of the dates fitted: all but those of excludeDate (a date list or a file of dates)."""
    items = options.exclude
    dates = []
    if len(items) == 1 and not items[0].isdigit():
        path = resolve_path(items[0], Path(context.work_dir))
        if path.exists():
            dates = _read_date_file(path)
            logger.info("DEM error: excluding %d date(s) listed in %s", len(dates), path)
        elif options.exclude_explicit:
            raise InputError(f"{path}: file of dates to exclude not found ({EXCLUDE_KEY} = {options.exclude_raw}); "
                             f"give an existing file, a list of YYYYMMDD dates, or no")
    else:
        dates = [parse_date(item) for item in items]
    keep = np.ones(len(ts.dates), bool)
    for d in dates:
        if d in ts.dates:
            keep[ts.dates.index(d)] = False
        else:
            logger.warning("%s: %s is not a date of %s; ignored", EXCLUDE_KEY, format_date(d), ts.path.name)
    return keep


def _read_date_file(path: Path) -> list:
    out = []
    for line in read_text(path, "date file").splitlines():
        token = line.split("#", 1)[0].strip()
        if token:
            try:
                out.append(parse_date(token.split()[0]))
            except InputError:
                raise InputError(f"{path}: {token!r} is not a date YYYYMMDD") from None
    return out


@hookimpl
def sbts_corrections():
    return [DemError()]

