"""Runs that meet each other, die, fail or fill the disk: no lost output, every rerun correct.

Classes of cases (each a class of defect of issue 13, tried on every command it concerns):

- concurrent writers: two commands writing the same outputs at once (the second is refused,
  naming the holder; the first finishes; nothing half-written under a final name), and every
  writing command refused while another process holds the lock of its output;
- kill -9 with a pool: the main process of a pooled inversion (process pool, dask LocalCluster)
  is SIGKILLed: its workers are gone within a second, and the rerun adopts the finished blocks;
- failed then rerun: a rejected inversion (minNumPixel) leaves no result under a final name and
  fails again when rerun, alone or in ``sbts run`` (the step never counts as done);
- fault: a full disk for every writing command, with the free-space checks on (refused up front)
  and blinded (the write itself fails half-way): one ``Error:`` line, no crash, no damaged or
  leftover file, and the same command succeeds once there is space;
- interrupt: Ctrl-C in the first 0.15 s of a command;
- same input and output: every command taking both refuses ``-o`` = its input;
- repeated runs: rerunning the unwrapping-error correction keeps the stack's size.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SLOW_SHAPE, SLOW_DATES, SLOW_MEM = (200, 100), 12, 0.0005  # ~200 blocks: a few seconds of inversion
CRASH_CODES = {139, 134, 135, -11, -6, -7}


# --------------------------------------------------------------------------- helpers
def _clean_or_ok(rel, res, what: str) -> str:
    """Exit 0, or one clean ``Error:`` line; never a crash or a traceback."""
    assert res.code not in CRASH_CODES, f"{what}: crashed (exit {res.code}):\n{res.out[-2000:]}"
    assert "Traceback" not in res.out and "HDF5-DIAG" not in res.out, f"{what}: traceback:\n{res.out[-3000:]}"
    if res.code == 0:
        return "ok"
    return rel.assert_clean_error(res)


def _leftovers(folder: Path) -> list[str]:
    """Temporary files and lock files left in ``folder`` (none may survive a finished command)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and (".part" in p.name or p.name.endswith(".lock") or p.name.endswith(".npy")))


def _finals_complete(rel, folder: Path) -> None:
    for p in folder.rglob("*.h5"):
        rel.h5_complete(p)
    for p in folder.rglob("*.he5"):
        rel.h5_complete(p)


def _fill(folder: Path, leave: int) -> Path:
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    filler = folder / "filler.bin"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def _blind_run(rel, args, cwd: Path):
    """``sbts ARGS`` with its free-space checks blinded (they see an empty disk), so that the writes
    themselves meet the full disk half-way: the path of a disk filled by another program."""
    code = ("import collections, shutil, sys\n"
            "U = collections.namedtuple('usage', 'total used free')\n"
            "shutil.disk_usage = lambda path: U(1 << 50, 0, 1 << 50)\n"
            "sys.argv = ['sbts', *sys.argv[1:]]\n"
            "from sbts.cli.main import cli\n"
            "cli()\n")
    p = subprocess.run([sys.executable, "-c", code, *[str(a) for a in args]], cwd=cwd, capture_output=True,
                       text=True, timeout=180)
    return _Result(p.returncode, p.stdout + p.stderr)


class _Result:
    """What :meth:`Rel.run` returns, for a command started another way."""

    exception = None

    def __init__(self, code: int, out: str) -> None:
        self.code, self.out = code, out

    @property
    def error_line(self) -> str:
        lines = [ln for ln in self.out.splitlines() if ln.startswith("Error:")]
        return lines[-1] if lines else ""


