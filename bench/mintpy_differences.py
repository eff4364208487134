"""Measure the deliberate numerical differences between sbts and MintPy 1.6.4 (docs/mintpy-differences.md).

Each difference is isolated: sbts is run twice on the same synthetic stack (sbts.core.demo.synthetic,
120 × 150 pixels, 30 dates over 2 years, seed 0), once as it is and once with the one MintPy
convention in question emulated from its formula; the printed numbers are the differences of the
outputs over the reliable pixels (maskTempCoh).  With --oracle PATH (a MintPy 1.6.4 virtual
environment, e.g. .venv-mintpy) MintPy itself also runs: its inversion on the same stack (the whole
difference of the two inversions) and its bridging.

1. ``var`` weights.  MintPy converts coherence to a phase variance through a table of 200
   coherence bins (step 0.005, bin centres 0.0025 … 0.9975, looked up by truncation), each bin's
   variance integrated with a 200-sample rectangle rule over [−π, π]; sbts integrates exactly
   (Gauss–Legendre) and interpolates finely.  Emulated here by swapping the weight function.
2. Time axis.  MintPy's time is the decimal year, year + (day of year − 1)/365.25, in which
   31 Dec → 1 Jan spans 1.25 days after a common year and 0.25 after a leap year; sbts uses days
   since the first date / 365.25.
   Emulated by fitting the same design with MintPy's axis.
3. Bridging phase at a bridge end.  MintPy takes the plain median phase of the window; sbts removes
   the window's phase gradient first.  Measured with the oracle (islands left wrong by each tool).

Usage: python bench/mintpy_differences.py [--dir /tmp/sbts_mintpy_diff] [--oracle .venv-mintpy] [--seeds 6]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np


def _stack(folder: Path, shape=(120, 150), num_date=30, seed=0):
    from sbts.core.demo.run import write_synthetic_files
    from sbts.core.demo.synthetic import make_synthetic_stack
    from sbts.core.steps.reference import set_reference

    s = make_synthetic_stack(shape=shape, num_date=num_date, seed=seed)
    write_synthetic_files(folder, s)
    set_reference(folder / "ifgramStack.h5", *s.truth.reference_yx)
    return s


# ----------------------------------------------------------------------------- 1. var weights
def mintpy_var_weight(coherence: np.ndarray, looks: int) -> np.ndarray:
    """MintPy's ``var`` weight from its formula: 200-bin table, 200-sample rectangle rule, truncation."""
    from sbts.core.inversion.weights import phase_pdf_ds

    step = 0.005
    centres = np.linspace(step, 1.0, int(1 / step)) - step / 2
    phi = np.linspace(-np.pi, np.pi, centres.size)[:, None]
    L = min(max(int(looks), 1), 80)
    var = (phi ** 2 * phase_pdf_ds(phi, centres[None, :], L)).sum(axis=0) * (2 * np.pi / centres.size)
    coh = np.nan_to_num(np.asarray(coherence, np.float64), nan=0.05)
    coh = np.clip(np.maximum(coh, 0.05), centres[0], centres[-1])
    index = ((coh - centres[0]) / step).astype(np.int16)
    return (1.0 / var[index]).astype(np.float32)


