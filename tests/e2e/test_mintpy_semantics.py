"""Same name, same meaning: sbts's files compared with MintPy 1.6.4's on the same input, and handed
over both ways (MintPy resuming an sbts project, sbts resuming a MintPy project).

The oracle is MintPy run as a separate process (``mintpy_oracle``; skipped where it is not installed,
an error under ``SBTS_REQUIRE_ORACLE=1``).  Both tools start from one synthetic stack written in
MintPy's layout (``inputs/ifgramStack.h5`` + ``inputs/geometryGeo.h5``), so every difference below
is a difference of the tools, not of their inputs.  Tolerances:

* values computed the same way from the same file (RMS, coherence table, water mask, subsets):
  float32 rounding (MintPy fits ramps in float32);
* time-function fits: sbts's time axis is days/365.25 from the first date, MintPy's the decimal year
  (year + (day of year − 1)/365.25): the two differ by up to 0.75 day per year boundary, which moves
  a velocity by up to ~0.1 % (docs/mintpy-differences.md); periodic terms are compared as complex
  amplitudes A·e^{iφ} so that the phase of a near-zero amplitude (undefined) does not count.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from sbts.core.demo.run import write_synthetic_files
from sbts.core.demo.synthetic import make_synthetic_stack
from sbts.core.workflow.runner import run_workflow

TEMPLATE = """\
mintpy.load.processor = mintpy
mintpy.reference.yx = 57,131
mintpy.unwrapError.method = bridging
mintpy.timeFunc.periodic = 1
mintpy.topographicResidual = yes
mintpy.troposphericDelay.method = no
mintpy.save.kmz = no
mintpy.save.hdfEos5 = no
mintpy.compute.numWorker = 1
mintpy.plot = no
"""
# attributes that record where/when a file was written, not what it holds
BOOKKEEPING = {"FILE_PATH", "OG_FILE_PATH", "DATA_TYPE", "NO_DATA_VALUE", "MODIFICATION_TIME",
               "mintpy.timeFunc.timeSeriesCovFile"}  # a path, where each tool wrote its covariance file
UPTO_INVERSION = ("inputs", "waterMask.h5", "coherenceSpatialAvg.txt", "avgSpatialCoh.h5", "maskConnComp.h5",
                  "avgPhaseVelocity.h5", "numTriNonzeroIntAmbiguity.h5", "timeseries.h5", "temporalCoherence.h5",
                  "numInvIfgram.h5", "maskTempCoh.h5")


def _attrs(path: Path) -> dict[str, str]:
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}


def _read(path: Path, name: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f[name][()]


def _rms_rows(path: Path) -> tuple[list[str], np.ndarray]:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [r[0] for r in rows], np.array([float(r[1]) for r in rows])


def _copy_upto_inversion(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in UPTO_INVERSION:
        p = src / name
        if p.is_dir():
            shutil.copytree(p, dst / name)
        elif p.exists():
            shutil.copy2(p, dst / name)
    shutil.copy2(src / "project.cfg", dst / "project.cfg")
    return dst


def _assert_same_fit(ours: Path, theirs: Path, mask: np.ndarray, rel: float = 3e-3) -> None:
    """velocity, residue and the annual term of two velocity.h5 agree (module docstring)."""
    v1, v2 = _read(ours, "velocity")[mask], _read(theirs, "velocity")[mask]
    assert np.nanmax(np.abs(v1 - v2)) <= rel * np.nanmax(np.abs(v2)) + 2e-5
    r1, r2 = _read(ours, "residue")[mask], _read(theirs, "residue")[mask]
    np.testing.assert_allclose(r1, r2, rtol=0.02, atol=2e-4)  # √Σr² (m); the RMS would be √n ≈ 5× smaller
    ok = r2 > 0  # the reference pixel: zero residue in both
    assert np.median(np.abs(r1 - r2)[ok] / r2[ok]) < 2e-3
    z1 = _read(ours, "annualAmplitude")[mask] * np.exp(1j * _read(ours, "annualPhase")[mask])
    z2 = _read(theirs, "annualAmplitude")[mask] * np.exp(1j * _read(theirs, "annualPhase")[mask])
    assert np.nanmax(np.abs(z1 - z2)) < 0.02 * np.nanmax(np.abs(z2)) + 1e-4
    # the time axes differ by up to 0.75 day a year: up to 0.013 rad of annual phase, 1.3 % of A
    assert np.median(np.abs(z1 - z2)) < 0.013 * np.median(np.abs(z2)) + 1e-5


# --------------------------------------------------------------------------- one project, both tools
@pytest.fixture(scope="module")
def runs(mintpy_oracle, tmp_path_factory):
    """The synthetic stack processed to velocity by MintPy's smallbaselineApp.py and by ``sbts run``."""
    base = tmp_path_factory.mktemp("semantics")
    s = make_synthetic_stack(shape=(120, 150), num_date=30, seed=0)
    write_synthetic_files(base / "stack", s)
    dirs = {}
    for tool in ("mintpy", "sbts"):
        work = base / tool
        (work / "inputs").mkdir(parents=True)
        for name in ("ifgramStack.h5", "geometryGeo.h5"):
            shutil.copy2(base / "stack" / name, work / "inputs" / name)
        (work / "project.cfg").write_text(TEMPLATE)
        dirs[tool] = work
    mintpy_oracle.run("smallbaselineApp.py", "project.cfg", "--start", "modify_network", "--end", "velocity",
                      cwd=dirs["mintpy"])
    # MintPy's plot_network (mintpy.plot = no skips it) writes its coherenceSpatialAvg.txt
    mintpy_oracle.run("plot_network.py", "inputs/ifgramStack.h5", "-d", "coherence", "--nodisplay",
                      cwd=dirs["mintpy"])
    run_workflow(dirs["sbts"] / "project.cfg", start="modify_network", end="velocity", max_memory=0.5)
    return dirs["mintpy"], dirs["sbts"], s


