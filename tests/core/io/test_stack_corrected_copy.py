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


def _never(ds):
    raise AssertionError("no layer to fill")


def test_nothing_changed_maps_onto_the_source_without_copy(tmp_path):
    path, phase = _stack(tmp_path / "ifgramStack.h5")
    size = path.stat().st_size
    StackEditor(path, step="correct_unwrap_error").write_corrected_copy(
        "unwrapPhase_phaseClosure", "unwrapPhase", np.array([], int), _never, attrs={"KEY": "v1"})
    with h5py.File(path, "r") as f:
        out = f["unwrapPhase_phaseClosure"]
        np.testing.assert_array_equal(out[()], phase)
        np.testing.assert_array_equal(out[[0, 2, 4], 3:9, 5:7], phase[[0, 2, 4], 3:9, 5:7])
        assert out.is_virtual and [(v.file_name, v.dset_name) for v in out.virtual_sources()] == [(".", "unwrapPhase")]
        # attributes of its own, not the source's
        assert out.attrs["KEY"] == "v1" and out.attrs["UNIT"] == "radian" and "SBTS_INCOMPLETE" not in out.attrs
        assert "SOMETHING_OF_THE_SOURCE" not in out.attrs and "KEY" not in f["unwrapPhase"].attrs
        assert not [n for n in f if n.endswith(("__sbts_tmp", "__sbts_old"))]
    assert file_versions(path)["data:unwrapPhase_phaseClosure"][1] == "correct_unwrap_error"
    assert path.stat().st_size < size + phase.nbytes // 2  # attributes only, no copy of the data
    assert not list(tmp_path.glob(".*.h5"))

    # the work directory moved: "." is the file itself wherever it is
    moved = tmp_path / "elsewhere" / "ifgramStack.h5"
    moved.parent.mkdir()
    path.rename(moved)
    with h5py.File(moved, "r") as f:
        np.testing.assert_array_equal(f["unwrapPhase_phaseClosure"][()], phase)

    # a rerun that changes layers never writes through the mapping: a stored copy replaces it and
    # the loaded phase stays as it was
    StackEditor(moved).write_corrected_copy("unwrapPhase_phaseClosure", "unwrapPhase", np.array([2]),
                                            _fill_with(phase[2:3] + 1), attrs={"KEY": "v2"})
    with h5py.File(moved, "r") as f:
        np.testing.assert_array_equal(f["unwrapPhase"][()], phase)
        out = f["unwrapPhase_phaseClosure"]
        assert not out.is_virtual and out.attrs["KEY"] == "v2"
        np.testing.assert_array_equal(out[2], phase[2] + 1)
        np.testing.assert_array_equal(out[[0, 1, 3, 4]], phase[[0, 1, 3, 4]])

    # and back to nothing changed: the stored dataset is rewritten in place (no growth), still stored
    size = moved.stat().st_size
    StackEditor(moved).write_corrected_copy("unwrapPhase_phaseClosure", "unwrapPhase", np.array([], int), _never)
    with h5py.File(moved, "r") as f:
        assert not f["unwrapPhase_phaseClosure"].is_virtual
        np.testing.assert_array_equal(f["unwrapPhase_phaseClosure"][()], phase)
    assert moved.stat().st_size < size + phase.nbytes // 2


def test_a_virtual_output_is_replaced_not_written_through(tmp_path):
    """write_dataset (bridging) over a name that is virtual: a stored dataset replaces it; the
    dataset it mapped onto is untouched."""
    path, phase = _stack(tmp_path / "ifgramStack.h5")
    StackEditor(path).write_corrected_copy("unwrapPhase_bridging", "unwrapPhase", np.array([], int), _never)
    StackEditor(path).write_dataset("unwrapPhase_bridging", _fill_with(phase * 2))
    with h5py.File(path, "r") as f:
        assert not f["unwrapPhase_bridging"].is_virtual
        np.testing.assert_array_equal(f["unwrapPhase_bridging"][()], phase * 2)
        np.testing.assert_array_equal(f["unwrapPhase"][()], phase)


def test_mintpy_reads_the_mapped_dataset(tmp_path, mintpy_oracle):
    path, phase = _stack(tmp_path / "ifgramStack.h5")
    StackEditor(path).write_corrected_copy("unwrapPhase_phaseClosure", "unwrapPhase", np.array([], int), _never)
    proc = mintpy_oracle.python(
        "from mintpy.utils import readfile; import numpy as np; "
        f"d, _ = readfile.read({str(path)!r}, datasetName='unwrapPhase_phaseClosure-20200113_20200206'); "
        "np.save('out.npy', d)", cwd=tmp_path)
    assert proc.returncode == 0
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), phase[3])


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


def test_nothing_changed_over_a_virtual_source_maps_alike(tmp_path):
    """A stack appended in parts (its phase virtual): a correction that changed nothing is a virtual
    dataset with the very mapping of its source (the same parts and layers), not a copy."""
    from sbts.core.io.stack_parts import mapping_of

    part, phase = _stack(tmp_path / "part.h5")
    path = tmp_path / "ifgramStack.h5"
    layout = h5py.VirtualLayout(shape=phase.shape, dtype=np.float32)
    layout[0:3] = h5py.VirtualSource("./part.h5", "unwrapPhase", shape=phase.shape)[0:3]
    layout[3:5] = h5py.VirtualSource("./part.h5", "unwrapPhase", shape=phase.shape)[3:5]
    with h5py.File(path, "w") as f:
        f.attrs.update({"LENGTH": SHAPE[0], "WIDTH": SHAPE[1]})
        f.create_virtual_dataset("unwrapPhase", layout)
    StackEditor(path).write_corrected_copy("unwrapPhase_phaseClosure", "unwrapPhase", np.array([], int), _never)
    with h5py.File(path, "r") as f:
        out = f["unwrapPhase_phaseClosure"]
        assert out.is_virtual and mapping_of(out) == mapping_of(f["unwrapPhase"])
        assert [r[0] for r in mapping_of(out)] == ["./part.h5", "./part.h5"]
        np.testing.assert_array_equal(out[()], phase)
