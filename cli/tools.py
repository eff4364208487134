"""Analysis tools: ``sbts average``, ``mask``, ``horzvert``, ``mosaic``, ``filter``, ``gnss``.

Each command is one call into :mod:`sbts.core.tools`; files are checked there so that a missing or
wrong input gives a one-line error.
"""

from __future__ import annotations

from pathlib import Path

import click

from sbts.cli import options as o

_file = click.Path(dir_okay=False, path_type=Path)
DEFAULT_MEMORY = 4.0


@click.command()
@click.argument("stack", type=_file)
@click.option("-d", "--dataset", default="coherence", show_default=True,
              help="Stack dataset: coherence, unwrapPhase (→ stacking velocity), connectComponent, ...")
@click.option("-o", "--output", type=_file, default=None,
              help="Output file (default: avgSpatialCoh.h5 / avgPhaseVelocity.h5 / avg<Dataset>.h5 in the work dir).")
@o.max_memory_opt
def average(stack, dataset, output, max_memory) -> None:
    """Temporal average of a stack dataset over the kept interferograms.

    coherence gives avgSpatialCoh.h5; unwrapPhase gives the stacking velocity avgPhaseVelocity.h5
    (m/year, mean of the phase rates), as MintPy's temporal_average.
    """
    from sbts.core.tools.average import average_stack

    click.echo(str(average_stack(stack, dataset, output, max_memory or DEFAULT_MEMORY)))


@click.command()
@click.argument("file", type=_file)
@click.argument("dataset", required=False)
@click.option("-m", "--min", "vmin", type=float, default=None, help="Keep values >= MIN.")
@click.option("-M", "--max", "vmax", type=float, default=None, help="Keep values <= MAX.")
@click.option("--nonzero", is_flag=True,
              help="Keep non-zero values; for an ifgramStack: connected component non-zero in every kept pair.")
@click.option("--base", type=_file, default=None,
              help="Switch off pixels where this file's dataset equals --base-value.")
@click.option("--base-dset", default=None, help="Dataset of --base (default: its main dataset).")
@click.option("--base-value", type=float, default=0.0, show_default=True, help="Value of --base to mask out.")
@click.option("--subset-yx", nargs=4, type=int, default=None, metavar="Y0 Y1 X0 X1",
              help="Keep only this pixel window (end exclusive).")
@click.option("--subset-lalo", nargs=4, type=float, default=None, metavar="LAT0 LAT1 LON0 LON1",
              help="Keep only this lat/lon window (geocoded files).")
@click.option("--exclude-circle", nargs=3, type=float, multiple=True, metavar="Y X R",
              help="Switch off a circle: centre pixel Y X, radius R pixels (repeatable).")
@click.option("-p", "--min-cluster", type=click.IntRange(min=1), default=None,
              help="Remove connected groups of kept pixels smaller than N pixels.")
@click.option("--vstd", type=float, default=None, help="Keep |v| > K·velocityStd (velocity files).")
@click.option("-o", "--output", type=_file, default=None,
              help="Output (default: maskConnComp.h5, maskTempCoh.h5 or mask_<dataset>.h5 beside the input).")
@o.max_memory_opt
def mask(file, dataset, vmin, vmax, nonzero, base, base_dset, base_value, subset_yx, subset_lalo, exclude_circle,
         min_cluster, vstd, output, max_memory) -> None:
    """Make a mask file (bool dataset 'mask') from thresholds and spatial rules, as generate_mask.

    DATASET: a dataset of FILE, or a date (YYYYMMDD) of a time series (default: the main dataset,
    the last date).  Rules only switch pixels off: NaN, thresholds, --vstd, --base, subset,
    circles, then --min-cluster.
    """
    from sbts.core.tools.masks import generate_mask

    click.echo(str(generate_mask(
        file, output, dataset, max_memory or DEFAULT_MEMORY, vmin=vmin, vmax=vmax, nonzero=nonzero, base=base,
        base_dset=base_dset, base_value=base_value, subset_yx=subset_yx or None, subset_lalo=subset_lalo or None,
        exclude_circles=exclude_circle, min_cluster=min_cluster, vstd=vstd)))


@click.command()
@click.argument("files", nargs=-1, required=True, type=_file)
@click.option("-g", "--geometry", "geometries", multiple=True, type=_file,
              help="Geometry file (incidenceAngle, azimuthAngle) of each input, in order; '-' (or no -g at "
                   "all) takes INCIDENCE_ANGLE/HEADING from that file's attributes.")
