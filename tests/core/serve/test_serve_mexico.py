"""``sbts serve`` on real data: the Mexico City Sentinel-1 stack of ../shared/data, processed by `sbts run`."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from sbts.cli.main import cli


@pytest.mark.shared
def test_serve_on_the_mexico_city_stack(shared_data, tmp_path):
    from sbts.core.serve.state import ViewerState

    root = shared_data / "pyrate_s1_mexico_cropA_gamma"
    cfg = tmp_path / "mexico.cfg"
    cfg.write_text(f"""\
mintpy.load.processor   = auto
mintpy.load.unwFile     = {root}/geotiffs/*_unw.tif
mintpy.load.corFile     = {root}/geotiffs/*_cc.tif
mintpy.load.demFile     = {root}/geotiffs/*_dem.tif
mintpy.load.metaFile    = {root}/headers/*_mli.par
mintpy.load.bperpFile   = {root}/geometry/*_bperp.par
mintpy.load.lookupYFile = {root}/geometry/*eqa_to_rdc.lt
mintpy.load.lookupXFile = {root}/geometry/*eqa_to_rdc.lt
""")
    r = CliRunner().invoke(cli, ["-q", "run", str(cfg)])
    assert r.exit_code == 0, r.output
    state = ViewerState(tmp_path)
    try:
        info = state.info()
        (grid,) = info["grids"]
        assert grid["mode"] == "mercator" and (grid["length"], grid["width"]) == (60, 100)
        assert info["default_layer"] == "velocity.h5:velocity"
        series = grid["default_series"]
        assert series.endswith(":timeseries") and "Residual" not in series
        h = state.history(series, 30, 50)
        with h5py.File(tmp_path / series.split(":")[0], "r") as f:
            want = f["timeseries"][:, 30, 50].astype(np.float64) * 100
            assert len(h["dates"]) == f["date"].shape[0] == 13
        np.testing.assert_array_equal(h["values"], want)
        assert h["model"] is not None and h["rate"]["value"] < 0  # Mexico City subsides
        png = state.tile("velocity.h5:velocity", 14, *_tile(19.42, -99.13, 14))
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    finally:
        state.close()


def _tile(lat, lon, z):
    import math

    n = 2 ** z
    return (int((lon + 180) / 360 * n),
            int((1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n))
