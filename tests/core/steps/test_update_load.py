"""``sbts load`` appends new acquisitions: only the new pairs' files are read and the stack equals a
fresh load of all pairs bit for bit (issue 18 §1).  Synthetic PyRate/GAMMA GeoTIFF stack on disk."""

from __future__ import annotations

import glob
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("osgeo.gdal")

from sbts.core.config.template import Template  # noqa: E402
from sbts.core.demo.synthetic import make_synthetic_stack  # noqa: E402
from sbts.core.errors import InputError  # noqa: E402
from sbts.core.io.load_record import read_update_record, record_path  # noqa: E402
from sbts.core.io.provenance import PROVENANCE_KEYS  # noqa: E402
from sbts.core.steps import load as load_mod  # noqa: E402
from sbts.core.steps.load import load_data  # noqa: E402
from sbts.tests.e2e.formats import geotiff  # noqa: E402
from sbts.tests.e2e.formats._common import hold_back, stamps  # noqa: E402


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


def _template(cfg: Path, in_parts: bool = True) -> Template:
    """The format's template; ``in_parts``: with the update switch, which makes appends go in parts."""
    if not in_parts:
        return Template.read(cfg)
    parts_cfg = cfg.with_name("parts.cfg")
    parts_cfg.write_text(cfg.read_text() + "\nsbts.networkInversion.updateStore = yes\n")
    return Template.read(parts_cfg)


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


def _load_without(late, held, t, wd, cfg):
    """Load into ``wd`` as if the files ``late`` had not arrived yet."""
    _hide(late, held)
    try:
        load_data(t, wd, base_dir=cfg.parent)
    finally:
        _restore(late, held)


def test_append_equals_fresh_load_and_reads_only_new_files(written, tmp_path, monkeypatch):
    root, cfg, synth, late, held = written
    t = _template(cfg)
    old_wd, fresh_wd = tmp_path / "old", tmp_path / "fresh"
    _load_without(late, held, t, old_wd, cfg)
    assert read_update_record(old_wd / "inputs/ifgramStack.h5") is None  # loaded whole
    load_data(t, fresh_wd, base_dir=cfg.parent)

    # count the layer reads of the append: only the new pairs' files are opened for data
    reads: list[str] = []
    real = load_mod._read_layer

    def counting(layer, src, path, name, reader=""):
        reads.append(f"{path}:{name}")
        return real(layer, src, path, name, reader)

    monkeypatch.setattr(load_mod, "_read_layer", counting)
    copied: list[bool] = []
    real_copy = load_mod._copy_chunks
    monkeypatch.setattr(load_mod, "_copy_chunks", lambda *a: copied.append(real_copy(*a)) or copied[-1])
    whole = old_wd / "inputs/ifgramStack.h5"
    inode = whole.stat().st_ino
    geometry = stamps(old_wd / "inputs", "geometry*.h5")
    load_data(t, old_wd, base_dir=cfg.parent)
    assert stamps(old_wd / "inputs", "geometry*.h5") == geometry  # the geometry is not loaded again
    # the stack is not copied: the old file becomes the first part (a hard link), the tail from the
    # first new pair on is the second, and the stack's 3-D datasets map onto them ...
    assert not copied
    parts = sorted((old_wd / "inputs/ifgramStack_parts").iterdir())
    assert len(parts) == 2 and inode in {p.stat().st_ino for p in parts}
    with h5py.File(whole, "r") as f:
        assert f["unwrapPhase"].is_virtual and f["coherence"].is_virtual
        assert not f["date"].is_virtual
        assert {v.file_name for v in f["unwrapPhase"].virtual_sources()} == {
            f"./ifgramStack_parts/{p.name}" for p in parts}
    # ... and it is still a fresh load's, bit for bit (below)
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


