"""A pixel's history for the viewer: the time series, its fitted model and the model's uncertainty.

The model is the one ``velocity.h5`` holds (MintPy's dataset names, see
:mod:`sbts.core.model.timefunc`): its terms are recognised from the dataset names and evaluated with
the same design matrix as ``sbts velocity``, with the polynomial time counted from ``START_DATE``:

* ``intercept``, ``velocity``, ``acceleration``, ``poly{k}`` — ``c_k (t − t0)^k / k!``;
* ``{annual,semiAnnual,period{T}Y}Amplitude`` / ``...Phase`` — ``A·sin(2π(t − t0)/T + φ)``;
* ``step{YYYYMMDD}``, ``exp{YYYYMMDD}Tau{τ}D``, ``log{YYYYMMDD}Tau{τ}D``.

A velocity file with another term (e.g. MintPy's polyline ``velocityPost...``) gets no model curve
rather than a wrong one.  Uncertainty band: ``σ(t)² = Σ (∂m/∂p_j · σ_j)²`` over the terms'
``*Std`` maps, the terms taken as independent (velocity.h5 keeps no covariances); for a periodic
term ``∂m/∂A = sin(ωτ + φ)`` and ``∂m/∂φ = A·cos(ωτ + φ)``.  A difference of two pixels (A − B) adds
their variances (independent errors: an upper bound for close pixels, whose errors correlate).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.errors import InputError
from sbts.core.io.h5 import read_attrs
from sbts.core.model.dates import format_date, parse_date
from sbts.core.model.timefunc import TimeFunctionModel, periodic_name, polynomial_name

MODEL_POINTS = 240

_POLY = {"intercept": 0, "velocity": 1, "acceleration": 2}
_POLY_K = re.compile(r"^poly(\d+)$")
_PERIOD = re.compile(r"^(annual|semiAnnual|period([0-9.]+)Y|periodY([0-9.]+))Amplitude$")
_STEP = re.compile(r"^step(\d{8})$")
_EXPLOG = re.compile(r"^(exp|log)(\d{8})Tau([0-9.]+)D?$")
_IGNORED = ("residue",)


@dataclass(frozen=True)
class Periodic:
    period: float
    amplitude: str
    phase: str


class VelocityModel:
    """The time-function model stored in a velocity file, evaluated at one pixel at a time."""

    def __init__(self, path: Path, store) -> None:
        self.path = Path(path)
        self.store = store
        attrs = read_attrs(path)
        self.origin = parse_date(attrs["START_DATE"])
        self.ref_date = parse_date(attrs["REF_DATE"]) if attrs.get("REF_DATE", "").strip() else None
        import h5py

        with h5py.File(path, "r") as f:
            names = [n for n, o in f.items() if isinstance(o, h5py.Dataset) and o.ndim == 2]
        self.names = set(names)
        poly: dict[int, str] = {}
        periodic: list[Periodic] = []
        steps: dict[_dt.date, str] = {}
        explog: dict[tuple[str, _dt.date, float], str] = {}
        unknown: list[str] = []
        for name in names:
            if name.endswith("Std") or name in _IGNORED or name.endswith("Phase"):
                continue
            if name in _POLY:
                poly[_POLY[name]] = name
            elif m := _POLY_K.match(name):
                poly[int(m.group(1))] = name
            elif m := _PERIOD.match(name):
                base = m.group(1)
                period = {"annual": 1.0, "semiAnnual": 0.5}.get(base) or float(m.group(2) or m.group(3))
                phase = name[: -len("Amplitude")] + "Phase"
                if phase not in self.names:
                    unknown.append(name)
                    continue
                periodic.append(Periodic(period, name, phase))
            elif m := _STEP.match(name):
                steps[parse_date(m.group(1))] = name
            elif m := _EXPLOG.match(name):
                explog[(m.group(1), parse_date(m.group(2)), float(m.group(3)))] = name
            else:
                unknown.append(name)
        self.unknown = sorted(unknown)
        self.poly = poly
        self.periodic = sorted(periodic, key=lambda p: -p.period)
        self.steps = steps
        self.explog = explog

        def onsets(kind):
            out: dict[_dt.date, list[float]] = {}
            for (k, onset, tau) in sorted(explog):
                if k == kind:
                    out.setdefault(onset, []).append(tau)
            return tuple((d, tuple(t)) for d, t in out.items())

        self.model = TimeFunctionModel(polynomial=max(poly) if poly else 0,
                                       periods=tuple(p.period for p in self.periodic),
                                       steps=tuple(sorted(steps)), exps=onsets("exp"), logs=onsets("log"))

    @property
    def complete(self) -> bool:
        return not self.unknown and 0 in self.poly

    def describe(self) -> str:
        parts = [polynomial_name(k) for k in sorted(self.poly)]
        parts += [periodic_name(p.period) for p in self.periodic]
        parts += [f"step {format_date(d)}" for d in sorted(self.steps)]
        parts += [f"{k} {format_date(d)} τ={t:g} d" for (k, d, t) in sorted(self.explog)]
        return ", ".join(parts)

    def _value(self, name: str, y: int, x: int) -> float:
        return self.store.value(self.path, name, None, y, x)

    def _std(self, name: str, y: int, x: int) -> float:
        return self._value(name + "Std", y, x) if name + "Std" in self.names else 0.0

    def evaluate(self, dates: list[_dt.date], y: int, x: int) -> tuple[np.ndarray, np.ndarray]:
        """Model (m) and its 1-σ (m) at ``dates`` for pixel (y, x)."""
        if not self.complete:
            raise InputError(f"{self.path.name}: model terms {', '.join(self.unknown) or 'intercept'} "
                             "cannot be drawn")
        G = self.model.design_matrix(dates, origin=self.origin)
        names = self.model.column_names
        value = np.zeros(len(dates))
        var = np.zeros(len(dates))
        col = 0
        p = self.model.polynomial
        for k in range(p + 1):
            if k in self.poly:
                value += G[:, col] * self._value(self.poly[k], y, x)
                var += (G[:, col] * self._std(self.poly[k], y, x)) ** 2
            col += 1
        for term in self.periodic:
            cos_t, sin_t = G[:, col], G[:, col + 1]
            amp, phase = self._value(term.amplitude, y, x), self._value(term.phase, y, x)
            s_phase = cos_t * math.sin(phase) + sin_t * math.cos(phase)  # sin(ωτ + φ)
            c_phase = cos_t * math.cos(phase) - sin_t * math.sin(phase)  # cos(ωτ + φ)
            value += amp * s_phase
            var += (s_phase * self._std(term.amplitude, y, x)) ** 2 + (amp * c_phase * self._std(term.phase, y, x)) ** 2
            col += 2
        lookup = {f"step{format_date(d)}": n for d, n in self.steps.items()}
        lookup.update({f"{k}{format_date(d)}Tau{t:g}D": n for (k, d, t), n in self.explog.items()})
        for j in range(col, len(names)):
            name = lookup[names[j]]
            value += G[:, j] * self._value(name, y, x)
            var += (G[:, j] * self._std(name, y, x)) ** 2
        return value, np.sqrt(var)

    def rate(self, y: int, x: int) -> tuple[float, float] | None:
        """(velocity, velocityStd) in m/year at the pixel, when the file has them."""
        if 1 not in self.poly:
            return None
        return self._value(self.poly[1], y, x), self._std(self.poly[1], y, x)


def model_dates(dates: list[_dt.date], num: int = MODEL_POINTS) -> list[_dt.date]:
    """The observation dates plus ``num`` evenly spaced days between the first and the last."""
    first, last = dates[0], dates[-1]
    span = (last - first).days
    dense = {first + _dt.timedelta(days=int(round(k * span / max(1, num - 1)))) for k in range(num)}
    return sorted(dense | set(dates))


def _clean(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, np.float64)]


def pixel_history(catalog, store, series_id: str, y: int, x: int, ref: tuple[int, int] | None = None,
                  models: dict | None = None) -> dict:
    """The history of pixel (y, x) of a time series (display units), optionally minus pixel ``ref``.

    Returns a JSON-ready dict: ``dates`` (YYYYMMDD), ``values``, ``std`` (or None), ``model``
    (``dates``, ``values``, ``sigma``, ``source``) or None with ``model_note``, ``rate`` (velocity and
    its std in the display unit per year) or None.
    """
    layer = catalog.series(series_id)
    grid = catalog.grids[layer.grid]
    for what, (py, px) in (("pixel", (y, x)), ("reference pixel", ref or (0, 0))):
        if not (0 <= py < grid.length and 0 <= px < grid.width):
            raise InputError(f"{what} y={py}, x={px} is outside the {grid.length} × {grid.width} grid")
    values = store.pixel(layer.path, layer.dataset, y, x)
    no_data = bool(np.all(values == 0)) and (y, x) != layer.reference
    std = store.pixel(layer.path, layer.std_dataset, y, x) if layer.std_dataset else None
    if ref is not None:
        values = values - store.pixel(layer.path, layer.dataset, *ref)
        if std is not None:
            std = np.hypot(std, store.pixel(layer.path, layer.std_dataset, *ref))
    f = layer.factor
    dates = [parse_date(d) for d in layer.dates]
    out = {"series": layer.id, "file": layer.file, "y": y, "x": x, "ref": list(ref) if ref else None,
           "unit": layer.shown_unit, "dates": layer.dates, "values": _clean(values * f),
           "std": _clean(std * f) if std is not None else None, "no_data": no_data,
           "model": None, "model_note": None, "rate": None}
    geo = grid.geo
    if geo is not None:
        out["lat"], out["lon"] = geo.yx_to_lalo(y, x)
    model_path = catalog.models.get(layer.grid)
    if model_path is None:
        out["model_note"] = "no velocity.h5 on this grid: no fitted model"
        return out
    cache = models if models is not None else {}
    model = cache.get(model_path)
    if model is None:
        model = cache[model_path] = VelocityModel(model_path, store)
    if not model.complete:
        out["model_note"] = (f"{model_path.name}: terms {', '.join(model.unknown) or '(no intercept)'} "
                             "are not drawn by the viewer")
        return out
    when = model_dates(dates)
    m, s = model.evaluate(when, y, x)
    rate = model.rate(y, x)
    if ref is not None:
        mr, sr = model.evaluate(when, *ref)
        m, s = m - mr, np.hypot(s, sr)
        rr = model.rate(*ref)
        rate = None if rate is None or rr is None else (rate[0] - rr[0], math.hypot(rate[1], rr[1]))
    series_ref = parse_date(layer.ref_date) if layer.ref_date else None
    if series_ref is not None and model.ref_date is not None and series_ref != model.ref_date:
        # the series was re-referenced in time after the fit: move the model by the same amount
        shift = model.evaluate([series_ref, model.ref_date], y, x)[0]
        if ref is not None:
            shift = shift - model.evaluate([series_ref, model.ref_date], *ref)[0]
        m = m - (shift[0] - shift[1])
    out["model"] = {"dates": [format_date(d) for d in when], "values": _clean(m * f), "sigma": _clean(s * f),
                    "source": str(model_path.relative_to(catalog.root)), "terms": model.describe()}
    if rate is not None:
        out["rate"] = {"value": rate[0] * f, "std": rate[1] * f, "unit": f"{layer.shown_unit}/year"}
    return out


def history_csv(history: dict, gnss: dict | None = None) -> str:
    """What the chart shows, one row per plotted value: ``series,date,value,sigma`` (display unit)."""
    unit = history["unit"]
    pix = f"y={history['y']} x={history['x']}"
    if "lat" in history:
        pix += f" (lat {history['lat']:.6f}, lon {history['lon']:.6f})"
    lines = [f"# sbts serve: {history['file']} pixel {pix}",
             f"# minus pixel y={history['ref'][0]} x={history['ref'][1]}" if history["ref"] else
             "# relative to the file's reference point",
             f"# unit {unit}; sigma: 1-sigma (model: from the *Std maps of {history['model']['source']})"
             if history["model"] else f"# unit {unit}",
             "series,date,value,sigma"]

    def num(v):
        return "" if v is None else repr(float(v))

    std = history["std"] or [None] * len(history["dates"])
    for d, v, s in zip(history["dates"], history["values"], std):
        lines.append(f"insar,{d},{num(v)},{num(s)}")
    if history["model"]:
        mdl = history["model"]
        for d, v, s in zip(mdl["dates"], mdl["values"], mdl["sigma"]):
            lines.append(f"model,{d},{num(v)},{num(s)}")
    if gnss:
        for d, v in zip(gnss["dates"], gnss["values"]):
            lines.append(f"gnss_{gnss['site']},{d},{num(v)},")
    return "\n".join(lines) + "\n"


__all__ = ["VelocityModel", "pixel_history", "history_csv", "model_dates"]
