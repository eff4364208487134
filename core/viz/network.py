"""``sbts plot network`` and ``sbts plot coherence-matrix``: how well the dates are tied together.

* network: dates at (time, perpendicular baseline), one line per interferogram coloured by its
  average spatial coherence; dropped pairs (``dropIfgram`` False) dashed grey, so the effect of
  ``sbts network`` is visible at a glance;
* coherence matrix: date × date, each cell the coherence of that pair (dropped pairs marked);
* bperp history: each date's baseline relative to the first date;
* per-pixel coherence matrix: the same matrix from one pixel's coherence (is that pixel usable?).

The pair coherence comes from ``coherenceSpatialAvg.txt`` (written by the network step) when it
lists every pair, else it is computed from the stack block by block.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.errors import InputError
from sbts.core.io.products import IfgramStack, Product
from sbts.core.steps.network import COHERENCE_TABLE, spatial_average_coherence
from sbts.core.viz import common as c

logger = logging.getLogger(__name__)
_PAIR = re.compile(r"^(\d{8})[_-](\d{8})$")


def open_stack(path: str | os.PathLike) -> IfgramStack:
    product = Product.open(path)
    if not isinstance(product, IfgramStack):
        raise InputError(f"{path}: not an interferogram stack (FILE_TYPE {product.metadata.file_type or 'unset'}); "
                         "give inputs/ifgramStack.h5")
    return product


def read_coherence_table(path: str | os.PathLike) -> dict[str, float]:
    """``date12 → mean coherence`` from a ``coherenceSpatialAvg.txt`` (sbts or MintPy layout)."""
    out: dict[str, float] = {}
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        tokens = line.split("#", 1)[0].split()
        for k, tok in enumerate(tokens[:-1]):
            m = _PAIR.match(tok)
            if m:
                try:
                    out[f"{m.group(1)}_{m.group(2)}"] = float(tokens[k + 1])
                except ValueError:
                    pass
                break
    return out


def pair_coherence(stack: IfgramStack, table: str | os.PathLike | None = None, max_memory: float = DEFAULT_MAX_MEMORY_GB) -> np.ndarray:
    """Average coherence of each pair: from the table when complete, else computed from the stack."""
    candidates = [Path(table)] if table is not None else [
        stack.path.parent / COHERENCE_TABLE, stack.path.parent.parent / COHERENCE_TABLE]
    for path in candidates:
        if path.is_file():
            values = read_coherence_table(path)
            if all(name in values for name in stack.pairs.date12):
                logger.info("pair coherence from %s", path)
                return np.array([values[n] for n in stack.pairs.date12], np.float64)
            logger.info("%s does not list every pair of %s; computing the coherence", path, stack.path.name)
    if table is not None and not Path(table).is_file():
        raise InputError(f"coherence table {table} not found")
    if not stack.has("coherence"):
        logger.info("%s has no coherence: pairs drawn in one colour", stack.path.name)
        return np.full(len(stack.pairs), np.nan)
    return spatial_average_coherence(stack, max_memory=max_memory)


def coherence_matrix(stack: IfgramStack, coherence: np.ndarray) -> np.ndarray:
    """(n_date × n_date) matrix, symmetric, NaN where there is no pair."""
    n = len(stack.pairs.dates)
    i1, i2 = stack.pairs.indices()
    mat = np.full((n, n), np.nan)
    mat[i1, i2] = coherence
    mat[i2, i1] = coherence
    return mat


# ---------------------------------------------------------------------------- drawing
def coherence_limits(coherence: np.ndarray) -> tuple[float, float]:
    """Colour limits rounded outward to 0.1 around the data: pair coherences often span only 0.5–0.8,
    and a fixed 0–1 scale would paint them all the same colour."""
    v = coherence[np.isfinite(coherence)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = np.floor(v.min() * 10) / 10, np.ceil(v.max() * 10) / 10
    if hi - lo < 0.2:
        lo, hi = max(0.0, lo - 0.1), min(1.0, hi + 0.1)
    return float(max(0.0, lo)), float(min(1.0, hi))


def _coherence_norm(coherence: np.ndarray):
    from matplotlib.colors import Normalize

    return Normalize(*coherence_limits(coherence))


def draw_network(ax, stack: IfgramStack, coherence: np.ndarray, cmap: str = "RdYlBu"):
    """Pairs as lines on time × bperp; returns the ScalarMappable for a colour bar (or None)."""
    import matplotlib.dates as mdates
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection

    pairs = stack.pairs
    dates = pairs.dates
    bperp = pairs.date_bperp()
    t = mdates.date2num(dates)
    i1, i2 = pairs.indices()
    keep = pairs.keep
    seg = np.stack([np.column_stack([t[i1], bperp[i1]]), np.column_stack([t[i2], bperp[i2]])], axis=1)
    norm = _coherence_norm(coherence)
    have_coh = np.isfinite(coherence).any()
    if (~keep).any():
        ax.add_collection(LineCollection(seg[~keep], colors="0.6", linestyles="--", linewidths=0.9, zorder=1,
                                         label=f"dropped ({int((~keep).sum())})"))
    kept = LineCollection(seg[keep], linewidths=1.3, zorder=2, label=f"kept ({int(keep.sum())})")
    if have_coh:
        kept.set_array(np.nan_to_num(coherence[keep], nan=0.0))
        kept.set_cmap(cmap)
        kept.set_norm(norm)
    else:
        kept.set_color("C0")
    ax.add_collection(kept)
    ax.plot(dates, bperp, "o", color="k", mfc="0.95", ms=5, zorder=3)
    ax.set_xlim(t.min() - 15, t.max() + 15)
    pad = max(10.0, 0.08 * float(np.ptp(bperp)))
    ax.set_ylim(float(bperp.min()) - pad, float(bperp.max()) + pad)
    ax.set_ylabel("perpendicular baseline (m)")
    c.date_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if not have_coh:
        return None
    sm = ScalarMappable(norm=norm, cmap=cmap)
    sm.set_array([])
    return sm


def draw_coherence_matrix(ax, dates, matrix: np.ndarray, dropped: list[tuple[int, int]] | None = None,
                          cmap: str = "RdYlBu", vlim: tuple[float, float] = (0.0, 1.0)):
    """Date × date coherence matrix; dropped pairs marked with a cross; returns the image."""
    n = len(dates)
    im = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=vlim[0], vmax=vlim[1], interpolation="nearest",
                   origin="upper", extent=(-0.5, n - 0.5, n - 0.5, -0.5))
    ax.set_facecolor("0.9")
    if dropped:
        a = np.array(dropped)
        ax.plot(a[:, 1], a[:, 0], "x", color="k", ms=max(2.0, 120.0 / n), mew=0.8, label="dropped")
        ax.plot(a[:, 0], a[:, 1], "x", color="k", ms=max(2.0, 120.0 / n), mew=0.8)
        ax.legend(loc="lower left", fontsize=8)
    step = max(1, int(np.ceil(n / 12)))
    ticks = np.arange(0, n, step)
    labels = [dates[k].strftime("%Y-%m-%d") for k in ticks]
    ax.set_xticks(ticks, labels, rotation=90, fontsize=7)
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    return im


def plot_network(stack_path: str | os.PathLike, *, table: str | os.PathLike | None = None,
                 save: str | os.PathLike | None = None, display: bool = False, max_memory: float = DEFAULT_MAX_MEMORY_GB):
    """Network, coherence matrix and bperp history figures; with ``save``, written beside each other.

    ``save`` names the network figure (``network.png``); the others go to the same folder as
    ``coherenceMatrix<ext>`` and ``bperpHistory<ext>``.  Returns ``{name: Figure}``.
    """
    stack = open_stack(stack_path)
    coherence = pair_coherence(stack, table, max_memory)
    interactive = c.want_interactive(display)
    pairs = stack.pairs
    n_keep = int(pairs.keep.sum())

    fig_net = c.new_figure(interactive, figsize=(8.0, 5.0), layout="constrained")
    ax = fig_net.add_subplot(1, 1, 1)
    sm = draw_network(ax, stack, coherence)
    if sm is not None:
        fig_net.colorbar(sm, ax=ax, shrink=0.9).set_label("average spatial coherence")
    ax.set_title(f"{stack.path.name}: {len(pairs.dates)} dates, {len(pairs)} interferograms "
                 f"({n_keep} kept, {len(pairs) - n_keep} dropped)")

    fig_mat = c.new_figure(interactive, figsize=(6.5, 5.8), layout="constrained")
    axm = fig_mat.add_subplot(1, 1, 1)
    i1, i2 = pairs.indices()
    dropped = [(int(a), int(b)) for a, b, k in zip(i1, i2, pairs.keep) if not k]
    if np.isfinite(coherence).any():
        im = draw_coherence_matrix(axm, pairs.dates, coherence_matrix(stack, coherence), dropped,
                                   vlim=coherence_limits(coherence))
        fig_mat.colorbar(im, ax=axm, shrink=0.85).set_label("average spatial coherence")
    else:
        im = draw_coherence_matrix(axm, pairs.dates, coherence_matrix(stack, np.where(pairs.keep, 1.0, 0.5)),
                                   dropped, cmap="Greys")
    axm.set_title(f"coherence matrix: {stack.path.name}")

    fig_b = c.new_figure(interactive, figsize=(8.0, 4.0), layout="constrained")
    axb = fig_b.add_subplot(1, 1, 1)
    bperp = pairs.date_bperp()
    axb.vlines(pairs.dates, 0, bperp, color="C0", lw=1.0)
    axb.plot(pairs.dates, bperp, "o", color="C0", ms=4)
    axb.axhline(0, color="0.5", lw=0.6)
    axb.set_ylabel("perpendicular baseline (m)")
    axb.set_title(f"baseline history relative to {pairs.dates[0]:%Y-%m-%d}")
    c.date_axis(axb)
    axb.grid(alpha=0.3)

    figures = {"network": fig_net, "coherenceMatrix": fig_mat, "bperpHistory": fig_b}
    if save is not None:
        save = Path(save)
        suffix = save.suffix or ".png"
        c.finish(fig_net, save)
        c.finish(fig_mat, save.with_name("coherenceMatrix" + suffix))
        c.finish(fig_b, save.with_name("bperpHistory" + suffix))
    if interactive:
        c.finish(fig_net, None, True)
    return figures


def pixel_coherence(stack: IfgramStack, y: int, x: int) -> np.ndarray:
    """Coherence of every pair at pixel (y, x)."""
    if not stack.has("coherence"):
        raise InputError(f"{stack.path}: no coherence dataset")
    c.check_pixel(stack.metadata, y, x)
    return c.read_pixel(stack.path, "coherence", y, x).astype(np.float64)


def plot_pixel_coherence_matrix(stack_path: str | os.PathLike, *, yx: tuple[int, int] | None = None,
                                lalo: tuple[float, float] | None = None, save: str | os.PathLike | None = None,
                                display: bool = False):
    """Coherence matrix at one pixel (``--yx`` or ``--lalo``); returns (Figure, matrix)."""
    stack = open_stack(stack_path)
    pixel = c.pixel_from_options(stack.metadata, yx, lalo, stack.path, "pixel")
    if pixel is None:
        raise InputError("coherence-matrix: give the pixel with --yx Y X or --lalo LAT LON")
    coh = pixel_coherence(stack, *pixel)
    matrix = coherence_matrix(stack, coh)
    interactive = c.want_interactive(display)
    fig = c.new_figure(interactive, figsize=(6.5, 5.8), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    pairs = stack.pairs
    i1, i2 = pairs.indices()
    dropped = [(int(a), int(b)) for a, b, k in zip(i1, i2, pairs.keep) if not k]
    im = draw_coherence_matrix(ax, pairs.dates, matrix, dropped, vlim=coherence_limits(coh))
    fig.colorbar(im, ax=ax, shrink=0.85).set_label("coherence")
    where = f"y={pixel[0]}, x={pixel[1]}"
    if stack.metadata.grid.geo is not None:
        lat, lon = stack.metadata.grid.geo.yx_to_lalo(*pixel)
        where += f" (lat {lat:.4f}, lon {lon:.4f})"
    ax.set_title(f"coherence at {where}\nmean {np.nanmean(coh):.2f} over {len(coh)} pairs", fontsize=10)
    c.finish(fig, save, interactive)
    return fig, matrix


__all__ = ["read_coherence_table", "pair_coherence", "coherence_matrix", "plot_network", "pixel_coherence",
           "plot_pixel_coherence_matrix", "draw_network", "draw_coherence_matrix", "open_stack"]
