"""``sbts invert`` end to end: against per-pixel lstsq from the raw file, truth, chunking, parallel, resume."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.linalg

from sbts.core.demo.run import compare_with_truth, write_synthetic
from sbts.core.errors import DataError, InputError
from sbts.core.inversion.engine import InversionOptions, invert_network
from sbts.core.inversion.weights import coherence_to_weight
from sbts.core.io.products import IfgramStack, MapProduct, TimeSeries
from sbts.core.steps.reference import set_reference


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """A small synthetic stack (40×50, 16 dates) with its truth, referenced at the truth's pixel."""
    d = tmp_path_factory.mktemp("syn")
    write_synthetic(d, seed=3, shape=(40, 50), num_date=16)
    with h5py.File(d / "truth.h5", "r") as f:
        ry, rx = int(f.attrs["REF_Y"]), int(f.attrs["REF_X"])
    set_reference(d / "ifgramStack.h5", ry, rx)
    return d


def _stack_copy(synthetic: Path, tmp_path: Path) -> Path:
    import shutil

    for name in ("ifgramStack.h5", "geometryGeo.h5", "truth.h5"):
        shutil.copy(synthetic / name, tmp_path / name)
    return tmp_path / "ifgramStack.h5"


def _read_ts(path: Path) -> np.ndarray:
    return TimeSeries(path).read_dates()


@pytest.mark.parametrize("weight", ["no", "var", "fim", "coh"])
@pytest.mark.parametrize("min_norm_velocity", [True, False])
def test_matches_per_pixel_lstsq_from_the_raw_file(synthetic, tmp_path, weight, min_norm_velocity):
    """Independent slow reference: per pixel, scipy lstsq on the valid rows with sqrt weights.

    Tolerance 1e-6 relative + 1e-9 m: both solve in float64; the output is float32 metres.
    """
    stack_file = _stack_copy(synthetic, tmp_path)
    opts = InversionOptions(weight_func=weight, min_norm_velocity=min_norm_velocity, min_temp_coh=0.0,
                            min_num_pixel=0, water_mask_file=None)
    out = invert_network(stack_file, tmp_path, opts, max_memory=0.001)  # several blocks
    ts = _read_ts(out.timeseries)
    stack = IfgramStack(stack_file)
    pairs = stack.pairs.kept()
    i1, i2 = pairs.indices()
    tb = pairs.tbase()
    n, m = len(tb), len(pairs)
    A = np.zeros((m, n))
    A[np.arange(m), i1], A[np.arange(m), i2] = -1, 1
    B = np.zeros((m, n - 1))
    for k in range(m):
        B[k, i1[k]:i2[k]] = np.diff(tb)[i1[k]:i2[k]]
    G = B if min_norm_velocity else A[:, 1:]
    unw = stack.read("unwrapPhase").astype(np.float64)
    coh = stack.read("coherence")
    ry, rx = stack.metadata.reference.y, stack.metadata.reference.x
    looks = stack.metadata.radar.number_of_looks()
    lam = stack.metadata.radar.wavelength
    rng = np.random.default_rng(0)
    pixels = [(ry, rx)] + [tuple(p) for p in rng.integers(0, [40, 50], size=(60, 2))]
    # pixels with some zero (no-data) pairs exercise the per-pixel networks
    pixels += [tuple(p) for p in np.argwhere((unw == 0).any(0) & (unw != 0).any(0))[:10]]
    land = MapProduct(tmp_path / "geometryGeo.h5").read("waterMask")
    pixels += [tuple(p) for p in np.argwhere(~land)[:5]]  # water pixels are skipped (left empty)
    for y, x in pixels:
        if not land[y, x]:
            np.testing.assert_array_equal(ts[:, y, x], 0)
            continue
        obs = unw[:, y, x].copy()
        valid = obs != 0
        obs = np.where(valid, obs - unw[:, ry, rx], np.nan)
        rows = np.isfinite(obs)
        w = np.ones(m) if weight == "no" else coherence_to_weight(coh[:, y, x], weight, looks).astype(np.float64)
        sw = np.sqrt(w[rows])
        counts = np.bincount(np.concatenate([i1[rows], i2[rows]]), minlength=n)[1:]
        if counts.min() < 1:
            np.testing.assert_array_equal(ts[:, y, x], 0)
            continue
        sol = scipy.linalg.lstsq(G[rows] * sw[:, None], obs[rows] * sw, cond=1e-5)[0]
        phase_ts = np.concatenate([[0], np.cumsum(sol * np.diff(tb))]) if min_norm_velocity else np.concatenate([[0], sol])
        expect = phase_ts * (-lam / (4 * math.pi))
        np.testing.assert_allclose(ts[:, y, x], expect, rtol=1e-6, atol=1e-9 + 1e-6 * np.abs(expect).max())


