"""Ionosphere from TEC maps (``sbts correct ionosphere_tec``, mintpy.ionosphericDelay.method = tec):
the IONEX reader and its interpolation against values computed by hand from the real JPL map
(../shared/data/ionex_jpl_gim, 2015-11-15), the 40.31·TEC/f² delay, the pierce-point geometry for
ascending and descending passes against pyproj's great-circle solution, and the corrected series."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.errors import InputError, TemplateError
from sbts.core.io.products import TimeSeries, TimeSeriesWriter, write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, Reference
from sbts.core.plugin.runners import run_correction
from sbts.plugins.corrections._ionex import read_ionex
from sbts.plugins.corrections.ionosphere_tec import pierce_point

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "ionex_jpl_gim"
IONEX = DATA / "jplg3190.15i"
pytestmark = pytest.mark.skipif(not IONEX.exists(), reason="../shared/data/ionex_jpl_gim not present")

C = 299792458.0
WAVELENGTH = 0.2362  # m, ALOS-2 L band (f = 1.2692 GHz)


@pytest.fixture(scope="module")
def maps():
    return read_ionex(IONEX)


def test_reader_header_and_grid(maps):
    assert len(maps.epochs) == 13  # TEC maps only (the 13 RMS maps after them are skipped)
    assert maps.epochs[0] == dt.datetime(2015, 11, 15) and maps.epochs[-1] == dt.datetime(2015, 11, 16)
    assert maps.epochs[7] - maps.epochs[6] == dt.timedelta(hours=2)
    assert maps.tec.shape == (13, 71, 73)
    assert maps.lat[0] == 87.5 and maps.lat[-1] == -87.5 and maps.lon[0] == -180 and maps.lon[-1] == 180
    assert maps.height == 450e3 and maps.radius == 6371e3
    # first values of the file: "   96   97   97" at 87.5°N, 180°W, 00:00, in 0.1 TECU (EXPONENT -1)
    np.testing.assert_allclose(maps.tec[0, 0, :3], [9.6, 9.7, 9.7])
    assert np.isfinite(maps.tec).all()


def test_interpolation_against_values_computed_by_hand(maps):
    # at a node and an epoch: the file's value (map 7 = 12:00, 35.0°N 100°W: "95" → 9.5 TECU)
    assert maps.vtec(dt.datetime(2015, 11, 15, 12), np.array(35.0), np.array(-100.0)) == pytest.approx(9.5)
    # 32.6°N 116.2°W at 13:10 UTC, by hand from the file's records (values in 0.1 TECU):
    #   map 7 (12:00) rotated by +70 min = +17.5°: λ' = −98.7, between −100 and −95 (p = 0.26)
    #       35.0°N: 95, 96     32.5°N: 100, 101     (q = 0.96 toward 32.5°N)
    #       → 0.04·(95 + 0.26·1) + 0.96·(100 + 0.26·1) = 100.06
    #   map 8 (14:00) rotated by −50 min = −12.5°: λ' = −128.7, between −130 and −125 (p = 0.26)
    #       35.0°N: 109, 115   32.5°N: 109, 117
    #       → 0.04·(109 + 0.26·6) + 0.96·(109 + 0.26·8) = 111.0592
    #   in time: (50/120)·100.06 + (70/120)·111.0592 = 106.4762 → 10.64762 TECU
    value = maps.vtec(dt.datetime(2015, 11, 15, 13, 10), np.array(32.6), np.array(-116.2))
    assert value == pytest.approx(10.64762, abs=1e-9)
    # longitudes wrap: 185°E is 175°W
    t = dt.datetime(2015, 11, 15, 5, 30)
    assert maps.vtec(t, np.array(10.0), np.array(185.0)) == pytest.approx(maps.vtec(t, np.array(10.0), np.array(-175.0)))
    with pytest.raises(InputError, match="give the file of that day"):
        maps.vtec(dt.datetime(2015, 11, 16, 0, 1), np.array(0.0), np.array(0.0))


def test_not_ionex_is_one_line(tmp_path):
    bad = tmp_path / "jplg3190.15i"
    bad.write_text("hello\n")
    with pytest.raises(InputError, match="not an IONEX file"):
        read_ionex(bad)


@pytest.mark.parametrize("azimuth, west", [(102.0, True), (-102.0, False)])
def test_pierce_point_against_pyproj_great_circle(azimuth, west):
    pyproj = pytest.importorskip("pyproj")
    lat, lon, inc, r, h = 32.6, -116.2, 40.0, 6371e3, 450e3
    ipp_lat, ipp_lon, inc_i = pierce_point(np.array(lat), np.array(lon), np.array(inc), np.array(azimuth), r, h)
    # law of sines in the triangle Earth centre – pixel – pierce point: sin θ_i = R sin θ / (R + H)
    assert float(inc_i) == pytest.approx(math.degrees(math.asin(r * math.sin(math.radians(inc)) / (r + h))))
    psi = math.radians(inc - float(inc_i))
    geod = pyproj.Geod(a=r, b=r)  # a sphere of the maps' radius
    lon2, lat2, _ = geod.fwd(lon, lat, -azimuth, r * psi)  # bearing clockwise = −azimuthAngle
    assert float(ipp_lat) == pytest.approx(lat2, abs=1e-9) and float(ipp_lon) == pytest.approx(lon2, abs=1e-9)
    assert (float(ipp_lon) < lon) == west  # an ascending pass looks east: its rays pierce the shell to the west
    assert 330e3 < r * psi < 360e3  # ~3.1° at 40° incidence and 450 km


L, W = 4, 5
STEP = 0.01
Y_FIRST, X_FIRST = 32.6 + 1.5 * STEP, -116.2 - 2.5 * STEP  # pixel (1, 2) centred on 32.6°N 116.2°W
UTC = 13 * 3600 + 10 * 60
DATES = ["20151115", "20151116"]


def _stack(folder: Path, inc: float, heading: float = -12.0, ionex_dir: str = "IONEX", azimuth: float | None = None,
           corners: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    meta = Metadata(Grid(L, W, GeoGrid(X_FIRST, Y_FIRST, STEP, -STEP)), unit="m",
                    reference=Reference(y=0, x=0, date=dt.date(2015, 11, 15)))
    meta = meta.with_radar(center_line_utc=float(UTC), heading=heading, antenna_side=-1, wavelength=WAVELENGTH)
    if corners:  # LAT_REF1..4/LON_REF1..4: the scene corners, as MintPy's readers write them
        lat1, lat2, lon1, lon2 = Y_FIRST, Y_FIRST - L * STEP, X_FIRST, X_FIRST + W * STEP
        meta = meta.with_extra(**{f"LAT_REF{i}": str(a) for i, a in enumerate((lat1, lat1, lat2, lat2), 1)},
                               **{f"LON_REF{i}": str(o) for i, o in enumerate((lon1, lon2, lon1, lon2), 1)})
    signal = np.random.default_rng(1).normal(0, 0.01, (2, L, W)).astype(np.float32)
    with TimeSeriesWriter(folder / "timeseries.h5", meta, DATES, np.zeros(2)) as w:
        w.write("timeseries", signal)
    (folder / "inputs").mkdir(exist_ok=True)
    layers = {"incidenceAngle": np.full((L, W), inc, np.float32), "height": np.zeros((L, W), np.float32)}
    if azimuth is not None:
        layers["azimuthAngle"] = np.full((L, W), azimuth, np.float32)
    write_map(folder / "inputs" / "geometryGeo.h5", meta, "geometry", layers, unit=None)
    (folder / ionex_dir).mkdir(exist_ok=True)
    shutil.copy(IONEX, folder / ionex_dir / IONEX.name)  # 20151116 has no map: left uncorrected
    return folder


def _run(folder: Path, **keys):
    return run_correction("ionosphere_tec", Template({"mintpy.ionosphericDelay.method": "tec", **keys}), folder)


def test_delay_is_40_31_tec_over_f_squared(tmp_path, caplog):
    # near-vertical look: the pierce point is the pixel and the slant TEC is the vertical TEC
    work = _stack(tmp_path, inc=1e-4)
    with caplog.at_level("WARNING"):
        result = _run(work)
    assert "20151116" in caplog.text  # no map for it: listed, left uncorrected
    assert result.output == work / "timeseries_ion.h5"
    delay = TimeSeries(work / "inputs" / "TECjlr.h5")
    assert delay.date_strings == ["20151115"] and delay.metadata.reference.y is None
    f = C / WAVELENGTH
    expected = 40.31 * 10.64762e16 / f ** 2  # the hand-computed VTEC above: 2.664 m at L band
    assert delay.read_dates()[0, 1, 2] == pytest.approx(expected, rel=1e-6)  # float32 storage
    assert expected == pytest.approx(2.6644, abs=1e-4)
    # the series: only the reference date has a map, so its delay is removed relative to itself → unchanged;
    # the other date has none → unchanged too; and the file says what it did
    before, after = TimeSeries(work / "timeseries.h5").read_dates(), TimeSeries(result.output).read_dates()
    np.testing.assert_array_equal(before, after)
    assert TimeSeries(result.output).metadata.extra["mintpy.ionosphericDelay.method"] == "tec"


def test_slant_mapping_and_correction_relative_to_references(tmp_path, maps):
    # two dates with maps: the real one and the same file labelled a day later (its epochs shifted)
    work = _stack(tmp_path, inc=38.0, ionex_dir="maps")
    _shifted_copy(IONEX, work / "maps" / "jplg3200.15i", dt.timedelta(days=1))
    result = _run(work, **{"mintpy.ionosphericDelay.tecDir": "maps"})
    delay = TimeSeries(work / "inputs" / "TECjlr.h5").read_dates().astype(np.float64)
    lat, lon = Y_FIRST - 1.5 * STEP, X_FIRST + 2.5 * STEP
    ipp_lat, ipp_lon, inc_i = pierce_point(np.array(lat), np.array(lon), np.array(38.0), np.array(102.0),
                                           maps.radius, maps.height)
    vtec = maps.vtec(dt.datetime(2015, 11, 15, 13, 10), ipp_lat, ipp_lon)
    f = C / WAVELENGTH
    assert delay[0, 1, 2] == pytest.approx(40.31 * vtec * 1e16 / f ** 2 / math.cos(math.radians(float(inc_i))),
                                           rel=1e-6)
    np.testing.assert_allclose(delay[1], delay[0], rtol=1e-6)  # same maps a day later
    # corrected = ts − (delay − delay[REF_Y/REF_X] − delay[REF_DATE])
    before = TimeSeries(work / "timeseries.h5").read_dates().astype(np.float64)
    rel = delay - delay[:, :1, :1]
    rel = rel - rel[0][None]
    np.testing.assert_allclose(TimeSeries(result.output).read_dates(), before - rel, atol=2e-7)


def _shifted_copy(src: Path, dst: Path, shift: dt.timedelta) -> None:
    """The IONEX file with every epoch record moved by ``shift`` (a day's maps labelled as another day)."""
    out = []
    for line in src.read_text().splitlines():
        if line[60:].strip() in ("EPOCH OF FIRST MAP", "EPOCH OF LAST MAP", "EPOCH OF CURRENT MAP"):
            v = [int(x) for x in line[:60].split()]
            t = dt.datetime(*v) + shift
            line = f"{t.year:6d}{t.month:6d}{t.day:6d}{t.hour:6d}{t.minute:6d}{t.second:6d}".ljust(60) + line[60:]
        out.append(line)
    dst.write_text("\n".join(out) + "\n")


def test_errors_are_one_line(tmp_path):
    work = _stack(tmp_path, inc=30.0)
    with pytest.raises(InputError, match=r"no IONEX file of solution 'cod'.*codg3190.15i"):
        _run(work, **{"mintpy.ionosphericDelay.tecSolution": "cod"})
    with pytest.raises(TemplateError, match="excludeDate"):
        _run(work, **{"mintpy.ionosphericDelay.excludeDate": "20151116"})


def test_against_mintpy_iono_tec(tmp_path, mintpy_oracle, maps):
    """MintPy 1.6.4's iono_tec.py on the same stack and IONEX files: the same pierce point and the same
    vertical TEC there (two implementations of the rotated-map interpolation), the same file name; the
    delays differ by MintPy's "refraction angle" only (its eq. 8 puts the column TEC where the
    electron density belongs: n = 1 + K·VTEC/f², so at L band with 10 TECU n ≈ 3.6 and the slant mapping
    uses 9.6° instead of the 35.1° of the single-layer geometry; sbts keeps the geometric mapping the
    issue asks for).  MintPy also uses one VTEC, at the scene centre's pierce point, for every pixel."""
    work = _stack(tmp_path / "sbts", inc=38.0, azimuth=102.0, corners=True)
    theirs = _stack(tmp_path / "mintpy", inc=38.0, azimuth=102.0, corners=True)
    for folder in (work, theirs):
        _shifted_copy(IONEX, folder / "IONEX" / "jplg3200.15i", dt.timedelta(days=1))
    _run(work)
    mintpy_oracle.run("iono_tec.py", "timeseries.h5", "-g", "inputs/geometryGeo.h5", "--tec-dir", "IONEX", cwd=theirs)
    import h5py

    with h5py.File(theirs / "inputs" / "TECjlr.h5", "r") as f:  # MintPy's name, as sbts writes it
        vtec_mintpy = f["vtec"][()]
        ipp = float(f.attrs["IONO_LAT"]), float(f.attrs["IONO_LON"])
        inc_i = float(f.attrs["IONO_INCIDENCE_ANGLE"])
        theirs_delay = f["timeseries"][()]
    # MintPy's scene centre: the upper-left corner of pixel (L // 2, W // 2)
    centre_lat, centre_lon = Y_FIRST - (L // 2) * STEP, X_FIRST + (W // 2) * STEP
    ours_ipp = pierce_point(np.array(centre_lat), np.array(centre_lon), np.array(38.0), np.array(102.0),
                            maps.radius, maps.height)
    assert float(ours_ipp[0]) == pytest.approx(ipp[0], abs=1e-5) and float(ours_ipp[1]) == pytest.approx(ipp[1], abs=1e-5)
    assert float(ours_ipp[2]) == pytest.approx(inc_i, abs=1e-4)
    ours_vtec = maps.vtec(dt.datetime(2015, 11, 15, 13, 10), np.array(ipp[0]), np.array(ipp[1]))
    assert float(vtec_mintpy[0]) == pytest.approx(float(ours_vtec), abs=1e-4)  # 10.26 TECU
    f = C / WAVELENGTH
    ours_delay = TimeSeries(work / "inputs" / "TECjlr.h5").read_dates()
    n_group = 1 + 40.31 * float(vtec_mintpy[0]) * 1e16 / f ** 2
    refraction = math.asin(math.sin(math.radians(inc_i)) / n_group)
    expected_ratio = math.cos(refraction) / math.cos(math.radians(inc_i))  # 1.21 here
    # one pixel near the centre: its own pierce point is within ~0.02° of the centre's
    assert float(ours_delay[0, 2, 2] / theirs_delay[0, 2, 2]) == pytest.approx(expected_ratio, rel=2e-3)


def test_new_acquisition_reads_only_its_ionex_file(tmp_path, caplog, monkeypatch):
    """A map that appears for a date (a new acquisition) computes that date's delay only: the other
    dates are copied from the previous TEC file, which ends up equal, value for value, to a file
    computed from scratch.  The second day's map is the first one with its epochs one day later."""
    import logging

    import sbts.plugins.corrections.ionosphere_tec as tec_module

    text = IONEX.read_text()
    shifted = text.replace("  2015    11    16 ", "  2015    11    17 ").replace("  2015    11    15 ", "  2015    11    16 ")
    assert shifted.count("2015    11    16") == text.count("2015    11    15")
    work = _stack(tmp_path / "w", inc=30.0)
    _run(work)  # the first run: only 20151115 has a map
    assert TimeSeries(work / "inputs" / "TECjlr.h5").date_strings == ["20151115"]
    (work / "IONEX" / "jplg3200.15i").write_text(shifted)  # the map of 20151116 arrives
    read = []
    real = tec_module.read_ionex
    monkeypatch.setattr(tec_module, "read_ionex", lambda path: read.append(Path(path).name) or real(path))
    caplog.set_level(logging.INFO, logger="sbts")
    _run(work)
    assert read == ["jplg3200.15i"]  # the old day's file is not read again
    assert "1 date(s) kept from the previous file" in caplog.text
    fresh = _stack(tmp_path / "fresh", inc=30.0)
    (fresh / "IONEX" / "jplg3200.15i").write_text(shifted)
    _run(fresh)
    got, want = (TimeSeries(p / "inputs" / "TECjlr.h5") for p in (work, fresh))
    assert got.date_strings == want.date_strings == DATES
    np.testing.assert_array_equal(got.read_dates(), want.read_dates())
