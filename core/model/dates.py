"""Acquisition dates and pair names.

Conventions (MintPy's): dates are ``YYYYMMDD`` strings on disk, pairs are ``date1_date2`` with
``date1 < date2``, and time in years is ``days / 365.25``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Iterable, Sequence

import numpy as np

from sbts.core.errors import InputError, shown

DAYS_PER_YEAR = 365.25
_DATE8 = re.compile(r"(?<!\d)(\d{8})(?!\d)")
_DATE6 = re.compile(r"(?<!\d)(\d{6})(?!\d)")


def parse_date(value: str | bytes | _dt.date) -> _dt.date:
    """Parse ``YYYYMMDD``, ``YYMMDD`` or ``YYYY-MM-DD`` (optionally with a time part) into a date.

    Parameters
    ----------
    value : str, bytes or datetime.date
        The text (as HDF5 may return it) or a date (returned as is; a datetime gives its date).

    Returns
    -------
    datetime.date

    Raises
    ------
    InputError
        The text is none of these forms.
    """
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return _parse_text(str(value).strip())


@functools.lru_cache(maxsize=8192)
def _parse_text(text: str) -> _dt.date:
    """:func:`parse_date` of a text, remembered: a stack's few hundred dates are parsed tens of
    thousands of times over a run (file names, pair names, attributes), 30 µs each by strptime."""
    core = text.split("T")[0].replace("-", "")
    try:
        if len(core) == 8:
            return _dt.datetime.strptime(core, "%Y%m%d").date()
        if len(core) == 6:
            return _dt.datetime.strptime(core, "%y%m%d").date()
    except ValueError:
        pass
    raise InputError(f"cannot parse date {shown(text)}: expected YYYYMMDD, YYMMDD or YYYY-MM-DD")


def format_date(date: _dt.date) -> str:
    """A date as MintPy writes it on disk: ``YYYYMMDD``.

    Parameters
    ----------
    date : datetime.date

    Returns
    -------
    str
    """
    return f"{date.year:04d}{date.month:02d}{date.day:02d}"  # strftime's result, 4× faster


def dates_in_name(name: str) -> list[_dt.date]:
    """Dates written in a file or folder name: 8-digit groups first, else 6-digit ones.

    Parameters
    ----------
    name : str
        A file or folder name (``filt_20200101-20200113.unw``, ``IFG_200101-200113``).

    Returns
    -------
    list of datetime.date
        In the order written; empty when there is none.
    """
    found = []
    for pattern in (_DATE8, _DATE6):
        for token in pattern.findall(name):
            try:
                found.append(parse_date(token))
            except InputError:
                continue
        if found:
            return found
    return found


def years_since(dates: Sequence[_dt.date], origin: _dt.date | None = None) -> np.ndarray:
    """Time of each date in years (days / 365.25) since ``origin``.

    Parameters
    ----------
    dates : sequence of datetime.date
    origin : datetime.date, optional
        Default: the first date.

    Returns
    -------
    numpy.ndarray
        float64, one value per date.
    """
    origin = origin or dates[0]
    return np.array([(d - origin).days for d in dates], dtype=np.float64) / DAYS_PER_YEAR


def unique_sorted(dates: Iterable[_dt.date]) -> tuple[_dt.date, ...]:
    return tuple(sorted(set(dates)))
