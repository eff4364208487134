"""``sbts tsview``."""

from __future__ import annotations

from pathlib import Path

import click

from sbts.cli.view import nodisplay_opt, output_file, save_opt


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yx", type=(int, int), default=None, metavar="Y X", help="Pixel to plot (row, column).")
@click.option("--lalo", type=(float, float), default=None, metavar="LAT LON", help="Point to plot.")
@click.option("--ref-yx", type=(int, int), default=None, metavar="Y X", help="Re-reference to this pixel.")
@click.option("--ref-lalo", type=(float, float), default=None, metavar="LAT LON", help="Re-reference to this point.")
@click.option("-d", "--date", default=None, help="Date of the map (default: the last).")
@click.option("--zero-first", is_flag=True, help="Start every history at zero.")
@click.option("-m", "--mask", type=str, default=None, help="Mask file for the map, or 'auto' (maskTempCoh.h5).")
@click.option("-u", "--unit", default="cm", show_default=True, help="Display unit: m, cm or mm.")
@click.option("--offset", type=float, default=None,
              help="Vertical shift between files in display units (default 2 with several files).")
@click.option("-v", "--vlim", type=(float, float), default=None, metavar="MIN MAX", help="Colour limits of the map.")
@click.option("--periodic", "periods", type=float, multiple=True, default=(1.0,), show_default=True,
              help="Periods (years) of the fitted model besides the linear trend; repeat for several.")
@click.option("--no-fit", is_flag=True, help="Do not draw the fitted model.")
@save_opt
@nodisplay_opt
def tsview(files, yx, lalo, ref_yx, ref_lalo, date, zero_first, mask, unit, offset, vlim, periods, no_fit, save,
           nodisplay) -> None:
    """Plot the displacement history of a pixel of one or more time-series FILES.

    The map of a date (default the last) is on top; the history of the pixel (--yx/--lalo,
    default: the pixel of largest displacement) below, with a least-squares fit of a linear
    trend plus an annual term whose velocity is in the legend.  With a display, click on the map
    to see another pixel.  Without one, the figure is written to tsview_yY_xX.png unless --save
    is given.
    """
    from sbts.core.viz.timeseries import default_output_name
    from sbts.core.viz.timeseries import tsview as run_tsview

    out = output_file(save, nodisplay, default_output_name(yx))
    viewer = run_tsview(list(files), yx=yx, lalo=lalo, ref_yx=ref_yx, ref_lalo=ref_lalo, date=date,
                        zero_first=zero_first, mask=mask, unit=unit, offset=offset, vlim=vlim, periods=periods,
                        fit=not no_fit, save=out, display=not nodisplay)
    if out is not None:
        click.echo(str(out))
    del viewer