def test_every_mintpy_file_dataset_and_attribute_is_written(runs):
    """Each HDF5 file MintPy writes up to velocity exists in sbts's project with MintPy's datasets
    (same shapes) and at least MintPy's attributes: waterMask.h5, timeseriesResidual_ramp.h5,
    START_DATE/END_DATE on the time series and the maps derived from the stack ..."""
    mp, sb, _ = runs
    names = sorted(p.name for p in mp.glob("*.h5"))
    assert {"waterMask.h5", "timeseriesResidual_ramp.h5", "timeseries_demErr.h5", "velocity.h5"} <= set(names)
    for name in names:
        assert (sb / name).exists(), f"sbts did not write {name}"
        missing = set(_attrs(mp / name)) - set(_attrs(sb / name)) - BOOKKEEPING
        assert not missing, f"{name}: attributes MintPy writes but sbts does not: {sorted(missing)}"
        with h5py.File(mp / name) as a, h5py.File(sb / name) as b:
            for ds in a:
                assert ds in b, f"{name}: no dataset {ds}"
                assert a[ds].shape == b[ds].shape, f"{name}/{ds}: {a[ds].shape} vs {b[ds].shape}"
    for name in ("timeseries.h5", "timeseries_demErr.h5", "timeseriesResidual.h5", "temporalCoherence.h5"):
        a, b = _attrs(mp / name), _attrs(sb / name)
        assert (b["START_DATE"], b["END_DATE"]) == (a["START_DATE"], a["END_DATE"]), name
    np.testing.assert_array_equal(_read(sb / "waterMask.h5", "waterMask"), _read(mp / "waterMask.h5", "waterMask"))
    assert _attrs(sb / "waterMask.h5")["FILE_TYPE"] == "waterMask"


def test_velocity_fit_of_mintpy_timeseries_means_the_same(runs, tmp_path):
    """sbts's fit of MintPy's own timeseries_demErr.h5 (same dates excluded) against MintPy's
    velocity.h5: residue = √Σr² (MintPy's, not the RMS), annualPhase = phase of A·sin(2π(t−t0) + φ)."""
    from sbts.core.config.template import Template
    from sbts.core.steps.velocity import fit_time_functions

    mp, _, _ = runs
    used = _attrs(mp / "velocity.h5")
    excluded = used["mintpy.timeFunc.excludeDate"].strip("[]").replace("'", "").replace(" ", "")
    if excluded == "exclude_date.txt":  # MintPy names the file it read
        excluded = ",".join((mp / "exclude_date.txt").read_text().split()) if (mp / "exclude_date.txt").exists() else ""
    t = Template({"mintpy.timeFunc.periodic": "1", "mintpy.timeFunc.excludeDate": excluded or "no"},
                 warn_unknown=False)
    out = fit_time_functions(mp / "timeseries_demErr.h5", t, tmp_path / "velocity.h5", max_memory=0.5)
    assert _attrs(out)["START_DATE"] == used["START_DATE"] and _attrs(out)["END_DATE"] == used["END_DATE"]
    mask = _read(mp / "maskTempCoh.h5", "mask").astype(bool)
    _assert_same_fit(out, mp / "velocity.h5", mask, rel=2e-3)


