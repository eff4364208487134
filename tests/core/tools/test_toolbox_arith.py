"""sbts diff / add / math: numbers against whole-array numpy references (MintPy's re-referencing
rules written out by hand), outputs read back by the sbts products and the velocity step."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from sbts.core.errors import InputError
from sbts.core.io.products import IfgramStack, MapProduct, StackWriter, TimeSeries, TimeSeriesWriter, write_map
from sbts.core.model.metadata import Metadata
from sbts.core.model.pairs import Pairs

DATES = ["20200101", "20200113", "20200125", "20200206", "20200218"]


def meta(length=12, width=15) -> Metadata:
    return Metadata.from_attrs({k: str(v) for k, v in dict(
        LENGTH=length, WIDTH=width, Y_FIRST=35.0, X_FIRST=-118.0, Y_STEP=-0.01, X_STEP=0.01, WAVELENGTH=0.0555,
    ).items()})


def d(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%Y%m%d").date()


def write_ts(path: Path, data: np.ndarray, dates, ref_date=None, ref_yx=None) -> Path:
    m = meta(*data.shape[1:])
    if ref_date:
        m = m.with_reference(date=d(ref_date))
    if ref_yx:
        m = m.with_reference(y=ref_yx[0], x=ref_yx[1])
    with TimeSeriesWriter(path, m, dates, np.arange(len(dates), dtype=np.float32)) as w:
        w.write("timeseries", data.astype(np.float32))
    return path


def rng_cube(n, seed, shape=(12, 15)) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


# ---------------------------------------------------------------------------- diff / add
def test_diff_time_series_minus_unreferenced_delay_matches_mintpy_rules(tmp_path):
    from sbts.core.tools.arith import diff_files

    ts = rng_cube(5, 0)
    ts -= ts[1:2]  # referenced to its REF_DATE 20200113 ...
    ts -= ts[:, 4:5, 6:7]  # ... and pixel (4, 6)
    f1 = write_ts(tmp_path / "timeseries.h5", ts, DATES, ref_date="20200113", ref_yx=(4, 6))
    # an absolute delay file (no REF_*): one more date, in MintPy's layout (FILE_TYPE timeseries)
    delay_dates = ["20191220", *DATES]
    delay = rng_cube(6, 1) + 2.0
    f2 = write_ts(tmp_path / "ERA5.h5", delay, delay_dates)
    out = diff_files(f1, [f2], max_memory=1e-6)
    assert out == tmp_path / "timeseries_diff_ERA5.h5"
    # by hand: the delay of the same dates, minus its value at the reference date and pixel
    dl = delay[1:].astype(np.float64)
    dl = dl - dl[1:2]
    dl = dl - dl[:, 4:5, 6:7]
    want = ts - dl
    got = TimeSeries(out)
    np.testing.assert_allclose(got.read_dates(), want, atol=2e-6)
    assert got.date_strings == DATES and got.metadata.reference.date == d("20200113")
    np.testing.assert_allclose(got.read_dates()[1], 0.0, atol=1e-6)  # still zero at REF_DATE
    np.testing.assert_allclose(got.read_dates()[:, 4, 6], 0.0, atol=1e-6)  # and at the reference pixel
    # the corrected file is read by the velocity step
    from sbts.core.steps.velocity import fit_time_functions

    vel = fit_time_functions(out, output=tmp_path / "velocity.h5")
    assert MapProduct(vel).read("velocity").shape == (12, 15)


def test_diff_missing_date_needs_force_and_add_of_same_reference_is_a_sum(tmp_path):
    from sbts.core.tools.arith import add_files, diff_files

    a, b = rng_cube(5, 2), rng_cube(4, 3)
    f1 = write_ts(tmp_path / "a.h5", a, DATES, ref_date="20200101")
    f2 = write_ts(tmp_path / "b.h5", b, DATES[:4], ref_date="20200101")
    with pytest.raises(InputError, match="missing.*--force"):
        diff_files(f1, [f2])
    out = diff_files(f1, [f2], force=True)
    got = TimeSeries(out).read_dates()
    np.testing.assert_allclose(got[:4], a[:4] - b, atol=1e-6)
    np.testing.assert_array_equal(got[4], a[4])  # left as in the first file
    # same references: a plain sum, three files
    f3 = write_ts(tmp_path / "c.h5", b * 2, DATES[:4], ref_date="20200101")
    out = add_files([f2, f3, f2], output=tmp_path / "sum.h5")
    np.testing.assert_allclose(TimeSeries(out).read_dates(), 4 * b, atol=1e-5)


def test_diff_maps_with_std_and_reference_point(tmp_path):
    from sbts.core.tools.arith import diff_files

    m1 = meta().with_reference(y=3, x=5)
    v1, v2 = rng_cube(1, 4)[0], rng_cube(1, 5)[0]
    s1, s2 = np.full((12, 15), 0.003, np.float32), np.full((12, 15), 0.004, np.float32)
    write_map(tmp_path / "v1.h5", m1, "velocity", {"velocity": v1, "velocityStd": s1, "intercept": v1}, unit="m/year")
    write_map(tmp_path / "v2.h5", meta().with_reference(y=0, x=0), "velocity", {"velocity": v2, "velocityStd": s2},
              unit="m/year")
    out = diff_files(tmp_path / "v1.h5", [tmp_path / "v2.h5"])
    p = MapProduct(out)
    np.testing.assert_allclose(p.read("velocity"), v1 - (v2 - v2[3, 5]), atol=1e-6)
    np.testing.assert_allclose(p.read("velocityStd"), 0.005, rtol=1e-6)  # sqrt(0.003² + 0.004²)
    assert not p.has("intercept")  # not in both files
    assert p.metadata.file_type == "velocity" and (p.metadata.reference.y, p.metadata.reference.x) == (3, 5)
    other = write_ts(tmp_path / "ts.h5", rng_cube(5, 6), DATES)
    with pytest.raises(InputError, match="time series"):
        diff_files(other, [tmp_path / "v2.h5"])
    small = write_map(tmp_path / "small.h5", meta(5, 5), "velocity", {"velocity": np.zeros((5, 5), np.float32)})
    with pytest.raises(InputError, match="one grid"):
        diff_files(tmp_path / "v1.h5", [small])


def test_diff_stacks_match_pairs_by_name(tmp_path):
    from sbts.core.tools.arith import diff_files

    dates = [d(x) for x in DATES[:4]]
    p1 = Pairs.from_indices(dates, [0, 0, 1, 2], [1, 2, 2, 3])
    p2 = Pairs.from_indices(dates, [2, 0, 1, 0], [3, 1, 2, 2])  # same pairs, another order
    ph1, ph2 = rng_cube(4, 7), rng_cube(4, 8)
    coh = np.random.default_rng(9).uniform(size=(4, 12, 15)).astype(np.float32)
    for path, pairs, ph in ((tmp_path / "s1.h5", p1, ph1), (tmp_path / "ion.h5", p2, ph2)):
        with StackWriter(path, meta(), pairs, ["unwrapPhase", "coherence"]) as w:
            w.write("unwrapPhase", ph)
            w.write("coherence", coh)
    out = diff_files(tmp_path / "s1.h5", [tmp_path / "ion.h5"], max_memory=1e-6)
    s = IfgramStack(out)
    order = [p2.date12.index(n) for n in p1.date12]
    np.testing.assert_allclose(s.read("unwrapPhase"), ph1 - ph2[order], atol=1e-6)
    np.testing.assert_array_equal(s.read("coherence"), coh)
    assert s.pairs.date12 == p1.date12


# ---------------------------------------------------------------------------- math
def test_math_on_velocity_time_series_and_cli(tmp_path):
    from sbts.cli.main import cli
    from sbts.core.tools.arith import image_math

    v = rng_cube(1, 10)[0]
    std = np.abs(rng_cube(1, 11)[0])
    mask = v > 0
    write_map(tmp_path / "velocity.h5", meta(), "velocity", {"velocity": v, "velocityStd": std, "mask": mask},
              unit="m/year")
    out = image_math(tmp_path / "velocity.h5", "*", -1000, max_memory=1e-6)
    assert out == tmp_path / "velocity_times-1000.h5"
    p = MapProduct(out)
    np.testing.assert_allclose(p.read("velocity"), v * -1000.0, rtol=1e-6)
    np.testing.assert_allclose(p.read("velocityStd"), std * 1000.0, rtol=1e-6)  # × |value|
    np.testing.assert_array_equal(p.read("mask"), mask)
    out = image_math(tmp_path / "velocity.h5", "^", 2)
    assert not MapProduct(out).has("velocityStd")
    np.testing.assert_allclose(MapProduct(out).read("velocity"), v.astype(np.float64) ** 2, rtol=1e-6)
    ts = rng_cube(5, 12)
    write_ts(tmp_path / "timeseries.h5", ts, DATES, ref_date="20200101")
    res = CliRunner().invoke(cli, ["math", str(tmp_path / "timeseries.h5"), "/", "4"])
    assert res.exit_code == 0, res.output
    got = TimeSeries(tmp_path / "timeseries_over4.h5")
    np.testing.assert_allclose(got.read_dates(), ts / 4.0, rtol=1e-6)
    assert got.date_strings == DATES
    with h5py.File(tmp_path / "timeseries_over4.h5") as f:
        np.testing.assert_array_equal(f["bperp"][()], np.arange(5))
    res = CliRunner().invoke(cli, ["math", str(tmp_path / "timeseries.h5"), "*", "-2", "-o", str(tmp_path / "neg.h5")])
    assert res.exit_code == 0, res.output  # a negative VALUE is a value, not an option
    np.testing.assert_allclose(TimeSeries(tmp_path / "neg.h5").read_dates(), ts * -2.0, rtol=1e-6)
    res = CliRunner().invoke(cli, ["math", str(tmp_path / "timeseries.h5"), "/", "0"])
    assert res.exit_code == 1 and "division by zero" in res.output
    res = CliRunner().invoke(cli, ["diff", str(tmp_path / "timeseries.h5"), str(tmp_path / "timeseries.h5"),
                                   "-o", str(tmp_path / "zero.h5")])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(TimeSeries(tmp_path / "zero.h5").read_dates(), 0.0)
    res = CliRunner().invoke(cli, ["add", str(tmp_path / "timeseries.h5"), str(tmp_path / "timeseries.h5")])
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(TimeSeries(tmp_path / "timeseries_plus_timeseries.h5").read_dates(), 2 * ts,
                               rtol=1e-6)
