"""Heavy steps run block by block under the memory budget, here, in the process pool or on dask, with
the same numbers (issue 16).

Each step is run three ways on the same stack: one block in this process (a budget larger than the
stack), many small blocks in this process, and the same small blocks in a pool of 2 processes (and on a
local dask cluster when dask is installed).  The pool and dask run the same functions on the same
blocks as the serial run (two workers share the budget: the serial run with half of it makes the
same blocks), so their outputs must be bit-identical to it.  A different block size
changes the shapes of the matrix products BLAS sees, which may change the last bits: there the
tolerance is a few float32 ulps (rtol 1e-6), far below any physical meaning of the maps.
"""

from __future__ import annotations

import datetime as dt
import re
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.io.blocks import Block
from sbts.core.io.products import TimeSeriesWriter
from sbts.core.model.metadata import Metadata

DATES = [dt.date(2019, 1, 4) + dt.timedelta(days=12 * i) for i in range(24)]
DATE_STR = [d.strftime("%Y%m%d") for d in DATES]
SHAPE = (40, 33)
SMALL = 2e-4  # GB: several blocks of a few rows for these stacks

try:
    import dask.distributed  # noqa: F401

    WAYS = ["pool", "dask"]
except ImportError:
    WAYS = ["pool"]


def write_ts(path: Path, data: np.ndarray, dates=DATE_STR, bperp=None, **attrs) -> Path:
    n, length, width = data.shape
    meta = Metadata.from_attrs({"LENGTH": length, "WIDTH": width, "REF_Y": 3, "REF_X": 4, "REF_DATE": dates[0],
                                "FILE_TYPE": "timeseries", **attrs})
    with TimeSeriesWriter(path, meta, dates, bperp) as w:
        w.write("timeseries", data.astype(np.float32))
    return path


def read_all(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f if isinstance(f[k], h5py.Dataset)}


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray], exact: bool = True) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if exact or a[k].dtype.kind not in "fc":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=k)


def blocks_logged(caplog) -> int:
    """The block count of the last step's log line ("..., N block(s)")."""
    import re

    found = [int(m.group(1)) for r in caplog.records for m in [re.search(r"(\d+) block\(s\)", r.getMessage())] if m]
    assert found, "the step logs its block count"
    return found[-1]


def way(name: str) -> dict:
    """Two workers of the pool or of a local dask cluster, each with half of the budget: the blocks of
    a serial run with ``SMALL / 2``."""
    return {"num_worker": 2, "cluster": "local" if name == "dask" else None, "max_memory": SMALL}


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    """A time series: trend + annual term + noise, a few NaN and no-data pixels."""
    rng = np.random.default_rng(5)
    years = np.array([(d - DATES[0]).days for d in DATES]) / 365.25
    v = rng.normal(0, 0.02, SHAPE)
    a = rng.normal(0, 0.005, SHAPE)
    data = v[None] * years[:, None, None] + a[None] * np.sin(2 * np.pi * years)[:, None, None]
    data += rng.normal(0, 0.003, data.shape)
    data -= data[0]
    data[5, 10, 10] = np.nan
    data[::2, 20, 3] = np.nan
    data[:, 30, 30] = 0.0  # no data
    bperp = np.linspace(-100, 120, len(DATES)).astype(np.float32)
    return write_ts(tmp_path_factory.mktemp("scale") / "timeseries.h5", data, bperp=bperp)


# ---------------------------------------------------------------------------- velocity
@pytest.mark.parametrize("uncertainty", ["residue", "bootstrap"])
def test_velocity_same_in_one_block_many_blocks_and_pool(tmp_path, series, uncertainty, caplog):
    from sbts.core.steps.velocity import fit_time_functions

    caplog.set_level("INFO", logger="sbts")
    t = Template({"mintpy.timeFunc.periodic": "1", "mintpy.timeFunc.uncertaintyQuantification": uncertainty,
                  "mintpy.timeFunc.bootstrapCount": "30"}, warn_unknown=False)
    one = read_all(fit_time_functions(series, t, tmp_path / "one.h5", max_memory=4))
    many = read_all(fit_time_functions(series, t, tmp_path / "many.h5", max_memory=SMALL / 2))
    assert_same(one, many, exact=False)
    for name in WAYS:
        par = read_all(fit_time_functions(series, t, tmp_path / f"{name}.h5", **way(name)))
        assert_same(many, par)
    assert blocks_logged(caplog) > 2
    assert np.isfinite(one["velocity"]).all() and np.isfinite(one["velocityStd"]).all()


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """A 24 × 300 × 400 float32 series (11 MB), larger than the budgets of the memory tests."""
    rng = np.random.default_rng(2)
    data = np.cumsum(rng.normal(0, 0.002, (len(DATES), 300, 400)).astype(np.float32), axis=0)
    return write_ts(tmp_path_factory.mktemp("big") / "timeseries.h5", data,
                    bperp=np.linspace(-50, 80, len(DATES)).astype(np.float32))


