"""``sbts plot``: network, coherence-matrix, transect, rms."""

from __future__ import annotations

from pathlib import Path

import click

from sbts.cli.view import nodisplay_opt, output_file, save_opt

_file = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def plot() -> None:
    """Diagnostic plots: the network, coherence matrices, transects, residual RMS."""


@plot.command()
@click.argument("stack", required=False, type=_file, default=None)
@click.option("--table", type=_file, default=None,
              help="Pair coherence table (default: coherenceSpatialAvg.txt beside the stack or in its parent).")
@save_opt
@nodisplay_opt
def network(stack, table, save, nodisplay) -> None:
    """Plot the interferogram network of STACK (default inputs/ifgramStack.h5).

    Dates on time × perpendicular baseline, pairs coloured by average spatial coherence, dropped
    pairs dashed grey; plus the coherence matrix and the baseline history.  --save network.png
    also writes coherenceMatrix.png and bperpHistory.png beside it (the default without display).
    """
    from sbts.core.viz.network import plot_network

    stack = stack or Path("inputs") / "ifgramStack.h5"
    out = output_file(save, nodisplay, Path("network.png"))
    plot_network(stack, table=table, save=out, display=not nodisplay)
    if out is not None:
        for name in ("network", "coherenceMatrix", "bperpHistory"):
            click.echo(str(out.with_name(name + (out.suffix or ".png")) if name != "network" else out))


@plot.command("coherence-matrix")
@click.argument("stack", type=_file)
@click.option("--yx", type=(int, int), default=None, metavar="Y X", help="Pixel (row, column).")
@click.option("--lalo", type=(float, float), default=None, metavar="LAT LON", help="Point.")
@save_opt
@nodisplay_opt
def coherence_matrix(stack, yx, lalo, save, nodisplay) -> None:
    """Plot the coherence matrix of one pixel of STACK (date × date, dropped pairs marked).

    Tells whether a pixel is coherent over short pairs only (seasonal decorrelation, a growing
    temporal gap) or throughout.  Without a display the figure goes to coherenceMatrix_yY_xX.png.
    """
    from sbts.core.viz.network import plot_pixel_coherence_matrix

    name = f"coherenceMatrix_y{yx[0]}_x{yx[1]}.png" if yx else "coherenceMatrix_pixel.png"
    out = output_file(save, nodisplay, Path(name))
    plot_pixel_coherence_matrix(stack, yx=yx, lalo=lalo, save=out, display=not nodisplay)
    if out is not None:
        click.echo(str(out))


@plot.command()
@click.argument("files", nargs=-1, required=True, type=_file)
@click.option("--start-yx", type=(int, int), default=None, metavar="Y0 X0", help="Start pixel.")
@click.option("--end-yx", type=(int, int), default=None, metavar="Y1 X1", help="End pixel.")
@click.option("--start-lalo", type=(float, float), default=None, metavar="LAT0 LON0", help="Start point.")
@click.option("--end-lalo", type=(float, float), default=None, metavar="LAT1 LON1", help="End point.")
@click.option("--dataset", default=None, help="Dataset or date of every file (default: its map, or the last date).")
@click.option("--interp", "method", type=click.Choice(["nearest", "bilinear"]), default="nearest",
              show_default=True, help="Sampling between pixels.")
@click.option("-u", "--unit", default=None, help="Display unit: m, cm, mm (default cm, cm/year).")
@click.option("--offset", type=float, default=0.0, show_default=True, help="Vertical shift between files.")
@save_opt
@nodisplay_opt
def transect(files, start_yx, end_yx, start_lalo, end_lalo, dataset, method, unit, offset, save, nodisplay) -> None:
    """Plot values of FILES along a line, sampled every pixel.

    Give the line by pixels (--start-yx/--end-yx) or lat/lon (--start-lalo/--end-lalo).  Distance
    is in km for geocoded files (great circle), in pixels for radar files.  Several files are
    overlaid (e.g. ascending and descending velocity).  Without a display: transect.png.
    """
    from sbts.core.viz.transect import plot_transect

    out = output_file(save, nodisplay, Path("transect.png"))
    plot_transect(list(files), start_yx=start_yx, end_yx=end_yx, start_lalo=start_lalo, end_lalo=end_lalo,
                  dataset=dataset, method=method, unit=unit, offset=offset, save=out, display=not nodisplay)
    if out is not None:
        click.echo(str(out))


@plot.command()
@click.argument("file", type=_file)
@click.option("--cutoff", type=float, default=None,
              help="Outlier cutoff in robust standard deviations (1.4826·MAD) above the median "
                   "(default: the threshold in the file header, else 3).")
@save_opt
@nodisplay_opt
def rms(file, cutoff, save, nodisplay) -> None:
    """Plot the residual RMS per date of an rms_*.txt file (from `sbts rms`).

    Bars per date, the reference date (minimum RMS) in green, dates above the cutoff in red.
    Without a display: FILE_STEM.png.
    """
    from sbts.core.viz.rms import plot_rms

    out = output_file(save, nodisplay, Path(file.stem + ".png"))
    plot_rms(file, cutoff=cutoff, save=out, display=not nodisplay)
    if out is not None:
        click.echo(str(out))
