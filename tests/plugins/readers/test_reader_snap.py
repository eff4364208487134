"""SNAP reader: the real ``.dim`` (Iceland) and ENVI pair (Jharia), and generated BEAM-DIMAP products.

The stack is written by ``fixtures/snap_dimap.py`` in SNAP's BEAM-DIMAP layout (the real ``.dim`` has
no ``.data`` rasters, and the real ENVI pair has no ``.dim``).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fixtures.snap_dimap import FREQ_MHZ, STEP, X0, Y0, build_snap, template_text  # noqa: E402

from sbts.core.config.template import Template  # noqa: E402
from sbts.core.errors import InputError  # noqa: E402
from sbts.core.io.blocks import Block  # noqa: E402
from sbts.core.io.products import Geometry, IfgramStack  # noqa: E402
from sbts.core.steps.load import build_request, load_data  # noqa: E402
from sbts.plugins.readers.snap import SnapReader, radar_from_dim, read_dim, snap_dates  # noqa: E402

DIM = "snap_dim_metadata_iceland/S1_IW_SLC_DInSARStack_20190902_20190914.dim"


def _request(text, base):
    return build_request(Template.from_text(text), Path(base))


def test_real_dim_metadata(shared_data):
    dim = read_dim(shared_data / DIM)
    r = radar_from_dim(dim)
    assert r.wavelength == pytest.approx(299792458.0 / 5405.000454334349e6)
    assert r.orbit_direction == "DESCENDING" and r.platform == "sen"
    assert (r.alooks, r.rlooks) == (2, 6)
    assert r.incidence_angle == pytest.approx((35.9951286315918 + 41.45061818682464) / 2)
    assert r.starting_range == pytest.approx(850539.3959360173)
    assert r.prf == pytest.approx(1717.128973878037)
    assert r.heading == pytest.approx(191.20278048321723 - 360)
    # first/last_line_time 07:57:57.910628 / 07:58:03.774102
    assert r.center_line_utc == pytest.approx((28677.910628 + 28683.774102) / 2)
    assert 690e3 < r.height < 720e3 and 6.35e6 < r.earth_radius < 6.37e6
    assert dim["baselines"][(dt.date(2019, 9, 2), dt.date(2019, 9, 14))] == pytest.approx(10.542634010314941)


def test_real_envi_pair(shared_data, tmp_path):
    p = shared_data / "snap_envi_gacos_jharia" / "snap_envi"
    text = f"mintpy.load.unwFile = {p}/Unw_*.img\nmintpy.load.corFile = {p}/coh_*.img\n"
    req = _request(text, tmp_path)
    r = SnapReader()
    assert r.detect(req)
    with pytest.raises(InputError, match="WAVELENGTH"):  # no .dim beside it
        r.open_stack(req)
    src = r.open_stack(_request(text + "WAVELENGTH = 0.05546576\n", tmp_path))
    (pair,) = src.pairs
    assert (pair.date1, pair.date2) == (dt.date(2017, 3, 17), dt.date(2017, 4, 10))
    g = src.metadata.grid
    assert g.shape == (470, 769)
    # map info tie point is pixel (386, 236): x_first = x - 385·dx
    assert g.geo.x_first == pytest.approx(86.32976800981312 - 385 * 1.325015044076275e-4)
    assert g.geo.y_first == pytest.approx(23.79971642606433 + 235 * 1.325015044076275e-4)
    unw = pair.layers["unwrapPhase"].read()
    assert unw.min() == pytest.approx(-17.7, abs=0.01) and unw.max() == pytest.approx(19.8, abs=0.01)
    raw = np.fromfile(p / "Unw_Phase_ifg_17Mar2017_10Apr2017_VV.img", ">f4").reshape(470, 769)
    b = Block(100, 150, 200, 260)
    np.testing.assert_array_equal(pair.layers["unwrapPhase"].read(b), raw[b.slices])
    coh = pair.layers["coherence"].read()
    assert 0 < coh.min() and coh.max() < 1


def test_detect_negative(tmp_path):
    f = tmp_path / "x.img"
    f.write_bytes(b"\0" * 8)
    assert not SnapReader().detect(_request(f"mintpy.load.unwFile = {f}\n", tmp_path))  # no .hdr
    assert snap_dates("coh_IW2_VV_02Sep2019_14Sep2019") == [dt.date(2019, 9, 2), dt.date(2019, 9, 14)]


def test_swapped_pair_negates_phase(tmp_path):
    """A product written later_earlier (26Sep2019_02Sep2019) is stored earlier_later with its phase
    negated; the bperp is the .dim's for the sorted pair; coherence unchanged."""
    info = build_snap(tmp_path / "snap", pairs=(("20190926", "20190902", 6.5), ("20190902", "20190914", 10.54)))
    src = SnapReader().open_stack(_request(template_text(tmp_path / "snap"), tmp_path))
    by_pair = {(p.date1.strftime("%Y%m%d"), p.date2.strftime("%Y%m%d")): p for p in src.pairs}
    assert set(by_pair) == {("20190902", "20190926"), ("20190902", "20190914")}
    swapped, kept = by_pair[("20190902", "20190926")], by_pair[("20190902", "20190914")]
    np.testing.assert_array_equal(swapped.layers["unwrapPhase"].read(), -info["phases"][("20190926", "20190902")])
    assert swapped.bperp == pytest.approx(-6.5)
    assert float(np.nanmin(swapped.layers["coherence"].read())) >= 0
    np.testing.assert_array_equal(kept.layers["unwrapPhase"].read(), info["phases"][("20190902", "20190914")])
    assert kept.bperp == pytest.approx(10.54)


def test_stack_and_load(tmp_path):
    info = build_snap(tmp_path / "snap")
    req = _request(template_text(tmp_path / "snap"), tmp_path)
    src = SnapReader().open_stack(req)
    assert sorted(p.bperp for p in src.pairs) == [-4.0, 6.5, 10.54]
    assert src.metadata.radar.wavelength == pytest.approx(299792458.0 / (FREQ_MHZ * 1e6))
    assert src.metadata.grid.geo.x_first == pytest.approx(X0) and src.metadata.grid.geo.y_step == pytest.approx(-STEP)
    res = load_data(Template.from_text(template_text(tmp_path / "snap")), tmp_path / "work")
    assert res.reader == "snap"
    s = IfgramStack(res.stack_file)
    assert len(s.pairs) == 3
    np.testing.assert_allclose(s.read("unwrapPhase")[0], info["phases"][("20190902", "20190914")])
    assert s.metadata.radar.orbit_direction == "DESCENDING"
    assert s.metadata.grid.geo.y_first == pytest.approx(Y0)
    g = Geometry(res.geometry_file)
    np.testing.assert_allclose(g.read("height"), 120.0)
