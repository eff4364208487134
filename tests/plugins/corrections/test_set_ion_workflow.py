"""``sbts run`` with the solid Earth tides and ionosphere keys on: the steps run in MintPy's order and give
MintPy's chain of file names (timeseries_SET_ion_…_ramp_demErr.h5) on the synthetic stack."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from sbts.core.demo.run import write_synthetic
from sbts.core.io.products import IfgramStack, StackWriter, TimeSeries
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
    return [r.name for r in reports if r.status in ("ran", "skipped")]  # in the order they ran (or were up to date)


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


IONEX = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "ionex_jpl_gim" / "jplg3190.15i"


def _ionex_for(day: dt.date, folder: Path, hours: int) -> None:
    """The real JPL map of 2015-11-15 with its epochs moved to ``day`` less ``hours`` (so each date sees
    another hour of the day's ionosphere), named as JPL names that day's file."""
    shift = dt.datetime(day.year, day.month, day.day) - dt.datetime(2015, 11, 15) - dt.timedelta(hours=hours)
    out = []
    for line in IONEX.read_text().splitlines():
        if line[60:].strip() in ("EPOCH OF FIRST MAP", "EPOCH OF LAST MAP", "EPOCH OF CURRENT MAP"):
            t = dt.datetime(*(int(x) for x in line[:60].split())) + shift
            line = f"{t.year:6d}{t.month:6d}{t.day:6d}{t.hour:6d}{t.minute:6d}{t.second:6d}".ljust(60) + line[60:]
        out.append(line)
    name = f"jplg{day.timetuple().tm_yday:03d}0.{day.year % 100:02d}i"
    (folder / name).write_text("\n".join(out) + "\n")


@pytest.mark.skipif(not IONEX.exists(), reason="../shared/data/ionex_jpl_gim not present")
def test_sbts_run_with_tec_ionosphere_gives_mintpy_chain(work):
    pytest.importorskip("pysolid")
    folder = work / "IONEX"
    folder.mkdir(exist_ok=True)
    for k, day in enumerate(IfgramStack(work / "synthetic" / "ifgramStack.h5").pairs.dates):
        _ionex_for(day, folder, 3 * k)  # the acquisitions are at 00:36 UTC: inside every shifted file
    (work / "tec.cfg").write_text(TEMPLATE + "mintpy.ionosphericDelay.method = tec\n"
                                  "mintpy.ionosphericDelay.tecDir = ./IONEX\n")
    reports = run_workflow(work / "tec.cfg", end="velocity")
    ran = _order(reports)
    assert {r.name: r.status for r in reports}["correct_ionosphere"] == "ran"
    assert ran.index("correct_SET") < ran.index("correct_ionosphere") < ran.index("deramp")
    for name in ("inputs/TECjlr.h5", "timeseries_SET_ion.h5", "timeseries_SET_ion_ramp.h5",
                 "timeseries_SET_ion_ramp_demErr.h5"):
        assert (work / name).exists(), name
    ts = TimeSeries(work / "timeseries_SET.h5")
    diff = ts.read_dates().astype(np.float64) - TimeSeries(work / "timeseries_SET_ion.h5").read_dates()
    delay = TimeSeries(work / "inputs" / "TECjlr.h5").read_dates().astype(np.float64)
    ry, rx = ts.metadata.reference.y, ts.metadata.reference.x
    delay = delay - delay[:, ry:ry + 1, rx:rx + 1]
    delay = delay - delay[ts.dates.index(ts.metadata.reference.date)][None]
    valid = np.any(ts.read_dates() != 0, axis=0)
    np.testing.assert_allclose(diff[:, valid], delay[:, valid], atol=1e-6)
    assert np.abs(delay).max() > 3e-4  # ~1 mm of differential ionosphere over the small C-band scene


def test_sbts_run_with_split_spectrum_gives_mintpy_chain(work):
    pytest.importorskip("pysolid")
    # an ionosphere stack as MintPy's layout holds it, for the synthetic pairs: φ(d2) − φ(d1) of known screens
    src = IfgramStack(work / "synthetic" / "ifgramStack.h5")
    dates = src.pairs.dates
    yy, xx = np.mgrid[0:src.shape[0], 0:src.shape[1]] / 40.0
    screens = {d: 0.4 + 0.3 * k * xx - 0.2 * (k % 3) * yy for k, d in enumerate(dates)}
    phase = np.stack([screens[b] - screens[a] for a, b in zip(src.pairs.date1, src.pairs.date2)]).astype(np.float32)
    with StackWriter(work / "synthetic" / "ionStack.h5", src.metadata, src.pairs, ("unwrapPhase", "coherence")) as w:
        w.write("unwrapPhase", phase)
        w.write("coherence", np.ones_like(phase))
    (work / "ion.cfg").write_text(TEMPLATE + "mintpy.load.ionUnwFile = synthetic/ionStack.h5\n"
                                  "mintpy.ionosphericDelay.method = split_spectrum\n")
    reports = run_workflow(work / "ion.cfg", end="velocity")
    assert {r.name: r.status for r in reports}["correct_ionosphere"] == "ran"
    ran = _order(reports)
    assert ran.index("correct_SET") < ran.index("correct_ionosphere") < ran.index("deramp")
    for name in ("inputs/ionStack.h5", "inputs/ion.h5", "timeseries_SET_ion.h5", "timeseries_SET_ion_ramp_demErr.h5"):
        assert (work / name).exists(), name
    ts = TimeSeries(work / "timeseries_SET.h5")
    diff = ts.read_dates().astype(np.float64) - TimeSeries(work / "timeseries_SET_ion.h5").read_dates()
    # the known screens in metres (−λ/4π), relative to the reference pixel and the final reference date
    lam = float(ts.metadata.radar.wavelength)
    truth = np.stack([-lam / (4 * np.pi) * screens[d] for d in ts.dates])
    ry, rx = ts.metadata.reference.y, ts.metadata.reference.x
    truth = truth - truth[:, ry:ry + 1, rx:rx + 1]
    truth = truth - truth[ts.dates.index(ts.metadata.reference.date)][None]
    inverted = np.any(TimeSeries(work / "inputs" / "ion.h5").read_dates() != 0, axis=0)  # land pixels
    np.testing.assert_allclose(diff[:, inverted], truth[:, inverted], atol=1e-6)
    assert inverted.mean() > 0.8 and np.abs(truth).max() > 1e-3


def test_sbts_run_on_a_radar_coded_isce_stack_with_tides_and_split_spectrum(tmp_path):
    """The same chain on an ISCE2 topsStack (radar coordinates, geometry from lat/lon/los.rdr), its ion files
    in topsStack's layout: timeseries_SET_ion_demErr.h5, the ionosphere removed as the known screens say."""
    pytest.importorskip("pysolid")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from fixtures.isce_topsstack import build_topsstack, template_text, write_isce_image

    root, work = tmp_path / "tops", tmp_path / "work"
    dates = ("20190101", "20190113", "20190125", "20190206", "20190218")
    info = build_topsstack(root, dates=dates)
    yy, xx = np.mgrid[0:info["shape"][0], 0:info["shape"][1]] / 40.0
    # a constant per date that no ramp difference cancels exactly (a zero phase would mean "no data")
    screens = {d: 0.4 + 0.05 * k ** 1.5 + 0.3 * k * xx - 0.2 * (k % 3) * yy for k, d in enumerate(dates)}
    for d1, d2 in info["pairs"]:
        write_isce_image(root / "ion" / f"{d1}_{d2}" / "ion_cal" / "filt.ion",
                         [(screens[d2] - screens[d1]).astype(np.float32)])
    work.mkdir()
    (work / "t.cfg").write_text(template_text(root) + f"mintpy.load.ionUnwFile = {root}/ion/*/ion_cal/filt.ion\n"
                                "mintpy.ionosphericDelay.method = split_spectrum\nmintpy.solidEarthTides = yes\n"
                                "mintpy.networkInversion.minTempCoh = 0\nmintpy.networkInversion.minNumPixel = 1\n"
                                "mintpy.save.kmz = no\nmintpy.reference.yx = 5,10\n")
    reports = {r.name: r.status for r in run_workflow(work / "t.cfg", end="velocity")}
    assert reports["correct_SET"] == reports["correct_ionosphere"] == reports["correct_topography"] == "ran"
    for name in ("inputs/ionStack.h5", "inputs/SET.h5", "inputs/ion.h5", "timeseries_SET_ion_demErr.h5"):
        assert (work / name).exists(), name
    ts = TimeSeries(work / "timeseries_SET.h5")
    assert ts.metadata.grid.geo is None  # radar-coded
    diff = ts.read_dates().astype(np.float64) - TimeSeries(work / "timeseries_SET_ion.h5").read_dates()
    lam = float(ts.metadata.radar.wavelength)
    truth = np.stack([-lam / (4 * np.pi) * screens[d] for d in ts.date_strings])
    truth = truth - truth[:, 5:6, 10:11]
    truth = truth - truth[ts.dates.index(ts.metadata.reference.date)][None]
    # pixels with data in both (no-data pixels of the series stay 0, as MintPy's diff.py leaves them)
    land = np.any(TimeSeries(work / "inputs" / "ion.h5").read_dates() != 0, axis=0) & np.any(ts.read_dates() != 0, 0)
    np.testing.assert_allclose(diff[:, land], truth[:, land], atol=1e-6)
    assert land.mean() > 0.8 and np.abs(truth).max() > 1e-3
