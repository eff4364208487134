"""Block-wise averages over kept pairs: avgSpatialCoh, stacking velocity, common conn-comp mask."""

from __future__ import annotations

import datetime as dt

import h5py
import numpy as np
import pytest

from sbts.core.errors import DataError, InputError
from sbts.core.io.products import IfgramStack, StackWriter
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo
from sbts.core.model.pairs import Pairs
from sbts.core.steps import averages

TINY_MEMORY = 2e-6  # GB: with many_blocks, forces several blocks on the small test stacks


@pytest.fixture
def many_blocks(monkeypatch):
    """Ignore HDF5 chunking (one chunk holds a whole small test image) and count block reads."""
    reads = []
    original = IfgramStack.read

    def read(self, name, block=None, index=None):
        reads.append(block)
        return original(self, name, block, index)

    monkeypatch.setattr(IfgramStack, "chunk_shape", lambda self, name: None)
    monkeypatch.setattr(IfgramStack, "read", read)
    return reads
WAVELENGTH = 0.0555


def make_stack(path, date12, shape=(12, 9), keep=None, bperp=None, geo=True, ref=None, **data):
    """Write a small ifgramStack.h5 with the given 3-D datasets (name=array)."""
    pairs = Pairs.from_date12(date12, bperp, keep)
    grid = Grid(shape[0], shape[1], GeoGrid(-99.0, 19.5, 0.001, -0.001) if geo else None)
    meta = Metadata(grid=grid, radar=RadarInfo(wavelength=WAVELENGTH))
    if ref is not None:
        meta = meta.with_reference(y=ref[0], x=ref[1])
    with StackWriter(path, meta, pairs, {k: v.dtype for k, v in data.items()}) as w:
        for name, value in data.items():
            w.write(name, value, None)
    return path


DATE12 = ["20200101_20200113", "20200101_20200125", "20200113_20200125", "20200113_20200206",
          "20200125_20200206"]


def test_temporal_average_coherence_matches_numpy_over_kept(tmp_path, many_blocks):
    rng = np.random.default_rng(0)
    coh = rng.uniform(0, 1, (5, 12, 9)).astype(np.float32)
    coh[1, 3, 4] = np.nan
    coh[:, 0, 0] = np.nan
    keep = [True, True, False, True, True]
    make_stack(tmp_path / "s.h5", DATE12, keep=keep, coherence=coh)
    out = averages.temporal_average(tmp_path / "s.h5", "coherence", max_memory=TINY_MEMORY)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmean(coh[np.array(keep)], axis=0)
    np.testing.assert_allclose(out, expected, rtol=1e-6, equal_nan=True)
    assert np.isnan(out[0, 0])
    assert len({b for b in many_blocks if b is not None}) > 3


def test_write_average_coherence(tmp_path):
    coh = np.full((5, 12, 9), 0.5, np.float32)
    make_stack(tmp_path / "s.h5", DATE12, coherence=coh)
    path = averages.write_average_coherence(tmp_path / "s.h5", tmp_path)
    assert path.name == "avgSpatialCoh.h5"
    with h5py.File(path) as f:
        assert f.attrs["FILE_TYPE"] == "coherence"
        np.testing.assert_allclose(f["coherence"][()], 0.5)


def linear_phase_stack(tmp_path, velocity, ref=(2, 3), zero_at=None):
    """Noise-free pairs from a linear displacement field (m/yr) plus a per-pair constant."""
    pairs = Pairs.from_date12(DATE12)
    i1, i2 = pairs.indices()
    t = pairs.tbase()
    disp = t[:, None, None] * velocity[None]  # toward satellite, m
    phase = (-4 * np.pi / WAVELENGTH) * (disp[i2] - disp[i1])
    phase += np.arange(1, 6)[:, None, None] * 0.7  # unwrapping constants, removed by the reference
    phase = phase.astype(np.float32)
    if zero_at is not None:
        phase[zero_at] = 0.0
    return make_stack(tmp_path / "s.h5", DATE12, ref=ref, unwrapPhase=phase)


def test_stacking_velocity_of_linear_phase(tmp_path, many_blocks):
    yy, xx = np.mgrid[0:12, 0:9]
    velocity = (0.01 * yy - 0.003 * xx).astype(np.float64)
    linear_phase_stack(tmp_path, velocity, ref=(2, 3), zero_at=(1, 7, 7))
    out = averages.stacking_velocity(tmp_path / "s.h5", max_memory=TINY_MEMORY)
    expected = velocity - velocity[2, 3]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert out[2, 3] == 0
    path = averages.write_stacking_velocity(tmp_path / "s.h5", tmp_path)
    with h5py.File(path) as f:
        assert f.attrs["FILE_TYPE"] == "velocity" and f.attrs["UNIT"] == "m/year"
        assert f.attrs["START_DATE"] == "20200101" and f.attrs["END_DATE"] == "20200206"
        np.testing.assert_allclose(f["velocity"][()], expected, atol=1e-5)


