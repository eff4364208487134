"""Latency of ``sbts serve`` on a large time series: map tiles and pixel histories over real HTTP.

    python bench/bench_serve.py                       # 4000 × 4000 × 300 (19 GB, sbts's chunk layout)
    python bench/bench_serve.py --size 1000 1000 60   # smaller
    python bench/bench_serve.py --layout mintpy       # h5py's automatic chunks, as MintPy writes them

Builds ``timeseries.h5`` (geocoded on lat/lon, float32), ``velocity.h5`` (intercept, velocity, annual
terms and their Std maps) and ``maskTempCoh.h5`` in a temporary folder (``--dir`` to choose; removed
unless ``--keep``), starts the viewer on a free localhost port and times, each as the median of
``--repeat`` requests:

* a zoomed-out tile of a date not seen before ("cold": reads that date's overview, every s-th row),
  then of the same date again ("warm", from the cache);
* zoomed-in tiles (windowed reads at strides 3 and 1);
* a pixel history with the fitted model, a difference of two pixels;
* the same history after asking the kernel to drop the file from the page cache (posix_fadvise
  DONTNEED; the kernel may keep pages that are mapped elsewhere).

Also prints the peak resident memory of the process: the cube is never loaded.  Not a test (timings
depend on the machine); the numbers go into the report of the change that touches the viewer.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import h5py
import numpy as np

STEP = 1 / 1200.0  # 3 arcsec
Y0, X0 = 20.0, -100.0


def build(folder: Path, length: int, width: int, num: int, layout: str) -> float:
    from sbts.core.io.h5 import default_chunks

    start = time.perf_counter()
    dates = [np.datetime64("2018-01-01") + np.timedelta64(12 * k, "D") for k in range(num)]
    date_text = [str(d).replace("-", "") for d in dates]
    years = np.array([(d - dates[0]).astype(int) for d in dates]) / 365.25
    attrs = {"FILE_TYPE": "timeseries", "UNIT": "m", "LENGTH": str(length), "WIDTH": str(width),
             "Y_FIRST": str(Y0), "X_FIRST": str(X0), "Y_STEP": str(-STEP), "X_STEP": str(STEP),
             "Y_UNIT": "degrees", "X_UNIT": "degrees", "EPSG": "4326", "REF_Y": str(length // 2),
             "REF_X": str(width // 2), "REF_DATE": date_text[0], "WAVELENGTH": "0.0555", "PROCESSOR": "bench"}
    yy, xx = np.ogrid[:length, :width]
    rate = (-0.2 * np.exp(-(((yy - 0.4 * length) / (0.15 * length)) ** 2 + ((xx - 0.6 * width) / (0.2 * width)) ** 2))
            ).astype(np.float32)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.005, (length, width)).astype(np.float32)
    shape = (num, length, width)
    chunks = default_chunks(shape, 4) if layout == "sbts" else True
    with h5py.File(folder / "timeseries.h5", "w") as f:
        f.attrs.update(attrs)
        f.create_dataset("date", data=np.array(date_text, dtype="S8"))
        f.create_dataset("bperp", data=np.zeros(num, np.float32))
        ds = f.create_dataset("timeseries", shape=shape, dtype=np.float32, chunks=chunks)
        for k in range(num):
            layer = rate * np.float32(years[k]) + np.roll(noise, 37 * k, axis=0)
            layer -= layer[length // 2, width // 2]
            ds[k] = layer
            if k % max(1, num // 10) == 0:
                print(f"  writing date {k + 1}/{num}", file=sys.stderr, flush=True)
        print(f"  chunks {ds.chunks}", file=sys.stderr)
    vattrs = dict(attrs, FILE_TYPE="velocity", UNIT="m/year", START_DATE=date_text[0], END_DATE=date_text[-1],
                  DATE12=f"{date_text[0]}_{date_text[-1]}")
    with h5py.File(folder / "velocity.h5", "w") as f:
        f.attrs.update(vattrs)
        maps = {"velocity": rate, "intercept": np.zeros_like(rate), "annualAmplitude": np.full_like(rate, 0.004),
                "annualPhase": np.full_like(rate, 0.5)}
        for name, data in maps.items():
            f.create_dataset(name, data=data, chunks=default_chunks(data.shape, 4))
            f.create_dataset(name + "Std", data=np.full_like(data, 0.001), chunks=default_chunks(data.shape, 4))
    with h5py.File(folder / "maskTempCoh.h5", "w") as f:
        f.attrs.update(dict(attrs, FILE_TYPE="mask", UNIT="1"))
        f.create_dataset("mask", data=np.ones((length, width), bool), chunks=default_chunks((length, width), 1))
    return time.perf_counter() - start


def _reusable(folder: Path, length: int, width: int, num: int, layout: str) -> bool:
    """--dir with the files of an earlier --keep run of the same size and layout: not rebuilt."""
    try:
        with h5py.File(folder / "timeseries.h5", "r") as f:
            ds = f["timeseries"]
            same = ds.shape == (num, length, width) and (ds.chunks[0] == 1) == (layout == "sbts")
        return same and (folder / "velocity.h5").is_file() and (folder / "maskTempCoh.h5").is_file()
    except (OSError, KeyError):
        return False


def tile_of(lat: float, lon: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = (lon + 180) / 360 * n
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n
    return int(x), int(y)


def timed(url: str) -> tuple[float, bytes]:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        body = r.read()
    return (time.perf_counter() - t) * 1000, body


def drop_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, nargs=3, default=(4000, 4000, 300), metavar=("ROWS", "COLS", "DATES"))
    ap.add_argument("--layout", choices=("sbts", "mintpy"), default="sbts")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    length, width, num = args.size
    folder = Path(args.dir or tempfile.mkdtemp(prefix="sbts_bench_serve_"))
    folder.mkdir(parents=True, exist_ok=True)

    from sbts.core.serve.app import start_in_thread
    from sbts.core.serve.state import ViewerState

    gb = length * width * num * 4 / 1e9
    build_s = 0.0
    if not _reusable(folder, length, width, num, args.layout):
        print(f"building {length} × {width} × {num} ({gb:.1f} GB, {args.layout} chunks) in {folder}", file=sys.stderr)
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(1) as pool:  # built in another process: the peak
            build_s = pool.apply(build, (folder, length, width, num, args.layout))  # memory below is the viewer's
    state = ViewerState(folder)
    srv, _ = start_in_thread(state)
    base = srv.url
    series = "timeseries.h5:timeseries"
    rows = []
    try:
        def report(what: str, values: list[float]) -> None:
            rows.append((what, statistics.median(values), min(values), max(values), len(values)))

        t, _ = timed(base + "api/info")
        report("catalogue (/api/info)", [t])
        t, body = timed(base + f"api/layer?layer={series}")
        report("layer colours (cold: overview of 1 date)", [t])
        lat_c = Y0 - 0.45 * length * STEP
        lon_c = X0 + 0.55 * width * STEP
        z_out = max(0, int(math.floor(math.log2(360 / (width * STEP)))))  # one tile ≈ the whole map
        cold, warm = [], []
        gap = max(1, min(10, (num - 1) // max(1, args.repeat)))  # beyond the prefetched neighbours
        for k in range(1, num, gap)[: args.repeat]:
            time.sleep(1.5)  # the previous date's prefetches done: a cold read alone
            tx, ty = tile_of(lat_c, lon_c, z_out)
            url = base + f"api/tile/{z_out}/{tx}/{ty}.png?layer={series}&index={k}"
            cold.append(timed(url)[0])
            warm.append(timed(url + "&cmap=jet")[0])
        report(f"tile z{z_out}, new date (cold: overview read)", cold)
        report(f"tile z{z_out}, same date (warm)", warm)
        slider = []
        k0 = min(num - 1, args.repeat * gap + 20)
        for k in range(k0, min(num, k0 + args.repeat)):  # a user stepping the date slider
            tx, ty = tile_of(lat_c, lon_c, z_out)
            slider.append(timed(base + f"api/tile/{z_out}/{tx}/{ty}.png?layer={series}&index={k}")[0])
            time.sleep(1.0)
        report(f"tile z{z_out}, next date 1 s later (prefetched)", slider[1:] or slider)
        time.sleep(3)
        for dz, name in ((3, "stride-3 window"), (5, "stride-1 window")):
            z = z_out + dz
            times = []
            for k in range(args.repeat):
                tx, ty = tile_of(lat_c - k * 0.01, lon_c + k * 0.013, z)
                times.append(timed(base + f"api/tile/{z}/{tx}/{ty}.png?layer={series}&index={num // 2}")[0])
            report(f"tile z{z} ({name})", times)
        time.sleep(3)  # prefetches triggered by those tiles done
        rng = np.random.default_rng(1)
        pix = [(int(rng.integers(length)), int(rng.integers(width))) for _ in range(args.repeat)]
        times = [timed(base + f"api/history?series={series}&yx={y},{x}")[0] for y, x in pix]
        report(f"pixel history + model ({num} dates)", times)
        times = [timed(base + f"api/history?series={series}&yx={y},{x}&ref={x % length},{y % width}")[0] for y, x in pix]
        report("history A − B", times)
        times = []
        for y, x in pix:
            drop_page_cache(folder / "timeseries.h5")
            times.append(timed(base + f"api/history?series={series}&yx={(y * 7) % length},{(x * 3) % width}")[0])
        report("history after page-cache drop", times)
        check = json.loads(timed(base + f"api/history?series={series}&yx={pix[0][0]},{pix[0][1]}")[1])
        with h5py.File(folder / "timeseries.h5", "r") as f:
            want = f["timeseries"][:, pix[0][0], pix[0][1]].astype(np.float64) * 100
        assert np.array_equal(np.array(check["values"], np.float64), want), "history differs from the file"
    finally:
        srv.shutdown()
        srv.server_close()
        state.close()
        if not args.keep and args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"sbts serve bench: {length} × {width} × {num} float32 ({gb:.1f} GB), {args.layout} chunks; "
          + (f"built in {build_s:.0f} s" if build_s else "reused"))
    print(f"{'request':46s} {'median ms':>10s} {'min':>8s} {'max':>8s} {'n':>3s}")
    for what, med, lo, hi, n in rows:
        print(f"{what:46s} {med:10.1f} {lo:8.1f} {hi:8.1f} {n:3d}")
    print(f"peak resident memory of the process: {peak:.0f} MiB (the cube: {gb * 1000:.0f} MB)")
    print(f"store reads: {state.store.stats}")


if __name__ == "__main__":
    main()