def peak_bytes(fn) -> int:
    """The peak of memory allocated through Python (numpy arrays and HDF5 reads included) by ``fn()``."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


BUDGET = 0.002  # GB (2 MiB) against an 11 MiB series: a whole-array read would exceed it five times
STACK_BYTES = len(DATES) * 300 * 400 * 4


def within_budget(peak: int) -> None:
    # the budget bounds the block's working set; allow 1.5× for the writer's chunk cache and the
    # per-step small arrays (dates, design matrices), and never near one full read of the series
    assert peak < 1.5 * BUDGET * 1024**3, f"peak {peak / 2**20:.1f} MiB over the {BUDGET * 1024:.0f} MiB budget"
    assert peak < STACK_BYTES / 3


def test_velocity_memory_bounded(tmp_path, big):
    from sbts.core.steps.velocity import fit_time_functions

    within_budget(peak_bytes(lambda: fit_time_functions(big, Template(), tmp_path / "v.h5", max_memory=BUDGET)))


# ---------------------------------------------------------------------------- corrections
@pytest.fixture(scope="module")
def geometry(series) -> Path:
    """geometryRadar.h5 beside the series: slant range and incidence varying across the scene."""
    from sbts.core.io.products import write_map

    cols = np.arange(SHAPE[1])[None, :] * np.ones((SHAPE[0], 1))
    rows = np.arange(SHAPE[0])[:, None] * np.ones((1, SHAPE[1]))
    layers = {"slantRangeDistance": (850e3 + 25.0 * cols).astype(np.float32),
              "incidenceAngle": (33.0 + 0.3 * cols).astype(np.float32),
              "height": (100 + 3.0 * cols).astype(np.float32),
              "latitude": (19.40 - 0.00025 * rows + 0.00004 * cols).astype(np.float32),
              "longitude": (-99.20 + 0.0002 * cols + 0.00005 * rows).astype(np.float32)}
    folder = series.parent / "inputs"
    folder.mkdir(exist_ok=True)
    meta = Metadata.from_attrs({"LENGTH": SHAPE[0], "WIDTH": SHAPE[1]})
    write_map(folder / "geometryRadar.h5", meta, "geometry", layers, unit=None)
    return folder / "geometryRadar.h5"


def correction_dir(tmp_path: Path, name: str, series: Path, geometry: Path) -> Path:
    """A work directory of its own (the correction writes its side products there) over the shared inputs."""
    folder = tmp_path / name
    (folder / "inputs").mkdir(parents=True)
    (folder / "timeseries.h5").symlink_to(series)
    (folder / "inputs" / geometry.name).symlink_to(geometry)
    return folder


def run_correction_ways(tmp_path, series, geometry, name: str, template: Template, outputs: list[str],
                        caplog) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Outputs of correction ``name`` in one block, many blocks, and the pool (and dask)."""
    from sbts.core.plugin.runners import run_correction

    caplog.set_level("INFO", logger="sbts")
    found = {}
    for label, kw in [("one", {"max_memory": 4}), ("many", {"max_memory": SMALL / 2})] + [(w, way(w)) for w in WAYS]:
        folder = correction_dir(tmp_path, label, series, geometry)
        run_correction(name, template, folder, input_file=folder / "timeseries.h5", **kw)
        found[label] = {o: read_all(folder / o) for o in outputs}
        if label == "many":
            assert blocks_logged(caplog) > 2
    return found


def test_dem_error_same_in_one_block_many_blocks_and_pool(tmp_path, series, geometry, caplog):
    outputs = ["timeseries_demErr.h5", "demErr.h5", "timeseriesResidual.h5"]
    found = run_correction_ways(tmp_path, series, geometry, "dem_error", Template({}), outputs, caplog)
    for o in outputs:
        assert_same(found["one"][o], found["many"][o], exact=False)
        for w in WAYS:
            assert_same(found["many"][o], found[w][o])
    assert np.abs(found["one"]["demErr.h5"]["dem"]).max() > 0


