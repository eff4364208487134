"""Unwrapping-error corrections (bridging, phase_closure, both) on the synthetic stack with known errors."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from sbts.core.config.template import Template
from sbts.core.demo.run import write_synthetic, write_synthetic_files
from sbts.core.demo.synthetic import make_synthetic_stack
from sbts.core.errors import InputError, PluginError, TemplateError
from sbts.core.io.products import IfgramStack
from sbts.core.plugin.runners import run_correction
from sbts.core.steps.reference import set_reference
from sbts.plugins.corrections import unwrap_error as uw

SHAPE = (60, 80)
NUM_DATE = 16
TWO_PI = 2 * np.pi
METHODS = ["bridging", "phase_closure", "bridging+phase_closure"]
SEED = 2  # any seed works for phase closure; bridging is checked over several seeds in test_bridging_seeds


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """The synthetic stack (phase noise on) on disk, referenced, and its model; copied per test.

    Turbulence is off: the default 1 cm power-law screen on a 60×80 grid has a median phase gradient
    of about 1.3 rad/pixel (often > π), i.e. a phase no unwrapper could have produced and no spatial
    method (bridging) can follow; phase closure does not care (see test_phase_closure_default_synthetic).
    """
    folder = tmp_path_factory.mktemp("synthetic")
    s = make_synthetic_stack(shape=SHAPE, num_date=NUM_DATE, seed=SEED, turbulence_std=0.0)
    write_synthetic_files(folder, s)
    set_reference(folder / "ifgramStack.h5", *s.truth.reference_yx)
    return folder, s


@pytest.fixture
def work(synthetic, tmp_path):
    folder, s = synthetic
    for name in ("ifgramStack.h5", "geometryGeo.h5"):
        shutil.copy(folder / name, tmp_path / name)
    return tmp_path, s


def _template(**extra):
    values = {"mintpy.unwrapError.connCompMinArea": "20"}
    values.update({f"mintpy.unwrapError.{k}": str(v) for k, v in extra.items()})
    return Template(values)


def _run(work_dir, method, template=None, **options):
    return run_correction(method, template or _template(), work_dir, input_file=work_dir / "ifgramStack.h5",
                          geometry_file=work_dir / "geometryGeo.h5", max_memory=0.05, **options)


def _expected_cycles(s):
    cycles = np.zeros((s.num_pair,) + SHAPE, np.int64)
    for pid, k, region in s.truth.unwrap_errors:
        cycles[pid][region] = -k
    return cycles


@pytest.mark.parametrize("method", METHODS)
def test_injected_errors_removed_exactly(work, method):
    work_dir, s = work
    _run(work_dir, method)
    stack = IfgramStack(work_dir / "ifgramStack.h5")
    name = uw.corrected_dataset_name(method)
    out = stack.read(name)
    original = stack.read("unwrapPhase")
    np.testing.assert_array_equal(original, s.unwrap_phase)  # the input is untouched
    assert len(s.truth.unwrap_errors) == 3
    land = s.water_mask
    for pid, k, region in s.truth.unwrap_errors:
        # corrected minus the injected error equals the clean phase: the error is gone, in whole cycles
        clean = original[pid] - TWO_PI * k * region  # the input minus the injected error
        np.testing.assert_allclose(out[pid][land], clean[land], atol=2e-5)
    cycles = np.round((out - original) / TWO_PI).astype(np.int64)
    np.testing.assert_array_equal(cycles[:, land], _expected_cycles(s)[:, land])
    err_pairs = {e[0] for e in s.truth.unwrap_errors}
    for k in set(range(s.num_pair)) - err_pairs:  # other pairs untouched, bit for bit
        np.testing.assert_array_equal(out[k], original[k])
    with h5py.File(work_dir / "ifgramStack.h5", "r") as f:
        assert f[name].attrs["mintpy.unwrapError.method"] == method
        assert not [n for n in f if n.endswith(("__sbts_tmp", "__sbts_old"))]
    assert not list(work_dir.glob(".*.part.h5"))


def test_bridging_with_ramp_and_dropped_pair(work):
    work_dir, s = work
    pid = s.truth.unwrap_errors[0][0]
    with h5py.File(work_dir / "ifgramStack.h5", "r+") as f:
        keep = f["dropIfgram"][()]
        keep[pid] = False
        f["dropIfgram"][...] = keep
    _run(work_dir, "bridging", _template(ramp="linear"))
    stack = IfgramStack(work_dir / "ifgramStack.h5")
    out, original = stack.read("unwrapPhase_bridging"), stack.read("unwrapPhase")
    np.testing.assert_array_equal(out[pid], original[pid])  # dropped: copied unchanged
    cycles = np.round((out - original) / TWO_PI).astype(np.int64)
    expected = _expected_cycles(s)
    expected[pid] = 0
    np.testing.assert_array_equal(cycles[:, s.water_mask], expected[:, s.water_mask])


def test_small_regions_are_ignored_mintpy_rule():
    """MintPy's minimum-area rule (conncomp.label_conn_comp): with several regions, connCompMinArea
    is capped at 0.3 % of the image (here 60 × 80 → 14.4 px): an island of 10 px is ignored, one of
    20 px is kept even with connCompMinArea = 5000; a lone region is always kept."""
    assert uw.effective_min_area(2500, 200 * 200, 3) == pytest.approx(120)  # the 200 × 200 case
    assert uw.effective_min_area(50, 200 * 200, 3) == 50
    assert uw.effective_min_area(2500, 200 * 200, 1) == 0
    cc = np.ones(SHAPE, np.int16)
    cc[5:7, 5:10] = 2  # 10 px
    cc[30:34, 40:45] = 3  # 20 px
    valid = np.ones(SHAPE, bool)
    labels, n = uw._regions(cc, valid, 5000)
    assert n == 2 and labels[5, 5] == 0 and labels[31, 41] > 0 and labels[0, 0] > 0
    labels, n = uw._regions(cc, valid, 15)  # below the cap: the option applies as given
    assert n == 2 and labels[5, 5] == 0
    labels, n = uw._regions(np.where(cc == 1, 1, 0), valid, 5000)
    assert n == 1  # one region only: kept whatever its size


def test_min_area_capped_corrects_the_blobs(work):
    """connCompMinArea = 5000 on a 4800-pixel image is capped at 14.4 px (MintPy): the error blobs are
    corrected as with a small minimum area."""
    work_dir, s = work
    _run(work_dir, "phase_closure", _template(connCompMinArea=5000))
    capped = IfgramStack(work_dir / "ifgramStack.h5").read("unwrapPhase_phaseClosure")
    _run(work_dir, "phase_closure", _template(connCompMinArea=14), force=True)
    np.testing.assert_array_equal(IfgramStack(work_dir / "ifgramStack.h5").read("unwrapPhase_phaseClosure"), capped)


def test_idempotent(work):
    work_dir, _s = work
    _run(work_dir, "phase_closure")
    path = work_dir / "ifgramStack.h5"
    first = IfgramStack(path).read("unwrapPhase_phaseClosure")
    result = _run(work_dir, "phase_closure")  # same input and settings: skipped
    assert "up to date" in result.summary
    _run(work_dir, "phase_closure", force=True)  # recomputed: same samples (seeded), same answer
    np.testing.assert_array_equal(IfgramStack(path).read("unwrapPhase_phaseClosure"), first)
    # correcting the corrected phase finds nothing more to do
    _run(work_dir, "phase_closure", dataset="unwrapPhase_phaseClosure", force=True)
    np.testing.assert_array_equal(IfgramStack(path).read("unwrapPhase_phaseClosure"), first)
    _run(work_dir, "bridging")
    bridged = IfgramStack(path).read("unwrapPhase_bridging")
    _run(work_dir, "bridging", dataset="unwrapPhase_bridging", force=True)
    np.testing.assert_array_equal(IfgramStack(path).read("unwrapPhase_bridging"), bridged)


def test_options_from_the_command_line_are_parsed(work):
    """`sbts correct NAME -O force=yes` gives strings: yes/no is a flag, not a truthy string."""
    work_dir, _s = work
    _run(work_dir, "bridging")
    assert "up to date" in _run(work_dir, "bridging", force="no").summary
    assert "up to date" not in _run(work_dir, "bridging", force="yes").summary
    with pytest.raises(InputError, match="-O force='maybe': expected yes or no"):
        _run(work_dir, "bridging", force="maybe")
    with pytest.raises(InputError, match="-O seed='x': expected int"):
        _run(work_dir, "phase_closure", seed="x")
    with pytest.raises(InputError, match=r"unknown option\(s\) forse \(known: alpha, dataset, force, seed\)"):
        _run(work_dir, "bridging", forse="yes")


def test_interrupted_write_leaves_no_half_dataset(work, monkeypatch):
    work_dir, _s = work
    path = work_dir / "ifgramStack.h5"
    calls = {"n": 0}
    real = uw.bridge_pair

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(uw, "bridge_pair", failing)
    with pytest.raises(PluginError, match="simulated crash"):
        _run(work_dir, "bridging")
    with h5py.File(path, "r") as f:
        assert not [n for n in f if n.startswith("unwrapPhase_bridging")]
    assert not list(work_dir.glob(".*.part.h5"))

    # replacing an existing dataset: an interrupted re-run keeps the complete old one
    monkeypatch.setattr(uw, "bridge_pair", real)
    _run(work_dir, "bridging")
    before = IfgramStack(path).read("unwrapPhase_bridging")
    calls["n"] = 0
    monkeypatch.setattr(uw, "bridge_pair", failing)
    with pytest.raises(PluginError):
        _run(work_dir, "bridging", force=True)
    np.testing.assert_array_equal(IfgramStack(path).read("unwrapPhase_bridging"), before)
    with h5py.File(path, "r") as f:
        assert sorted(n for n in f if n.startswith("unwrapPhase_bridging")) == ["unwrapPhase_bridging"]

    # a crash between copy and rename leaves a temporary name: the next run removes it
    monkeypatch.setattr(uw, "bridge_pair", real)
    with h5py.File(path, "r+") as f:
        f.create_dataset("unwrapPhase_bridging__sbts_tmp", data=np.zeros(3))
    _run(work_dir, "bridging", force=True)
    with h5py.File(path, "r") as f:
        assert "unwrapPhase_bridging__sbts_tmp" not in f


def test_errors_and_dataset_names(work):
    work_dir, _s = work
    assert uw.corrected_dataset_name("no") == "unwrapPhase"
    assert uw.corrected_dataset_name(None) == "unwrapPhase"
    assert uw.corrected_dataset_name("bridging") == "unwrapPhase_bridging"
    assert uw.corrected_dataset_name("phase_closure") == "unwrapPhase_phaseClosure"
    assert uw.corrected_dataset_name("bridging+phase_closure") == "unwrapPhase_bridging_phaseClosure"
    with pytest.raises(TemplateError):
        uw.corrected_dataset_name("magic")
    with pytest.raises(InputError, match="water mask not found"):
        _run(work_dir, "bridging", _template(waterMaskFile="missing.h5"))
    with pytest.raises(TemplateError):
        _run(work_dir, "bridging", _template(ramp="cubic"))


def test_cli_help_lists_keys():
    from sbts.cli.main import cli

    result = CliRunner().invoke(cli, ["correct", "phase_closure", "--help"])
    assert result.exit_code == 0, result.output
    for key in ("mintpy.unwrapError.numSample", "mintpy.unwrapError.connCompMinArea",
                "mintpy.unwrapError.waterMaskFile"):
        assert key in result.output
    result = CliRunner().invoke(cli, ["correct", "bridging", "--help"])
    assert "mintpy.unwrapError.bridgePtsRadius" in result.output and "mintpy.unwrapError.ramp" in result.output


def test_phase_closure_default_synthetic(tmp_path):
    """write_synthetic as is (turbulence on, phase noise): closure finds every injected error."""
    write_synthetic(tmp_path, seed=0, shape=SHAPE, num_date=NUM_DATE)
    s = make_synthetic_stack(shape=SHAPE, num_date=NUM_DATE, seed=0)
    set_reference(tmp_path / "ifgramStack.h5", *s.truth.reference_yx)
    _run(tmp_path, "phase_closure")
    stack = IfgramStack(tmp_path / "ifgramStack.h5")
    cycles = np.round((stack.read("unwrapPhase_phaseClosure") - stack.read("unwrapPhase")) / TWO_PI)
    np.testing.assert_array_equal(cycles[:, s.water_mask], _expected_cycles(s)[:, s.water_mask])


@pytest.mark.parametrize("seed", range(6))
def test_bridging_seeds(seed):
    """bridge_pair alone (no I/O) on several seeds: every injected error is found."""
    s = make_synthetic_stack(shape=SHAPE, num_date=NUM_DATE, seed=seed, turbulence_std=0.0)
    for pid, k, region in s.truth.unwrap_errors:
        phase = np.array(s.unwrap_phase[pid])
        valid = s.water_mask & (phase != 0)
        out, _ = uw.bridge_pair(phase, s.conn_comp[pid], valid, s.truth.reference_yx, 20, 5)
        cycles = np.round((out - phase) / TWO_PI)
        np.testing.assert_array_equal(cycles[s.water_mask], -k * region[s.water_mask])


@pytest.mark.parametrize("mode", [dict(num_worker=2), dict(num_worker=2, cluster="local")], ids=["pool", "dask"])
def test_bridging_pairs_in_parallel_equal_one_process(synthetic, tmp_path, mode, caplog):
    """Issue 16: the pairs are bridged by the run's workers; the corrected dataset is the one a single
    process writes (the injected errors removed), and the land mask the tasks share by file is gone."""
    import logging

    if mode.get("cluster"):
        pytest.importorskip("dask.distributed")
    folder, s = synthetic
    works = {}
    for name in ("here", "apart"):
        works[name] = tmp_path / name
        works[name].mkdir()
        for f in ("ifgramStack.h5", "geometryGeo.h5"):
            shutil.copy(folder / f, works[name] / f)
    _run(works["here"], "bridging")
    with caplog.at_level(logging.INFO):
        _run_with_budget(works["apart"], 1.0, **mode)
    assert "on 2 workers" in caplog.text
    here = IfgramStack(works["here"] / "ifgramStack.h5").read("unwrapPhase_bridging")
    apart = IfgramStack(works["apart"] / "ifgramStack.h5").read("unwrapPhase_bridging")
    np.testing.assert_array_equal(apart, here)
    original = IfgramStack(works["apart"] / "ifgramStack.h5").read("unwrapPhase")
    land = s.water_mask
    cycles = np.round((apart - original) / TWO_PI).astype(np.int64)
    np.testing.assert_array_equal(cycles[:, land], _expected_cycles(s)[:, land])
    assert sorted(p.name for p in works["apart"].iterdir()) == sorted(p.name for p in works["here"].iterdir())


def _run_with_budget(work_dir, max_memory, **options):
    return run_correction("bridging", _template(), work_dir, input_file=work_dir / "ifgramStack.h5",
                          geometry_file=work_dir / "geometryGeo.h5", max_memory=max_memory, **options)


def test_bridging_fewer_pairs_at_once_under_a_small_budget(work, caplog):
    """A pair is bridged whole: a budget below two pairs' work bridges one pair at a time, here."""
    import logging

    work_dir, _s = work
    one_pair_gb = uw._BRIDGE_BYTES_PER_PIXEL * SHAPE[0] * SHAPE[1] / 1024**3
    with caplog.at_level(logging.INFO):
        _run_with_budget(work_dir, 1.5 * one_pair_gb, num_worker=2)
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("bridging") and "kept" in
                r.getMessage() and "corrected" not in r.getMessage())
    assert "worker" not in line, line


