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
    """Every test starts with the registry rebuilt from the installed entry points on first use."""
    from sbts.core import plugins

    plugins.set_registry(None)
    yield
    plugins.set_registry(None)


@pytest.fixture(autouse=True)
def _quiet_progress():
    from sbts.core import progress

    progress.set_enabled(False)
    log = logging.getLogger("sbts")
    log.setLevel(logging.INFO)
    yield
    # a CLI run in a test configures the "sbts" logger for a terminal; undo it for caplog
    log.handlers[:] = []
    log.propagate = True
