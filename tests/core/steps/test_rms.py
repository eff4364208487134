"""Residual RMS per date: known noisy date, minimum-RMS reference date, ramps removed first."""

from __future__ import annotations

import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.demo.synthetic import make_synthetic_stack
from sbts.core.errors import InputError, TemplateError
from sbts.core.io.products import TimeSeries, TimeSeriesWriter, write_map
from sbts.core.model.metadata import Metadata
from sbts.core.steps.rms import outlier_threshold, residual_rms

QUIET = 7  # the date the residual is referenced to: RMS 0, so it must be the reference date


@pytest.fixture(scope="module")
def synth():
    return make_synthetic_stack(shape=(40, 48), num_date=20, seed=2, noisy_date_factor=10.0)


def tpl(**values) -> Template:
    return Template({f"mintpy.residualRMS.{k}": str(v) for k, v in values.items()}, warn_unknown=False)


def _residual(synth, ramps: bool) -> np.ndarray:
    """Turbulent troposphere referenced to date QUIET and to the reference pixel, plus optional
    quadratic ramps (zero at the reference pixel, as in any referenced time series)."""
    ry, rx = synth.truth.reference_yx
    r = synth.truth.troposphere_turbulent.astype(np.float64)
    r = r - r[QUIET]
    if ramps:
        n, length, width = r.shape
        yy, xx = np.mgrid[0:length, 0:width] / np.array([length, width])[:, None, None]
        rng = np.random.default_rng(0)
        a = rng.normal(0, 0.1, (n, 4))
        ramp = (a[:, 0, None, None] * xx + a[:, 1, None, None] * yy + a[:, 2, None, None] * xx * yy
                + a[:, 3, None, None] * yy ** 2)
        ramp[QUIET] = 0
        r = r + ramp
    return r - r[:, ry:ry + 1, rx:rx + 1]


def _write(path, synth, data, mask=True):
    ry, rx = synth.truth.reference_yx
    n, length, width = data.shape
    meta = Metadata.from_attrs({"LENGTH": length, "WIDTH": width, "REF_Y": ry, "REF_X": rx,
                                "REF_DATE": synth.date_list[0]})
    with TimeSeriesWriter(path, meta, synth.date_list) as w:
        w.write("timeseries", data.astype(np.float32))
    if mask:
        write_map(path.parent / "maskTempCoh.h5", meta, "mask", {"mask": synth.water_mask.copy()})
    return path


def test_noisy_date_is_outlier_and_quiet_date_is_reference(tmp_path, synth):
    data = _residual(synth, ramps=True)
    data[:, ~synth.water_mask] = 5.0  # masked-out pixels (the lake) must not count
    ts = _write(tmp_path / "timeseriesResidual.h5", synth, data)
    res = residual_rms(ts, tpl())
    noisy = synth.date_list[synth.truth.noisy_date_index]
    assert res.exclude_dates == [noisy]
    assert res.reference_date == synth.date_list[QUIET]
    assert res.threshold == pytest.approx(3 * np.median(res.rms) / 0.6745)
    assert (tmp_path / "reference_date.txt").read_text().split() == [synth.date_list[QUIET]]
    assert (tmp_path / "exclude_date.txt").read_text().split() == [noisy]
    rows = [line.split() for line in (tmp_path / "rms_timeseriesResidual_ramp.txt").read_text().splitlines()
            if not line.startswith("#")]
    assert [r[0] for r in rows] == synth.date_list
    np.testing.assert_allclose([float(r[1]) for r in rows], res.rms, rtol=1e-12)  # metres, as MintPy's
    assert "# Date\t\tRMS (m)" in (tmp_path / "rms_timeseriesResidual_ramp.txt").read_text()
    deramped = TimeSeries(tmp_path / "timeseriesResidual_ramp.h5")  # MintPy writes it too
    assert deramped.date_strings == synth.date_list
    d = deramped.read_dates()
    ry, rx = synth.truth.reference_yx
    assert np.all(d[:, ry, rx] == 0)  # relative to the reference pixel
    m = synth.water_mask
    np.testing.assert_allclose(np.sqrt(np.mean(d[:, m].astype(np.float64) ** 2, axis=1)), res.rms, rtol=1e-5)
    assert (tmp_path / "rms_timeseriesResidual_ramp.png").stat().st_size > 1000
    assert (tmp_path / "rms_timeseriesResidual_ramp.pdf").exists()


