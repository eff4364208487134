"""The kernel pieces of the application: one work-directory finder, the one in-place writer of the
stack and its content versions, provenance, compute options and the memory budget."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB, ComputeOptions
from sbts.core.config.template import Template
from sbts.core.errors import TemplateError
from sbts.core.io.blocks import Budget, pixel_bytes, plan_blocks, plan_blocks_for
from sbts.core.io.products import StackWriter, write_map
from sbts.core.io.provenance import Provenance, file_versions, read_provenance, recording, relevant
from sbts.core.io.stack_editor import StackEditor
from sbts.core.io.workdir import WorkDir, find_companion, find_geometry
from sbts.core.model.metadata import Grid, Metadata, RadarInfo
from sbts.core.model.pairs import Pairs

DATE12 = ["20200101_20200113", "20200101_20200125", "20200113_20200125"]
SHAPE = (6, 5)


def _stack(path, step="load_data"):
    meta = Metadata(grid=Grid(*SHAPE), radar=RadarInfo(wavelength=0.0555))
    with recording(Provenance(step, {"demo": 1})):
        with StackWriter(path, meta, Pairs.from_date12(DATE12), ["unwrapPhase"]) as w:
            w.write("unwrapPhase", np.ones((len(DATE12),) + SHAPE, np.float32))
    return path


def _map(path):
    write_map(path, Metadata(grid=Grid(*SHAPE)), "mask", {"mask": np.ones(SHAPE, bool)})
    return path


# ---------------------------------------------------------------------------- finder
def test_one_search_order_for_the_geometry(tmp_path):
    work = WorkDir(tmp_path)
    work.inputs.mkdir()
    stack = _stack(work.stack)
    assert find_geometry(stack, tmp_path) is None and work.geometry() is None
    _map(tmp_path / "geometryGeo.h5")  # in the work dir itself
    assert work.geometry() == tmp_path / "geometryGeo.h5"
    _map(work.inputs / "geometryGeo.h5")  # beside the stack wins
    _map(work.inputs / "geometryRadar.h5")  # and the radar one first among names in one folder
    assert work.geometry() == work.inputs / "geometryRadar.h5"
    assert work.geometry(names=("geometryGeo.h5",)) == work.inputs / "geometryGeo.h5"
    assert work.geometry(accept=lambda p: p.name != "geometryRadar.h5") == work.inputs / "geometryGeo.h5"
    # a geocoded product in geo/ finds the geometry of the work directory, geocoded copies first
    (tmp_path / "geo").mkdir()
    product = _map(tmp_path / "geo" / "geo_velocity.h5")
    assert find_geometry(product, geocoded=True) == tmp_path / "inputs" / "geometryGeo.h5"
    _map(tmp_path / "geo" / "geo_geometryRadar.h5")
    assert find_geometry(product, geocoded=True) == tmp_path / "geo" / "geo_geometryRadar.h5"
    # companions: geo_ names first for a geocoded file, never the file itself
    _map(tmp_path / "maskTempCoh.h5")
    assert find_companion(product, "maskTempCoh.h5") == tmp_path / "maskTempCoh.h5"
    _map(tmp_path / "geo" / "geo_maskTempCoh.h5")
    assert find_companion(product, "maskTempCoh.h5") == tmp_path / "geo" / "geo_maskTempCoh.h5"
    assert work.chain(["ramp", "demErr"])[-1] == tmp_path / "timeseries_ramp_demErr.h5"


# ---------------------------------------------------------------------------- stack editor
def test_stack_editor_records_who_wrote_each_part(tmp_path):
    stack = _stack(tmp_path / "ifgramStack.h5")
    before = file_versions(stack)
    assert before["content"][1] == "load_data" and "reference" in before and "dropIfgram" in before
    editor = StackEditor(stack, step="modify_network")
    assert editor.set_drop(np.array([True, True, True])) is False  # unchanged: the file is not touched
    assert file_versions(stack) == before
    assert editor.set_drop(np.array([True, False, True])) is True
    after = file_versions(stack)
    assert after["dropIfgram"][1] == "modify_network" and after["dropIfgram"][0] != before["dropIfgram"][0]
    assert after["content"] == before["content"]
    StackEditor(stack, step="reference_point").set_reference(2, 3)
    assert StackEditor(stack).set_reference(2, 3) is False  # same point: untouched
    with recording(Provenance("correct_unwrap_error")):  # inside a run the running step is recorded
        StackEditor(stack, step="ignored").write_dataset("unwrapPhase_x", lambda ds: ds.__setitem__(Ellipsis, 2.0))
    v = file_versions(stack)
    assert v["reference"][1] == "reference_point" and v["data:unwrapPhase_x"][1] == "correct_unwrap_error"
    with h5py.File(stack) as f:
        np.testing.assert_array_equal(f["unwrapPhase_x"][()], 2.0)
        assert f["unwrapPhase"].attrs.get("SBTS_INCOMPLETE") is None
    # what each step depends on: the parts written before it in the plan (or by no known step)
    plan = ["load_data", "modify_network", "reference_point", "quick_overview", "correct_unwrap_error",
            "invert_network"]
    parts = {s: set(relevant(v, set(plan[:i]), s)) for i, s in enumerate(plan)}
    assert parts["modify_network"] == {"content"}
    assert parts["reference_point"] == {"content", "dropIfgram"}
    assert parts["quick_overview"] == {"content", "dropIfgram", "reference"}
    assert parts["invert_network"] == {"content", "dropIfgram", "reference", "data:unwrapPhase_x"}


def test_products_carry_the_provenance_of_the_step_that_writes_them(tmp_path):
    stack = _stack(tmp_path / "ifgramStack.h5")
    inputs = {"ifgramStack.h5": relevant(file_versions(stack), set(), "x")}
    with recording(Provenance("quick_overview", {"a": (1, 2)}, inputs)):
        out = _map(tmp_path / "avg.h5")
    prov = read_provenance(out)
    assert prov["step"] == "quick_overview" and prov["options"] == {"a": [1, 2]} and prov["inputs"] == inputs
    assert prov["sbts"] and len(prov["options_digest"]) == 16
    # an input's provenance never leaks into the output written from its metadata
    from sbts.core.io.h5 import read_metadata

    out2 = tmp_path / "copy.h5"
    write_map(out2, read_metadata(stack), "mask", {"mask": np.ones(SHAPE, bool)})
    with h5py.File(out2) as f:
        assert "SBTS_PROVENANCE" not in f.attrs and "SBTS_VERSIONS" not in f.attrs
    # files sbts did not write are versioned by time and size; text files by content
    text = tmp_path / "dates.txt"
    text.write_text("20200101\n")
    v1 = file_versions(text)
    os.utime(text, ns=(1, 1))
    assert file_versions(text) == v1 and v1["file"][1] is None
    assert json.loads(json.dumps(file_versions(tmp_path / "missing.h5"))) == {}


# ---------------------------------------------------------------------------- compute options, budget
def test_compute_options_one_default_and_one_precedence():
    assert ComputeOptions().max_memory == DEFAULT_MAX_MEMORY_GB == 4.0
    t = Template({"mintpy.compute.maxMemory": "0.5", "mintpy.compute.numWorker": "3"}, warn_unknown=False)
    c = ComputeOptions.from_template(t)
    assert (c.max_memory, c.num_worker, c.cluster) == (0.5, 3, None)
    c = ComputeOptions.from_template(t, max_memory=2, num_worker="1", cluster="local")
    assert (c.max_memory, c.num_worker, c.cluster) == (2.0, 1, "local")
    assert ComputeOptions.from_template(Template()).max_memory == 4.0  # auto = MintPy's 4 GB
    with pytest.raises(TemplateError, match="numWorker"):
        ComputeOptions.from_template(Template({"mintpy.compute.numWorker": "0"}, warn_unknown=False))


def test_budget_helper_plans_the_same_blocks_as_by_hand():
    n = 30
    assert pixel_bytes(n, 4, copies=3, extra=16) == n * 4 * 3 + 16
    shape, gb = (500, 400), 1e-3
    assert plan_blocks_for(shape, pixel_bytes(n, 4, 3), Budget(gb)) == plan_blocks(shape, n * 4 * 3, gb)
    assert plan_blocks_for(shape, 12, gb, (16, 400)) == Budget(gb).blocks(shape, 12, (16, 400))
    assert Budget(1.0).count(1024**3 / 10) == 10 and Budget(1e-12).count(10) == 1
    assert Budget(2.0).share(0.25).gb == 0.5
