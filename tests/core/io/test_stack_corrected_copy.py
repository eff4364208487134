"""StackEditor.write_corrected_copy: a stack dataset written as a copy of another with a few layers
changed (the phase-closure correction), new or rewritten in place, never through a virtual source."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from sbts.core.io.products import StackWriter
from sbts.core.io.provenance import file_versions
from sbts.core.io.stack_editor import StackEditor
from sbts.core.model.metadata import Grid, Metadata, RadarInfo
from sbts.core.model.pairs import Pairs

DATE12 = ["20200101_20200113", "20200101_20200125", "20200113_20200125", "20200113_20200206",
          "20200125_20200206"]
SHAPE = (40, 30)


def _stack(path):
    phase = np.random.default_rng(1).normal(size=(len(DATE12),) + SHAPE).astype(np.float32)
    with StackWriter(path, Metadata(grid=Grid(*SHAPE), radar=RadarInfo(wavelength=0.0555)),
                     Pairs.from_date12(DATE12), ["unwrapPhase"]) as w:
        w.write("unwrapPhase", phase)
    with h5py.File(path, "r+") as f:
        f["unwrapPhase"].attrs["SOMETHING_OF_THE_SOURCE"] = "x"
    return path, phase


def _fill_with(values):
    def fill(ds):
        ds[...] = values
    return fill


def test_new_then_in_place_only_the_changed_layers_differ(tmp_path):
    path, phase = _stack(tmp_path / "ifgramStack.h5")
    changed = np.array([1, 3])
    shifted = phase[changed] + np.float32(2 * np.pi)
    StackEditor(path, step="correct_unwrap_error").write_corrected_copy(
        "unwrapPhase_phaseClosure", "unwrapPhase", changed, _fill_with(shifted), attrs={"KEY": "v1"})
    expected = phase.copy()
    expected[changed] = shifted
    with h5py.File(path, "r") as f:
        out = f["unwrapPhase_phaseClosure"]
        np.testing.assert_array_equal(out[()], expected)
        assert not out.is_virtual and out.chunks == f["unwrapPhase"].chunks
        assert out.attrs["UNIT"] == "radian" and out.attrs["KEY"] == "v1" and "MODIFICATION_TIME" in out.attrs
        assert "SOMETHING_OF_THE_SOURCE" not in out.attrs and "SBTS_INCOMPLETE" not in out.attrs
        assert not [n for n in f if n.endswith(("__sbts_tmp", "__sbts_old"))]
        np.testing.assert_array_equal(f["unwrapPhase"][()], phase)  # the source untouched
    assert file_versions(path)["data:unwrapPhase_phaseClosure"][1] == "correct_unwrap_error"
    assert not list(tmp_path.glob(".*.h5"))  # no scratch file left
    size = path.stat().st_size

    # a rerun with other layers: rewritten in place (the file does not grow), the old changes gone
    StackEditor(path).write_corrected_copy("unwrapPhase_phaseClosure", "unwrapPhase", np.array([0]),
                                           _fill_with(phase[:1] - 1), attrs={"KEY": "v2"})
    expected = phase.copy()
    expected[0] -= 1
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["unwrapPhase_phaseClosure"][()], expected)
        assert f["unwrapPhase_phaseClosure"].attrs["KEY"] == "v2"
    assert path.stat().st_size < size + phase.nbytes // 2  # attributes only, not another copy of the data


def test_nothing_changed_is_a_copy_without_scratch(tmp_path):
    path, phase = _stack(tmp_path / "ifgramStack.h5")

    def never(ds):
        raise AssertionError("no layer to fill")

    StackEditor(path).write_corrected_copy("unwrapPhase_phaseClosure", "unwrapPhase", np.array([], int), never)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["unwrapPhase_phaseClosure"][()], phase)


def test_a_virtual_source_is_refused(tmp_path):
    path, phase = _stack(tmp_path / "ifgramStack.h5")
    layout = h5py.VirtualLayout(shape=phase.shape, dtype=np.float32)
    layout[:] = h5py.VirtualSource(str(path), "unwrapPhase", shape=phase.shape)
    with h5py.File(path, "r+") as f:
        f.create_virtual_dataset("unwrapPhaseVirtual", layout)
    with pytest.raises(ValueError, match="virtual"):
        StackEditor(path).write_corrected_copy("out", "unwrapPhaseVirtual", np.array([0]), _fill_with(phase[:1]))
    with h5py.File(path, "r") as f:
        assert "out" not in f
