"""The residual-RMS step's ramp removal and RMS against an independent reference.

The reference is written out with numpy only: per date, ``np.linalg.lstsq`` of a quadratic surface on
the mask pixels that hold data (finite at that date, not 0 at every date), the ramp taken relative
to the reference pixel and removed except where the data are 0; then the RMS over the mask.
"""

from __future__ import annotations

import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.io.products import TimeSeries, TimeSeriesWriter, write_map
from sbts.core.model.metadata import Metadata
from sbts.core.steps.rms import RmsOptions, residual_rms

LENGTH, WIDTH, N = 30, 37, 9
REF = (4, 25)
DATES = [f"2020{m:02d}{d:02d}" for m, d in [(1, 1), (1, 13), (1, 25), (2, 6), (2, 18), (3, 1), (3, 13), (3, 25), (4, 6)]]


def _quadratic(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Columns 1, x, y, x², y², x·y on coordinates normalised by the image size."""
    y, x = y / LENGTH, x / WIDTH
    return np.column_stack([np.ones_like(x), x, y, x * x, y * y, x * y])


def _series(noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Quadratic ramps (+ noise) with the awkward cases: no-data pixels (0 at every date, one of
    them inside the mask), NaN on one date, and with noise one pixel 0 at a single date (a value
    of the fit there, as in MintPy); and a mask with holes."""
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:LENGTH, 0:WIDTH]
    G = _quadratic(yy.ravel().astype(float), xx.ravel().astype(float))
    coeffs = rng.normal(0, 0.05, (N, 6))
    data = (coeffs @ G.T).reshape(N, LENGTH, WIDTH) + rng.normal(0, noise, (N, LENGTH, WIDTH))
    data -= data[:, REF[0]:REF[0] + 1, REF[1]:REF[1] + 1]  # referenced: 0 at the reference pixel
    data[:, 20:23, 2:5] = 0.0  # no data
    if noise:
        data[3, 10, 10] = 0.0  # one zero on one date: kept as data by the fit, left 0 by the removal
    data[5, 15:17, 30:33] = np.nan
    mask = np.ones((LENGTH, WIDTH), bool)
    mask[0:6, 0:8] = False
    mask[12, :] = False
    return data.astype(np.float32), mask


def _write(folder, data, mask):
    meta = Metadata.from_attrs({"LENGTH": LENGTH, "WIDTH": WIDTH, "REF_Y": REF[0], "REF_X": REF[1],
                                "REF_DATE": DATES[0]})
    path = folder / "timeseriesResidual.h5"
    with TimeSeriesWriter(path, meta, DATES) as w:
        w.write("timeseries", data)
    write_map(folder / "maskTempCoh.h5", meta, "mask", {"mask": mask})
    return path


def _reference(data: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deramped series (float64) and RMS per date, date by date with lstsq."""
    yy, xx = np.mgrid[0:LENGTH, 0:WIDTH]
    G_all = _quadratic(yy.ravel().astype(float), xx.ravel().astype(float))
    d = data.astype(np.float64).reshape(N, -1)
    used = mask.ravel() & (d != 0).any(axis=0)
    out = np.empty_like(d)
    for k in range(N):
        rows = used & np.isfinite(d[k])
        c = np.linalg.lstsq(G_all[rows], d[k, rows], rcond=None)[0]
        ramp = G_all @ c
        ramp -= ramp[REF[0] * WIDTH + REF[1]]
        out[k] = np.where(d[k] == 0, d[k], d[k] - ramp)
    r = out[:, mask.ravel()]
    rms = np.sqrt(np.nansum(r * r, axis=1) / np.isfinite(r).sum(axis=1))
    return out.reshape(N, LENGTH, WIDTH), rms


def _run(folder, max_memory: float, **kw):
    folder.mkdir()
    data, mask = _series(kw.pop("noise", 2e-3))
    path = _write(folder, data, mask)
    options = RmsOptions.from_template(Template({"mintpy.residualRMS.deramp": "quadratic"}, warn_unknown=False))
    result = residual_rms(path, work_dir=folder, max_memory=max_memory, plot=False, options=options, **kw)
    deramped = TimeSeries(folder / "timeseriesResidual_ramp.h5").read_dates()
    return data, mask, result, deramped


def test_deramped_series_and_rms_match_lstsq_per_date(tmp_path):
    data, mask, result, deramped = _run(tmp_path / "one", max_memory=4)
    expected, rms = _reference(data, mask)
    assert deramped.dtype == np.float32
    # float32 output: the reference rounded to float32 (a float64 rounding difference may flip one ulp)
    np.testing.assert_allclose(deramped, expected.astype(np.float32), rtol=0, atol=1e-8, equal_nan=True)
    np.testing.assert_array_equal(deramped[:, 20:23, 2:5], 0)  # no data stays 0
    assert deramped[3, 10, 10] == 0
    assert np.isnan(deramped[5, 15:17, 30:33]).all()
    np.testing.assert_allclose(deramped[:, REF[0], REF[1]], 0, atol=1e-12)  # 0 in, 0 out: the reference
    # the RMS is over the float32 output, the reference over its float64 values
    np.testing.assert_allclose(result.rms, rms, rtol=1e-6)
    assert result.reference_date == DATES[int(np.argmin(result.rms))]


@pytest.mark.parametrize("kw", [{"max_memory": 0.00005}, {"max_memory": 0.00005, "num_worker": 2}])
def test_exact_ramps_removed_with_many_blocks_and_subsampling(tmp_path, kw, caplog):
    """A tiny budget: several blocks for the fit (and a subsample of the pixels) and for the
    removal; noise-free ramps are still removed exactly, however the samples were taken."""
    caplog.set_level("INFO", logger="sbts")
    data, mask, result, deramped = _run(tmp_path / "many", noise=0.0, **kw)
    assert "RMS of 9 dates over 1 block" not in caplog.text
    valid = np.isfinite(data) & (data != 0)
    assert np.abs(deramped[valid]).max() < 1e-6  # float32 rounding of ~0.1 values
    np.testing.assert_array_equal(deramped[data == 0], 0)
    assert np.all(result.rms < 1e-6)
