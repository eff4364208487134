"""Final names given by exchange (sbts.core.io.replace): the new content under the final name, the
previous one removed, ``os.replace`` where the exchange is unavailable, and a run killed between
the exchange and the removal leaving a complete product and an orphan the next writer removes."""

from __future__ import annotations

import os
import sys

import h5py
import numpy as np
import pytest

from sbts.core.io import replace
from sbts.core.io.h5 import H5Writer, write_h5
from sbts.core.io.lock import private_name

linux = pytest.mark.skipif(not sys.platform.startswith("linux") or replace._renameat2 is None,
                           reason="renameat2 is Linux's")


def _write(path, text):
    path.write_text(text)
    return path


def test_new_name_is_a_rename(tmp_path):
    src = _write(tmp_path / "a.part", "new")
    replace.replace_file(src, tmp_path / "a")
    assert (tmp_path / "a").read_text() == "new" and not src.exists()


@linux
def test_existing_output_is_exchanged_not_replaced(tmp_path, monkeypatch):
    dst = _write(tmp_path / "a", "old")
    src = _write(tmp_path / "a.part", "new")
    old_inode = dst.stat().st_ino

    def refuse(*args):
        raise AssertionError("os.replace over an existing file forces ext4's flush")

    monkeypatch.setattr(os, "replace", refuse)
    replace.replace_file(src, dst)
    assert dst.read_text() == "new" and dst.stat().st_ino != old_inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_without_exchange_falls_back_to_os_replace(tmp_path, monkeypatch):
    monkeypatch.setattr(replace, "_renameat2", None)
    dst = _write(tmp_path / "a", "old")
    replace.replace_file(_write(tmp_path / "a.part", "new"), dst)
    assert dst.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_symlinked_output_is_replaced_as_os_replace_does(tmp_path):
    target = _write(tmp_path / "target", "kept")
    (tmp_path / "a").symlink_to(target)
    replace.replace_file(_write(tmp_path / "a.part", "new"), tmp_path / "a")
    assert not (tmp_path / "a").is_symlink() and (tmp_path / "a").read_text() == "new"
    assert target.read_text() == "kept"


@linux
def test_killed_after_the_exchange_leaves_the_new_product_and_an_orphan(tmp_path, monkeypatch):
    path = tmp_path / "p.h5"
    write_h5(path, {"FILE_TYPE": "velocity"}, {"velocity": np.zeros((3, 4), np.float32)})
    real_unlink = os.unlink

    def killed(p, *a, **k):
        if str(p).endswith(".part"):
            raise KeyboardInterrupt
        return real_unlink(p, *a, **k)

    monkeypatch.setattr(os, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        write_h5(path, {"FILE_TYPE": "velocity"}, {"velocity": np.ones((3, 4), np.float32)})
    monkeypatch.setattr(os, "unlink", real_unlink)
    with h5py.File(path, "r") as f:  # the final name holds the complete new product
        assert (f["velocity"][()] == 1).all()
    orphan = private_name(path)
    with h5py.File(orphan, "r") as f:  # the previous one, under the temporary name
        assert (f["velocity"][()] == 0).all()
    with H5Writer(path, {"FILE_TYPE": "velocity"}, signature="s") as w:  # never adopted: it has no signature
        assert not w.resumed
        w.create("velocity", shape=(3, 4), dtype=np.float32)
        w.write("velocity", np.full((3, 4), 2, np.float32))
    with h5py.File(path, "r") as f:
        assert (f["velocity"][()] == 2).all()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["p.h5"]