def _children(pid: int) -> set[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    out: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out |= {int(c) for c in f.read().split()}
    except OSError:
        pass
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def _done_blocks(work: Path) -> int:
    import h5py

    for part in work.glob("timeseries.h5*.part"):  # <name>.<pid>.part (and the older <name>.part)
        try:
            with h5py.File(part, "r", locking=False) as f:
                raw = f.attrs.get("SBTS_DONE_BLOCKS")
                return len(json.loads(raw)) if raw else 0
        except Exception:  # noqa: BLE001 - being written: try again
            return 0
    return 0


def _wait(predicate, proc: subprocess.Popen, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


@pytest.fixture(scope="module")
def slow(tmp_path_factory, rel):
    """A loaded and networked project whose inversion takes a few seconds (many small blocks), and
    the arrays of its uninterrupted inversion."""
    root = tmp_path_factory.mktemp("slow")
    work = root / "loaded"
    rel.project(work, shape=SLOW_SHAPE, num_date=SLOW_DATES, max_memory=SLOW_MEM, steps=("load", "network"))
    ref = root / "ref"
    shutil.copytree(work, ref)
    res = rel.run("invert", ref / "t.cfg", "--num-worker", "1", cwd=ref, timeout=300)
    assert res.code == 0, res.out
    arrays = rel.h5_arrays(ref / "timeseries.h5") | {"tcoh": rel.h5_arrays(ref / "temporalCoherence.h5")["temporalCoherence"]}
    return {"loaded": work, "ref": arrays}


def _same_as_reference(rel, work: Path, ref: dict) -> None:
    got = rel.h5_arrays(work / "timeseries.h5") | {"tcoh": rel.h5_arrays(work / "temporalCoherence.h5")["temporalCoherence"]}
    for key in ("timeseries", "tcoh"):
        np.testing.assert_array_equal(got[key], ref[key], err_msg=f"{key} differs from the uninterrupted inversion")


# =========================================================================== concurrent writers
PAIRS = {
    "invert+invert": (["invert", "{cfg}"], ["invert", "{cfg}"]),
    "run+invert": (["run", "{cfg}", "--start", "invert_network", "--end", "invert_network"], ["invert", "{cfg}"]),
    "invert+run": (["invert", "{cfg}"], ["run", "{cfg}", "--start", "invert_network", "--end", "invert_network"]),
}


@pytest.mark.parametrize("pair", list(PAIRS))
@pytest.mark.rcase(area="concurrent writers",
                   input="two inversions writing timeseries.h5 & co. in one folder at once (the second starts "
                         "while the first writes)",
                   expected="the second is refused (Error: naming the file and the holder's process id); the first "
                            "exits 0 with the uninterrupted result; nothing half-written; velocity then correct")
def test_two_writers_same_folder(rel, slow, tmp_path, pair, note):
    work = tmp_path / "w"
    shutil.copytree(slow["loaded"], work)
    cfg = work / "t.cfg"
    first_args, second_args = ([a.format(cfg=cfg) for a in args] for args in PAIRS[pair])
    first = rel.start(*first_args, cwd=work)
    if not _wait(lambda: _done_blocks(work) >= 2, first):
        first.kill()
        pytest.skip("the first inversion finished before the second could start")
    second = rel.run(*second_args, cwd=work, timeout=300)
    out_first, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out_first[-2000:]
    line = rel.assert_clean_error(second, "being written by sbts process", str(first.pid))
    note(observed=line.replace(str(tmp_path), "<tmp>"))
    _finals_complete(rel, work)
    _same_as_reference(rel, work, slow["ref"])
    assert not _leftovers(work), _leftovers(work)
    res = rel.run("velocity", cfg, cwd=work)
    assert res.code == 0, res.out


def _holder(path: Path) -> subprocess.Popen:
    """Another process holding the write lock of ``path`` until killed."""
    code = ("import sys, time\nfrom sbts.core.io.lock import output_lock\n"
            "with output_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


# command → (argv, the output whose lock is held); run in a copy of the small inverted project
LOCKED = {
    "load": (["load", "t.cfg", "--force"], "inputs/ifgramStack.h5"),
    "network": (["network", "t.cfg", "--ref-yx", "3,3"], "inputs/ifgramStack.h5"),
    "invert": (["invert", "t.cfg", "--force"], "timeseries.h5"),
    "deramp": (["correct", "deramp", "t.cfg"], "timeseries_ramp.h5"),
    "dem_error": (["correct", "dem_error", "t.cfg"], "demErr.h5"),
    "bridging": (["correct", "bridging", "t.cfg"], "inputs/ifgramStack.h5"),
    "phase_closure": (["correct", "phase_closure", "t.cfg"], "inputs/ifgramStack.h5"),
    "velocity": (["velocity", "t.cfg", "-i", "timeseries.h5"], "velocity.h5"),
    "rms": (["rms", "t.cfg", "-i", "timeseries.h5", "--no-plot"], "reference_date.txt"),
    "refdate": (["refdate", "t.cfg", "timeseries.h5", "--date", "{date}", "-o", "ts_ref.h5"], "ts_ref.h5"),
    "export-geotiff": (["export", "geotiff", "timeseries.h5", "-O", "bands=all", "-o", "ts.tif"], "ts.tif"),
    "export-hdf5": (["export", "hdf5", "timeseries.h5", "-o", "ts_export.h5"], "ts_export.h5"),
    "mask": (["mask", "temporalCoherence.h5", "-m", "0.5", "-o", "m.h5"], "m.h5"),
    "view": (["view", "temporalCoherence.h5", "--save", "tcoh.png", "--nodisplay"], "tcoh.png"),
}


@pytest.mark.parametrize("command", list(LOCKED))
@pytest.mark.rcase(area="concurrent writers",
                   input="another process holds the write lock of the command's output",
                   expected="Error: naming the output and the holder's process id; the output not touched")
def test_every_writer_takes_the_lock(rel, project, command, note):
    work = project.parent
    argv, target = LOCKED[command]
    date = rel.h5_arrays(work / "timeseries.h5")["date"][2].decode()
    target = work / target
    before = rel.sha(target) if target.exists() else None
    holder = _holder(target)
    try:
        res = rel.run(*[a.format(date=date) for a in argv], cwd=work)
    finally:
        holder.kill()
        holder.wait()
    line = rel.assert_clean_error(res, str(holder.pid))
    assert target.name in line, line
    note(observed=line.replace(str(work), "<work>"))
    assert (rel.sha(target) if target.exists() else None) == before, f"{target.name} changed while locked"


# =========================================================================== kill -9 with a pool
@pytest.mark.parametrize("kind", ["process pool", "dask LocalCluster"])
@pytest.mark.rcase(area="kill -9 with a pool",
                   input="`sbts invert` on 2 workers SIGKILLed (main process only) after its first blocks, then rerun",
                   expected="every worker gone within 1 s; the rerun is not refused, adopts the dead run's blocks "
                            "(`resuming`) and gives the uninterrupted result")
def test_kill9_pool(rel, slow, tmp_path, kind, note):
    if kind.startswith("dask"):
        pytest.importorskip("dask.distributed")
    work = tmp_path / "w"
    shutil.copytree(slow["loaded"], work)
    extra = ["--cluster", "local"] if kind.startswith("dask") else []
    main = rel.start("invert", work / "t.cfg", "--num-worker", "2", *extra, cwd=work)
    if not _wait(lambda: _done_blocks(work) >= 3, main, timeout=120):
        main.kill()
        pytest.skip("the inversion finished before it could be killed")
    workers = {c for c in _children(main.pid) if _alive(c)}
    assert len(workers) >= 2, f"no pool workers found under {main.pid}"
    os.kill(main.pid, signal.SIGKILL)
    main.wait(timeout=30)  # not communicate(): surviving workers would hold its output pipe open
    main.stdout.close()
    killed_at = time.monotonic()
    while time.monotonic() - killed_at < 1.0 and any(_alive(w) for w in workers):
        time.sleep(0.02)
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:  # do not leave them running whatever the outcome
        os.kill(w, signal.SIGKILL)
    assert not survivors, f"{len(survivors)} of {len(workers)} workers still alive 1 s after their parent died"
    res = rel.run("invert", work / "t.cfg", "--num-worker", "2", *extra, cwd=work, timeout=300)
    assert res.code == 0, res.out[-2000:]
    assert "resuming" in res.out, res.out[-2000:]
    _same_as_reference(rel, work, slow["ref"])
    assert not _leftovers(work), _leftovers(work)
    note(observed=f"{len(workers)} workers gone within 1 s; " +
         next(ln for ln in res.out.splitlines() if "resuming" in ln))


# =========================================================================== failed then rerun
@pytest.mark.rcase(area="failed then rerun",
                   input="`sbts invert` rejected by minNumPixel (larger than the image), then rerun, then velocity",
                   expected="Error naming minNumPixel both times; no timeseries/temporalCoherence/numInvIfgram/"
                            "maskTempCoh under a final name; velocity refused; after lowering minNumPixel the "
                            "rerun resumes the finished blocks and succeeds")
def test_failed_inversion_never_becomes_a_success(rel, slow, tmp_path, note):
    work = tmp_path / "w"
    shutil.copytree(slow["loaded"], work)
    cfg = work / "t.cfg"
    finals = ("timeseries.h5", "temporalCoherence.h5", "numInvIfgram.h5", "maskTempCoh.h5")
    cfg.write_text(cfg.read_text().replace("minNumPixel = 10", "minNumPixel = 1000000"))
    for attempt in (1, 2):
        res = rel.run("invert", cfg, cwd=work, timeout=300)
        line = rel.assert_clean_error(res, "minNumPixel")
        assert not [f for f in finals if (work / f).exists()], f"attempt {attempt}: a rejected result under a final name"
    note(observed=line.replace(str(tmp_path), "<tmp>"))
    res = rel.run("velocity", cfg, cwd=work)
    rel.assert_clean_error(res)
    cfg.write_text(cfg.read_text().replace("minNumPixel = 1000000", "minNumPixel = 10"))
    res = rel.run("invert", cfg, cwd=work, timeout=300)
    assert res.code == 0, res.out[-2000:]
    assert "resuming" in res.out
    _same_as_reference(rel, work, slow["ref"])
    assert not _leftovers(work), _leftovers(work)


@pytest.mark.rcase(area="failed then rerun",
                   input="`sbts run` whose invert_network step fails (minNumPixel), run again unchanged, then fixed",
                   expected="both runs fail at invert_network (never skipped as up to date), no velocity.h5; "
                            "the fixed template runs the step and the rest of the chain")
def test_failed_step_is_not_done(rel, tmp_path, note):
    cfg = rel.project(tmp_path / "w", extra="mintpy.networkInversion.minNumPixel = 1000000\n")
    work = cfg.parent
    for attempt in (1, 2):
        res = rel.run("run", cfg, "--end", "velocity", cwd=work, timeout=300)
        line = rel.assert_clean_error(res, "minNumPixel")
        assert not (work / "velocity.h5").exists() and not (work / "timeseries.h5").exists(), f"attempt {attempt}"
    state = json.loads((work / ".sbts_run.json").read_text())
    assert "failed" in state["invert_network"], state["invert_network"]
    note(observed=line.replace(str(tmp_path), "<tmp>"))
    cfg.write_text(cfg.read_text().replace("minNumPixel = 1000000", "minNumPixel = 10"))
    res = rel.run("run", cfg, "--end", "velocity", cwd=work, timeout=300)
    assert res.code == 0, res.out[-2000:]
    statuses = dict(ln.split()[:2] for ln in res.out.splitlines() if ln.split()[:1] and ln.split()[0] in
                    ("invert_network", "velocity"))
    assert statuses == {"invert_network": "ran", "velocity": "ran"}, statuses
    rel.h5_complete(work / "velocity.h5")


# =========================================================================== fault: full disk
# command → argv (run in a copy of the small inverted project; outputs into out/, a 3 MB tmpfs)
FULL = {
    "load": ["load", "t.cfg", "-d", "out"],
    "network": ["network", "t.cfg", "-i", "inputs/ifgramStack.h5", "-d", "out"],
    "invert": ["invert", "t.cfg", "-i", "inputs/ifgramStack.h5", "-d", "out"],
    "deramp": ["correct", "deramp", "t.cfg", "-i", "timeseries.h5", "-o", "out/ts_ramp.h5"],
    "dem_error": ["correct", "dem_error", "t.cfg", "-i", "timeseries.h5", "-o", "out/ts_demErr.h5", "-d", "out",
                  "-g", "inputs/geometryGeo.h5"],
    "bridging": ["correct", "bridging", "t.cfg", "-i", "out/ifgramStack.h5", "-d", "out"],
    "phase_closure": ["correct", "phase_closure", "t.cfg", "-i", "out/ifgramStack.h5", "-d", "out"],
    "velocity": ["velocity", "t.cfg", "-i", "timeseries.h5", "-o", "out/velocity.h5"],
    "rms": ["rms", "t.cfg", "-i", "timeseries.h5", "-d", "out"],
    "refdate": ["refdate", "t.cfg", "timeseries.h5", "--date", "{date}", "-o", "out/ts_ref.h5"],
    "geocode": ["geocode", "timeseries.h5", "--geo2radar", "-l", "lookup.h5", "-o", "out"],
    "export-geotiff": ["export", "geotiff", "timeseries.h5", "-O", "bands=all", "-o", "out/ts.tif"],
    "export-hdf5": ["export", "hdf5", "timeseries.h5", "-o", "out/ts_export.h5"],
    "export-hdfeos5": ["export", "hdfeos5", "timeseries.h5", "-o", "out", "-O", "relative_orbit=128",
                       "-O", "first_frame=593"],
    "export-kmz": ["export", "kmz", "temporalCoherence.h5", "-o", "out/tcoh.kmz"],
    "export-roipac": ["export", "roipac", "temporalCoherence.h5", "-o", "out/tcoh.cor"],
    "export-gmt": ["export", "gmt", "temporalCoherence.h5", "-o", "out/tcoh.grd"],
    "export-gbis": ["export", "gbis", "velocity.h5", "-o", "out/vel.mat"],
    "average": ["average", "inputs/ifgramStack.h5", "-o", "out/avg.h5"],
    "mask": ["mask", "temporalCoherence.h5", "-m", "0.5", "-o", "out/m.h5"],
    "filter": ["filter", "temporalCoherence.h5", "-o", "out/tcoh_f.h5"],
    "view": ["view", "temporalCoherence.h5", "--save", "out/tcoh.png", "--nodisplay"],
    "tsview": ["tsview", "timeseries.h5", "--yx", "5", "5", "--save", "out/ts.png", "--nodisplay"],
    "run": ["run", "t.cfg", "-d", "out", "--end", "invert_network"],
}


STACK_EDITORS = ("bridging", "phase_closure")  # they add a dataset to the stack they are given


def _lookup(work: Path) -> None:
    """A radar-coordinate lookup table on the project's own geographic grid (for geocode --geo2radar)."""
    from sbts.core.io.h5 import read_metadata
    from sbts.core.io.products import write_map
    from sbts.core.model.metadata import Grid, Metadata, RadarInfo

    meta = read_metadata(work / "timeseries.h5")
    geo, (length, width) = meta.grid.geo, meta.grid.shape
    r, c = np.mgrid[0:length, 0:width].astype(np.float64)
    write_map(work / "lookup.h5", Metadata(Grid(length, width), radar=RadarInfo(wavelength=0.0555, alooks=1, rlooks=1)),
              "geometry", {"latitude": geo.y_first + (r + 0.5) * geo.y_step,
                           "longitude": geo.x_first + (c + 0.5) * geo.x_step}, unit=None)


def _outputs_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != "filler.bin")


def _clear(folder: Path, keep: tuple[str, ...] = ()) -> None:
    for p in folder.iterdir():
        if p.name in keep:
            continue
        shutil.rmtree(p) if p.is_dir() else p.unlink()


@pytest.mark.parametrize("command", list(FULL))
@pytest.mark.rcase(area="fault",
                   input="output folder on a 3 MB tmpfs: no space at all, then 40 % of the output's size free with "
                         "the free-space checks blinded (the write fails half-way)",
                   expected="exit 0 with complete outputs, or one Error: line; never a crash, traceback, damaged "
                            "or leftover file, or changed input; after freeing the space the command succeeds")
def test_full_disk_every_writer(rel, project, command, note):
    work = project.parent
    out = work / "out"
    _lookup(work)
    date = rel.h5_arrays(work / "timeseries.h5")["date"][2].decode()
    argv = [a.format(date=date) for a in FULL[command]]
    if "velocity.h5" in argv:
        assert rel.cli("velocity", "t.cfg", cwd=work).code == 0
    inputs = {p: rel.sha(p) for p in (work / "timeseries.h5", work / "inputs/ifgramStack.h5", work / "t.cfg")}
    observed = []
    with rel.tmpfs(out, "3m"):
        keep = ()
        if command in STACK_EDITORS:  # the stack it edits must be on the full disk
            shutil.copy(work / "inputs/ifgramStack.h5", out / "ifgramStack.h5")
            keep = ("ifgramStack.h5",)
            stack_before = rel.h5_arrays(out / "ifgramStack.h5")
        # 1. no space at all (in-process: the checks refuse before anything is written)
        filler = _fill(out, 0)
        res = rel.cli(*argv, cwd=work)
        observed.append(_clean_or_ok(rel, res, f"{command}, disk full"))
        assert res.code != 0, f"{command} reported success with no space at all"
        assert not _leftovers(out), _leftovers(out)
        _finals_complete(rel, out)
        filler.unlink()
        # 2. enough space: the reference run, and the size of what it writes
        _clear(out, keep)
        res = rel.cli(*argv, cwd=work)
        assert res.code == 0, f"{command} failed with space free:\n{res.out[-2000:]}"
        size = _outputs_size(out) - (_outputs_size(out / keep[0]) if keep else 0)
        _clear(out, keep)
        if command in STACK_EDITORS:
            shutil.copy(work / "inputs/ifgramStack.h5", out / "ifgramStack.h5")
        # 3. part of the space, the checks blinded: the write itself fails (in a subprocess: this
        #    is the path that crashed the interpreter)
        filler = _fill(out, int(size * 0.4))
        res = _blind_run(rel, argv, work)
        observed.append(_clean_or_ok(rel, res, f"{command}, disk filling up"))
        assert not _leftovers(out), _leftovers(out)
        _finals_complete(rel, out)
        if command in STACK_EDITORS and res.code != 0:  # the stack keeps its data, and no new dataset appears
            after = rel.h5_arrays(out / "ifgramStack.h5")
            assert set(after) == set(stack_before), sorted(set(after) ^ set(stack_before))
            for name, data in stack_before.items():
                np.testing.assert_array_equal(after[name], data, err_msg=f"stack dataset {name} changed")
        # 4. space again: the same command completes
        filler.unlink()
        res = rel.cli(*argv, cwd=work)
        assert res.code == 0, f"{command}: rerun after freeing space failed:\n{res.out[-2000:]}"
        _finals_complete(rel, out)
        assert not _leftovers(out), _leftovers(out)
    for p, h in inputs.items():
        assert rel.sha(p) == h, f"{command}: input {p.name} changed"
    note(observed=" | ".join(o.replace(str(work), "<work>") for o in observed))


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# =========================================================================== interrupt: Ctrl-C at start
@pytest.mark.rcase(area="interrupt",
                   input="SIGINT (Ctrl-C) 0 to 0.15 s after starting `sbts info` / `sbts velocity` (16 seeded times)",
                   expected="exit 130 with one `interrupted` line, or killed by the signal before Python runs "
                            "or while it shuts down after the command ended; never a traceback from sbts's own "
                            "code or its imports")
def test_ctrl_c_at_start(rel, project, note):
    work = project.parent
    rng = random.Random(20240613)
    delays = sorted(rng.uniform(0, 0.15) for _ in range(16))
    outcomes = {"interrupted": 0, "killed before Python": 0, "killed while Python shut down": 0,
                "interpreter start-up": 0, "finished": 0}
    for k, delay in enumerate(delays):
        argv = ["info", work / "timeseries.h5"] if k % 2 else ["velocity", project, "-o", work / f"v{k}.h5"]
        # a terminal's Ctrl-C: SIGINT at its default even when this suite runs in the background of a
        # non-interactive shell (which starts it ignored, as sbts then rightly keeps it)
        proc = subprocess.Popen([str(rel.sbts_bin), *map(str, argv)], cwd=work, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, preexec_fn=_sigint_default)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
        frames = [ln for ln in out.splitlines() if ln.strip().startswith("File \"")]
        ours = [ln for ln in frames if str(REPO) in ln and "/.venv/" not in ln]
        assert not ours, f"traceback through sbts after SIGINT at {delay:.3f} s (exit {proc.returncode}):\n{out[-3000:]}"
        if proc.returncode == 130:
            assert "interrupted" in out and "Traceback" not in out, out[-2000:]
            outcomes["interrupted"] += 1
        elif proc.returncode == -signal.SIGINT and not out.strip():
            outcomes["killed before Python"] += 1
        elif proc.returncode == -signal.SIGINT and "Traceback" not in out:
            # after the command ended: Python restores SIGINT's default action while it shuts down
            outcomes["killed while Python shut down"] += 1
        elif proc.returncode == 0:
            outcomes["finished"] += 1
        else:
            # Python's own start-up (site, the installer's import hooks), before any sbts code runs; this
            # early, the interpreter may print the bare exception name, without a traceback
            bare = out.strip() == "KeyboardInterrupt"
            assert bare or "init_import_site" in out or (frames and all(str(REPO) not in ln or "/.venv/" in ln
                                                                        for ln in frames)), \
                f"exit {proc.returncode} after SIGINT at {delay:.3f} s:\n{out[-3000:]}"
            outcomes["interpreter start-up"] += 1
    assert outcomes["interrupted"] >= len(delays) // 3, outcomes
    note(observed=", ".join(f"{v} {k}" for k, v in outcomes.items() if v))


# =========================================================================== same input and output
SAME = {
    "velocity": (["velocity", "t.cfg", "-i", "timeseries.h5", "-o", "timeseries.h5"], "timeseries.h5"),
    "deramp": (["correct", "deramp", "t.cfg", "-i", "timeseries.h5", "-o", "timeseries.h5"], "timeseries.h5"),
    "dem_error residual": (["correct", "dem_error", "t.cfg", "-i", "timeseriesResidual.h5"], "timeseriesResidual.h5"),
    "export-hdf5": (["export", "hdf5", "timeseries.h5", "-o", "timeseries.h5"], "timeseries.h5"),
    "export-geotiff": (["export", "geotiff", "ts.tif.h5", "-o", "ts.tif.h5"], "ts.tif.h5"),
    "filter": (["filter", "temporalCoherence.h5", "-o", "temporalCoherence.h5"], "temporalCoherence.h5"),
    "mask": (["mask", "temporalCoherence.h5", "-m", "0.7", "-o", "temporalCoherence.h5"], "temporalCoherence.h5"),
    "average": (["average", "inputs/ifgramStack.h5", "-o", "inputs/ifgramStack.h5"], "inputs/ifgramStack.h5"),
    "mosaic": (["mosaic", "temporalCoherence.h5", "maskTempCoh.h5", "-o", "maskTempCoh.h5"], "maskTempCoh.h5"),
    "invert": (["invert", "t.cfg", "-i", "timeseries.h5"], "timeseries.h5"),
}


@pytest.mark.parametrize("command", list(SAME))
@pytest.mark.rcase(area="same input and output",
                   input="an output path that is the command's own input",
                   expected="Error: naming the file ('is the input'); the input byte-identical")
def test_output_is_input_refused(rel, project, command, note):
    work = project.parent
    if command == "dem_error residual":
        shutil.copy(work / "timeseries.h5", work / "timeseriesResidual.h5")
    if command == "export-geotiff":
        shutil.copy(work / "timeseries.h5", work / "ts.tif.h5")
    if command == "invert":  # a stack saved under the name the inversion writes
        shutil.copy(work / "inputs/ifgramStack.h5", work / "timeseries.h5")
    argv, victim = SAME[command]
    before = rel.sha(work / victim)
    res = rel.run(*argv, cwd=work)
    line = rel.assert_clean_error(res, "is the input")
    note(observed=line.replace(str(work), "<work>"))
    assert rel.sha(work / victim) == before, f"{victim} changed"


# =========================================================================== repeated runs
@pytest.mark.rcase(area="repeated runs",
                   input="`sbts correct bridging` rerun 4 times with a changed bridgePtsRadius (recomputed each time)",
                   expected="ifgramStack.h5 grows by at most HDF5's few kB of metadata per rerun, never by a dataset; "
                            "the corrected dataset is complete and readable after each rerun")
def test_unwrap_correction_rerun_keeps_the_size(rel, project, note):
    work = project.parent
    stack = work / "inputs/ifgramStack.h5"
    sizes = []
    for radius in (5, 6, 7, 8, 9):
        res = rel.run("correct", "bridging", project, "-s", f"mintpy.unwrapError.bridgePtsRadius={radius}", cwd=work)
        assert res.code == 0, res.out
        sizes.append(stack.stat().st_size)
        rel.h5_complete(stack)
    arrays = rel.h5_arrays(stack)
    dataset_bytes = arrays["unwrapPhase_bridging"].nbytes
    growth = np.diff(sizes)
    note(observed=f"sizes {sizes} (dataset {dataset_bytes} bytes)")
    assert growth.max() <= 16384 < dataset_bytes, f"stack grows by {growth.tolist()} bytes per rerun"


@pytest.mark.rcase(area="repeated runs",
                   input="an unwrapping-corrected dataset left marked incomplete (its in-place rewrite was killed)",
                   expected="invert refuses it (Error: naming the dataset, 'incomplete'); rerunning the correction "
                            "repairs it and invert then succeeds")
def test_incomplete_dataset_refused_then_repaired(rel, project, note):
    import h5py

    work = project.parent
    stack = work / "inputs/ifgramStack.h5"
    cfg = project
    cfg.write_text(cfg.read_text() + "mintpy.unwrapError.method = bridging\n")
    res = rel.run("correct", "bridging", cfg, cwd=work)
    assert res.code == 0, res.out
    with h5py.File(stack, "r+") as f:
        f["unwrapPhase_bridging"].attrs["SBTS_INCOMPLETE"] = "killed"
    res = rel.run("invert", cfg, "--force", cwd=work)
    line = rel.assert_clean_error(res, "unwrapPhase_bridging", "incomplete")
    note(observed=line.replace(str(work), "<work>"))
    res = rel.run("correct", "bridging", cfg, cwd=work)
    assert res.code == 0 and "up to date" not in res.out, res.out
    res = rel.run("invert", cfg, "--force", cwd=work)
    assert res.code == 0, res.out
