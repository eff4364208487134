"""``sbts serve`` in a real browser (headless Chromium + selenium): what a person does, checked against
the files.  Start the command on the demo work directory, click a pixel, read the chart's points back,
switch maps and dates, shift-click for a difference, click a GNSS station, download the CSV and the
chart's PNG, and take the screenshot of the README (written to docs/serve.png with SBTS_UPDATE_DOCS=1).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[3]
WAIT = 30


@pytest.fixture(scope="module")
def served(demo_work, gnss_dir):
    """``sbts serve DEMO --port 0 --gnss DIR --ref-gnss REF1`` as a user starts it; yields its URL."""
    sbts = os.path.join(os.path.dirname(sys.executable), "sbts")
    proc = subprocess.Popen([sbts, "serve", str(demo_work), "--port", "0", "--gnss", str(gnss_dir[0]),
                             "--ref-gnss", "REF1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url, seen = None, []
    deadline = time.time() + 60
    while time.time() < deadline and url is None and proc.poll() is None:
        line = proc.stdout.readline()
        seen.append(line)
        if " at http://" in line:
            url = line.split(" at ")[1].split()[0]
    if url is None:
        proc.kill()
        pytest.fail("sbts serve did not start:\n" + "".join(seen))
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def wait_for(driver, predicate, what: str, timeout: float = WAIT):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - the page is still changing
            last = exc
        time.sleep(0.1)
    msg = driver.execute_script("return document.getElementById('message').textContent")
    raise AssertionError(f"timed out waiting for {what} (last: {last!r}; page message: {msg!r})")


def idle(driver) -> bool:
    return driver.execute_script("return document.body.dataset.busy === '0' && document.body.dataset.tiles !== 'loading'")


def chart_points(driver, selector: str = "circle.obs") -> tuple[list[str], np.ndarray]:
    pts = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(c => [c.dataset.date, c.dataset.value]);",
        "#chart " + selector)
    return [p[0] for p in pts], np.array([float(p[1]) for p in pts])


def click_pixel(driver, y: int, x: int, shift: bool = False) -> None:
    """A real mouse click on the screen position of pixel (y, x)'s centre."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    px, py = driver.execute_script(
        "var p = window.sbts.maps.map.latLngToContainerPoint(window.sbts.toLatLng(arguments[0], arguments[1]));"
        "return [p.x, p.y];", y, x)
    el = driver.find_element(By.ID, "map")
    driver.execute_script("document.activeElement && document.activeElement.blur();")  # a <select> keeps keys
    w, h = el.size["width"], el.size["height"]
    actions = ActionChains(driver)
    if shift:
        actions.key_down(Keys.SHIFT)
    actions.move_to_element_with_offset(el, int(round(px - w / 2)), int(round(py - h / 2))).click()
    if shift:
        actions.key_up(Keys.SHIFT)
    actions.perform()


def tile_sources(driver) -> list[str]:
    return driver.execute_script("return Array.from(document.querySelectorAll('.data-tiles img')).map(i => i.src);")


def ts_pixel(demo_work, name, y, x):
    with h5py.File(demo_work / name, "r") as f:
        return f["timeseries"][:, y, x].astype(np.float64), [d.decode() for d in f["date"][()]]


