"""Shared fixtures: the real datasets in ../shared/data and an isolated plugin registry."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SBTS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (the real datasets); tests using it are skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Every test starts with the registry rebuilt on first use (built-ins, then installed entry points)."""
    from sbts.core.plugin import registry as plugins

    plugins.set_registry(None)
    yield
    plugins.set_registry(None)


@pytest.fixture(autouse=True)
def _quiet_progress():
    from sbts.core.io import progress

    progress.set_enabled(False)
    log = logging.getLogger("sbts")
    log.setLevel(logging.INFO)
    yield
    # a CLI run in a test configures the "sbts" logger for a terminal; undo it for caplog
    log.handlers[:] = []
    log.propagate = True


# --------------------------------------------------------------------------- the MintPy oracle
MINTPY_VENV = Path(os.environ.get("SBTS_MINTPY_VENV", REPO / ".venv-mintpy"))


class MintPyOracle:
    """MintPy 1.6.4 installed in its own virtual environment (``scripts/setup_oracle.sh``), run as
    a separate process: sbts never imports it (GPL-3); tests only compare its files with sbts's."""

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self.bin = venv / "bin"

    def run(self, tool: str, *args, cwd=None, check: bool = True, timeout: float = 600):
        """Run a MintPy command-line tool (``prep_isce.py``, ``load_data.py`` ...) in ``cwd``."""
        import subprocess

        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1", PATH=f"{self.bin}:{env.get('PATH', '')}")
        cmd = [str(self.bin / "python"), str(self.bin / tool), *map(str, args)]
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"MintPy {tool} {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def python(self, code: str, cwd=None, check: bool = True, timeout: float = 600):
        """Run a snippet with MintPy's interpreter (to read a file the way MintPy reads it)."""
        import subprocess

        proc = subprocess.run([str(self.bin / "python"), "-c", code], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "MPLBACKEND": "Agg"})
        if check and proc.returncode != 0:
            raise AssertionError(f"MintPy python snippet failed:\n{proc.stderr[-4000:]}")
        return proc


@pytest.fixture(scope="session")
def mintpy_oracle() -> MintPyOracle:
    """MintPy 1.6.4 as a test oracle.  ``scripts/test.sh`` installs it (``SBTS_REQUIRE_ORACLE=1``: a
    missing oracle is then an error, not a skip); elsewhere the tests that need it are skipped."""
    probe = MINTPY_VENV / "bin" / "smallbaselineApp.py"
    if not probe.exists():
        if os.environ.get("SBTS_REQUIRE_ORACLE") == "1":
            pytest.fail(f"the MintPy oracle is missing at {MINTPY_VENV}: run scripts/setup_oracle.sh")
        pytest.skip(f"MintPy oracle not installed at {MINTPY_VENV} (scripts/setup_oracle.sh)")
    return MintPyOracle(MINTPY_VENV)