def test_dem_error_memory_bounded(tmp_path, big):
    from sbts.core.io.products import write_map
    from sbts.core.plugin.runners import run_correction

    (tmp_path / "inputs").mkdir()
    meta = Metadata.from_attrs({"LENGTH": 300, "WIDTH": 400})
    write_map(tmp_path / "inputs" / "geometryRadar.h5", meta, "geometry",
              {"slantRangeDistance": np.full((300, 400), 850e3, np.float32),
               "incidenceAngle": np.full((300, 400), 34.0, np.float32)}, unit=None)
    within_budget(peak_bytes(lambda: run_correction("dem_error", Template({}), tmp_path, input_file=big,
                                                    output_file=tmp_path / "out.h5", max_memory=BUDGET)))


@pytest.fixture(scope="module")
def sparse_mask(series) -> Path:
    """A mask of 40 pixels: few enough that every budget of these tests fits on all of them (the ramp
    fit subsamples the mask to fit the budget, never below 10 samples per coefficient; the same
    samples give the same ramps)."""
    from sbts.core.io.products import write_map

    m = np.zeros(SHAPE, np.uint8)
    m[4:36:7, 2:31:4] = 1
    path = series.parent / "maskSparse.h5"
    write_map(path, Metadata.from_attrs({"LENGTH": SHAPE[0], "WIDTH": SHAPE[1]}), "mask", {"mask": m}, unit="1")
    return path


def test_deramp_same_in_one_block_many_blocks_and_pool(tmp_path, series, geometry, sparse_mask, caplog):
    t = Template({"mintpy.deramp": "quadratic", "mintpy.deramp.maskFile": str(sparse_mask)})
    found = run_correction_ways(tmp_path, series, geometry, "deramp", t, ["timeseries_ramp.h5"], caplog)
    out = "timeseries_ramp.h5"
    # every mask pixel, summed row by row (RampSums): the ramps do not depend on the blocks
    assert_same(found["one"][out], found["many"][out])
    for w in WAYS:
        assert_same(found["many"][out], found[w][out])
    before = read_all(series)["timeseries"]
    assert np.nanmax(np.abs(found["one"][out]["timeseries"] - before)) > 1e-4  # ramps were removed


def test_deramp_memory_bounded(tmp_path, big):
    from sbts.core.plugin.runners import run_correction

    t = Template({"mintpy.deramp": "linear", "mintpy.deramp.maskFile": "no"})
    within_budget(peak_bytes(lambda: run_correction("deramp", t, tmp_path, input_file=big,
                                                    output_file=tmp_path / "out.h5", max_memory=BUDGET)))


def test_height_correlation_same_in_one_block_many_blocks_and_pool(tmp_path, series, geometry, caplog):
    t = Template({"mintpy.troposphericDelay.method": "height_correlation",
                  "mintpy.troposphericDelay.looks": "2"})
    out = "timeseries_tropHgt.h5"
    found = run_correction_ways(tmp_path, series, geometry, "height_correlation", t, [out], caplog)
    # the fit is on multilooked windows that never straddle blocks (blocks are whole windows), summed
    # where each block is read (here, in the pool, on dask) and placed here: the same coefficients in
    # every run; the removal is per pixel: identical outputs
    for label in found:
        assert_same(found["one"][out], found[label][out])
    assert np.nanmax(np.abs(found["one"][out]["timeseries"] - read_all(series)["timeseries"])) > 0


