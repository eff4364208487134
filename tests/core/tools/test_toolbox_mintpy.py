"""sbts subset / multilook / diff / add / math against MintPy 1.6.4's subset.py, multilook.py, diff.py,
add.py and image_math.py run on the same files (the oracle; skipped where it is not installed).

Tolerances: cropping and sampling are copies (exact); means, sums and differences are computed in
float64 by sbts and in float32 by MintPy, so they agree to float32 rounding (1e-6 on values of order 1).
The deliberate differences (``docs``: module docstrings) are checked as such: MintPy's multilook.py
averages the zeros of unwrapPhase and the connected-component labels and keeps NCORRLOOKS; MintPy's
subset.py keeps a REF_Y/REF_X that falls outside the box.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import h5py
import numpy as np
import pytest

from sbts.core.io.products import StackWriter, TimeSeriesWriter, write_map
from sbts.core.model.metadata import Metadata
from sbts.core.model.pairs import Pairs

DATES = ["20200101", "20200113", "20200125", "20200206"]
GRID_KEYS = ("LENGTH", "WIDTH", "X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP", "SUBSET_YMIN", "SUBSET_YMAX",
             "SUBSET_XMIN", "SUBSET_XMAX", "XMAX", "YMAX", "ALOOKS", "RLOOKS", "RANGE_PIXEL_SIZE",
             "AZIMUTH_PIXEL_SIZE", "FILE_TYPE", "REF_DATE")


def attrs(path: Path) -> dict[str, str]:
    with h5py.File(path) as f:
        return {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in f.attrs.items()}


def same_number(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    try:
        return float(a) == pytest.approx(float(b), rel=1e-12)
    except ValueError:
        return a == b


def read(path: Path, name: str) -> np.ndarray:
    with h5py.File(path) as f:
        return f[name][()]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("oracle")
    geo = dict(LENGTH=23, WIDTH=31, Y_FIRST=35.0, X_FIRST=-118.0, Y_STEP=-0.01, X_STEP=0.01, X_UNIT="degrees",
               Y_UNIT="degrees", WAVELENGTH=0.0555, ALOOKS=1, RLOOKS=1, RANGE_PIXEL_SIZE=2.3, AZIMUTH_PIXEL_SIZE=14.0)
    m = Metadata.from_attrs({k: str(v) for k, v in geo.items()})
    rng = np.random.default_rng(0)
    ts = rng.normal(size=(4, 23, 31)).astype(np.float32)
    ts[:, 4, 5] = np.nan
    ts -= ts[:1]
    with TimeSeriesWriter(d / "timeseries.h5", m.with_reference(y=10, x=12, date=dt.date(2020, 1, 1)), DATES) as w:
        w.write("timeseries", ts)
    with TimeSeriesWriter(d / "ERA5.h5", m, DATES) as w:  # absolute delay: no REF_*
        w.write("timeseries", rng.normal(size=(4, 23, 31)).astype(np.float32))
    write_map(d / "velocity.h5", m.with_reference(y=10, x=12), "velocity",
              {"velocity": ts[3], "velocityStd": np.abs(ts[2])}, unit="m/year")
    radar = dict(LENGTH=20, WIDTH=24, WAVELENGTH=0.0555, ALOOKS=3, RLOOKS=9, RANGE_PIXEL_SIZE=2.33,
                 AZIMUTH_PIXEL_SIZE=14.0, NCORRLOOKS=13.9, HEADING=-12.0)
    rm = Metadata.from_attrs({k: str(v) for k, v in radar.items()}).with_reference(y=7, x=9)
    dates = [dt.datetime.strptime(x, "%Y%m%d").date() for x in DATES]
    pairs = Pairs.from_indices(dates, [0, 0, 1, 2], [1, 2, 2, 3], [10.0, -5.0, -15.0, 8.0])
    phase = rng.normal(size=(4, 20, 24)).astype(np.float32)
    phase[:, 2:4, 4:8] = 0.0  # no-data cells
    with StackWriter(d / "ifgramStack.h5", rm, pairs, ["unwrapPhase", "coherence", "connectComponent"]) as w:
        w.write("unwrapPhase", phase)
        w.write("coherence", rng.uniform(0.2, 1, size=(4, 20, 24)).astype(np.float32))
        w.write("connectComponent", rng.integers(0, 3, size=(4, 20, 24)).astype(np.int16))
    yy, xx = np.mgrid[:20, :24].astype(np.float64)
    write_map(d / "geometryRadar.h5", rm, "geometry", {
        "latitude": (34 + 0.001 * yy + 0.0002 * xx).astype(np.float32),
        "longitude": (-118 + 0.002 * xx - 0.0003 * yy).astype(np.float32),
        "height": (100 + yy + xx).astype(np.float32)}, unit=None)
    return d


def _check_attrs(mp: Path, sb: Path, skip=()) -> None:
    a, b = attrs(mp), attrs(sb)
    for key in GRID_KEYS:
        if key in skip:
            continue
        assert same_number(a.get(key), b.get(key)), f"{key}: MintPy {a.get(key)} sbts {b.get(key)}"


@pytest.mark.parametrize("box", [
    ("-y", "3", "17", "-x", "5", "25"),
    ("-l", "34.87", "34.93", "-L", "-117.95", "-117.90"),
    ("-l", "34.9", "34.925", "-L", "-117.955", "-117.945"),  # edges inside pixels
    ("-l", "34.8951", "34.93001", "-L", "-117.9549", "-117.8399"),  # near boundaries: MintPy's 1 % snap
])
def test_subset_matches_mintpy(files, mintpy_oracle, box, tmp_path):
    from sbts.core.tools.subset import subset_file

    mp = tmp_path / "mp.h5"
    mintpy_oracle.run("subset.py", files / "timeseries.h5", *box, "-o", mp)
    yx = lalo = None
    if box[0] == "-y":
        yx = (int(box[1]), int(box[2]), int(box[4]), int(box[5]))
    else:
        lalo = (float(box[1]), float(box[2]), float(box[4]), float(box[5]))
    sb = subset_file(files / "timeseries.h5", yx, lalo, tmp_path / "sb.h5")
    np.testing.assert_array_equal(read(sb, "timeseries"), read(mp, "timeseries"))
    np.testing.assert_array_equal(read(sb, "date"), read(mp, "date"))
    _check_attrs(mp, sb)
    a, b = attrs(mp), attrs(sb)
    inside = 0 <= int(a["REF_Y"]) < int(a["LENGTH"]) and 0 <= int(a["REF_X"]) < int(a["WIDTH"])
    if inside:
        assert (a["REF_Y"], a["REF_X"]) == (b["REF_Y"], b["REF_X"])
    else:  # MintPy keeps a reference pixel outside the file; sbts drops it
        assert "REF_Y" not in b


def test_subset_stack_matches_mintpy(files, mintpy_oracle, tmp_path):
    from sbts.core.tools.subset import subset_file

    mp = tmp_path / "mp.h5"
    mintpy_oracle.run("subset.py", files / "ifgramStack.h5", "-y", "2", "11", "-x", "9", "17", "-o", mp)
    sb = subset_file(files / "ifgramStack.h5", (2, 11, 9, 17), output=tmp_path / "sb.h5")
    for name in ("unwrapPhase", "coherence", "connectComponent", "date", "bperp", "dropIfgram"):
        np.testing.assert_array_equal(read(sb, name), read(mp, name))
    _check_attrs(mp, sb)
    assert (attrs(sb)["REF_Y"], attrs(sb)["REF_X"]) == (attrs(mp)["REF_Y"], attrs(mp)["REF_X"]) == ("5", "0")


@pytest.mark.parametrize("method", ["mean", "median", "nearest"])
def test_multilook_time_series_matches_mintpy(files, mintpy_oracle, method, tmp_path):
    from sbts.core.tools.multilook import multilook_file

    mp = tmp_path / "mp.h5"
    mintpy_oracle.run("multilook.py", files / "timeseries.h5", "-r", "3", "-a", "2", "-m", method, "-o", mp)
    sb = multilook_file(files / "timeseries.h5", 2, 3, method, tmp_path / "sb.h5")
    np.testing.assert_allclose(read(sb, "timeseries"), read(mp, "timeseries"), rtol=0, atol=1e-6)
    _check_attrs(mp, sb)
    assert (attrs(sb)["REF_Y"], attrs(sb)["REF_X"]) == (attrs(mp)["REF_Y"], attrs(mp)["REF_X"])


def test_multilook_stack_and_geometry_against_mintpy(files, mintpy_oracle, tmp_path):
    from sbts.core.tools.multilook import multilook_file

    for name in ("ifgramStack.h5", "geometryRadar.h5"):
        mintpy_oracle.run("multilook.py", files / name, "-r", "4", "-a", "2", "-m", "mean", "-o", tmp_path / f"mp_{name}")
        multilook_file(files / name, 2, 4, "mean", tmp_path / f"sb_{name}")
        _check_attrs(tmp_path / f"mp_{name}", tmp_path / f"sb_{name}")
    mp, sb = tmp_path / "mp_ifgramStack.h5", tmp_path / "sb_ifgramStack.h5"
    np.testing.assert_allclose(read(sb, "coherence"), read(mp, "coherence"), atol=1e-6)
    # unwrapPhase: equal where a cell has no zero (MintPy averages zeros in, sbts leaves no-data out)
    src = read(files / "ifgramStack.h5", "unwrapPhase")
    has_zero = (src[:, :20, :24].reshape(4, 10, 2, 6, 4) == 0).any(axis=(2, 4))
    assert has_zero.any()
    np.testing.assert_allclose(read(sb, "unwrapPhase")[~has_zero], read(mp, "unwrapPhase")[~has_zero], atol=1e-6)
    assert attrs(mp)["NCORRLOOKS"] == "13.9" and float(attrs(sb)["NCORRLOOKS"]) == pytest.approx(13.9 * 8)
    mg, sg = tmp_path / "mp_geometryRadar.h5", tmp_path / "sb_geometryRadar.h5"
    for name in ("latitude", "longitude", "height"):  # float geometry averaged, as MintPy
        np.testing.assert_allclose(read(sg, name), read(mg, name), rtol=1e-7, atol=1e-5)


def test_diff_add_math_match_mintpy(files, mintpy_oracle, tmp_path):
    from sbts.core.tools.arith import add_files, diff_files, image_math

    ts, era = files / "timeseries.h5", files / "ERA5.h5"
    mintpy_oracle.run("diff.py", ts, era, "-o", tmp_path / "mp_diff.h5")
    sb = diff_files(ts, [era], tmp_path / "sb_diff.h5")
    np.testing.assert_allclose(read(sb, "timeseries"), read(tmp_path / "mp_diff.h5", "timeseries"), atol=2e-6)
    mintpy_oracle.run("add.py", ts, era, "-o", tmp_path / "mp_add.h5")
    sb = add_files([ts, era], tmp_path / "sb_add.h5")
    np.testing.assert_allclose(read(sb, "timeseries"), read(tmp_path / "mp_add.h5", "timeseries"), atol=2e-6)
    mintpy_oracle.run("image_math.py", files / "velocity.h5", "*", "2.5", "-o", tmp_path / "mp_math.h5")
    sb = image_math(files / "velocity.h5", "*", 2.5, tmp_path / "sb_math.h5")
    for name in ("velocity", "velocityStd"):
        np.testing.assert_allclose(read(sb, name), read(tmp_path / "mp_math.h5", name), rtol=1e-6)
