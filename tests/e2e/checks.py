"""Checks of each step's products after `sbts run`, shared by the matrix and the oracle tests.

Values are compared with the synthetic truth where there is one; each tolerance says why.
"""

from __future__ import annotations

import importlib
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest

from sbts.core.workflow.runner import STEP_NAMES

STATUS = re.compile(r"^(\w+)\s+(ran|skipped|disabled|failed)\s*$", re.M)


#: MintPy's per-date corrections and HDF-EOS5 switched on (the matrices run the defaults otherwise)
CORRECTIONS = """
mintpy.solidEarthTides = yes
mintpy.troposphericDelay.method = height_correlation
mintpy.deramp = quadratic
mintpy.save.hdfEos5 = yes
mintpy.save.hdfEos5.relative_orbit = 128
mintpy.save.hdfEos5.first_frame = 593
"""


def sbts(*args) -> tuple[int, str]:
    """``sbts ARGS`` through the click CLI (in-process: the same code path, without a new interpreter)."""
    import warnings

    from click.testing import CliRunner

    from sbts.cli.main import cli

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


def statuses(output: str) -> dict[str, str]:
    return dict(STATUS.findall(output))


OFF_BY_DEFAULT = {"correct_unwrap_error", "correct_LOD", "correct_SET", "correct_ionosphere", "correct_troposphere",
                  "deramp"}


def writer(name: str):
    """The format's writer module, or a skip when this tree does not have it yet."""
    try:
        return importlib.import_module(f"formats.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"formats.{name}":
            pytest.skip(f"tests/e2e/formats/{name}.py is not in this tree (written on another branch)")
        raise


@dataclass
class Run:
    name: str
    geocoded: bool
    root: Path
    template: Path
    first: dict[str, str]
    second: dict[str, str] = field(default_factory=dict)
    hdfeos5: dict[str, str] = field(default_factory=dict)
    third: dict[str, str] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return self.template.parent


# --------------------------------------------------------------------------- helpers
def attrs(path: Path) -> dict[str, str]:
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}


def read(path: Path, name: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f[name][()]


def readable_by_sbts(path: Path):
    from sbts.core.io.products import Product

    product = Product.open(path)
    for name in product.datasets:
        product.read(name)
    return product


def ref_yx(path: Path) -> tuple[int, int]:
    a = attrs(path)
    return int(a["REF_Y"]), int(a["REF_X"])


def geometry_file(work: Path, geocoded: bool) -> Path:
    """The geometry on the stack's grid."""
    return work / "inputs" / ("geometryGeo.h5" if geocoded else "geometryRadar.h5")


def reliable(work: Path) -> np.ndarray:
    return read(work / "maskTempCoh.h5", "mask").astype(bool)


def truth_ts(synth, path: Path) -> np.ndarray:
    """The truth referenced as ``path`` is: at its reference pixel and its reference date."""
    ry, rx = ref_yx(path)
    t = synth.truth_timeseries()
    t = t - t[:, ry:ry + 1, rx:rx + 1]
    date = attrs(path).get("REF_DATE")
    return t - t[synth.date_list.index(date)] if date in synth.date_list else t


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean(np.square(a))))


def latlon_grid(path: Path) -> bool:
    a = attrs(path)
    return "Y_FIRST" in a and a.get("EPSG", "4326") == "4326" and a.get("X_UNIT", "degrees").startswith("deg")


