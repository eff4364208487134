"""MintPy 1.6.4's own loaders on the radar-format fixtures, against ``sbts load`` on the same files.

For each fixture (``formats/<name>.py``, ascending and descending), MintPy's ``load_data.py`` runs
with a stock ``smallbaselineApp.cfg`` plus the fixture's template, which makes it call the prep
script of the processor itself (``prep_isce.py``, ``prep_aria.py``, ``prep_snap.py``), exactly as
``smallbaselineApp.py`` does; ``sbts load`` runs on the same files (first: the prep scripts write
``.rsc`` files beside the inputs).  MintPy accepting a fixture is the first check that the fixture
looks like the product; the second is that both give the same ``ifgramStack.h5`` and geometry file:

- datasets: dates, bperp, unwrapPhase, coherence, connectComponent, height, incidenceAngle,
  azimuthAngle, latitude/longitude, shadowMask, waterMask, slantRangeDistance, bit for bit
  (float32 copies of the same numbers) unless a difference is listed below;
- attributes: LENGTH, WIDTH, WAVELENGTH, the geographic grid, LAT/LON_REF1..4, HEADING, PLATFORM,
  ORBIT_DIRECTION, ANTENNA_SIDE, ALOOKS/RLOOKS, NCORRLOOKS, STARTING_RANGE, RANGE/AZIMUTH_PIXEL_SIZE,
  PRF, POLARIZATION, HEIGHT, EARTH_RADIUS, CENTER_LINE_UTC.

Where sbts deliberately differs (``docs/mintpy-differences.md``, "Readers") the test asserts the
difference and its size on these fixtures.

ISCE2: MintPy reads the reference metadata with ISCE (not on PyPI) unless ``data.rsc`` is there, as
it is after MintPy's first run on a stack; ``oracle_isce_rsc.py`` writes that file the way MintPy
would (MintPy's own code, ISCE's five orbit numbers taken from the fixture's analytic orbit).
ARIA GUNW: MintPy does not read GUNW products (ARIA-tools' ``ariaTSsetup.py`` turns them into the
VRT stack first), so sbts's GUNW load is compared with MintPy's load of the VRT stack made from the
same synthetic products.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

import oracle_isce_rsc  # noqa: E402
from formats import _radar  # noqa: E402

from sbts.cli.main import cli  # noqa: E402
from sbts.core.demo.synthetic import make_synthetic_stack  # noqa: E402

DIRECTIONS = ("ASCENDING", "DESCENDING")
STACK_DATASETS = ("unwrapPhase", "coherence", "connectComponent")


@pytest.fixture(scope="module")
def synths():
    return {d: make_synthetic_stack((24, 32), 5, seed=5, orbit_direction=d) for d in DIRECTIONS}


# ----------------------------------------------------------------------------- running both loaders
def sbts_load(template: Path, work: Path) -> Path:
    result = CliRunner().invoke(cli, ["load", str(template), "-d", str(work)])
    assert result.exit_code == 0, result.output
    return work / "inputs"


def mintpy_load(oracle, template: Path, synth) -> Path:
    """``load_data.py -t smallbaselineApp.cfg <template>`` in ``<root>/mintpy`` (the template's paths are
    relative to ``<root>/work``, a sibling folder, so they resolve there too)."""
    mp = template.parent.parent / "mintpy"
    mp.mkdir()
    default = next(oracle.venv.glob("lib/python3*/site-packages/mintpy/defaults/smallbaselineApp.cfg"))
    shutil.copy(default, mp / "smallbaselineApp.cfg")
    shutil.copy(template, mp / template.name)
    keys = dict((k.strip(), v.strip()) for k, v in (line.split("=", 1) for line in template.read_text().splitlines()
                                                    if "=" in line))
    if keys["mintpy.load.processor"] == "isce":
        meta_file = sorted(template.parent.glob(keys["mintpy.load.metaFile"]))[0]
        geom_dir = (template.parent / keys["mintpy.load.demFile"]).parent
        oracle_isce_rsc.write_data_rsc(oracle, meta_file, geom_dir, synth)
    proc = oracle.run("load_data.py", "-t", "smallbaselineApp.cfg", template.name, cwd=mp)
    assert "prep_isce.py failed" not in proc.stderr, proc.stderr[-3000:]
    return mp / "inputs"


def read(path: Path) -> tuple[dict, dict]:
    with h5py.File(path, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}
        data = {k: f[k][()] for k in f if isinstance(f[k], h5py.Dataset)}
    return attrs, data


def num(attrs: dict, key: str) -> float:
    return float(attrs[key])


# ----------------------------------------------------------------------------- shared comparisons
def assert_same_stack(s: dict, m: dict, datasets=STACK_DATASETS) -> None:
    np.testing.assert_array_equal(s["date"], m["date"])
    np.testing.assert_allclose(s["bperp"], m["bperp"], rtol=1e-6, atol=1e-5)  # float32
    np.testing.assert_array_equal(s["dropIfgram"], m["dropIfgram"])
    for name in datasets:
        assert s[name].dtype == m[name].dtype, name
        np.testing.assert_array_equal(s[name], m[name], err_msg=name)


def assert_same_attrs(sa: dict, ma: dict, exact=(), floats=(), rel=1e-9) -> None:
    for key in exact:
        assert sa[key] == ma[key], (key, sa[key], ma[key])
    for key in floats:
        assert num(sa, key) == pytest.approx(num(ma, key), rel=rel, abs=1e-12), (key, sa[key], ma[key])


def assert_same_grid(sa: dict, ma: dict, digits: int | None = None) -> None:
    """The geographic grid; ``digits``: MintPy's prep_aria rounds it to 9 decimals."""
    for key in ("X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP"):
        expected = num(ma, key)
        got = round(num(sa, key), digits) if digits else num(sa, key)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), key


