"""sbts lookup geo2radar / radar2geo: against the inverse of an affine lookup computed by hand, a
round trip, and geocoding with the converted table."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from sbts.core.errors import InputError
from sbts.core.io.products import Geometry, MapProduct, write_map
from sbts.core.model.metadata import Metadata

L, W = 40, 50  # geo grid
Y0, X0, DY, DX = 35.0, -118.0, -0.001, 0.001
M = np.array([[0.5, 0.1], [0.05, 0.4]])  # (az, rg) = OFF + M @ (r, c)
OFF = np.array([2.0, 1.0])
RL, RW = 22, 20  # radar grid


def geo_lookup(folder: Path) -> Path:
    r, c = np.mgrid[:L, :W].astype(np.float64)
    az = OFF[0] + M[0, 0] * r + M[0, 1] * c
    rg = OFF[1] + M[1, 0] * r + M[1, 1] * c
    meta = Metadata.from_attrs({k: str(v) for k, v in dict(
        LENGTH=L, WIDTH=W, Y_FIRST=Y0, X_FIRST=X0, Y_STEP=DY, X_STEP=DX, RADAR_LENGTH=RL, RADAR_WIDTH=RW,
        WAVELENGTH=0.0555, PROCESSOR="gamma").items()})
    return write_map(folder / "geometryGeo.h5", meta, "geometry", {
        "azimuthCoord": az.astype(np.float32), "rangeCoord": rg.astype(np.float32),
        "height": (100 + 3 * r - 2 * c).astype(np.float32), "waterMask": c > 10}, unit=None)


def expected_geo_position(i: np.ndarray, j: np.ndarray):
    """Fractional geo (row, col) of radar pixel (i, j): the affine lookup inverted by hand."""
    rc = np.linalg.solve(M, np.stack([i - OFF[0], j - OFF[1]]).reshape(2, -1)).reshape((2,) + i.shape)
    return rc[0], rc[1]


def test_geo2radar_inverts_the_table(tmp_path):
    from sbts.core.tools.lookup import geo2radar

    src = geo_lookup(tmp_path)
    out = geo2radar(src, max_memory=1e-6)  # many blocks
    assert out == tmp_path / "geometryRadar.h5"
    g = Geometry(out)
    assert g.shape == (RL, RW) and not g.metadata.grid.is_geocoded
    i, j = np.mgrid[:RL, :RW].astype(np.float64)
    r, c = expected_geo_position(i, j)
    inside = (r >= 0) & (r <= L - 1) & (c >= 0) & (c <= W - 1)
    outside = (r < -1) | (r > L) | (c < -1) | (c > W)
    assert inside.sum() > 100 and outside.sum() > 10
    lat, lon = g.read("latitude"), g.read("longitude")
    # float32 storage of ~35°/−118°: ~4e-6° resolution
    np.testing.assert_allclose(lat[inside], Y0 + (r[inside] + 0.5) * DY, atol=1e-5)
    np.testing.assert_allclose(lon[inside], X0 + (c[inside] + 0.5) * DX, atol=1e-5)
    assert np.isnan(lat[outside]).all() and np.isnan(lon[outside]).all()
    np.testing.assert_allclose(g.read("height")[inside], (100 + 3 * r - 2 * c)[inside], atol=1e-3)  # bilinear: exact
    wm = g.read("waterMask")
    assert wm.dtype == bool
    far = inside & (np.abs(c - 10.5) > 1)
    np.testing.assert_array_equal(wm[far], (c > 10.5)[far])
    assert not g.has("azimuthCoord")
    with pytest.raises(InputError, match="azimuthCoord/rangeCoord"):
        geo2radar(out, output=tmp_path / "again.h5")


def test_radar2geo_round_trip_and_geocoding_with_the_converted_table(tmp_path):
    from sbts.core.steps.geocode import GeocodeOptions, geocode_file
    from sbts.core.tools.lookup import geo2radar, radar2geo

    src = geo_lookup(tmp_path)
    radar = geo2radar(src)
    bbox = (Y0 + L * DY, Y0, X0, X0 + W * DX)
    back = radar2geo(radar, output=tmp_path / "back.h5", lalo_step=(abs(DY), DX), bbox=bbox)
    g0, g1 = Geometry(src), Geometry(back)
    assert g1.shape == (L, W)
    assert (g1.metadata.extra["RADAR_LENGTH"], g1.metadata.extra["RADAR_WIDTH"]) == (str(RL), str(RW))
    az0, az1 = g0.read("azimuthCoord"), g1.read("azimuthCoord")
    rg0, rg1 = g0.read("rangeCoord"), g1.read("rangeCoord")
    # geo pixels whose radar position is inside the radar grid, one pixel from its edge, and away
    # from the geo grid's edge (the radar-coded table covers only the geo table's footprint)
    r, c = np.mgrid[:L, :W]
    ok = (az0 >= 1) & (az0 <= RL - 2) & (rg0 >= 1) & (rg0 <= RW - 2) & (r >= 3) & (r < L - 3) & (c >= 3) & (c < W - 3)
    assert ok.sum() > 200
    np.testing.assert_allclose(az1[ok], az0[ok], atol=0.02)  # float32 lat/lon in between: ~0.01 pixel
    np.testing.assert_allclose(rg1[ok], rg0[ok], atol=0.02)
    # a radar-coded map geocoded with the converted table equals geocoding with the original one
    meta = Geometry(radar).metadata
    i, j = np.mgrid[:RL, :RW]
    write_map(tmp_path / "velocity.h5", meta.replace(file_type="velocity"), "velocity",
              {"velocity": (0.1 * i + 0.2 * j).astype(np.float32)}, unit="m/year")
    opts = GeocodeOptions(lalo_step=(abs(DY), DX), bbox=bbox, method="linear")
    a = MapProduct(geocode_file(tmp_path / "velocity.h5", src, tmp_path / "a.h5", options=opts)).read("velocity")
    b = MapProduct(geocode_file(tmp_path / "velocity.h5", radar, tmp_path / "b.h5", options=opts)).read("velocity")
    both = ok & np.isfinite(a) & np.isfinite(b)
    assert both.sum() > 200
    np.testing.assert_allclose(b[both], a[both], atol=0.01)


def test_lookup_cli(tmp_path):
    from sbts.cli.main import cli

    src = geo_lookup(tmp_path)
    res = CliRunner().invoke(cli, ["lookup", "geo2radar", str(src), "-o", str(tmp_path / "r.h5")])
    assert res.exit_code == 0, res.output
    assert Geometry(tmp_path / "r.h5").has("latitude")
    res = CliRunner().invoke(cli, ["lookup", "radar2geo", str(src)])
    assert res.exit_code == 1 and "latitude/longitude" in res.output


def test_a_subset_radar_file_geocodes_with_the_full_gamma_lookup(tmp_path):
    """SUBSET_YMIN/XMIN written by `sbts subset` place the cropped radar file in the lookup's radar
    coordinates, as geocoding reads them (MintPy's convention)."""
    from sbts.core.steps.geocode import GeocodeOptions, geocode_file
    from sbts.core.tools.subset import subset_file

    src = geo_lookup(tmp_path)
    meta = Metadata.from_attrs({k: str(v) for k, v in dict(LENGTH=RL, WIDTH=RW, WAVELENGTH=0.0555).items()})
    i, j = np.mgrid[:RL, :RW]
    write_map(tmp_path / "velocity.h5", meta, "velocity", {"velocity": (0.1 * i + 0.2 * j).astype(np.float32)},
              unit="m/year")
    sub = subset_file(tmp_path / "velocity.h5", yx=(3, 15, 2, 14))
    opts = GeocodeOptions(method="linear")
    full = MapProduct(geocode_file(tmp_path / "velocity.h5", src, tmp_path / "full.h5", options=opts)).read("velocity")
    part = MapProduct(geocode_file(sub, src, tmp_path / "part.h5", options=opts)).read("velocity")
    az, rg = Geometry(src).read("azimuthCoord"), Geometry(src).read("rangeCoord")
    inside = (az >= 3) & (az <= 14) & (rg >= 2) & (rg <= 13)
    assert inside.sum() > 100
    np.testing.assert_allclose(part[inside], full[inside], atol=1e-5)
    np.testing.assert_allclose(part[inside], (0.1 * az + 0.2 * rg)[inside], atol=1e-4)  # and the truth
    outside = (az < 2) | (az > 15) | (rg < 1) | (rg > 14)
    assert np.isnan(part[outside]).all()


def test_a_multilooked_radar_file_geocodes_with_the_full_resolution_lookup(tmp_path):
    """ALOOKS/RLOOKS written by `sbts multilook` tell geocoding how the cells map to the lookup's
    radar coordinates: a linear field multilooked by cell means lands on its true values."""
    from sbts.core.io.h5 import read_attrs
    from sbts.core.steps.geocode import GeocodeOptions, geocode_file
    from sbts.core.tools.multilook import multilook_file

    src = geo_lookup(tmp_path)
    with h5py.File(src, "r+") as f:  # the lookup's own looks (GAMMA writes them)
        f.attrs["ALOOKS"], f.attrs["RLOOKS"] = "1", "1"
    meta = Metadata.from_attrs({k: str(v) for k, v in dict(LENGTH=RL, WIDTH=RW, WAVELENGTH=0.0555, ALOOKS=1,
                                                              RLOOKS=1).items()})
    i, j = np.mgrid[:RL, :RW]
    write_map(tmp_path / "velocity.h5", meta, "velocity", {"velocity": (0.1 * i + 0.2 * j).astype(np.float32)},
              unit="m/year")
    ml = multilook_file(tmp_path / "velocity.h5", 2, 2, "mean")
    assert (read_attrs(ml)["ALOOKS"], read_attrs(ml)["RLOOKS"]) == ("2", "2")
    out = MapProduct(geocode_file(ml, src, tmp_path / "geo_ml.h5", options=GeocodeOptions(method="linear")))
    v = out.read("velocity")
    az, rg = Geometry(src).read("azimuthCoord"), Geometry(src).read("rangeCoord")
    inside = (az >= 1) & (az <= RL - 2) & (rg >= 1) & (rg <= RW - 2)
    assert inside.sum() > 100
    np.testing.assert_allclose(v[inside], (0.1 * az + 0.2 * rg)[inside], atol=1e-4)