# ---------------------------------------------------------------------------- residual RMS, reference date
@pytest.mark.parametrize("deramp", ["no", "quadratic"])
def test_rms_same_in_one_block_many_blocks_and_pool(tmp_path, series, sparse_mask, deramp, caplog):
    from sbts.core.steps.rms import RmsOptions, residual_rms

    caplog.set_level("INFO", logger="sbts")
    options = RmsOptions.from_template(Template({"mintpy.residualRMS.deramp": deramp,
                                                 "mintpy.residualRMS.maskFile": str(sparse_mask)}))
    found = {}
    for label, kw in [("one", {"max_memory": 4}), ("many", {"max_memory": SMALL / 2})] + [(w, way(w)) for w in WAYS]:
        folder = tmp_path / label
        result = residual_rms(series, work_dir=folder, plot=False, options=options, **kw)
        found[label] = (result.rms, read_all(folder / "timeseries_ramp.h5") if deramp != "no" else {})
        if label == "many":
            assert blocks_logged(caplog) > 2
    # the sums per date are added in another grouping with another block size: a few ulps
    np.testing.assert_allclose(found["many"][0], found["one"][0], rtol=1e-12)
    assert_same(found["one"][1], found["many"][1])  # the ramps are summed row by row (RampSums): no block shows
    for w in WAYS:
        np.testing.assert_array_equal(found[w][0], found["many"][0])
        assert_same(found["many"][1], found[w][1])
    # the RMS itself, against numpy on the whole array (no ramp)
    if deramp == "no":
        data = read_all(series)["timeseries"].astype(np.float64)
        m = read_all(sparse_mask)["mask"] != 0
        r = data[:, m]
        expected = np.sqrt(np.nansum(r * r, axis=1) / np.isfinite(r).sum(axis=1))
        np.testing.assert_allclose(found["one"][0], expected, rtol=1e-12)


def test_rms_memory_bounded(tmp_path, big):
    from sbts.core.steps.rms import RmsOptions, residual_rms

    options = RmsOptions.from_template(Template({"mintpy.residualRMS.deramp": "linear",
                                                 "mintpy.residualRMS.maskFile": "no"}))
    within_budget(peak_bytes(lambda: residual_rms(big, work_dir=tmp_path, plot=False, options=options,
                                                  max_memory=BUDGET)))


def test_reference_date_same_in_one_block_many_blocks_and_pool(tmp_path, series, caplog):
    from sbts.core.steps.refdate import reference_date

    caplog.set_level("INFO", logger="sbts")
    found = {}
    for label, kw in [("one", {"max_memory": 4}), ("many", {"max_memory": SMALL / 2})] + [(w, way(w)) for w in WAYS]:
        (out,) = reference_date(series, DATE_STR[7], output=tmp_path / f"{label}.h5", **kw)
        found[label] = read_all(out)
        if label == "many":
            assert blocks_logged(caplog) > 2
    for label in found:  # a subtraction per pixel: identical whatever the blocks
        assert_same(found["one"], found[label])
    data = read_all(series)["timeseries"]
    np.testing.assert_array_equal(found["one"]["timeseries"], data - data[7][None])


def test_reference_date_memory_bounded(tmp_path, big):
    from sbts.core.steps.refdate import reference_date

    within_budget(peak_bytes(lambda: reference_date(big, DATE_STR[3], output=tmp_path / "out.h5",
                                                    max_memory=BUDGET)))


# ---------------------------------------------------------------------------- quick_overview
@pytest.fixture(scope="module")
def ifgram_stack(tmp_path_factory) -> Path:
    """The synthetic demo stack (unwrapping errors included: non-zero closures), 48 × 52 px, 14 dates."""
    from sbts.core.demo.run import write_synthetic

    folder = write_synthetic(tmp_path_factory.mktemp("stack"), seed=3, shape=(48, 52), num_date=14)
    return folder / "ifgramStack.h5"


def test_quick_overview_same_in_one_block_many_blocks_and_pool(tmp_path, ifgram_stack, caplog):
    from sbts.core.inversion.closure import write_num_nonzero_integer_closure
    from sbts.core.steps.averages import write_stacking_velocity

    caplog.set_level("INFO", logger="sbts")
    found = {}
    for label, kw in [("one", {"max_memory": 4}), ("many", {"max_memory": SMALL / 2})] + [(w, way(w)) for w in WAYS]:
        folder = tmp_path / label
        folder.mkdir()
        velocity = read_all(write_stacking_velocity(ifgram_stack, folder, **kw))
        if label == "many":
            assert blocks_logged(caplog) > 2
        count_file, stats_file = write_num_nonzero_integer_closure(ifgram_stack, folder, mask=None, **kw)
        if label == "many":
            assert blocks_logged(caplog) > 2
        found[label] = (velocity, read_all(count_file), stats_file.read_text())
    for label in found:
        # a mean over pairs per pixel and integer counts: identical whatever the blocks; the
        # per-triplet spatial means are sums over blocks in block order: a few ulps across block sizes
        assert_same(found["one"][0], found[label][0])
        assert_same(found["one"][1], found[label][1])
        if label in WAYS:
            assert found[label][2] == found["many"][2]
    assert found["one"][1]["mask"].max() > 0  # the synthetic unwrapping errors are seen


