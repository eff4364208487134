"""``load_data`` reads the interferograms of a block with ``num_worker`` threads (issue 16): the stack
is the same bits as with one thread, in small blocks and when appending to a stack on disk.
Synthetic PyRate/GAMMA GeoTIFF stack on disk (one file per pair and layer)."""

from __future__ import annotations

import threading

import h5py
import pytest

pytest.importorskip("osgeo.gdal")

from sbts.core.config.template import Template  # noqa: E402
from sbts.core.demo.synthetic import make_synthetic_stack  # noqa: E402
from sbts.core.io.provenance import PROVENANCE_KEYS  # noqa: E402
from sbts.core.steps import load as load_mod  # noqa: E402
from sbts.core.steps.load import load_data  # noqa: E402
from sbts.tests.e2e.formats import geotiff  # noqa: E402


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("gtiff")
    synth = make_synthetic_stack(shape=(30, 26), num_date=9, seed=7)
    return geotiff.write(root, synth)


def _datasets(path):
    with h5py.File(path, "r") as f:
        data = {k: f[k][()] for k in f}
        attrs = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()
                 if k not in PROVENANCE_KEYS}
    return data, attrs


def _assert_same_files(a, b):
    (da, aa), (db, ab) = _datasets(a), _datasets(b)
    assert aa == ab
    assert sorted(da) == sorted(db)
    for name in da:  # bit for bit
        assert da[name].dtype == db[name].dtype and da[name].tobytes() == db[name].tobytes(), name


@pytest.mark.parametrize("max_memory", [4.0, 2e-5])
def test_threads_give_the_same_stack(written, tmp_path, monkeypatch, max_memory):
    t = Template.read(written)
    load_data(t, tmp_path / "one", base_dir=written.parent, max_memory=max_memory)
    threads: set[str] = set()
    geometry_threads: set[str] = set()
    real = load_mod._read_layer

    def recording(layer, src, path, name, reader=""):
        kind = threads if name in ("unwrapPhase", "coherence") else geometry_threads  # the stack's layers or not
        kind.add(threading.current_thread().name)
        return real(layer, src, path, name, reader)

    monkeypatch.setattr(load_mod, "_read_layer", recording)
    load_data(t, tmp_path / "three", base_dir=written.parent, max_memory=max_memory, num_worker=3)
    assert len(threads) > 1 and all(n.startswith("sbts-load") for n in threads)
    assert geometry_threads and all(n.startswith("sbts-load") for n in geometry_threads)  # not this thread
    _assert_same_files(tmp_path / "one/inputs/ifgramStack.h5", tmp_path / "three/inputs/ifgramStack.h5")
    _assert_same_geometry(tmp_path / "one", tmp_path / "three")
    with h5py.File(tmp_path / "one/inputs/ifgramStack.h5", "r") as f:
        assert f["unwrapPhase"].shape[0] > 8 and (f["unwrapPhase"][()] != 0).any()


def _assert_same_geometry(a, b):
    files = sorted(p.name for p in (a / "inputs").glob("geometry*.h5"))
    assert files and files == sorted(p.name for p in (b / "inputs").glob("geometry*.h5"))
    for name in files:
        _assert_same_files(a / "inputs" / name, b / "inputs" / name)


def test_reader_error_in_a_thread_is_reported(written, tmp_path, monkeypatch):
    """An unreadable interferogram read in a thread stops the load with the reader's one-line error."""
    from sbts.core.errors import InputError

    t = Template.read(written)

    def failing(layer, src, path, name, reader=""):
        raise InputError(f"{path}: reading {name}: broken")

    monkeypatch.setattr(load_mod, "_read_layer", failing)
    with pytest.raises(InputError, match="broken"):
        load_data(t, tmp_path / "wd", base_dir=written.parent, num_worker=2)
    assert not (tmp_path / "wd/inputs/ifgramStack.h5").exists()


def test_cli_load_num_worker(written, tmp_path):
    """``sbts load --num-worker 2`` writes the stack the one-thread library call writes."""
    from click.testing import CliRunner

    from sbts.cli.main import cli

    load_data(Template.read(written), tmp_path / "one", base_dir=written.parent)
    res = CliRunner().invoke(cli, ["load", str(written), "-d", str(tmp_path / "two"), "--num-worker", "2"])
    assert res.exit_code == 0, res.output
    _assert_same_files(tmp_path / "one/inputs/ifgramStack.h5", tmp_path / "two/inputs/ifgramStack.h5")