def test_without_the_update_switch_an_append_copies_the_stack(written, tmp_path, monkeypatch):
    """Without ``sbts.networkInversion.updateStore`` the appended stack stays one self-contained file:
    the old pairs go over as raw chunks (no decoding), the new ones are read, no part is written."""
    root, cfg, synth, late, held = written
    t = _template(cfg, in_parts=False)
    wd, fresh = tmp_path / "wd", tmp_path / "fresh"
    _load_without(late, held, t, wd, cfg)
    copied: list[bool] = []
    real_copy = load_mod._copy_chunks
    monkeypatch.setattr(load_mod, "_copy_chunks", lambda *a: copied.append(real_copy(*a)) or copied[-1])
    load_data(t, wd, base_dir=cfg.parent)
    assert copied and all(copied)
    assert not (wd / "inputs/ifgramStack_parts").exists()
    with h5py.File(wd / "inputs/ifgramStack.h5", "r") as f:
        assert not f["unwrapPhase"].is_virtual
    assert read_update_record(wd / "inputs/ifgramStack.h5")["new_dates"] == [synth.date_list[-1]]
    load_data(t, fresh, base_dir=cfg.parent)
    a, b = _datasets(wd / "inputs/ifgramStack.h5"), _datasets(fresh / "inputs/ifgramStack.h5")
    assert a["attrs"] == b["attrs"] and all(a["data"][k].tobytes() == v.tobytes() for k, v in b["data"].items())


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
    _load_without(late, held, t, wd, cfg)
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


# ------------------------------------------------------------------ appends in parts
@pytest.fixture(scope="module")
def two_late(tmp_path_factory):
    """A stack whose last two dates arrive one after the other: (root, cfg, [files of date -2, of date -1], held)."""
    root = tmp_path_factory.mktemp("gtiff2")
    synth = make_synthetic_stack(shape=(16, 17), num_date=10, seed=7)
    cfg = geotiff.write(root, synth)
    held = root / "held"
    held.mkdir()
    files = [p for p in root.rglob("*") if p.is_file() and "held" not in p.parts]
    last = [p for p in files if synth.date_list[-1] in p.name]
    before = [p for p in files if synth.date_list[-2] in p.name and p not in last]
    assert last and before
    return root, cfg, [before, last], held


def _load_in_steps(cfg, late, held, wd):
    """Load with both late dates missing, then one more date, then all: yields after each load."""
    t = _template(cfg)
    _hide(late[0] + late[1], held)
    try:
        load_data(t, wd, base_dir=cfg.parent)
        yield "first"
        _restore(late[0], held)
        load_data(t, wd, base_dir=cfg.parent)
        yield "second"
    finally:
        _restore([p for p in late[0] + late[1] if not p.exists()], held)
    load_data(t, wd, base_dir=cfg.parent)
    yield "third"


def _same_as_fresh(path: Path, fresh: Path) -> None:
    a, b = _datasets(path), _datasets(fresh)
    assert a["attrs"] == b["attrs"]
    assert sorted(a["data"]) == sorted(b["data"])
    for name, value in b["data"].items():
        assert a["data"][name].tobytes() == value.tobytes(), name


def test_successive_appends_chain_parts_and_drop_unused_ones(two_late, tmp_path):
    root, cfg, late, held = two_late
    fresh = tmp_path / "fresh"
    load_data(_template(cfg), fresh, base_dir=cfg.parent)
    wd = tmp_path / "wd"
    stack = wd / "inputs/ifgramStack.h5"
    for stage in _load_in_steps(cfg, late, held, wd):
        if stage == "second":
            first_parts = {p.name for p in (wd / "inputs/ifgramStack_parts").iterdir()}
            assert len(first_parts) == 2
    # the third stack keeps the first part and the head of the second tail, and adds its own tail;
    # the folder holds exactly the parts the stack names
    parts = {p.name for p in (wd / "inputs/ifgramStack_parts").iterdir()}
    with h5py.File(stack, "r") as f:
        named = {v.file_name for v in f["unwrapPhase"].virtual_sources()}
    assert {f"./ifgramStack_parts/{p}" for p in parts} == named
    assert first_parts < parts and len(parts) == 3
    from sbts.core.tools.info import describe

    assert "virtual: 3 part file(s)" in describe(stack)
    _same_as_fresh(stack, fresh / "inputs/ifgramStack.h5")
    # the work directory can be moved: the parts are named relative to the stack
    moved = tmp_path / "moved"
    shutil.copytree(wd, moved)
    shutil.rmtree(wd)
    _same_as_fresh(moved / "inputs/ifgramStack.h5", fresh / "inputs/ifgramStack.h5")
    # a missing part is an error naming it, never layers read as fill values
    from sbts.core.io.products import IfgramStack

    gone = sorted((moved / "inputs/ifgramStack_parts").iterdir())[0]
    gone.unlink()
    with pytest.raises(InputError, match=f"part ./ifgramStack_parts/{gone.name} is missing"):
        IfgramStack(moved / "inputs/ifgramStack.h5")
    # a whole reload writes an ordinary stack and removes the parts
    load_data(_template(cfg), moved, base_dir=cfg.parent, force=True)
    with h5py.File(moved / "inputs/ifgramStack.h5", "r") as f:
        assert not f["unwrapPhase"].is_virtual
    assert not (moved / "inputs/ifgramStack_parts").exists()
    _same_as_fresh(moved / "inputs/ifgramStack.h5", fresh / "inputs/ifgramStack.h5")


