"""``sbts serve``'s routes on the demo work directory: every number the page shows checked against the
files (read with h5py) and against independent computations."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import h5py
import matplotlib
import numpy as np
import pytest
from PIL import Image

DAYS_PER_YEAR = 365.25


@pytest.fixture(scope="module")
def server(demo_work, gnss_dir):
    from sbts.core.serve.app import start_in_thread
    from sbts.core.serve.state import ViewerState

    state = ViewerState(demo_work, gnss_dir=gnss_dir[0], ref_gnss="REF1")
    srv, thread = start_in_thread(state)
    yield srv
    srv.shutdown()
    srv.server_close()
    state.close()


def get(srv, path: str, raw: bool = False):
    with urllib.request.urlopen(srv.url + path.lstrip("/"), timeout=30) as r:
        body = r.read()
        return (body, r.headers) if raw else json.loads(body)


def get_error(srv, path: str) -> tuple[int, str]:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(srv.url + path.lstrip("/"), timeout=30)
    body = info.value.read()
    return info.value.code, json.loads(body)["error"]


def read(path, name, index=None):
    with h5py.File(path, "r") as f:
        ds = f[name]
        return np.asarray(ds[()] if index is None else ds[index], np.float64)


# --------------------------------------------------------------------------- catalogue
def test_info_lists_the_products(server, demo_work):
    info = get(server, "/api/info")
    ids = {layer["id"] for layer in info["layers"]}
    assert {"velocity.h5:velocity", "velocity.h5:velocityStd", "temporalCoherence.h5:temporalCoherence",
            "avgSpatialCoh.h5:coherence", "demErr.h5:dem", "timeseries.h5:timeseries",
            "timeseries_demErr.h5:timeseries", "inputs/geometryGeo.h5:height"} <= ids
    assert not any(i.startswith("inputs/ifgramStack") for i in ids)
    assert info["default_layer"] == "velocity.h5:velocity"
    masks = {m["id"] for m in info["masks"]}
    assert masks == {"maskTempCoh.h5:mask", "maskConnComp.h5:mask", "waterMask.h5:waterMask",
                     "inputs/geometryGeo.h5:waterMask"}  # counts named 'mask' (numInvIfgram) are maps
    (grid,) = info["grids"]
    assert grid["mode"] == "mercator" and (grid["length"], grid["width"]) == (120, 150)
    assert grid["default_series"] == "timeseries_demErr.h5:timeseries"
    assert info["models"] == {grid["id"]: "velocity.h5"}
    assert info["gnss"] is True and info["basemap"] is None
    series = next(x for x in info["layers"] if x["id"] == "timeseries.h5:timeseries")
    with h5py.File(demo_work / "timeseries.h5", "r") as f:
        assert series["dates"] == [d.decode() for d in f["date"][()]]
        assert series["ref_date"] == f.attrs["REF_DATE"]
        assert series["reference"] == [int(f.attrs["REF_Y"]), int(f.attrs["REF_X"])]


def test_layer_colour_limits(server, demo_work):
    vel = get(server, "/api/layer?layer=velocity.h5:velocity")
    assert vel["unit"] == "cm/year" and vel["cmap"] == "RdBu_r" and vel["factor"] == 100.0
    v = read(demo_work / "velocity.h5", "velocity") * 100
    v = v[v != 0]
    lim = np.percentile(v, 98) if abs(np.percentile(v, 98)) > abs(np.percentile(v, 2)) else -np.percentile(v, 2)
    assert vel["vlim"] == pytest.approx([-abs(lim), abs(lim)], rel=1e-6)
    coh = get(server, "/api/layer?layer=temporalCoherence.h5:temporalCoherence")
    assert coh["vlim"] == [0.0, 1.0] and coh["cmap"] == "gray"
    std = get(server, "/api/layer?layer=velocity.h5:velocityStd")
    assert std["vlim"][0] == 0.0 and std["cmap"] == "viridis"
    phase = get(server, "/api/layer?layer=velocity.h5:annualPhase")
    assert phase["signed"] is False  # an angle: never re-referenced to another pixel


# --------------------------------------------------------------------------- tiles
def _mercator_pixels(geo: dict, z: int, tx: int, ty: int):
    """Source row/col of each tile pixel centre, from the Web-Mercator inverse written out here."""
    n = 256 * 2 ** z
    px = tx * 256 + np.arange(256) + 0.5
    py = ty * 256 + np.arange(256) + 0.5
    lon = px / n * 360 - 180
    lat = np.degrees(2 * np.arctan(np.exp(np.pi * (1 - 2 * py / n))) - np.pi / 2)
    cols = np.floor((lon - geo["x_first"]) / geo["x_step"]).astype(int)
    rows = np.floor((lat - geo["y_first"]) / geo["y_step"]).astype(int)
    return rows, cols


def _tile_of(lat: float, lon: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = (lon + 180) / 360 * n
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n
    return int(x), int(y)


def _expected_rgba(values: np.ndarray, vmin: float, vmax: float, cmap: str) -> np.ndarray:
    table = (matplotlib.colormaps[cmap](np.linspace(0, 1, 256)) * 255).round().astype(np.uint8)
    idx = np.clip(np.floor((values - vmin) / (vmax - vmin) * 256), 0, 255)
    out = table[np.nan_to_num(idx).astype(int)]
    out[np.isnan(values)] = 0
    return out


@pytest.mark.parametrize("z", [13, 16])
def test_tile_pixels_are_the_file_values_coloured(server, demo_work, z):
    """A tile decoded back: every pixel is the file's value at the pixel under it (Web-Mercator
    placement), coloured through the 256-colour table; outside the grid and no-data zeros transparent."""
    info = get(server, "/api/info")
    geo = info["grids"][0]["geo"]
    tx, ty = _tile_of(19.43, -99.13, z)  # the bowl
    png, headers = get(server, f"/api/tile/{z}/{tx}/{ty}.png?layer=velocity.h5:velocity&vmin=-20&vmax=20", raw=True)
    assert headers["Content-Type"] == "image/png"
    got = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    rows, cols = _mercator_pixels(geo, z, tx, ty)
    v = read(demo_work / "velocity.h5", "velocity")
    inside_r = (rows >= 0) & (rows < v.shape[0])
    inside_c = (cols >= 0) & (cols < v.shape[1])
    vals = np.full((256, 256), np.nan)
    sub = v[np.ix_(rows[inside_r], cols[inside_c])]
    ref = (57, 131)
    empty = (sub == 0)
    rr, cc = np.meshgrid(rows[inside_r], cols[inside_c], indexing="ij")
    empty &= ~((rr == ref[0]) & (cc == ref[1]))
    vals[np.ix_(inside_r, inside_c)] = np.where(empty, np.nan, sub * 100)
    want = _expected_rgba(vals, -20, 20, "RdBu_r")
    np.testing.assert_array_equal(got, want)
    assert (got[..., 3] == 255).any()


def test_tile_options_mask_reference_and_date(server, demo_work):
    z = 14
    tx, ty = _tile_of(19.43, -99.13, z)
    geo = get(server, "/api/info")["grids"][0]["geo"]
    rows, cols = _mercator_pixels(geo, z, tx, ty)
    ok_r, ok_c = (rows >= 0) & (rows < 120), (cols >= 0) & (cols < 150)
    k = 7
    ts = read(demo_work / "timeseries_demErr.h5", "timeseries", k) * 100
    probe = read(demo_work / "timeseries_demErr.h5", "timeseries", 0)  # the date farthest from REF_DATE (late)
    mask = read(demo_work / "maskTempCoh.h5", "mask").astype(bool)
    ref = (62, 72)
    vals = np.full((256, 256), np.nan)
    sub = ts[np.ix_(rows[ok_r], cols[ok_c])] - ts[ref]
    rr, cc = np.meshgrid(rows[ok_r], cols[ok_c], indexing="ij")
    keep = mask[rr, cc] & ((probe[rr, cc] != 0) | ((rr == 57) & (cc == 131)))  # the reference pixel is 0 by definition
    vals[np.ix_(ok_r, ok_c)] = np.where(keep, sub, np.nan)
    png, _ = get(server, f"/api/tile/{z}/{tx}/{ty}.png?layer=timeseries_demErr.h5:timeseries&index={k}"
                         f"&vmin=-30&vmax=10&cmap=jet&mask=maskTempCoh.h5:mask&ref=62,72", raw=True)
    got = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    np.testing.assert_array_equal(got, _expected_rgba(vals, -30, 10, "jet"))


def test_tile_outside_the_grid_is_transparent(server):
    png, _ = get(server, "/api/tile/10/0/0.png?layer=velocity.h5:velocity", raw=True)
    assert not np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))[..., 3].any()


# --------------------------------------------------------------------------- pixel histories and the model
def _dates(demo_work, name="timeseries_demErr.h5"):
    with h5py.File(demo_work / name, "r") as f:
        return [d.decode() for d in f["date"][()]]


def _model(demo_work, y, x, dates):
    """velocity.h5's model written out: intercept + v·τ + A·sin(2πτ + φ), τ in years from START_DATE."""
    with h5py.File(demo_work / "velocity.h5", "r") as f:
        p = {k: float(f[k][y, x]) for k in f if f[k].ndim == 2}
        t0 = dt.datetime.strptime(f.attrs["START_DATE"], "%Y%m%d")
    tau = np.array([(dt.datetime.strptime(d, "%Y%m%d") - t0).days for d in dates]) / DAYS_PER_YEAR
    arg = 2 * np.pi * tau + p["annualPhase"]
    m = p["intercept"] + p["velocity"] * tau + p["annualAmplitude"] * np.sin(arg)
    sig = np.sqrt(p["interceptStd"] ** 2 + (tau * p["velocityStd"]) ** 2 + (np.sin(arg) * p["annualAmplitudeStd"]) ** 2
                  + (p["annualAmplitude"] * np.cos(arg) * p["annualPhaseStd"]) ** 2)
    return m, sig, tau, p


