"""Time-function fit of a displacement time series: ``timeseries*.h5`` → ``velocity.h5``.

Every pixel shares the design matrix ``G`` of :mod:`sbts.core.model.timefunc`, so a block is solved with
ONE least-squares: pixels valid at every fitted date through one pseudo-inverse of ``G``; pixels
with NaN dates through batched weighted normal equations (weight 0 on their NaN dates, columns
scaled for conditioning) — no per-pixel Python loop.

Uncertainty (``mintpy.timeFunc.uncertaintyQuantification``):

* ``residue`` (Fattahi & Amelung 2015): ``Cov = (GᵀG)⁻¹ · ‖r‖² / (n − k)`` per pixel; the Std maps
  are the square roots of its diagonal; amplitude/phase Stds are linearised through the full
  covariance of their cos/sin pair.
* ``bootstrap`` (Efron & Tibshirani 1986): refit on ``bootstrapCount`` resamples of the dates (with
  replacement), the same resamples for every pixel and block (seeded: reproducible, and a blocked
  run equals a single one); Std = sample std (ddof 1) of the refitted outputs, phases as deviations
  wrapped to (−π, π].  Resamples that cannot determine the model (e.g. no date after a step) are
  skipped for the pixels concerned.  The estimates themselves are always the full-data fit.
* ``covariance``: the decorrelation covariance Σ of the time series that ``sbts invert`` propagates
  from the pair coherences into ``timeseriesDecorCov.h5`` (written when this method is chosen, or
  named by ``mintpy.timeFunc.timeSeriesCovFile``), re-referenced to the time series' reference
  date and restricted to the fitted dates, is propagated through the least-squares estimator:
  Cov = G⁺ Σ G⁺ᵀ per pixel (the estimates are the same least-squares fit as for ``residue``;
  full per-pixel covariance, said in the attributes).

``residue`` (m) is MintPy's: the root of the sum of the squared fit residuals over each pixel's
valid fitted dates, ``‖r‖ = √Σ r_i²`` (not their RMS, which is √n smaller); MintPy writes it for the
``residue`` uncertainty only, sbts for every method (same definition).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sbts.core.compute.scheduling import describe, memory_per_task, run_blocks
from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB, ComputeOptions
from sbts.core.config.template import Template
from sbts.core.errors import InputError, TemplateError, shown
from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.h5 import H5Writer, check_distinct
from sbts.core.io.products import TimeSeries
from sbts.core.io.progress import progress
from sbts.core.io.safenames import read_text
from sbts.core.io.workdir import WorkDir
from sbts.core.model.dates import format_date, parse_date
from sbts.core.model.timefunc import KEY, TimeFunctionModel, derive, derive_std

logger = logging.getLogger(__name__)

UNCERTAINTY = ("residue", "bootstrap", "covariance")
COV_FILE = "timeseriesDecorCov.h5"  # written by sbts invert (MintPy's --calc-cov name and layout)
DEFAULT_EXCLUDE_FILE = "exclude_date.txt"
_DATE_TOKEN = re.compile(r"^\d{8}(T\d{4,6})?$|^\d{4}-\d{2}-\d{2}$")


# ---------------------------------------------------------------------------- options
@dataclass(frozen=True)
class VelocityOptions:
    """What to fit and how; from ``mintpy.timeFunc.*`` (plus command-line overrides)."""

    model: TimeFunctionModel = field(default_factory=TimeFunctionModel)
    start_date: _dt.date | None = None
    end_date: _dt.date | None = None
    exclude_dates: tuple[_dt.date, ...] = ()
    exclude_source: str = "no"
    uncertainty: str = "residue"
    bootstrap_count: int = 400
    seed: int = 0
    # the excludeDate entries as written (dates and/or files), resolved into exclude_dates when the
    # step runs: exclude_date.txt is written by the residual_RMS step of the same run
    exclude_items: tuple[str, ...] = ()
    exclude_explicit: bool = False
    cov_file: str | None = None  # mintpy.timeFunc.timeSeriesCovFile (None: timeseriesDecorCov.h5)

    def __post_init__(self) -> None:
        if self.uncertainty not in UNCERTAINTY:
            raise TemplateError(f"{KEY}uncertaintyQuantification = {self.uncertainty!r} is not one of: "
                                f"{', '.join(UNCERTAINTY)}")
        if self.uncertainty == "bootstrap" and self.bootstrap_count < 2:
            raise TemplateError(f"{KEY}bootstrapCount = {self.bootstrap_count}: need at least 2 resamples")
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise TemplateError(f"{KEY}startDate {format_date(self.start_date)} is after "
                                f"{KEY}endDate {format_date(self.end_date)}")

    @classmethod
    def from_template(cls, template: Template, work_dir: str | os.PathLike | None = None,
                      uncertainty: str | None = None, seed: int = 0, resolve: bool = True) -> VelocityOptions:
        """The options of ``template``; ``resolve=False`` leaves the exclude-date files unread (see
        :meth:`resolved`), as ``sbts run`` parses them before the step that writes them runs."""
        t = template
        unc = uncertainty or t.get_str(KEY + "uncertaintyQuantification", UNCERTAINTY) or "residue"
        items = tuple(t.get_list(KEY + "excludeDate"))
        for item in items:
            if _DATE_TOKEN.match(item):
                parse_date(item)  # dates given directly are checked now
        count = t.get_int(KEY + "bootstrapCount")
        options = cls(
            model=TimeFunctionModel.from_template(t),
            start_date=_template_date(t, KEY + "startDate"),
            end_date=_template_date(t, KEY + "endDate"),
            uncertainty=unc,
            bootstrap_count=400 if count is None else count,
            seed=seed,
            exclude_items=items,
            exclude_explicit=t.is_set(KEY + "excludeDate"),
            exclude_source=str(t.raw(KEY + "excludeDate")) if items else "no",
            cov_file=t.get(KEY + "timeSeriesCovFile"),
        )
        return options.resolved(work_dir) if resolve else options

    def resolved(self, work_dir: str | os.PathLike | None = None) -> VelocityOptions:
        """These options with the exclude dates read (files named relative to ``work_dir``)."""
        dates, source = _exclude_dates(self.exclude_items, self.exclude_explicit, self.exclude_source, work_dir)
        return replace(self, exclude_dates=dates, exclude_source=source)

    def exclude_files(self, work_dir: str | os.PathLike) -> list[Path]:
        """The files of dates named by excludeDate that exist (inputs of the step)."""
        out = []
        for item in self.exclude_items:
            if not _DATE_TOKEN.match(item):
                path = Path(os.path.expanduser(item))
                path = path if path.is_absolute() else Path(work_dir) / path
                if path.exists():
                    out.append(path)
        return out

    def provenance(self) -> dict[str, str]:
        attrs = {
            KEY + "startDate": format_date(self.start_date) if self.start_date else "no",
            KEY + "endDate": format_date(self.end_date) if self.end_date else "no",
            KEY + "excludeDate": ",".join(format_date(d) for d in self.exclude_dates) or "no",
            KEY + "uncertaintyQuantification": self.uncertainty,
            KEY + "bootstrapCount": str(self.bootstrap_count),
        }
        if self.uncertainty == "covariance":
            attrs[KEY + "timeSeriesCovFile"] = self.cov_file or COV_FILE
        attrs.update(self.model.provenance())
        return attrs


def _template_date(t: Template, key: str) -> _dt.date | None:
    value = t.get(key)
    if value is None:
        return None
    try:
        return parse_date(value)
    except InputError:
        raise TemplateError(f"{t.source}: {key} = {shown(value)} is not a date (YYYYMMDD)") from None


def read_date_file(path: str | os.PathLike) -> list[_dt.date]:
    """Dates listed in a text file (first token of each line; ``#`` comments and blank lines skipped)."""
    dates = []
    for lineno, line in enumerate(read_text(path, "date file").splitlines(), 1):
        token = line.split("#", 1)[0].split()
        if not token:
            continue
        try:
            dates.append(parse_date(token[0]))
        except InputError:
            raise InputError(f"{path}, line {lineno}: {token[0]!r} is not a date (YYYYMMDD)") from None
    return dates


def resolve_exclude_dates(t: Template, work_dir: str | os.PathLike | None = None,
                          key: str = KEY + "excludeDate") -> tuple[tuple[_dt.date, ...], str]:
    """Dates to exclude: a list of dates, or a file of dates (relative paths: in ``work_dir``).

    The default ``exclude_date.txt`` (written by ``sbts rms``) is used only when it exists; a file
    named explicitly must exist.
    """
    return _exclude_dates(tuple(t.get_list(key)), t.is_set(key), str(t.raw(key)), work_dir, key)


def _exclude_dates(items: tuple[str, ...], explicit: bool, raw: str, work_dir: str | os.PathLike | None,
                   key: str = KEY + "excludeDate") -> tuple[tuple[_dt.date, ...], str]:
    if not items:
        return (), "no"
    if all(_DATE_TOKEN.match(v) for v in items):
        return tuple(sorted({parse_date(v) for v in items})), ",".join(items)
    dates: set[_dt.date] = set()
    for item in items:
        if _DATE_TOKEN.match(item):
            dates.add(parse_date(item))
            continue
        path = Path(os.path.expanduser(item))
        if not path.is_absolute() and work_dir is not None:
            path = Path(work_dir) / path
        if path.exists() and not path.is_dir():  # read_date_file refuses a FIFO or a device by name
            dates.update(read_date_file(path))
        elif explicit:
            raise TemplateError(f"{key} = {shown(raw)}: {shown(str(path))} not found (give dates YYYYMMDD, an existing "
                                "file of dates, or no)")
        else:
            logger.debug("%s not found: no date excluded", path)
    return tuple(sorted(dates)), raw


# ---------------------------------------------------------------------------- kernel
@dataclass
class FitResult:
    """Fit of P pixels: coefficients (k, P), their covariance (P, k, k), residue ‖r‖ (P,), dates used (P,)."""

    coef: np.ndarray
    cov: np.ndarray
    residue: np.ndarray
    num_valid: np.ndarray


def _solve_weighted(G: np.ndarray, W: np.ndarray, Y: np.ndarray,
                    need_q: bool = True) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Per-pixel weighted LSQ by batched normal equations: X (k, P), Q = (GᵀWG)⁻¹ (P, k, k), ok (P,)."""
    n, k = G.shape
    P = Y.shape[1]
    scale = np.abs(G).max(axis=0)
    scale[scale == 0] = 1.0
    Gs = G / scale
    N = np.einsum("ni,np,nj->pij", Gs, W, Gs, optimize=True)
    b = Gs.T @ (W * Y)  # (k, P)
    ok = W.sum(axis=0) >= k
    if P:
        eig = np.linalg.eigvalsh(N)
        ok &= eig[:, 0] > 1e-10 * np.maximum(eig[:, -1], 1e-300)
    X = np.full((k, P), np.nan)
    Q = np.full((P, k, k), np.nan) if need_q else None
    if ok.any():
        Ninv = np.linalg.inv(N[ok])
        X[:, ok] = np.einsum("pij,jp->ip", Ninv, b[:, ok]) / scale[:, None]
        if need_q:
            Q[ok] = Ninv / np.outer(scale, scale)
    return X, Q, ok


def fit_pixels(G: np.ndarray, Y: np.ndarray) -> FitResult:
    """Least-squares fit of ``Y`` (n, P) by ``G`` (n, k); NaN in ``Y`` = that date missing for that pixel.

    Residue-based covariance ``(GᵀG)⁻¹ ‖r‖²/(n_p − k)`` (NaN where n_p ≤ k); outputs NaN where a
    pixel's valid dates cannot determine the model.

    Why it is written this way (same numbers as a masked solve, a few times faster): ``G⁺ Y`` is
    taken over every column at once (a column with a NaN only spoils its own coefficients, which the
    weighted solve of the incomplete pixels then replaces) instead of gathering and scattering the
    complete columns, and the residual is formed and squared ``_SLAB`` columns at a time, so that its
    n × P float64 temporaries stay in the CPU caches.
    """
    G = np.asarray(G, np.float64)
    n, k = G.shape
    Y = np.asarray(Y, np.float64).reshape(n, -1)
    P = Y.shape[1]
    complete, nv = _finite_counts(Y)
    coef = np.linalg.pinv(G) @ Y if P else np.zeros((k, 0))
    q_full = np.linalg.inv(G.T @ G) if complete.any() else None
    partial = ~complete & (nv > 0)
    coef[:, nv == 0] = np.nan
    Qp = None
    if partial.any():
        finite = np.isfinite(Y[:, partial])
        Xp, Qp, _ok = _solve_weighted(G, finite.astype(np.float64), np.where(finite, Y[:, partial], 0.0))
        coef[:, partial] = Xp
    rss = _residual_sum_of_squares(G, Y, coef, complete)
    solved = np.isfinite(coef).all(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.where(nv > k, rss / (nv - k), np.nan)
        residue = np.where(solved, np.sqrt(rss), np.nan)  # MintPy: √(sum of squares), not the RMS
    if q_full is not None:  # (GᵀG)⁻¹ · s² for the complete pixels, the others set below
        cov = q_full[None] * s2[:, None, None]
    else:
        cov = np.full((P, k, k), np.nan)
    if Qp is not None:
        cov[partial] = Qp * s2[partial, None, None]
    cov[~complete & ~partial] = np.nan
    return FitResult(coef, cov, residue, nv)


_SLAB = 4096  # pixels whose residuals are formed at once: n × 4096 float64 (2 MB for 60 dates) stays in cache


def _finite_counts(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel of ``Y`` (n, P): valid at every date, and its number of valid dates.

    A pixel's sum over its dates is finite when every date is (NaN and ±inf propagate), so only the
    pixels whose sum is not finite (a missing date, or a finite sum overflowing) are counted date by
    date: one pass of additions instead of an n × P mask and its count.
    """
    n, P = Y.shape
    nv = np.full(P, n, np.int64)
    with np.errstate(over="ignore", invalid="ignore"):
        for a in range(0, P, _SLAB):
            y = Y[:, a:a + _SLAB]
            bad = np.flatnonzero(~np.isfinite(y.sum(axis=0)))
            if bad.size:
                nv[a + bad] = np.isfinite(y[:, bad]).sum(axis=0)
    return nv == n, nv


def _residual_sum_of_squares(G: np.ndarray, Y: np.ndarray, coef: np.ndarray, complete: np.ndarray) -> np.ndarray:
    """Σ over each pixel's valid dates of (y − G x)² (NaN coefficients count as 0), ``_SLAB`` pixels at
    a time: the product, difference and squares of a slab stay in the CPU caches."""
    P = Y.shape[1]
    rss = np.empty(P)
    for a in range(0, P, _SLAB):
        z = slice(a, a + _SLAB)
        y, c = Y[:, z], coef[:, z]
        whole = bool(complete[z].all())
        r = G @ (c if whole else np.nan_to_num(c))
        np.subtract(y, r, out=r)
        if not whole:
            r[~np.isfinite(y)] = 0.0
        np.multiply(r, r, out=r)
        rss[z] = r.sum(axis=0)
    return rss


def propagate_covariance(G: np.ndarray, Y: np.ndarray, cov_ts: np.ndarray) -> np.ndarray:
    """Covariance (P, k, k) of the least-squares coefficients from the data covariance ``cov_ts`` (n, n, P).

    Cov = H Σ Hᵀ with H = G⁺ for pixels valid at every date, H = (GᵀWG)⁻¹GᵀW (W: their valid
    dates) otherwise; NaN where the fit is undetermined or Σ is not finite.
    """
    G = np.asarray(G, np.float64)
    n, k = G.shape
    Y = np.asarray(Y, np.float64).reshape(n, -1)
    S = np.asarray(cov_ts, np.float64).reshape(n, n, -1)
    P = Y.shape[1]
    finite = np.isfinite(Y)
    complete = finite.all(axis=0)
    out = np.full((P, k, k), np.nan)
    if complete.any():
        H = np.linalg.pinv(G)
        out[complete] = np.einsum("ki,ijp,lj->pkl", H, S[:, :, complete], H, optimize=True)
    partial = ~complete & finite.any(axis=0)
    if partial.any():
        W = finite[:, partial].astype(np.float64)
        _, Q, ok = _solve_weighted(G, W, np.zeros((n, int(partial.sum()))))
        assert Q is not None
        H = np.einsum("pkj,ij,ip->pki", Q, G, W)  # (P', k, n)
        Sp = np.where((W[:, None, :] > 0) & (W[None, :, :] > 0), S[:, :, partial], 0.0)
        cov = np.einsum("pki,ijp,plj->pkl", H, Sp, H, optimize=True)
        cov[~ok] = np.nan
        out[partial] = cov
    return out


def read_covariance(path: Path, ts: TimeSeries, used: list[int], block) -> np.ndarray:
    """Σ (n_used, n_used, P) of a block from ``timeseriesDecorCov.h5``, referenced like ``ts``.

    The file's series start at zero on its first date; ``ts`` may have been moved to another
    reference date r (reference_date step): x' = x − x_r, so Σ' = Σ − Σ[:, r] − Σ[r, :] + Σ[r, r].
    """
    import h5py

    with h5py.File(path, "r") as f:
        cdates = [d.decode() if isinstance(d, bytes) else str(d) for d in f["date"][()]]
        C = f["timeseries"][:, :, block.rows, block.cols]
    n_all = len(cdates)
    C = C.reshape(n_all, n_all, -1).astype(np.float64)
    pos = {d: i for i, d in enumerate(cdates)}
    ref = ts.metadata.reference.date
    r = pos[format_date(ref) if ref else ts.date_strings[0]]
    C = C - C[:, r:r + 1] - C[r:r + 1, :] + C[r:r + 1, r:r + 1]
    idx = np.array([pos[ts.date_strings[i]] for i in used])
    return C[np.ix_(idx, idx)]


def _covariance_file(options: VelocityOptions, ts: TimeSeries, work_dir: Path) -> Path:
    """The covariance file of ``ts``: checked for existence, size and dates."""
    import h5py

    name = options.cov_file or COV_FILE
    path = Path(os.path.expanduser(name))
    if not path.is_absolute():
        path = next((p for p in (work_dir / path, ts.path.parent / path) if p.exists()), work_dir / path)
    key = f"{KEY}timeSeriesCovFile"
    if not path.exists():
        raise InputError(f"{path}: no time-series covariance for {KEY}uncertaintyQuantification = covariance; "
                         f"run `sbts invert` with that template (it writes {COV_FILE}) or name the file in {key}")
    with h5py.File(path, "r") as f:
        if "timeseries" not in f or "date" not in f or f["timeseries"].ndim != 4:
            raise InputError(f"{path}: not a time-series covariance file (needs datasets timeseries "
                             f"(n, n, rows, cols) and date); check {key}")
        shape = f["timeseries"].shape
        cdates = {d.decode() if isinstance(d, bytes) else str(d) for d in f["date"][()]}
    if tuple(shape[2:]) != tuple(ts.shape):
        raise InputError(f"{path}: covariance of {shape[2]}×{shape[3]} pixels, but {ts.path.name} has "
                         f"{ts.shape[0]}×{ts.shape[1]}; rerun `sbts invert` or fix {key}")
    ref = ts.metadata.reference.date
    ref_date = format_date(ref) if ref else ts.date_strings[0]
    missing = sorted(set(ts.date_strings) - cdates) + ([] if ref_date in cdates else [ref_date])
    if missing:
        raise InputError(f"{path}: no covariance for date(s) {', '.join(missing[:5])} of {ts.path.name}; "
                         f"rerun `sbts invert` or fix {key}")
    return path


def bootstrap_pinvs(G: np.ndarray, resamples: np.ndarray) -> np.ndarray:
    """Pseudo-inverse of ``G[idx]`` for every resample (B, k, n); NaN where the resample is rank deficient.

    Computed once per run and shared by all blocks.
    """
    G = np.asarray(G, np.float64)
    k = G.shape[1]
    Gb = G[resamples]  # (B, n, k)
    pinvs = np.linalg.pinv(Gb)
    pinvs[np.linalg.matrix_rank(Gb) < k] = np.nan
    return pinvs


def bootstrap_std(G: np.ndarray, Y: np.ndarray, outputs, resamples: np.ndarray,
                  reference: dict[str, np.ndarray], pinvs: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Std (ddof 1) of every output over date resamples ``resamples`` (B, n), vectorised over pixels.

    Phases are accumulated as deviations from ``reference`` (the full fit) wrapped to (−π, π].
    ``pinvs`` (from :func:`bootstrap_pinvs`) saves recomputing the resampled pseudo-inverses.
    """
    G = np.asarray(G, np.float64)
    if pinvs is None:
        pinvs = bootstrap_pinvs(G, resamples)
    n, k = G.shape
    Y = np.asarray(Y, np.float64).reshape(n, -1)
    P = Y.shape[1]
    finite = np.isfinite(Y)
    complete = finite.all(axis=0)
    partial = ~complete & finite.any(axis=0)
    Yc = Y[:, complete]
    Wp = finite[:, partial].astype(np.float64)
    Yp = np.where(finite[:, partial], Y[:, partial], 0.0)
    total = {o.name: np.zeros(P) for o in outputs}
    total2 = {o.name: np.zeros(P) for o in outputs}
    count = np.zeros(P)
    for idx, pinv in zip(resamples, pinvs):
        Gb = G[idx]
        coef = np.full((k, P), np.nan)
        if complete.any() and np.isfinite(pinv).all():
            coef[:, complete] = pinv @ Yc[idx]
        if partial.any():
            coef[:, partial] = _solve_weighted(Gb, Wp[idx], Yp[idx], need_q=False)[0]
        good = np.isfinite(coef).all(axis=0)
        values = derive(outputs, np.where(good, coef, 0.0))
        for o in outputs:
            v = values[o.name]
            if o.kind == "phase":
                v = np.angle(np.exp(1j * (v - np.nan_to_num(reference[o.name]))))
            v = np.where(good, v, 0.0)
            total[o.name] += v
            total2[o.name] += v * v
        count += good
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for o in outputs:
            var = (total2[o.name] - total[o.name] ** 2 / count) / (count - 1)
            out[o.name] = np.where(count > 1, np.sqrt(np.maximum(var, 0)), np.nan)
    return out


def draw_resamples(num_date: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` resamples (with replacement) of ``num_date`` date indices, seeded."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, num_date, size=(count, num_date))


# ---------------------------------------------------------------------------- driver
def select_dates(ts: TimeSeries, options: VelocityOptions) -> list[int]:
    """Indices of the dates to fit: inside [start, end] and not excluded."""
    excluded = set(options.exclude_dates)
    missing = [format_date(d) for d in options.exclude_dates if d not in ts.dates]
    if missing:
        logger.info("excluded date(s) not in %s, ignored: %s", ts.path.name, ", ".join(missing))
    used = [i for i, d in enumerate(ts.dates)
            if (options.start_date is None or d >= options.start_date)
            and (options.end_date is None or d <= options.end_date)
            and d not in excluded]
    if not used:
        raise InputError(f"{ts.path}: no date left to fit between {options.start_date or ts.dates[0]} and "
                         f"{options.end_date or ts.dates[-1]} after excluding {len(excluded)} date(s) "
                         f"(the file spans {ts.date_strings[0]}..{ts.date_strings[-1]})")
    return used


def _signature(path: Path, options: VelocityOptions, used: list[int], cov_path: Path | None = None) -> str:
    st = os.stat(path)
    h = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    if cov_path is not None:
        cs = os.stat(cov_path)
        h.update(f"{cov_path.resolve()}|{cs.st_size}|{cs.st_mtime_ns}".encode())
    h.update(json.dumps([options.provenance(), options.seed, used], sort_keys=True).encode())
    return h.hexdigest()


def fit_time_functions(ts_path: str | os.PathLike, template: Template | None = None,
                       output: str | os.PathLike | None = None, max_memory: float = DEFAULT_MAX_MEMORY_GB,
                       uncertainty: str | None = None, work_dir: str | os.PathLike | None = None,
                       seed: int = 0, options: VelocityOptions | None = None, num_worker: int = 1,
                       cluster: str | None = None) -> Path:
    """Fit the template's time functions to every pixel of ``ts_path``; write ``velocity.h5``.

    ``output`` defaults to ``velocity.h5`` beside the input; ``work_dir`` (default: the input's
    folder) resolves a relative exclude-date file.  The blocks run here, in a pool of ``num_worker``
    processes or on dask (``cluster``), with identical results.  Returns the written path.
    """
    ts_path = Path(ts_path)
    ts = TimeSeries(ts_path)
    work_dir = Path(work_dir) if work_dir is not None else ts_path.resolve().parent
    if options is None:
        options = VelocityOptions.from_template(template or Template(), work_dir, uncertainty, seed)
    output = Path(output) if output is not None else ts_path.with_name("velocity.h5")
    check_distinct(output, ts_path)
    used = select_dates(ts, options)
    dates = [ts.dates[i] for i in used]
    model = options.model
    G = model.design_matrix(dates)
    model.check_design(G, dates)
    n, k = G.shape
    if n == k:
        logger.warning("%d dates for %d terms: the fit is exact and its Std undefined (NaN)", n, k)
    outputs = model.outputs()
    resamples = pinvs = None
    cov_path = _covariance_file(options, ts, work_dir) if options.uncertainty == "covariance" else None
    if options.uncertainty == "bootstrap":
        # resampled indices, design matrices and pseudo-inverses of every resample are held at once
        # (once for the whole run, so at least 1 GB is allowed whatever the per-block budget)
        budget = max(max_memory, 1.0)
        need = options.bootstrap_count * n * (8 + 8 * k * 3)
        if need > budget * 1024**3:
            fit = max(2, int(budget * 1024**3 // max(1, n * (8 + 8 * k * 3))))
            raise TemplateError(f"{KEY}bootstrapCount = {options.bootstrap_count}: the resamples of {n} dates "
                                f"need {need / 1024**3:.3g} GB, over the {budget:g} GB budget; use at most "
                                f"{fit} (400 is usual) or raise mintpy.compute.maxMemory")
        resamples = draw_resamples(n, options.bootstrap_count, options.seed)
        pinvs = bootstrap_pinvs(G, resamples)

    start, end = format_date(dates[0]), format_date(dates[-1])
    extra = {"SBTS_COVARIANCE": "full per-pixel time-series covariance (G+ Sigma G+^T)"} if cov_path else {}
    meta = ts.metadata.for_product("velocity", "m/year").with_extra(
        START_DATE=start, END_DATE=end, DATE12=f"{start}_{end}", NUM_DATE=str(n), **options.provenance(), **extra)
    # per pixel: the data (float32 + float64 copies, and the next block read ahead), (n × k) einsum
    # temporaries, k×k covariances, outputs
    bpp = n * (4 + 8 * 4) + n * 4 + n * k * 8 * 2 + k * k * 8 * 3 + len(outputs) * 8 * 4
    if cov_path is not None:  # the block's covariances, float32 read and float64 copies
        bpp += len(ts.dates) ** 2 * (4 + 8 * 3) + n * n * 8 * 2
    shape = ts.shape
    blocks = plan_blocks(shape, bpp, memory_per_task(max_memory, num_worker, cluster), ts.chunk_shape(ts.dataset_name))
    index = tuple(used) if len(used) < len(ts.dates) else None
    logger.info("fitting %d term(s) (%s) to %d of %d dates (%s..%s), %d×%d pixels, %d block(s)%s, uncertainty %s",
                k, ", ".join(model.column_names), n, len(ts.dates), start, end, *shape, len(blocks),
                describe(num_worker, cluster), options.uncertainty)
    with H5Writer(output, meta, signature=_signature(ts_path, options, used, cov_path)) as w:
        for o in outputs:
            w.create(o.name, shape=shape, dtype=np.float32, attrs={"UNIT": o.unit})
            w.create(o.name + "Std", shape=shape, dtype=np.float32, attrs={"UNIT": o.unit})
        w.create("residue", shape=shape, dtype=np.float32, attrs={"UNIT": "m"})
        todo = [b for b in blocks if not w.is_done(b)]
        results = run_blocks(todo, functools.partial(_read_block, ts, index, cov_path, list(used)),
                             functools.partial(_fit_block, G, outputs, resamples, pinvs),
                             workers=num_worker, cluster=cluster)
        for block, maps in progress(results, "velocity", "block", total=len(todo)):
            for name, values in maps.items():
                w.write(name, values, block)
            w.mark_done(block)
    logger.info("wrote %s", output)
    return output


def _read_block(ts: TimeSeries, index: tuple[int, ...] | None, cov_path: Path | None, used: list[int],
                block: Block) -> tuple[np.ndarray, np.ndarray | None]:
    """The fitted dates of one block (n, h, w), float32 as stored, and their covariance when the
    uncertainty comes from ``timeseriesDecorCov.h5``: the I/O half of a block task."""
    data = ts.read_dates(block, index=None if index is None else np.asarray(index))
    cov = read_covariance(cov_path, ts, used, block) if cov_path is not None else None
    return data, cov


def _fit_block(G: np.ndarray, outputs, resamples: np.ndarray | None, pinvs: np.ndarray | None, block: Block,
               inputs: tuple[np.ndarray, np.ndarray | None]) -> dict[str, np.ndarray]:
    """The maps (float32, block shape) of one block: outputs, their Std and the residue."""
    data, cov = inputs
    n = G.shape[0]
    Y = data.reshape(n, -1).astype(np.float64)
    del data
    fit = fit_pixels(G, Y)
    values = derive(outputs, fit.coef)
    if cov is not None:
        stds = derive_std(outputs, fit.coef, propagate_covariance(G, Y, cov))
    elif resamples is None:
        stds = derive_std(outputs, fit.coef, fit.cov)
    else:
        stds = bootstrap_std(G, Y, outputs, resamples, values, pinvs)
    h, wd = block.shape
    maps = {}
    for o in outputs:
        maps[o.name] = values[o.name].reshape(h, wd).astype(np.float32)
        maps[o.name + "Std"] = stds[o.name].reshape(h, wd).astype(np.float32)
    maps["residue"] = fit.residue.reshape(h, wd).astype(np.float32)
    return maps


def default_timeseries(work_dir: str | os.PathLike) -> Path:
    """The newest time series of the work dir: see :func:`sbts.core.io.workdir.latest_timeseries`."""
    from sbts.core.io.workdir import latest_timeseries

    return latest_timeseries(work_dir)


def run(options: VelocityOptions, workdir: WorkDir, compute: ComputeOptions, timeseries: Path) -> list[Path]:
    """The velocity step of ``sbts run``: the time functions of ``timeseries`` → ``velocity.h5``; the
    exclude-date files are read now (residual_RMS writes exclude_date.txt earlier in the run)."""
    return [fit_time_functions(timeseries, output=workdir.file("velocity.h5"), max_memory=compute.max_memory,
                               work_dir=workdir.root, options=options.resolved(workdir.root),
                               num_worker=compute.num_worker, cluster=compute.cluster)]


__all__ = ["run", "VelocityOptions", "FitResult", "fit_pixels", "bootstrap_std", "propagate_covariance",
           "bootstrap_pinvs", "draw_resamples", "fit_time_functions", "resolve_exclude_dates", "read_date_file", "select_dates", "default_timeseries"]
