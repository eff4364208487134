"""HDF-EOS5 export of the demo time series, read back with h5py: layout, values, attributes, name."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from sbts.core.errors import InputError
from sbts.core.plugin.runners import export

G = "HDFEOS/GRIDS/timeseries"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from sbts.core.demo.run import run_demo

    work = tmp_path_factory.mktemp("demo")
    run_demo(work, shape=(30, 40), num_date=8)
    return work


def test_layout_values_attributes(demo, tmp_path):
    ts = demo / "timeseries.h5"
    (out,) = export("hdfeos5", ts, output=tmp_path, options={"relative_orbit": "128", "first_frame": "593",
                                                            "last_frame": "597", "beam_swath": "12"})
    with h5py.File(ts) as f:
        dates = [d.decode() for d in f["date"][()]]
        disp, attrs = f["timeseries"][()], dict(f.attrs)
    assert out == tmp_path / f"S1_IW12_128_0593_0597_{dates[0]}_{dates[-1]}.he5"
    with h5py.File(out) as f:
        obs, qual, geom = f[f"{G}/observation"], f[f"{G}/quality"], f[f"{G}/geometry"]
        np.testing.assert_array_equal(obs["displacement"][()], disp)
        assert obs["displacement"].compression == "lzf"
        assert [d.decode() for d in obs["date"][()]] == dates and obs["bperp"].shape == (len(dates),)
        assert set(qual) == {"temporalCoherence", "avgSpatialCoherence", "mask"}
        assert qual["mask"].dtype == bool
        with h5py.File(demo / "temporalCoherence.h5") as t:
            np.testing.assert_array_equal(qual["temporalCoherence"][()], t["temporalCoherence"][()])
        assert {"height", "incidenceAngle", "slantRangeDistance", "azimuthAngle", "shadowMask", "waterMask",
                "latitude", "longitude"} <= set(geom)
        d = obs["displacement"].attrs
        assert d["Title"] == "displacement" and d["Units"] == "meters" and d["MissingValue"] == 0 and d["_FillValue"] == 0
        assert geom["incidenceAngle"].attrs["Units"] == "degrees"
        lat = geom["latitude"][()]
        y_first, y_step = float(attrs["Y_FIRST"]), float(attrs["Y_STEP"])
        assert lat[0, 0] == pytest.approx(y_first + 0.5 * y_step) and lat[-1, 3] == pytest.approx(y_first + 29.5 * y_step)
        a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    assert a["mission"] == "S1" and a["beam_mode"] == "IW" and a["beam_swath"] == 12  # numbers, as MintPy's
    assert a["relative_orbit"] == 128 and a["first_frame"] == 593 and a["last_frame"] == 597
    assert isinstance(a["relative_orbit"], np.integer) and isinstance(a["wavelength"], np.floating)
    assert a["first_date"] == f"{dates[0][:4]}-{dates[0][4:6]}-{dates[0][6:]}"
    assert a["processing_type"] == "LOS_TIMESERIES" and a["post_processing_method"] == "sbts"
    assert a["flight_direction"] == "A" and a["look_direction"] == "R" and a["polarization"] == "VV"
    assert a["data_footprint"].startswith("POLYGON((") and a["FILE_TYPE"] == "HDFEOS"
    assert float(a["wavelength"]) == pytest.approx(float(attrs["WAVELENGTH"]))
    assert a["REF_Y"] == attrs["REF_Y"]  # the MintPy metadata is kept


def test_missing_unavco_metadata(demo, tmp_path):
    with pytest.raises(InputError, match=r"relative_orbit = 128") as err:
        export("hdfeos5", demo / "timeseries.h5", output=tmp_path)
    assert "first_frame" not in str(err.value)  # MintPy's placeholder 0, not required
    tmpl = tmp_path / "t.cfg"
    tmpl.write_text("relative_orbit = 78\nmintpy.save.hdfEos5.first_frame = 12\n")
    (out,) = export("hdfeos5", demo / "timeseries.h5", output=tmp_path, options={"template": str(tmpl)})
    assert out.name.startswith("S1_IW_078_0012_") and "_0012_0012" not in out.name
    # MintPy's prefixed spellings (unavco./hdfeos5.) are read too
    tmpl.write_text("unavco.relative_orbit = 79\nhdfeos5.first_frame = 13\n")
    (out,) = export("hdfeos5", demo / "timeseries.h5", output=tmp_path, options={"template": str(tmpl)})
    assert out.name.startswith("S1_IW_079_0013_")


def test_placeholders_as_mintpy(demo, tmp_path):
    """Optional UNAVCO keys nobody gave get MintPy's placeholders (save_hdfeos5.metadata_mintpy2unavco),
    so readers that expect every key (insarmaps) find them; the template's own keys join the attributes."""
    tmpl = tmp_path / "t.cfg"
    tmpl.write_text("relative_orbit = 78\nmy_note = kept\nmintpy.save.hdfEos5 = yes\n")
    (out,) = export("hdfeos5", demo / "timeseries.h5", output=tmp_path, options={"template": str(tmpl)})
    assert out.name.startswith("S1_IW_078_0000_")
    with h5py.File(out) as f:
        a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        masks = f["HDFEOS/GRIDS/timeseries/quality/mask"].attrs
        assert masks["_FillValue"].dtype == bool and masks["MissingValue"].dtype == bool
    assert a["first_frame"] == 0 and a["last_frame"] == 0 and a["beam_swath"] == 0
    assert a["processing_dem"] == "Unknown" and a["unwrap_method"] == "Unknown"
    assert a["atmos_correct_method"] == "None"
    assert a["prf"] == 0.0 and isinstance(a["prf"], np.floating)
    assert a["my_note"] == "kept" and "mintpy.save.hdfEos5" not in a