def test_ramp_removed_before_rms(tmp_path, synth):
    """A quadratic ramp is in the span of the fit: adding one changes no RMS; not removing it does."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    clean = residual_rms(_write(tmp_path / "a" / "r.h5", synth, _residual(synth, False)), tpl(), plot=False)
    ramped = residual_rms(_write(tmp_path / "b" / "r.h5", synth, _residual(synth, True)), tpl(), plot=False)
    np.testing.assert_allclose(ramped.rms, clean.rms, rtol=1e-4, atol=1e-7)
    raw = residual_rms(tmp_path / "b" / "r.h5", tpl(deramp="no"), plot=False)
    others = np.arange(20) != QUIET
    assert np.median(raw.rms[others] / ramped.rms[others]) > 3
    assert not (tmp_path / "b" / "rms_r.pdf").exists() and (tmp_path / "b" / "rms_r.txt").exists()


def test_rms_matches_numpy_without_deramp(tmp_path, synth):
    data = _residual(synth, False)
    data[3, 0, 0] = np.nan
    ts = _write(tmp_path / "r.h5", synth, data)
    res = residual_rms(ts, tpl(deramp="no"), plot=False, max_memory=1e-5)  # many blocks
    d32 = data.astype(np.float32).astype(np.float64)
    ref = np.sqrt(np.nanmean(d32[:, synth.water_mask] ** 2, axis=1))  # every mask pixel, zeros too (MintPy)
    np.testing.assert_allclose(res.rms, ref, rtol=1e-6)
    assert not (tmp_path / "r_ramp.h5").exists()  # nothing deramped: no copy


def test_threshold_formula():
    assert outlier_threshold(np.array([1.0, 2.0, 3.0]), 3) == pytest.approx(3 * 2 / 0.6745)


def test_mask_options(tmp_path, synth):
    ts = _write(tmp_path / "r.h5", synth, _residual(synth, False), mask=False)
    res = residual_rms(ts, tpl(), plot=False)  # default mask absent: all pixels, with a warning
    assert res.reference_date == synth.date_list[QUIET]
    with pytest.raises(InputError, match="not found"):
        residual_rms(ts, tpl(maskFile="nomask.h5"), plot=False)
    with pytest.raises(TemplateError, match="deramp"):
        residual_rms(ts, tpl(deramp="cubic"), plot=False)


def test_rms_text_is_mintpys_and_sbts_plot_reads_it(tmp_path, synth):
    """rms_*.txt in MintPy's layout (tab-separated date and RMS in metres under "# Date\t\tRMS (m)",
    read as such by MintPy's plot_timeseries_rms); `sbts plot rms` reads it back in mm.  No outlier:
    a stale exclude_date.txt is removed, as MintPy does."""
    from sbts.core.viz.rms import read_rms_file

    (tmp_path / "exclude_date.txt").write_text("20000101\n")
    ts = _write(tmp_path / "timeseriesResidual.h5", synth, _residual(synth, False))
    res = residual_rms(ts, tpl(cutoff=100), plot=False)
    assert res.exclude_dates == [] and not (tmp_path / "exclude_date.txt").exists()
    text = (tmp_path / "rms_timeseriesResidual_ramp.txt").read_text()
    rows = [line for line in text.splitlines() if not line.startswith("#")]
    assert all(len(r.split("\t")) == 2 for r in rows)
    dates, mm = read_rms_file(tmp_path / "rms_timeseriesResidual_ramp.txt")
    assert [d.strftime("%Y%m%d") for d in dates] == synth.date_list
    np.testing.assert_allclose(mm, res.rms * 1000, rtol=1e-12)