def measure_weights(work: Path, oracle: Path | None) -> None:
    from sbts.core.inversion import weights
    from sbts.core.inversion.engine import InversionOptions, invert_network

    s = _stack(work / "stack")
    ts = {}
    original = weights.coherence_to_weight_fast
    for label in ("sbts", "mintpy_table"):
        out = work / label
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(work / "stack" / "ifgramStack.h5", out / "ifgramStack.h5")
        if label == "mintpy_table":
            weights.coherence_to_weight_fast = lambda coh, method, looks: mintpy_var_weight(coh, looks)
        try:
            invert_network(out / "ifgramStack.h5", out, InversionOptions(weight_func="var", obs_dataset="unwrapPhase"),
                           max_memory=0.5, num_worker=1, force=True)
        finally:
            weights.coherence_to_weight_fast = original
        with h5py.File(out / "timeseries.h5") as f:
            ts[label] = f["timeseries"][()].astype(np.float64)
        with h5py.File(out / "maskTempCoh.h5") as f:
            mask = f["mask"][()].astype(bool)
    d = np.abs(ts["sbts"] - ts["mintpy_table"])[:, mask] * 1000
    coh = np.linspace(0.05, 0.99, 2000)
    w1 = weights.coherence_to_weight(coh, "var", 8)
    w2 = mintpy_var_weight(coh, 8)
    rel = np.abs(w2 / w1 - 1)
    print("1. var weights, exact (sbts) vs MintPy's 200-bin table")
    print(f"   weight ratio over coherence 0.05..0.99 (L = 8): median {np.median(rel) * 100:.2f} %, "
          f"max {rel.max() * 100:.1f} %")
    print(f"   time series over {int(mask.sum())} reliable pixels × {d.shape[0]} dates: "
          f"median {np.median(d):.3f} mm, 99th percentile {np.percentile(d, 99):.3f} mm, max {d.max():.3f} mm")
    if oracle is not None:  # the whole difference: MintPy's own ifgram_inversion.py on the same stack
        out = work / "mintpy"
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(work / "stack" / "ifgramStack.h5", out / "ifgramStack.h5")
        _oracle(oracle, "ifgram_inversion.py", "ifgramStack.h5", "-w", "var", "-m", "no", "--num-worker", "1",
                "-o", "timeseries.h5", "temporalCoherence.h5", "numInvIfgram.h5", cwd=out)
        with h5py.File(out / "timeseries.h5") as f:
            mp = f["timeseries"][()].astype(np.float64)
        for label in ("sbts", "mintpy_table"):
            d = np.abs(ts[label] - mp)[:, mask] * 1000
            print(f"   MintPy ifgram_inversion.py vs sbts{' with the emulated table' if label != 'sbts' else ''}: "
                  f"median {np.median(d):.3f} mm, 99th percentile {np.percentile(d, 99):.3f} mm, max {d.max():.3f} mm")
    del s