def assert_same_corners(sa: dict, ma: dict) -> None:
    for k in range(1, 5):
        for key in (f"LAT_REF{k}", f"LON_REF{k}"):
            assert num(sa, key) == pytest.approx(num(ma, key), rel=1e-12), key


COMMON_EXACT = ("LENGTH", "WIDTH", "ORBIT_DIRECTION", "ANTENNA_SIDE")


# ----------------------------------------------------------------------------- ISCE2
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("name", ["isce_tops", "isce_stripmap"])
def test_isce_stack_as_mintpy_loads_it(name, direction, tmp_path, synths, mintpy_oracle):
    synth = synths[direction]
    template = importlib.import_module(f"formats.{name}").write(tmp_path, synth)
    sa, s = read(sbts_load(template, template.parent) / "ifgramStack.h5")
    sga, sg = read(template.parent / "inputs" / "geometryRadar.h5")
    mp = mintpy_load(mintpy_oracle, template, synth)
    ma, m = read(mp / "ifgramStack.h5")
    mga, mg = read(mp / "geometryRadar.h5")

    assert_same_stack(s, m)
    if name == "isce_stripmap":  # MintPy takes no pass direction from the Frame; sbts does (_passDirection)
        assert "ORBIT_DIRECTION" not in ma and sa["ORBIT_DIRECTION"] == sga["ORBIT_DIRECTION"] == direction
        ma, mga = ({**x, "ORBIT_DIRECTION": direction} for x in (ma, mga))
    for a, b in ((sa, ma), (sga, mga)):
        assert_same_attrs(a, b, exact=COMMON_EXACT + ("PLATFORM", "POLARIZATION", "ALOOKS", "RLOOKS"),
                          floats=("WAVELENGTH", "STARTING_RANGE", "RANGE_PIXEL_SIZE", "PRF"))
        assert_same_corners(a, b)
        # ISCE's orbit numbers (MintPy's: the analytic orbit at mid-scene) from sbts's interpolation
        assert num(a, "HEADING") == pytest.approx(num(b, "HEADING"), abs=1e-4)  # deg
        assert num(a, "HEIGHT") == pytest.approx(num(b, "HEIGHT"), abs=0.01)  # m
        assert num(a, "EARTH_RADIUS") == pytest.approx(num(b, "EARTH_RADIUS"), abs=0.05)  # m
        assert num(a, "AZIMUTH_PIXEL_SIZE") == pytest.approx(num(b, "AZIMUTH_PIXEL_SIZE"), rel=1e-9)
        assert num(a, "NCORRLOOKS") == pytest.approx(num(b, "NCORRLOOKS"), rel=1e-9)
        # documented: CENTER_LINE_UTC is the middle of the sensing span, with its fraction of a
        # second; MintPy takes the first burst's (frame's) mid time and drops the fraction
        diff = num(a, "CENTER_LINE_UTC") - num(b, "CENTER_LINE_UTC")
        assert 0.0 < diff < (4.0 if name == "isce_tops" else 1.0), diff
    for key in ("height", "latitude", "longitude", "incidenceAngle", "azimuthAngle", "waterMask",
                "slantRangeDistance") + (("shadowMask",) if name == "isce_tops" else ()):
        assert sg[key].dtype == mg[key].dtype, key
        np.testing.assert_array_equal(sg[key], mg[key], err_msg=key)
    assert set(mg) == set(sg), (set(mg) ^ set(sg))

    # sbts on the stack after MintPy's prep_isce left its .rsc files beside every raster: the same
    again_a, again = read(sbts_load(template, tmp_path / "again") / "ifgramStack.h5")
    assert_same_stack(again, s)
    assert {k: again_a[k] for k in COMMON_EXACT} == {k: sa[k] for k in COMMON_EXACT}


