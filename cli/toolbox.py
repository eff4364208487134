"""The everyday file tools: ``sbts subset``, ``multilook``, ``diff``, ``add``, ``math``, ``lookup``.

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
@click.argument("files", nargs=-1, required=True, type=_file)
@click.option("-y", "--y", "ys", nargs=2, type=int, default=None, metavar="Y0 Y1",
              help="Rows Y0..Y1-1 (end exclusive, as mintpy.subset.yx).")
@click.option("-x", "--x", "xs", nargs=2, type=int, default=None, metavar="X0 X1",
              help="Columns X0..X1-1 (end exclusive).")
@click.option("-l", "--lat", "lats", nargs=2, type=float, default=None, metavar="LAT0 LAT1",
              help="Latitude range: pixels whose centre is inside (either order).")
@click.option("-L", "--lon", "lons", nargs=2, type=float, default=None, metavar="LON0 LON1",
              help="Longitude range (with --lat).")
@click.option("-t", "--template", type=_file, default=None,
              help="Read the box from mintpy.subset.yx (y0:y1,x0:x1) or mintpy.subset.lalo (S:N,W:E; wins).")
@click.option("--lookup", type=_file, default=None,
              help="Radar-coded lookup (geometryRadar.h5, latitude/longitude) for a lat/lon box on radar-coded "
                   "files (default: found beside the file / in inputs/).")
@click.option("-o", "--output", type=_file, default=None, help="Output (one input only; default: sub_<name>).")
@o.max_memory_opt
def subset(files, ys, xs, lats, lons, template, lookup, output, max_memory) -> None:
    """Crop files (any type: time series, stack, geometry, maps) to a pixel or lat/lon box.

    Reads mintpy.subset.yx / mintpy.subset.lalo with -t.  Every dataset on the grid is cropped,
    block-wise; LENGTH/WIDTH, X_FIRST/Y_FIRST, REF_Y/REF_X (dropped when outside) and
    SUBSET_YMIN/YMAX/XMIN/XMAX are updated, as MintPy's subset.py.
    """
    from sbts.core.tools.subset import subset_files

    yx = _pair_box(ys, xs, "-y", "-x")
    lalo = _pair_box(lats, lons, "--lat", "--lon")
    for path in subset_files(files, yx, lalo, output, lookup, template, max_memory or DEFAULT_MEMORY):
        click.echo(str(path))


def _pair_box(a, b, name_a: str, name_b: str):
    if not a and not b:
        return None
    if not a or not b:
        raise click.UsageError(f"{name_a} and {name_b} go together")
    return (*a, *b)


@click.command()
@click.argument("files", nargs=-1, required=True, type=_file)
@click.option("-a", "--azimuth", "-y", "ystep", type=click.IntRange(min=1), default=None,
              help="Looks in azimuth / y (mintpy.multilook.ystep; default 1).")
@click.option("-r", "--range", "-x", "xstep", type=click.IntRange(min=1), default=None,
              help="Looks in range / x (mintpy.multilook.xstep; default 1).")
@click.option("-m", "--method", type=click.Choice(["mean", "median", "nearest"]), default=None,
              help="Cell reduction (default mean; mintpy.multilook.method with -t).")
@click.option("-t", "--template", type=_file, default=None,
              help="Read mintpy.multilook.ystep/xstep/method (options given here win).")
@click.option("-o", "--output", type=_file, default=None,
              help="Output (one input only; default: <stem>_<a>alks_<r>rlks.h5).")
@o.max_memory_opt
def multilook(files, ystep, xstep, method, template, output, max_memory) -> None:
    """Multilook files (any type) by A×R pixels: NaN-aware mean, median or centre sample.

    Integer/boolean datasets (connected components, masks) take the centre sample.  LENGTH/WIDTH,
    X_STEP/Y_STEP, ALOOKS/RLOOKS, pixel sizes, NCORRLOOKS and REF_Y/REF_X are updated, as MintPy's
    multilook.py.
    """
    from sbts.core.tools.multilook import multilook_files

    for path in multilook_files(files, ystep, xstep, method, output, template, max_memory or DEFAULT_MEMORY):
        click.echo(str(path))


@click.command()
@click.argument("file1", type=_file)
@click.argument("files", nargs=-1, required=True, type=_file)
@click.option("-o", "--output", type=_file, default=None, help="Output (default: <file1>_diff_<file2>.h5).")
@click.option("--force", is_flag=True, help="Leave dates/pairs of FILE1 missing from a FILE uncorrected instead of "
                                            "stopping.")
@o.max_memory_opt
def diff(file1, files, output, force, max_memory) -> None:
    """FILE1 − FILE2 [− FILE3 …]: time series, delay files, stacks or maps, dates matched by name.

    Each FILE is first re-referenced to FILE1's REF_DATE and REF_Y/REF_X (so un-referenced delays
    such as inputs/ERA5.h5 or SET.h5 can be removed directly), as MintPy's diff.py.  Maps: the
    datasets in every file; *Std as sqrt(σ1² + σ2²).
    """
    from sbts.core.tools.arith import diff_files

    click.echo(str(diff_files(file1, files, output, force, max_memory or DEFAULT_MEMORY)))


@click.command()
@click.argument("files", nargs=-1, required=True, type=_file)
@click.option("-o", "--output", type=_file, default=None, help="Output (default: <file1>_plus_<file2>.h5).")
@click.option("--force", is_flag=True, help="Leave dates/pairs of FILE1 missing from a FILE unchanged instead of "
                                            "stopping.")
@o.max_memory_opt
def add(files, output, force, max_memory) -> None:
    """FILE1 + FILE2 [+ …]: time series, delay files, stacks or maps, dates matched by name.

    References are aligned to FILE1's as for `sbts diff`; maps: the datasets in every file, *Std as
    sqrt(σ1² + σ2²).
    """
    from sbts.core.tools.arith import add_files

    click.echo(str(add_files(files, output, force, max_memory or DEFAULT_MEMORY)))


@click.command("math", context_settings={"ignore_unknown_options": True})  # VALUE may be negative: -1000
@click.argument("file", type=_file)
@click.argument("operator", type=click.Choice(["+", "-", "*", "/", "^"]))
@click.argument("value", type=float)
@click.option("-o", "--output", type=_file, default=None,
              help="Output (default: <stem>_<plus|minus|times|over|pow><value>.h5).")
@o.max_memory_opt
def math_(file, operator, value, output, max_memory) -> None:
    """FILE OPERATOR VALUE on every float dataset (every date, every pair), as MintPy's image_math.py.

    E.g. `sbts math velocity.h5 '*' 1000` for mm/year (the UNIT attribute is kept: say so in the
    name).  *Std datasets follow: × |VALUE| for *, ÷ |VALUE| for /, unchanged for + and -.
    """
    from sbts.core.tools.arith import image_math

    click.echo(str(image_math(file, operator, value, output, max_memory or DEFAULT_MEMORY)))


@click.group()
def lookup() -> None:
    """Convert a lookup table: geo2radar (geometryGeo.h5 → geometryRadar.h5) or radar2geo.

    As MintPy's lookup_geo2radar.py: a GAMMA/ROI_PAC table (azimuthCoord/rangeCoord on a lat/lon
    grid) becomes latitude/longitude on the radar grid, and back.
    """


@lookup.command("geo2radar")
@click.argument("geometry", type=_file)
@click.option("-o", "--output", type=_file, default=None, help="Output (default: geometryRadar.h5 beside GEOMETRY).")
@click.option("-i", "--interp", "method", type=click.Choice(["linear", "nearest"]), default="linear",
              show_default=True, help="Resampling of the other geometry layers (masks: nearest).")
@o.max_memory_opt
def lookup_geo2radar(geometry, output, method, max_memory) -> None:
    """latitude/longitude on the radar grid from azimuthCoord/rangeCoord on a geographic grid.

    Each radar pixel gets the geo position where the table points to it (the table inverted);
    height, angles and masks are resampled there.  Radar grid: RADAR_LENGTH/RADAR_WIDTH or the
    largest coordinates.
    """
    from sbts.core.tools.lookup import geo2radar

    click.echo(str(geo2radar(geometry, output, method, max_memory or DEFAULT_MEMORY)))


@lookup.command("radar2geo")
@click.argument("geometry", type=_file)
@click.option("-o", "--output", type=_file, default=None, help="Output (default: geometryGeo.h5 beside GEOMETRY).")
@click.option("--lalo-step", nargs=2, type=float, default=None, metavar="DLAT DLON",
              help="Output pixel size in degrees (default: the radar pixel area, as sbts geocode).")
@click.option("--bbox", nargs=4, type=float, default=None, metavar="S N W E",
              help="Output extent (default: the table's).")
@click.option("-i", "--interp", "method", type=click.Choice(["linear", "nearest"]), default="linear",
              show_default=True, help="Resampling of the other geometry layers (masks: nearest).")
@o.max_memory_opt
def lookup_radar2geo(geometry, output, lalo_step, bbox, method, max_memory) -> None:
    """azimuthCoord/rangeCoord on a lat/lon grid from latitude/longitude on the radar grid.

    Each geo pixel gets the fractional radar row/column that lies there (integer = pixel centre;
    NaN outside the radar image); RADAR_LENGTH/RADAR_WIDTH record the radar grid.
    """
    from sbts.core.tools.lookup import radar2geo

    click.echo(str(radar2geo(geometry, output, method, tuple(lalo_step) if lalo_step else None,
                             tuple(bbox) if bbox else None, max_memory or DEFAULT_MEMORY)))
