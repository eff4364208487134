"""``sbts run`` after new acquisitions were appended (issue 18 §3): the load appends, the reference
point is kept, the inversion is updated from the store (last dates re-solved), and the products equal a
full run on the whole stack (float32 noise: 2e-6 of the largest displacement / velocity)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("osgeo.gdal")

from sbts.core.demo.synthetic import make_synthetic_stack  # noqa: E402
from sbts.core.io.stack_parts import mapping_of  # noqa: E402
from sbts.core.workflow.runner import run_workflow  # noqa: E402
from sbts.tests.e2e.formats import geotiff  # noqa: E402
from sbts.tests.e2e.formats._common import hold_back  # noqa: E402

OPTIONS = """
sbts.networkInversion.updateStore = yes
mintpy.networkInversion.minTempCoh = 0.3
mintpy.networkInversion.minNumPixel = 10
mintpy.troposphericDelay.method = no
mintpy.geocode = no
mintpy.save.kmz = no
mintpy.plot = no
"""


@pytest.fixture(autouse=True)
def always_update(monkeypatch):
    """The stacks here are short (the window is every date), where a full inversion is the cheaper
    choice; these tests are about the update path, so it runs whatever its cost."""
    from sbts.core.inversion import incremental

    monkeypatch.setattr(incremental, "UPDATE_COST_RATIO", {"unweighted": 0.0, "weighted": 0.0})


def _statuses(reports):
    return {r.name: (r.status, r.note) for r in reports}


def _last_date_held_back(root: Path, seed: int, options: str):
    """A GeoTIFF stack of 12 dates under ``root/src`` whose last date's files are not there yet:
    (synth, template, a function that brings them)."""
    synth = make_synthetic_stack(shape=(30, 36), num_date=12, seed=seed)
    cfg = geotiff.write(root / "src", synth)
    cfg.write_text(cfg.read_text() + options)
    return synth, cfg, hold_back(root / "src", synth.date_list[-1], root / "held")


def _read(path: Path, name: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f[name][()]


def test_run_after_append_updates_and_equals_a_full_run(tmp_path):
    synth, cfg, arrive = _last_date_held_back(tmp_path, 7, OPTIONS)
    last = synth.date_list[-1]
    upd = tmp_path / "upd"
    first = _statuses(run_workflow(cfg, work_dir=upd, end="velocity"))
    assert first["invert_network"] == ("ran", "recomputed (full inversion)")
    arrive()

    second = _statuses(run_workflow(cfg, work_dir=upd, end="velocity"))
    new_pairs = sum(1 for _, b, _ in geotiff.pairs(synth) if b == last)
    assert second["load_data"] == ("ran", f"appended {new_pairs} pair(s), 1 new date(s)")
    status, note = second["invert_network"]
    assert status == "ran" and note.startswith(f"updated: exact update with {new_pairs} new pair(s), 1 new date(s)")
    assert second["velocity"][0] == "ran"
    log = (upd / "sbts_run.log").read_text()
    assert "kept from the previous run" in log
    summary = (upd / "sbts_run_summary.txt").read_text()
    assert "exact update" in summary and "appended" in summary

    # a full run on the whole stack, referenced at the same pixel
    ref = {k: h5py.File(upd / "inputs/ifgramStack.h5", "r").attrs[k] for k in ("REF_Y", "REF_X")}
    full_cfg = tmp_path / "src/work/full.cfg"
    full_cfg.write_text(cfg.read_text() + f"mintpy.reference.yx = {ref['REF_Y']}, {ref['REF_X']}\n"
                        "sbts.networkInversion.updateStore = no\n")
    full = tmp_path / "full"
    third = _statuses(run_workflow(full_cfg, work_dir=full, end="velocity"))
    assert third["invert_network"] == ("ran", "recomputed (full inversion)")
    ts_u, ts_f = _read(upd / "timeseries.h5", "timeseries"), _read(full / "timeseries.h5", "timeseries")
    assert ts_u.shape == ts_f.shape == (len(synth.date_list),) + ts_u.shape[1:]
    np.testing.assert_allclose(ts_u, ts_f, rtol=0, atol=2e-6 * np.abs(ts_f).max())
    for name in sorted(p.name for p in full.glob("timeseries*.h5")):
        a, b = _read(upd / name, "timeseries"), _read(full / name, "timeseries")
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6 * np.abs(b).max(), err_msg=name)
    v_u, v_f = _read(upd / "velocity.h5", "velocity"), _read(full / "velocity.h5", "velocity")
    np.testing.assert_allclose(v_u, v_f, rtol=0, atol=2e-6 * np.nanmax(np.abs(v_f)))
    # quick_overview added the new pairs and triplets to its kept sums, reference_point the new pairs
    # to its averages: bit-identical to a full pass
    assert "quick_overview: adding" in log and "new triplet(s) to the kept sums" in log
    assert f"reference_point: adding {new_pairs} new kept pair(s) to the kept averages" in log
    assert f"modify_network: averaging the coherence of {new_pairs} new pair(s)" in log
    table = [ln for ln in (upd / "coherenceSpatialAvg.txt").read_text().splitlines() if not ln.startswith("#")]
    assert table == [ln for ln in (full / "coherenceSpatialAvg.txt").read_text().splitlines()
                     if not ln.startswith("#")]
    for name, dataset in (("avgSpatialCoh.h5", "coherence"), ("maskConnComp.h5", "mask")):
        np.testing.assert_array_equal(_read(upd / name, dataset), _read(full / name, dataset), err_msg=name)
    assert second["quick_overview"][0] == "ran"
    for name, dataset in (("avgPhaseVelocity.h5", "velocity"), ("numTriNonzeroIntAmbiguity.h5", "mask")):
        np.testing.assert_array_equal(_read(upd / name, dataset), _read(full / name, dataset), err_msg=name)
    assert (upd / "closurePhaseTriplets.txt").read_text() == (full / "closurePhaseTriplets.txt").read_text()
    assert (upd / "quickOverviewUpdate.h5").is_file() and not (full / "quickOverviewUpdate.h5").exists()


def test_run_after_append_with_unwrapping_correction(tmp_path):
    """With the phase-closure correction on: the append leaves a stack made of parts, the correction
    runs again over every pair into the stack.  It corrects no pair here, so its dataset is a virtual
    one with the very mapping of the loaded phase (no copy), and the inversion of it is updated
    exactly (a corrected pair would make it a full one: test_update_inversion.py); the products
    equal a full run on the whole stack."""
    _, cfg, arrive = _last_date_held_back(tmp_path, 5, OPTIONS + "mintpy.unwrapError.method = phase_closure\n")
    upd = tmp_path / "upd"
    run_workflow(cfg, work_dir=upd, end="velocity")
    parts = upd / "inputs/ifgramStack_parts"
    assert not parts.exists()  # loaded whole, corrected inside the stack
    arrive()
    second = _statuses(run_workflow(cfg, work_dir=upd, end="velocity"))
    assert second["load_data"][1].startswith("appended")
    assert second["correct_unwrap_error"][0] == "ran"
    assert second["invert_network"][1].startswith("updated: exact update")
    assert "phase closure: 0 pair(s) corrected" in (upd / "sbts_run.log").read_text()
    stack = upd / "inputs/ifgramStack.h5"
    with h5py.File(stack, "r") as f:  # the loaded phase in parts, the corrected phase mapped alike
        assert f["unwrapPhase"].is_virtual and f["unwrapPhase_phaseClosure"].is_virtual
        assert mapping_of(f["unwrapPhase_phaseClosure"]) == mapping_of(f["unwrapPhase"])
        named = {v.file_name for v in f["unwrapPhase"].virtual_sources()}
        ref = f.attrs["REF_Y"], f.attrs["REF_X"]
    assert {f"./ifgramStack_parts/{p.name}" for p in parts.iterdir()} == named and len(named) == 2

    full_cfg = tmp_path / "src/work/full.cfg"
    full_cfg.write_text(cfg.read_text() + f"mintpy.reference.yx = {ref[0]}, {ref[1]}\n"
                        "sbts.networkInversion.updateStore = no\n")
    full = tmp_path / "full"
    run_workflow(full_cfg, work_dir=full, end="velocity")
    np.testing.assert_array_equal(_read(stack, "unwrapPhase_phaseClosure"),
                                  _read(full / "inputs/ifgramStack.h5", "unwrapPhase_phaseClosure"))
    for name, dataset in (("timeseries.h5", "timeseries"), ("velocity.h5", "velocity")):
        a, b = _read(upd / name, dataset), _read(full / name, dataset)
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6 * np.nanmax(np.abs(b)), err_msg=name)


def test_update_fits_the_dem_error_without_the_dates_the_previous_run_excluded(tmp_path):
    """The DEM-error step leaves out the dates of ``exclude_date.txt`` (MintPy's ``excludeDate =
    auto``), which the previous run's residual_RMS step wrote: an update, like any rerun, fits
    without them.  Its products equal a full run that starts from the same list, and differ from
    one that starts without it (the comparison would otherwise see a fit on other dates)."""
    synth, cfg, arrive = _last_date_held_back(tmp_path, 7, OPTIONS)
    upd = tmp_path / "upd"
    run_workflow(cfg, work_dir=upd, end="velocity")
    outlier = synth.date_list[3]
    (upd / "exclude_date.txt").write_text(outlier + "\n")  # as if the RMS step had found it
    arrive()
    second = _statuses(run_workflow(cfg, work_dir=upd, end="velocity"))
    assert second["invert_network"][1].startswith("updated: exact update")
    assert f"excluding 1 date(s) listed in {upd / 'exclude_date.txt'}" in (upd / "sbts_run.log").read_text()
    ref = {k: h5py.File(upd / "inputs/ifgramStack.h5", "r").attrs[k] for k in ("REF_Y", "REF_X")}
    full_cfg = tmp_path / "src/work/full.cfg"
    full_cfg.write_text(cfg.read_text() + f"mintpy.reference.yx = {ref['REF_Y']}, {ref['REF_X']}\n"
                        "sbts.networkInversion.updateStore = no\n")
    fresh, same_list = tmp_path / "fresh", tmp_path / "same_list"
    same_list.mkdir()
    (same_list / "exclude_date.txt").write_text(outlier + "\n")
    run_workflow(full_cfg, work_dir=same_list, end="velocity")
    run_workflow(full_cfg, work_dir=fresh, end="velocity")
    for name, dataset in (("timeseries_demErr.h5", "timeseries"), ("velocity.h5", "velocity")):
        a, b = _read(upd / name, dataset), _read(same_list / name, dataset)
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6 * np.nanmax(np.abs(b)), err_msg=name)
    d = _read(upd / "demErr.h5", "dem")
    assert np.nanmax(np.abs(d - _read(fresh / "demErr.h5", "dem"))) > 1e-3 * np.nanmax(np.abs(d))