def test_too_many_parts_writes_the_stack_whole(two_late, tmp_path, monkeypatch):
    """Past MAX_PARTS the stack is written whole again, its old pairs copied as raw chunks."""
    from sbts.core.io import stack_parts

    root, cfg, late, held = two_late
    fresh = tmp_path / "fresh"
    load_data(_template(cfg), fresh, base_dir=cfg.parent)
    wd = tmp_path / "wd"
    monkeypatch.setattr(stack_parts, "MAX_PARTS", 1)
    copied: list[bool] = []
    real_copy = load_mod._copy_chunks
    monkeypatch.setattr(load_mod, "_copy_chunks", lambda *a: copied.append(real_copy(*a)) or copied[-1])
    for _ in _load_in_steps(cfg, late, held, wd):
        pass
    assert copied and all(copied)
    with h5py.File(wd / "inputs/ifgramStack.h5", "r") as f:
        assert not f["unwrapPhase"].is_virtual
    assert not (wd / "inputs/ifgramStack_parts").exists()
    _same_as_fresh(wd / "inputs/ifgramStack.h5", fresh / "inputs/ifgramStack.h5")


def test_append_killed_before_the_stack_is_renamed(two_late, tmp_path, monkeypatch):
    """Killed after the tail part was written but before the new stack took its name: the old stack
    is untouched and readable, and the rerun completes the append."""
    root, cfg, late, held = two_late
    fresh = tmp_path / "fresh"
    load_data(_template(cfg), fresh, base_dir=cfg.parent)
    wd = tmp_path / "wd"
    stack = wd / "inputs/ifgramStack.h5"
    real_writer = load_mod.StackWriter

    class Killed(BaseException):
        pass

    def dying(*args, **kwargs):
        if kwargs.get("pieces") is not None:
            raise Killed
        return real_writer(*args, **kwargs)

    t = _template(cfg)
    _load_without(late[1], held, t, wd, cfg)
    before = _datasets(stack)
    monkeypatch.setattr(load_mod, "StackWriter", dying)
    with pytest.raises(Killed):
        load_data(t, wd, base_dir=cfg.parent)
    after = _datasets(stack)
    assert after["attrs"] == before["attrs"]
    assert all(after["data"][k].tobytes() == v.tobytes() for k, v in before["data"].items())
    assert read_update_record(stack) is None
    monkeypatch.setattr(load_mod, "StackWriter", real_writer)
    (wd / "inputs/ifgramStack_parts/stray.h5").write_bytes(b"")  # not named by any stack
    load_data(t, wd, base_dir=cfg.parent)
    _same_as_fresh(stack, fresh / "inputs/ifgramStack.h5")
    assert read_update_record(stack)["new_pairs"]
    with h5py.File(stack, "r") as f:
        named = {v.file_name for v in f["unwrapPhase"].virtual_sources()}
    assert {f"./ifgramStack_parts/{p.name}" for p in (wd / "inputs/ifgramStack_parts").iterdir()} == named