def test_residual_rms_of_mintpy_residual_means_the_same(runs, mintpy_oracle, tmp_path):
    """sbts rms on MintPy's timeseriesResidual.h5 and maskTempCoh.h5 writes what timeseries_rms.py
    wrote: the deramped residual, rms_timeseriesResidual_ramp.txt in metres, reference_date.txt,
    exclude_date.txt; and MintPy's plot function reads sbts's text file."""
    from sbts.core.config.template import Template
    from sbts.core.steps.rms import residual_rms

    mp, _, _ = runs
    for name in ("timeseriesResidual.h5", "maskTempCoh.h5"):
        shutil.copy2(mp / name, tmp_path / name)
    residual_rms(tmp_path / "timeseriesResidual.h5", Template(), tmp_path, max_memory=0.5)
    dates_mp, rms_mp = _rms_rows(mp / "rms_timeseriesResidual_ramp.txt")
    dates_sb, rms_sb = _rms_rows(tmp_path / "rms_timeseriesResidual_ramp.txt")
    assert dates_sb == dates_mp
    np.testing.assert_allclose(rms_sb, rms_mp, rtol=1e-4)  # metres (mm would be 1000× larger)
    assert (tmp_path / "reference_date.txt").read_text() == (mp / "reference_date.txt").read_text()
    assert (tmp_path / "exclude_date.txt").exists() == (mp / "exclude_date.txt").exists()
    if (mp / "exclude_date.txt").exists():
        assert (tmp_path / "exclude_date.txt").read_text().split() == (mp / "exclude_date.txt").read_text().split()
    d_sb = _read(tmp_path / "timeseriesResidual_ramp.h5", "timeseries")
    d_mp = _read(mp / "timeseriesResidual_ramp.h5", "timeseries")
    np.testing.assert_allclose(d_sb, d_mp, atol=5e-6)  # MintPy fits the ramp in float32: µm apart
    mintpy_oracle.python("from mintpy.utils import plot as pp; "
                         "pp.plot_timeseries_rms('rms_timeseriesResidual_ramp.txt', cutoff=3, out_fig='mp.pdf', "
                         "disp_fig=False)", cwd=tmp_path)
    assert (tmp_path / "mp.pdf").stat().st_size > 1000


def test_coherence_table_has_mintpy_columns_and_values(runs, mintpy_oracle):
    """coherenceSpatialAvg.txt: MintPy's columns and values (its plot_network wrote its own on the same
    stack and water mask); MintPy's plot_network.py reads sbts's file."""
    mp, sb, _ = runs

    def rows(path):
        return [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]

    a, b = rows(mp / "coherenceSpatialAvg.txt"), rows(sb / "coherenceSpatialAvg.txt")
    assert [r[0] for r in b] == [r[0] for r in a]
    np.testing.assert_allclose(np.array([r[1:] for r in b], float), np.array([r[1:] for r in a], float), atol=1.5e-4)
    proc = mintpy_oracle.run("plot_network.py", "coherenceSpatialAvg.txt", "--nodisplay", cwd=sb)
    assert "number of interferograms" in proc.stdout
    assert (sb / "network.pdf").exists()


