"""Time functions for fitting displacement time series (Hetland et al. 2012 style).

A pixel's displacement is modelled as a linear combination of functions of time, so one design
matrix ``G`` (dates × terms) serves every pixel and a whole block is solved at once.  The model is
read from MintPy's ``mintpy.timeFunc.*`` keys; output dataset names follow MintPy's
``velocity.h5`` (``intercept``, ``velocity``, ``acceleration``, ``annualAmplitude`` ...).

Conventions (chosen so the coefficients are physical quantities; t in years = days / 365.25):

* **polynomial** of degree p: ``Σ_k c_k (t − t0)^k / k!`` with ``t0`` the first fitted date.  The
  factorial makes ``c_k`` the k-th time derivative at ``t0`` (a Taylor series): ``intercept`` (m),
  ``velocity`` (m/year), ``acceleration`` (m/year², i.e. d ∋ ½·a·(t−t0)²), ``poly{k}`` for k ≥ 3.
* **periodic** with period T years, MintPy's convention (Minchew et al. 2017, eq. 9–10):
  ``c·cos(2πτ/T) + s·sin(2πτ/T) = A·sin(2πτ/T + φ)`` with τ = t − t0 the time in years since the
  first fitted date (as the polynomial), ``A = √(c²+s²)`` (m) and ``φ = atan2(c, s)`` (radian, in
  (−π, π]).  So φ is the phase of a sine that starts at the first fitted date: the signal peaks
  toward the satellite at ``t0 + (π/2 − φ)·T/(2π)`` (mod T).  Names as MintPy's: ``annual``
  (T=1), ``semiAnnual`` (T=0.5), else ``period{T}Y`` with T written as a Python float
  (``period2.0Y``).
* **step** at date T: ``H(t − T)`` = 1 for acquisitions strictly after T (an acquisition on the
  event day is taken as pre-event) → ``step{YYYYMMDD}`` (m).
* **exponential** / **logarithmic** post-seismic terms with onset T and time constant τ (days):
  ``1 − exp(−(t−T)/τ)`` / ``log(1 + (t−T)/τ)`` for t > T, 0 before → ``exp{YYYYMMDD}Tau{τ}D``,
  ``log{YYYYMMDD}Tau{τ}D`` (m; MintPy's names).  Several τ may share an onset: ``onset,τ1[,τ2];onset2,τ``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sbts.core.errors import InputError, TemplateError, shown
from sbts.core.model.dates import DAYS_PER_YEAR, format_date, parse_date

logger = logging.getLogger(__name__)

KEY = "mintpy.timeFunc."


def _fmt(value: float) -> str:
    """Compact number for dataset names: 60 → '60', 0.25 → '0.25'."""
    return f"{value:g}"


def polynomial_name(k: int) -> str:
    return {0: "intercept", 1: "velocity", 2: "acceleration"}.get(k, f"poly{k}")


def polynomial_unit(k: int) -> str:
    return {0: "m", 1: "m/year"}.get(k, f"m/year^{k}")


def periodic_name(period: float) -> str:
    if math.isclose(period, 1.0):
        return "annual"
    if math.isclose(period, 0.5):
        return "semiAnnual"
    return f"period{float(period)}Y"


@dataclass(frozen=True)
class Output:
    """One output map: its dataset name, unit, and how it derives from the coefficients."""

    name: str
    unit: str
    kind: str  # "coef" (a column of G), "amplitude" or "phase" (of a cos/sin pair)
    columns: tuple[int, ...]


@dataclass(frozen=True)
class TimeFunctionModel:
    """Which time functions to fit; parsed from ``mintpy.timeFunc.*`` (see the module docstring)."""

    polynomial: int = 1
    periods: tuple[float, ...] = ()
    steps: tuple[_dt.date, ...] = ()
    exps: tuple[tuple[_dt.date, tuple[float, ...]], ...] = ()
    logs: tuple[tuple[_dt.date, tuple[float, ...]], ...] = ()

    def __post_init__(self) -> None:
        if self.polynomial < 0:
            raise TemplateError(f"{KEY}polynomial = {self.polynomial}: the degree must be >= 0")
        for p in self.periods:
            if not (p > 0 and math.isfinite(p)):
                raise TemplateError(f"{KEY}periodic: period {p} must be a positive number of years")
        for label, terms in (("exp", self.exps), ("log", self.logs)):
            for onset, taus in terms:
                if not taus:
                    raise TemplateError(f"{KEY}{label}: onset {format_date(onset)} has no time constant; "
                                        f"write onset,tau_days (e.g. {format_date(onset)},60)")
                for tau in taus:
                    if not (tau > 0 and math.isfinite(tau)):
                        raise TemplateError(f"{KEY}{label}: tau {tau} must be a positive number of days")

    # ------------------------------------------------------------------ parsing
    @classmethod
    def from_template(cls, template) -> TimeFunctionModel:
        """The model of a :class:`~sbts.core.config.template.Template` (``mintpy.timeFunc.*`` keys)."""
        poly = template.get_int(KEY + "polynomial")
        periods = template.get_numbers(KEY + "periodic") or []
        steps = [_parse_date(v, KEY + "stepDate") for v in template.get_list(KEY + "stepDate")]
        return cls(
            polynomial=1 if poly is None else poly,
            periods=tuple(float(p) for p in periods),
            steps=tuple(sorted(set(steps))),
            exps=parse_onsets(template.get(KEY + "exp"), KEY + "exp"),
            logs=parse_onsets(template.get(KEY + "log"), KEY + "log"),
        )

    # ------------------------------------------------------------------ structure
    @property
    def column_names(self) -> list[str]:
        """Name of each column of the design matrix."""
        names = [polynomial_name(k) for k in range(self.polynomial + 1)]
        for p in self.periods:
            names += [f"{periodic_name(p)}Cos", f"{periodic_name(p)}Sin"]
        names += [f"step{format_date(d)}" for d in self.steps]
        for label, terms in (("exp", self.exps), ("log", self.logs)):
            for onset, taus in terms:
                names += [f"{label}{format_date(onset)}Tau{_fmt(tau)}D" for tau in taus]
        return names

    @property
    def num_columns(self) -> int:
        return len(self.column_names)

    def outputs(self) -> list[Output]:
        """Output maps (MintPy dataset names), each with its Std map written beside it."""
        names = self.column_names
        out: list[Output] = []
        for k in range(self.polynomial + 1):
            out.append(Output(names[k], polynomial_unit(k), "coef", (k,)))
        col = self.polynomial + 1
        for p in self.periods:
            base = periodic_name(p)
            out.append(Output(base + "Amplitude", "m", "amplitude", (col, col + 1)))
            out.append(Output(base + "Phase", "radian", "phase", (col, col + 1)))
            col += 2
        for name in names[col:]:
            out.append(Output(name, "m", "coef", (names.index(name),)))
        return out

    def design_matrix(self, dates: Sequence[_dt.date | str], origin: _dt.date | str | None = None) -> np.ndarray:
        """``G`` (n_date × num_columns, float64); polynomial time relative to ``origin`` (default first date)."""
        days = [parse_date(d) for d in dates]
        if not days:
            return np.zeros((0, self.num_columns))
        start = parse_date(origin) if origin is not None else days[0]
        t = np.array([(d - start).days for d in days], np.float64) / DAYS_PER_YEAR
        cols = [t ** k / math.factorial(k) for k in range(self.polynomial + 1)]
        for p in self.periods:  # τ = t − t0, as the polynomial (MintPy's periodic reference)
            cols += [np.cos(2 * np.pi * t / p), np.sin(2 * np.pi * t / p)]
        for s in self.steps:
            cols.append(np.array([1.0 if d > s else 0.0 for d in days]))
        for func, terms in ((_exp, self.exps), (_log, self.logs)):
            for onset, taus in terms:
                dt = np.array([(d - onset).days for d in days], np.float64)
                for tau_days in taus:
                    cols.append(func(dt, tau_days))
        return np.column_stack(cols) if cols else np.zeros((len(days), 0))

    def check_design(self, G: np.ndarray, dates: Sequence[_dt.date]) -> None:
        """Refuse a model the dates cannot determine (a term with no data, or collinear terms)."""
        names = self.column_names
        n, k = G.shape
        span = f"{format_date(dates[0])}..{format_date(dates[-1])}" if n else "no date"
        if n < k:
            raise InputError(f"{n} date(s) ({span}) cannot determine {k} time-function terms "
                             f"({', '.join(names)}); use fewer terms or more dates")
        for j, name in enumerate(names):
            if j > 0 and (np.all(G[:, j] == 0) or np.ptp(G[:, j]) == 0):
                raise TemplateError(f"time function {name!r} is constant over the fitted dates ({span}): "
                                    "its onset lies outside that range; remove it from mintpy.timeFunc.*")
        if np.linalg.matrix_rank(G) < k:
            raise TemplateError(f"the time functions {', '.join(names)} are linearly dependent over the "
                                f"fitted dates ({span}); remove some (e.g. a period longer than the span)")

    def provenance(self) -> dict[str, str]:
        """The resolved model as ``mintpy.timeFunc.*`` attribute values."""
        def onsets(terms):
            return ";".join(f"{format_date(o)}," + ",".join(_fmt(t) for t in taus) for o, taus in terms) or "no"
        return {
            KEY + "polynomial": str(self.polynomial),
            KEY + "periodic": ",".join(_fmt(p) for p in self.periods) or "no",
            KEY + "stepDate": ",".join(format_date(d) for d in self.steps) or "no",
            KEY + "exp": onsets(self.exps),
            KEY + "log": onsets(self.logs),
        }


def _exp(dt_days: np.ndarray, tau: float) -> np.ndarray:
    return np.where(dt_days > 0, 1.0 - np.exp(-np.maximum(dt_days, 0) / tau), 0.0)


def _log(dt_days: np.ndarray, tau: float) -> np.ndarray:
    return np.where(dt_days > 0, np.log1p(np.maximum(dt_days, 0) / tau), 0.0)


def _parse_date(value: str, key: str) -> _dt.date:
    try:
        return parse_date(value)
    except InputError:
        raise TemplateError(f"{key}: {shown(value)} is not a date (YYYYMMDD)") from None


def parse_onsets(value: str | None, key: str) -> tuple[tuple[_dt.date, tuple[float, ...]], ...]:
    """Parse ``onset,τ1[,τ2];onset2,τ`` (τ in days; spaces also separate) into (date, taus) pairs."""
    if value is None:
        return ()
    out: dict[_dt.date, list[float]] = {}
    for group in value.split(";"):
        items = [v for v in re.split(r"[,\s]+", group.strip().strip("[]")) if v]
        if not items:
            continue
        onset = _parse_date(items[0], key)
        if len(items) < 2:
            raise TemplateError(f"{key} = {shown(value)}: onset {items[0]} has no time constant; "
                                f"write onset,tau_days[,tau2];onset2,tau (e.g. {items[0]},60)")
        try:
            taus = [float(v) for v in items[1:]]
        except ValueError:
            raise TemplateError(f"{key} = {shown(value)}: time constants after {items[0]} must be numbers of days") from None
        out.setdefault(onset, [])
        out[onset] += [t for t in taus if t not in out[onset]]
    return tuple((d, tuple(out[d])) for d in sorted(out))


def derive(outputs: Sequence[Output], coef: np.ndarray) -> dict[str, np.ndarray]:
    """Output maps from coefficients ``coef`` (k, P): plain coefficients, amplitude, phase."""
    res = {}
    for o in outputs:
        if o.kind == "coef":
            res[o.name] = coef[o.columns[0]]
        elif o.kind == "amplitude":
            res[o.name] = np.hypot(coef[o.columns[0]], coef[o.columns[1]])
        else:  # MintPy: φ = atan2(cos coefficient, sin coefficient), i.e. A·sin(ωτ + φ)
            res[o.name] = np.arctan2(coef[o.columns[0]], coef[o.columns[1]])
    return res


def derive_std(outputs: Sequence[Output], coef: np.ndarray, cov: np.ndarray) -> dict[str, np.ndarray]:
    """Linearised standard deviation of each output from the coefficient covariance ``cov`` (P, k, k)."""
    res = {}
    for o in outputs:
        if o.kind == "coef":
            j = o.columns[0]
            res[o.name] = np.sqrt(np.maximum(cov[:, j, j], 0))
            continue
        i, j = o.columns
        c, s = coef[i], coef[j]
        a2 = c * c + s * s
        with np.errstate(divide="ignore", invalid="ignore"):
            if o.kind == "amplitude":  # ∂A/∂(c, s) = (c, s)/A
                jc, js = c / np.sqrt(a2), s / np.sqrt(a2)
            else:  # φ = atan2(c, s): ∂φ/∂(c, s) = (s, −c)/A²
                jc, js = s / a2, -c / a2
        var = jc * jc * cov[:, i, i] + 2 * jc * js * cov[:, i, j] + js * js * cov[:, j, j]
        res[o.name] = np.sqrt(np.maximum(var, 0))
    return res


__all__ = ["TimeFunctionModel", "Output", "parse_onsets", "derive", "derive_std", "polynomial_name",
           "periodic_name"]
