"""GNSS on the velocity map (issue 19 §4): LOS velocities from .tenv3 files made from the demo's truth,
InSAR − GNSS statistics checked against a hand computation, and ``sbts view --gnss``."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from tenv3_writer import FRAME_OFFSET

from sbts.cli.main import cli
from sbts.core.errors import InputError


def _velocity(demo_work):
    with h5py.File(demo_work / "velocity.h5", "r") as f:
        return f["velocity"][()].astype(np.float64)


def test_gnss_los_velocities_are_the_truth_projected(demo_work, gnss_dir):
    """Each station's fitted LOS velocity equals the velocity its ENU motion was made from (to 1e-6 m/yr:
    the files hold positions to the micrometre); the due-east station moves away from an ascending
    satellite (negative LOS); the 20-day station has none; the station outside the grid is left out."""
    from sbts.core.viz.gnss_overlay import gnss_velocity_overlay

    folder, stations = gnss_dir
    ov = gnss_velocity_overlay(demo_work / "velocity.h5", folder)
    assert ov.ref_site is None
    assert sorted(s.site for s in ov.stations) == sorted(stations)  # FARX is outside
    for s in ov.stations:
        want = stations[s.site]
        assert (s.y, s.x) == (want.y, want.x), s.site
        if math.isnan(want.v_los):
            assert math.isnan(s.gnss) and s.num < 30
        else:
            assert s.gnss == pytest.approx(want.v_los, abs=1e-6), s.site
    east = ov.station("EAST")
    assert east.gnss < -0.005  # 1 cm/yr to the east, seen from the west (ascending, right-looking): away
    with h5py.File(demo_work / "inputs" / "geometryGeo.h5", "r") as f:
        inc = float(f["incidenceAngle"][east.y, east.x])
        az = float(f["azimuthAngle"][east.y, east.x])
    assert east.gnss == pytest.approx(-0.01 * math.sin(math.radians(inc)) * math.sin(math.radians(az)), abs=1e-6)


def test_statistics_match_a_hand_computation_with_a_reference_station(demo_work, gnss_dir):
    """--ref-gnss REF1: InSAR minus its value at REF1's pixel, GNSS minus REF1's (the frame offset
    cancels); Δ = InSAR − GNSS over the other stations with both; RMSE = √mean(Δ²), bias = mean(Δ)."""
    from sbts.core.viz.gnss_overlay import gnss_velocity_overlay

    folder, stations = gnss_dir
    vel = _velocity(demo_work)
    ref = stations["REF1"]
    ov = gnss_velocity_overlay(demo_work / "velocity.h5", folder, ref_site="ref1")
    assert ov.ref_site == "REF1" and ov.ref_yx == (ref.y, ref.x)
    diffs = {}
    for site, st in stations.items():
        if site == "REF1" or math.isnan(st.v_los) or vel[st.y, st.x] == 0:  # no GNSS velocity / no InSAR (lake)
            continue
        insar = vel[st.y, st.x] - vel[ref.y, ref.x]
        gnss = st.v_los - ref.v_los
        diffs[site] = insar - gnss
    assert sorted(diffs) == sorted(s.site for s in ov.compared())
    assert "LAKE" not in diffs and "SHRT" not in diffs and len(diffs) == 5
    d = np.array(list(diffs.values()))
    assert ov.num == d.size
    assert ov.bias == pytest.approx(d.mean(), abs=1e-6)
    assert ov.rmse == pytest.approx(np.sqrt(np.mean(d ** 2)), abs=1e-6)
    for s in ov.compared():
        assert s.diff == pytest.approx(diffs[s.site], abs=1e-6)
    # the estimate is within a few mm/yr of the truth (the demo's velocity error): the comparison means something
    assert ov.rmse < 0.01
    assert ov.station("REF1").insar == 0.0 and ov.station("REF1").gnss == 0.0


def test_statistics_without_reference_station_keep_the_frame_offset(demo_work, gnss_dir):
    """Without --ref-gnss GNSS is used as is (global frame) and InSAR relative to its reference point, so
    the bias carries the frame offset (−4 mm/yr) on top of the estimation error."""
    from sbts.core.viz.gnss_overlay import gnss_velocity_overlay

    folder, stations = gnss_dir
    vel = _velocity(demo_work)
    ov = gnss_velocity_overlay(demo_work / "velocity.h5", folder)
    d = np.array([vel[s.y, s.x] - s.v_los for s in stations.values()
                  if not math.isnan(s.v_los) and vel[s.y, s.x] != 0])
    assert ov.num == d.size == 6
    assert ov.bias == pytest.approx(d.mean(), abs=1e-6)
    assert ov.rmse == pytest.approx(np.sqrt(np.mean(d ** 2)), abs=1e-6)
    assert ov.bias < -FRAME_OFFSET / 2


def test_mask_excludes_stations_from_the_statistics(demo_work, gnss_dir):
    from sbts.core.viz.gnss_overlay import gnss_velocity_overlay

    folder, _ = gnss_dir
    ov = gnss_velocity_overlay(demo_work / "velocity.h5", folder, ref_site="REF1", mask=demo_work / "maskTempCoh.h5")
    assert "EAST" not in {s.site for s in ov.compared()}  # its pixel is outside maskTempCoh
    assert ov.num == 4


def test_reference_station_errors(demo_work, gnss_dir):
    from sbts.core.viz.gnss_overlay import gnss_velocity_overlay

    folder, _ = gnss_dir
    with pytest.raises(InputError, match="FARX: not among the stations inside the grid"):
        gnss_velocity_overlay(demo_work / "velocity.h5", folder, ref_site="FARX")
    with pytest.raises(InputError, match="SHRT: no GNSS velocity"):
        gnss_velocity_overlay(demo_work / "velocity.h5", folder, ref_site="SHRT")


def test_los_series_is_relative_to_the_reference_station_and_date(demo_work, gnss_dir):
    import datetime as dt

    from sbts.core.viz.gnss_overlay import gnss_velocity_overlay, los_series

    folder, stations = gnss_dir
    ov = gnss_velocity_overlay(demo_work / "velocity.h5", folder, ref_site="REF1")
    ref_date = dt.date(2020, 1, 10)
    dates, los = los_series(ov, "BOWL", ref_date)
    k = int(np.flatnonzero(dates == np.datetime64(ref_date))[0])
    assert los[k] == 0.0
    t = (dates - dates[k]).astype(np.float64) / 365.25
    want = (stations["BOWL"].v_los - stations["REF1"].v_los) * t
    np.testing.assert_allclose(los, want, atol=2e-5)  # linear motion, micrometre positions


def test_view_gnss_draws_markers_on_the_map_colour_scale(demo_work, gnss_dir, tmp_path):
    """``sbts view velocity.h5 --gnss DIR --ref-gnss REF1 --gnss-label``: the map is relative to REF1's
    pixel, each station's marker has the colour of its GNSS velocity on the map's colour map and
    limits, and the legend holds the statistics and the per-station differences."""
    import matplotlib

    from sbts.core.viz.gnss_overlay import gnss_velocity_overlay
    from sbts.core.viz.maps import view

    folder, stations = gnss_dir
    fig = view(demo_work / "velocity.h5", ["velocity"], gnss=folder, ref_gnss="REF1", gnss_label=True,
               vlim=(-20.0, 20.0), save=tmp_path / "v.png")
    ax = fig.axes[0]
    ov = gnss_velocity_overlay(demo_work / "velocity.h5", folder, ref_site="REF1")
    known = [s for s in ov.stations if np.isfinite(s.gnss)]
    coll = next(c for c in ax.collections if len(c.get_offsets()) == len(known))
    colours = coll.get_facecolors()
    cmap, norm = matplotlib.colormaps["RdBu_r"], matplotlib.colors.Normalize(-20.0, 20.0)
    for s, rgba in zip(known, colours):
        np.testing.assert_allclose(rgba, cmap(norm(s.gnss * 100.0)), atol=1e-6)
    # the map itself is re-referenced to the station's pixel: zero there
    image = ax.images[-1].get_array()
    ref = stations["REF1"]
    assert abs(float(image[ref.y, ref.x])) < 1e-9
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith(f"InSAR − GNSS: RMSE {ov.rmse * 100:.2f}, bias {ov.bias * 100:+.2f} (5 stations)") for t in texts)
    worst = max(ov.compared(), key=lambda s: abs(s.diff))
    assert f"{worst.site}: Δ {worst.diff * 100:+.2f}" in texts
    assert {t.get_text() for t in ax.texts} >= set(s.site for s in ov.stations)  # --gnss-label
    assert (tmp_path / "v.png").stat().st_size > 10_000


def test_view_gnss_cli(demo_work, gnss_dir, tmp_path):
    folder, _ = gnss_dir
    out = tmp_path / "g.png"
    r = CliRunner().invoke(cli, ["view", str(demo_work / "velocity.h5"), "--gnss", str(folder), "--ref-gnss", "REF1",
                                 "--gnss-label", "--save", str(out), "--nodisplay"])
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 10_000
    r = CliRunner().invoke(cli, ["view", str(demo_work / "timeseries.h5"), "20210105", "--gnss", str(folder),
                                 "--save", str(out), "--nodisplay"])
    assert r.exit_code == 1 and "--gnss compares velocities" in r.output
    r = CliRunner().invoke(cli, ["view", str(demo_work / "velocity.h5"), "--ref-gnss", "REF1", "--save", str(out),
                                 "--nodisplay"])
    assert r.exit_code == 1 and "--ref-gnss needs --gnss" in r.output
    r = CliRunner().invoke(cli, ["view", str(demo_work / "velocity.h5"), "--gnss", str(folder), "--ref-gnss", "REF1",
                                 "--ref-yx", "3", "3", "--save", str(out), "--nodisplay"])
    assert r.exit_code == 1 and "leave out --ref-yx" in r.output