def test_viewer_in_the_browser(browser, served, demo_work, gnss_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    d.get(served)
    wait_for(d, lambda: d.execute_script("return document.body.dataset.ready") == "1", "the page")
    wait_for(d, lambda: idle(d), "the first tiles")
    assert d.find_element(By.ID, "layer").get_attribute("value") == "velocity.h5:velocity"
    assert len(tile_sources(d)) >= 1 and all("layer=velocity.h5%3Avelocity" in s for s in tile_sources(d))
    # --ref-gnss REF1: the map starts relative to the reference station (pixel B)
    assert d.find_element(By.ID, "pick-b").text == "B 55,128"
    assert all("ref=55%2C128" in s for s in tile_sources(d))
    assert "RMSE" in d.find_element(By.ID, "gnss-stats").text
    assert d.execute_script("return document.querySelectorAll('path.gnss-station').length") == 8
    d.find_element(By.ID, "clear-b").click()
    wait_for(d, lambda: all("ref=" not in s for s in tile_sources(d)) and idle(d), "the map without B")

    # 1. click a known pixel: the chart's points are the file's values (cm), exactly
    y, x = 50, 62  # (away from the station markers, which take their own clicks)
    click_pixel(d, y, x)
    wait_for(d, lambda: d.find_element(By.ID, "pick-a").text == f"A {y},{x}", "pixel A")
    wait_for(d, lambda: len(chart_points(d)[0]) == 30 and idle(d), "the history")
    values, dates = ts_pixel(demo_work, "timeseries_demErr.h5", y, x)
    got_dates, got = chart_points(d)
    assert got_dates == dates
    np.testing.assert_array_equal(got, values * 100)
    legend = " ".join(t.text for t in d.find_elements(By.CSS_SELECTOR, "#chart text.legend"))
    assert "A 50,62" in legend and "velocity" in legend and "cm/year" in legend and "velocity.h5" in legend
    assert d.find_elements(By.CSS_SELECTOR, "#chart path.model") and d.find_elements(By.CSS_SELECTOR, "#chart path.band")
    point = d.find_element(By.ID, "point").text
    assert "velocity.h5:velocity" in point

    # 2. switch the map to another dataset: its own colours, tiles of that layer
    Select(d.find_element(By.ID, "layer")).select_by_value("temporalCoherence.h5:temporalCoherence")
    wait_for(d, lambda: all("temporalCoherence" in s for s in tile_sources(d)) and idle(d), "the coherence map")
    assert d.find_element(By.ID, "vmin").get_attribute("value") == "0"
    assert d.find_element(By.ID, "vmax").get_attribute("value") == "1"
    assert d.find_element(By.ID, "cmap").get_attribute("value") == "gray"

    # 3. a time series on the map: the date slider moves the tiles and the chart's date line
    Select(d.find_element(By.ID, "layer")).select_by_value("timeseries_demErr.h5:timeseries")
    wait_for(d, lambda: d.find_element(By.ID, "date-box").is_displayed() and idle(d), "the date slider")
    d.execute_script("var s = document.getElementById('date'); s.value = 5; s.dispatchEvent(new Event('input'));")
    wait_for(d, lambda: all("index=5" in s for s in tile_sources(d)) and idle(d), "tiles of date 5")
    assert d.find_element(By.ID, "date-label").text == dates[5]
    wait_for(d, lambda: d.find_elements(By.CSS_SELECTOR, "#chart line.current-date"), "the date line")
    # masks: maskTempCoh hides the incoherent pixels
    Select(d.find_element(By.ID, "mask")).select_by_value("maskTempCoh.h5:mask")
    wait_for(d, lambda: all("mask=maskTempCoh.h5%3Amask" in s for s in tile_sources(d)) and idle(d), "masked tiles")

    # 4. shift-click a second pixel: the chart shows A − B, the map is re-referenced to B
    by, bx = 25, 45  # (no station there: a station marker takes its own clicks)
    click_pixel(d, by, bx, shift=True)
    wait_for(d, lambda: d.find_element(By.ID, "pick-b").text == f"B {by},{bx}", "pixel B")
    wait_for(d, lambda: idle(d) and "B 25,45" in " ".join(t.text for t in d.find_elements(By.CSS_SELECTOR, "#chart text.legend")),
             "the difference")
    b_values, _ = ts_pixel(demo_work, "timeseries_demErr.h5", by, bx)
    got_dates, got = chart_points(d)
    assert got_dates == dates
    np.testing.assert_allclose(got, (values - b_values) * 100, rtol=0, atol=1e-12)
    assert all("ref=25%2C45" in s for s in tile_sources(d))

    # 5. CSV and PNG downloads of what is plotted
    d.find_element(By.ID, "csv").click()
    csv_file = wait_for(d, lambda: next(iter(Path(d.downloads).glob("sbts_history_y50_x62*.csv")), None), "the CSV")
    time.sleep(0.3)
    rows = [r for r in csv.DictReader(line for line in io.StringIO(csv_file.read_text()) if not line.startswith("#"))]
    insar = [r for r in rows if r["series"] == "insar"]
    assert [r["date"] for r in insar] == dates
    np.testing.assert_array_equal([float(r["value"]) for r in insar], got)
    d.find_element(By.ID, "png-chart").click()
    png_file = wait_for(d, lambda: next(iter(Path(d.downloads).glob("sbts_history_y50_x62*.png")), None), "the chart PNG")
    time.sleep(0.3)
    img = Image.open(png_file)
    assert img.size[0] > 600 and len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 20

    # 6. click a GNSS station marker: its InSAR history and its GNSS series, both relative to REF1
    Select(d.find_element(By.ID, "layer")).select_by_value("velocity.h5:velocity")
    wait_for(d, lambda: all("layer=velocity.h5%3Avelocity" in s for s in tile_sources(d)) and idle(d), "the velocity map")
    from selenium.webdriver.common.action_chains import ActionChains

    marker = d.find_element(By.CSS_SELECTOR, "path.station-BOWL")
    ActionChains(d).move_to_element(marker).click().perform()
    wait_for(d, lambda: d.find_elements(By.CSS_SELECTOR, "#chart g.gnss[data-site='BOWL'] circle") and idle(d),
             "the station's GNSS series")
    assert d.find_element(By.ID, "pick-a").text == "A 62,72" and d.find_element(By.ID, "pick-b").text == "B 55,128"
    bowl, _ = ts_pixel(demo_work, "timeseries_demErr.h5", 62, 72)
    ref, _ = ts_pixel(demo_work, "timeseries_demErr.h5", 55, 128)
    _, got = chart_points(d)
    np.testing.assert_allclose(got, (bowl - ref) * 100, rtol=0, atol=1e-12)
    import datetime as dt

    from sbts.core.viz.gnss_overlay import gnss_velocity_overlay, los_series

    ov = gnss_velocity_overlay(demo_work / "velocity.h5", gnss_dir[0], ref_site="REF1")
    first, last = (dt.datetime.strptime(v, "%Y%m%d").date() for v in (dates[0], dates[-1]))
    g_dates, g_los = los_series(ov, "BOWL", dt.date(2020, 11, 18),
                                (first - dt.timedelta(days=30), last + dt.timedelta(days=30)))
    got_g_dates, got_g = chart_points(d, "g.gnss circle")
    assert got_g_dates == [str(v).replace("-", "") for v in g_dates]
    np.testing.assert_allclose(got_g, g_los * 100, rtol=0, atol=1e-9)
    assert "selected" in d.find_element(By.CSS_SELECTOR, "#gnss-table tr[data-site='BOWL']").get_attribute("class")
    # the markers share the velocity map's colour scale
    fill = d.execute_script("return document.querySelector('path.station-BOWL').getAttribute('fill')")
    colours = d.execute_script("return window.sbts.state.colours['RdBu_r']")
    lo, hi = (float(d.find_element(By.ID, k).get_attribute("value")) for k in ("vmin", "vmax"))
    st = {s["site"]: s for s in d.execute_script("return window.sbts.state.gnss.stations")}
    k = int(np.clip(np.floor((st["BOWL"]["gnss"] - lo) / (hi - lo) * 256), 0, 255))
    assert fill == colours[k]

    # 7. the screenshot of the README
    d.find_element(By.ID, "gnss-labels").click()
    d.execute_script("window.sbts.maps.map.zoomIn(1, {animate: false});"
                     "document.getElementById('side').scrollTop = 1e6;")  # the GNSS statistics in view
    wait_for(d, lambda: idle(d) and len(d.find_elements(By.CSS_SELECTOR, ".station-label")) == 8, "labels")
    time.sleep(0.5)
    shot = tmp_path / "serve.png"
    d.save_screenshot(str(shot))
    img = Image.open(shot).convert("RGB")
    assert img.size == (1400, 900) or img.size[0] >= 1000
    assert len(np.unique(np.asarray(img.resize((350, 225))).reshape(-1, 3), axis=0)) > 200  # tiles and chart drawn, not a blank page
    if os.environ.get("SBTS_UPDATE_DOCS") == "1":
        shutil.copy(shot, REPO / "docs" / "serve.png")


def test_basemap_tiles_come_from_the_given_url(demo_work, browser, tmp_path):
    """--basemap URL: the page asks that XYZ server for tiles under the data (a local stand-in server here;
    the viewer itself never reaches the network unless a user gives such a URL)."""
    import http.server
    import threading

    from sbts.core.serve.app import start_in_thread
    from sbts.core.serve.state import ViewerState

    hits = []
    tile = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 230, 200)).save(tile, format="PNG")

    class Tiles(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            body = tile.getvalue()
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    base = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    threading.Thread(target=base.serve_forever, daemon=True).start()
    state = ViewerState(demo_work, basemap=f"http://127.0.0.1:{base.server_address[1]}/{{z}}/{{x}}/{{y}}.png",
                        basemap_attribution="test tiles")
    srv, _ = start_in_thread(state)
    try:
        browser.get(srv.url)
        wait_for(browser, lambda: browser.execute_script("return document.body.dataset.ready") == "1", "the page")
        wait_for(browser, lambda: len(hits) > 0, "basemap tile requests")
        z, x, y = (int(v) for v in hits[0].strip("/").replace(".png", "").split("/"))
        assert 10 <= z <= 22
        assert "test tiles" in browser.find_element("css selector", ".leaflet-control-attribution").text
    finally:
        srv.shutdown()
        srv.server_close()
        state.close()
        base.shutdown()
        base.server_close()