def test_history_is_the_file_and_the_fitted_model(server, demo_work):
    y, x = 60, 75
    h = get(server, f"/api/history?series=timeseries_demErr.h5:timeseries&yx={y},{x}")
    ts = read(demo_work / "timeseries_demErr.h5", "timeseries")[:, y, x]
    dates = _dates(demo_work)
    assert h["dates"] == dates and h["unit"] == "cm" and h["ref"] is None
    np.testing.assert_array_equal(h["values"], ts * 100)
    assert h["std"] is None
    m, sig, _, p = _model(demo_work, y, x, h["model"]["dates"])
    np.testing.assert_allclose(h["model"]["values"], m * 100, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(h["model"]["sigma"], sig * 100, rtol=1e-9, atol=1e-9)
    assert h["model"]["source"] == "velocity.h5" and h["model"]["terms"] == "intercept, velocity, annual"
    assert h["rate"]["value"] == pytest.approx(p["velocity"] * 100) and h["rate"]["std"] == pytest.approx(p["velocityStd"] * 100)
    assert set(dates) <= set(h["model"]["dates"]) and len(h["model"]["dates"]) > 200
    # velocity.h5 is the least-squares fit of this very series (all 30 dates): its residuals are
    # orthogonal to the design matrix — the model is placed in time exactly as it was fitted
    mo, _, tau, _ = _model(demo_work, y, x, dates)
    G = np.column_stack([np.ones_like(tau), tau, np.cos(2 * np.pi * tau), np.sin(2 * np.pi * tau)])
    resid = ts - mo
    assert np.abs(G.T @ resid).max() < 1e-4 * np.abs(ts).max() * len(dates)


def test_history_difference_of_two_pixels(server, demo_work):
    a, b = (60, 75), (20, 30)
    h = get(server, "/api/history?series=timeseries_demErr.h5:timeseries&yx=60,75&ref=20,30")
    ts = read(demo_work / "timeseries_demErr.h5", "timeseries")
    np.testing.assert_allclose(h["values"], (ts[:, a[0], a[1]] - ts[:, b[0], b[1]]) * 100, rtol=0, atol=1e-12)
    ma, sa, _, pa = _model(demo_work, *a, h["model"]["dates"])
    mb, sb, _, pb = _model(demo_work, *b, h["model"]["dates"])
    np.testing.assert_allclose(h["model"]["values"], (ma - mb) * 100, atol=1e-9)
    np.testing.assert_allclose(h["model"]["sigma"], np.hypot(sa, sb) * 100, atol=1e-9)
    assert h["rate"]["value"] == pytest.approx((pa["velocity"] - pb["velocity"]) * 100)
    assert h["rate"]["std"] == pytest.approx(math.hypot(pa["velocityStd"], pb["velocityStd"]) * 100)


def test_history_csv_is_what_is_plotted(server):
    h = get(server, "/api/history?series=timeseries_demErr.h5:timeseries&yx=60,75&ref=20,30")
    body, headers = get(server, "/api/history.csv?series=timeseries_demErr.h5:timeseries&yx=60,75&ref=20,30"
                                "&site=BOWL", raw=True)
    assert headers["Content-Type"].startswith("text/csv") and "attachment" in headers["Content-Disposition"]
    text = body.decode()
    assert "# minus pixel y=20 x=30" in text
    rows = list(csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#")))
    insar = [r for r in rows if r["series"] == "insar"]
    assert [r["date"] for r in insar] == h["dates"]
    np.testing.assert_array_equal([float(r["value"]) for r in insar], h["values"])
    model = [r for r in rows if r["series"] == "model"]
    np.testing.assert_array_equal([float(r["value"]) for r in model], h["model"]["values"])
    np.testing.assert_array_equal([float(r["sigma"]) for r in model], h["model"]["sigma"])
    g = get(server, "/api/gnss/series?site=BOWL&series=timeseries_demErr.h5:timeseries")
    gnss = [r for r in rows if r["series"] == "gnss_BOWL"]
    assert [r["date"] for r in gnss] == g["dates"] and len(gnss) > 700


def test_history_with_a_std_dataset(tmp_path, demo_work):
    """A time series with a per-date ``timeseriesStd`` gets error bars (σ of A − B: root sum of squares)."""
    from sbts.core.serve.catalog import build_catalog
    from sbts.core.serve.history import pixel_history
    from sbts.core.serve.rasters import RasterStore

    work = tmp_path / "w"
    work.mkdir()
    shutil.copy(demo_work / "timeseries.h5", work / "timeseries.h5")
    with h5py.File(work / "timeseries.h5", "a") as f:
        std = np.random.default_rng(1).uniform(0.001, 0.01, f["timeseries"].shape).astype(np.float32)
        f.create_dataset("timeseriesStd", data=std, chunks=(1, 120, 150))
    cat = build_catalog(work)
    h = pixel_history(cat, RasterStore(), "timeseries.h5:timeseries", 5, 6, ref=(7, 8))
    np.testing.assert_allclose(h["std"], np.hypot(std[:, 5, 6].astype(np.float64), std[:, 7, 8]) * 100, rtol=1e-12)
    assert h["model"] is None and "no velocity.h5" in h["model_note"]


def test_point_values(server, demo_work):
    pt = get(server, "/api/point?grid=g0&yx=60,75&ref=20,30")
    by = {v["layer"]: v for v in pt["values"]}
    v = read(demo_work / "velocity.h5", "velocity")
    assert by["velocity.h5:velocity"]["value"] == pytest.approx((v[60, 75] - v[20, 30]) * 100, abs=1e-9)
    coh = read(demo_work / "temporalCoherence.h5", "temporalCoherence")
    assert by["temporalCoherence.h5:temporalCoherence"]["value"] == pytest.approx(coh[60, 75])  # not re-referenced
    assert by["inputs/geometryGeo.h5:height"]["value"] == pytest.approx(read(demo_work / "inputs/geometryGeo.h5", "height")[60, 75])
    assert pt["lat"] == pytest.approx(19.48 - 60.5 / 1200) and pt["lon"] == pytest.approx(-99.1925 + 75.5 / 1200)


# --------------------------------------------------------------------------- GNSS
def test_gnss_route_matches_the_overlay(server, demo_work, gnss_dir):
    from sbts.core.viz.gnss_overlay import gnss_velocity_overlay

    g = get(server, "/api/gnss")
    ov = gnss_velocity_overlay(demo_work / "velocity.h5", gnss_dir[0], ref_site="REF1")
    assert g["unit"] == "cm/year" and g["ref_site"] == "REF1" and g["ref_yx"] == [55, 128]
    assert g["rmse"] == pytest.approx(ov.rmse * 100) and g["bias"] == pytest.approx(ov.bias * 100) and g["num"] == 5
    by = {s["site"]: s for s in g["stations"]}
    assert by["BOWL"]["gnss"] == pytest.approx(ov.station("BOWL").gnss * 100)
    assert by["LAKE"]["insar"] is None and by["SHRT"]["gnss"] is None and by["REF1"]["reference"]
    s = get(server, "/api/gnss/series?site=BOWL&series=timeseries_demErr.h5:timeseries")
    assert s["unit"] == "cm" and s["ref_site"] == "REF1" and (s["y"], s["x"]) == (62, 72)
    ref_date = "20201118"
    assert s["values"][s["dates"].index(ref_date)] == 0.0


# --------------------------------------------------------------------------- figure, errors, static files
def test_figure_png(server):
    body, headers = get(server, "/api/figure.png?layer=timeseries_demErr.h5:timeseries&index=3&a=60,75&b=20,30"
                                "&ref=20,30&mask=maskTempCoh.h5:mask", raw=True)
    img = Image.open(io.BytesIO(body))
    assert img.format == "PNG" and img.size[0] > 400
    body, _ = get(server, "/api/figure.png?layer=velocity.h5:velocity", raw=True)
    assert Image.open(io.BytesIO(body)).format == "PNG"


@pytest.mark.parametrize("path, status, match", [
    ("/api/layer?layer=nothere.h5:x", 400, "no layer 'nothere.h5:x'"),
    ("/api/history?series=velocity.h5:velocity&yx=1,1", 400, "not a time series"),
    ("/api/history?series=timeseries.h5:timeseries&yx=500,1", 400, "outside the 120 × 150 grid"),
    ("/api/history?series=timeseries.h5:timeseries&yx=a,b", 400, "give a pixel as y,x"),
    ("/api/history?series=timeseries.h5:timeseries", 400, "missing query parameter 'yx'"),
    ("/api/tile/12/1/1.png?layer=timeseries.h5:timeseries&index=99", 400, "date index 99 outside 0..29"),
    ("/api/tile/12/1/1.png?layer=velocity.h5:velocity&vmin=2&vmax=1", 400, "the maximum larger than the minimum"),
    ("/api/tile/12/1/1.png?layer=velocity.h5:velocity&vmin=2", 400, "give both"),
    ("/api/tile/12/1/1.png?layer=velocity.h5:velocity&mask=velocity.h5:velocity", 400, "no mask"),
    ("/api/tile/14/3579/7213.png?layer=velocity.h5:velocity&cmap=nocmap", 400, "unknown colour map 'nocmap'"),
    ("/api/tile/12/1/1.png?layer=velocity.h5:velocity&vmin=nan&vmax=1", 400, "not a finite number"),
    ("/api/gnss/series?site=ZZZZ", 400, "no GNSS station 'ZZZZ'"),
    ("/api/nothing", 404, "no route"),
    ("/static/../../../etc/passwd", 404, "no file"),
    ("/static/%2e%2e/state.py", 404, "no file"),
])
def test_bad_requests_get_one_line_errors(server, path, status, match):
    code, message = get_error(server, path)
    assert code == status and match in message and "\n" not in message


def test_static_files_are_served(server):
    body, headers = get(server, "/", raw=True)
    assert b"static/vendor/leaflet/leaflet.js" in body and headers["Content-Type"].startswith("text/html")
    body, headers = get(server, "/static/vendor/leaflet/leaflet.js", raw=True)
    assert body.startswith(b"/* @preserve\n * Leaflet 1.9.4") and "javascript" in headers["Content-Type"]


# --------------------------------------------------------------------------- rasters
def test_raster_store_overview_window_and_rewrite(tmp_path):
    """Zoomed-out requests come from the strided overview, zoomed-in ones from windows; a compressed
    dataset reads the same; a file rewritten on disk is read anew."""
    from sbts.core.serve.rasters import RasterStore

    rng = np.random.default_rng(0)
    data = rng.normal(size=(5, 300, 200)).astype(np.float32)
    path = tmp_path / "t.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("plain", data=data, chunks=(1, 40, 200))
        f.create_dataset("packed", data=data, chunks=(1, 64, 64), compression="gzip")
    store = RasterStore(overview_pixels=50)  # stride 6
    assert store.overview_stride((300, 200)) == 6
    rows = np.arange(0, 300, 12)
    cols = np.concatenate([[-1], np.arange(0, 200, 12), [250]])
    for name in ("plain", "packed"):
        got = store.sample(path, name, 2, rows, cols)
        want = data[2][np.ix_((rows // 6) * 6, (np.clip(cols, 0, 199) // 6) * 6)]
        np.testing.assert_array_equal(got[:, 1:-1], want[:, 1:-1])
        assert np.isnan(got[:, 0]).all() and np.isnan(got[:, -1]).all()
        fine_r, fine_c = np.arange(100, 140), np.arange(50, 90, 2)  # spacing 1–2: a window read
        np.testing.assert_array_equal(store.sample(path, name, 2, fine_r, fine_c), data[2][np.ix_(fine_r, fine_c)])
        np.testing.assert_array_equal(store.pixel(path, name, 17, 23), data[:, 17, 23])
    assert store.stats["overview_reads"] == 2 and store.stats["window_reads"] == 2
    store.sample(path, "plain", 2, rows, cols)
    assert store.stats["overview_reads"] == 2  # cached
    with h5py.File(tmp_path / "new.h5", "w") as f:  # rewritten as sbts writes: a new file renamed over it
        f.create_dataset("plain", data=data + 1, chunks=(1, 40, 200))
    os.replace(tmp_path / "new.h5", path)
    got = store.sample(path, "plain", 2, rows, cols[1:-1])
    np.testing.assert_array_equal(got, data[2][np.ix_((rows // 6) * 6, (cols[1:-1] // 6) * 6)] + 1)
    store.close()


# --------------------------------------------------------------------------- the command
def test_sbts_serve_command_starts_and_answers(demo_work, tmp_path):
    sbts = os.path.join(os.path.dirname(sys.executable), "sbts")
    proc = subprocess.Popen([sbts, "serve", str(demo_work), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        deadline = time.time() + 60
        while time.time() < deadline and url is None:
            line = proc.stdout.readline()
            if "http://" in line:
                url = line.split(" at ")[1].split()[0]
        assert url and url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/info", timeout=30) as r:
            assert json.loads(r.read())["default_layer"] == "velocity.h5:velocity"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_sbts_serve_refuses_bad_input(tmp_path, demo_work):
    from click.testing import CliRunner

    from sbts.cli.main import cli

    r = CliRunner().invoke(cli, ["serve", str(tmp_path)])
    assert r.exit_code == 1 and "no sbts/MintPy product" in r.output
    r = CliRunner().invoke(cli, ["serve", str(demo_work), "--basemap", "https://x/tiles.png"])
    assert r.exit_code == 1 and "needs {z}, {x} and {y}" in r.output
    r = CliRunner().invoke(cli, ["serve", str(demo_work), "--ref-gnss", "REF1"])
    assert r.exit_code == 1 and "--ref-gnss needs --gnss" in r.output
    r = CliRunner().invoke(cli, ["--help"])
    assert "serve" in r.output


def test_radar_grid_tiles_are_image_pixels(tmp_path):
    """A product in radar coordinates (no X_FIRST/Y_FIRST) is placed as an image: at zoom z one pixel
    is 2**z screen pixels, tile (x, y) starts at column 256·x/2**z, row 256·y/2**z."""
    from sbts.core.serve.state import ViewerState

    rng = np.random.default_rng(3)
    data = rng.normal(0, 0.02, (300, 200)).astype(np.float32)
    with h5py.File(tmp_path / "velocity.h5", "w") as f:
        f.attrs.update({"FILE_TYPE": "velocity", "UNIT": "m/year", "LENGTH": "300", "WIDTH": "200", "REF_Y": "5",
                        "REF_X": "6", "START_DATE": "20200101", "END_DATE": "20201231"})
        f.create_dataset("velocity", data=data)
        f.create_dataset("intercept", data=np.zeros_like(data))
    state = ViewerState(tmp_path)
    try:
        (grid,) = state.info()["grids"]
        assert grid["mode"] == "pixel" and grid["bounds"] == [[-300.0, 0.0], [0.0, 200.0]]
        for z, tx, ty in ((0, 0, 1), (-1, 0, 0), (1, 1, 2)):
            png = state.tile("velocity.h5:velocity", z, tx, ty, vmin=-5.0, vmax=5.0)
            got = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
            centre = np.arange(256) + 0.5
            rows = np.floor((ty * 256 + centre) / 2.0 ** z).astype(int)
            cols = np.floor((tx * 256 + centre) / 2.0 ** z).astype(int)
            vals = np.full((256, 256), np.nan)
            ok_r, ok_c = rows < 300, cols < 200
            vals[np.ix_(ok_r, ok_c)] = data[np.ix_(rows[ok_r], cols[ok_c])].astype(np.float64) * 100
            np.testing.assert_array_equal(got, _expected_rgba(vals, -5, 5, "RdBu_r"))
    finally:
        state.close()