@pytest.fixture(scope="module")
def dask_cluster():
    """The address of a running dask scheduler with 2 worker processes (as a remote cluster is
    given); its clients are closed after each module."""
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    from sbts.core.compute import scheduling

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address
        scheduling.close_clusters()


@pytest.mark.parametrize("max_memory", [4.0, 2e-5])
def test_dask_workers_read_and_give_the_same_stack(written, tmp_path, monkeypatch, dask_cluster, max_memory):
    """With a cluster the interferograms and the geometry are read by dask's workers (none here:
    this process only writes), the interferograms in pieces of pairs, the geometry a block a task,
    and the files are the one-thread load's, bit for bit, in one block and in many."""
    t = Template.read(written)
    load_data(t, tmp_path / "one", base_dir=written.parent, max_memory=max_memory)
    here: list[str] = []
    real = load_mod._read_layer

    def recording(layer, src, path, name, reader=""):
        here.append(name)
        return real(layer, src, path, name, reader)

    monkeypatch.setattr(load_mod, "_read_layer", recording)  # this process's reads only
    load_data(t, tmp_path / "dask", base_dir=written.parent, max_memory=max_memory, num_worker=2,
              cluster=dask_cluster)
    assert not here
    _assert_same_files(tmp_path / "one/inputs/ifgramStack.h5", tmp_path / "dask/inputs/ifgramStack.h5")
    _assert_same_geometry(tmp_path / "one", tmp_path / "dask")


def test_dask_reader_error_is_reported_in_one_line(written, tmp_path, dask_cluster):
    """A file that breaks in a dask worker stops the load with the reader's error naming it."""
    import shutil

    from sbts.core.errors import InputError

    copy = tmp_path / "src"
    shutil.copytree(written.parent.parent, copy)
    victim = sorted(copy.rglob("*_unw.tif"))[3]
    victim.write_bytes(b"not a GeoTIFF")
    cfg = copy / written.parent.name / written.name
    with pytest.raises(InputError, match=victim.name):
        load_data(Template.read(cfg), tmp_path / "wd", base_dir=cfg.parent, num_worker=2, cluster=dask_cluster)
    assert not (tmp_path / "wd/inputs/ifgramStack.h5").exists()


def test_cli_load_cluster(written, tmp_path, monkeypatch, dask_cluster):
    """``sbts load --cluster ADDRESS`` (and ``mintpy.compute.cluster`` in the template) load on dask;
    ``local`` reads with threads here (no dask client is opened) and writes the same stack."""
    from click.testing import CliRunner

    from sbts.cli.main import cli

    load_data(Template.read(written), tmp_path / "one", base_dir=written.parent)
    from sbts.core.compute import scheduling

    seen: list[str] = []
    real = scheduling.dask_client
    monkeypatch.setattr(scheduling, "dask_client",
                        lambda cluster, workers=1: seen.append(f"{cluster}:{workers}") or real(cluster, workers))
    res = CliRunner().invoke(cli, ["load", str(written), "-d", str(tmp_path / "two"), "--num-worker", "2",
                                   "--cluster", dask_cluster])
    assert res.exit_code == 0, res.output
    assert seen and set(seen) == {f"{dask_cluster}:2"}
    _assert_same_files(tmp_path / "one/inputs/ifgramStack.h5", tmp_path / "two/inputs/ifgramStack.h5")
    seen.clear()
    keyed = written.with_name("cluster.cfg")
    keyed.write_text(written.read_text() + "\nmintpy.compute.cluster = local\nmintpy.compute.numWorker = 2\n")
    try:
        res = CliRunner().invoke(cli, ["load", str(keyed), "-d", str(tmp_path / "three")])
    finally:
        keyed.unlink()
    assert res.exit_code == 0, res.output
    assert not seen
    _assert_same_files(tmp_path / "one/inputs/ifgramStack.h5", tmp_path / "three/inputs/ifgramStack.h5")