def test_mintpy_tools_read_sbts_outputs_and_resume_the_project(runs, mintpy_oracle, tmp_path):
    """MintPy's view/tsview/info/save_gdal read sbts's products, and smallbaselineApp.py --start
    correct_topography carries on from sbts's inversion to a velocity.h5 equal to sbts's."""
    _, sb, _ = runs
    work = _copy_upto_inversion(sb, tmp_path / "handover")
    for name in ("velocity.h5", "timeseries_demErr.h5", "timeseriesResidual_ramp.h5"):
        shutil.copy2(sb / name, tmp_path / name)
    mintpy_oracle.run("view.py", "velocity.h5", "velocity", "--nodisplay", "-o", "velocity.png", cwd=tmp_path)
    mintpy_oracle.run("view.py", "velocity.h5", "annualPhase", "--nodisplay", "-o", "phase.png", cwd=tmp_path)
    mintpy_oracle.run("tsview.py", "timeseries_demErr.h5", "--yx", "60", "70", "--nodisplay", "--save",
                      "--outfile", "ts", cwd=tmp_path)
    mintpy_oracle.run("save_gdal.py", "velocity.h5", "-o", "velocity.tif", cwd=tmp_path)
    info = mintpy_oracle.run("info.py", "timeseriesResidual_ramp.h5", "--date", cwd=tmp_path)
    assert len(info.stdout.split()) == 30
    assert (tmp_path / "velocity.png").exists() and (tmp_path / "ts_ts.txt").exists()

    mintpy_oracle.run("smallbaselineApp.py", "project.cfg", "--start", "correct_topography", "--end", "velocity",
                      cwd=work)
    mask = _read(sb / "maskTempCoh.h5", "mask").astype(bool)
    _assert_same_fit(sb / "velocity.h5", work / "velocity.h5", mask)


def test_sbts_resumes_a_mintpy_project(runs, tmp_path):
    """MintPy to invert_network, then `sbts run --start correct_topography`: sbts's velocity.h5 equals
    MintPy's own (same inversion, same DEM-error model, same time functions)."""
    mp, _, _ = runs
    work = _copy_upto_inversion(mp, tmp_path / "handover")
    reports = {r.name: r.status for r in run_workflow(work / "project.cfg", start="correct_topography",
                                                       end="velocity", max_memory=0.5)}
    assert reports["correct_topography"] == "ran" and reports["residual_RMS"] == "ran"
    rms_mp = _rms_rows(mp / "rms_timeseriesResidual_ramp.txt")[1]
    # 5e-3: the DEM-error fits differ by up to 0.5 % through the time axis alone (days/365.25 against
    # MintPy's decimal years, docs/mintpy-differences.md #2); the residual RMS by up to 0.2 % (measured)
    np.testing.assert_allclose(_rms_rows(work / "rms_timeseriesResidual_ramp.txt")[1], rms_mp, rtol=5e-3)
    mask = _read(mp / "maskTempCoh.h5", "mask").astype(bool)
    _assert_same_fit(work / "velocity.h5", mp / "velocity.h5", mask)


def test_subsets_stitch_back_with_mintpy_image_stitch(runs, mintpy_oracle, tmp_path):
    """Two overlapping `sbts export hdf5` subsets (the reference pixel inside only one of them) are
    stitched by MintPy's image_stitch.py back into the scene: REF_LAT/REF_LON kept as MintPy's subset."""
    from sbts.core.plugin.runners import export

    _, sb, _ = runs
    a = export("hdf5", sb / "velocity.h5", "velocity", output=tmp_path / "south.h5", options={"yx": "60:120,0:150"})[0]
    b = export("hdf5", sb / "velocity.h5", "velocity", output=tmp_path / "north.h5", options={"yx": "0:80,0:150"})[0]
    ref_y = int(_attrs(sb / "velocity.h5")["REF_Y"])
    assert ref_y < 60, "the test needs the reference outside the first subset"
    mintpy_oracle.run("image_stitch.py", a.name, b.name, "-o", "stitched.h5", "--no-offset", "--nodisplay",
                      cwd=tmp_path)
    whole = _read(sb / "velocity.h5", "velocity")
    stitched = _read(tmp_path / "stitched.h5", "velocity")
    np.testing.assert_array_equal(stitched[:whole.shape[0]], whole)  # MintPy may round the extent up a row
    st = _attrs(tmp_path / "stitched.h5")
    assert float(st["REF_LAT"]) == float(_attrs(sb / "velocity.h5")["REF_LAT"])