def expected_geocoded(work: Path, geocoded: bool, source: np.ndarray, out: Path) -> np.ndarray:
    """``source`` (on the stack's grid) resampled by nearest neighbour onto the grid of ``out``,
    independently of sbts's geocoder: through the loaded lookup table read directly (GAMMA/ROI_PAC
    azimuth/range coordinates), a Delaunay interpolation of the row/column of each radar pixel
    (ISCE latitude/longitude), or GDAL's transform of a projected grid (UTM)."""
    from scipy.interpolate import griddata

    a = attrs(out)
    length, width = int(a["LENGTH"]), int(a["WIDTH"])
    y0, dy, x0, dx = (float(a[k]) for k in ("Y_FIRST", "Y_STEP", "X_FIRST", "X_STEP"))
    lat = y0 + (np.arange(length) + 0.5) * dy
    lon = x0 + (np.arange(width) + 0.5) * dx
    lon, lat = np.meshgrid(lon, lat)
    src_len, src_wid = source.shape
    if geocoded:  # a projected stack grid warped to lat/lon
        from osgeo import osr

        sa = attrs(work / "inputs" / "ifgramStack.h5")
        src, dst = osr.SpatialReference(), osr.SpatialReference()
        src.ImportFromEPSG(4326)
        dst.ImportFromEPSG(int(sa["EPSG"]))
        for s in (src, dst):
            s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        pts = np.asarray(osr.CoordinateTransformation(src, dst).TransformPoints(np.c_[lon.ravel(), lat.ravel()]))
        x, y = pts[:, 0].reshape(lon.shape), pts[:, 1].reshape(lon.shape)
        rows = (y - float(sa["Y_FIRST"])) / float(sa["Y_STEP"]) - 0.5
        cols = (x - float(sa["X_FIRST"])) / float(sa["X_STEP"]) - 0.5
    elif (work / "inputs" / "geometryGeo.h5").exists() and "azimuthCoord" in h5py.File(work / "inputs" / "geometryGeo.h5", "r"):
        lut = work / "inputs" / "geometryGeo.h5"
        la = attrs(lut)
        assert (int(la["LENGTH"]), int(la["WIDTH"])) == (length, width), "default output grid = the lookup grid"
        rows, cols = read(lut, "azimuthCoord").astype(float), read(lut, "rangeCoord").astype(float)
        rows[(rows <= 0) & (cols <= 0)] = np.nan
    else:
        geom = work / "inputs" / "geometryRadar.h5"
        rlat, rlon = read(geom, "latitude").astype(float), read(geom, "longitude").astype(float)
        ii, jj = np.mgrid[:src_len, :src_wid]
        pts = np.c_[rlon.ravel(), rlat.ravel()]
        rows = griddata(pts, ii.ravel().astype(float), (lon, lat), method="linear")
        cols = griddata(pts, jj.ravel().astype(float), (lon, lat), method="linear")
    inside = np.isfinite(rows) & np.isfinite(cols) & (rows >= -0.5) & (rows <= src_len - 0.5) \
        & (cols >= -0.5) & (cols <= src_wid - 0.5)
    r = np.clip(np.floor(np.nan_to_num(rows) + 0.5).astype(int), 0, src_len - 1)
    c = np.clip(np.floor(np.nan_to_num(cols) + 0.5).astype(int), 0, src_wid - 1)
    return np.where(inside, source[r, c], np.nan)