def test_closure_scan_memory_bounded(tmp_path):
    """T_int of 36 pairs (96 triplets) over 300 × 400 px: 17 MB of phase against a 2 MiB budget."""
    from sbts.core.inversion.closure import num_nonzero_integer_closure
    from sbts.core.io.products import StackWriter
    from sbts.core.model.pairs import Pairs

    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=12 * k) for k in range(12)]
    i1 = np.array([a for a in range(12) for b in range(a + 1, min(12, a + 5))])
    i2 = np.array([b for a in range(12) for b in range(a + 1, min(12, a + 5))])
    pairs = Pairs.from_indices(dates, i1, i2, np.zeros(12))
    meta = Metadata.from_attrs({"LENGTH": 300, "WIDTH": 400, "WAVELENGTH": 0.0555, "FILE_TYPE": "ifgramStack"})
    rng = np.random.default_rng(0)
    ts = rng.normal(0, 3, (12, 300, 400)).astype(np.float32)
    phase = ts[i2] - ts[i1] + 0.1
    phase[5, :100, :120] += 2 * np.pi  # an unwrapping error: non-zero integer closures there
    with StackWriter(tmp_path / "ifgramStack.h5", meta, pairs, ["unwrapPhase"]) as w:
        w.write("unwrapPhase", phase)
    del ts, phase
    stack = tmp_path / "ifgramStack.h5"
    one = num_nonzero_integer_closure(stack, reference=False)
    peak = peak_bytes(lambda: num_nonzero_integer_closure(stack, max_memory=BUDGET, reference=False))
    assert peak < 1.5 * BUDGET * 1024**3 + one.nbytes  # the (L, W) map returned is the caller's
    np.testing.assert_array_equal(num_nonzero_integer_closure(stack, max_memory=BUDGET, reference=False), one)
    assert one[:100, :120].min() > 0 and one[100:].max() == 0


# ---------------------------------------------------------------------------- geocode
def test_geocode_blocks_and_shared_coordinates(tmp_path, series, geometry, monkeypatch):
    """The time series and the geometry geocoded together share one mapping and, when they fit in a
    quarter of the budget, the coordinates of every output pixel (solved once); small blocks give the same maps within the Newton solver's tolerance (its stop test is on
    the largest step of a block: 1e-6 px), the shared coordinates the very same ones."""
    from sbts.core.steps import geocode

    calls = []
    solve = geocode.InverseLookup.solve
    monkeypatch.setattr(geocode.InverseLookup, "solve", lambda self, *a: calls.append(1) or solve(self, *a))
    found = {}
    for label, memory in (("one", 4.0), ("many", 2e-5)):
        opts = geocode.GeocodeOptions(max_memory=memory)
        calls.clear()
        outs = geocode.geocode_files([series, geometry], geometry, tmp_path / label, options=opts)
        found[label] = [read_all(o) for o in outs]
        inverted = len(calls)
        calls.clear()
        geocode.geocode_file(series, geometry, tmp_path / label / "alone.h5", options=opts)
        if label == "one":  # the coordinates kept: two files cost what one does
            assert inverted == len(calls)
        else:  # over a quarter of this budget: solved block by block, for each file
            assert len(calls) > 2 and inverted > len(calls)
    for a, b in zip(found["one"], found["many"]):
        for k in a:
            if a[k].dtype.kind == "f":
                np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6 * np.nanmax(np.abs(a[k])),
                                           equal_nan=True, err_msg=k)
            else:
                np.testing.assert_array_equal(b[k], a[k], err_msg=k)
    assert np.isfinite(found["one"][0]["timeseries"]).mean() > 0.5


