"""Benchmark of the whole ``sbts run`` chain, step by step, against the floor of reading its inputs.

Generates (once, cached in --dir) a radar-coded stack of L × W pixels, 60 dates and ~230
interferograms (each date paired with its 4 next ones) with coherence and a geometry file (height,
incidence, slant range, latitude/longitude), writes a template that turns on the usual chain
(coherence-based network, phase-closure unwrapping-error correction, ``var`` weights,
height-correlation troposphere, deramp, DEM error, residual RMS, reference date, velocity, geocode,
KMZ, HDF-EOS5), then runs every step of ``sbts run`` as its own process (``--dostep``, in order, one
work directory) and prints per step:

- wall time;
- peak RSS and peak PSS of the step's process and all its descendants (pool workers, dask), sampled
  every 50 ms: summed RSS counts the pages a forked worker shares with its parent once per process,
  PSS shares them out, so its sum is what the tree takes from the machine;
- bytes read from the disk (``ru_inblock`` of the finished processes: page-cache hits are not
  counted, so a step that reads what the previous one wrote may show little);

then the totals and the ratio of the total time to the floor: a cold read (page cache dropped, when
the machine lets this process do it) of every input the run needs (unwrapPhase, coherence and the
geometry layers).  Each step being a process of its own adds its start-up (~1 s: Python, numpy,
h5py) to its time; the total includes them.

``--whole`` instead runs the chain as users do, one ``sbts run`` process, and attributes to each step
(by the ``step X: running`` / ``done`` lines of its log) the wall time, the peak RSS and PSS of the process
tree sampled while the step ran, and the bytes it read from the disk (``read_bytes`` of
``/proc/PID/io``, which includes the pool workers once they have exited); the total is the wall time
of the whole process, start-up included.

Usage: python bench/bench_workflow.py [--dir /tmp/sbts_bench_wf] [--size 1000] [--max-memory 4]
                                      [--workers 1] [--cluster local] [--whole] [--repeat 3]

``--size N`` is an N × N stack (``--size L W`` for another shape); ``--workers 1,2,4`` repeats the
run with each number of workers (mintpy.compute.numWorker) and prints one table per run;
``--cluster local`` (or a scheduler address) adds a run of the last number of workers on dask.
``--repeat N`` runs each configuration N times (page cache dropped before each) and prints each
step's median time with its range: on a shared 2-core VM one run's steps swing by ±15 %.
With several runs, every dataset of every HDF5 product is compared with the first run's: the runs
with the same blocks (the pool and dask with the same workers) must be identical; another number of
workers splits the budget into other blocks, which may move the last bits of least-squares results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

CHAIN = """\
# sbts bench_workflow: the usual chain
mintpy.load.processor              = mintpy
mintpy.load.unwFile                = {stack}
mintpy.load.demFile                = {geometry}
mintpy.network.coherenceBased      = yes
mintpy.network.minCoherence        = 0.3
mintpy.unwrapError.method          = phase_closure
mintpy.networkInversion.weightFunc = var
mintpy.networkInversion.minTempCoh = 0.5
mintpy.troposphericDelay.method    = height_correlation
mintpy.deramp                      = linear
mintpy.topographicResidual         = yes
mintpy.residualRMS.cutoff          = 3
mintpy.timeFunc.polynomial         = 1
mintpy.geocode                     = yes
mintpy.save.kmz                    = yes
mintpy.save.hdfEos5                = yes
mintpy.plot                        = no   # the pictures are not part of the timed chain (MintPy's times: plot no)
mintpy.compute.maxMemory           = {max_memory}
mintpy.compute.numWorker           = {workers}
"""

ATTRS = {"WAVELENGTH": "0.05546576", "ALOOKS": "2", "RLOOKS": "8", "NCORRLOOKS": "8", "PLATFORM": "Sen",
         "ORBIT_DIRECTION": "ASCENDING", "HEADING": "-12.7", "RANGE_PIXEL_SIZE": "18.636496",
         "AZIMUTH_PIXEL_SIZE": "28.0", "STARTING_RANGE": "843947.962", "EARTH_RADIUS": "6375788.195",
         "HEIGHT": "693000.0", "CENTER_LINE_UTC": "2160.0", "ANTENNA_SIDE": "-1", "POLARIZATION": "VV",
         "PROCESSOR": "isce", "relative_orbit": "99", "first_frame": "1", "last_frame": "1"}


def make_inputs(folder: Path, shape: tuple[int, int], num_date: int = 60, neighbours: int = 4, seed: int = 0) -> None:
    """ifgramStack.h5 and geometryRadar.h5 in ``folder``, written block by block (any size fits in memory)."""
    from sbts.core.io.blocks import plan_blocks
    from sbts.core.io.products import StackWriter, write_map
    from sbts.core.model.metadata import Metadata
    from sbts.core.model.pairs import Pairs

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    length, width = shape
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=12 * k) for k in range(num_date)]
    i1 = np.array([a for a in range(num_date) for b in range(a + 1, min(num_date, a + 1 + neighbours))])
    i2 = np.array([b for a in range(num_date) for b in range(a + 1, min(num_date, a + 1 + neighbours))])
    bperp = rng.normal(0, 60, num_date)
    bperp -= bperp[0]
    pairs = Pairs.from_indices(dates, i1, i2, bperp)
    m = len(pairs)
    meta = Metadata.from_attrs({**ATTRS, "LENGTH": str(length), "WIDTH": str(width), "FILE_TYPE": "ifgramStack"})
    tyears = np.array([(d - dates[0]).days for d in dates]) / 365.25
    wavelength = float(ATTRS["WAVELENGTH"])
    to_rad = -4 * np.pi / wavelength
    rows = np.arange(length, dtype=np.float64)
    cols = np.arange(width, dtype=np.float64)
    # geometry: smooth terrain, range and incidence growing across the swath, a tilted lat/lon grid
    yy, xx = np.meshgrid(rows, cols, indexing="ij")
    height = (400 + 300 * np.sin(yy / max(length, 1) * 3) * np.cos(xx / max(width, 1) * 2)).astype(np.float32)
    geometry = {
        "height": height,
        "incidenceAngle": (30.0 + 15.0 * xx / max(width - 1, 1)).astype(np.float32),
        "slantRangeDistance": (843947.962 + 18.636496 * xx).astype(np.float32),
        "azimuthAngle": np.full(shape, -102.7, np.float32),
        "latitude": (19.40 - 0.00025 * yy + 0.00004 * xx).astype(np.float32),
        "longitude": (-99.20 + 0.0002 * xx + 0.00005 * yy).astype(np.float32),
    }
    del yy, xx
    write_map(folder / "geometryRadar.h5", meta.replace(file_type="geometry"), "geometry", geometry, unit=None)
    tmp = folder / "ifgramStack.tmp.h5"
    with StackWriter(tmp, meta, pairs, ["unwrapPhase", "coherence"]) as w:
        for block in plan_blocks(shape, m * 4 * 8, 0.5):
            h, wd = block.shape
            npix = h * wd
            vel = rng.normal(0, 0.01, npix)  # m/yr
            dz = rng.normal(0, 10, npix)  # DEM error, m
            hgt = height[block.slices].reshape(-1).astype(np.float64)
            tropo = np.outer(rng.normal(0, 2e-5, num_date), hgt - 400)  # stratified delay, m
            r = geometry["slantRangeDistance"][block.slices].reshape(-1)
            inc = np.deg2rad(geometry["incidenceAngle"][block.slices].reshape(-1))
            demerr = np.outer(bperp, dz / (r * np.sin(inc)))
            ramp = np.outer(rng.normal(0, 1e-6, num_date), np.repeat(cols[block.cols][None], h, 0).reshape(-1))
            ts = (np.outer(tyears, vel) + tropo + demerr + ramp + rng.normal(0, 0.002, (num_date, npix))) * to_rad
            phase = (ts[i2] - ts[i1]).astype(np.float32)
            coh = rng.uniform(0.25, 0.95, (m, npix)).astype(np.float32)
            phase += (rng.normal(0, 1, (m, npix)) * (1 - coh) * 0.5).astype(np.float32)
            w.write("unwrapPhase", phase.reshape(m, h, wd), block)
            w.write("coherence", coh.reshape(m, h, wd), block)
    os.replace(tmp, folder / "ifgramStack.h5")


def drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def floor_read(files: dict[Path, list[str]]) -> tuple[float, bool]:
    """Seconds to read the named datasets of every input file (cold when the cache could be dropped)."""
    cold = drop_caches()
    start = time.perf_counter()
    for path, names in files.items():
        with h5py.File(path, "r") as f:
            for name in names:
                ds = f[name]
                out = np.empty(ds.shape[-2:], ds.dtype) if ds.ndim == 3 else None
                if ds.ndim == 3:
                    for k in range(ds.shape[0]):
                        ds.read_direct(out, np.s_[k])
                else:
                    ds[()]
    return time.perf_counter() - start, cold


def _tree_memory_mb(root: int) -> tuple[float, float]:
    """(RSS, PSS) of a process and all its descendants, MB.

    RSS summed over processes counts a page shared by several of them once in each: the pages a
    forked pool worker still shares with its parent (copy-on-write), the mapped libraries.  PSS
    (``/proc/PID/smaps_rollup``) charges a shared page to its sharers in equal parts, so its sum is
    the memory the tree takes from the machine."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    rss, pss, todo = 0.0, 0.0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += float(line.split()[1]) / 1024
                    elif line.startswith("Pss:"):
                        pss += float(line.split()[1]) / 1024
        except OSError:
            continue
    return rss, pss


