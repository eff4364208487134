"""Benchmark of the exports that read whole time series (issue 16): KMZ time series and GeoTIFF stacks.

Generates (once, cached in ``--dir``) a geocoded time series of ``--size`` pixels and ``--dates``
dates with its velocity and reliable-pixel mask, then runs ``sbts export kmz_timeseries`` and
``sbts export geotiff -O bands=all`` with each number of ``--workers`` (and ``--cluster``), each as a
process of its own, and prints per run the wall time, the peak RSS of the process tree, the ratio to
the floor (a cold read of the time series: the page cache is dropped when this process may) and
whether the file is byte for byte the first run's.

Usage: python bench/bench_exports.py [--dir /tmp/sbts_bench_exports] [--size 600 600] [--dates 30]
                                     [--workers 1,2] [--cluster local] [--max-memory 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_workflow import _tree_rss_mb, floor_read  # noqa: E402


def make_series(folder: Path, shape: tuple[int, int], num_date: int, seed: int = 0) -> Path:
    """``folder/timeseries.h5`` (geocoded, EPSG:4326) with ``velocity.h5`` and ``maskTempCoh.h5``."""
    from sbts.core.io.blocks import plan_blocks
    from sbts.core.io.products import TimeSeriesWriter, write_map
    from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo, Reference

    done = folder / "done.json"
    path = folder / "timeseries.h5"
    if done.exists() and json.loads(done.read_text()) == [list(shape), num_date, seed]:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    geo = GeoGrid(-99.3, 19.6, 0.0005, -0.0005, epsg=4326)
    meta = Metadata(Grid(*shape, geo), unit="m", radar=RadarInfo(wavelength=0.0555),
                    reference=Reference(y=shape[0] // 2, x=shape[1] // 2))
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=12 * k) for k in range(num_date)]
    years = np.array([(d - dates[0]).days for d in dates]) / 365.25
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    rate = (-0.05 * np.exp(-((yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2) / (0.1 * shape[0] * shape[1])))
    rate = rate.astype(np.float32)
    with TimeSeriesWriter(path, meta, [d.strftime("%Y%m%d") for d in dates]) as w:
        for block in plan_blocks(shape, 4 * num_date * 3, 0.5):
            r = rate[block.slices]
            data = years[:, None, None] * r[None] + rng.normal(0, 0.003, (num_date,) + block.shape)
            w.write("timeseries", (data - data[:1]).astype(np.float32), block)
    write_map(folder / "velocity.h5", meta.replace(unit="m/year"), "velocity", {"velocity": rate})
    write_map(folder / "maskTempCoh.h5", meta, "mask", {"mask": rng.random(shape) > 0.2}, unit="1")
    done.write_text(json.dumps([list(shape), num_date, seed]))
    return path


def run_export(args: list[str], out: Path) -> tuple[float, float, str]:
    """Wall time, peak RSS (MB, process tree) and the status of one ``sbts export``."""
    sbts = Path(sys.executable).with_name("sbts")
    start = time.perf_counter()
    log = out.with_suffix(".log")
    with open(log, "w") as f:
        proc = subprocess.Popen([str(sbts), "-q", "export", *args, "-o", str(out)], stdout=f, stderr=subprocess.STDOUT)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, _tree_rss_mb(proc.pid))
            time.sleep(0.05)
    wall = time.perf_counter() - start
    return wall, peak, "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see {log})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/sbts_bench_exports"))
    ap.add_argument("--size", type=int, nargs="+", default=[600, 600], help="N (N × N) or L W")
    ap.add_argument("--dates", type=int, default=30)
    ap.add_argument("--workers", default="1,2", help="numbers of workers, comma-separated")
    ap.add_argument("--cluster", default=None, help="local or a dask scheduler address: one more run of each export")
    ap.add_argument("--max-memory", type=float, default=1.0, help="GB")
    args = ap.parse_args()
    shape = (args.size[0], args.size[-1])
    folder = args.dir / f"{shape[0]}x{shape[1]}_{args.dates}"
    ts = make_series(folder, shape, args.dates)
    floor, cold = floor_read({ts: ["timeseries"]})
    print(f"\ngeocoded time series {shape[0]} x {shape[1]} px, {args.dates} dates "
          f"({ts.stat().st_size / 1e6:.0f} MB); floor: {'cold' if cold else 'warm'} read {floor:.2f} s\n")
    runs = [(int(w), None) for w in args.workers.split(",")] + ([(int(args.workers.split(",")[-1]), args.cluster)]
                                                               if args.cluster else [])
    print("| export | workers | wall (s) | peak RSS (MB) | × floor | same bytes as the first | status |")
    print("|---|---|---:|---:|---:|---|---|")
    for name, extra, suffix in (("kmz_timeseries", [], ".kmz"), ("geotiff", ["-O", "bands=all"], ".tif")):
        first = None
        for workers, cluster in runs:
            run_dir = folder / f"workers_{workers}{'_dask' if cluster else ''}"
            run_dir.mkdir(exist_ok=True)
            out = run_dir / f"{name}{suffix}"  # one name: the KMZ's title is the file's stem
            compute = ["--max-memory", f"{args.max_memory:g}", "--num-worker", str(workers)]
            compute += ["--cluster", cluster] if cluster else []
            wall, peak, status = run_export([name, str(ts), *extra, *compute], out)
            digest = hashlib.sha256(out.read_bytes()).hexdigest() if out.exists() else None
            first = first or digest
            label = f"{workers}{' (dask ' + cluster + ')' if cluster else ''}"
            print(f"| {name} | {label} | {wall:.2f} | {peak:.0f} | {wall / floor:.1f} | "
                  f"{'yes' if digest == first else 'NO'} | {status} |")


if __name__ == "__main__":
    main()