def _oracle(oracle: Path, tool: str, *args, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    subprocess.run([str(oracle / "bin" / "python"), str(oracle / "bin" / tool), *args], cwd=cwd, check=True,
                   capture_output=True, env={**env, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"})


# ----------------------------------------------------------------------------- 2. time axis
def decimal_years(dates) -> np.ndarray:
    """MintPy's time axis: year + (day of year − 1)/365.25."""
    return np.array([d.year + (d.timetuple().tm_yday - 1) / 365.25 for d in dates])


def _fit(G: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(G, y, rcond=None)[0]


def measure_time_axis(work: Path) -> None:
    from sbts.core.demo.synthetic import make_synthetic_stack
    from sbts.core.model.timefunc import TimeFunctionModel

    s = make_synthetic_stack(shape=(60, 75), num_date=30, seed=0)
    dates = list(s.dates)
    y = s.truth.deformation.reshape(len(dates), -1).astype(np.float64)
    print("2. time axis: days/365.25 (sbts) vs decimal years (MintPy), truth deformation of the synthetic stack")
    for periods in ((), (1.0,), (1.0, 0.5)):
        model = TimeFunctionModel(polynomial=1, periods=periods)
        G = model.design_matrix(dates)
        t = decimal_years(dates)
        t = t - t[0]
        Gm = G.copy()
        Gm[:, 1] = t
        for j, p in enumerate(periods):
            Gm[:, 2 + 2 * j] = np.cos(2 * np.pi * t / p)
            Gm[:, 3 + 2 * j] = np.sin(2 * np.pi * t / p)
        a, b = _fit(G, y), _fit(Gm, y)
        v = np.abs(b[1]) > 1e-3  # pixels moving more than 1 mm/yr
        rel = np.abs(a[1] - b[1])[v] / np.abs(b[1])[v]
        line = (f"   polynomial 1{' + periods ' + ','.join(map(str, periods)) if periods else ''}: velocity "
                f"median {np.median(rel) * 100:.3f} %, max {rel.max() * 100:.3f} % "
                f"(max {np.abs(a[1] - b[1]).max() * 1000:.3f} mm/yr)")
        if periods:
            za = np.hypot(a[2], a[3]) * np.exp(1j * np.arctan2(a[2], a[3]))
            zb = np.hypot(b[2], b[3]) * np.exp(1j * np.arctan2(b[2], b[3]))
            dphi = np.abs(np.angle(za / zb))
            line += (f"; annual amplitude max {np.abs(np.abs(za) - np.abs(zb)).max() * 1000:.3f} mm, "
                     f"phase median {np.median(dphi):.4f} rad, max {dphi.max():.4f} rad")
        print(line)
    one_year = [dt.date(2019, 1, 2) + dt.timedelta(days=12 * i) for i in range(30)]
    t = decimal_years(one_year)
    days = np.array([(d - one_year[0]).days for d in one_year]) / 365.25
    print(f"   dates within one calendar year: axes differ by {np.abs((t - t[0]) - days).max():.1e} yr (identical)")


# ----------------------------------------------------------------------------- 3. bridging windows
def measure_bridging(work: Path, oracle: Path | None, seeds: int) -> None:
    from sbts.core.config.template import Template
    from sbts.core.plugin.runners import run_correction

    print("3. bridging on 200 × 200 stacks (3 unwrapping-error islands each): islands left wrong")
    if oracle is None:
        print("   (skipped: give --oracle PATH to a MintPy 1.6.4 venv)")
        return
    wrong = {"sbts": 0, "mintpy": 0}
    total = 0
    for seed in range(seeds):
        folder = work / f"bridging{seed}"
        s = _stack(folder, shape=(200, 200), num_date=20, seed=seed)
        ry, rx = s.truth.reference_yx
        for tool in ("sbts", "mintpy"):
            (folder / tool).mkdir(exist_ok=True)
            shutil.copy2(folder / "ifgramStack.h5", folder / tool / "ifgramStack.h5")
        run_correction("bridging", Template({"mintpy.unwrapError.waterMaskFile": "no"}), folder / "sbts",
                       input_file=folder / "sbts" / "ifgramStack.h5", max_memory=0.5)
        _oracle(oracle, "unwrap_error_bridging.py", "ifgramStack.h5", "--water-mask", "no", cwd=folder / "mintpy")
        with h5py.File(folder / "ifgramStack.h5") as f:
            unw = f["unwrapPhase"][()]
        for tool in ("sbts", "mintpy"):
            with h5py.File(folder / tool / "ifgramStack.h5") as f:
                out = f["unwrapPhase_bridging"][()]
            out = out - out[:, ry:ry + 1, rx:rx + 1]
            cycles = np.round((out - (unw - unw[:, ry:ry + 1, rx:rx + 1])) / (2 * np.pi))
            for pair, k, region in s.truth.unwrap_errors:
                wrong[tool] += int(np.median(cycles[pair][region]) != -k)
        total += len(s.truth.unwrap_errors)
    print(f"   seeds 0..{seeds - 1}: {total} islands; left wrong by sbts {wrong['sbts']}, by MintPy {wrong['mintpy']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/sbts_mintpy_diff"))
    ap.add_argument("--oracle", type=Path, default=None, help="MintPy 1.6.4 virtual environment (for 3.)")
    ap.add_argument("--seeds", type=int, default=6, help="synthetic stacks for the bridging comparison")
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    oracle = args.oracle.resolve() if args.oracle else None
    measure_weights(args.dir / "weights", oracle)
    measure_time_axis(args.dir / "time")
    measure_bridging(args.dir, oracle, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