@pytest.mark.parametrize("method", ["nearest", "linear"])
def test_geocode_same_here_in_the_pool_and_on_dask(tmp_path, series, geometry, method, caplog):
    """The output blocks sampled in a pool of 2 or on a local dask cluster of 2 give the very bits of the
    serial run: the source coordinates of every output pixel are solved once in this process (they fit
    in a quarter of 2e-4 GB) and only the sampling of each block runs apart; the blocks differ in size
    (the budget is split) but sampling is per pixel."""
    from sbts.core.steps import geocode

    caplog.set_level("INFO", logger="sbts")
    opts = geocode.GeocodeOptions(max_memory=2e-4, method=method)
    here = [read_all(o) for o in geocode.geocode_files([series, geometry], geometry, tmp_path / "here", options=opts)]
    assert np.isfinite(here[0]["timeseries"]).mean() > 0.5
    for name in WAYS:
        caplog.clear()
        outs = geocode.geocode_files([series, geometry], geometry, tmp_path / name, options=opts, num_worker=2,
                                     cluster="local" if name == "dask" else None)
        assert "on 2 workers" in caplog.text
        assert re.search(r"source coordinates of .* output pixels, \d+ block\(s\) on 2 workers", caplog.text)
        assert blocks_logged(caplog) >= 2
        for a, path in zip(here, outs):
            assert_same(a, read_all(path))


def test_geocode_projected_coordinates_in_the_pool_and_on_dask(tmp_path, series, geometry, caplog):
    """A projected output grid (UTM): the mapping and its coordinate transformation go to the workers
    that solve the coordinates (osr objects are rebuilt there); the same bits as the serial run."""
    from sbts.core.steps import geocode

    caplog.set_level("INFO", logger="sbts")
    opts = geocode.GeocodeOptions(max_memory=2e-4, method="linear", utm=True)
    here = read_all(geocode.geocode_file(series, geometry, tmp_path / "here.h5", options=opts))
    assert np.isfinite(here["timeseries"]).mean() > 0.5
    for name in WAYS:
        caplog.clear()
        out = geocode.geocode_file(series, geometry, tmp_path / f"{name}.h5", options=opts, num_worker=2,
                                   cluster="local" if name == "dask" else None)
        assert re.search(r"source coordinates .* on 2 workers", caplog.text)
        got = read_all(out)
        assert_same(here, got)
    with h5py.File(tmp_path / "here.h5", "r") as f:
        assert str(f.attrs["EPSG"]).startswith("326")


@pytest.mark.parametrize("budget", [2e-5, 2e-4 / 3])
def test_geocode_coordinates_over_budget_in_the_pool_and_on_dask(tmp_path, series, geometry, caplog, budget):
    """Coordinates over a quarter of the budget: each coordinate block (a partition set by the budget
    alone) solves its coordinates and samples its pixels where it runs, here, in the pool or on dask,
    as many at once as the budget holds: the same bits as the serial run."""
    from sbts.core.steps import geocode

    caplog.set_level("INFO", logger="sbts")
    opts = geocode.GeocodeOptions(max_memory=budget, method="linear")
    here = read_all(geocode.geocode_file(series, geometry, tmp_path / "here.h5", options=opts))
    assert "exceed a quarter of the budget" in caplog.text
    assert np.isfinite(here["timeseries"]).mean() > 0.5
    for name in WAYS:
        caplog.clear()
        got = read_all(geocode.geocode_file(series, geometry, tmp_path / f"{name}.h5", options=opts, num_worker=2,
                                            cluster="local" if name == "dask" else None))
        assert "each solving its coordinates" in caplog.text
        if budget > 2e-5 or name == "dask":  # the pool runs two at once when the budget holds two
            assert re.search(r"each solving its coordinates and sampling its pixels on 2 workers", caplog.text)
        assert_same(here, got)


def test_geocode_memory_bounded(tmp_path, big, series, geometry, monkeypatch):
    """Geocoding holds one output block and its source window, plus two fixed costs left out here: the
    KD-tree of the subsampled lookup (``_COARSE_POINTS`` points, ~20 MB whatever the image) made
    small, and the modules geocoding imports on first use (imported by a first run)."""
    from sbts.core.io.products import write_map
    from sbts.core.steps import geocode

    geocode.geocode_file(series, geometry, tmp_path / "warm.h5")
    monkeypatch.setattr(geocode, "_COARSE_POINTS", 3000)

    rows, cols = np.mgrid[0:300, 0:400].astype(np.float64)
    geometry = tmp_path / "geometryRadar.h5"
    write_map(geometry, Metadata.from_attrs({"LENGTH": 300, "WIDTH": 400}), "geometry",
              {"latitude": (19.40 - 0.00025 * rows).astype(np.float32),
               "longitude": (-99.20 + 0.0002 * cols).astype(np.float32)}, unit=None)
    opts = geocode.GeocodeOptions(max_memory=BUDGET)
    within_budget(peak_bytes(lambda: geocode.geocode_file(big, geometry, tmp_path / "geo.h5", options=opts)))


