"""The toolbox on a real stack (../shared/data: Sentinel-1 over Mexico City, GAMMA-processed, geocoded
GeoTIFFs with GAMMA's geo-coded lookup table), through the command line.

- The inversion is per pixel, so inverting a subset of the stack must give exactly the subset of the
  whole inversion (same reference pixel, same weights): subset keeps the data, the reference point
  and the attributes the inversion reads.
- GAMMA's eqa_to_rdc lookup converted to a radar-coded one and back gives the original radar
  coordinates (to a fraction of a pixel where the lookup is smooth).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sbts.cli.main import cli
from sbts.core.io.h5 import read_metadata
from sbts.core.io.products import Geometry, IfgramStack, MapProduct, TimeSeries


def _run(*args) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def mexico(shared_data, tmp_path_factory) -> Path:
    root = shared_data / "pyrate_s1_mexico_cropA_gamma"
    work = tmp_path_factory.mktemp("mexico_tools")
    (work / "mexico.cfg").write_text(f"""\
mintpy.load.processor   = auto
mintpy.load.unwFile     = {root}/geotiffs/*_unw.tif
mintpy.load.corFile     = {root}/geotiffs/*_cc.tif
mintpy.load.demFile     = {root}/geotiffs/*_dem.tif
mintpy.load.metaFile    = {root}/headers/*_mli.par
mintpy.load.bperpFile   = {root}/geometry/*_bperp.par
mintpy.load.lookupYFile = {root}/geometry/*eqa_to_rdc.lt
mintpy.load.lookupXFile = {root}/geometry/*eqa_to_rdc.lt
""")
    for step in ("load", "network", "invert"):
        _run(step, work / "mexico.cfg")
    return work


@pytest.mark.shared
def test_inverting_a_subset_equals_the_subset_of_the_inversion(mexico):
    sub = mexico / "sub"
    (sub / "inputs").mkdir(parents=True)
    full = IfgramStack(mexico / "inputs" / "ifgramStack.h5")
    ref = full.metadata.reference
    y0, x0 = max(0, ref.y - 7), max(0, ref.x - 17)  # a box holding the reference pixel
    y1, x1 = y0 + 40, x0 + 50
    _run("subset", mexico / "inputs" / "ifgramStack.h5", mexico / "inputs" / "geometryGeo.h5",
         "-y", y0, y1, "-x", x0, x1)
    for name in ("ifgramStack.h5", "geometryGeo.h5"):
        (mexico / "inputs" / f"sub_{name}").rename(sub / "inputs" / name)
    (sub / "sub.cfg").write_text((mexico / "mexico.cfg").read_text())
    _run("invert", sub / "sub.cfg")
    part = IfgramStack(sub / "inputs" / "ifgramStack.h5").metadata
    assert (part.reference.y, part.reference.x) == (ref.y - y0, ref.x - x0)
    assert part.reference.lat == ref.lat
    a = TimeSeries(mexico / "timeseries.h5").read_dates()[:, y0:y1, x0:x1]
    b = TimeSeries(sub / "timeseries.h5").read_dates()
    assert np.isfinite(b).mean() > 0.9 and np.abs(b).max() > 0.05  # real subsidence, not zeros
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-7)  # float32 results of the same per-pixel solve
    c1 = MapProduct(mexico / "temporalCoherence.h5").read("temporalCoherence")[y0:y1, x0:x1]
    c2 = MapProduct(sub / "temporalCoherence.h5").read("temporalCoherence")
    np.testing.assert_allclose(c2, c1, atol=1e-6)


@pytest.mark.shared
def test_gamma_lookup_geo2radar_and_back(mexico):
    geo = mexico / "inputs" / "geometryGeo.h5"
    radar = mexico / "rdr_lookup.h5"
    _run("lookup", "geo2radar", geo, "-o", radar)
    meta = read_metadata(geo)
    g = meta.grid.geo
    r = Geometry(radar)
    assert not r.metadata.grid.is_geocoded and r.has("latitude") and r.has("height")
    lat = r.read("latitude")
    inside = np.isfinite(lat)
    assert inside.sum() > 1000
    south, north = g.y_first + meta.grid.length * g.y_step, g.y_first
    assert south - abs(g.y_step) <= np.nanmin(lat) and np.nanmax(lat) <= north + abs(g.y_step)
    back = mexico / "back.h5"
    _run("lookup", "radar2geo", radar, "-o", back, "--lalo-step", abs(g.y_step), abs(g.x_step),
         "--bbox", south, north, g.x_first, g.x_first + meta.grid.width * g.x_step)
    a, b = Geometry(geo), Geometry(back)
    assert b.shape == a.shape
    inner = (slice(3, -3), slice(3, -3))  # the radar-coded table covers the geo table's footprint only
    for name, worst, typical in (("azimuthCoord", 0.05, 0.02), ("rangeCoord", 0.5, 0.15)):
        d = np.abs(b.read(name) - a.read(name))[inner]
        assert np.isfinite(d).mean() > 0.99
        # GAMMA's table: ~7 radar lines per geo row, topography bends it; bilinear both ways
        assert np.nanmax(d) < worst and np.nanpercentile(d, 99) < typical, (name, np.nanmax(d))
