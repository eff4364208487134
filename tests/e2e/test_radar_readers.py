"""Reader fixes found by the radar-format stacks, each against a known answer.

- SNAP: the grid is the ``.dim`` transform, not the ENVI header SNAP recomputes (half a pixel off).
- ISCE: HEADING, HEIGHT, EARTH_RADIUS, AZIMUTH_PIXEL_SIZE from the orbit the fixture wrote, whose
  values at mid-scene are known exactly (``formats/_radar.orbit_truth``), ascending and descending.
- PLATFORM: one vocabulary, and from the template's name when the files do not say (Envisat → LOD).
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from formats import _radar, isce_stripmap, isce_tops, snap  # noqa: E402

from sbts.core.config.template import Template  # noqa: E402
from sbts.core.demo.synthetic import make_synthetic_stack  # noqa: E402
from sbts.core.model.platform import from_project_name, mission_code, standard_platform  # noqa: E402
from sbts.core.steps.load import load_data  # noqa: E402


@pytest.fixture(scope="module", params=["ASCENDING", "DESCENDING"])
def synth(request):
    return make_synthetic_stack((24, 32), 5, seed=5, orbit_direction=request.param)


def _load(template: Path) -> dict:
    result = load_data(Template.read(template), template.parent, base_dir=template.parent)
    with h5py.File(result.stack_file, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}


def test_snap_grid_is_the_dim_transform_not_the_envi_header(tmp_path, synth):
    attrs = _load(snap.write(tmp_path, synth))
    for key in ("X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP"):
        assert float(attrs[key]) == pytest.approx(float(synth.attrs[key]), abs=1e-12), key
    # the header SNAP writes is not that grid: its corner is half a pixel inside and its pixel smaller
    hdr = next(tmp_path.glob("interferograms/*/*_unw_tc.data/*.hdr")).read_text()
    info = hdr.split("map info = {")[1].split("}")[0].split(",")
    ref_x, x_tie, step = float(info[1]), float(info[3]), float(info[5])
    x0 = x_tie - (ref_x - 1) * step
    assert x0 - float(synth.attrs["X_FIRST"]) == pytest.approx(float(synth.attrs["X_STEP"]) / 2, rel=1e-6)
    assert step < float(synth.attrs["X_STEP"])
    assert float(attrs["HEADING"]) == pytest.approx(float(synth.attrs["HEADING"]), abs=1e-9)


@pytest.mark.parametrize("module", [isce_tops, isce_stripmap], ids=["topsStack", "stripmapStack"])
def test_isce_orbit_metadata(tmp_path, synth, module):
    attrs = _load(module.write(tmp_path, synth))
    truth = _radar.orbit_truth(synth)
    assert float(attrs["HEADING"]) == pytest.approx(truth["HEADING"], abs=1e-3)  # deg
    assert float(attrs["HEIGHT"]) == pytest.approx(truth["HEIGHT"], abs=0.5)  # m
    assert float(attrs["EARTH_RADIUS"]) == pytest.approx(truth["EARTH_RADIUS"], abs=1.0)  # m
    alooks = int(attrs["ALOOKS"])
    single = (_radar.SPEED * _radar.S1_AZIMUTH_TIME if module is isce_tops
              else isce_stripmap.azimuth_pixel(synth))
    assert float(attrs["AZIMUTH_PIXEL_SIZE"]) == pytest.approx(single * alooks, rel=1e-5)
    assert attrs["PLATFORM"] == ("sen" if module is isce_tops else "ers")
    assert attrs["POLARIZATION"] == "VV"
    assert attrs["ORBIT_DIRECTION"] == synth.attrs["ORBIT_DIRECTION"]
    lat, lon = _radar.lookup_latlon(synth)
    assert float(attrs["LAT_REF1"]) == pytest.approx(lat[2, 0]) and float(attrs["LON_REF4"]) == pytest.approx(lon[-3, -1])


def test_platform_vocabulary():
    for name in ("Sentinel-1A", "SENTINEL-1B", "Sen", "S1", "sentinel1"):
        assert standard_platform(name) == "sen"
    assert standard_platform("ENVISAT") == "env" and standard_platform("ASAR") == "env"
    assert standard_platform("ALOS-2") == "alos2" and standard_platform(None) is None
    assert mission_code("Sentinel-1") == "S1" and mission_code("env") == "ENV" and mission_code("alos2") == "ALOS2"
    assert from_project_name("/data/SydneyEnvD123.txt") == ("SydneyEnvD123", "env")
    assert from_project_name("KyushuAlos2DT23.template") == ("KyushuAlos2DT23", "alos2")
    assert from_project_name("Nice.cfg") == (None, None)
    assert from_project_name("smallbaselineApp.cfg") == (None, None)


def test_platform_from_template_name_turns_on_envisat_lod(tmp_path, shared_data):
    """The real Sydney Envisat ROI_PAC stack says nothing of its sensor: the template name does."""
    src = shared_data / "pyrate_envisat_sydney_small_test" / "roipac"
    template = tmp_path / "SydneyEnvD123.txt"
    template.write_text(f"mintpy.load.processor = roipac\nmintpy.load.unwFile = {src}/geo_*.unw\n"
                        f"mintpy.load.demFile = {src}/roipac_test_trimmed.dem\n")
    from sbts.core.workflow.runner import RunContext

    attrs = _load(template)
    assert attrs["PLATFORM"] == "env" and attrs["PROJECT_NAME"] == "SydneyEnvD123"
    ctx = RunContext(Template.read(template), tmp_path, tmp_path)
    # mintpy.localOscillatorDrift = auto (MintPy default: auto_envisat): the LOD correction is in the chain
    assert [lk.suffix for lk in ctx.chain()][:1] == ["LOD"] and ctx.link("correct_LOD") is not None