def test_geocode_pool_memory_bounded(tmp_path, series, geometry, monkeypatch, caplog):
    """Sampled in a pool of 2, this process holds the coordinates (a quarter of the budget at most) and
    the blocks in flight (four at most, each a share of the budget), never the 11 MB output."""
    from sbts.core.io.products import write_map
    from sbts.core.steps import geocode

    geocode.geocode_file(series, geometry, tmp_path / "warm.h5")
    monkeypatch.setattr(geocode, "_COARSE_POINTS", 3000)
    dates = [(DATES[0] + dt.timedelta(days=6 * i)).strftime("%Y%m%d") for i in range(96)]
    data = np.random.default_rng(4).normal(0, 0.01, (96, 300, 400)).astype(np.float32)
    folder = tmp_path / "stack"
    folder.mkdir()
    big = write_ts(folder / "timeseries.h5", data, dates=dates)
    rows, cols = np.mgrid[0:300, 0:400].astype(np.float64)
    geometry = folder / "geometryRadar.h5"
    write_map(geometry, Metadata.from_attrs({"LENGTH": 300, "WIDTH": 400}), "geometry",
              {"latitude": (19.40 - 0.00025 * rows).astype(np.float32),
               "longitude": (-99.20 + 0.0002 * cols).astype(np.float32)}, unit=None)
    opts = geocode.GeocodeOptions(max_memory=BUDGET, lalo_step=(0.0005, 0.0004))  # 150 × 200 output pixels
    caplog.set_level("INFO", logger="sbts")
    peak = peak_bytes(lambda: geocode.geocode_file(big, geometry, tmp_path / "geo.h5", options=opts, num_worker=2))
    out = read_all(tmp_path / "geo.h5")["timeseries"]
    assert "on 2 workers" in caplog.text and blocks_logged(caplog) > 8
    assert out.shape == (96, 150, 200) and np.isfinite(out).mean() > 0.9
    assert peak < 1.5 * BUDGET * 1024**3, f"peak {peak / 2**20:.1f} MiB over the {BUDGET * 1024:.0f} MiB budget"
    assert peak < out.nbytes / 3
    serial = read_all(geocode.geocode_file(big, geometry, tmp_path / "serial.h5", options=opts))["timeseries"]
    np.testing.assert_array_equal(out, serial)


# ---------------------------------------------------------------------------- exporters
def test_kmz_linear_rate_in_blocks_equals_one_read(series):
    """The KMZ time series' fallback velocity (no velocity file): a per-pixel fit, identical whether
    the series is read at once or in strips, and the slope of the series' trend."""
    from sbts.core.io.products import TimeSeries
    from sbts.plugins.exporters.kmz import linear_rate

    ts = TimeSeries(series)
    whole = linear_rate(ts, max_memory=4)
    strips = linear_rate(ts, max_memory=SMALL / 4)
    one = linear_rate(ts, block=Block(0, SHAPE[0], 0, SHAPE[1]))
    np.testing.assert_allclose(strips, whole, rtol=1e-6, atol=1e-9, equal_nan=True)
    np.testing.assert_array_equal(whole, one)
    data = read_all(series)["timeseries"].astype(np.float64)
    t = np.array([(d - DATES[0]).days for d in DATES]) / 365.25
    slope = np.polyfit(t, data[:, 7, 9], 1)[0]
    np.testing.assert_allclose(whole[7, 9], slope, rtol=1e-4)
    assert np.isnan(whole[10, 10]) and np.isnan(whole[20, 3])  # pixels with a missing date