def test_recovers_the_known_truth(synthetic, tmp_path):
    """RMS vs truth on reliable pixels: decorrelation noise of ~0.3 rad per pair → a few mm."""
    stack_file = _stack_copy(synthetic, tmp_path)
    out = invert_network(stack_file, tmp_path, InversionOptions(weight_func="var", min_num_pixel=10))
    text = compare_with_truth(out.timeseries, tmp_path / "truth.h5", out.mask_temp_coh)
    rms_mm = float(text.split("truth ")[1].split(" mm")[0])
    assert rms_mm < 4.0, text
    attrs = h5py.File(out.timeseries, "r").attrs
    assert attrs["FILE_TYPE"] == "timeseries" and attrs["UNIT"] == "m"
    assert attrs["REF_DATE"] == TimeSeries(out.timeseries).date_strings[0]
    assert attrs["mintpy.networkInversion.weightFunc"] == "var"
    tcoh = MapProduct(out.temporal_coherence).read("temporalCoherence")
    ry, rx = int(attrs["REF_Y"]), int(attrs["REF_X"])
    assert tcoh[ry, rx] == 1.0
    np.testing.assert_array_equal(_read_ts(out.timeseries)[:, ry, rx], 0)
    mask = MapProduct(out.mask_temp_coh).read("mask")
    assert mask.dtype == bool and out.num_reliable_pixels == int(mask.sum())
    water = MapProduct(tmp_path / "geometryGeo.h5").read("waterMask")
    assert not mask[~water].any()  # water pixels are not inverted


def test_blocks_processes_and_dask_equal_single_block(synthetic, tmp_path):
    stack_file = _stack_copy(synthetic, tmp_path)
    opts = InversionOptions(weight_func="var", min_num_pixel=0)
    runs = {}
    for label, kwargs in {"single": dict(max_memory=4.0), "blocks": dict(max_memory=0.0005),
                          "processes": dict(max_memory=0.001, num_worker=2),
                          "dask": dict(max_memory=0.002, num_worker=2, cluster="local")}.items():
        wd = tmp_path / label
        wd.mkdir()
        out = invert_network(stack_file, wd, opts, force=True, **kwargs)
        runs[label] = (_read_ts(out.timeseries), MapProduct(out.temporal_coherence).read("temporalCoherence"),
                       MapProduct(out.num_inv_ifgram).read("mask"))
    for label in ("blocks", "processes", "dask"):
        for a, b in zip(runs["single"], runs[label]):
            np.testing.assert_array_equal(a, b, err_msg=label)


def test_update_mode_and_resume_after_interruption(synthetic, tmp_path, monkeypatch, caplog):
    import sbts.core.inversion.engine as inv

    stack_file = _stack_copy(synthetic, tmp_path)
    opts = InversionOptions(weight_func="no", min_num_pixel=0)
    ref = invert_network(stack_file, tmp_path / "ref", opts, max_memory=0.0005)
    expected = _read_ts(ref.timeseries)
    assert invert_network(stack_file, tmp_path / "ref", opts, max_memory=0.0005).skipped

    calls = {"n": 0}
    original = inv.solve_block

    def flaky(task, block, inputs=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(task, block, inputs)

    monkeypatch.setattr(inv, "solve_block", flaky)
    work = tmp_path / "resume"
    with pytest.raises(KeyboardInterrupt):
        invert_network(stack_file, work, opts, max_memory=0.0005)
    assert not (work / "timeseries.h5").exists() and list(work.glob("timeseries.h5.*.part"))
    monkeypatch.setattr(inv, "solve_block", original)
    caplog.set_level("INFO", logger="sbts")
    out = invert_network(stack_file, work, opts, max_memory=0.0005)
    assert "resuming" in caplog.text
    np.testing.assert_array_equal(_read_ts(out.timeseries), expected)
    assert not list(work.glob("timeseries.h5*.part"))


def test_bad_reference_and_missing_inputs_are_clear(synthetic, tmp_path):
    stack_file = _stack_copy(synthetic, tmp_path)
    with h5py.File(stack_file, "r+") as f:
        f["unwrapPhase"][2, 0, 0] = 0
        f.attrs["REF_Y"], f.attrs["REF_X"] = "0", "0"
    with pytest.raises(DataError, match=r"reference pixel \(y=0, x=0\).*1 kept"):
        invert_network(stack_file, tmp_path, InversionOptions(weight_func="no"))
    with h5py.File(stack_file, "r+") as f:
        f.attrs["REF_Y"], f.attrs["REF_X"] = "5", "5"
        del f.attrs["NCORRLOOKS"], f.attrs["ALOOKS"]
    with pytest.raises(InputError, match="neither NCORRLOOKS nor ALOOKS"):
        invert_network(stack_file, tmp_path, InversionOptions(weight_func="var"))
    with pytest.raises(DataError, match="minNumPixel"):
        invert_network(stack_file, tmp_path, InversionOptions(weight_func="no", min_temp_coh=1.01))
