"""``sbts.plot``: the plotting commands as functions returning :class:`matplotlib.figure.Figure`.

Each function draws what its command draws (``sbts view``, ``sbts tsview``, ``sbts plot network``,
``sbts plot coherence-matrix``, ``sbts plot transect``, ``sbts plot rms``), with the same options
as keywords, and returns the Figure instead of opening a window.  In Jupyter the Figure shows
inline when it is the value of a cell (or through ``display(fig)``); the figures are not kept by
pyplot, so nothing is drawn twice and nothing leaks.  ``save="name.png"`` also writes the file, as
the command's ``--save``.  The drawn values are the file's, in the display unit: e.g. the image of
``view("velocity.h5").axes[0].images[0]`` holds the velocity in cm/year relative to the reference
point.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

PathLike = str | os.PathLike


def _inline(fig):
    """Make ``fig`` show inline in a Jupyter kernel (a PNG formatter for Figures, as ``%matplotlib inline``
    registers it), then return it."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from matplotlib.figure import Figure

        formatter = shell.display_formatter.formatters["image/png"]
        try:
            formatter.lookup_by_type(Figure)
        except KeyError:
            from IPython.core.pylabtools import select_figure_formats

            select_figure_formats(shell, {"png"})
    return fig


def _paths(files: PathLike | Sequence[PathLike]) -> list[PathLike]:
    return [files] if isinstance(files, (str, os.PathLike)) else list(files)