def run_step(template: Path, work: Path, step: str, extra: list[str]) -> tuple[float, float, float, float, str]:
    """Wall time, peak RSS and PSS (MB, process tree), bytes read from disk and the status of one step."""
    sbts = Path(sys.executable).with_name("sbts")
    cmd = [str(sbts), "-q", "run", str(template), "-d", str(work), "--dostep", step, *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_inblock
    start = time.perf_counter()
    log = work / f"bench_{step}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        peak, peak_pss = 0.0, 0.0
        while proc.poll() is None:
            rss, pss = _tree_memory_mb(proc.pid)
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            time.sleep(0.05)
    wall = time.perf_counter() - start
    read = (resource.getrusage(resource.RUSAGE_CHILDREN).ru_inblock - before) * 512.0
    status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see {log})"
    return wall, peak, peak_pss, read, status


def _read_bytes(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("read_bytes:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def run_whole(template: Path, work: Path, extra: list[str]
              ) -> tuple[list[tuple[str, float, float, float, float]], float, str]:
    """One ``sbts run`` process: per step (name, wall, peak RSS MB, peak PSS MB, bytes read), total wall and status.

    The log is followed while the process runs; a sample of the process tree belongs to the step whose
    ``running`` line was seen last (50 ms granularity).
    """
    sbts = Path(sys.executable).with_name("sbts")
    cmd = [str(sbts), "run", str(template), "-d", str(work), *extra]
    log = work / "bench_run.log"
    rows: dict[str, list[float]] = {}  # step -> [start, end, peak RSS, read at start, read at end, peak PSS]
    current: str | None = None
    start = time.perf_counter()
    with open(log, "w") as out, open(log) as follow:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        pending = ""
        last_read = 0.0
        while True:
            alive = proc.poll() is None
            now = time.perf_counter()
            rss, pss = _tree_memory_mb(proc.pid) if alive else (0.0, 0.0)
            read = _read_bytes(proc.pid) if alive else last_read
            last_read = read
            pending += follow.read()
            *lines, pending = pending.split("\n")
            for line in lines:
                if ": running (" in line and " step " in f" {line}":
                    current = line.split("step ", 1)[1].split(":", 1)[0]
                    rows[current] = [now, now, 0.0, read, read, 0.0]
                elif ": done in " in line and current is not None:
                    rows[current][1] = now
                    rows[current][4] = read
            if current is not None:
                rows[current][2] = max(rows[current][2], rss)
                rows[current][5] = max(rows[current][5], pss)
                if rows[current][1] == rows[current][0]:
                    rows[current][4] = read
            if not alive:
                break
            time.sleep(0.05)
    wall = time.perf_counter() - start
    for row in rows.values():
        if row[1] == row[0]:  # a step that did not print its end
            row[1] = start + wall
    status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see {log})"
    return [(name, r[1] - r[0], r[2], r[5], r[4] - r[3]) for name, r in rows.items()], wall, status


