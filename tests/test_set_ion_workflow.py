"""``sbts run`` with the solid Earth tides and ionosphere keys on: the steps run in MintPy's order and give
MintPy's chain of file names (timeseries_SET_ion_…_ramp_demErr.h5) on the synthetic stack."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sbts.core.demo.run import write_synthetic
from sbts.core.io.products import TimeSeries
from sbts.core.workflow.runner import run_workflow

TEMPLATE = """\
mintpy.load.processor = mintpy
mintpy.load.unwFile = synthetic/ifgramStack.h5
mintpy.load.demFile = synthetic/geometryGeo.h5
mintpy.networkInversion.minNumPixel = 10
mintpy.deramp = linear
mintpy.save.kmz = no
mintpy.solidEarthTides = yes
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("setion")
    write_synthetic(path / "synthetic", seed=2, shape=(32, 40), num_date=8)
    return path


def _order(reports) -> list[str]:
    return [r.name for r in reports if r.status == "ran"]


def test_sbts_run_with_solid_earth_tides_gives_mintpy_chain(work):
    pytest.importorskip("pysolid")
    (work / "set.cfg").write_text(TEMPLATE)
    reports = run_workflow(work / "set.cfg", end="velocity")
    ran = _order(reports)
    assert ran.index("invert_network") < ran.index("correct_SET") < ran.index("deramp") < ran.index(
        "correct_topography")
    for name in ("inputs/SET.h5", "timeseries_SET.h5", "timeseries_SET_ramp.h5", "timeseries_SET_ramp_demErr.h5"):
        assert (work / name).exists(), name
    # the step removed the (re-referenced) tide: the difference of the chain's files is SET.h5 re-referenced
    ts = TimeSeries(work / "timeseries.h5")
    diff = ts.read_dates().astype(np.float64) - TimeSeries(work / "timeseries_SET.h5").read_dates()
    tide = TimeSeries(work / "inputs" / "SET.h5").read_dates().astype(np.float64)
    ry, rx = ts.metadata.reference.y, ts.metadata.reference.x
    tide = tide - tide[:, ry:ry + 1, rx:rx + 1]
    # reference_date moved both files to the same REF_DATE afterwards
    tide = tide - tide[ts.dates.index(ts.metadata.reference.date)][None]
    valid = np.any(ts.read_dates() != 0, axis=0)
    np.testing.assert_allclose(diff[:, valid], tide[:, valid], atol=2e-7)
    assert np.abs(tide).max() > 1e-4  # a tide ramp over the scene, not nothing
