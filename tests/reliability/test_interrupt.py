"""Interruption harness: ``sbts`` subprocesses killed (SIGKILL, SIGINT to the process group, as
Ctrl-C does) at seeded random times, then rerun.

For each command: the inputs are byte-identical afterwards, every output under its final name
opens complete (a half-written product only ever lives under ``<name>.<pid>.part``), an interrupted
SIGINT run says so and exits 130, and rerunning the same command gives exactly the arrays of an
uninterrupted run.  The stack is small but processed in many blocks (``mintpy.compute.maxMemory
= 0.0005`` in the template), so a kill often lands mid-write; ``invert`` must log ``resuming``
after a kill that left finished blocks behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.rcase(area="interrupt")

SEED = 20240611
TRIALS_PER_SIGNAL = 2
SHAPE, NUM_DATE, MEM = (40, 50), 12, 0.0005
STACK_SETS = ("unwrapPhase", "coherence", "connectComponent", "date", "bperp")


def _run_inproc(rel, *args):
    res = rel.cli(*args)
    assert res.code == 0, res.out
    return res


@pytest.fixture(scope="module")
def stages(tmp_path_factory, rel):
    """Precondition folders (syn only / loaded+networked / inverted) and the reference arrays of
    uninterrupted runs of every command."""
    root = tmp_path_factory.mktemp("interrupt")
    syn = root / "syn_only"
    rel.project(syn, shape=SHAPE, num_date=NUM_DATE, max_memory=MEM)
    ref: dict[str, dict[str, np.ndarray]] = {}

    loaded = root / "loaded"
    shutil.copytree(syn, loaded)
    _run_inproc(rel, "load", loaded / "t.cfg")
    ref["load"] = {k: v for k, v in rel.h5_arrays(loaded / "inputs/ifgramStack.h5").items() if k in STACK_SETS}
    _run_inproc(rel, "network", loaded / "t.cfg")

    inverted = root / "inverted"
    shutil.copytree(loaded, inverted)
    _run_inproc(rel, "invert", inverted / "t.cfg")
    ref["invert"] = rel.h5_arrays(inverted / "timeseries.h5") | {
        "tcoh": rel.h5_arrays(inverted / "temporalCoherence.h5")["temporalCoherence"],
        "num": rel.h5_arrays(inverted / "numInvIfgram.h5")["mask"]}

    scratch = root / "scratch"
    shutil.copytree(inverted, scratch)
    _run_inproc(rel, "correct", "deramp", scratch / "t.cfg")
    ref["deramp"] = rel.h5_arrays(scratch / "timeseries_ramp.h5")
    _run_inproc(rel, "export", "geotiff", scratch / "timeseries.h5", "-O", "bands=all", "-o", scratch / "ts.tif")
    ref["export"] = _tif(scratch / "ts.tif")

    run = root / "run"
    shutil.copytree(syn, run)
    _run_inproc(rel, "run", run / "t.cfg", "--end", "invert_network")
    ref["run"] = rel.h5_arrays(run / "timeseries.h5")
    return {"syn": syn, "loaded": loaded, "inverted": inverted, "ref": ref}


def _tif(path: Path):
    try:
        from osgeo import gdal
    except ImportError:
        return None
    gdal.UseExceptions()
    ds = gdal.Open(str(path))
    out = {"bands": np.stack([ds.GetRasterBand(i + 1).ReadAsArray() for i in range(ds.RasterCount)])}
    ds = None
    return out


# command → (precondition, argv(work), inputs (relative), final outputs (relative), result(work) -> arrays)
COMMANDS = {
    "load": ("syn", lambda w: ["load", w / "t.cfg"], ["syn/ifgramStack.h5", "syn/geometryGeo.h5", "t.cfg"],
             ["inputs/ifgramStack.h5", "inputs/geometryGeo.h5"], None),
    "invert": ("loaded", lambda w: ["invert", w / "t.cfg"], ["inputs/ifgramStack.h5", "inputs/geometryGeo.h5", "t.cfg"],
               ["timeseries.h5", "temporalCoherence.h5", "numInvIfgram.h5", "maskTempCoh.h5"], None),
    "deramp": ("inverted", lambda w: ["correct", "deramp", w / "t.cfg"], ["timeseries.h5", "maskTempCoh.h5", "t.cfg"],
               ["timeseries_ramp.h5"], None),
    "export": ("inverted", lambda w: ["export", "geotiff", w / "timeseries.h5", "-O", "bands=all", "-o", w / "ts.tif"],
               ["timeseries.h5"], ["ts.tif"], None),
    "run": ("syn", lambda w: ["run", w / "t.cfg", "--end", "invert_network"], ["syn/ifgramStack.h5", "syn/geometryGeo.h5"],
            ["inputs/ifgramStack.h5", "timeseries.h5", "temporalCoherence.h5", "maskTempCoh.h5"], None),
}


def _result(rel, name: str, work: Path):
    if name == "load":
        return {k: v for k, v in rel.h5_arrays(work / "inputs/ifgramStack.h5").items() if k in STACK_SETS}
    if name == "invert":
        return rel.h5_arrays(work / "timeseries.h5") | {
            "tcoh": rel.h5_arrays(work / "temporalCoherence.h5")["temporalCoherence"],
            "num": rel.h5_arrays(work / "numInvIfgram.h5")["mask"]}
    if name == "deramp":
        return rel.h5_arrays(work / "timeseries_ramp.h5")
    if name == "export":
        return _tif(work / "ts.tif")
    return rel.h5_arrays(work / "timeseries.h5")


def _assert_same(got, want, what):
    assert got is not None and want is not None
    assert set(got) == set(want), f"{what}: datasets differ {set(got) ^ set(want)}"
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=f"{what}: {k} differs from the uninterrupted run")


def _complete(rel, path: Path):
    if path.suffix == ".tif":
        if _tif(path) is None:
            return
        return
    rel.h5_complete(path)


def _kill_group(proc: subprocess.Popen, delay: float, sig: int) -> tuple[bool, str]:
    try:
        out, _ = proc.communicate(timeout=delay)
        return False, out
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return True, out


def _trial(rel, stages, tmp_path, name: str, sig: int, delay: float, note) -> dict:
    pre, argv, inputs, outputs, _ = COMMANDS[name]
    work = tmp_path / f"w_{name}_{int(sig)}_{int(delay * 1000)}"
    shutil.copytree(stages[pre], work)
    hashes = {p: rel.sha(work / p) for p in inputs}
    proc = rel.start(*argv(work), cwd=work)
    killed, out = _kill_group(proc, delay, sig)
    rc = proc.returncode
    info = {"killed": killed, "rc": rc, "delay": delay}
    # 1. inputs untouched
    for p, h in hashes.items():
        assert rel.sha(work / p) == h, f"{name}: input {p} changed by the interrupted run (signal {sig}, {delay:.2f}s)"
    # 2. final-named outputs complete
    for p in outputs:
        if (work / p).exists():
            _complete(rel, work / p)
    # 3. SIGINT: a message and exit 130, no traceback (unless the signal hit interpreter start-up)
    if killed and sig == signal.SIGINT and rc not in (0, -signal.SIGINT):
        assert rc == 130, f"{name}: exit {rc} after SIGINT:\n{out[-1500:]}"
        assert "interrupted" in out, out[-800:]
        assert "Traceback" not in out, f"{name}: traceback after Ctrl-C at {delay:.2f}s:\n{out[-3000:]}"
    info["parts"] = sorted(str(p.relative_to(work)) for p in work.rglob("*.part"))
    # 4. rerun finishes with the uninterrupted result
    res = rel.run(*argv(work), cwd=work, timeout=120)
    assert res.code == 0, f"{name}: rerun after signal {sig} at {delay:.2f}s failed:\n{res.out[-1500:]}"
    _assert_same(_result(rel, name, work), stages["ref"][name], f"{name} after signal {int(sig)} at {delay:.2f}s")
    for p in outputs:
        _complete(rel, work / p)
    info["resumed"] = "resuming" in res.out
    shutil.rmtree(work, ignore_errors=True)
    return info


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
@pytest.mark.parametrize("name", list(COMMANDS))
@pytest.mark.rcase(input=f"subprocess killed at {TRIALS_PER_SIGNAL} seeded random times, then rerun",
                   expected="inputs byte-identical, no half-written final file, rerun = uninterrupted result")
def test_kill_and_rerun(rel, stages, tmp_path, name, sig, note):
    rng = random.Random(f"{SEED}-{name}-{int(sig)}")
    results = []
    for _ in range(TRIALS_PER_SIGNAL):
        delay = rng.uniform(0.25, 1.2)
        results.append(_trial(rel, stages, tmp_path, name, sig, delay, note))
    note(observed="; ".join(f"{r['delay']:.2f}s rc={r['rc']}{' resumed' if r['resumed'] else ''}"
                            f"{' parts=' + ','.join(r['parts']) if r['parts'] else ''}" for r in results))


@pytest.mark.rcase(input="`sbts invert` SIGKILLed after its first blocks were written, then rerun",
                   expected="the rerun logs `resuming: N of M blocks` and gives the uninterrupted result")
def test_invert_resumes(rel, stages, tmp_path, note):
    import h5py

    work = tmp_path / "w"
    shutil.copytree(stages["loaded"], work)
    proc = rel.start("invert", work / "t.cfg", "--num-worker", "1", cwd=work)
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        part = next(iter(work.glob("timeseries.h5.*.part")), None)  # <name>.<pid>.part: private to the run
        if part is not None:
            try:
                with h5py.File(part, "r", locking=False) as f:
                    raw = f.attrs.get("SBTS_DONE_BLOCKS")
                    done = len(json.loads(raw)) if raw else 0
            except Exception:  # noqa: BLE001 - the writer holds it; try again
                done = 0
            if done >= 2:
                break
        time.sleep(0.005)
    if proc.poll() is not None:
        pytest.skip("invert finished before it could be killed mid-way")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert not (work / "timeseries.h5").exists()
    res = rel.run("invert", work / "t.cfg", cwd=work, timeout=120)
    assert res.code == 0, res.out
    assert "resuming" in res.out, res.out[-1500:]
    _assert_same(_result(rel, "invert", work), stages["ref"]["invert"], "invert resumed")
    note(observed=next(ln for ln in res.out.splitlines() if "resuming" in ln))
