"""`sbts view` / `sbts tsview` on HDF-EOS5 files: sbts's own export and MintPy's save_hdfeos5.py (oracle)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")

OBS = "HDFEOS/GRIDS/timeseries/observation"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from sbts.core.demo.run import run_demo

    work = tmp_path_factory.mktemp("he5demo")
    run_demo(work, shape=(30, 40), num_date=8)
    return work


@pytest.fixture(scope="module")
def sbts_he5(demo) -> Path:
    from sbts.core.plugin.runners import export

    (out,) = export("hdfeos5", demo / "timeseries.h5", output=demo / "sbts_he5",
                    options={"relative_orbit": "128", "first_frame": "593"})
    return out


@pytest.fixture(scope="module")
def mintpy_he5(demo, mintpy_oracle) -> Path:
    """The same time series written by MintPy 1.6.4's save_hdfeos5.py."""
    with h5py.File(demo / "timeseries.h5") as f:
        a = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}
    length, width = int(a["LENGTH"]), int(a["WIDTH"])
    y0, x0, dy, dx = (float(a[k]) for k in ("Y_FIRST", "X_FIRST", "Y_STEP", "X_STEP"))
    lat, lon = (y0, y0 + length * dy), (x0, x0 + width * dx)
    folder = demo / "mintpy_he5"
    folder.mkdir(exist_ok=True)
    (folder / "he5.cfg").write_text(
        "mintpy.save.hdfEos5 = yes\nbeam_mode = IW\nrelative_orbit = 128\nfirst_frame = 593\n"
        f"LAT_REF1 = {lat[1]}\nLAT_REF2 = {lat[1]}\nLAT_REF3 = {lat[0]}\nLAT_REF4 = {lat[0]}\n"
        f"LON_REF1 = {lon[0]}\nLON_REF2 = {lon[1]}\nLON_REF3 = {lon[0]}\nLON_REF4 = {lon[1]}\n")
    mintpy_oracle.run("save_hdfeos5.py", demo / "timeseries.h5", "--tc", demo / "temporalCoherence.h5",
                      "--asc", demo / "avgSpatialCoh.h5", "-m", demo / "maskTempCoh.h5",
                      "-g", demo / "inputs" / "geometryGeo.h5", "-t", folder / "he5.cfg", cwd=folder)
    (out,) = sorted(folder.glob("*.he5"))
    return out


def _check_he5(path: Path, tmp_path: Path) -> None:
    from sbts.cli.main import cli
    from sbts.core.io.products import HdfEos5TimeSeries, Product
    from sbts.core.viz.maps import view
    from sbts.core.viz.timeseries import tsview

    product = Product.open(path)
    assert isinstance(product, HdfEos5TimeSeries)
    with h5py.File(path) as f:
        cube = f[f"{OBS}/displacement"][()]
        dates = [d.decode() for d in f[f"{OBS}/date"][()]]
        tcoh = f["HDFEOS/GRIDS/timeseries/quality/temporalCoherence"][()]
    assert product.date_strings == dates
    # every date as a map, in cm, the values of the file
    fig = view(path)
    images = [ax.get_images()[0] for ax in fig.axes if ax.get_images()]
    assert len(images) == len(dates)
    last = images[-1].get_array()
    ok = ~np.ma.getmaskarray(last)
    assert ok.sum() > 0.5 * ok.size
    np.testing.assert_allclose(np.ma.getdata(last)[ok], cube[-1][ok] * 100, rtol=1e-5, atol=1e-6)
    # quality and geometry layers by their short names, in their own units
    fig = view(path, ["temporalCoherence", "incidenceAngle"])
    titles = {ax.get_title(): ax for ax in fig.axes if ax.get_images()}
    assert set(titles) == {"temporalCoherence", "incidenceAngle"}
    np.testing.assert_allclose(titles["temporalCoherence"].get_images()[0].get_array(), tcoh, atol=1e-6)
    assert titles["temporalCoherence"].get_images()[0].norm.vmax == 1.0
    inc = titles["incidenceAngle"].get_images()[0]
    assert 20 < float(np.ma.median(inc.get_array())) < 50  # degrees, not scaled as a length
    # tsview: the history of a pixel is the file's displacement
    y, x = 12, 20
    viewer = tsview([path], yx=(y, x), mask="auto", save=tmp_path / "ts.png")
    line = viewer.ax_ts.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), cube[:, y, x] * 100, rtol=1e-5, atol=1e-6)
    # through the command line, exit 0
    runner = CliRunner()
    for args in (["view", str(path), "--nodisplay", "--save", str(tmp_path / "v.png")],
                 ["view", str(path), "height", "--nodisplay", "--save", str(tmp_path / "h.png")],
                 ["view", str(path), dates[-1], "--dem", str(path), "-m", "auto", "--nodisplay", "--save",
                  str(tmp_path / "d.png")],
                 ["tsview", str(path), "--nodisplay", "--save", str(tmp_path / "t.png")]):
        res = runner.invoke(cli, args)
        assert res.exit_code == 0, res.output
        assert Path(args[-1]).is_file()


def test_view_and_tsview_open_sbts_hdfeos5(sbts_he5, tmp_path):
    _check_he5(sbts_he5, tmp_path)


def test_view_and_tsview_open_mintpy_hdfeos5(mintpy_he5, tmp_path):
    _check_he5(mintpy_he5, tmp_path)