def test_mintpy_reads_a_stack_made_of_parts(two_late, tmp_path, mintpy_oracle):
    """MintPy's own stack reader, started in another folder, reads the appended stack as the fresh load."""
    root, cfg, late, held = two_late
    fresh = tmp_path / "fresh"
    load_data(_template(cfg), fresh, base_dir=cfg.parent)
    wd = tmp_path / "wd"
    for _ in _load_in_steps(cfg, late, held, wd):
        pass
    out = tmp_path / "mintpy.npz"
    code = ("import numpy as np; from mintpy.objects import ifgramStack\n"
            f"s = ifgramStack({str(wd / 'inputs/ifgramStack.h5')!r}); s.open(print_msg=False)\n"
            f"np.savez({str(out)!r}, unw=s.read(datasetName='unwrapPhase', print_msg=False),"
            " coh=s.read(datasetName='coherence', print_msg=False), date12=np.array(s.get_date12_list(dropIfgram=False)))")
    mintpy_oracle.python(code, cwd="/")
    got = np.load(out)
    with h5py.File(fresh / "inputs/ifgramStack.h5", "r") as f:
        np.testing.assert_array_equal(got["unw"], f["unwrapPhase"][()])
        np.testing.assert_array_equal(got["coh"], f["coherence"][()])
        assert [f"{a.decode()}_{b.decode()}" for a, b in f["date"][()]] == list(got["date12"])


def test_a_stack_made_of_parts_takes_in_place_edits(two_late, tmp_path):
    """The steps that edit the stack (drop list, reference point, a corrected phase) work on a stack
    made of parts, and the next append starts from it as from any stack."""
    from sbts.core.io.products import IfgramStack
    from sbts.core.io.stack_editor import StackEditor

    root, cfg, late, held = two_late
    fresh = tmp_path / "fresh"
    load_data(_template(cfg), fresh, base_dir=cfg.parent)
    wd = tmp_path / "wd"
    stack = wd / "inputs/ifgramStack.h5"
    steps = _load_in_steps(cfg, late, held, wd)
    next(steps), next(steps)  # loaded, then appended in parts
    with h5py.File(stack, "r") as f:
        assert f["unwrapPhase"].is_virtual
        unw = f["unwrapPhase"][()]
    editor = StackEditor(stack, step="test")
    keep = np.ones(unw.shape[0], bool)
    keep[1] = False
    assert editor.set_drop(keep)
    assert editor.set_reference(3, 4)

    def fill(ds):
        ds[...] = unw + 1.0

    editor.write_dataset("unwrapPhase_bridging", fill)
    opened = IfgramStack(stack)
    assert not opened.pairs.keep[1] and opened.pairs.keep.sum() == unw.shape[0] - 1
    with h5py.File(stack, "r") as f:
        assert f.attrs["REF_Y"] == "3"
        np.testing.assert_array_equal(f["unwrapPhase_bridging"][()], unw + 1.0)
        np.testing.assert_array_equal(f["unwrapPhase"][()], unw)
    next(steps)  # the next append: the loaded datasets equal a fresh load again
    with h5py.File(stack, "r") as f, h5py.File(fresh / "inputs/ifgramStack.h5", "r") as g:
        for name in ("unwrapPhase", "coherence", "date", "bperp"):
            assert f[name][()].tobytes() == g[name][()].tobytes()


def test_parts_are_kept_when_the_stack_cannot_be_read(tmp_path):
    """Removing unused parts never guesses: a stack that cannot be read keeps every part."""
    from sbts.core.io import stack_parts

    stack = tmp_path / "ifgramStack.h5"
    stack.write_bytes(b"not HDF5")
    part = stack_parts.parts_dir(stack) / "abc.h5"
    part.parent.mkdir()
    part.write_bytes(b"x")
    stack_parts.remove_unused(stack)
    assert part.exists()
    with h5py.File(stack, "w") as f:  # an ordinary stack: no part is needed
        f["unwrapPhase"] = np.zeros((2, 3, 3), np.float32)
    stack_parts.remove_unused(stack)
    assert not part.parent.exists()


