"""Benchmark of the exact inversion update (issue 18): full inversion vs update after one new acquisition.

Generates (once, cached in --dir) a stack of 1000 × 1000 pixels (``--size``), 61 dates 12 days apart,
each date paired with the next 3 (``--neighbours``), ~5 % of the pixels missing some pairs, and the
same stack without its last date (the 60-date stack, 3 pairs fewer).  Then prints, for each
``--weight``:

- full:    ``invert_network`` of the 61-date stack from scratch (what a run recomputes without the store);
- store:   the inversion of the 60-date stack with ``update_store=True`` (the full run that prepares an
           update: inversion + store), and the size of ``inversionUpdate.h5`` per pixel;
- update:  ``invert_network`` of the 61-date stack updating from that store (the 60 → 61 update),
           and its ratio to `full`.

Times are wall seconds in this process (warm page cache; the update reads the pairs that end in its
window).  The outputs of update and full are compared (max |Δ| / max |ts|).

With ``--run`` it times whole ``sbts run`` instead (through ``--end velocity``, troposphere, geocode and
exports off), on a synthetic GeoTIFF processor stack of ``--run-size`` pixels and ``--dates`` dates: the one-date-shorter
run with the store, the run after the last acquisition's files appear (the update), and a fresh run
on all files; per-step times of both are printed, and the floor of any update that rewrites its
products: the time to copy the HDF5 files the update wrote (time series, residuals, quality maps, the
store), each read and written anew as a product is.

``--workers N`` runs both the full inversion and the update (or both whole runs) with N workers
(``mintpy.compute.numWorker``): the update's blocks run in the pool as the full inversion's do.

Usage: python bench/bench_update.py [--dir /tmp/sbts_bench_update] [--size 1000 1000] [--dates 61]
                                    [--weight no var] [--max-memory 2] [--workers 1]
                                    [--run [--run-size 300 300]]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np


def make_stacks(root: Path, shape: tuple[int, int], num_date: int = 61, neighbours: int = 3, seed: int = 0) -> None:
    """``root/old/inputs/ifgramStack.h5`` (dates 0..n−2) and ``root/new/inputs/ifgramStack.h5`` (all)."""
    from sbts.core.io.blocks import plan_blocks
    from sbts.core.io.products import StackWriter
    from sbts.core.model.metadata import Grid, Metadata, RadarInfo, Reference
    from sbts.core.model.pairs import Pairs

    done = root / "done.json"
    if done.exists() and json.loads(done.read_text()) == [list(shape), num_date, neighbours, seed]:
        return
    rng = np.random.default_rng(seed)
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=12 * k) for k in range(num_date)]
    i1, i2 = (np.array(v) for v in zip(*[(a, b) for a in range(num_date)
                                         for b in range(a + 1, min(num_date, a + 1 + neighbours))]))
    old = i2 < num_date - 1
    tyears = np.array([(d - dates[0]).days for d in dates]) / 365.25
    ry, rx = shape[0] // 2, shape[1] // 2
    writers = {}
    for name, sel in (("old", old), ("new", np.ones_like(old))):
        pairs = Pairs.from_indices(dates, i1[sel], i2[sel], np.zeros(int(sel.sum())))
        meta = Metadata(grid=Grid(*shape), radar=RadarInfo(wavelength=0.0555, alooks=2, rlooks=8),
                        reference=Reference(y=ry, x=rx), file_type="ifgramStack"
                        ).with_extra(SBTS_INPUT_SIGNATURE=name)
        (root / name / "inputs").mkdir(parents=True, exist_ok=True)
        writers[name] = (StackWriter(root / name / "inputs/ifgramStack.h5", meta, pairs,
                                     ["unwrapPhase", "coherence"]).__enter__(), sel)
    m = i1.size
    for block in plan_blocks(shape, m * 4 * 6, 0.5):
        h, wd = block.shape
        npix = h * wd
        vel = rng.normal(0, 3, npix)
        ts = np.outer(tyears, vel) + rng.normal(0, 0.3, (num_date, npix))
        phase = (ts[i2] - ts[i1]).astype(np.float32)
        coh = rng.uniform(0.25, 0.95, (m, npix)).astype(np.float32)
        phase += (rng.normal(0, 1, (m, npix)) * (1 - coh) * 0.5).astype(np.float32)
        missing = rng.random(npix) < 0.05
        phase[(rng.random((m, npix)) < 0.1) & missing[None, :]] = 0
        if block.row_start <= ry < block.row_stop:  # the reference pixel has data in every pair
            k = (ry - block.row_start) * wd + rx
            phase[:, k] = np.where(phase[:, k] == 0, 0.1, phase[:, k])
        for w, sel in writers.values():
            w.write("unwrapPhase", phase[sel].reshape(-1, h, wd), block)
            w.write("coherence", coh[sel].reshape(-1, h, wd), block)
    for w, _ in writers.values():
        w.__exit__(None, None, None)
    done.write_text(json.dumps([list(shape), num_date, neighbours, seed]))


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


RUN_OPTIONS = """
sbts.networkInversion.updateStore = {store}
mintpy.troposphericDelay.method = no
mintpy.geocode = no
mintpy.save.kmz = no
mintpy.plot = no
"""


def bench_run(root: Path, shape: tuple[int, int], workers: int = 1, num_date: int = 61) -> None:
    """Whole ``sbts run``: full run on ``num_date`` dates vs the update run after the last date's files appear.

    Each timed run starts after ``os.sync()``: the dirty pages the previous run left are written
    first, so that the kernel's writeback of one run's files does not share the CPUs with the next
    run (on 2 cores it moved either run by 10–30 %)."""
    from sbts.core.demo.synthetic import make_synthetic_stack
    from sbts.core.workflow.runner import run_workflow
    from sbts.tests.e2e.formats import geotiff

    shutil.rmtree(root, ignore_errors=True)
    synth = make_synthetic_stack(shape=shape, num_date=num_date, seed=1, num_neighbor=3)
    cfg = geotiff.write(root / "src", synth)
    text = cfg.read_text()
    cfg.write_text(text + RUN_OPTIONS.format(store="yes"))
    full_cfg = cfg.with_name("full.cfg")
    last = synth.date_list[-1]
    late = [p for p in (root / "src").rglob("*") if p.is_file() and last in p.name]
    held = root / "held"
    held.mkdir()
    for p in late:
        shutil.move(str(p), held / f"{p.parent.name}__{p.name}")
    os.sync()
    t_first = timed(run_workflow, cfg, work_dir=root / "upd", end="velocity", plot=False, num_worker=workers)
    # the DEM-error step leaves out the dates of exclude_date.txt, which the residual_RMS step of the
    # run before wrote (MintPy's excludeDate = auto): the update's DEM-error fit uses the list of the
    # shorter run, so the full run it is compared with starts from the same list
    excluded = root / "upd/exclude_date.txt"
    excluded_text = excluded.read_text() if excluded.exists() else None
    for p in late:
        shutil.move(str(held / f"{p.parent.name}__{p.name}"), p)
    os.sync()
    wall_start = time.time()
    start = time.perf_counter()
    upd = run_workflow(cfg, work_dir=root / "upd", end="velocity", plot=False, num_worker=workers)
    t_upd = time.perf_counter() - start
    t_rewrite, rewritten = rewrite_floor(root / "upd", wall_start)
    with h5py.File(root / "upd/inputs/ifgramStack.h5", "r") as f:
        ref = f.attrs["REF_Y"], f.attrs["REF_X"]
    full_cfg.write_text(text + RUN_OPTIONS.format(store="no") + f"mintpy.reference.yx = {ref[0]}, {ref[1]}\n")
    if excluded_text is not None:
        (root / "full").mkdir(parents=True, exist_ok=True)
        (root / "full/exclude_date.txt").write_text(excluded_text)
    os.sync()
    start = time.perf_counter()
    full = run_workflow(full_cfg, work_dir=root / "full", end="velocity", plot=False, num_worker=workers)
    t_full = time.perf_counter() - start
    print(f"sbts run, {shape[0]} x {shape[1]} px, {len(synth.date1_index)} pairs / {num_date} dates (GeoTIFF), "
          f"{workers} worker(s): {num_date - 1}-date run "
          f"with the store {t_first:.1f} s; update run {t_upd:.1f} s = {100 * t_upd / t_full:.0f} % of the full run "
          f"{t_full:.1f} s")
    print(f"  floor of any update that rewrites its products: copying the {len(rewritten)} HDF5 files the update "
          f"wrote ({sum(rewritten) / 1e6:.0f} MB, warm page cache) takes {t_rewrite:.1f} s = "
          f"{100 * t_rewrite / t_full:.0f} % of the full run")
    by_name = {r.name: r for r in full}
    for r in upd:
        f = by_name.get(r.name)
        print(f"  {r.name:<22s} update {r.status:<8s} {r.seconds:6.2f} s | full {f.seconds if f else 0:6.2f} s  {r.note}")
    if excluded_text is not None:
        print(f"  both DEM-error fits left out the date(s) of the shorter run's exclude_date.txt: "
              f"{', '.join(excluded_text.split())}")
    diffs = []
    for name, ds in [(p.name, "timeseries") for p in sorted((root / "full").glob("timeseries*.h5"))] + [
            ("velocity.h5", "velocity")]:
        with h5py.File(root / "upd" / name, "r") as a, h5py.File(root / "full" / name, "r") as b:
            ref_data = b[ds][()]
            diffs.append(f"{name} {np.nanmax(np.abs(a[ds][()] - ref_data)) / np.nanmax(np.abs(ref_data)):.1e}")
    print("  update vs full, max|diff| / max|full|: " + ", ".join(diffs))


def rewrite_floor(work: Path, since: float) -> tuple[float, list[int]]:
    """Seconds to copy (read and write anew, as a product is written under a temporary name) every
    HDF5 file of ``work`` modified after ``since``, and their sizes: what an update that changes
    those products costs at least, whatever it computes."""
    files = [p for p in sorted(work.glob("*.h5")) if p.stat().st_mtime >= since]
    start = time.perf_counter()
    for p in files:
        tmp = p.with_name(p.name + ".floor")
        with open(p, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 16 << 20)
    elapsed = time.perf_counter() - start
    for p in files:
        p.with_name(p.name + ".floor").unlink()
    return elapsed, [p.stat().st_size for p in files]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/sbts_bench_update"))
    ap.add_argument("--size", type=int, nargs=2, default=(1000, 1000))
    ap.add_argument("--weight", nargs="+", default=["no", "var"])
    ap.add_argument("--max-memory", type=float, default=2.0)
    ap.add_argument("--dates", type=int, default=61, help="dates of the whole stack (the old one has one fewer)")
    ap.add_argument("--run", action="store_true", help="time whole `sbts run` (see the module doc)")
    ap.add_argument("--run-size", type=int, nargs=2, default=(300, 300))
    ap.add_argument("--workers", type=int, default=1, help="mintpy.compute.numWorker of every inversion/run")
    args = ap.parse_args()
    from sbts.core.compute.heap import keep_freed_memory

    keep_freed_memory()  # as the sbts command does: freed block memory is reused, not faulted in anew
    if args.run:
        bench_run(args.dir / "run", tuple(args.run_size), args.workers, args.dates)
        return

    from sbts.core.inversion.engine import InversionOptions, invert_network
    from sbts.core.inversion.incremental import store_path

    root = args.dir
    t = timed(make_stacks, root, tuple(args.size), args.dates)
    print(f"stacks ready in {root} ({t:.1f} s): {args.size[0]} x {args.size[1]} px, "
          f"{args.dates - 1} -> {args.dates} dates; {args.workers} worker(s)")
    for weight in args.weight:
        opts = InversionOptions(weight_func=weight, min_temp_coh=0.0, min_num_pixel=0, water_mask_file=None)
        full_wd, upd_wd = root / f"full_{weight}", root / f"upd_{weight}"
        for wd in (full_wd, upd_wd):
            shutil.rmtree(wd, ignore_errors=True)
            (wd / "inputs").mkdir(parents=True)
        (full_wd / "inputs/ifgramStack.h5").symlink_to(root / "new/inputs/ifgramStack.h5")
        os.sync()  # every timed call starts with no dirty pages (see bench_run)
        t_full = timed(invert_network, full_wd / "inputs/ifgramStack.h5", full_wd, opts,
                       max_memory=args.max_memory, force=True, num_worker=args.workers)
        (upd_wd / "inputs/ifgramStack.h5").symlink_to(root / "old/inputs/ifgramStack.h5")
        os.sync()
        t_store = timed(invert_network, upd_wd / "inputs/ifgramStack.h5", upd_wd, opts,
                        max_memory=args.max_memory, update_store=True, num_worker=args.workers)
        size = store_path(upd_wd).stat().st_size / (args.size[0] * args.size[1])
        (upd_wd / "inputs/ifgramStack.h5").unlink()
        (upd_wd / "inputs/ifgramStack.h5").symlink_to(root / "new/inputs/ifgramStack.h5")
        (upd_wd / "inputs/ifgramStack_load.json").write_text(
            json.dumps({"signature": "new", "update": {"old_signature": "old"}}))
        os.sync()
        t_upd = timed(invert_network, upd_wd / "inputs/ifgramStack.h5", upd_wd, opts,
                      max_memory=args.max_memory, update_store=True, num_worker=args.workers)
        with h5py.File(full_wd / "timeseries.h5", "r") as a, h5py.File(upd_wd / "timeseries.h5", "r") as b:
            ref = a["timeseries"][()]
            diff = float(np.abs(b["timeseries"][()] - ref).max() / np.abs(ref).max())
        print(f"weight {weight:>3s}: full {t_full:7.2f} s | {args.dates - 1}-date inversion + store {t_store:7.2f} s "
              f"(store {size:.0f} B/px) | update {t_upd:7.2f} s = {100 * t_upd / t_full:5.1f} % of full | "
              f"max|diff|/max|ts| {diff:.1e}")


if __name__ == "__main__":
    main()
