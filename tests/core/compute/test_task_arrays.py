"""Image-sized arrays shared by a step's tasks (sbts.core.compute.task_arrays): by value in one process,
by file for the pool and dask (only paths pickled), the scratch folder removed afterwards."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sbts.core.compute.task_arrays import TaskArrays, task_arrays


def test_in_one_process_the_arrays_themselves(tmp_path):
    land = np.ones((4, 5), bool)
    with task_arrays({"land": land}, tmp_path / "out.h5", apart=False) as shared:
        assert shared["land"] is land and "land" in shared and "height" not in shared
        with pytest.raises(RuntimeError, match="apart=True"):
            pickle.dumps(shared)
    assert list(tmp_path.iterdir()) == []


def test_apart_by_file_small_pickles_and_nothing_left(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"height": rng.normal(size=(300, 400)), "land": rng.random((300, 400)) > 0.5}
    with task_arrays(arrays, tmp_path / "inputs" / "ERA5.h5", apart=True) as shared:
        payload = pickle.dumps(shared)
        assert len(payload) < 1000  # paths, not the 1 MB of heights
        other = pickle.loads(payload)  # what a worker gets
        for name, value in arrays.items():
            np.testing.assert_array_equal(other[name], value)
            assert other[name].dtype == value.dtype
        assert [p.name.startswith(".ERA5_task_arrays_") for p in (tmp_path / "inputs").iterdir()] == [True]
    assert list((tmp_path / "inputs").iterdir()) == []
    assert isinstance(shared, TaskArrays)


def test_no_arrays_travel_by_value(tmp_path):
    with task_arrays({}, tmp_path / "out.h5", apart=False) as shared:
        other = pickle.loads(pickle.dumps(shared))
        assert "mask" not in other
    assert list(tmp_path.iterdir()) == []
