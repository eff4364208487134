"""``sbts plot rms``: residual RMS per date as bars, with the best reference date and the outlier cutoff.

Reads the ``rms_*.txt`` text written by ``sbts rms`` and MintPy's ``timeseries_rms.py``: one
``YYYYMMDD value`` line per date, ``#`` comments; values in metres when the header says ``RMS (m)``
(MintPy's layout, which sbts writes too), else in mm (files of older sbts versions).  The date of minimum RMS is the
natural reference date; dates above ``median + cutoff × 1.4826 × MAD`` (a robust n-sigma rule) are
the ones worth excluding or inspecting.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from sbts.core.errors import InputError
from sbts.core.model.dates import parse_date
from sbts.core.viz import common as c

logger = logging.getLogger(__name__)
_LINE = re.compile(r"^\s*(\d{8})\s+([-+0-9.eE]+|nan)\b")
_THRESHOLD = re.compile(r"threshold[^=\n]*=\s*([-+0-9.eE]+)\s*mm", re.IGNORECASE)
_METRES = re.compile(r"RMS\s*\(m\)")


def header_threshold(path: str | os.PathLike) -> float | None:
    """The outlier threshold (mm) that ``sbts rms`` wrote in the header, so the plot flags the same dates."""
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        if line.lstrip().startswith("#"):
            m = _THRESHOLD.search(line)
            if m:
                try:
                    return float(m.group(1))
                except ValueError:
                    return None
    return None


def read_rms_file(path: str | os.PathLike) -> tuple[list, np.ndarray]:
    """Dates and RMS values (mm) of an rms text file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    dates, values = [], []
    scale = 1.0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.lstrip().startswith("#") and _METRES.search(line):
            scale = 1000.0
        text = line.split("#", 1)[0]
        m = _LINE.match(text)
        if m:
            dates.append(parse_date(m.group(1)))
            values.append(float(m.group(2)))
    if not dates:
        raise InputError(f"{path}: no 'YYYYMMDD value' line; not an RMS file")
    order = np.argsort(np.array(dates, dtype="datetime64[D]"), kind="stable")
    return [dates[k] for k in order], np.asarray(values, np.float64)[order] * scale


def rms_threshold(values: np.ndarray, cutoff: float = 3.0) -> float:
    """``median + cutoff × 1.4826 × MAD`` of the finite values."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan")
    med = float(np.median(v))
    return med + cutoff * 1.4826 * float(np.median(np.abs(v - med)))


def plot_rms(path: str | os.PathLike, *, cutoff: float | None = None, save: str | os.PathLike | None = None,
             display: bool = False):
    """Bar plot of RMS per date; returns (Figure, threshold in mm).

    Without ``cutoff`` the threshold written by ``sbts rms`` in the file header is used, else 3.
    """
    dates, values = read_rms_file(path)
    if not np.isfinite(values).any():
        raise InputError(f"{path}: every RMS value is NaN")
    stored = header_threshold(path) if cutoff is None else None
    threshold = stored if stored is not None else rms_threshold(values, 3.0 if cutoff is None else cutoff)
    rule = "from the file header" if stored is not None else \
        f"median + {3.0 if cutoff is None else cutoff:g}·1.4826·MAD"
    ref = int(np.nanargmin(values))
    over = values > threshold
    interactive = c.want_interactive(display)
    fig = c.new_figure(interactive, figsize=(9.0, 4.0), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    gaps = np.diff(np.array(dates, dtype="datetime64[D]")).astype(float)
    width = max(1.0, 0.8 * float(gaps[gaps > 0].min())) if (gaps > 0).any() else 10.0  # bars never overlap
    colours = np.where(over, "C3", "C0").tolist()
    colours[ref] = "C2"
    ax.bar(dates, values, width=width, color=colours, edgecolor="k", linewidth=0.3)
    ax.axhline(threshold, color="C3", ls="--", lw=1.2,
               label=f"cutoff {threshold:.1f} mm ({rule})")
    from matplotlib.patches import Patch

    handles = [Patch(color="C2", label=f"reference date {dates[ref]:%Y%m%d} ({values[ref]:.1f} mm)"),
               Patch(color="C0", label="below cutoff"),
               Patch(color="C3", label=f"above cutoff ({int(over.sum())})")]
    line = ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles + line, fontsize=8, loc="upper left")
    ax.set_ylabel("residual RMS (mm)")
    ax.set_ylim(0, max(float(np.nanmax(values)), threshold) * 1.25)
    ax.set_title(f"{Path(path).name}: {len(dates)} dates")
    c.date_axis(ax)
    ax.grid(axis="y", alpha=0.3)
    c.finish(fig, save, interactive)
    return fig, threshold


__all__ = ["read_rms_file", "rms_threshold", "plot_rms"]