def test_hdfeos5_has_mintpy_attributes(runs, mintpy_oracle, tmp_path):
    """save_hdfeos5.py and `sbts export hdfeos5` on the same files and template: MintPy's root attributes
    (UNAVCO keys with their placeholders and number types) are all in sbts's .he5."""
    from sbts.core.plugin.runners import export

    mp, _, _ = runs
    corners = "".join(f"LAT_REF{i} = {lat}\nLON_REF{i} = {lon}\n" for i, (lat, lon) in
                      enumerate([(19.48, -99.19), (19.48, -99.07), (19.38, -99.19), (19.38, -99.07)], 1))
    tmpl = tmp_path / "he5.txt"
    tmpl.write_text("beam_mode = IW\nrelative_orbit = 128\n" + corners)
    for name in ("timeseries_demErr.h5", "temporalCoherence.h5", "avgSpatialCoh.h5", "maskTempCoh.h5"):
        shutil.copy2(mp / name, tmp_path / name)
    shutil.copy2(mp / "inputs" / "geometryGeo.h5", tmp_path / "geometryGeo.h5")
    (tmp_path / "mintpy").mkdir()
    mintpy_oracle.run("save_hdfeos5.py", "../timeseries_demErr.h5", "--tc", "../temporalCoherence.h5", "--asc",
                      "../avgSpatialCoh.h5", "-m", "../maskTempCoh.h5", "-g", "../geometryGeo.h5", "-t",
                      str(tmpl), cwd=tmp_path / "mintpy")
    (theirs,) = (tmp_path / "mintpy").glob("*.he5")
    (ours,) = export("hdfeos5", tmp_path / "timeseries_demErr.h5", output=tmp_path, options={"template": str(tmpl)})
    assert ours.name == theirs.name
    with h5py.File(theirs) as a, h5py.File(ours) as b:
        assert not set(a.attrs) - set(b.attrs) - BOOKKEEPING
        for key in ("mission", "beam_mode", "beam_swath", "relative_orbit", "first_frame", "last_frame",
                    "processing_type", "first_date", "last_date", "scene_footprint", "data_footprint",
                    "atmos_correct_method", "processing_dem", "unwrap_method", "flight_direction",
                    "look_direction", "polarization", "prf", "wavelength", "LAT_REF1", "LON_REF4"):
            assert type(b.attrs[key]) is type(a.attrs[key]), key
            assert str(b.attrs[key]) == str(a.attrs[key]), key
        for name in ("quality/mask", "geometry/waterMask", "observation/displacement"):
            for key in ("MissingValue", "_FillValue", "Units", "Title"):
                x, y = a[f"HDFEOS/GRIDS/timeseries/{name}"].attrs[key], b[f"HDFEOS/GRIDS/timeseries/{name}"].attrs[key]
                assert type(x) is type(y) and x == y, (name, key)


# --------------------------------------------------------------------------- bridging on a small image
def _bridging_cycles(path: Path, unw: np.ndarray, ref: tuple[int, int]) -> np.ndarray:
    """Integer cycles added by a bridging run, relative to the reference pixel (MintPy also
    re-references each pair there)."""
    ry, rx = ref
    out = _read(path, "unwrapPhase_bridging")
    out = out - out[:, ry:ry + 1, rx:rx + 1]
    return np.round((out - (unw - unw[:, ry:ry + 1, rx:rx + 1])) / (2 * np.pi))


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory):
    from sbts.core.steps.reference import set_reference

    folder = tmp_path_factory.mktemp("bridging200")
    s = make_synthetic_stack(shape=(200, 200), num_date=20, seed=0)
    write_synthetic_files(folder, s)
    set_reference(folder / "ifgramStack.h5", *s.truth.reference_yx)
    return folder, s


def _sbts_bridging(folder: Path, tmp_path: Path) -> Path:
    from sbts.core.config.template import Template
    from sbts.core.plugin.runners import run_correction

    shutil.copy2(folder / "ifgramStack.h5", tmp_path / "ifgramStack.h5")
    run_correction("bridging", Template({"mintpy.unwrapError.waterMaskFile": "no"}), tmp_path,
                   input_file=tmp_path / "ifgramStack.h5", max_memory=0.5)
    return tmp_path / "ifgramStack.h5"


def test_bridging_corrects_islands_on_a_200_by_200_stack(small_stack, tmp_path):
    """The default connCompMinArea (2500 px) is above 0.3 % of a 200 × 200 image (120 px): MintPy's
    rule lowers it, so the three island errors (≈ 850–1000 px) are corrected (before: left as they were)."""
    folder, s = small_stack
    ry, rx = s.truth.reference_yx
    unw = _read(folder / "ifgramStack.h5", "unwrapPhase")
    cycles = _bridging_cycles(_sbts_bridging(folder, tmp_path), unw, (ry, rx))
    assert len(s.truth.unwrap_errors) == 3
    for pair, k, region in s.truth.unwrap_errors:
        assert 500 < region.sum() < 2500
        assert np.all(cycles[pair][region] == -k), (pair, k)
    others = np.ones(cycles.shape, bool)
    for pair, _k, region in s.truth.unwrap_errors:
        others[pair][region] = False
    assert not np.any(cycles[others & s.water_mask[None]])