@pytest.mark.parametrize("fmt", ["geotiff", "gamma_geo"])
def test_a_changed_dem_loads_the_geometry_again(fmt, tmp_path):
    """The geometry's load signature covers the DEM it reads, also a GeoTIFF DEM the GeoTIFF reader
    hands to the GAMMA-style geometry builder (before, only par files were counted, so a new DEM
    under the same name kept the old heights)."""
    import importlib

    module = importlib.import_module(f"sbts.tests.e2e.formats.{fmt}")
    synth = make_synthetic_stack(shape=(24, 28), num_date=5, seed=3)
    cfg = module.write(tmp_path / fmt, synth)
    t = _template(cfg, in_parts=False)
    wd = tmp_path / "wd"
    load_data(t, wd, base_dir=cfg.parent)
    before = stamps(wd / "inputs", "geometry*.h5")
    with h5py.File(wd / "inputs/geometryGeo.h5", "r") as f:
        height = f["height"][()]
    (dem,) = [Path(p) for p in glob.glob(str(cfg.parent / t.get("mintpy.load.demFile"))) if not p.endswith("par")]
    if dem.suffix == ".tif":
        from osgeo import gdal

        ds = gdal.Open(str(dem), gdal.GA_Update)
        band = ds.GetRasterBand(1)
        band.WriteArray(band.ReadAsArray() + 10)
        ds = band = None
    else:  # GAMMA: headerless big-endian float32
        dem.write_bytes((np.fromfile(dem, ">f4") + 10).astype(">f4").tobytes())
    load_data(t, wd, base_dir=cfg.parent)
    assert stamps(wd / "inputs", "geometry*.h5")["geometryGeo.h5"] != before["geometryGeo.h5"]
    with h5py.File(wd / "inputs/geometryGeo.h5", "r") as f:
        np.testing.assert_allclose(f["height"][()], height + 10, rtol=1e-6)


# an acquisition does not arrive as new files for a MintPy inputs/ folder (one HDF5 stack); geotiff is
# tested above.  ARIA's stack VRTs list every pair: ariaTSsetup rewrites them with the new pairs
# (the writer's list_without gives the listing from before the acquisition)
_ONE_FILE_STACKS = ("mintpy", "geotiff")


@pytest.mark.parametrize("fmt", [f for f in __import__("sbts.tests.e2e.formats", fromlist=["FORMATS"]).FORMATS
                                 if f not in _ONE_FILE_STACKS])
def test_append_in_parts_for_every_reader(fmt, tmp_path):
    """Every processor format whose new acquisition arrives as new files: the append writes only a
    tail part, and the stack (connected components and all) equals a fresh load bit for bit."""
    import importlib

    module = importlib.import_module(f"sbts.tests.e2e.formats.{fmt}")
    synth = make_synthetic_stack(shape=(24, 28), num_date=8, seed=3)
    root = tmp_path / fmt
    cfg = module.write(root, synth)
    arrive = hold_back(root, synth.date_list[-1], tmp_path / "held")
    t = _template(cfg)
    wd, fresh = tmp_path / "wd", tmp_path / "fresh"
    relist = module.list_without(root, synth.date_list[-1]) if hasattr(module, "list_without") else None
    try:
        load_data(t, wd, base_dir=cfg.parent)
    finally:
        arrive()
        if relist:
            relist()
    geometry = stamps(wd / "inputs", "geometry*.h5")
    assert geometry
    load_data(t, wd, base_dir=cfg.parent)
    update = read_update_record(wd / "inputs/ifgramStack.h5")
    assert update is not None and update["new_dates"] == [synth.date_list[-1]]
    # the new acquisition's files (GAMMA's pars among them) leave the geometry as it was: not written again
    assert stamps(wd / "inputs", "geometry*.h5") == geometry
    with h5py.File(wd / "inputs/ifgramStack.h5", "r") as f:
        names = [n for n in ("unwrapPhase", "coherence", "connectComponent") if n in f]
        assert all(f[n].is_virtual for n in names)
    load_data(t, fresh, base_dir=cfg.parent)
    _same_as_fresh(wd / "inputs/ifgramStack.h5", fresh / "inputs/ifgramStack.h5")


