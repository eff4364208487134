"""velocity.h5 from a time series: known answers, uncertainty, date selection, NaN pixels, blocks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import h5py
import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.demo.synthetic import make_synthetic_stack
from sbts.core.errors import InputError, TemplateError
from sbts.core.io.products import TimeSeriesWriter
from sbts.core.model.metadata import Metadata
from sbts.core.model.timefunc import TimeFunctionModel
from sbts.core.steps.velocity import fit_time_functions

DATES = [dt.date(2019, 1, 4) + dt.timedelta(days=12 * i) for i in range(60)]
DATE_STR = [d.strftime("%Y%m%d") for d in DATES]


def write_ts(path: Path, data: np.ndarray, dates=DATE_STR, **attrs) -> Path:
    n, length, width = data.shape
    meta = Metadata.from_attrs({"LENGTH": length, "WIDTH": width, "REF_Y": 0, "REF_X": 0,
                                "REF_DATE": dates[0], **attrs})
    with TimeSeriesWriter(path, meta, dates) as w:
        w.write("timeseries", data.astype(np.float32))
    return path


def tpl(**values) -> Template:
    return Template({f"mintpy.timeFunc.{k}": str(v) for k, v in values.items()}, warn_unknown=False)


def read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with h5py.File(path, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}
        return {k: f[k][()] for k in f}, attrs


@pytest.fixture(scope="module")
def synth():
    return make_synthetic_stack(shape=(24, 30), num_date=30, seed=1)


def test_synthetic_velocity_and_seasonal_truth(tmp_path, synth):
    """Noise-free synthetic deformation: velocity, annual amplitude and phase recovered to 1e-6."""
    tr = synth.truth
    ts = write_ts(tmp_path / "timeseries.h5", tr.deformation, synth.date_list)
    out = fit_time_functions(ts, tpl(periodic=1), max_memory=0.1)
    d, a = read(out)
    np.testing.assert_allclose(d["velocity"], tr.velocity, atol=1e-6)
    np.testing.assert_allclose(d["annualAmplitude"], tr.seasonal_amplitude, atol=1e-6)
    # truth: A·cos(2π(T − p)) with T in years since 2000-01-01 (core.synthetic); MintPy's phase is
    # that of A·sin(2π(t − t0) + φ) with t0 the first date: φ = π/2 + 2π(T(t0) − p)
    t0 = dt.datetime.strptime(synth.date_list[0], "%Y%m%d").date()
    dec0 = (t0 - dt.date(2000, 1, 1)).days / 365.25
    phase_err = np.angle(np.exp(1j * (d["annualPhase"] - np.pi / 2 - 2 * np.pi * (dec0 - tr.seasonal_peak))))
    assert np.abs(phase_err).max() < 1e-3  # radians; amplitudes ≥ 2.4 mm, float32 data
    assert np.all(d["residue"] < 1e-6)
    assert a["FILE_TYPE"] == "velocity" and a["UNIT"] == "m/year"
    assert a["START_DATE"] == synth.date_list[0] and a["END_DATE"] == synth.date_list[-1]
    assert a["DATE12"] == f"{synth.date_list[0]}_{synth.date_list[-1]}"
    assert a["REF_Y"] == "0" and a["REF_DATE"] == synth.date_list[0]
    assert a["mintpy.timeFunc.periodic"] == "1" and a["mintpy.timeFunc.polynomial"] == "1"
    with h5py.File(out) as f:
        assert f["velocity"].attrs["UNIT"] == "m/year" and f["annualPhase"].attrs["UNIT"] == "radian"
        assert "velocityStd" in f and "annualAmplitudeStd" in f


def _full_model_series(shape=(6, 7), seed=0):
    m = TimeFunctionModel(polynomial=2, periods=(1.0,), steps=(dt.date(2019, 10, 1),),
                          exps=((dt.date(2020, 2, 1), (50.0,)),), logs=((dt.date(2020, 6, 1), (20.0,)),))
    G = m.design_matrix(DATES)
    rng = np.random.default_rng(seed)
    coef = rng.normal(0, 0.02, size=(G.shape[1], shape[0] * shape[1]))
    return m, G, coef, (G @ coef).reshape(len(DATES), *shape)


FULL = dict(polynomial=2, periodic=1, stepDate=20191001, exp="20200201,50", log="20200601,20")


def test_every_term_from_file_noise_free(tmp_path):
    m, G, coef, data = _full_model_series()
    out = fit_time_functions(write_ts(tmp_path / "ts.h5", data), tpl(**FULL), tmp_path / "v.h5")
    d, _ = read(out)
    shape = data.shape[1:]
    for j, name in enumerate(["intercept", "velocity", "acceleration"]):
        np.testing.assert_allclose(d[name], coef[j].reshape(shape), atol=1e-6)
    np.testing.assert_allclose(d["annualAmplitude"], np.hypot(coef[3], coef[4]).reshape(shape), atol=1e-6)
    np.testing.assert_allclose(d["step20191001"], coef[5].reshape(shape), atol=1e-6)
    np.testing.assert_allclose(d["exp20200201Tau50D"], coef[6].reshape(shape), atol=1e-6)
    np.testing.assert_allclose(d["log20200601Tau20D"], coef[7].reshape(shape), atol=1e-6)


def test_noisy_velocity_within_statistics_and_std_matches_numpy(tmp_path):
    """White noise σ = 5 mm: (v̂ − v)/σ̂ has mean ≈ 0 and std ≈ 1 over 1200 pixels (±0.15);
    velocityStd equals a per-pixel numpy lstsq reference to float32 precision."""
    rng = np.random.default_rng(5)
    m, G, coef, data = _full_model_series(shape=(30, 40), seed=1)
    noisy = data + rng.normal(0, 0.005, data.shape)
    out = fit_time_functions(write_ts(tmp_path / "ts.h5", noisy), tpl(**FULL), tmp_path / "v.h5")
    d, _ = read(out)
    z = (d["velocity"].ravel() - coef[1]) / d["velocityStd"].ravel()
    assert abs(z.mean()) < 0.15 and 0.85 < z.std() < 1.15
    assert 0.0045 < np.median(d["residue"]) / np.sqrt(len(DATES)) < 0.0055  # √(Σr²), MintPy's residue
    y32 = noisy.astype(np.float32).astype(np.float64).reshape(len(DATES), -1)
    for p in (0, 17, 555, 1199):
        x, rss, *_ = np.linalg.lstsq(G, y32[:, p], rcond=None)
        sigma = np.sqrt(np.diag(np.linalg.inv(G.T @ G)) * rss[0] / (len(DATES) - G.shape[1]))
        iy, ix = divmod(p, 40)
        assert d["velocityStd"][iy, ix] == pytest.approx(sigma[1], rel=1e-5)
        assert d["step20191001Std"][iy, ix] == pytest.approx(sigma[5], rel=1e-5)
        assert d["velocity"][iy, ix] == pytest.approx(x[1], rel=1e-5, abs=1e-7)
        assert d["residue"][iy, ix] == pytest.approx(np.sqrt(rss[0]), rel=1e-5)


def test_bootstrap_agrees_with_residue_and_is_reproducible(tmp_path):
    """On white noise the bootstrap Std matches the residue Std (median ratio within 15 %).

    The annual amplitude (2 cm ≫ its σ ≈ 1 mm) is in the regime where the linearised Std holds.
    """
    rng = np.random.default_rng(7)
    season = 0.02 * np.cos(2 * np.pi * np.arange(60) * 12 / 365.25)
    data = ((0.01 * np.arange(60) / 30 + season)[:, None, None] + rng.normal(0, 0.004, (60, 20, 20)))
    ts = write_ts(tmp_path / "ts.h5", data)
    res, _ = read(fit_time_functions(ts, tpl(periodic=1), tmp_path / "r.h5"))
    boot, a = read(fit_time_functions(ts, tpl(periodic=1, uncertaintyQuantification="bootstrap",
                                              bootstrapCount=200), tmp_path / "b.h5"))
    assert a["mintpy.timeFunc.uncertaintyQuantification"] == "bootstrap"
    for name in ("velocity", "intercept", "annualAmplitude", "annualPhase"):
        ratio = np.median(boot[name + "Std"] / res[name + "Std"])
        assert 0.85 < ratio < 1.15, (name, ratio)
    np.testing.assert_array_equal(boot["velocity"], res["velocity"])  # estimates = full-data fit
    again, _ = read(fit_time_functions(ts, tpl(periodic=1, uncertaintyQuantification="bootstrap",
                                               bootstrapCount=200), tmp_path / "b2.h5", max_memory=5e-4))
    for k in boot:  # same seed, many blocks: same answer
        np.testing.assert_allclose(again[k], boot[k], rtol=1e-5, atol=1e-9, equal_nan=True)


def test_blocks_equal_single_run_with_nan_pixels(tmp_path):
    m, G, coef, data = _full_model_series(shape=(20, 9))
    data[5, 3, 4] = np.nan  # one missing date
    data[::2, 7, 1] = np.nan  # half the dates missing
    data[:, 2, 2] = np.nan  # no data at all
    data[:-5, 9, 5] = np.nan  # 5 dates for 8 terms: undetermined
    ts = write_ts(tmp_path / "ts.h5", data)
    one, _ = read(fit_time_functions(ts, tpl(**FULL), tmp_path / "one.h5", max_memory=4))
    many, _ = read(fit_time_functions(ts, tpl(**FULL), tmp_path / "many.h5", max_memory=2e-5))
    for k in one:
        np.testing.assert_allclose(many[k], one[k], rtol=1e-6, atol=1e-9, equal_nan=True)
    v = coef[1].reshape(20, 9)
    np.testing.assert_allclose(one["velocity"][3, 4], v[3, 4], atol=1e-6)
    np.testing.assert_allclose(one["velocity"][7, 1], v[7, 1], atol=1e-6)
    assert np.isnan(one["velocity"][2, 2]) and np.isnan(one["velocity"][9, 5])
    assert np.isfinite(one["velocityStd"][7, 1])


def test_excluded_start_end_dates(tmp_path):
    t = np.array([(d - DATES[0]).days for d in DATES]) / 365.25
    data = np.broadcast_to((0.02 * t)[:, None, None], (60, 4, 5)).copy()
    data[10] += 1.0  # an outlier date
    data[40:] += 0.5 * (t[40:] - t[40])[:, None, None]  # velocity change after date 40
    ts = write_ts(tmp_path / "ts.h5", data)
    d, a = read(fit_time_functions(ts, tpl(excludeDate=DATE_STR[10], endDate=DATE_STR[40]), tmp_path / "v.h5"))
    np.testing.assert_allclose(d["velocity"], 0.02, atol=1e-6)
    assert a["END_DATE"] == DATE_STR[40] and a["mintpy.timeFunc.excludeDate"] == DATE_STR[10]
    d, a = read(fit_time_functions(ts, tpl(startDate=DATE_STR[40]), tmp_path / "v2.h5"))
    np.testing.assert_allclose(d["velocity"], 0.52, atol=1e-6)
    assert a["START_DATE"] == DATE_STR[40] and a["NUM_DATE"] == "20"
    # the default exclude_date.txt of the work dir is used when it exists
    (tmp_path / "exclude_date.txt").write_text(f"{DATE_STR[10]}\n")
    d, _ = read(fit_time_functions(ts, tpl(endDate=DATE_STR[40]), tmp_path / "v3.h5"))
    np.testing.assert_allclose(d["velocity"], 0.02, atol=1e-6)


def test_errors(tmp_path):
    ts = write_ts(tmp_path / "ts.h5", np.zeros((60, 3, 3)))
    with pytest.raises(InputError, match="timeSeriesCovFile"):  # no covariance file written beside it
        fit_time_functions(ts, tpl(uncertaintyQuantification="covariance"))
    with pytest.raises(TemplateError, match="not found"):
        fit_time_functions(ts, tpl(excludeDate="missing_dates.txt"))
    with pytest.raises(TemplateError, match="outside"):
        fit_time_functions(ts, tpl(stepDate="20300101"))
    with pytest.raises(InputError, match="no date left"):
        fit_time_functions(ts, tpl(startDate="20300101"))
    # a reference pixel (zero at every date) fits to exactly zero
    d, _ = read(fit_time_functions(ts, tpl(), tmp_path / "v.h5"))
    assert np.all(d["velocity"] == 0) and np.all(d["velocityStd"] == 0)
