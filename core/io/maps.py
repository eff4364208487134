"""Choosing one 2-D map from any sbts/MintPy file, and the small helpers every exporter shares.

A map is a 2-D dataset, a time-series date (``YYYYMMDD``), a displacement between two dates
(``date1_date2``, reconstructed from a time series) or one pair of an interferogram stack.
Exporters (and anything else that writes one map) select it here, so every format accepts the
same DATASET argument and names its output the same way.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.errors import InputError
from sbts.core.io.products import UNITS, IfgramStack, MapProduct, Product, TimeSeries
from sbts.core.io.safenames import safe_part
from sbts.core.model.dates import DAYS_PER_YEAR, format_date, parse_date
from sbts.core.plugin.interfaces import ExportRequest, check_options

logger = logging.getLogger(__name__)

_DATE = re.compile(r"^\d{8}$")
_DATE12 = re.compile(r"^(\d{6}|\d{8})[_-](\d{6}|\d{8})$")
COHERENCE_NAMES = {"coherence", "temporalCoherence", "avgSpatialCoherence", "spatialCoherence"}


# ------------------------------------------------------------------------- map selection (shared)
@dataclass
class MapSelection:
    """One 2-D map picked from a product, with what it is (for unit and phase conversions).

    Parameters
    ----------
    data : numpy.ndarray
        float32, NaN = no data.
    name : str
        Dataset name or label (``velocity``, ``20200113``, ``20200101_20200125`` ...).
    kind : str
        ``velocity``, ``displacement``, ``phase``, ``coherence``, ``height`` or ``other``.
    unit : str
        Unit of ``data``.
    date1, date2 : datetime.date, optional
        The span the map covers (a pair, or a velocity's START_DATE/END_DATE).
    """

    data: np.ndarray  # float32, NaN = no data
    name: str  # dataset name or label (velocity, 20200113, 20200101_20200125, ...)
    kind: str  # velocity | displacement | phase | coherence | height | other
    unit: str
    date1: _dt.date | None = None
    date2: _dt.date | None = None

    @property
    def date12(self) -> str | None:
        """``YYYYMMDD_YYYYMMDD`` of the span (``None`` without both dates)."""
        if self.date1 is None or self.date2 is None:
            return None
        return f"{format_date(self.date1)}_{format_date(self.date2)}"

    @property
    def years(self) -> float | None:
        """The span in years (``None`` without both dates)."""
        if self.date1 is None or self.date2 is None:
            return None
        return (self.date2 - self.date1).days / DAYS_PER_YEAR

    def displacement(self) -> np.ndarray:
        """Displacement in metres (positive toward the satellite): a velocity times its span."""
        if self.kind == "displacement":
            return self.data
        if self.kind == "velocity":
            if self.years is None:
                raise InputError(f"{self.name}: a velocity without START_DATE/END_DATE (or DATE12) has no span to "
                                 "turn into displacement; set them, or export a time-series date1_date2")
            return self.data * np.float32(self.years)
        raise InputError(f"{self.name} is {self.kind}, not a displacement or velocity")

    def phase(self, wavelength: float) -> np.ndarray:
        """Unwrapped phase (radians, positive = away from the satellite): ``−4π/λ · displacement``."""
        if self.kind == "phase":
            return self.data
        return (self.displacement() * np.float32(-4 * np.pi / wavelength)).astype(np.float32)


def _kind_of(name: str, product: Product) -> str:
    ft = product.metadata.file_type
    if name == "velocity" or (ft == "velocity" and name == product.path.stem):
        return "velocity"
    if name in ("timeseries",) or ft == "timeseries":
        return "displacement"
    if name in ("unwrapPhase", "wrapPhase"):
        return "phase"
    if name in COHERENCE_NAMES:
        return "coherence"
    if name == "height":
        return "height"
    return "other"


def _span(product: Product) -> tuple[_dt.date | None, _dt.date | None]:
    extra = product.metadata.extra
    start, end = extra.get("START_DATE"), extra.get("END_DATE")
    if (not start or not end) and extra.get("DATE12"):
        parts = re.split(r"[_-]", extra["DATE12"])
        if len(parts) == 2:
            start, end = parts
    try:
        return (parse_date(start) if start else None, parse_date(end) if end else None)
    except InputError:
        return None, None


def default_map_name(product: Product) -> str:
    maps = [d for d in product.datasets if len(product.dataset_shape(d)) == 2]
    ft = product.metadata.file_type
    for candidate in (ft, product.path.stem.replace("geo_", ""), "velocity"):
        if candidate in maps:
            return candidate
    if len(maps) == 1:
        return maps[0]
    if isinstance(product, TimeSeries):
        raise InputError(f"{product.path}: a time series holds {len(product.dates)} dates; name one (YYYYMMDD) "
                         f"or a pair (YYYYMMDD_YYYYMMDD), e.g. {product.date_strings[0]}_{product.date_strings[-1]}")
    if not maps:
        raise InputError(f"{product.path}: no 2-D dataset to export; name a layer")
    raise InputError(f"{product.path}: several maps ({', '.join(maps)}); name one as DATASET")


def select_map(product: Product, dataset: str | None) -> MapSelection:
    """The 2-D map named by ``dataset`` (see the module docstring); refuses 3-D data without a date.

    Parameters
    ----------
    product : Product
        An opened sbts/MintPy file.
    dataset : str, optional
        A dataset, a date (``YYYYMMDD``) or pair (``YYYYMMDD_YYYYMMDD``) of a time series or stack;
        ``None``: the product's main map.

    Returns
    -------
    MapSelection

    Raises
    ------
    InputError
        No such map, or several and none named.
    """
    name = dataset.strip() if dataset else default_map_name(product)
    if product.has(name):
        shape = product.dataset_shape(name)
        if len(shape) != 2:
            hint = ""
            if isinstance(product, TimeSeries):
                hint = (f"; name a date (YYYYMMDD) or a pair (YYYYMMDD_YYYYMMDD) of "
                        f"{product.date_strings[0]}..{product.date_strings[-1]}")
            elif isinstance(product, IfgramStack):
                hint = f"; name a pair, e.g. {product.pairs.date12[0]}"
            raise InputError(f"{product.path}: {name!r} has shape {shape}, not one map{hint}")
        kind = _kind_of(name, product)
        d1, d2 = _span(product) if kind in ("velocity", "displacement") else (None, None)
        meta_unit = product.metadata.unit
        unit = meta_unit if name == product.metadata.file_type and meta_unit else UNITS.get(name, meta_unit or "")
        return MapSelection(product.read(name).astype(np.float32), name, kind, unit or "", d1, d2)
    ds, _, label = name.rpartition("-") if "-" in name and not _DATE12.match(name) else ("", "", name)
    if isinstance(product, TimeSeries):
        if _DATE.match(label):
            i = product.date_index(label)
            ref = product.metadata.reference.date or product.dates[0]
            data = product.read_dates(index=i).astype(np.float32)
            return MapSelection(data, product.date_strings[i], "displacement", "m", ref, product.dates[i])
        m = _DATE12.match(label)
        if m:
            i, j = product.date_index(m.group(1)), product.date_index(m.group(2))
            data = (product.read_dates(index=j) - product.read_dates(index=i)).astype(np.float32)
            return MapSelection(data, f"{product.date_strings[i]}_{product.date_strings[j]}", "displacement", "m",
                                product.dates[i], product.dates[j])
    if isinstance(product, IfgramStack):
        m = _DATE12.match(label)
        if m:
            key = f"{format_date(parse_date(m.group(1)))}_{format_date(parse_date(m.group(2)))}"
            if key not in product.pairs.date12:
                raise InputError(f"{product.path}: pair {key} is not in the stack")
            ds = ds or "unwrapPhase"
            k = list(product.pairs.date12).index(key)
            data = product.read(ds, index=k).astype(np.float32)
            if ds == "unwrapPhase":
                data[data == 0] = np.nan  # MintPy: 0 = no data
            d1, d2 = (parse_date(x) for x in key.split("_"))
            return MapSelection(data, key, _kind_of(ds, product), UNITS.get(ds, ""), d1, d2)
    shown = [d for d in product.datasets if len(product.dataset_shape(d)) >= 2]
    raise InputError(f"{product.path}: no dataset or date {name!r} (datasets: {', '.join(shown) or 'none'})")


def parse_options(request: ExportRequest, known: set[str], fmt: str) -> dict[str, str]:
    """An exporter's ``-O KEY=VALUE`` options as strings, refusing those it does not know.

    Parameters
    ----------
    request : ExportRequest
        Its ``options`` are checked.
    known : set of str
        The lower-case option names the format accepts (``max_memory`` is always accepted).
    fmt : str
        The format, for the message.

    Returns
    -------
    dict of str to str
        Lower-case keys.

    Raises
    ------
    InputError
        An unknown option (the message lists the known ones).
    """
    opts = check_options(request.options, set(known) | {"max_memory"}, f"{fmt} export")
    return {k: str(v) for k, v in opts.items()}


def option_memory(opts: dict[str, str], default: float, fmt: str) -> float:
    """``-O max_memory=GB`` of an exporter: a positive number.

    Parameters
    ----------
    opts : dict
        The exporter's options (from :func:`parse_options`).
    default : float
        GB when the option is absent.
    fmt : str
        The format, for the message.

    Returns
    -------
    float
    """
    text = opts.get("max_memory")
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise InputError(f"{fmt} export: -O max_memory={text[:40]!r}: give a positive number of GB")
    return value


def output_path(request: ExportRequest, stem: str, suffix: str) -> Path:
    """The output file of an export: ``-o`` as a file (with a suffix) or a folder; default beside the input.

    Parameters
    ----------
    request : ExportRequest
    stem : str
        File name without suffix (see :func:`label_stem`).
    suffix : str
        ``.tif``, ``.grd`` ...

    Returns
    -------
    pathlib.Path
        Its folder is created.
    """
    if request.output is None:
        return request.input_file.with_name(stem + suffix)
    out = Path(request.output)
    if out.is_dir() or not out.suffix:
        out.mkdir(parents=True, exist_ok=True)
        return out / (stem + suffix)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def label_stem(product: Product, sel: MapSelection) -> str:
    """``<file stem>[_<map name>]``; the map name (a dataset path, a date) made safe for a file name.

    Parameters
    ----------
    product : Product
    sel : MapSelection

    Returns
    -------
    str
    """
    stem = product.path.stem
    return stem if sel.name in (stem, product.metadata.file_type) else f"{stem}_{safe_part(sel.name, 'map name')}"


def read_mask(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """A boolean mask from an sbts/MintPy mask file (``mask`` dataset, or its only map).

    Parameters
    ----------
    path : str or os.PathLike
    shape : tuple of int
        The grid of the data it masks.

    Returns
    -------
    numpy.ndarray
        bool; NaN and 0 are False.

    Raises
    ------
    InputError
        No mask dataset, or another grid.
    """
    p = MapProduct(path)
    names = [n for n in p.datasets if len(p.dataset_shape(n)) == 2]
    name = "mask" if "mask" in names else (names[0] if len(names) == 1 else None)
    if name is None:
        raise InputError(f"{path}: no 'mask' dataset (has: {', '.join(p.datasets)})")
    m = p.read(name)
    if m.shape != shape:
        raise InputError(f"{path}: mask is {m.shape}, the data {shape}: they must share the grid")
    return np.nan_to_num(m).astype(bool)


# ------------------------------------------------------------------------- GMT grid


_SCALE = {"m": 1.0, "cm": 100.0, "mm": 1000.0}


def scale_unit(sel: MapSelection, unit: str | None) -> tuple[np.ndarray, str]:
    """Map data converted to ``unit`` (m, cm, mm; per year for velocity) and the unit string.

    Parameters
    ----------
    sel : MapSelection
        A displacement or velocity map.
    unit : str, optional
        ``None``: unchanged.

    Returns
    -------
    tuple of (numpy.ndarray, str)
    """
    if not unit:
        return sel.data, sel.unit
    unit = unit.lower().replace("/year", "").replace("/yr", "")
    if unit not in _SCALE:
        raise InputError(f"unit={unit!r}: use m, cm or mm")
    if sel.kind not in ("velocity", "displacement"):
        raise InputError(f"-O unit applies to displacement and velocity, not {sel.name} ({sel.kind})")
    suffix = "/year" if sel.kind == "velocity" else ""
    return sel.data * np.float32(_SCALE[unit]), unit + suffix