def test_common_regions_same_whatever_the_blocks_and_workers(synthetic):
    """The regions are numbered by their first pixel in raster order: the same map in one block, in
    many, in the pool and on dask (where the blocks' label rows are sorted into patterns)."""
    from sbts.core.compute import scheduling

    folder, s = synthetic
    stack = IfgramStack(folder / "ifgramStack.h5")
    land = np.ones(SHAPE, bool)
    land[:6, :9] = False  # some water
    ref, n = uw.common_regions(stack, land, 20, 4.0)
    assert n >= 2 and (ref[~land] == -1).all()
    firsts = [int(np.flatnonzero(ref.ravel() == r)[0]) for r in range(n)]
    assert firsts == sorted(firsts)
    try:
        for kw in [{}, {"num_worker": 2}, {"num_worker": 2, "cluster": "local"}]:
            got, m = uw.common_regions(stack, land, 20, 2e-4, **kw)  # ~4 rows a block
            assert m == n and np.array_equal(got, ref), kw
    finally:
        scheduling.close_clusters()
    # a region is a set of pixels with one label in every kept pair
    kept = np.flatnonzero(stack.pairs.keep)
    cc = stack.read("connectComponent", index=kept)
    for r in range(n):
        rows = cc[:, ref == r]
        assert (rows == rows[:, :1]).all()
