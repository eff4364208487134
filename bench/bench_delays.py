"""Benchmark of the weather-model (ERA5, pyaps3) delays computed date by date in parallel (issue 16).

Builds (in --dir) a case from ``../shared/data/era5_grib_pyaps3_kyushu``: its ISCE geometry (460 × 237
px) tiled ``--tile`` times in each direction, a time series of ``--dates`` dates, and for each date a
copy of one of the two real ERA5 GRIB files under that date's name (the delays repeat, the work does
not).  Then runs the ``pyaps`` correction once per number of ``--workers`` (and on a local dask cluster
with ``--cluster local``) and prints the wall time, the peak RSS of this process and its workers, the
time per date, and whether ``inputs/ERA5.h5`` is the same as in the first run.

Usage: python bench/bench_delays.py [--dir /tmp/sbts_bench_delays] [--tile 3] [--dates 8]
                                    [--workers 1,2] [--cluster local] [--max-memory 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "era5_grib_pyaps3_kyushu"


def make_case(folder: Path, tile: int, num_date: int) -> Path:
    """A work folder with inputs/geometryRadar.h5 and timeseries.h5, and a weather folder of GRIB copies."""
    from sbts.core.io.products import TimeSeriesWriter, write_map
    from sbts.core.model.metadata import Grid, Metadata, Reference
    from sbts.plugins.readers._isce_xml import read_image_xml

    g = DATA / "geometry_isce"
    layers = {name: np.tile(read_image_xml(g / f"{f}.rdr").band(0).read().astype(np.float32), (tile, tile))
              for name, f in (("height", "hgt"), ("latitude", "lat"), ("longitude", "lon"),
                              ("incidenceAngle", "los"))}
    length, width = layers["height"].shape
    dates = [dt.date(2010, 10, 17) + dt.timedelta(days=12 * k) for k in range(num_date)]
    names = [d.strftime("%Y%m%d") for d in dates]
    meta = Metadata(Grid(length, width), unit="m", processor="isce",
                    reference=Reference(y=length // 2, x=width // 2, date=dates[0]))
    meta = meta.with_radar(center_line_utc=14 * 3600 - 600, platform="ALOS", wavelength=0.236)
    (folder / "inputs").mkdir(parents=True)
    write_map(folder / "inputs" / "geometryRadar.h5", meta, "geometry", layers, unit=None)
    with TimeSeriesWriter(folder / "timeseries.h5", meta, names, np.zeros(num_date)) as w:
        w.write("timeseries", np.zeros((num_date, length, width), np.float32))
    weather = folder / "weather" / "ERA5"
    weather.mkdir(parents=True)
    sources = sorted((DATA / "ERA5").glob("*.grb"))
    for k, name in enumerate(names):
        src = sources[k % len(sources)]
        shutil.copy(src, weather / src.name.replace(src.name.split("_")[5], name))
    return folder


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/sbts_bench_delays"))
    ap.add_argument("--tile", type=int, default=3)
    ap.add_argument("--dates", type=int, default=8)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--cluster", default=None)
    ap.add_argument("--max-memory", type=float, default=4.0)
    args = ap.parse_args()

    from sbts.core.config.template import Template
    from sbts.core.io.products import TimeSeries
    from sbts.core.plugin.runners import run_correction

    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found")
    counts = [int(w) for w in args.workers.split(",")]
    runs = [(w, None) for w in counts] + ([(counts[-1], args.cluster)] if args.cluster else [])
    first = None
    for workers, cluster in runs:
        folder = args.dir / f"w{workers}{'_dask' if cluster else ''}"
        shutil.rmtree(folder, ignore_errors=True)
        make_case(folder, args.tile, args.dates)
        template = Template({"mintpy.troposphericDelay.weatherDir": str(folder / "weather")})
        start = time.perf_counter()
        run_correction("pyaps", template, folder, num_worker=workers, cluster=cluster, max_memory=args.max_memory)
        wall = time.perf_counter() - start
        delays = TimeSeries(folder / "inputs" / "ERA5.h5").read_dates()
        same = "first run" if first is None else ("same values" if np.array_equal(delays, first) else "DIFFERENT")
        first = delays if first is None else first
        shape = delays.shape
        print(f"{shape[1]} x {shape[2]} px, {shape[0]} dates, {workers} worker(s)"
              f"{' on dask ' + cluster if cluster else ''}: {wall:.1f} s ({wall / shape[0]:.2f} s a date), "
              f"peak RSS {_peak_mb():.0f} MB; ERA5.h5: {same}")


if __name__ == "__main__":
    main()