@pytest.mark.parametrize("change", ["none", "old pair's file rewritten", "old band points elsewhere"])
def test_a_rewritten_listing_appends_only_when_the_old_pairs_are_read_as_before(change, tmp_path, caplog):
    """ARIA's stack VRTs list every pair and are rewritten by each ariaTSsetup run: the load appends
    when every loaded pair is still read from the same, unchanged per-pair files; an old pair's file
    rewritten (reprocessed), or its band now reading another file, reloads every pair."""
    import logging

    from sbts.tests.e2e.formats import aria_vrt

    synth = make_synthetic_stack(shape=(20, 24), num_date=7, seed=5)
    root = tmp_path / "aria"
    cfg = aria_vrt.write(root, synth)
    last = synth.date_list[-1]
    relist = aria_vrt.list_without(root, last)
    t, wd = _template(cfg), tmp_path / "wd"
    load_data(t, wd, base_dir=cfg.parent)
    relist()
    old = sorted(p for p in (root / "unwrappedPhase").iterdir() if p.suffix == "" and last not in p.name)
    if change == "old pair's file rewritten":
        data = old[0].read_bytes()
        old[0].write_bytes(data[:-4] + bytes(4))  # one pixel reprocessed
    elif change == "old band points elsewhere":
        stack = root / "stack/unwrapStack.vrt"
        text = stack.read_text()
        a, b = old[0].name, old[1].name
        stack.write_text(text.replace(f"/{a}.vrt<", "/@@.vrt<", 1).replace(f"/{b}.vrt<", f"/{a}.vrt<", 1)
                         .replace("/@@.vrt<", f"/{b}.vrt<", 1))
    with caplog.at_level(logging.INFO, logger="sbts.core.steps.load"):
        load_data(t, wd, base_dir=cfg.parent)
    update = read_update_record(wd / "inputs/ifgramStack.h5")
    if change == "none":
        assert update is not None and update["new_dates"] == [last]
        assert "list(s) new pairs; the files of the" in caplog.text
    else:
        assert update is None, change
        assert "loading every pair" in caplog.text
    fresh = tmp_path / "fresh"
    load_data(t, fresh, base_dir=cfg.parent)
    _same_as_fresh(wd / "inputs/ifgramStack.h5", fresh / "inputs/ifgramStack.h5")


@pytest.mark.parametrize("in_parts", [True, False])
def test_append_on_dask_equals_fresh_load(written, tmp_path, in_parts):
    """The new pairs of an append read by dask's workers (``--cluster`` a scheduler's address): in
    parts or copied whole, the stack is still a fresh load's, bit for bit."""
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    from sbts.core.compute import scheduling

    root, cfg, synth, late, held = written
    t = _template(cfg, in_parts=in_parts)
    old_wd, fresh_wd = tmp_path / "old", tmp_path / "fresh"
    _load_without(late, held, t, old_wd, cfg)
    load_data(t, fresh_wd, base_dir=cfg.parent)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        try:
            load_data(t, old_wd, base_dir=cfg.parent, num_worker=2, cluster=cluster.scheduler_address)
        finally:
            scheduling.close_clusters()
    assert (read_update_record(old_wd / "inputs/ifgramStack.h5") or {}).get("new_dates") == [synth.date_list[-1]]
    assert (old_wd / "inputs/ifgramStack_parts").exists() == in_parts
    appended, fresh = _datasets(old_wd / "inputs/ifgramStack.h5"), _datasets(fresh_wd / "inputs/ifgramStack.h5")
    assert appended["attrs"] == fresh["attrs"]
    for name, value in fresh["data"].items():
        assert appended["data"][name].tobytes() == value.tobytes(), name


def _counting_source_parses(monkeypatch):
    """Count the reader's parses of the sources (:func:`load._open_sources`: ``open_stack`` and
    ``open_geometry`` of the reader the load picks)."""
    calls = []
    real = load_mod._open_sources

    def counted(request, registry, processor):
        calls.append(1)
        return real(request, registry, processor)

    monkeypatch.setattr(load_mod, "_open_sources", counted)
    return calls


