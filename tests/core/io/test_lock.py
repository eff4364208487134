"""Output locks and private temporary names (core/io/lock.py): who may write what, and what a rerun adopts."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from sbts.core.io.lock import LockBusy, lock_path_for, orphans, output_lock, private_name, work_dir_lock


def test_output_lock_is_reentrant_in_a_thread_refused_in_another(tmp_path):
    out = tmp_path / "timeseries.h5"
    errors = []
    with output_lock(out):
        with output_lock(out):  # the same thread: counted
            assert lock_path_for(out).exists()

        def other():
            try:
                with output_lock(out):
                    pass
            except LockBusy as exc:
                errors.append(str(exc))

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert lock_path_for(out).exists()  # still held after the inner release
    assert errors and "another thread" in errors[0] and "timeseries.h5" in errors[0]
    assert not lock_path_for(out).exists()  # removed when released


def test_work_dir_lock_is_not_reentrant(tmp_path):
    with work_dir_lock(tmp_path):
        with pytest.raises(LockBusy, match=r"in use by sbts process \d+"):
            with work_dir_lock(tmp_path):
                pass
    with work_dir_lock(tmp_path):  # released
        pass


def test_lock_of_a_dead_process_is_free_and_its_parts_are_orphans(tmp_path):
    out = tmp_path / "velocity.h5"
    code = ("import os, sys\nfrom sbts.core.io.lock import output_lock, private_name\n"
            "with output_lock(sys.argv[1]):\n"
            "    open(private_name(sys.argv[1]), 'w').close()\n"
            "    print(os.getpid(), flush=True)\n"
            "    os._exit(9)  # dies holding the lock, leaving its lock file and partial file\n")
    p = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True)
    dead = int(p.stdout.strip())
    assert lock_path_for(out).exists() and private_name(out, pid=dead).exists()
    with output_lock(out):  # the kernel dropped the dead process's lock
        assert orphans(out) == [(private_name(out, pid=dead), dead)]


def test_parts_of_a_live_process_are_not_orphans(tmp_path):
    out = tmp_path / "velocity.h5"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        private_name(out, pid=live.pid).touch()
        (tmp_path / "velocity.h5.part").touch()  # the unowned name of older versions
        found = orphans(out)
        assert [p.name for p, _pid in found] == ["velocity.h5.part"]
    finally:
        live.kill()
        live.wait()