# ----------------------------------------------------------------------------- SNAP
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_snap_stack_as_mintpy_loads_it(direction, tmp_path, synths, mintpy_oracle):
    from formats import snap

    synth = synths[direction]
    template = snap.write(tmp_path, synth)
    sa, s = read(sbts_load(template, template.parent) / "ifgramStack.h5")
    sga, sg = read(template.parent / "inputs" / "geometryGeo.h5")
    mp = mintpy_load(mintpy_oracle, template, synth)
    ma, m = read(mp / "ifgramStack.h5")
    mga, mg = read(mp / "geometryGeo.h5")

    assert_same_stack(s, m, ("unwrapPhase", "coherence"))
    for a, b in ((sa, ma), (sga, mga)):
        assert_same_attrs(a, b, exact=COMMON_EXACT + ("PLATFORM", "ALOOKS", "RLOOKS"),
                          floats=("WAVELENGTH", "STARTING_RANGE", "RANGE_PIXEL_SIZE", "AZIMUTH_PIXEL_SIZE", "PRF"))
        assert_same_grid(a, b)
        assert_same_corners(a, b)
        # documented: the same heading; MintPy keeps SNAP's centre_heading in [0, 360), sbts writes it
        # in (-180, 180] like every other reader (and MintPy's ISCE, HyP3 and ARIA loaders)
        assert num(b, "HEADING") == pytest.approx(float(synth.attrs["HEADING"]) % 360.0, abs=1e-9)
        assert num(a, "HEADING") == pytest.approx(float(synth.attrs["HEADING"]), abs=1e-9)
        # documented: CENTER_LINE_UTC keeps its fraction of a second (MintPy drops it)
        assert 0.0 <= num(a, "CENTER_LINE_UTC") - num(b, "CENTER_LINE_UTC") < 1.0
        # documented: INCIDENCE_ANGLE is the mean of the near and far incidence; MintPy's is the near one
        assert num(b, "INCIDENCE_ANGLE") == pytest.approx(float(synth.incidence_angle.min()), abs=1e-6)
        assert num(a, "INCIDENCE_ANGLE") == pytest.approx(
            (float(synth.incidence_angle.min()) + float(synth.incidence_angle.max())) / 2, abs=1e-6)
    for key in ("height", "incidenceAngle"):
        np.testing.assert_array_equal(sg[key], mg[key], err_msg=key)
    assert set(mg) == set(sg) == {"height", "incidenceAngle", "slantRangeDistance"}

    # documented: HEIGHT and EARTH_RADIUS from the orbit state vector in the middle of the list
    # (MintPy: the first one, which is a minute of flight from the scene in a real product); the
    # slant range is the same triangle Earth centre / platform / target from the incidence angle
    dh = num(sa, "HEIGHT") - num(ma, "HEIGHT")
    dr = num(sa, "EARTH_RADIUS") - num(ma, "EARTH_RADIUS")
    truth = _radar.orbit_truth(synth)
    assert abs(num(sa, "HEIGHT") - truth["HEIGHT"]) < abs(num(ma, "HEIGHT") - truth["HEIGHT"])
    assert 300.0 < abs(dh) < 1000.0 and 300.0 < abs(dr) < 1000.0, (dh, dr)
    # (MintPy evaluates the triangle in float32: up to 4 m of rounding in 843 km; sbts in float64)
    with_mintpy_orbit = _slant_range(mg["incidenceAngle"], num(ma, "EARTH_RADIUS"), num(ma, "HEIGHT"))
    np.testing.assert_allclose(with_mintpy_orbit, mg["slantRangeDistance"], rtol=5e-6)
    np.testing.assert_allclose(
        _slant_range(sg["incidenceAngle"], num(sa, "EARTH_RADIUS"), num(sa, "HEIGHT")), sg["slantRangeDistance"],
        rtol=2e-7)
    d_srd = np.abs(sg["slantRangeDistance"].astype(float) - mg["slantRangeDistance"]).max()
    assert 300.0 < d_srd < 1000.0, d_srd  # m, of 843 km
    # MintPy also writes the scalar SLANT_RANGE_DISTANCE (from its INCIDENCE_ANGLE); sbts the raster only
    assert "SLANT_RANGE_DISTANCE" in ma and "SLANT_RANGE_DISTANCE" not in sa


