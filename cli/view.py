"""``sbts view`` (and the --save/--nodisplay options shared by tsview and plot)."""

from __future__ import annotations

from pathlib import Path

import click

save_opt = click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="Write the figure to this file (.png, .pdf, .svg by extension).")
nodisplay_opt = click.option("--nodisplay", is_flag=True,
                             help="Do not open a window (implied when there is no display).")


def output_file(save: Path | None, nodisplay: bool, default: Path) -> Path | None:
    """The file to write: --save, else a default name when no window can be shown (headless runs)."""
    from sbts.core.viz.common import want_interactive

    if save is None and not want_interactive(not nodisplay):
        return default
    return save


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("datasets", nargs=-1)
@click.option("-m", "--mask", type=str, default=None,
              help="Mask file (0 = hidden), or 'auto' for the maskTempCoh.h5 beside FILE.")
@click.option("-v", "--vlim", type=(float, float), default=None, metavar="MIN MAX", help="Colour limits (display unit).")
@click.option("-c", "--cmap", default=None, help="matplotlib colour map (default by data type, e.g. RdBu_r).")
@click.option("-u", "--unit", default=None, help="Display unit: m, cm, mm (per year for velocities); default cm.")
@click.option("--ref-yx", type=(int, int), default=None, metavar="Y X", help="Re-reference the display to this pixel.")
@click.option("--ref-lalo", type=(float, float), default=None, metavar="LAT LON",
              help="Re-reference the display to this point.")
@click.option("--dem", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Geometry/DEM file: shaded relief under the data.")
@click.option("--wrap", is_flag=True, help="Rewrap: phase into (-π, π]; displacement converted to phase first.")
@click.option("--wrap-range", type=(float, float), default=None, metavar="MIN MAX",
              help="Rewrap into this range of display units instead (implies --wrap).")
@click.option("--title", default=None, help="Figure title.")
@click.option("--gnss", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of UNR .tenv3 files: GNSS LOS velocities as markers on a velocity map, "
                   "InSAR − GNSS statistics in the legend (nothing is downloaded).")
@click.option("--ref-gnss", default=None, metavar="SITE",
              help="Reference GNSS station: GNSS and the map both relative to it (needs --gnss).")
@click.option("--gnss-label", is_flag=True, help="Write the station names beside the markers.")
@click.option("--gnss-site-list", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="SITE LAT LON list (e.g. UNR DataHoldings.txt) for .tenv3 files without coordinates.")
@save_opt
@nodisplay_opt
def view(file, datasets, mask, vlim, cmap, unit, ref_yx, ref_lalo, dem, wrap, wrap_range, title, gnss, ref_gnss,
         gnss_label, gnss_site_list, save, nodisplay) -> None:
    """Plot maps of FILE: any 2-D dataset, time-series dates, interferograms.

    DATASET may be a dataset name (velocity, height, temporalCoherence ...), a date YYYYMMDD of a
    time series, a glob (2020*), a pair date1_date2 (from a stack, or reconstructed from a time
    series), or DATASET-date1_date2 for another stack dataset (coherence-20200101_20200113).
    Without DATASET: every 2-D dataset, or all dates / all pairs as a grid of maps sharing one
    colour scale.  Displacement is shown in cm (velocity in cm/year) relative to the reference
    point (black square).  Large rasters are decimated for display without being read whole.
    Without a display, the figure is written to FILE_STEM[_DATASET].png unless --save is given.
    With --gnss DIR, the GNSS stations' velocities projected to the LOS are drawn on the velocity map
    on its colour scale (MintPy's view.py --show-gnss); --ref-gnss SITE re-references both to a station.
    """
    from sbts.core.viz.maps import default_output_name
    from sbts.core.viz.maps import view as view_maps

    out = output_file(save, nodisplay, default_output_name(file, datasets))
    view_maps(file, list(datasets) or None, mask=mask, vlim=vlim, cmap=cmap, unit=unit, ref_yx=ref_yx,
              ref_lalo=ref_lalo, dem=dem, wrap=wrap or wrap_range is not None, wrap_range=wrap_range, title=title,
              save=out, display=not nodisplay, gnss=gnss, ref_gnss=ref_gnss, gnss_label=gnss_label,
              gnss_site_list=gnss_site_list)
    if out is not None:
        click.echo(str(out))
