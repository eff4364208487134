"""Fixtures of the viewer tests: the demo work directory, GNSS stations made from its truth, a running
server and a headless Chromium.

The browser is Debian's ``chromium`` + ``chromium-driver`` (``scripts/setup_browser.sh``) driven by
selenium.  Where they are missing the browser tests are skipped, except under ``scripts/test.sh``
(``SBTS_REQUIRE_BROWSER=1``), where a missing browser is an error.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tenv3_writer

from tenv3_writer import FRAME_OFFSET, enu_for_los, write_station  # noqa: E402


@pytest.fixture(scope="session")
def demo_work(tmp_path_factory) -> Path:
    """``sbts demo``'s work directory (120 × 150 pixels, 30 dates, geocoded)."""
    from sbts.core.demo.run import run_demo

    work = tmp_path_factory.mktemp("serve_demo") / "demo"
    run_demo(work)
    return work


@dataclass(frozen=True)
class Station:
    site: str
    y: int
    x: int
    v_los: float  # m/year in GNSS's frame (truth + FRAME_OFFSET), nan: not enough days
    east_only: bool = False


# pixels of the 120 × 150 demo: the bowl, its flank, stable ground, the lake (no InSAR), a short record
STATIONS = {"REF1": (55, 128), "BOWL": (62, 72), "FLNK": (75, 95), "STBL": (20, 30), "NRTH": (15, 110),
            "LAKE": (35, 114), "EAST": (100, 40), "SHRT": (90, 120)}


@pytest.fixture(scope="session")
def gnss_dir(demo_work, tmp_path_factory) -> tuple[Path, dict[str, Station]]:
    """.tenv3 files whose LOS velocities are the demo's true velocity (+ a frame offset), one station
    moving due east only (its LOS velocity −sin θ sin α · v_e), one with 20 days only, one outside the grid."""
    folder = tmp_path_factory.mktemp("gnss")
    with h5py.File(demo_work / "synthetic" / "truth.h5", "r") as f:
        truth = f["velocity"][()].astype(np.float64)
    with h5py.File(demo_work / "inputs" / "geometryGeo.h5", "r") as f:
        inc, az = f["incidenceAngle"][()], f["azimuthAngle"][()]
    with h5py.File(demo_work / "velocity.h5", "r") as f:
        a = dict(f.attrs)
    x0, y0, dx, dy = (float(a[k]) for k in ("X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP"))
    start, end = dt.datetime.strptime(a["START_DATE"], "%Y%m%d").date(), dt.datetime.strptime(a["END_DATE"], "%Y%m%d").date()
    out = {}
    for k, (site, (y, x)) in enumerate(STATIONS.items()):
        lat, lon = y0 + (y + 0.5) * dy, x0 + (x + 0.5) * dx
        first, last = start - dt.timedelta(days=40), end + dt.timedelta(days=40)
        if site == "EAST":
            ve = 0.01
            ue = -np.sin(np.radians(inc[y, x])) * np.sin(np.radians(az[y, x]))
            venu = (ve, 0.0, 0.0)
            v_los = ve * ue
        else:
            v_los = truth[y, x] + FRAME_OFFSET
            venu = enu_for_los(v_los, float(inc[y, x]), float(az[y, x]), ve=0.002 * (k - 3), vn=-0.003)
        if site == "SHRT":
            first, last = start + dt.timedelta(days=100), start + dt.timedelta(days=120)
            v_los = np.nan
        write_station(folder, site, lat, lon, first, last, venu)
        out[site] = Station(site, y, x, float(v_los), east_only=site == "EAST")
    write_station(folder, "FARX", y0 + 1.0, x0 - 1.0, start, end, (0.0, 0.0, 0.0))  # outside the grid
    return folder, out


# --------------------------------------------------------------------------- browser
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,900"]


def _find(names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """A headless Chromium (fresh profile) driven by selenium, with downloads into a temporary folder."""
    required = os.environ.get("SBTS_REQUIRE_BROWSER") == "1"

    def missing(why: str):
        if required:
            pytest.fail(f"{why}: run scripts/setup_browser.sh (SBTS_REQUIRE_BROWSER=1)")
        pytest.skip(why)

    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed (pip install -e .[test])")
    chromium = _find(["chromium", "chromium-browser", "google-chrome"])
    driver_path = _find(["chromedriver"])
    if chromium is None or driver_path is None:
        missing("chromium / chromedriver not found")
    profile = tmp_path_factory.mktemp("chromium-profile")
    downloads = tmp_path_factory.mktemp("downloads")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in CHROME_FLAGS + [f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    driver.set_page_load_timeout(60)
    driver.downloads = downloads
    yield driver
    driver.quit()