def _slant_range(inc_deg, earth_radius, height):
    """Range of a target seen at incidence θ from ``height`` above a sphere of ``earth_radius`` (law of sines)."""
    inc = np.radians(np.asarray(inc_deg, np.float64))
    look = np.arcsin(earth_radius * np.sin(inc) / (earth_radius + height))
    return (earth_radius + height) * np.sin(inc - look) / np.sin(inc)


# ----------------------------------------------------------------------------- ARIA
def _assert_aria_like_mintpy(sa, ma, sga, mga, synth):
    for a, b in ((sa, ma), (sga, mga)):
        assert_same_attrs(a, b, exact=COMMON_EXACT + ("ALOOKS", "RLOOKS"),
                          floats=("WAVELENGTH", "STARTING_RANGE", "RANGE_PIXEL_SIZE", "NCORRLOOKS", "HEIGHT"))
        assert_same_grid(a, b, digits=9)
        assert_same_corners(a, b)
        assert 0.0 <= num(a, "CENTER_LINE_UTC") - num(b, "CENTER_LINE_UTC") < 1.0
        # documented: PLATFORM in MintPy's vocabulary ("sen"); prep_aria writes "Sen"
        assert (a["PLATFORM"], b["PLATFORM"]) == ("sen", "Sen")
        # documented: PROCESSOR says what made the files; prep_aria writes "isce"
        assert (a["PROCESSOR"], b["PROCESSOR"]) == ("aria", "isce")
        # documented: HEADING from the products' azimuth angle; MintPy's is a fixed -12 / -168
        assert num(b, "HEADING") == (-12.0 if synth.attrs["ORBIT_DIRECTION"] == "ASCENDING" else -168.0)
        assert num(a, "HEADING") == pytest.approx(float(synth.attrs["HEADING"]), abs=1e-3)
        assert abs(num(a, "HEADING") - num(b, "HEADING")) == pytest.approx(0.7, abs=1e-3)
        # documented: EARTH_RADIUS along the heading at the scene; MintPy's is a constant (6337.3 km)
        assert num(b, "EARTH_RADIUS") == pytest.approx(6337286.638938101)
        lat = num(a, "Y_FIRST") + int(a["LENGTH"]) * num(a, "Y_STEP") / 2
        assert num(a, "EARTH_RADIUS") == pytest.approx(_radar.radius_along_heading(lat, num(a, "HEADING")), abs=1.0)
        assert 6_000.0 < num(a, "EARTH_RADIUS") - num(b, "EARTH_RADIUS") < 8_000.0


