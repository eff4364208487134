"""An update run killed at random times (issue 18): ``sbts run`` after a new acquisition arrived,
SIGKILLed at seeded random times from its start to its end (one in each quarter of the
uninterrupted run's duration) and once while the inversion's update writes its products, then rerun.

The stack is long enough (50 dates, 3 pairs a date) that the run updates the inversion from its
store instead of choosing a full inversion, and small blocks make a kill land mid-write.  After
each kill the source files are untouched, every final-named product opens complete, and the rerun
leaves exactly the arrays of an uninterrupted update run (every HDF5 file, the stores included):
a killed update leaves the previous products and stores, or new products with the previous store,
and the rerun updates again from what it finds.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.rcase(area="interrupt")
pytest.importorskip("osgeo.gdal")

SEED = 20261207
TRIALS = 3
OPTIONS = """
sbts.networkInversion.updateStore = yes
mintpy.compute.maxMemory = 0.0005
mintpy.troposphericDelay.method = no
mintpy.save.kmz = no
mintpy.plot = no
"""


@pytest.fixture(scope="module")
def stage(tmp_path_factory, rel):
    """(sources root, work dir after the 49-date run, template, the uninterrupted update's work dir,
    its duration in seconds)."""
    from sbts.core.demo.synthetic import make_synthetic_stack
    from sbts.tests.e2e.formats import geotiff
    from sbts.tests.e2e.formats._common import hold_back

    root = tmp_path_factory.mktemp("interrupt_update")
    synth = make_synthetic_stack(shape=(24, 30), num_date=50, seed=11, num_neighbor=3)
    cfg = geotiff.write(root / "src", synth)
    cfg.write_text(cfg.read_text() + OPTIONS)
    arrive = hold_back(root / "src", synth.date_list[-1], root / "held")
    before = root / "before"
    res = rel.run("run", cfg, "--work-dir", before, cwd=root, timeout=300)
    assert res.code == 0, res.out[-2000:]
    arrive()
    ref = root / "ref"
    shutil.copytree(before, ref)
    start = time.monotonic()
    res = rel.run("run", cfg, "--work-dir", ref, cwd=root, timeout=300)
    took = time.monotonic() - start
    assert res.code == 0, res.out[-2000:]
    assert "appended 3 pair(s), 1 new date(s)" in res.out, res.out[-2000:]
    assert "updated: exact update with 3 new pair(s)" in res.out, res.out[-3000:]
    return root, before, cfg, ref, took


def _kill_group(proc, delay: float) -> tuple[bool, str]:
    """SIGKILL the run and its workers (its process group) after ``delay`` s unless it finished."""
    import os
    import signal
    import subprocess

    try:
        return False, proc.communicate(timeout=delay)[0]
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True, proc.communicate()[0]


def _products(rel, work: Path) -> dict[str, dict[str, np.ndarray]]:
    return {str(p.relative_to(work)): rel.h5_arrays(p) for p in sorted(work.rglob("*.h5"))
            if ".part" not in p.name}


@pytest.mark.rcase(input=f"`sbts run` updating after a new acquisition, SIGKILLed at {TRIALS} seeded random times "
                         "and while the inversion writes",
                   expected="sources unchanged, no half-written final file, the rerun = the uninterrupted update")
def test_update_run_killed_and_rerun(rel, stage, tmp_path, note):
    root, before, cfg, ref, took = stage
    sources = rel.hash_tree(root / "src")
    expected = _products(rel, ref)
    rng = random.Random(SEED)
    seen = []
    # stratified over the run (one kill in each quarter of its duration), then one kill while the
    # inversion's update writes its products (its temporary time series exists)
    for trial in range(TRIALS + 1):
        work = tmp_path / f"w{trial}"
        shutil.copytree(before, work)
        proc = rel.start("run", cfg, "--work-dir", work, cwd=root)
        if trial < TRIALS:
            delay = took * (trial + rng.random()) / TRIALS
            killed, out = _kill_group(proc, delay)
        else:
            t0 = time.monotonic()
            while proc.poll() is None and not any(work.glob("timeseries.h5.*.part")):
                time.sleep(0.002)
            delay = time.monotonic() - t0
            killed, out = _kill_group(proc, 0.0)
        step = [ln.split("step ", 1)[1].split(":")[0] for ln in out.splitlines() if "step " in ln and ": running" in ln]
        seen.append(f"{delay:.2f}s {'in ' + step[-1] if killed and step else 'finished' if not killed else 'at start'}")
        assert rel.hash_tree(root / "src") == sources, f"the sources changed (killed at {delay:.2f}s)"
        for p in work.rglob("*.h5"):
            if ".part" not in p.name:
                rel.h5_arrays(p)  # opens and reads whole: complete
        res = rel.run("run", cfg, "--work-dir", work, cwd=root, timeout=300)
        assert res.code == 0, f"rerun after a kill at {delay:.2f}s failed:\n{res.out[-2000:]}"
        got = _products(rel, work)
        assert sorted(got) == sorted(expected), (delay, sorted(set(got) ^ set(expected)))
        for name, arrays in expected.items():
            for key, value in arrays.items():
                assert np.array_equal(got[name][key], value, equal_nan=value.dtype.kind == "f"), \
                    f"{name}:{key} differs after a kill at {delay:.2f}s and a rerun"
        shutil.rmtree(work, ignore_errors=True)
    note(observed="; ".join(seen))