def test_stacking_velocity_without_reference_uses_raw_phase(tmp_path):
    velocity = np.zeros((12, 9))
    linear_phase_stack(tmp_path, velocity, ref=None)
    out = averages.stacking_velocity(tmp_path / "s.h5")
    pairs = Pairs.from_date12(DATE12)
    yrs = pairs.temporal_baseline_days() / 365.25
    expected = np.mean(np.arange(1, 6) * 0.7 * (-WAVELENGTH / (4 * np.pi)) / yrs)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_conncomp_mask_common_over_kept_pairs(tmp_path, many_blocks):
    cc = np.ones((5, 12, 9), np.int16)
    cc[0, 1, 1] = 0
    cc[2, 4, 4] = 0  # pair 2 is dropped: must not matter
    cc[4, 5, 6] = 0
    make_stack(tmp_path / "s.h5", DATE12, keep=[True, True, False, True, True], connectComponent=cc,
               unwrapPhase=np.ones((5, 12, 9), np.float32))
    mask = averages.connected_component_mask(tmp_path / "s.h5", max_memory=TINY_MEMORY)
    expected = np.ones((12, 9), bool)
    expected[1, 1] = expected[5, 6] = False
    np.testing.assert_array_equal(mask, expected)
    path = averages.write_conncomp_mask(tmp_path / "s.h5", tmp_path)
    with h5py.File(path) as f:
        assert f["mask"].dtype == bool and f.attrs["FILE_TYPE"] == "mask"
        np.testing.assert_array_equal(f["mask"][()], expected)


def test_conncomp_mask_falls_back_to_nonzero_phase(tmp_path):
    unw = np.ones((5, 12, 9), np.float32)
    unw[3, 2, 2] = 0
    unw[1, 0, 8] = np.nan
    make_stack(tmp_path / "s.h5", DATE12, unwrapPhase=unw)
    mask = averages.connected_component_mask(IfgramStack(tmp_path / "s.h5"))
    assert mask.sum() == mask.size - 2 and not mask[2, 2] and not mask[0, 8]


def test_all_dropped_is_a_data_error(tmp_path):
    make_stack(tmp_path / "s.h5", DATE12, keep=[False] * 5, coherence=np.ones((5, 12, 9), np.float32))
    with pytest.raises(DataError, match="every interferogram is dropped"):
        averages.temporal_average(tmp_path / "s.h5")


def test_read_mask_file_rejects_non_mask(tmp_path):
    from sbts.core.io.products import write_map

    meta = Metadata(grid=Grid(4, 5))
    write_map(tmp_path / "m.h5", meta, "mask", {"mask": np.array([[1, 0, 1, 1, 1]] * 4, np.int8)})
    assert averages.read_mask_file(tmp_path / "m.h5", (4, 5)).sum() == 16
    write_map(tmp_path / "v.h5", meta, "velocity", {"velocity": np.full((4, 5), 0.3, np.float32)})
    with pytest.raises(InputError, match="not a mask"):
        averages.read_mask_file(tmp_path / "v.h5", (4, 5))
    with pytest.raises(InputError, match="shape"):
        averages.read_mask_file(tmp_path / "m.h5", (5, 5))


def test_date_of_tests_is_sane():
    assert Pairs.from_date12(DATE12).dates[0] == dt.date(2020, 1, 1)


@pytest.mark.parametrize("memory, workers", [(4.0, 1), (2e-5, 1), (2e-5, 2)])
def test_quick_overview_one_read_equals_the_two_passes(tmp_path, memory, workers):
    """quick_overview reads the phase once for the stacking velocity and the closure scan: its files
    equal, bit for bit, those of the two separate passes (stacking velocity over the kept pairs with
    data at the reference, T_int and triplet statistics over the triplets' pairs), whatever the
    blocks and in a pool; a dropped pair, a pair without data at the reference and no-data pixels
    make the two pair sets differ."""
    from sbts.core.config.compute import ComputeOptions
    from sbts.core.inversion import closure
    from sbts.core.io.workdir import WorkDir

    date12 = DATE12 + ["20200101_20200206", "20200206_20200218", "20200125_20200218"]
    rng = np.random.default_rng(3)
    shape = (30, 24)
    phase = rng.normal(0, 2, (len(date12),) + shape).astype(np.float32)
    phase[rng.random(phase.shape) < 0.05] = 0  # no-data
    phase[2, 4:9, 5:12] += 2 * np.pi  # an unwrapping error: non-zero integer closures
    phase[6, 3, 4] = 0  # no data at the reference pixel: left out of the stacking velocity
    keep = np.ones(len(date12), bool)
    keep[4] = False
    wd = WorkDir(tmp_path / "wd")
    wd.inputs.mkdir(parents=True)
    make_stack(wd.stack, date12, shape=shape, keep=keep, ref=(3, 4), unwrapPhase=phase)
    sep = tmp_path / "separate"
    sep.mkdir()
    averages.write_stacking_velocity(wd.stack, sep)
    closure.write_num_nonzero_integer_closure(wd.stack, sep)
    outputs = averages.quick_overview(wd, ComputeOptions(max_memory=memory, num_worker=workers))
    assert sorted(p.name for p in outputs) == sorted(p.name for p in sep.iterdir())
    for name, key in (("avgPhaseVelocity.h5", "velocity"), ("numTriNonzeroIntAmbiguity.h5", "mask")):
        with h5py.File(wd.root / name) as a, h5py.File(sep / name) as b:
            np.testing.assert_array_equal(a[key][()], b[key][()])
            assert dict(a.attrs) == dict(b.attrs)
    assert (wd.root / closure.TRIPLET_STATS_FILE).read_text() == (sep / closure.TRIPLET_STATS_FILE).read_text()
    with h5py.File(wd.root / "numTriNonzeroIntAmbiguity.h5") as f:
        assert f["mask"][()].max() > 0
