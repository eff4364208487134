"""``sbts geocode``."""

from __future__ import annotations

from pathlib import Path

import click

from sbts.cli import options as o


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-l", "--lookup", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Lookup table: geometryRadar.h5 (latitude/longitude) or geometryGeo.h5 (azimuthCoord/rangeCoord); "
                   "default: found in inputs/ beside the file.")
@click.option("-t", "--template", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Template with mintpy.geocode.* keys (SNWE, laloStep, interpMethod, fillValue).")
@click.option("--lalo-step", nargs=2, type=float, default=None, metavar="DLAT DLON",
              help="Output pixel size (degrees; metres with --epsg/--utm). Default: the radar pixel area.")
@click.option("--bbox", nargs=4, type=float, default=None, metavar="S N W E", help="Output extent (degrees).")
@click.option("-i", "--interp", "method", type=click.Choice(["nearest", "linear"]), default=None,
              help="Interpolation (default: nearest, mintpy.geocode.interpMethod).")
@click.option("--fill", type=float, default=None, help="Value outside the data (default: nan; 0 for integers).")
@click.option("--epsg", type=int, default=None, help="Output CRS as EPSG code (e.g. 32614 for UTM 14N).")
@click.option("--utm", is_flag=True, help="Output in the UTM zone of the scene centre.")
@click.option("--geo2radar", is_flag=True, help="Resample geocoded files back to radar coordinates.")
@click.option("-o", "--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: geo/ beside each file; rdr_* beside it with --geo2radar).")
@o.max_memory_opt
@o.num_worker_opt
@o.cluster_opt
def geocode(files, lookup, template, lalo_step, bbox, method, fill, epsg, utm, geo2radar, out_dir,
            max_memory, num_worker, cluster) -> None:
    """Resample FILES between radar and geographic coordinates.

    Every 2-D layer of every dataset is resampled (maps, time series, stacks, geometry), block by
    block over the output grid.  Output: geo/geo_<name>.h5 with X_FIRST/Y_FIRST/X_STEP/Y_STEP and
    REF_Y/REF_X recomputed from REF_LAT/REF_LON; rdr_<name>.h5 with --geo2radar.  The output blocks
    run here, in a pool (--num-worker) or on dask (--cluster), with identical results.
    """
    from sbts.core.steps.geocode import GeocodeOptions, geocode_files

    t = o.load_template(template)
    opts = GeocodeOptions.from_template(
        t, lalo_step=tuple(lalo_step) if lalo_step else None, bbox=bbox, method=method, fill=fill, epsg=epsg,
        utm=utm or None, max_memory=o.resolve_memory(max_memory, t))
    cluster = cluster if cluster is not None else t.get("mintpy.compute.cluster")
    for path in geocode_files(files, lookup, out_dir, geo2radar, opts, num_worker=o.resolve_workers(num_worker, t),
                              cluster=cluster):
        click.echo(str(path))