def step_names(template: Path) -> list[str]:
    from sbts.core.config.compute import ComputeOptions
    from sbts.core.config.template import Template
    from sbts.core.workflow.plan import RunContext, select

    ctx = RunContext(Template.read(template), template.parent, template.parent, ComputeOptions())
    return [s.name for s in select(ctx.steps, None, None, None)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/sbts_bench_wf"))
    ap.add_argument("--size", type=int, nargs="+", default=[1000], help="N (N × N) or L W")
    ap.add_argument("--dates", type=int, default=60)
    ap.add_argument("--max-memory", type=float, default=4.0, help="GB (mintpy.compute.maxMemory)")
    ap.add_argument("--workers", default="1", help="mintpy.compute.numWorker; a list (1,2,4) runs once per value")
    ap.add_argument("--cluster", default=None, help="local or a dask scheduler address (--cluster of sbts run)")
    ap.add_argument("--whole", action="store_true", help="one sbts run process (as users run it), not one per step")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each configuration; the table gives each step's median and range")
    args = ap.parse_args()
    shape = (args.size[0], args.size[-1])
    inputs = args.dir / f"inputs_{shape[0]}x{shape[1]}_{args.dates}"
    if not (inputs / "ifgramStack.h5").exists():
        t0 = time.perf_counter()
        make_inputs(inputs, shape, args.dates)
        print(f"generated {inputs} in {time.perf_counter() - t0:.0f} s")
    stack, geometry = inputs / "ifgramStack.h5", inputs / "geometryRadar.h5"
    with h5py.File(stack, "r") as f:
        m = f["unwrapPhase"].shape[0]
    size_gb = (stack.stat().st_size + geometry.stat().st_size) / 1e9
    works: list[Path] = []
    counts = [int(w) for w in str(args.workers).split(",")]
    # one run per number of workers in this machine's pool, then (--cluster) the last on dask
    runs: list[tuple[int, str | None]] = [(w, None) for w in counts] + ([(counts[-1], args.cluster)] if args.cluster
                                                                      else [])
    for workers, cluster in runs:
        work = args.dir / f"work_{shape[0]}x{shape[1]}_{workers}{'_dask' if cluster else ''}"
        extra = ["--cluster", cluster] if cluster else []
        floor, cold = floor_read({stack: ["unwrapPhase", "coherence"],
                                  geometry: ["height", "incidenceAngle", "slantRangeDistance", "latitude",
                                             "longitude"]})
        print(f"\nstack {shape[0]} x {shape[1]} px, {args.dates} dates, {m} pairs, {size_gb:.2f} GB of inputs; "
              f"--max-memory {args.max_memory:g} GB, {workers} worker(s){', cluster ' + cluster if cluster else ''}"
              f", {os.cpu_count()} cores")
        print(f"floor: {'cold' if cold else 'warm (page cache not dropped)'} read of the inputs {floor:.2f} s")
        reps = [_one_run(args, work, stack, geometry, workers, extra) for _ in range(args.repeat)]
        if args.repeat > 1:
            print(f"\n{args.repeat} runs: median wall time per step (fastest–slowest), largest peak RSS and PSS, "
                  "median bytes read")
        print("\n| step | wall (s) | peak RSS (MB) | peak PSS (MB) | read (MB) | status |\n|---|---:|---:|---:|---:|---|")
        for step in reps[0][0]:
            walls = [r[0][step][0] for r in reps]
            peak = max(r[0][step][1] for r in reps)
            peak_pss = max(r[0][step][2] for r in reps)
            read = float(np.median([r[0][step][3] for r in reps]))
            status = "; ".join(sorted({r[0][step][4] for r in reps} - {""}))
            print(f"| {step} | {_spread(walls)} | {peak:.0f} | {peak_pss:.0f} | {read / 1e6:.0f} | {status} |")
        totals = [r[1] for r in reps]
        total = float(np.median(totals))
        peak_all = max(max(v[1] for v in r[0].values()) for r in reps)
        pss_all = max(max(v[2] for v in r[0].values()) for r in reps)
        read_all = float(np.median([sum(v[3] for v in r[0].values()) for r in reps]))
        print(f"| **total** | **{_spread(totals)}** | **{peak_all:.0f}** | **{pss_all:.0f}** | **{read_all / 1e6:.0f}** | "
              f"{total / floor:.1f}× the floor; budget {args.max_memory * 1024:.0f} MB + 300 |")
        works.append(work)
    if len(works) > 1:
        compare(works)


def _spread(values: list[float]) -> str:
    """The median of ``values`` and, with more than one, their range: this VM's runs differ by ±15 %."""
    med = f"{float(np.median(values)):.1f}"
    return med if len(values) == 1 else f"{med} ({min(values):.1f}–{max(values):.1f})"


def _one_run(args, work: Path, stack: Path, geometry: Path, workers: int, extra: list[str]
             ) -> tuple[dict[str, tuple[float, float, float, float, str]], float]:
    """One run of the chain in a fresh ``work``, page cache dropped first: ({step: (wall, peak RSS MB,
    peak PSS MB, bytes read, status)} in the order of the run, total wall time)."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    template = work / "bench.cfg"
    template.write_text(CHAIN.format(stack=stack, geometry=geometry, max_memory=args.max_memory,
                                     workers=workers))
    drop_caches()
    steps: dict[str, tuple[float, float, float, float, str]] = {}
    if args.whole:
        rows, total, status = run_whole(template, work, extra)
        for step, wall, peak, peak_pss, read in rows:
            steps[step] = (wall, peak, peak_pss, read, "")
        steps["(start-up, plan, summary)"] = (total - sum(r[1] for r in rows), 0.0, 0.0, 0.0, status)
        return steps, total
    total = 0.0
    for step in step_names(template):
        wall, peak, peak_pss, read, status = run_step(template, work, step, extra)
        total += wall
        steps[step] = (wall, peak, peak_pss, read, status)
    return steps, total


def _datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def compare(works: list[Path]) -> None:
    """Largest difference of every dataset of every HDF5 product between the first run and the others."""
    first = works[0]
    for other in works[1:]:
        worst, files, same = 0.0, 0, 0
        for path in sorted(first.rglob("*.h5")):
            twin = other / path.relative_to(first)
            if not twin.exists():
                print(f"{twin}: missing")
                continue
            files += 1
            identical = True
            with h5py.File(path, "r") as a, h5py.File(twin, "r") as b:
                for name in _datasets(a):
                    x, y = a[name][()], b[name][()] if name in b else None
                    if y is None or x.shape != y.shape:
                        print(f"{twin}:{name}: missing or another shape")
                        identical = False
                        continue
                    if x.dtype.kind in "fc":
                        diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
                        both_nan = np.isnan(x) & np.isnan(y)
                        diff[both_nan] = 0
                        if np.isnan(diff).any() or diff.max(initial=0) > 0:
                            identical = False
                            worst = max(worst, float(np.nanmax(diff)) if not np.isnan(diff).all() else np.inf)
                    elif not np.array_equal(x, y):
                        identical = False
                        worst = np.inf
            same += identical
        print(f"{other.name} vs {first.name}: {same} of {files} HDF5 products identical in every value; "
              f"largest difference {worst:.3g}")


if __name__ == "__main__":
    main()
