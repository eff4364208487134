"""The whole ``sbts run`` chain in one process, in a pool of 2 and on a local dask cluster of 2 (issue 16:
"results are identical whether a step runs in one process, in the pool or on dask").

A radar-coded ISCE topsStack (written as topsStack writes it) goes through the usual chain of
bench/bench_workflow.py: coherence-based network, phase-closure correction, ``var`` weights,
height-correlation troposphere, deramp, DEM error, RMS, reference date, velocity, geocode, KMZ and
HDF-EOS5, with a budget small enough that every block-wise step splits its work.  One process gets
the budget of one worker of the others (:func:`sbts.core.compute.scheduling.memory_per_task`), so
all three runs cut the same blocks; every dataset of every product must then hold the very same
values (the files differ only in MintPy's ``MODIFICATION_TIME`` and in sbts's provenance, which
names the folder), and the KMZ files the very same bytes.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sbts.core.compute import scheduling  # noqa: E402
from sbts.core.demo.synthetic import make_synthetic_stack  # noqa: E402
from sbts.core.workflow.runner import run_workflow  # noqa: E402

CHAIN = """\
mintpy.network.coherenceBased = yes
mintpy.network.minCoherence = 0.3
mintpy.unwrapError.method = phase_closure
mintpy.networkInversion.weightFunc = var
mintpy.troposphericDelay.method = height_correlation
mintpy.deramp = linear
mintpy.topographicResidual = yes
mintpy.geocode = yes
mintpy.save.kmz = yes
mintpy.save.hdfEos5 = yes
mintpy.save.hdfEos5.relative_orbit = 143
mintpy.save.hdfEos5.first_frame = 1
mintpy.plot = no
"""
BUDGET = 0.002  # GB: several blocks in every block-wise step of a 60 × 80 × 12-date stack
RUNS = {"here": dict(num_worker=1, max_memory=BUDGET / 2), "pool": dict(num_worker=2, max_memory=BUDGET),
        "dask": dict(num_worker=2, max_memory=BUDGET, cluster="local")}


def _values(work: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for path in sorted(work.rglob("*.h5")) + sorted(work.rglob("*.he5")):
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj, p=path: out.__setitem__(f"{p.relative_to(work)}:{name}", obj[()])
                         if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("dask.distributed")
    module = importlib.import_module("formats.isce_tops")
    synth = make_synthetic_stack((60, 80), 12, seed=3, orbit_direction="ASCENDING")
    works = {}
    for name, compute in RUNS.items():
        template = module.write(tmp_path_factory.mktemp(name), synth)
        template.write_text(template.read_text() + CHAIN)
        reports = run_workflow(template, template.parent, **compute)
        assert all(r.status in ("ran", "disabled") for r in reports), [(r.name, r.status, r.note) for r in reports]
        assert {r.name for r in reports if r.status == "ran"} >= {"correct_unwrap_error", "geocode", "google_earth",
                                                                    "hdfeos5"}
        assert not scheduling._clients, "the run left its dask cluster open"
        works[name] = template.parent
    return works


@pytest.mark.parametrize("other", ["pool", "dask"])
def test_same_values_here_in_the_pool_and_on_dask(runs, other):
    here, there = _values(runs["here"]), _values(runs[other])
    assert len(here) > 60 and here.keys() == there.keys()
    assert any(k.endswith(".he5:HDFEOS/GRIDS/timeseries/observation/displacement") for k in here)
    differ = [k for k in here if not np.array_equal(here[k], there[k], equal_nan=here[k].dtype.kind == "f")]
    assert not differ, differ


@pytest.mark.parametrize("other", ["pool", "dask"])
def test_same_kmz_bytes_here_in_the_pool_and_on_dask(runs, other):
    kmz = sorted(p.relative_to(runs["here"]) for p in runs["here"].rglob("*.kmz"))
    assert kmz and kmz == sorted(p.relative_to(runs[other]) for p in runs[other].rglob("*.kmz"))
    for rel in kmz:
        assert (runs["here"] / rel).read_bytes() == (runs[other] / rel).read_bytes(), rel