def test_load_after_its_stale_check_reuses_the_checked_plan(written, tmp_path, monkeypatch):
    """``sbts run`` asks whether the load is stale, then loads: the sources are parsed once, unless a
    source changed in between (then the load parses them again and loads the changed file)."""
    root, cfg, synth, late, held = written
    t = _template(cfg)
    wd = tmp_path / "wd"
    _load_without(late, held, t, wd, cfg)
    calls = _counting_source_parses(monkeypatch)
    assert load_mod.stale_outputs(t, wd, base_dir=cfg.parent)  # the late files are back: stale
    load_data(t, wd, base_dir=cfg.parent)
    assert len(calls) == 1
    assert read_update_record(wd / "inputs/ifgramStack.h5")  # the load appended the new pairs

    # a source touched between the check and the load: planned again, and the load sees it
    calls.clear()
    unw = sorted(p for p in root.rglob("*") if p.is_file() and "held" not in p.parts and p.suffix == ".tif")[0]
    assert not load_mod.stale_outputs(t, wd, base_dir=cfg.parent)
    st = unw.stat()
    os.utime(unw, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_data(t, wd, base_dir=cfg.parent)
    assert len(calls) == 2
    assert not load_mod.stale_outputs(t, wd, base_dir=cfg.parent)  # the load took the touched file in

    # another template between the two: planned again
    calls.clear()
    load_mod._last_plan = None  # the check above kept its plan: start from none
    load_mod.stale_outputs(t, wd, base_dir=cfg.parent)
    load_data(_template(cfg, in_parts=False), wd, base_dir=cfg.parent)
    assert len(calls) == 2


def _files_read(obj, out: set | None = None, seen: set | None = None) -> set[Path]:
    """Every file a layer reads: the ``path`` of each raster reachable from ``obj`` (through
    dataclass fields, attributes, containers, partials and closures, as readers compose layers)."""
    import dataclasses
    import functools
    import types

    out = set() if out is None else out
    seen = set() if seen is None else seen
    if obj is None or isinstance(obj, (str, bytes, int, float, Path, np.ndarray, np.generic, np.dtype, type)) \
            or id(obj) in seen:
        return out
    seen.add(id(obj))
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            _files_read(v, out, seen)
        return out
    path = getattr(obj, "path", None) if hasattr(obj, "read") else None
    if isinstance(path, (str, Path)):
        out.add(Path(path).resolve())
    if isinstance(obj, functools.partial):
        _files_read([obj.func, obj.args, obj.keywords], out, seen)
    elif callable(obj) and getattr(obj, "__closure__", None):
        for cell in obj.__closure__:
            try:
                _files_read(cell.cell_contents, out, seen)
            except ValueError:  # an empty cell
                pass
    if dataclasses.is_dataclass(obj):
        _files_read([getattr(obj, f.name) for f in dataclasses.fields(obj)], out, seen)
    elif hasattr(obj, "__dict__") and not isinstance(obj, types.ModuleType):
        _files_read(list(vars(obj).values()), out, seen)
    return out


@pytest.mark.parametrize("fmt", [f for f in __import__("sbts.tests.e2e.formats", fromlist=["FORMATS"]).FORMATS
                                 if f != "mintpy"])  # MintPy's inputs/ is loaded already: no source file
def test_every_file_a_layer_reads_counts_in_the_load_signature(fmt, tmp_path):
    """A loaded file is written again when a file it was read from changes, so every file any layer
    of the reader's sources reads must be among the files the load signature stamps: the stack's
    and its pairs' inputs, each geometry's inputs.  (A GeoTIFF DEM was not: a new DEM under the
    same name kept the old heights.)"""
    import importlib

    from sbts.core.plugin.registry import get_registry

    module = importlib.import_module(f"sbts.tests.e2e.formats.{fmt}")
    cfg = module.write(tmp_path / fmt, make_synthetic_stack(shape=(24, 28), num_date=5, seed=3))
    sources = load_mod._open_sources(load_mod._request(Template.read(cfg), cfg.parent), get_registry(), None)
    stamped = {Path(p).resolve() for p in load_mod._stack_files(sources.stack)}
    read = _files_read([p.layers for p in sources.stack.pairs])
    assert read and read <= stamped, sorted(str(p) for p in read - stamped)
    assert sources.geometries
    for geometry in sources.geometries:
        read = _files_read(geometry.layers)
        stamped = {Path(p).resolve() for p in geometry.inputs}
        assert read and read <= stamped, sorted(str(p) for p in read - stamped)
