"""Benchmark of ``sbts invert`` against the floor of reading its input.

Generates (once, cached in --dir) a stack of 1000 × 1000 pixels, 60 dates, ~230 interferograms with
~5 % of the pixels missing some interferograms; then prints, for weightFunc = no and var:

- the floor: the time h5py takes to read what the run needs (unwrapPhase; + coherence for var),
  with the page cache dropped first where the machine allows (root on Linux), else warm;
- wall time and peak RSS of `sbts invert` (a separate process), and the ratios to the floor.

Usage: python bench/bench_invert.py [--dir /tmp/sbts_bench] [--size 1000 1000] [--max-memory 1]
                                   [--num-worker N] [--repeat 3] [--scaling] [--cases no,var,var+robust]

--cases: weightFunc = no, var, and the issue-17 methods on var weights: var+robust (sbts.robust,
the screened least squares), var+L1 (residualNorm = L1); each printed with its ratio to var.

Each case is measured --repeat times, floor and run alternating, and medians are printed: on a
shared machine the disk speed (hence the floor) varies between runs by a factor of two.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np


def make_stack(path: Path, shape: tuple[int, int], num_date: int = 60, neighbours: int = 4, seed: int = 0) -> None:
    from sbts.core.io.blocks import plan_blocks
    from sbts.core.io.products import StackWriter
    from sbts.core.model.metadata import Grid, Metadata, RadarInfo, Reference
    from sbts.core.model.pairs import Pairs

    rng = np.random.default_rng(seed)
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=12 * k) for k in range(num_date)]
    i1, i2 = [], []
    for a in range(num_date):
        for b in range(a + 1, min(num_date, a + 1 + neighbours)):
            i1.append(a)
            i2.append(b)
    i1, i2 = np.array(i1), np.array(i2)
    bperp = rng.normal(0, 60, num_date)
    pairs = Pairs.from_indices(dates, i1, i2, bperp)
    m = len(pairs)
    meta = Metadata(grid=Grid(*shape), radar=RadarInfo(wavelength=0.0555, alooks=2, rlooks=8),
                    reference=Reference(y=shape[0] // 2, x=shape[1] // 2), file_type="ifgramStack")
    tyears = np.array([(d - dates[0]).days for d in dates]) / 365.25
    length, width = shape
    with StackWriter(path.with_suffix(".tmp.h5"), meta, pairs, ["unwrapPhase", "coherence"]) as w:
        for block in plan_blocks(shape, m * 4 * 6, 0.5):
            h, wd = block.shape
            npix = h * wd
            vel = rng.normal(0, 3, npix)  # rad/yr
            ts = np.outer(tyears, vel) + rng.normal(0, 0.3, (num_date, npix))
            phase = (ts[i2] - ts[i1]).astype(np.float32)
            coh = rng.uniform(0.25, 0.95, (m, npix)).astype(np.float32)
            phase += (rng.normal(0, 1, (m, npix)) * (1 - coh) * 0.5).astype(np.float32)
            missing_px = rng.random(npix) < 0.05
            holes = (rng.random((m, npix)) < 0.1) & missing_px[None, :]
            phase[holes] = 0
            w.write("unwrapPhase", phase.reshape(m, h, wd), block)
            w.write("coherence", coh.reshape(m, h, wd), block)
    ry, rx = length // 2, width // 2
    with h5py.File(path.with_suffix(".tmp.h5"), "r+") as f:  # reference pixel: valid everywhere
        f["unwrapPhase"][:, ry, rx] = np.where(f["unwrapPhase"][:, ry, rx] == 0, 0.1, f["unwrapPhase"][:, ry, rx])
    os.replace(path.with_suffix(".tmp.h5"), path)


def drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def floor_read(path: Path, datasets: list[str]) -> tuple[float, bool]:
    cold = drop_caches()
    start = time.perf_counter()
    with h5py.File(path, "r") as f:
        for name in datasets:
            ds = f[name]
            for k in range(0, ds.shape[1], 64):
                ds[:, k:k + 64, :]
    return time.perf_counter() - start, cold


def _tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants (pool workers included), MB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += float(line.split()[1]) / 1024
        except OSError:
            continue
    return total


CASES = {"no": ("no", []), "var": ("var", []), "var+robust": ("var", ["--robust"]),
         "var+L1": ("var", ["--residual-norm", "L1"])}


def run_invert(path: Path, work: Path, weight: str, max_memory: float, extra: list[str]) -> tuple[float, float]:
    """Wall time and peak RSS (summed over the process tree, sampled every 50 ms) of one run."""
    drop_caches()
    sbts = Path(sys.executable).with_name("sbts")
    cmd = [str(sbts), "-q", "invert", "-i", str(path), "-d", str(work), "-w", weight, "--max-memory",
           str(max_memory), "--force", "--min-temp-coh", "0", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"sbts invert failed with exit code {proc.returncode}")
    return wall, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/sbts_bench"))
    ap.add_argument("--size", type=int, nargs=2, default=(1000, 1000))
    ap.add_argument("--max-memory", type=float, default=1.0)
    ap.add_argument("--num-worker", type=int, default=None,
                    help="processes for sbts invert (default: sbts's own, mintpy.compute.numWorker = 2)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="(floor, run) measurements per case; medians are printed (disk speed varies)")
    ap.add_argument("--scaling", action="store_true",
                    help="also run a stack of half the rows and print the time per megapixel of both")
    ap.add_argument("--cases", default="no,var", help=f"comma-separated, of {', '.join(CASES)}")
    args = ap.parse_args()
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; use {', '.join(CASES)}")
    args.dir.mkdir(parents=True, exist_ok=True)
    sizes = [tuple(args.size)]
    if args.scaling:
        sizes.insert(0, (args.size[0] // 2, args.size[1]))
    rate: dict[str, list[float]] = {c: [] for c in cases}
    for size in sizes:
        stack = args.dir / f"ifgramStack_{size[0]}x{size[1]}.h5"
        if not stack.exists():
            t0 = time.perf_counter()
            make_stack(stack, size)
            print(f"generated {stack} in {time.perf_counter() - t0:.0f} s")
        with h5py.File(stack, "r") as f:
            m, length, width = f["unwrapPhase"].shape
        print(f"stack: {length} x {width} pixels, {m} interferograms, "
              f"{stack.stat().st_size / 1e9:.2f} GB on disk; --max-memory {args.max_memory} GB, "
              f"{args.num_worker or 'default (2)'} worker(s), {os.cpu_count()} cores")
        extra = [] if args.num_worker is None else ["--num-worker", str(args.num_worker)]
        medians: dict[str, float] = {}
        for case in cases:
            weight, options = CASES[case]
            datasets = ["unwrapPhase"] if weight == "no" else ["unwrapPhase", "coherence"]
            floors, walls, peaks = [], [], []
            for _ in range(max(1, args.repeat)):
                floor, cold = floor_read(stack, datasets)
                wall, peak = run_invert(stack, args.dir / f"work_{case.replace('+', '_')}", weight, args.max_memory,
                                        extra + options)
                floors.append(floor)
                walls.append(wall)
                peaks.append(peak)
            floor, wall = float(np.median(floors)), float(np.median(walls))
            ratios = np.array(walls) / np.array(floors)
            rate[case].append(wall / (length * width / 1e6))
            medians[case] = wall
            versus = f"   {wall / medians['var']:.2f}x var" if case != "var" and "var" in medians else ""
            print(f"{case:<10s}  floor ({'cold' if cold else 'warm'} read of {'+'.join(datasets)}): "
                  f"{floor:6.2f} s   sbts invert: {wall:6.2f} s = {wall / floor:4.1f}x floor   "
                  f"peak RSS {max(peaks):6.0f} MB (budget {args.max_memory * 1024:.0f} MB + 300){versus}")
            if len(walls) > 1:
                print(f"               medians of {len(walls)}; floor {min(floors):.2f}-{max(floors):.2f} s, "
                      f"invert {min(walls):.2f}-{max(walls):.2f} s, per-run ratio "
                      f"{ratios.min():.1f}-{ratios.max():.1f}x (median {np.median(ratios):.1f}x)")
    if args.scaling:
        for weight, values in rate.items():
            print(f"{weight:<10s}  seconds per megapixel: " + ", ".join(
                f"{v:.2f} ({s[0]}x{s[1]})" for v, s in zip(values, sizes)))


if __name__ == "__main__":
    main()
