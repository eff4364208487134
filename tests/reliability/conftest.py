"""Reliability suite: shared helpers and the case recorder behind ``docs/reliability.md``.

Every test is a *case* of the reliability table: an area (fuzz, bad input, corrupt HDF5, interrupt,
fault, numerical), what was fed in, what is expected.  Tests declare it with the marker
``@pytest.mark.rcase(area=..., input=..., expected=...)`` (a module-level ``pytestmark`` gives the
area); parametrised tests get their parameter id appended to the input.  With the environment
variable ``SBTS_RELIABILITY_REPORT=<file.json>`` the outcome of every case (pass / xfail / fail /
skip) is written there at the end of the session; ``docs/make_reliability_table.py`` turns it into
the markdown table.

Helpers are handed to the tests through the ``rel`` fixture (this folder is not a package and the
suite runs with ``--import-mode=importlib``, so test modules cannot import this file).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

SBTS_BIN = Path(sys.executable).with_name("sbts")
ERR_PREFIX = "Error:"


# --------------------------------------------------------------------------- case recorder
def pytest_configure(config):
    config.addinivalue_line("markers", "rcase(area, input, expected): a case of docs/reliability.md")
    config._sbts_cases = {}  # nodeid -> record


def _case_info(item) -> dict:
    info: dict = {}
    for mark in reversed(list(item.iter_markers("rcase"))):  # farthest first, closest wins
        info.update(mark.kwargs)
    doc = (item.function.__doc__ or "").strip().splitlines()
    inp = info.get("input") or (doc[0] if doc else item.originalname)
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.id:
        inp = f"{inp} [{callspec.id}]"
    return {
        "id": item.nodeid.split("::", 1)[-1],
        "module": Path(str(item.fspath)).name,
        "area": info.get("area", "misc"),
        "input": inp,
        "expected": info.get("expected", "clear error (SbtsError / one-line `Error:`), no damaged file"),
    }


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    cases = item.config._sbts_cases
    record = cases.get(item.nodeid)
    if record is None:
        record = cases[item.nodeid] = _case_info(item)
        record.update(outcome="pass", note="", seconds=0.0)
    if rep.when == "call":
        record["seconds"] = round(rep.duration, 2)
    if rep.skipped and hasattr(rep, "wasxfail"):
        record["outcome"] = "xfail"
        record["note"] = rep.wasxfail.replace("reason: ", "")
    elif rep.skipped and rep.when in ("setup", "call"):
        record["outcome"] = "skip"
        record["note"] = str(rep.longrepr[-1]) if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    elif rep.failed:
        record["outcome"] = "fail" if rep.when == "call" else f"error ({rep.when})"
        record["note"] = (str(rep.longrepr).strip().splitlines() or [""])[-1][:200]
    elif rep.passed and hasattr(rep, "wasxfail"):  # strict xfail that passed → reported failed by pytest
        record["outcome"] = "xpass"
    for key, value in getattr(item, "_sbts_note", {}).items():
        record[key] = value


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("SBTS_RELIABILITY_REPORT")
    if not target:
        return
    cases = list(getattr(session.config, "_sbts_cases", {}).values())
    Path(target).write_text(json.dumps({"cases": cases, "exitstatus": int(exitstatus)}, indent=1), encoding="utf-8")


@pytest.fixture
def note(request):
    """``note(observed="...")``: what the case actually printed, for the table."""
    def _note(**kw):
        store = request.node.__dict__.setdefault("_sbts_note", {})
        store.update({k: str(v)[:200] for k, v in kw.items()})
    return _note


# --------------------------------------------------------------------------- helpers
class CliResult:
    def __init__(self, code: int, out: str, exception: BaseException | None = None):
        self.code, self.out, self.exception = code, out, exception

    @property
    def error_line(self) -> str:
        lines = [ln for ln in self.out.splitlines() if ln.startswith(ERR_PREFIX)]
        return lines[-1] if lines else ""


class Rel:
    """Helpers shared by the reliability tests."""

    sbts_bin = SBTS_BIN

    # ---------------------------------------------------------------- CLI
    @staticmethod
    def cli(*args, cwd: Path | None = None) -> CliResult:
        """Run ``sbts ARGS`` in-process (click's runner), as a user would see it."""
        from click.testing import CliRunner

        from sbts.cli.main import cli

        old = os.getcwd()
        try:
            if cwd is not None:
                os.chdir(cwd)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
        finally:
            os.chdir(old)
        exc = res.exception if not isinstance(res.exception, SystemExit) else None
        return CliResult(res.exit_code, res.output, exc)

    @staticmethod
    def run(*args, cwd: Path | None = None, timeout: float = 60, env: dict | None = None) -> CliResult:
        """Run ``sbts ARGS`` as a subprocess (real exit status, real stderr)."""
        e = dict(os.environ, **(env or {}))
        p = subprocess.run([str(SBTS_BIN), *[str(a) for a in args]], cwd=cwd, capture_output=True, text=True,
                           timeout=timeout, env=e)
        return CliResult(p.returncode, p.stdout + p.stderr)

    @staticmethod
    def assert_clean_error(res: CliResult, *needles: str) -> str:
        """Non-zero exit, an ``Error:`` line, no traceback, not an 'internal error' (= a bug)."""
        assert res.exception is None, f"exception escaped the CLI: {type(res.exception).__name__}: {res.exception}"
        assert res.code != 0, f"exit status 0 on a broken input:\n{res.out}"
        assert "Traceback" not in res.out, res.out
        line = res.error_line
        assert line, f"no one-line 'Error:' message:\n{res.out}"
        assert "internal error" not in line, f"a bug escaped as an internal error: {line}"
        for n in needles:
            assert n.lower() in line.lower(), f"{n!r} not named in: {line}"
        return line

    # ---------------------------------------------------------------- data
    @staticmethod
    def synthetic(directory: Path, shape=(40, 50), num_date=12, seed=0) -> Path:
        from sbts.core.demo.run import write_synthetic

        return write_synthetic(directory, seed=seed, shape=shape, num_date=num_date)

    @staticmethod
    def template(work: Path, extra: str = "", max_memory: float | None = None) -> Path:
        """A template loading ``work/syn`` with the mintpy reader."""
        text = ("mintpy.load.processor = mintpy\nmintpy.load.unwFile = syn/ifgramStack.h5\n"
                "mintpy.load.demFile = syn/geometryGeo.h5\nmintpy.deramp = linear\n"
                "mintpy.networkInversion.minNumPixel = 10\n")
        if max_memory is not None:
            text += f"mintpy.compute.maxMemory = {max_memory}\n"
        path = work / "t.cfg"
        path.write_text(text + extra)
        return path

    @classmethod
    def project(cls, work: Path, shape=(40, 50), num_date=12, max_memory=None, extra="", steps=()) -> Path:
        """A work folder with ``syn/`` and ``t.cfg``; ``steps`` run in-process (load, network, invert)."""
        work.mkdir(parents=True, exist_ok=True)
        cls.synthetic(work / "syn", shape=shape, num_date=num_date)
        cfg = cls.template(work, extra, max_memory)
        for step in steps:
            res = cls.cli(step, cfg)
            assert res.code == 0, res.out
        return cfg

    @staticmethod
    def sha(path: Path) -> str:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    @classmethod
    def hash_tree(cls, root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): cls.sha(p) for p in sorted(Path(root).rglob("*")) if p.is_file()}

    @staticmethod
    def h5_arrays(path: Path) -> dict[str, np.ndarray]:
        import h5py

        out = {}
        with h5py.File(path, "r") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    out[name] = obj[()]
            f.visititems(visit)
        return out

    @staticmethod
    def h5_complete(path: Path) -> None:
        """A final-named HDF5 file must open, read whole and carry no resume bookkeeping."""
        import h5py

        with h5py.File(path, "r") as f:
            assert "SBTS_DONE_BLOCKS" not in f.attrs, f"{path}: partial-file bookkeeping under the final name"
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    obj[()]
            f.visititems(visit)

    @staticmethod
    def truncate(path: Path, fraction: float) -> None:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.truncate(int(size * fraction))

    @staticmethod
    def overwrite(path: Path, offset_fraction: float, nbytes: int, seed: int = 0) -> None:
        size = path.stat().st_size
        rng = np.random.default_rng(seed)
        with open(path, "r+b") as f:
            f.seek(int(size * offset_fraction))
            f.write(rng.integers(0, 256, nbytes, dtype=np.uint8).tobytes())

    # ---------------------------------------------------------------- mounts
    @staticmethod
    @contextlib.contextmanager
    def tmpfs(path: Path, size: str = "3m", readonly: bool = False):
        """A small tmpfs at ``path`` (root with mount rights); skips the test otherwise."""
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a tmpfs needs root and mount(8)")
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
        try:
            yield path
        finally:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)

    @staticmethod
    def remount_ro(path: Path) -> None:
        p = subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip(f"cannot remount read-only: {p.stderr.strip()}")

    # ---------------------------------------------------------------- processes
    @staticmethod
    def start(*args, cwd: Path | None = None) -> subprocess.Popen:
        # SIGINT at its default (as from a terminal) even when the suite runs in the background of a
        # non-interactive shell, which starts its children with SIGINT ignored
        return subprocess.Popen([str(SBTS_BIN), *[str(a) for a in args]], cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    @staticmethod
    def kill_after(proc: subprocess.Popen, delay: float, sig: int) -> tuple[bool, str]:
        """Send ``sig`` after ``delay`` s (if still running); returns (was_killed, output)."""
        try:
            out, _ = proc.communicate(timeout=delay)
            return False, out
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        return True, out


@pytest.fixture(scope="session")
def rel() -> type[Rel]:
    return Rel


@pytest.fixture(scope="session")
def _base_project(tmp_path_factory):
    """A loaded, networked and inverted small project, copied by the tests that need one."""
    work = tmp_path_factory.mktemp("base_project")
    Rel.project(work, steps=("load", "network", "invert"))
    return work


@pytest.fixture
def project(_base_project, tmp_path) -> Path:
    """A private copy of the small inverted project; returns its template path."""
    dst = tmp_path / "proj"
    shutil.copytree(_base_project, dst)
    return dst / "t.cfg"


@pytest.fixture
def clock():
    return time.perf_counter
