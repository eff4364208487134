"""Hostile *values*: zero-valued options, physical metadata, values that are the user's mistake.

Each case feeds one value a user (or another tool's file) can give and checks the outcome class:
either the run is right (``ok``: the value is honoured as written) or it stops with a one-line
``Error:`` naming the key/attribute and the value (``clean error``).  Never: a value silently
replaced by a default, a run that "succeeds" on an impossible value, an internal error, a hang.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

pytestmark = pytest.mark.rcase(area="zero values")


def _append(cfg: Path, text: str) -> Path:
    cfg.write_text(cfg.read_text() + text + "\n")
    return cfg


def _attrs(path: Path) -> dict[str, str]:
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}


# =========================================================================== zero is a number
def _numeric_default_keys() -> list[str]:
    from sbts.core.config.template import default_values

    keys = []
    for key, value in default_values().items():
        try:
            float(value)
        except ValueError:
            continue
        keys.append(key)
    return sorted(keys)


@pytest.mark.rcase(input="every numeric key of the defaults set to `0`, read by get_float and get_int",
                   expected="0 (the number) or a TemplateError naming the key's range; never None (= 'no')")
def test_zero_is_never_no_for_numeric_keys(note):
    from sbts.core.config.template import Template
    from sbts.core.errors import TemplateError

    keys = _numeric_default_keys()
    assert len(keys) > 15, keys
    refused = []
    for key in keys:
        t = Template({key: "0"}, warn_unknown=False)
        for getter in (t.get_float, t.get_int):
            try:
                value = getter(key)
            except TemplateError as exc:
                assert key in str(exc) and "'0'" in str(exc), str(exc)
                refused.append(key)
                continue
            assert value == 0 and value is not None, f"{key} = 0 read as {value!r} by {getter.__name__}"
    note(observed=f"{len(keys)} keys: 0 kept as zero, refused by range: {', '.join(sorted(set(refused)))}")


@pytest.mark.parametrize("word", ["no", "none", "false", "NO", "off"])
@pytest.mark.rcase(input="a numeric key set to a word meaning no", expected="None (the key switched off)")
def test_words_still_mean_no(word):
    from sbts.core.config.template import Template

    t = Template({"mintpy.network.tempBaseMax": word}, warn_unknown=False)
    assert t.get_float("mintpy.network.tempBaseMax") is None
    assert t.get_list("mintpy.network.excludeIfgIndex") == []


@pytest.mark.rcase(input="mintpy.network.coherenceBased = yes with minCoherence = 0",
                   expected="ok: accepted, no pair dropped for coherence (every mean coherence is ≥ 0)")
def test_network_min_coherence_zero(rel, project, note):
    from sbts.core.io.products import IfgramStack

    _append(project, "mintpy.network.coherenceBased = yes\nmintpy.network.minCoherence = 0")
    res = rel.cli("network", project)
    assert res.code == 0, res.out
    stack = IfgramStack(project.parent / "inputs/ifgramStack.h5")
    assert stack.pairs.keep.all()
    note(observed="ok: all pairs kept")


@pytest.mark.rcase(input="mintpy.timeFunc.polynomial = 0 (sbts velocity)",
                   expected="ok: only the intercept is fitted, no 'velocity' dataset")
def test_velocity_polynomial_zero(rel, project, note):
    _append(project, "mintpy.timeFunc.polynomial = 0\nmintpy.timeFunc.periodic = 1")
    res = rel.cli("velocity", project, "-i", project.parent / "timeseries.h5", "-o", project.parent / "v0.h5")
    assert res.code == 0, res.out
    with h5py.File(project.parent / "v0.h5") as f:
        names = set(f)
    assert "velocity" not in names and "annualAmplitude" in names, names
    note(observed="ok: datasets " + ", ".join(sorted(names)))


@pytest.mark.rcase(input="mintpy.networkInversion.minRedundancy = 0 / minTempCoh = 0 / minNumPixel = 0",
                   expected="ok: the inversion uses 0, recorded in the provenance attributes")
def test_inversion_zero_thresholds(rel, project, note):
    _append(project, "mintpy.networkInversion.minRedundancy = 0\nmintpy.networkInversion.minTempCoh = 0\n"
                     "mintpy.networkInversion.minNumPixel = 0")
    res = rel.cli("invert", project, "--force")
    assert res.code == 0, res.out
    a = _attrs(project.parent / "timeseries.h5")
    assert float(a["mintpy.networkInversion.minRedundancy"]) == 0.0
    assert float(a["mintpy.networkInversion.minTempCoh"]) == 0.0
    note(observed="ok: minRedundancy 0.0, minTempCoh 0.0 recorded")


@pytest.mark.rcase(input="mintpy.unwrapError.bridgePtsRadius = 0", expected="ok: radius 0 (not the default 50)")
def test_bridging_radius_zero(tmp_path):
    from sbts.core.config.template import Template
    from sbts.core.plugin.interfaces import CorrectionContext
    from sbts.plugins.corrections.unwrap_error import UnwrapOptions

    t = Template({"mintpy.unwrapError.bridgePtsRadius": "0", "mintpy.unwrapError.numSample": "0"}, warn_unknown=False)
    ctx = CorrectionContext(tmp_path / "s.h5", tmp_path / "s.h5", tmp_path, t)
    from sbts.core.errors import TemplateError

    with pytest.raises(TemplateError, match="numSample"):  # 0 samples is not a number of samples
        UnwrapOptions.from_context(ctx, "no")
    t = Template({"mintpy.unwrapError.bridgePtsRadius": "0"}, warn_unknown=False)
    ctx = CorrectionContext(tmp_path / "s.h5", tmp_path / "s.h5", tmp_path, t)
    assert UnwrapOptions.from_context(ctx, "no").radius == 0


@pytest.mark.rcase(input="mintpy.troposphericDelay.polyOrder = 0 (sbts correct height_correlation)",
                   expected="clean error naming polyOrder (was: silently 1)")
def test_tropo_poly_order_zero(rel, project, note):
    res = rel.cli("correct", "height_correlation", project, "-s", "mintpy.troposphericDelay.polyOrder=0")
    note(observed=rel.assert_clean_error(res, "polyOrder"))
    assert not (project.parent / "timeseries_tropHgt.h5").exists()


@pytest.mark.rcase(input="mintpy.reference.yx = 0,0 / mintpy.subset.yx = 0:10,0:12",
                   expected="ok: pixel 0,0 and a subset from 0 (0 is an index, not 'no')")
def test_zero_indices(rel, tmp_path):
    from sbts.core.config.template import Template
    from sbts.core.io.products import IfgramStack

    assert Template({"mintpy.reference.yx": "0,0"}, warn_unknown=False).get_numbers("mintpy.reference.yx", 2) == [0, 0]
    cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
    _append(cfg, "mintpy.subset.yx = 0:10,0:12")
    assert rel.cli("load", cfg).code == 0
    assert IfgramStack(cfg.parent / "inputs/ifgramStack.h5").shape == (10, 12)


@pytest.mark.rcase(input="mintpy.topographicResidual.polyOrder = 0 (sbts correct dem_error)",
                   expected="ok: a constant-only deformation model, recorded as 0")
def test_dem_poly_zero(rel, project, note):
    res = rel.cli("correct", "dem_error", project, "-s", "mintpy.topographicResidual.polyOrder=0")
    assert res.code == 0, res.out
    a = _attrs(project.parent / "timeseries_demErr.h5")
    value = a.get("mintpy.topographicResidual.polyOrder")
    assert value in ("0", None), value
    note(observed=f"ok: polyOrder attribute {value}")


@pytest.mark.parametrize("line, needle", [("mintpy.geocode.laloStep = 0,0", "lalo"),
                                          ("mintpy.geocode.SNWE = 19.6,19.4,-99.2,-99.1", "south"),
                                          ("mintpy.geocode.fillValue = zero", "fillValue")])
@pytest.mark.rcase(input="geocode keys in the template: laloStep = 0,0 / SNWE upside down / fillValue = zero",
                   expected="clean error naming the key")
def test_geocode_template_keys(line, needle):
    from sbts.core.config.template import Template
    from sbts.core.errors import SbtsError
    from sbts.core.steps.geocode import GeocodeOptions

    with pytest.raises(SbtsError, match=needle):
        GeocodeOptions.from_template(Template.from_text(line))


@pytest.mark.rcase(input="mintpy.geocode.fillValue = 0", expected="ok: fill 0.0 (was: NaN)")
def test_geocode_fill_zero():
    from sbts.core.config.template import Template
    from sbts.core.steps.geocode import GeocodeOptions

    assert GeocodeOptions.from_template(Template({"mintpy.geocode.fillValue": "0"}, warn_unknown=False)).fill == 0.0


@pytest.mark.parametrize("key, value, needle", [
    ("mintpy.compute.maxMemory", "0", "maxMemory"),
    ("mintpy.compute.maxMemory", "-1", "maxMemory"),
    ("mintpy.network.connNumMax", "0", "connNumMax"),
    ("mintpy.multilook.ystep", "0", "ystep"),
    ("mintpy.networkInversion.minTempCoh", "-0.5", "minTempCoh"),
    ("mintpy.networkInversion.minTempCoh", "1.5", "minTempCoh"),
    ("mintpy.network.tempBaseMax", "-5", "tempBaseMax"),
])
@pytest.mark.rcase(input="an out-of-range number in the template, through `sbts run --dostep`",
                   expected="clean error naming the key (was: 0 read as no → default, or -1 used as given)")
def test_out_of_range_values(rel, project, key, value, needle, note):
    _append(project, f"{key} = {value}")
    step = {"ystep": "load_data", "connNumMax": "modify_network", "tempBaseMax": "modify_network"}.get(
        needle, "invert_network")
    res = rel.cli("run", project, "--dostep", step, "--force")
    note(observed=rel.assert_clean_error(res, needle))


@pytest.mark.rcase(input="mintpy.network.excludeIfgIndex = 0", expected="ok: pair index 0 dropped")
def test_exclude_index_zero(rel, project, note):
    from sbts.core.io.products import IfgramStack

    _append(project, "mintpy.network.excludeIfgIndex = 0")
    assert rel.cli("network", project).code == 0
    keep = IfgramStack(project.parent / "inputs/ifgramStack.h5").pairs.keep
    assert not keep[0] and keep[1:].all()
    note(observed="ok: pair 0 dropped")


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "abc", "0%", "150%"])
@pytest.mark.rcase(area="bad value", input="sbts invert --num-worker VALUE",
                   expected="clean error naming the workers option (was: -1 and 0 read as 1)")
def test_num_worker_invalid(rel, project, value, note):
    res = rel.cli("invert", project, "--num-worker", value, "--force")
    note(observed=rel.assert_clean_error(res, "worker"))


@pytest.mark.rcase(area="bad value", input="mintpy.compute.numWorker = -1 in the template",
                   expected="clean error naming numWorker")
def test_num_worker_template(rel, project, note):
    _append(project, "mintpy.compute.numWorker = -1")
    note(observed=rel.assert_clean_error(rel.cli("invert", project, "--force"), "numWorker"))


# =========================================================================== values that are the user's mistake
@pytest.mark.rcase(area="bad value")
class TestUserValues:
    """Values that used to escape as internal errors, be accepted silently, or hang."""

    @pytest.mark.parametrize("value", ["nan,nan", "inf,3", "1.5,2", "3,2.25"])
    @pytest.mark.rcase(input="mintpy.reference.yx = VALUE (sbts network --ref-yx)",
                       expected="clean error naming reference.yx (was: internal error / 1.5 truncated to 1)")
    def test_reference_yx(self, rel, project, value, note):
        res = rel.cli("network", project, "--ref-yx", value)
        note(observed=rel.assert_clean_error(res, "reference.yx"))

    @pytest.mark.parametrize("size", [("0", "0"), ("10", "10"), ("-5", "40"), ("100000", "100000")])
    @pytest.mark.rcase(input="sbts demo --size ROWS COLS", expected="clean error naming the size, nothing written")
    def test_demo_size(self, rel, tmp_path, size, note):
        res = rel.cli("demo", tmp_path / "d", "--size", *size)
        note(observed=rel.assert_clean_error(res, "size"))
        assert not (tmp_path / "d" / "synthetic" / "ifgramStack.h5").exists()

    @pytest.mark.rcase(input="sbts demo --dates 1", expected="clean error naming the dates")
    def test_demo_dates(self, rel, tmp_path, note):
        note(observed=rel.assert_clean_error(rel.cli("demo", tmp_path / "d", "--dates", "1"), "3 acquisitions"))

    @pytest.mark.rcase(input="mintpy.timeFunc.bootstrapCount = 1e9 with uncertaintyQuantification = bootstrap",
                       expected="clean error naming bootstrapCount and the count that fits (was: MemoryError)")
    def test_bootstrap_count_huge(self, rel, project, note):
        _append(project, "mintpy.timeFunc.uncertaintyQuantification = bootstrap\nmintpy.timeFunc.bootstrapCount = 1e9")
        res = rel.cli("velocity", project, "-i", project.parent / "timeseries.h5", "-o", project.parent / "vb.h5")
        note(observed=rel.assert_clean_error(res, "bootstrapCount"))

    @pytest.mark.rcase(input="mintpy.multilook.ystep = 1000 on a 40-row stack",
                       expected="clean error naming ystep/xstep (was: a 0-row stack written)")
    def test_multilook_larger_than_image(self, rel, tmp_path, note):
        cfg = rel.project(tmp_path / "w", shape=(40, 50), num_date=6)
        _append(cfg, "mintpy.multilook.ystep = 1000")
        note(observed=rel.assert_clean_error(rel.cli("load", cfg), "ystep"))
        assert not (cfg.parent / "inputs/ifgramStack.h5").exists()

    @pytest.mark.rcase(input="mintpy.networkInversion.waterMaskFile = nope.h5 (set, missing)",
                       expected="clean error naming the file (was: ignored)")
    def test_missing_water_mask(self, rel, project, note):
        _append(project, "mintpy.networkInversion.waterMaskFile = nope.h5")
        note(observed=rel.assert_clean_error(rel.cli("invert", project, "--force"), "nope.h5"))

    @pytest.mark.rcase(input="mintpy.networkInversion.waterMaskFile = a velocity file (not a mask)",
                       expected="clean error: not a mask")
    def test_water_mask_not_a_mask(self, rel, project, note):
        assert rel.cli("velocity", project, "-i", project.parent / "timeseries.h5").code == 0
        _append(project, "mintpy.networkInversion.waterMaskFile = velocity.h5")
        note(observed=rel.assert_clean_error(rel.cli("invert", project, "--force"), "velocity.h5"))

    @pytest.mark.parametrize("value", ["20000101_20000201", "20000101-20000201"])
    @pytest.mark.rcase(input="mintpy.network.excludeDate12 = a pair not in the stack",
                       expected="clean error naming the pair (was: a log line, the intended pair kept)")
    def test_exclude_pair_not_in_stack(self, rel, project, value, note):
        _append(project, f"mintpy.network.excludeDate12 = {value}")
        note(observed=rel.assert_clean_error(rel.cli("network", project), "20000101_20000201"))

    @pytest.mark.rcase(input="a template value of 50 MB (mintpy.network.startDate = xxxx…)",
                       expected="clean error, the message cut to about 1000 characters")
    def test_huge_value_truncated(self, rel, project, note):
        _append(project, "mintpy.network.startDate = " + "x" * 50_000_000)
        res = rel.cli("network", project)
        assert len(res.out) < 3000, f"{len(res.out)} characters of output: the value was echoed whole"
        line = rel.assert_clean_error(res, "startDate")
        note(observed=line[:150])

    @pytest.mark.rcase(input="an unknown template key of 100 kB", expected="ok: a warning, cut short")
    def test_huge_unknown_key(self, rel, project):
        _append(project, "mintpy." + "k" * 100_000 + " = 1")
        res = rel.cli("network", project)
        assert len(res.out) < 20_000, f"{len(res.out)} characters of output: the key was echoed whole"
        assert res.code == 0, res.out[-500:]

    @pytest.mark.parametrize("opts, needle", [
        (["-O", "foo=1"], "foo"),
        (["-O", "compress=BOGUS"], "compress"),
        (["-O", "max_memory=abc"], "max_memory"),
        (["-O", "bands=sometimes"], "bands"),
    ])
    @pytest.mark.rcase(input="sbts export geotiff with a bad -O option",
                       expected="clean error naming the option (was: ignored / GDAL warning / ValueError)")
    def test_geotiff_options(self, rel, project, opts, needle, note):
        pytest.importorskip("osgeo.gdal")
        res = rel.cli("export", "geotiff", project.parent / "temporalCoherence.h5", *opts,
                      "-o", project.parent / "x.tif")
        note(observed=rel.assert_clean_error(res, needle))
        assert not (project.parent / "x.tif").exists()

    @pytest.mark.parametrize("dataset", ["../../x", "19990101", "nosuch/../x"])
    @pytest.mark.rcase(input="sbts export geotiff timeseries.h5 DATASET with a path or an absent date as DATASET",
                       expected="clean error naming it, nothing written outside")
    def test_geotiff_dataset_path(self, rel, project, dataset, note):
        pytest.importorskip("osgeo.gdal")
        res = rel.cli("export", "geotiff", project.parent / "timeseries.h5", dataset)
        note(observed=rel.assert_clean_error(res))
        assert not list(project.parent.parent.glob("*.tif"))

    @pytest.mark.rcase(input="sbts export geotiff -O compress=lzw (valid, lower case)", expected="ok: LZW GeoTIFF")
    def test_geotiff_valid_compress(self, rel, project):
        gdal = pytest.importorskip("osgeo.gdal")
        res = rel.cli("export", "geotiff", project.parent / "temporalCoherence.h5", "-O", "compress=lzw",
                      "-o", project.parent / "x.tif")
        assert res.code == 0, res.out
        ds = gdal.Open(str(project.parent / "x.tif"))
        assert ds.GetMetadata("IMAGE_STRUCTURE").get("COMPRESSION") == "LZW"

    @pytest.mark.parametrize("fmt, opts", [("hdf5", ["-O", "nope=1"]), ("hdfeos5", ["-O", "update=maybe",
                                           "-O", "relative_orbit=1", "-O", "first_frame=1"]),
                                           ("kmz", ["-O", "colour=red"]), ("hdf5", ["-O", "max_memory=-2"])])
    @pytest.mark.rcase(input="other exporters with an unknown or invalid -O option",
                       expected="clean error naming the option")
    def test_export_options(self, rel, project, fmt, opts, note):
        src = project.parent / ("timeseries.h5" if fmt == "hdfeos5" else "temporalCoherence.h5")
        res = rel.cli("export", fmt, src, *opts, "-o", project.parent / "out")
        note(observed=rel.assert_clean_error(res))
        assert not (project.parent / "out").exists() or not any((project.parent / "out").iterdir())


# =========================================================================== geocode boxes and steps
@pytest.fixture
def radar_project(tmp_path, rel):
    """A small radar-coded velocity with its latitude/longitude lookup (geometryRadar.h5)."""
    from sbts.core.io.products import write_map
    from sbts.core.model.metadata import Grid, Metadata

    shape = (30, 40)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    meta = Metadata(Grid(*shape), extra={"ALOOKS": "1", "RLOOKS": "1"})
    write_map(tmp_path / "geometryRadar.h5", meta, "geometry",
              {"latitude": 19.5 - 0.001 * yy + 0.0002 * xx, "longitude": -99.2 + 0.001 * xx + 0.0001 * yy,
               "height": np.full(shape, 2000, np.float32)})
    write_map(tmp_path / "velocity.h5", meta, "velocity", {"velocity": (xx - yy) * 1e-3}, unit="m/year")
    return tmp_path


@pytest.mark.parametrize("args, needle", [
    (["--lalo-step", "0", "0"], "lalo-step"),
    (["--lalo-step", "nan", "0.001"], "lalo-step"),
    (["--bbox", "19.6", "19.4", "-99.2", "-99.1"], "south"),
    (["--bbox", "19.4", "19.6", "-99.1", "-99.2"], "west"),
    (["--bbox", "40", "41", "10", "11"], "overlap"),
    (["--bbox", "15", "25", "-105", "-95"], "larger --lalo-step"),
    (["--lalo-step", "1e-7", "1e-7"], "larger --lalo-step"),
    (["--lalo-step", "1e-300", "1e-300"], "lalo-step"),
])
@pytest.mark.rcase(area="bad value", input="sbts geocode with a zero step, an upside-down, far-away or 10°×10° box",
                   expected="clean error at once, before writing (was: OverflowError / minutes writing NaN)")
def test_geocode_box_and_step(rel, radar_project, args, needle, note, clock):
    start = clock()
    res = rel.cli("geocode", radar_project / "velocity.h5", "-l", radar_project / "geometryRadar.h5", *args,
                  "-o", radar_project / "geo")
    note(observed=rel.assert_clean_error(res, needle))
    assert clock() - start < 30, "took long: the grid was not checked up front"
    assert not list((radar_project / "geo").glob("*.h5")) if (radar_project / "geo").exists() else True


@pytest.mark.rcase(area="bad value", input="sbts geocode with a box inside the data (control)",
                   expected="ok: geocoded, values inside the box")
def test_geocode_box_control(rel, radar_project):
    res = rel.cli("geocode", radar_project / "velocity.h5", "-l", radar_project / "geometryRadar.h5",
                  "--bbox", "19.48", "19.50", "-99.19", "-99.17", "--lalo-step", "0.001", "0.001",
                  "-o", radar_project / "geo")
    assert res.code == 0, res.out
    with h5py.File(radar_project / "geo/geo_velocity.h5") as f:
        assert np.isfinite(f["velocity"][()]).mean() > 0.5


# =========================================================================== physical metadata
@pytest.mark.rcase(area="physical metadata")
class TestPhysicalMetadata:
    @pytest.mark.parametrize("line, needle", [
        ("WAVELENGTH = -0.0555", "WAVELENGTH"),
        ("WAVELENGTH = 0", "WAVELENGTH"),
        ("LENGTH = 100", "LENGTH"),
        ("WIDTH = 7", "WIDTH"),
        ("ALOOKS = 0", "ALOOKS"),
        ("INCIDENCE_ANGLE = 120", "INCIDENCE_ANGLE"),
        ("HEADING = 1000", "HEADING"),
        ("ANTENNA_SIDE = 0", "ANTENNA_SIDE"),
        ("X_STEP = 0", "X_STEP"),
        ("FILE_TYPE = velocity", "FILE_TYPE"),
        ("SBTS_INPUT_SIGNATURE = x", "SBTS_INPUT_SIGNATURE"),
    ])
    @pytest.mark.rcase(input="an impossible UPPER_CASE metadata key in the template (sbts load)",
                       expected="clean error naming the attribute, nothing written")
    def test_template_metadata(self, rel, tmp_path, line, needle, note):
        cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
        _append(cfg, line)
        res = rel.cli("load", cfg)
        note(observed=rel.assert_clean_error(res, needle))
        assert not (cfg.parent / "inputs/ifgramStack.h5").exists()

    @pytest.mark.parametrize("line, needle", [("WAVELENGTH = 5.55", "unit"), ("Y_FIRST = 200", "not on Earth"),
                                              ("ORBIT_DIRECTION = sideways", "ASCENDING")])
    @pytest.mark.rcase(input="template WAVELENGTH = 5.55 (centimetres by mistake) / Y_FIRST = 200 (degrees) / "
                             "ORBIT_DIRECTION = sideways", expected="ok: loads, with a warning naming the attribute")
    def test_template_implausible(self, rel, tmp_path, line, needle, note):
        cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
        _append(cfg, line)
        res = rel.cli("load", cfg)
        assert res.code == 0, res.out
        key = line.split()[0]
        warned = [ln for ln in res.out.splitlines() if key in ln and needle in ln]
        assert warned, res.out
        note(observed="warning: " + warned[0][:120])

    @pytest.mark.rcase(input="template LENGTH = the true length (harmless)", expected="ok")
    def test_template_length_agrees(self, rel, tmp_path):
        cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
        _append(cfg, "LENGTH = 20")
        assert rel.cli("load", cfg).code == 0

    @pytest.mark.rcase(input="source ifgramStack.h5 (mintpy reader) with WAVELENGTH = -0.0555",
                       expected="clean error naming WAVELENGTH and the reader")
    def test_source_negative_wavelength(self, rel, tmp_path, note):
        cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
        with h5py.File(cfg.parent / "syn/ifgramStack.h5", "r+") as f:
            f.attrs["WAVELENGTH"] = "-0.0555"
        note(observed=rel.assert_clean_error(rel.cli("load", cfg), "WAVELENGTH"))

    @pytest.mark.rcase(input="inputs/ifgramStack.h5 edited to WAVELENGTH = -0.0555, then sbts invert",
                       expected="clean error naming WAVELENGTH (was: a time series of the opposite sign)")
    def test_stack_negative_wavelength_invert(self, rel, project, note):
        with h5py.File(project.parent / "inputs/ifgramStack.h5", "r+") as f:
            f.attrs["WAVELENGTH"] = "-0.0555"
        note(observed=rel.assert_clean_error(rel.cli("invert", project, "--force"), "WAVELENGTH"))

    @pytest.mark.rcase(input="ifgramStack.h5 whose bperp is NaN, invert then DEM-error correction",
                       expected="clean error naming bperp and the dates (was: an all-NaN corrected series, exit 0)")
    def test_nan_bperp_dem_error(self, rel, project, note):
        stack = project.parent / "inputs/ifgramStack.h5"
        with h5py.File(stack, "r+") as f:
            f["bperp"][...] = np.nan
        assert rel.cli("invert", project, "--force").code == 0
        res = rel.cli("correct", "dem_error", project)
        note(observed=rel.assert_clean_error(res, "bperp"))
        assert not (project.parent / "timeseries_demErr.h5").exists()

    @pytest.mark.parametrize("how", ["text", "2-D"])
    @pytest.mark.rcase(input="ifgramStack.h5 with bperp stored as text / unwrapPhase stored 2-D (sbts invert -i)",
                       expected="clean error naming the dataset (was: internal error)")
    def test_malformed_stack(self, rel, project, how, note):
        stack = project.parent / "inputs/ifgramStack.h5"
        with h5py.File(stack, "r+") as f:
            if how == "text":
                m = f["bperp"].shape[0]
                del f["bperp"]
                f["bperp"] = np.array([b"n/a"] * m)
            else:
                data = f["unwrapPhase"][0]
                del f["unwrapPhase"]
                f["unwrapPhase"] = data
        res = rel.cli("invert", project, "-i", stack, "--force")
        note(observed=rel.assert_clean_error(res, "bperp" if how == "text" else "unwrapPhase"))

    @pytest.mark.rcase(input="bperp stored as numeric text (b'12.5') in the stack", expected="ok: read as numbers")
    def test_numeric_text_bperp(self, rel, project):
        from sbts.core.io.products import IfgramStack

        stack = project.parent / "inputs/ifgramStack.h5"
        with h5py.File(stack, "r+") as f:
            values = f["bperp"][()]
            del f["bperp"]
            f["bperp"] = np.array([repr(float(v)).encode() for v in values])
        np.testing.assert_allclose(IfgramStack(stack).pairs.bperp, values)


# =========================================================================== GeoTIFF stacks (real Mexico City files)
@pytest.fixture
def mexico(tmp_path, shared_data):
    pytest.importorskip("osgeo.gdal")
    src = shared_data / "pyrate_s1_mexico_cropA_gamma"
    dst = tmp_path / "mexico"
    for sub in ("geotiffs", "headers"):
        shutil.copytree(src / sub, dst / sub)
    cfg = tmp_path / "work" / "t.cfg"
    cfg.parent.mkdir()
    cfg.write_text(f"mintpy.load.processor = auto\nmintpy.load.unwFile = {dst}/geotiffs/*_unw.tif\n"
                   f"mintpy.load.corFile = {dst}/geotiffs/*_cc.tif\nmintpy.load.demFile = {dst}/geotiffs/*_dem.tif\n"
                   f"mintpy.load.metaFile = {dst}/headers/*_mli.par\n")
    return cfg, dst


@pytest.mark.rcase(area="physical metadata", input="GeoTIFF stack: one *_unw.tif moved half a degree east",
                   expected="that interferogram dropped with a warning naming it (was: stacked as if aligned)")
def test_geotiff_pair_off_grid(rel, mexico, note):
    from osgeo import gdal

    from sbts.core.io.products import IfgramStack

    cfg, dst = mexico
    unws = sorted((dst / "geotiffs").glob("*_unw.tif"))
    ds = gdal.Open(str(unws[3]), gdal.GA_Update)
    gt = list(ds.GetGeoTransform())
    gt[0] += 0.5
    ds.SetGeoTransform(gt)
    ds = None
    res = rel.cli("load", cfg)
    assert res.code == 0, res.out
    assert unws[3].name in res.out and "not on the grid" in res.out, res.out[-1500:]
    assert len(IfgramStack(cfg.parent / "inputs/ifgramStack.h5").pairs) == len(unws) - 1
    note(observed="dropped with a warning naming " + unws[3].name)


@pytest.mark.rcase(area="bad value", input="GeoTIFF stack with one *_cc.tif missing (first or a later pair)",
                   expected="clean error naming the interferogram whose coherence is missing (was: KeyError, "
                            "or coherence silently left out of the whole stack)")
@pytest.mark.parametrize("which", [0, 5])
def test_geotiff_missing_coherence(rel, mexico, which, note):
    cfg, dst = mexico
    ccs = sorted((dst / "geotiffs").glob("*_cc.tif"))
    ccs[which].unlink()
    res = rel.cli("load", cfg)
    note(observed=rel.assert_clean_error(res, "coherence"))
    assert not (cfg.parent / "inputs/ifgramStack.h5").exists()


@pytest.mark.rcase(area="physical metadata", input="ROI_PAC geocoded stack: one geo_*.unw.rsc with X_FIRST half a "
                   "degree east", expected="that interferogram dropped with a warning naming it")
def test_roipac_pair_off_grid(rel, tmp_path, shared_data, note):
    from sbts.core.io.products import IfgramStack

    src = shared_data / "pyrate_envisat_sydney_small_test/roipac"
    r = tmp_path / "roipac"
    shutil.copytree(src, r)
    cfg = tmp_path / "work" / "t.cfg"
    cfg.parent.mkdir()
    cfg.write_text(f"mintpy.load.processor = auto\nmintpy.load.unwFile = {r}/geo_*.unw\nmintpy.load.demFile = {r}/*.dem\n")
    unws = sorted(r.glob("geo_*.unw"))
    rsc = unws[2].with_name(unws[2].name + ".rsc")
    lines = []
    for ln in rsc.read_text().splitlines():
        if ln.startswith("X_FIRST"):
            ln = f"X_FIRST {float(ln.split()[1]) + 0.5!r}"
        lines.append(ln)
    rsc.write_text("\n".join(lines) + "\n")
    res = rel.cli("load", cfg)
    assert res.code == 0, res.out
    assert unws[2].name in res.out and "not on the grid" in res.out, res.out[-1500:]
    assert len(IfgramStack(cfg.parent / "inputs/ifgramStack.h5").pairs) == len(unws) - 1
    note(observed="dropped with a warning naming " + unws[2].name)