def test_bridging_regions_as_mintpy(small_stack, mintpy_oracle, tmp_path):
    """On the same 200 × 200 stack MintPy's unwrap_error_bridging.py adds the same cycles as sbts on
    every land pixel of every pair."""
    folder, s = small_stack
    ours = _sbts_bridging(folder, tmp_path)
    (tmp_path / "mintpy").mkdir()
    shutil.copy2(folder / "ifgramStack.h5", tmp_path / "mintpy" / "ifgramStack.h5")
    mintpy_oracle.run("unwrap_error_bridging.py", "ifgramStack.h5", "--water-mask", "no", cwd=tmp_path / "mintpy")
    unw = _read(folder / "ifgramStack.h5", "unwrapPhase")
    a = _bridging_cycles(ours, unw, s.truth.reference_yx)
    b = _bridging_cycles(tmp_path / "mintpy" / "ifgramStack.h5", unw, s.truth.reference_yx)
    land = s.water_mask
    np.testing.assert_array_equal(a[:, land], b[:, land])
    assert np.count_nonzero(b[:, land]) > 2000  # MintPy corrected the islands too


# --------------------------------------------------------------------------- residual_RMS without DEM error
def test_residual_rms_is_skipped_without_the_dem_error_step(tmp_path):
    """As smallbaselineApp ("No residual phase file found! Skip residual RMS analysis."): without the
    DEM-error step there is no residual; sbts no longer takes the RMS of the deformation itself, so
    no reference_date.txt / exclude_date.txt come out and the velocity fits every date."""
    s = make_synthetic_stack(shape=(40, 50), num_date=12, seed=1)
    write_synthetic_files(tmp_path / "inputs", s)
    text = TEMPLATE.replace("topographicResidual = yes", "topographicResidual = no")
    text = text.replace("mintpy.reference.yx = 57,131\n", "")  # another (smaller) stack
    (tmp_path / "project.cfg").write_text(text + "mintpy.networkInversion.minNumPixel = 10\n")
    reports = {r.name: r.status for r in run_workflow(tmp_path / "project.cfg", start="modify_network",
                                                       end="velocity", max_memory=0.5)}
    assert reports["correct_topography"] == "disabled" and reports["residual_RMS"] == "disabled"
    assert not (tmp_path / "reference_date.txt").exists() and not (tmp_path / "exclude_date.txt").exists()
    assert not list(tmp_path.glob("rms_*.txt"))
    a = _attrs(tmp_path / "velocity.h5")
    assert a["mintpy.timeFunc.excludeDate"] == "no" and int(a["NUM_DATE"]) == 12
    again = {r.name: r.status for r in run_workflow(tmp_path / "project.cfg", start="modify_network",
                                                    end="velocity", max_memory=0.5)}
    assert set(again.values()) <= {"skipped", "disabled"}, again


