"""Product.read_points: the layers of a 3-D dataset at scattered pixels (phase closure's samples), by
one HDF5 point selection per batch, or row by row for a virtual dataset: the stored values exactly."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from sbts.core.io.products import IfgramStack, StackWriter
from sbts.core.model.metadata import Grid, Metadata, RadarInfo
from sbts.core.model.pairs import Pairs

DATE12 = ["20200101_20200113", "20200101_20200125", "20200113_20200125", "20200113_20200206",
          "20200125_20200206", "20200206_20200218"]
SHAPE = (37, 23)


@pytest.fixture
def stack(tmp_path):
    rng = np.random.default_rng(2)
    phase = rng.normal(size=(len(DATE12),) + SHAPE).astype(np.float32)
    path = tmp_path / "ifgramStack.h5"
    with StackWriter(path, Metadata(grid=Grid(*SHAPE), radar=RadarInfo(wavelength=0.0555)),
                     Pairs.from_date12(DATE12), ["unwrapPhase"]) as w:
        w.write("unwrapPhase", phase)
    return path, phase


def _points():
    rng = np.random.default_rng(3)
    pix = rng.choice(SHAPE[0] * SHAPE[1], 40, replace=False)  # in no particular order
    ys, xs = np.unravel_index(pix, SHAPE)
    return np.r_[ys, ys[:3]], np.r_[xs, xs[:3]]  # a pixel twice is read twice


@pytest.mark.parametrize("index", [np.arange(6), np.array([4, 0, 2]), np.array([True, False] * 3)])
def test_points_are_the_stored_values(stack, index):
    path, phase = stack
    ys, xs = _points()
    got = IfgramStack(path).read_points("unwrapPhase", index, ys, xs, max_points=17)  # several batches
    layers = np.flatnonzero(index) if index.dtype == bool else index
    expected = phase[layers][:, ys, xs]
    assert got.dtype == np.float32 and got.tobytes() == expected.tobytes()


def test_points_of_a_virtual_dataset(stack, tmp_path):
    path, phase = stack
    layout = h5py.VirtualLayout(shape=phase.shape, dtype=np.float32)
    layout[:] = h5py.VirtualSource(".", "unwrapPhase", shape=phase.shape)
    with h5py.File(path, "r+") as f:
        f.create_virtual_dataset("unwrapPhase_phaseClosure", layout)
    ys, xs = _points()
    got = IfgramStack(path).read_points("unwrapPhase_phaseClosure", np.array([5, 1]), ys, xs)
    assert got.tobytes() == phase[[5, 1]][:, ys, xs].tobytes()


def test_points_outside_the_image_are_an_error(stack):
    path, _ = stack
    with pytest.raises(ValueError, match="out of range"):
        IfgramStack(path).read_points("unwrapPhase", np.arange(2), np.array([SHAPE[0]]), np.array([0]))