def _assert_aria_geometry(sg, mg, sga, synth, incidence_atol=0.0):
    np.testing.assert_array_equal(sg["height"], mg["height"])
    np.testing.assert_array_equal(sg["waterMask"], mg["waterMask"])
    land, water = mg["waterMask"], ~mg["waterMask"]
    np.testing.assert_allclose(sg["incidenceAngle"], mg["incidenceAngle"], rtol=0, atol=incidence_atol)
    np.testing.assert_allclose(sg["azimuthAngle"][land], mg["azimuthAngle"][land], rtol=0, atol=incidence_atol)
    # documented: the azimuth angle is kept on water; MintPy multiplies it by the water mask (0 there)
    assert water.any() and (mg["azimuthAngle"][water] == 0).all()
    np.testing.assert_allclose(sg["azimuthAngle"][water], synth.azimuth_angle[water], atol=max(incidence_atol, 1e-5))
    # documented: slantRangeDistance per pixel from the incidence angle; MintPy writes the constant
    # STARTING_RANGE, the near edge of the full 250 km GUNW swath, not these pixels' range
    assert (mg["slantRangeDistance"] == np.float32(mga_start := float(sga["STARTING_RANGE"]))).all(), mga_start
    assert np.abs(sg["slantRangeDistance"] - synth.slant_range_distance).max() < 3_000.0
    d = sg["slantRangeDistance"].astype(float) - mg["slantRangeDistance"]
    assert 15_000.0 < d.min() and d.max() < 30_000.0, (d.min(), d.max())


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_aria_vrt_stack_as_mintpy_loads_it(direction, tmp_path, synths, mintpy_oracle):
    from formats import aria_vrt

    synth = synths[direction]
    template = aria_vrt.write(tmp_path, synth)
    sa, s = read(sbts_load(template, template.parent) / "ifgramStack.h5")
    sga, sg = read(template.parent / "inputs" / "geometryGeo.h5")
    mp = mintpy_load(mintpy_oracle, template, synth)
    ma, m = read(mp / "ifgramStack.h5")
    mga, mg = read(mp / "geometryGeo.h5")

    assert_same_stack(s, m)
    _assert_aria_like_mintpy(sa, ma, sga, mga, synth)
    assert set(mg) == set(sg) == {"height", "incidenceAngle", "azimuthAngle", "slantRangeDistance", "waterMask"}
    _assert_aria_geometry(sg, mg, sga, synth)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_aria_gunw_products_as_mintpy_loads_their_vrt_stack(direction, tmp_path, synths, mintpy_oracle):
    """GUNW products read directly by sbts = the VRT stack ariaTSsetup.py makes of them, read by MintPy."""
    from formats import aria_gunw, aria_vrt

    synth = synths[direction]
    gunw = aria_gunw.write(tmp_path / "gunw", synth)
    vrt = aria_vrt.write(tmp_path / "vrt", synth)
    sa, s = read(sbts_load(gunw, gunw.parent) / "ifgramStack.h5")
    sga, sg = read(gunw.parent / "inputs" / "geometryGeo.h5")
    mp = mintpy_load(mintpy_oracle, vrt, synth)
    ma, m = read(mp / "ifgramStack.h5")
    mga, mg = read(mp / "geometryGeo.h5")

    assert_same_stack(s, m)
    _assert_aria_like_mintpy(sa, ma, sga, mga, synth)
    assert set(mg) == set(sg)
    # the GUNW angles are interpolated from the products' coarse metadata cubes at the DEM height:
    # a plane fitted to the synthetic field, plus 1e-4 deg per metre of height for the incidence
    # (up to 0.056 deg at the fixture's highest pixel); ariaTSsetup's rasters hold the field itself
    _assert_aria_geometry(sg, mg, sga, synth, incidence_atol=0.08)