def view(file: PathLike, datasets: str | Sequence[str] | None = None, *, mask: PathLike | None = None,
         vlim: tuple[float, float] | None = None, cmap: str | None = None, unit: str | None = None,
         ref_yx: tuple[int, int] | None = None, ref_lalo: tuple[float, float] | None = None,
         dem: PathLike | None = None, wrap: bool = False, wrap_range: tuple[float, float] | None = None,
         title: str | None = None, gnss: PathLike | None = None, ref_gnss: str | None = None,
         gnss_label: bool = False, gnss_site_list: PathLike | None = None, save: PathLike | None = None):
    """Maps of ``file``, as ``sbts view`` (MintPy's view.py).

    Parameters
    ----------
    file : str or os.PathLike
        Any product.
    datasets : str or sequence of str, optional
        Dataset names, dates ``YYYYMMDD`` of a time series, globs (``2020*``), pairs
        ``DATE1_DATE2``, or ``DATASET-DATE1_DATE2``; default every 2-D dataset, or all dates/pairs
        as a grid of maps on one colour scale.
    mask : str or os.PathLike, optional
        Mask file (0 hidden), or ``"auto"`` for the ``maskTempCoh.h5`` beside ``file``.
    vlim : (float, float), optional
        Colour limits in the display unit.
    cmap : str, optional
        matplotlib colour map.
    unit : str, optional
        ``m``, ``cm`` (default), ``mm`` (per year for velocities).
    ref_yx, ref_lalo : tuple, optional
        Re-reference the display to this pixel / point.
    dem : str or os.PathLike, optional
        Geometry file: shaded relief under the data.
    wrap : bool
        Rewrap into (−π, π] (displacement converted to phase first).
    wrap_range : (float, float), optional
        Rewrap into this range of display units instead.
    title : str, optional
    gnss : str or os.PathLike, optional
        Folder of UNR ``.tenv3`` files: GNSS LOS velocities drawn on the velocity map.
    ref_gnss : str, optional
        Reference GNSS station (needs ``gnss``).
    gnss_label : bool
        Write station names beside the markers.
    gnss_site_list : str or os.PathLike, optional
        ``SITE LAT LON`` list for ``.tenv3`` files without coordinates.
    save : str or os.PathLike, optional
        Also write the figure here (.png, .pdf, .svg).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sbts.core.viz.maps import view as draw

    specs = [datasets] if isinstance(datasets, str) else (list(datasets) if datasets else None)
    return _inline(draw(file, specs, mask=mask, vlim=vlim, cmap=cmap, unit=unit, ref_yx=ref_yx, ref_lalo=ref_lalo,
                        dem=dem, wrap=wrap or wrap_range is not None, wrap_range=wrap_range, title=title, save=save,
                        display=False, gnss=gnss, ref_gnss=ref_gnss, gnss_label=gnss_label,
                        gnss_site_list=gnss_site_list))


def tsview(files: PathLike | Sequence[PathLike], *, yx: tuple[int, int] | None = None,
           lalo: tuple[float, float] | None = None, ref_yx: tuple[int, int] | None = None,
           ref_lalo: tuple[float, float] | None = None, date: str | None = None, zero_first: bool = False,
           mask: PathLike | None = None, unit: str = "cm", offset: float | None = None,
           vlim: tuple[float, float] | None = None, periods: Sequence[float] = (1.0,), fit: bool = True,
           save: PathLike | None = None):
    """The map of a date and the displacement history of a pixel, as ``sbts tsview`` (MintPy's tsview.py).

    Parameters
    ----------
    files : str, os.PathLike or sequence of them
        One or more time-series files (overlaid, shifted by ``offset``).
    yx, lalo : tuple, optional
        The pixel (row, column) or point; default the pixel of largest displacement.
    ref_yx, ref_lalo : tuple, optional
        Re-reference to this pixel / point.
    date : str, optional
        Date of the map (default the last).
    zero_first : bool
        Start every history at zero.
    mask : str or os.PathLike, optional
        Mask of the map, or ``"auto"``.
    unit : str
        ``m``, ``cm`` or ``mm``.
    offset : float, optional
        Vertical shift between files (default 2 display units with several files).
    vlim : (float, float), optional
        Colour limits of the map.
    periods : sequence of float
        Periods (years) of the fitted model besides the linear trend.
    fit : bool
        Draw the fitted model (its velocity is in the legend).
    save : str or os.PathLike, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure
        Map on ``axes[0]``, history on ``axes[1]`` (one line of points per file, in ``unit``).
    """
    from sbts.core.viz.timeseries import tsview as draw

    viewer = draw(_paths(files), yx=yx, lalo=lalo, ref_yx=ref_yx, ref_lalo=ref_lalo, date=date, zero_first=zero_first,
                  mask=mask, unit=unit, offset=offset, vlim=vlim, periods=periods, fit=fit, save=save, display=False)
    return _inline(viewer.fig)


def network(stack: PathLike = "inputs/ifgramStack.h5", *, table: PathLike | None = None,
            which: str = "network", save: PathLike | None = None):
    """The interferogram network, as ``sbts plot network`` (MintPy's plot_network.py).

    Parameters
    ----------
    stack : str or os.PathLike
        ``ifgramStack.h5`` (default ``inputs/ifgramStack.h5``).
    table : str or os.PathLike, optional
        Pair coherence table (default ``coherenceSpatialAvg.txt`` beside the stack or its parent).
    which : {"network", "coherenceMatrix", "bperpHistory"}
        The figure returned: dates on time × perpendicular baseline with the pairs coloured by
        average coherence (dropped pairs dashed grey), the date × date matrix of average
        coherence, or the baseline history.
    save : str or os.PathLike, optional
        Write the network figure here, and ``coherenceMatrix`` and ``bperpHistory`` beside it.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sbts.core.errors import InputError
    from sbts.core.viz.network import plot_network

    kinds = ("network", "coherenceMatrix", "bperpHistory")
    if which not in kinds:
        raise InputError(f"sbts.plot.network: which={which!r}; use one of {', '.join(kinds)}")
    return _inline(plot_network(stack, table=table, save=save, display=False)[which])


def coherence_matrix(stack: PathLike, *, yx: tuple[int, int] | None = None, lalo: tuple[float, float] | None = None,
                     save: PathLike | None = None):
    """The coherence matrix of one pixel, as ``sbts plot coherence-matrix`` (MintPy's plot_coherence_matrix.py).

    Parameters
    ----------
    stack : str or os.PathLike
        ``ifgramStack.h5`` with a ``coherence`` dataset.
    yx, lalo : tuple
        The pixel (row, column) or point; one is required.
    save : str or os.PathLike, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure
        The date × date matrix is the image of ``axes[0]`` (pairs not in the network are NaN).
    """
    from sbts.core.viz.network import plot_pixel_coherence_matrix

    fig, _matrix = plot_pixel_coherence_matrix(stack, yx=yx, lalo=lalo, save=save, display=False)
    return _inline(fig)


def transect(files: PathLike | Sequence[PathLike], *, start_yx: tuple[int, int] | None = None,
             end_yx: tuple[int, int] | None = None, start_lalo: tuple[float, float] | None = None,
             end_lalo: tuple[float, float] | None = None, dataset: str | None = None, method: str = "nearest",
             unit: str | None = None, offset: float = 0.0, save: PathLike | None = None):
    """Values along a line, as ``sbts plot transect`` (MintPy's plot_transection.py).

    Parameters
    ----------
    files : str, os.PathLike or sequence of them
        Files overlaid (e.g. ascending and descending velocity).
    start_yx, end_yx : tuple, optional
        The line by pixels.
    start_lalo, end_lalo : tuple, optional
        The line by latitude/longitude.
    dataset : str, optional
        Dataset or date of every file (default its map, or the last date).
    method : {"nearest", "bilinear"}
        Sampling between pixels.
    unit : str, optional
        Display unit (default cm, cm/year).
    offset : float
        Vertical shift between files.
    save : str or os.PathLike, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure
        The map with the line on ``axes[0]``; the profiles (distance in km for geocoded files,
        pixels for radar files) as lines on ``axes[1]``.
    """
    from sbts.core.viz.transect import plot_transect

    fig, _profiles = plot_transect(_paths(files), start_yx=start_yx, end_yx=end_yx, start_lalo=start_lalo,
                                   end_lalo=end_lalo, dataset=dataset, method=method, unit=unit, offset=offset,
                                   save=save, display=False)
    return _inline(fig)


def rms(file: PathLike, *, cutoff: float | None = None, save: PathLike | None = None):
    """Residual RMS per date from an ``rms_*.txt`` file, as ``sbts plot rms`` (MintPy's timeseries_rms.py plot).

    Parameters
    ----------
    file : str or os.PathLike
        ``rms_timeseriesResidual_ramp.txt`` (written by ``sbts rms`` or the ``residual_RMS`` step).
    cutoff : float, optional
        Outlier cutoff in robust standard deviations (default: the file header's, else 3).
    save : str or os.PathLike, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure
        One bar per date (mm); the reference date green, outliers red.
    """
    from sbts.core.viz.rms import plot_rms

    fig, _threshold = plot_rms(file, cutoff=cutoff, save=save, display=False)
    return _inline(fig)


__all__ = ["view", "tsview", "network", "coherence_matrix", "transect", "rms"]
