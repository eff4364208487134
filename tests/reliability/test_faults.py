"""Faults of the environment: a full disk, a read-only output folder, two runs in one folder.

The full disk and the read-only folder are small tmpfs mounts made by the test (root with mount
rights; skipped with the reason otherwise: chmod cannot stop root).  Expected: one ``Error:``
line, non-zero exit, no damaged file under a final name, and after the space is freed the same
command completes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.rcase(area="fault")


def _fill(folder: Path, leave: int) -> Path:
    """Fill ``folder``'s file system up to ``leave`` bytes free."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    filler = folder / "filler.bin"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def _finals_complete(rel, folder: Path) -> None:
    for p in folder.rglob("*.h5"):
        rel.h5_complete(p)


COMMANDS = {
    "load": lambda cfg, out: ["load", cfg, "-d", out],
    "invert": lambda cfg, out: ["invert", cfg, "-i", cfg.parent / "inputs/ifgramStack.h5", "-d", out],
    "deramp": lambda cfg, out: ["correct", "deramp", cfg, "-i", cfg.parent / "timeseries.h5",
                                "-o", out / "timeseries_ramp.h5"],
    "export-geotiff": lambda cfg, out: ["export", "geotiff", cfg.parent / "timeseries.h5", "-O", "bands=all",
                                        "-o", out / "ts.tif"],
    "export-hdf5": lambda cfg, out: ["export", "hdf5", cfg.parent / "timeseries.h5", "-o", out / "ts_export.h5"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.rcase(input="output folder on a 3 MB tmpfs filled to 40 KB free (ENOSPC mid-write)",
                   expected="Error: naming the file / 'No space left', no damaged final file; after freeing space the rerun succeeds")
def test_full_disk(rel, project, tmp_path, command, note):
    out = tmp_path / "full"
    with rel.tmpfs(out, "3m"):
        filler = _fill(out, 40_000)
        res = rel.run(*COMMANDS[command](project, out))
        if res.code == 0:
            pytest.fail(f"{command} reported success on a full disk:\n{res.out[-600:]}")
        line = rel.assert_clean_error(res)
        note(observed=line)
        _finals_complete(rel, out)
        filler.unlink()
        res = rel.run(*COMMANDS[command](project, out))
        assert res.code == 0, f"rerun after freeing space failed:\n{res.out[-1500:]}"
        _finals_complete(rel, out)


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.rcase(input="output folder read-only (tmpfs remounted ro)",
                   expected="Error: naming the folder/file ('Read-only file system'), exit ≠ 0, nothing written")
def test_read_only_folder(rel, project, tmp_path, command, note):
    out = tmp_path / "ro"
    with rel.tmpfs(out, "4m"):
        (out / "inputs").mkdir()
        rel.remount_ro(out)
        res = rel.run(*COMMANDS[command](project, out))
        line = rel.assert_clean_error(res)
        note(observed=line)
        assert not any(out.rglob("*.h5")) and not any(out.rglob("*.tif"))


@pytest.mark.rcase(input="two `sbts run` in the same work folder at once",
                   expected="the second is refused: Error: naming the lock and the process id holding it")
def test_two_runs_lock(rel, tmp_path, note):
    cfg = rel.project(tmp_path / "w", shape=(60, 80), num_date=14, max_memory=0.0005)
    work = cfg.parent
    first = rel.start("run", cfg, "--end", "invert_network", cwd=work)
    lock = work / ".sbts.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None:
        if lock.exists() and lock.read_text().startswith("sbts process"):
            break
        time.sleep(0.01)
    if first.poll() is not None:
        pytest.skip("the first run finished before the second could start")
    second = rel.run("run", cfg, "--end", "invert_network", cwd=work)
    out_first, _ = first.communicate(timeout=120)
    line = rel.assert_clean_error(second, "in use", str(first.pid))
    note(observed=line.replace(str(tmp_path), "<tmp>"))
    assert first.returncode == 0, out_first[-1500:]
    _finals_complete(rel, work)


@pytest.mark.rcase(input="stale lock file left by a SIGKILLed run", expected="the next run proceeds (flock died with it)")
def test_stale_lock_file(rel, tmp_path):
    cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
    (cfg.parent / ".sbts.lock").write_text("sbts process 999999 on elsewhere")
    res = rel.cli("run", cfg, "--end", "load_data")
    assert res.code == 0, res.out