# ----------------------------------------------------------------------------- MintPy continues an sbts project
@pytest.mark.parametrize("name", ["snap", "aria_vrt", "aria_gunw"])
def test_mintpy_continues_an_sbts_project(name, tmp_path, mintpy_oracle):
    """``sbts run`` to the velocity, then ``smallbaselineApp.py --dostep correct_topography`` and
    ``--dostep hdfeos5`` in the same folder, on sbts's files (this gave ``KeyError: 'HEIGHT'`` on ARIA).

    The template is what a user of either tool writes: the file patterns, no tropospheric correction
    (MintPy's ``auto`` is ERA5, which needs downloads) and the HDF-EOS5 product on; for the ARIA VRT
    stack, whose files do not name the track, the UNAVCO keys MintPy's users add for it too.
    """
    synth = make_synthetic_stack((30, 40), 8, seed=11, orbit_direction="DESCENDING")
    template = importlib.import_module(f"formats.{name}").write(tmp_path, synth)
    extra = "mintpy.troposphericDelay.method = no\nmintpy.save.hdfEos5 = yes\n"
    if name == "aria_vrt":
        extra += "beam_mode = IW\nrelative_orbit = 143\n"
    template.write_text(template.read_text() + extra)
    work = template.parent
    result = CliRunner().invoke(cli, ["run", str(template), "--end", "velocity"])
    assert result.exit_code == 0, result.output
    with h5py.File(work / "demErr.h5", "r") as f:
        sbts_dem = f["dem"][()]
    with h5py.File(work / "timeseries_demErr.h5", "r") as f:
        sbts_ts = f["timeseries"][()]

    mintpy_oracle.run("smallbaselineApp.py", template.name, "--dostep", "correct_topography", cwd=work)
    with h5py.File(work / "demErr.h5", "r") as f:
        mintpy_dem = f["dem"][()]
    with h5py.File(work / "timeseries_demErr.h5", "r") as f:
        mintpy_ts = f["timeseries"][()]
    # the same correction from the same time series and geometry, but for the time axis of the
    # polynomial: MintPy's decimal years, sbts's days / 365.25 (docs/mintpy-differences.md).  With 8
    # dates the DEM error is nearly collinear with the quadratic, so that shows: up to 1.2 m of 216 m
    # (0.54 %) in the DEM error, 0.23 mm in the corrected series, on these fixtures
    assert np.nanmax(np.abs(mintpy_ts - sbts_ts)) < 5e-4  # m
    assert np.nanmax(np.abs(mintpy_dem - sbts_dem)) < 1e-2 * np.nanmax(np.abs(sbts_dem))

    mintpy_oracle.run("smallbaselineApp.py", template.name, "--dostep", "hdfeos5", cwd=work)
    he5 = sorted(work.glob("S1_*.he5"))
    assert len(he5) == 1, [p.name for p in work.iterdir()]
    assert he5[0].name.startswith("S1_IW_143_"), he5[0].name
    with h5py.File(he5[0], "r") as f:
        disp = f["HDFEOS/GRIDS/timeseries/observation/displacement"][()]
        attrs = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}
    np.testing.assert_allclose(disp, mintpy_ts, atol=1e-6)
    assert attrs["mission"] == "S1" and attrs["relative_orbit"] == "143" and attrs["flight_direction"] == "D"
    assert attrs["beam_mode"] == "IW" and float(attrs["HEIGHT"]) > 6e5