@click.option("--dset", default=None, help="Dataset (default: the main one, e.g. velocity) or a date of a time series.")
@click.option("--horz-az", type=float, default=90.0, show_default=True,
              help="Bearing of the assumed horizontal motion, degrees clockwise from north (90 = east).")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for hz.h5 and up.h5 (default: the first file's).")
@o.max_memory_opt
def horzvert(files, geometries, dset, horz_az, outdir, max_memory) -> None:
    """Ascending + descending LOS (geocoded, same pixel size) → horizontal (hz.h5) and vertical (up.h5).

    Per pixel least squares with north motion assumed 0 (or the horizontal along --horz-az), on the
    overlap of the inputs, on the first file's grid.
    """
    from sbts.core.tools.decompose import asc_desc_to_horz_vert

    geoms = [None if str(g) == "-" else g for g in geometries] or None
    for path in asc_desc_to_horz_vert(files, geoms, dset, horz_az, outdir, max_memory or DEFAULT_MEMORY):
        click.echo(str(path))


@click.command()
@click.argument("files", nargs=-1, required=True, type=_file)
@click.option("-o", "--output", type=_file, default=Path("mosaic.h5"), show_default=True, help="Output file.")
@click.option("--dset", default=None, help="Dataset (default: the main one) or a date of a time series.")
@click.option("--no-offset", is_flag=True, help="Do not remove the mean difference over the overlaps.")
def mosaic(files, output, dset, no_offset) -> None:
    """Mosaic overlapping geocoded maps (same pixel size) onto their union grid.

    Each file after the first is shifted by the mean difference over its overlap with the mosaic,
    then fills the pixels still empty (MintPy image_stitch).
    """
    from sbts.core.tools.mosaic import mosaic_files

    click.echo(str(mosaic_files(files, output, dset, not no_offset)))


@click.command("filter")
@click.argument("file", type=_file)
@click.option("-f", "--filter", "kind", default="gaussian", show_default=True,
              type=click.Choice(["gaussian", "median", "lowpass", "highpass", "temporal-gaussian", "temporal-median"]),
              help="Filter type.")
@click.option("-p", "--param", type=float, default=None,
              help="σ in pixels (gaussian, highpass; default 3), window in pixels (median, lowpass; 5), "
                   "σ in months (temporal-gaussian; 3), window in dates (temporal-median, odd; 5).")
@click.option("--dset", default=None, help="Dataset to filter (default: the main one).")
@click.option("-o", "--output", type=_file, default=None, help="Output (default: <stem>_<filter><param>.h5).")
@o.max_memory_opt
def filter_(file, kind, param, dset, output, max_memory) -> None:
    """Spatial filter of a map or of every date of a time series, or temporal filter of a time series.

    NaN-aware; temporal results are re-referenced to REF_DATE.
    """
    from sbts.core.tools.filters import filter_file

    click.echo(str(filter_file(file, kind, param, dset, output, max_memory or DEFAULT_MEMORY)))


@click.command()
@click.argument("timeseries", type=_file)
@click.option("--gnss-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder with the stations' UNR .tenv3 files (nothing is downloaded).")
@click.option("--sites", default=None, help="Comma-separated stations (default: all inside the grid).")
@click.option("--ref-site", default=None, help="Reference station (default: the InSAR reference point).")
@click.option("--geometry", type=_file, default=None,
              help="Geometry file (default: geometryGeo.h5 nearby, else the INCIDENCE_ANGLE/HEADING attributes).")
@click.option("--site-list", type=_file, default=None,
              help="SITE LAT LON list (e.g. UNR DataHoldings.txt) for .tenv3 files without coordinates.")
@click.option("--max-gap-days", type=click.IntRange(min=0), default=1, show_default=True,
              help="Use the nearest GNSS day within this many days of each InSAR date.")
@click.option("-o", "--output", type=_file, default=None,
              help="Text report (default: gnss_comparison.txt beside TIMESERIES); the plot is <output>.png.")
@click.option("--no-plot", is_flag=True, help="Skip the plot.")
def gnss(timeseries, gnss_dir, sites, ref_site, geometry, site_list, max_gap_days, output, no_plot) -> None:
    """Compare a time series with GNSS stations projected onto the LOS: RMSE and correlation per station."""
    from sbts.core.tools.gnss import run_gnss_comparison

    site_names = [s.strip() for s in sites.split(",") if s.strip()] if sites else None
    report, figure, _ = run_gnss_comparison(timeseries, gnss_dir, output, not no_plot, sites=site_names,
                                            ref_site=ref_site, geometry=geometry, site_list=site_list,
                                            max_gap_days=max_gap_days)
    click.echo(report.read_text(encoding="utf-8").rstrip())
    click.echo(str(report))
    if figure is not None:
        click.echo(str(figure))
