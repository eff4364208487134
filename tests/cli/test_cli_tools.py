"""The tool commands through click: help, real runs on the demo outputs, one-line errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sbts.cli.main import cli
from sbts.core.io.products import MapProduct, Product, TimeSeries, write_map
from sbts.core.model.metadata import Metadata

COMMANDS = ("average", "mask", "horzvert", "mosaic", "filter", "gnss")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from sbts.core.demo.run import run_demo

    work = tmp_path_factory.mktemp("demo")
    run_demo(work, shape=(40, 50), num_date=10)
    return work


def run(*args: str):
    return CliRunner().invoke(cli, ["-q", *map(str, args)])


def ok(*args: str) -> list[str]:
    res = run(*args)
    assert res.exit_code == 0, res.output
    return res.stdout.strip().splitlines()


def fails(*args: str, match: str) -> None:
    res = run(*args)
    assert res.exit_code != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.stderr
    assert match in lines[0], lines[0]


@pytest.mark.parametrize("name", COMMANDS)
def test_help(name):
    res = CliRunner().invoke(cli, [name, "--help"])
    assert res.exit_code == 0 and "Usage:" in res.output


def test_average(demo, tmp_path):
    stack = demo / "inputs" / "ifgramStack.h5"
    (out,) = ok("average", stack, "-o", tmp_path / "coh.h5")
    assert MapProduct(out).read("coherence").shape == (40, 50)
    (out,) = ok("average", stack, "-d", "unwrapPhase", "-o", tmp_path / "vel.h5")
    assert MapProduct(out).metadata.unit == "m/year"
    fails("average", stack, "-d", "nope", match="no dataset 'nope'")
    fails("average", tmp_path / "missing.h5", match="file not found")


def test_mask(demo, tmp_path):
    (out,) = ok("mask", demo / "temporalCoherence.h5", "-m", "0.7", "-p", "5", "--exclude-circle", "10", "10", "4",
                "--subset-yx", "0", "30", "0", "45", "-o", tmp_path / "m.h5")
    m = MapProduct(out).read("mask")
    assert m.dtype == bool and m.any() and not m[30:].any() and not m[10, 10]
    (out,) = ok("mask", demo / "inputs" / "ifgramStack.h5", "--nonzero", "-o", tmp_path / "cc.h5")
    assert Product.open(out).metadata.file_type == "mask"
    # a date other than the reference date (which is zero everywhere)
    ts = TimeSeries(demo / "timeseries.h5")
    date = next(d for d, x in zip(ts.date_strings, ts.dates) if x != ts.metadata.reference.date)
    (out,) = ok("mask", demo / "timeseries.h5", date, "--nonzero", "--base", demo / "inputs" / "geometryGeo.h5",
                "--base-dset", "waterMask", "-o", tmp_path / "ts.h5")
    fails("mask", demo / "temporalCoherence.h5", "velocity", match="no dataset 'velocity'")
    fails("mask", demo / "temporalCoherence.h5", "--base", tmp_path / "m.h5", "--base-dset", "nope",
          match="no dataset 'nope'")
    fails("mask", tmp_path / "none.h5", match="file not found")


def _geo_map(path: Path, data: np.ndarray, step: float, **attrs) -> Path:
    a = dict(LENGTH=data.shape[0], WIDTH=data.shape[1], Y_FIRST=19.4, X_FIRST=-99.1, Y_STEP=-step, X_STEP=step)
    a.update(attrs)
    meta = Metadata.from_attrs({k: str(v) for k, v in a.items()})
    return write_map(path, meta, "velocity", {"velocity": data.astype(np.float32)}, unit="m/year")


def test_horzvert(demo, tmp_path):
    from sbts.core.tools.common import enu_to_los

    yy, xx = np.mgrid[:20, :30]
    east, up = 0.001 * xx, -0.002 * yy
    asc = _geo_map(tmp_path / "asc.h5", enu_to_los(east, 0, up, 35, 102.7), 0.001, HEADING=-12.7, INCIDENCE_ANGLE=35)
    dsc = _geo_map(tmp_path / "dsc.h5", enu_to_los(east, 0, up, 40, -102.7), 0.001, HEADING=-167.3,
                   INCIDENCE_ANGLE=40)
    hz, vt = ok("horzvert", asc, dsc, "--outdir", tmp_path / "hv")
    np.testing.assert_allclose(MapProduct(hz).read("velocity"), east, atol=1e-6)
    np.testing.assert_allclose(MapProduct(vt).read("velocity"), up, atol=1e-6)
    # the demo velocity with its per-pixel geometry, twice the same look: runs, nothing separable
    vel = demo / "avgPhaseVelocity.h5"
    geom = demo / "inputs" / "geometryGeo.h5"
    ok("horzvert", vel, vel, "-g", geom, "-g", geom, "--outdir", tmp_path / "same")
    coarse = _geo_map(tmp_path / "coarse.h5", east, 0.002, HEADING=-167.3, INCIDENCE_ANGLE=40)
    fails("horzvert", asc, coarse, match="pixel size")
    fails("horzvert", asc, tmp_path / "missing.h5", match="file not found")
    fails("horzvert", asc, dsc, "-g", geom, match="geometry file(s) for 2")


def test_mosaic(demo, tmp_path):
    f = np.add.outer(np.arange(30.0), np.arange(40.0)) * 0.001
    a = _geo_map(tmp_path / "a.h5", f[:20, :25], 0.001)
    b = _geo_map(tmp_path / "b.h5", f[10:, 15:] + 0.1, 0.001, Y_FIRST=19.4 - 0.010, X_FIRST=-99.1 + 0.015)
    (out,) = ok("mosaic", a, b, "-o", tmp_path / "mos.h5")
    got = MapProduct(out).read("velocity")
    assert got.shape == (30, 40)
    np.testing.assert_allclose(got[:20, :25], f[:20, :25], atol=1e-6)
    np.testing.assert_allclose(got[10:, 15:], f[10:, 15:], atol=1e-6)
    (out,) = ok("mosaic", demo / "temporalCoherence.h5", demo / "avgSpatialCoh.h5", "-o", tmp_path / "d.h5")
    assert MapProduct(out).shape == (40, 50)
    fails("mosaic", a, _geo_map(tmp_path / "c.h5", f, 0.0005), "-o", tmp_path / "x.h5", match="pixel size")
    fails("mosaic", a, b, "--dset", "nope", "-o", tmp_path / "y.h5", match="no dataset 'nope'")


def test_filter(demo, tmp_path):
    (out,) = ok("filter", demo / "timeseries.h5", "-f", "median", "-p", "3", "-o", tmp_path / "tsm.h5")
    assert TimeSeries(out).read_dates().shape == (10, 40, 50)
    (out,) = ok("filter", demo / "timeseries.h5", "-f", "temporal-gaussian", "-p", "2", "-o", tmp_path / "tg.h5")
    ts = TimeSeries(out)
    ref = ts.dates.index(ts.metadata.reference.date)
    assert np.nanmax(np.abs(ts.read_dates(index=ref))) == 0.0
    (out,) = ok("filter", demo / "temporalCoherence.h5", "-f", "highpass")
    assert Path(out).name == "temporalCoherence_highpass3.h5"
    fails("filter", demo / "temporalCoherence.h5", "-f", "temporal-median", match="time series")
    fails("filter", demo / "temporalCoherence.h5", "--dset", "nope", match="no dataset 'nope'")
    fails("filter", tmp_path / "missing.h5", match="file not found")


def test_gnss(demo, tmp_path):
    ts = TimeSeries(demo / "timeseries.h5")
    geo = ts.metadata.grid.geo
    gdir = tmp_path / "gnss"
    gdir.mkdir()
    months = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    for site, (y, x) in {"AAAA": (10, 10), "BBBB": (30, 40)}.items():
        lat, lon = geo.yx_to_lalo(y, x)
        lines = []
        day, end = ts.dates[0] - dt.timedelta(days=5), ts.dates[-1] + dt.timedelta(days=5)
        while day <= end:
            mjd = (day - dt.date(1858, 11, 17)).days
            w, d = divmod(mjd - 44244, 7)
            lines.append(f"{site} {day:%y}{months[day.month - 1]}{day:%d} {day.year + 0.5:9.4f} {mjd} {w} {d} "
                         f"-99.0 1000 0.100000 2100000 0.200000 2240 0.300000 0.0000 0.001 0.001 0.003 "
                         f"0.0 0.0 0.0 {lat:.8f} {lon:.8f} 2240.0")
            day += dt.timedelta(days=1)
        (gdir / f"{site}.tenv3").write_text("\n".join(lines) + "\n")
    out = ok("gnss", demo / "timeseries.h5", "--gnss-dir", gdir, "--sites", "AAAA,BBBB", "--ref-site", "AAAA",
             "-o", tmp_path / "cmp.txt")
    assert out[-2:] == [str(tmp_path / "cmp.txt"), str(tmp_path / "cmp.png")]
    assert any(line.startswith("BBBB") for line in out)
    assert (tmp_path / "cmp.png").stat().st_size > 1000
    ok("gnss", demo / "timeseries.h5", "--gnss-dir", gdir, "--no-plot", "-o", tmp_path / "c2.txt")
    assert not (tmp_path / "c2.png").exists()
    fails("gnss", demo / "timeseries.h5", "--gnss-dir", tmp_path / "none", match="GNSS folder not found")
    fails("gnss", demo / "timeseries.h5", "--gnss-dir", gdir, "--sites", "ZZZZ", match="no .tenv3 file for ZZZZ")
    fails("gnss", tmp_path / "missing.h5", "--gnss-dir", gdir, match="file not found")