def test_refusals(demo, tmp_path):
    with pytest.raises(InputError, match="time series"):
        export("hdfeos5", demo / "temporalCoherence.h5", options={"relative_orbit": "1", "first_frame": "1"})
    with pytest.raises(InputError, match="sbts geocode"):
        from sbts.core.io.products import TimeSeriesWriter
        from sbts.core.model.metadata import Grid, Metadata

        with TimeSeriesWriter(tmp_path / "timeseries.h5", Metadata(Grid(4, 5)), ["20200101", "20200201"]) as w:
            w.write("timeseries", np.zeros((2, 4, 5), np.float32))
        export("hdfeos5", tmp_path / "timeseries.h5")


def test_cli_update_name(demo, tmp_path):
    from sbts.cli.main import cli

    res = CliRunner().invoke(cli, ["export", "hdfeos5", str(demo / "timeseries.h5"), "-O", "relative_orbit=128",
                                   "-O", "first_frame=593", "-O", "update=yes", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (he5,) = tmp_path.glob("*.he5")
    assert he5.name.endswith("_XXXXXXXX.he5") and str(he5) in res.output


def _displacement_chunks(path: Path) -> tuple[dict, np.ndarray]:
    with h5py.File(path) as f:
        ds = f[f"{G}/observation/displacement"]
        grid = [range(0, s, c) for s, c in zip(ds.shape, ds.chunks)]
        return ({(k, y, x): ds.id.read_direct_chunk((k, y, x)) for k in grid[0] for y in grid[1] for x in grid[2]},
                ds[()])


@pytest.fixture(scope="module")
def demo_wide(tmp_path_factory) -> Path:
    """A demo of 520 × 300 px: 3 × 2 lzf chunks of 256 × 256 per date, edge chunks padded."""
    from sbts.core.demo.run import run_demo

    work = tmp_path_factory.mktemp("demo_wide")
    run_demo(work, shape=(520, 300), num_date=6)
    return work


@pytest.mark.parametrize("compute", [
    dict(max_memory=0.02, num_worker=2),  # 3 blocks of one chunk row, compressed by two worker processes
    dict(max_memory=0.02, num_worker=1),  # the same blocks here, compressed by HDF5 as they are written
    dict(max_memory=1e-6, num_worker=1),  # a budget under one row of chunks: compressed while written
])
def test_workers_and_budget_write_the_same_file(demo_wide, tmp_path, compute):
    """The displacement compressed by the run's workers (sbts.core.io.chunk_codec) is stored chunk for
    chunk as HDF5's own lzf filter stores it in one process and one block, whatever the budget."""
    from sbts.core.config.compute import ComputeOptions

    opts = {"relative_orbit": "128"}
    ts = demo_wide / "timeseries.h5"  # the demo is geocoded
    (one,) = export("hdfeos5", ts, output=tmp_path / "one", options=opts)
    (many,) = export("hdfeos5", ts, output=tmp_path / "many", options=opts, compute=ComputeOptions(**compute))
    a, _ = _displacement_chunks(one)
    b, data_b = _displacement_chunks(many)
    assert len(a) == 6 * 3 * 2 and a == b
    with h5py.File(ts) as f:
        np.testing.assert_array_equal(data_b, f["timeseries"][()])


def test_cli_workers(demo, tmp_path):
    from sbts.cli.main import cli

    result = CliRunner().invoke(cli, ["export", "hdfeos5", str(demo / "timeseries.h5"), "-o", str(tmp_path),
                                      "-O", "relative_orbit=128", "--num-worker", "2", "--max-memory", "0.01"])
    assert result.exit_code == 0, result.output
    (out,) = tmp_path.glob("*.he5")
    a, _ = _displacement_chunks(out)
    (ref,) = export("hdfeos5", demo / "timeseries.h5", output=tmp_path / "ref", options={"relative_orbit": "128"})
    assert a == _displacement_chunks(ref)[0]