def test_phase_closure_same_in_one_block_many_blocks_and_pool(tmp_path, ifgram_stack, caplog):
    """The correction adds 2π × cycles per region and pair: per-pixel arithmetic once the cycles are
    known, so identical outputs whatever the blocks and wherever they run.  The regions and samples
    are drawn with the run's whole budget (the pool runs get the serial run's budget here)."""
    import shutil

    from sbts.core.plugin.runners import run_correction

    caplog.set_level("INFO", logger="sbts")
    found = {}
    for label, kw in [("one", {"max_memory": 4}), ("many", {"max_memory": SMALL})] + \
            [(w, {**way(w), "max_memory": SMALL}) for w in WAYS]:
        folder = tmp_path / label
        folder.mkdir()
        for name in ("ifgramStack.h5", "geometryGeo.h5"):
            shutil.copy(ifgram_stack.parent / name, folder / name)
        run_correction("phase_closure", Template({"mintpy.unwrapError.connCompMinArea": "20"}), folder,
                       input_file=folder / "ifgramStack.h5", geometry_file=folder / "geometryGeo.h5", **kw)
        with h5py.File(folder / "ifgramStack.h5", "r") as f:
            found[label] = {"fixed": f["unwrapPhase_phaseClosure"][()], "before": f["unwrapPhase"][()]}
    for label in found:
        np.testing.assert_array_equal(found[label]["fixed"], found["one"]["fixed"], err_msg=label)
    changed = found["one"]["fixed"] != found["one"]["before"]
    assert changed.any()  # the synthetic unwrapping errors were corrected ...
    cycles = (found["one"]["fixed"] - found["one"]["before"])[changed] / (2 * np.pi)
    np.testing.assert_allclose(cycles, np.round(cycles), atol=1e-4)  # ... by whole cycles


def test_cli_num_worker_reaches_the_steps(tmp_path, big):
    """``sbts velocity --num-worker 2`` and ``sbts correct deramp --num-worker 2`` give what the serial
    run on the same blocks gives."""
    from click.testing import CliRunner

    from sbts.cli.main import cli
    from sbts.core.steps.velocity import fit_time_functions

    res = CliRunner().invoke(cli, ["velocity", "-i", str(big), "-o", str(tmp_path / "pool.h5"), "--num-worker", "2",
                                   "--max-memory", "0.01", "-d", str(tmp_path)])
    assert res.exit_code == 0, res.output
    serial = fit_time_functions(big, Template(), tmp_path / "serial.h5", max_memory=0.005)
    assert_same(read_all(serial), read_all(tmp_path / "pool.h5"))
    res = CliRunner().invoke(cli, ["correct", "deramp", "-i", str(big), "-o", str(tmp_path / "ramp.h5"),
                                   "-s", "mintpy.deramp=linear", "-s", "mintpy.deramp.maskFile=no",
                                   "--num-worker", "2", "--max-memory", "4", "-d", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert read_all(tmp_path / "ramp.h5")["timeseries"].shape == (len(DATES), 300, 400)


def test_cli_geocode_num_worker(tmp_path, big, monkeypatch):
    """``sbts geocode --num-worker 2`` solves the coordinates and samples in the pool and writes what the
    serial run writes."""
    from click.testing import CliRunner

    from sbts.cli.main import cli
    from sbts.core.io.products import write_map
    from sbts.core.steps import geocode

    rows, cols = np.mgrid[0:300, 0:400].astype(np.float64)
    geometry = tmp_path / "geometryRadar.h5"
    write_map(geometry, Metadata.from_attrs({"LENGTH": 300, "WIDTH": 400}), "geometry",
              {"latitude": (19.40 - 0.00025 * rows + 0.00003 * cols).astype(np.float32),
               "longitude": (-99.20 + 0.0002 * cols).astype(np.float32)}, unit=None)
    seen = []
    run_blocks = geocode.run_blocks
    monkeypatch.setattr(geocode, "run_blocks", lambda items, *a, **k: seen.append((len(items), k)) or run_blocks(
        items, *a, **k))
    res = CliRunner().invoke(cli, ["geocode", str(big), "-l", str(geometry), "-o", str(tmp_path / "pool"),
                                   "--num-worker", "2", "--max-memory", "0.01", "-i", "linear",
                                   "--lalo-step", "0.0005", "0.0004"])
    assert res.exit_code == 0, res.output
    # the source coordinates (solved in the pool too), then the output blocks sampled
    assert len(seen) == 2 and all(k == {"workers": 2, "cluster": None} for _, k in seen) and seen[1][0] > 2
    opts = geocode.GeocodeOptions(max_memory=0.01, method="linear", lalo_step=(0.0005, 0.0004))
    serial = geocode.geocode_file(big, geometry, tmp_path / "serial.h5", options=opts)
    assert_same(read_all(serial), read_all(tmp_path / "pool" / "geo_timeseries.h5"))