def assert_resampled(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Nearest-neighbour geocoding agrees pixel for pixel, but for positions within a hair of a
    pixel boundary (rounding of float32 lookups): at least 98 % of the common pixels, and both
    cover the same footprint (≥ 97 % of the pixels valid in one are valid in the other)."""
    both = np.isfinite(got) & np.isfinite(want)
    assert both.sum() > 0.3 * got.size, f"{what}: only {both.sum()} of {got.size} pixels geocoded"
    assert both.sum() >= 0.97 * max(np.isfinite(got).sum(), np.isfinite(want).sum()), what
    same = np.isclose(got[both], want[both], rtol=0, atol=1e-6)
    assert same.mean() >= 0.98, f"{what}: {same.mean():.1%} of the pixels equal the nearest source pixel"


# --------------------------------------------------------------------------- the steps
def check_load_data(r: Run, synth) -> None:
    from sbts.core.io.products import IfgramStack

    stack_file = r.work / "inputs" / "ifgramStack.h5"
    stack = readable_by_sbts(stack_file)
    assert isinstance(stack, IfgramStack)
    a = attrs(stack_file)
    assert a["FILE_TYPE"] == "ifgramStack"
    assert (int(a["LENGTH"]), int(a["WIDTH"])) == synth.shape
    assert ("Y_FIRST" in a) == r.geocoded
    # the processors store the wavelength as a frequency or to a few digits: 1e-6 relative
    assert float(a["WAVELENGTH"]) == pytest.approx(float(synth.attrs["WAVELENGTH"]), rel=1e-6)
    for key in ("PLATFORM", "HEADING", "STARTING_RANGE", "EARTH_RADIUS", "HEIGHT", "RANGE_PIXEL_SIZE",
                "AZIMUTH_PIXEL_SIZE", "ORBIT_DIRECTION", "ALOOKS", "RLOOKS"):
        assert key in a, f"{key} missing from ifgramStack.h5"
    dates = [f"{d1.decode()}_{d2.decode()}" for d1, d2 in read(stack_file, "date")]
    assert dates == synth.date12_list
    # phase and coherence are stored as float32 by every processor: loaded exactly (1e-6 rad for
    # formats that keep them in another float layout)
    np.testing.assert_allclose(read(stack_file, "unwrapPhase"), synth.unwrap_phase, rtol=0, atol=1e-5)
    np.testing.assert_allclose(read(stack_file, "coherence"), synth.coherence, rtol=0, atol=1e-5)
    # baselines are written as text with 4 decimals (GAMMA tables, ROI_PAC rsc, HyP3 txt): 1 mm
    np.testing.assert_allclose(read(stack_file, "bperp"), synth.pair_bperp, rtol=0, atol=1e-3)
    geom = geometry_file(r.work, r.geocoded)
    readable_by_sbts(geom)
    assert attrs(geom)["FILE_TYPE"] == "geometry"
    height = read(geom, "height")
    assert height.shape == synth.shape
    np.testing.assert_allclose(height, synth.height, rtol=0, atol=1e-3)  # float32 DEMs: exact
    for name in ("incidenceAngle", "slantRangeDistance"):
        value = read(geom, name)
        # processors give the incidence per pixel or from their orbit (35–39° over this scene)
        assert np.nanmin(value) > 0, name
    inc = read(geom, "incidenceAngle")
    assert 30 < np.nanmedian(inc) < 45
    assert 7.5e5 < np.nanmedian(read(geom, "slantRangeDistance")) < 9.5e5


def check_modify_network(r: Run, synth) -> None:
    lines = [ln for ln in (r.work / "coherenceSpatialAvg.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert len(lines) == synth.num_pair
    drop = read(r.work / "inputs" / "ifgramStack.h5", "dropIfgram")
    assert drop.dtype == bool and drop.all(), "MintPy's default network keeps every pair"


def check_reference_point(r: Run, synth) -> None:
    ry, rx = ref_yx(r.work / "inputs" / "ifgramStack.h5")
    assert 0 <= ry < synth.shape[0] and 0 <= rx < synth.shape[1]
    assert synth.water_mask[ry, rx], "the reference point is on water"
    readable_by_sbts(r.work / "avgSpatialCoh.h5")
    readable_by_sbts(r.work / "maskConnComp.h5")
    if r.geocoded:
        a = attrs(r.work / "inputs" / "ifgramStack.h5")
        assert "REF_LAT" in a and "REF_LON" in a


def check_quick_overview(r: Run, synth) -> None:
    readable_by_sbts(r.work / "avgPhaseVelocity.h5")
    readable_by_sbts(r.work / "numTriNonzeroIntAmbiguity.h5")


def check_invert_network(r: Run, synth) -> None:
    from sbts.core.io.products import TimeSeries

    ts_file = r.work / "timeseries.h5"
    assert isinstance(readable_by_sbts(ts_file), TimeSeries)
    assert [d.decode() for d in read(ts_file, "date")] == synth.date_list
    err = read(ts_file, "timeseries") - truth_ts(synth, ts_file)
    mask = reliable(r.work)
    assert mask.mean() > 0.5, "fewer than half the pixels reliable"
    # the raw inversion holds everything the phase holds (deformation, troposphere, DEM error term):
    # what remains is phase noise (≈ 1 mm at these coherences) and the three uncorrected unwrapping
    # errors (MintPy's default: no correction) spread over their pairs; the median pixel is within 3 mm
    assert float(np.median(np.abs(err[:, mask]))) < 0.003
    for name in ("temporalCoherence.h5", "numInvIfgram.h5", "maskTempCoh.h5"):
        readable_by_sbts(r.work / name)


def check_correct_topography(r: Run, synth) -> None:
    dem = read(r.work / "demErr.h5", "dem")
    readable_by_sbts(r.work / "timeseries_demErr.h5")
    truth = synth.truth.dem_error
    up, down = np.isclose(truth, truth.max()), np.isclose(truth, truth.min())
    # 14 dates, ±150 m baselines and 3 mm troposphere give ≈ 12 m of noise per pixel, spatially
    # correlated: the +30 m and −18 m patches (63 pixels each) must still stand apart by > 20 m of
    # the 48 m between them
    assert dem[up].mean() - dem[down].mean() > 20.0, (dem[up].mean(), dem[down].mean())


def check_residual_RMS(r: Run, synth) -> None:
    text = (r.work / "reference_date.txt").read_text().split()
    assert text and text[0] in synth.date_list
    assert (r.work / "rms_timeseriesResidual_ramp.txt").exists()


def check_reference_date(r: Run, synth) -> None:
    date = (r.work / "reference_date.txt").read_text().split()[0]
    for name in ("timeseries.h5", "timeseries_demErr.h5"):
        assert attrs(r.work / name)["REF_DATE"] == date, name
        ts = read(r.work / name, "timeseries")
        assert np.nanmax(np.abs(ts[synth.date_list.index(date)])) < 1e-6


def check_velocity(r: Run, synth) -> None:
    vel_file = r.work / "velocity.h5"
    readable_by_sbts(vel_file)
    v = read(vel_file, "velocity")
    ry, rx = ref_yx(vel_file)
    truth = synth.truth.velocity - synth.truth.velocity[ry, rx]
    mask = reliable(r.work)
    # MintPy's default model is a line: the 8 mm seasonal term and 3 mm of troposphere over 14
    # dates leave ≈ 3 mm/yr; 6 mm/yr is 2.4 % of the −25 cm/yr bowl
    assert rms((v - truth)[mask]) < 0.006
    assert abs(float(v[ry, rx])) < 1e-6


def check_geocode(r: Run, synth) -> None:
    stack_grid_latlon = latlon_grid(r.work / "inputs" / "ifgramStack.h5")
    if stack_grid_latlon:
        assert r.first["geocode"] == "disabled"
        assert "already geocoded" in r.logs[0]
        assert not (r.work / "geo").exists()
        return
    assert r.first["geocode"] == "ran"
    names = ["velocity.h5", "timeseries_demErr.h5", "temporalCoherence.h5", "maskTempCoh.h5",
             "avgSpatialCoh.h5", geometry_file(r.work, r.geocoded).name]
    for name in names:
        out = r.work / "geo" / f"geo_{name}"
        readable_by_sbts(out)
        assert latlon_grid(out), f"{out.name} is not on a lat/lon grid"
    out = r.work / "geo" / "geo_velocity.h5"
    got = read(out, "velocity")
    want = expected_geocoded(r.work, r.geocoded, read(r.work / "velocity.h5", "velocity"), out)
    assert_resampled(got, want, "geo_velocity.h5")
    a = attrs(out)
    # the reference point follows: its geocoded pixel is resampled from the reference pixel or, where
    # no output pixel takes it (grids not aligned), from one of its radar neighbours
    assert "REF_LAT" in a and "REF_Y" in a, "the reference point was lost in geocoding"
    radar = read(r.work / "velocity.h5", "velocity")
    ry, rx = ref_yx(r.work / "velocity.h5")
    near = radar[max(ry - 1, 0):ry + 2, max(rx - 1, 0):rx + 2]
    assert np.nanmin(np.abs(near - float(got[int(a["REF_Y"]), int(a["REF_X"])]))) < 1e-6


def check_google_earth(r: Run, synth) -> None:
    velocity = r.work / "velocity.h5"
    if not latlon_grid(r.work / "inputs" / "ifgramStack.h5"):
        velocity = r.work / "geo" / "geo_velocity.h5"
    kmz = r.work / "pic" / f"{velocity.stem}.kmz"
    with zipfile.ZipFile(kmz) as z:
        kml = z.read("doc.kml").decode()
        assert any(n.endswith(".png") for n in z.namelist())
    box = {k: float(re.search(rf"<{k}>([-0-9.e]+)</{k}>", kml).group(1)) for k in ("north", "south", "east", "west")}
    a = attrs(velocity)
    n, w = float(a["Y_FIRST"]), float(a["X_FIRST"])
    s, e = n + int(a["LENGTH"]) * float(a["Y_STEP"]), w + int(a["WIDTH"]) * float(a["X_STEP"])
    step = abs(float(a["Y_STEP"]))
    for k, v in (("north", n), ("south", s), ("east", e), ("west", w)):
        assert box[k] == pytest.approx(v, abs=step), (k, box[k], v)
    assert -90 <= box["south"] < box["north"] <= 90 and -180 <= box["west"] < box["east"] <= 180


def check_hdfeos5(r: Run, synth) -> None:
    assert r.first["hdfeos5"] == "disabled"  # MintPy's default: mintpy.save.hdfEos5 = no
    assert r.hdfeos5["hdfeos5"] == "ran"
    (he5,) = sorted(r.work.glob("*.he5"))
    ts = r.work / "timeseries_demErr.h5"
    if not latlon_grid(r.work / "inputs" / "ifgramStack.h5"):
        ts = r.work / "geo" / "geo_timeseries_demErr.h5"
    with h5py.File(he5, "r") as f:
        grp = f["HDFEOS/GRIDS/timeseries"]
        disp = grp["observation/displacement"][()]
        assert [d.decode() for d in grp["observation/date"][()]] == synth.date_list
        for name in ("quality/temporalCoherence", "quality/mask", "geometry/height"):
            assert grp[name].shape == disp.shape[1:], name
        root = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}
    np.testing.assert_array_equal(np.nan_to_num(disp), np.nan_to_num(read(ts, "timeseries")))
    # insarmaps reads lat/lon: a UTM grid must have been warped
    assert abs(float(root["Y_FIRST"])) <= 90 and abs(float(root["X_FIRST"])) <= 180
    assert root["FILE_TYPE"] == "HDFEOS"


CHECKS = {name: globals().get(f"check_{name}") for name in STEP_NAMES}
