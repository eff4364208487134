"""``sbts load`` appends new acquisitions: only the new pairs' files are read and the stack equals a
fresh load of all pairs bit for bit (issue 18 §1).  Synthetic PyRate/GAMMA GeoTIFF stack on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("osgeo.gdal")

from sbts.core.config.template import Template  # noqa: E402
from sbts.core.demo.synthetic import make_synthetic_stack  # noqa: E402
from sbts.core.errors import InputError  # noqa: E402
from sbts.core.io.provenance import PROVENANCE_KEYS  # noqa: E402
from sbts.core.steps import load as load_mod  # noqa: E402
from sbts.core.steps.load import load_data, read_update_record, record_path  # noqa: E402
from sbts.tests.e2e.formats import geotiff  # noqa: E402


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The whole stack in GeoTIFFs, and the files of the last date moved aside ('not yet acquired')."""
    root = tmp_path_factory.mktemp("gtiff")
    synth = make_synthetic_stack(shape=(18, 22), num_date=9, seed=4)
    cfg = geotiff.write(root, synth)
    last = synth.date_list[-1]
    held = root / "held"
    held.mkdir()
    late = [p for p in root.rglob("*") if p.is_file() and last in p.name and "held" not in p.parts]
    assert late
    return root, cfg, synth, late, held


def _template(cfg: Path) -> Template:
    return Template.read(cfg)


def _datasets(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        data = {k: f[k][()] for k in f}
        attrs = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()
                 if k not in PROVENANCE_KEYS}
    return {"data": data, "attrs": attrs}


def _hide(late, held):
    for p in late:
        shutil.move(str(p), held / f"{p.parent.name}__{p.name}")


def _restore(late, held):
    for p in late:
        shutil.move(str(held / f"{p.parent.name}__{p.name}"), p)


def test_append_equals_fresh_load_and_reads_only_new_files(written, tmp_path, monkeypatch):
    root, cfg, synth, late, held = written
    t = _template(cfg)
    old_wd, fresh_wd = tmp_path / "old", tmp_path / "fresh"
    _hide(late, held)
    try:
        load_data(t, old_wd, base_dir=cfg.parent)
    finally:
        _restore(late, held)
    assert read_update_record(old_wd / "inputs/ifgramStack.h5") is None  # loaded whole
    load_data(t, fresh_wd, base_dir=cfg.parent)

    # count the layer reads of the append: only the new pairs' files are opened for data
    reads: list[str] = []
    real = load_mod._read_layer

    def counting(layer, src, path, name, reader=""):
        reads.append(f"{path}:{name}")
        return real(layer, src, path, name, reader)

    monkeypatch.setattr(load_mod, "_read_layer", counting)
    copied: list[bool] = []  # the old pairs go over as raw chunks (no decoding) ...
    real_copy = load_mod._copy_chunks
    monkeypatch.setattr(load_mod, "_copy_chunks", lambda *a: copied.append(real_copy(*a)) or copied[-1])
    load_data(t, old_wd, base_dir=cfg.parent)
    assert copied and all(copied)  # ... and the file is still a fresh load's, bit for bit (below)
    last = synth.date_list[-1]
    stack_reads = [r for r in reads if ":unwrapPhase" in r or ":coherence" in r]
    new_pairs = [f"{a}_{b}" for a, b, _ in geotiff.pairs(synth) if b == last]
    assert len(new_pairs) >= 2
    assert stack_reads and all(last in r for r in stack_reads)
    assert len({r for r in stack_reads if ":unwrapPhase" in r}) == len(new_pairs)

    appended, fresh = _datasets(old_wd / "inputs/ifgramStack.h5"), _datasets(fresh_wd / "inputs/ifgramStack.h5")
    assert appended["attrs"] == fresh["attrs"]
    assert sorted(appended["data"]) == sorted(fresh["data"])
    for name, value in fresh["data"].items():  # bit for bit
        assert appended["data"][name].dtype == value.dtype
        assert appended["data"][name].tobytes() == value.tobytes(), name

    update = read_update_record(old_wd / "inputs/ifgramStack.h5")
    assert update is not None
    assert update["new_pairs"] == sorted(new_pairs)
    assert update["new_dates"] == [last]
    assert len(update["old_pairs"]) == len(synth.date1_index) - len(new_pairs)
    # a second load reads nothing and keeps the record
    reads.clear()
    assert load_data(t, old_wd, base_dir=cfg.parent).skipped
    assert not reads
    assert read_update_record(old_wd / "inputs/ifgramStack.h5") == update


def test_disappeared_pair_is_an_error(written, tmp_path):
    root, cfg, synth, late, held = written
    t = _template(cfg)
    wd = tmp_path / "wd"
    load_data(t, wd, base_dir=cfg.parent)
    unw = sorted((root / "geotiffs").glob("*_unw.tif"))[1]
    gone = unw.name.split("_")[1].replace("-", "_")
    moved = held / unw.name
    shutil.move(str(unw), moved)
    try:
        with pytest.raises(InputError, match=gone):
            load_data(t, wd, base_dir=cfg.parent)
    finally:
        shutil.move(str(moved), unw)


def test_changed_old_file_reloads_everything(written, tmp_path, monkeypatch):
    """A source file of the stack changed since it was loaded: no copy, every pair is read again."""
    root, cfg, synth, late, held = written
    t = _template(cfg)
    wd = tmp_path / "wd"
    _hide(late, held)
    try:
        load_data(t, wd, base_dir=cfg.parent)
    finally:
        _restore(late, held)
    record = json.loads(record_path(wd / "inputs/ifgramStack.h5").read_text())
    first = sorted(record["files"])[0]
    record["files"][first][1] -= 1  # as if it was rewritten after the load
    record_path(wd / "inputs/ifgramStack.h5").write_text(json.dumps(record))
    reads: list[str] = []
    real = load_mod._read_layer
    monkeypatch.setattr(load_mod, "_read_layer",
                        lambda layer, src, path, name, reader="": reads.append(path) or real(layer, src, path, name, reader))
    load_data(t, wd, base_dir=cfg.parent)
    assert len({r for r in reads if r.endswith("_unw.tif")}) == len(synth.date1_index)
    assert read_update_record(wd / "inputs/ifgramStack.h5") is None
    np.testing.assert_array_equal(h5py.File(wd / "inputs/ifgramStack.h5", "r")["unwrapPhase"].shape[0],
                                  len(synth.date1_index))