# --------------------------------------------------------------------------- every time function, by name
def test_time_function_names_and_values_as_mintpy(mintpy_oracle, tmp_path):
    """timeseries2velocity.py and sbts on one file with every kind of term: MintPy's dataset names
    (period0.25YAmplitude, exp20190601Tau50D, ...) all exist in sbts's velocity.h5, with MintPy's
    units and values.  The dates lie within one calendar year, where MintPy's decimal years and
    sbts's days/365.25 coincide, so the values agree to float32 precision (MintPy solves in float32);
    across year boundaries they differ (docs/mintpy-differences.md)."""
    import datetime as dt

    from sbts.core.config.template import Template
    from sbts.core.io.products import TimeSeriesWriter
    from sbts.core.model.metadata import Metadata
    from sbts.core.model.timefunc import TimeFunctionModel
    from sbts.core.steps.velocity import fit_time_functions

    dates = [dt.date(2019, 1, 2) + dt.timedelta(days=6 * i) for i in range(60)]  # all in 2019
    model = TimeFunctionModel(polynomial=2, periods=(1.0, 0.5, 0.25), steps=(dt.date(2019, 4, 1),),
                              exps=((dt.date(2019, 6, 1), (50.0,)),), logs=((dt.date(2019, 9, 1), (20.0,)),))
    G = model.design_matrix(dates)
    rng = np.random.default_rng(4)
    coef = rng.normal(0, 0.01, size=(G.shape[1], 8 * 9))
    data = (G @ coef + rng.normal(0, 0.002, (len(dates), coef.shape[1]))).reshape(len(dates), 8, 9)
    data -= data[:, :1, :1]  # referenced at pixel (0, 0)
    meta = Metadata.from_attrs({"LENGTH": 8, "WIDTH": 9, "REF_Y": 0, "REF_X": 0,
                                "REF_DATE": dates[0].strftime("%Y%m%d")})
    ts = tmp_path / "timeseries.h5"
    with TimeSeriesWriter(ts, meta, [d.strftime("%Y%m%d") for d in dates]) as w:
        w.write("timeseries", data.astype(np.float32))
    keys = {"polynomial": "2", "periodic": "1,0.5,0.25", "stepDate": "20190401", "exp": "20190601,50",
            "log": "20190901,20"}
    ours = fit_time_functions(ts, Template({f"mintpy.timeFunc.{k}": v for k, v in keys.items()}),
                              tmp_path / "sbts.h5")
    mintpy_oracle.run("timeseries2velocity.py", "timeseries.h5", "-o", "mintpy.h5", "--poly", "2", "--periodic",
                      "1", "0.5", "0.25", "--step", "20190401", "--exp", "20190601", "50", "--log", "20190901", "20",
                      cwd=tmp_path)
    with h5py.File(tmp_path / "mintpy.h5") as a, h5py.File(ours) as b:
        names = set(a)
        assert {"period0.25YAmplitude", "semiAnnualPhase", "exp20190601Tau50D", "log20190901Tau20D",
                "step20190401", "acceleration", "residue"} <= names
        assert names <= set(b), sorted(names - set(b))
        for name in sorted(names):
            x, y = b[name][()].ravel()[1:], a[name][()].ravel()[1:]  # (0, 0) is the reference
            assert b[name].attrs["UNIT"] == a[name].attrs["UNIT"], name
            if name.endswith("Phase"):
                amp = a[name.replace("Phase", "Amplitude")][()].ravel()[1:]
                assert np.max(amp * np.abs(np.angle(np.exp(1j * (x - y))))) < 1e-5, name
            else:  # MintPy inverts GᵀG in float32 for the Std: 1e-3 there
                tol = 2e-3 if name.endswith("Std") else 1e-4
                assert np.max(np.abs(x - y)) < tol * np.max(np.abs(y)) + 1e-6, name


def test_water_mask_file_from_the_geometry(tmp_path):
    """waterMask.h5 as smallbaselineApp writes it: the geometry's waterMask, False where latitude or
    longitude is 0 (no data), FILE_TYPE waterMask; kept while newer than the geometry; none without
    a waterMask in the geometry."""
    from sbts.core.io.products import write_map
    from sbts.core.model.metadata import Grid, Metadata
    from sbts.core.steps.averages import write_water_mask

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    water = np.ones((6, 7), bool)
    water[0, :3] = False
    lat = np.full((6, 7), 19.0, np.float32)
    lat[5, 6] = 0
    meta = Metadata(grid=Grid(6, 7))
    write_map(inputs / "geometryRadar.h5", meta, "geometry", {"waterMask": water, "latitude": lat,
                                                              "longitude": lat + 1})
    out = write_water_mask(inputs / "ifgramStack.h5", tmp_path)
    expected = water.copy()
    expected[5, 6] = False
    np.testing.assert_array_equal(_read(out, "waterMask"), expected)
    assert _attrs(out)["FILE_TYPE"] == "waterMask"
    mtime = out.stat().st_mtime_ns
    assert write_water_mask(inputs / "ifgramStack.h5", tmp_path) == out and out.stat().st_mtime_ns == mtime
    write_map(inputs / "geometryRadar.h5", meta, "geometry", {"latitude": lat})
    (tmp_path / "waterMask.h5").unlink()
    assert write_water_mask(inputs / "ifgramStack.h5", tmp_path) is None
