"""Time-function design matrices and the mintpy.timeFunc.* model parser (known answers)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.errors import InputError, TemplateError
from sbts.core.model.timefunc import TimeFunctionModel, derive, parse_onsets
from sbts.core.steps.velocity import fit_pixels

DATES = [dt.date(2019, 1, 4) + dt.timedelta(days=12 * i) for i in range(80)]  # 2.6 years


def _t(key_values: dict) -> Template:
    return Template({f"mintpy.timeFunc.{k}": v for k, v in key_values.items()}, warn_unknown=False)


def test_defaults_are_linear():
    m = TimeFunctionModel.from_template(Template())
    assert m.column_names == ["intercept", "velocity"]
    assert [o.name for o in m.outputs()] == ["intercept", "velocity"]


def test_parse_full_model_and_names():
    m = TimeFunctionModel.from_template(_t({
        "polynomial": 3, "periodic": "1, 0.5, 2", "stepDate": "20200301,20190801",
        "exp": "20200101,60,200;20210101 30", "log": "20200101,10"}))
    assert m.steps == (dt.date(2019, 8, 1), dt.date(2020, 3, 1))
    assert m.exps == ((dt.date(2020, 1, 1), (60.0, 200.0)), (dt.date(2021, 1, 1), (30.0,)))
    names = [o.name for o in m.outputs()]
    assert names == ["intercept", "velocity", "acceleration", "poly3",
                     "annualAmplitude", "annualPhase", "semiAnnualAmplitude", "semiAnnualPhase",
                     "period2.0YAmplitude", "period2.0YPhase", "step20190801", "step20200301",
                     "exp20200101Tau60D", "exp20200101Tau200D", "exp20210101Tau30D", "log20200101Tau10D"]
    assert m.provenance()["mintpy.timeFunc.exp"] == "20200101,60,200;20210101,30"
    assert {o.unit for o in m.outputs() if o.name == "acceleration"} == {"m/year^2"}


@pytest.mark.parametrize("values, match", [
    ({"polynomial": -1}, "degree"),
    ({"polynomial": 1.5}, "integer"),
    ({"periodic": "1,abc"}, "numbers"),
    ({"periodic": "-1"}, "positive"),
    ({"stepDate": "2020xx01"}, "not a date"),
    ({"exp": "20200101"}, "time constant"),
    ({"exp": "20200101,-5"}, "positive"),
    ({"log": "20200101,abc"}, "numbers of days"),
])
def test_bad_keys_raise_template_error(values, match):
    with pytest.raises(TemplateError, match=match):
        TimeFunctionModel.from_template(_t(values))


def test_parse_onsets_merges_repeated_onsets():
    assert parse_onsets("20200101,60;20200101,60,90", "k") == ((dt.date(2020, 1, 1), (60.0, 90.0)),)
    assert parse_onsets(None, "k") == ()


def test_design_matrix_columns():
    onset = dt.date(2019, 6, 1)
    m = TimeFunctionModel(polynomial=2, periods=(1.0,), steps=(onset,), exps=((onset, (30.0,)),),
                          logs=((onset, (10.0,)),))
    dates = [dt.date(2019, 1, 1), onset, dt.date(2019, 7, 1)]
    G = m.design_matrix(dates)
    t = np.array([0, (onset - dates[0]).days, (dates[2] - dates[0]).days]) / 365.25
    np.testing.assert_allclose(G[:, 1], t)
    np.testing.assert_allclose(G[:, 2], t ** 2 / 2)  # acceleration: d = ... + a t²/2
    # periodic time from the first fitted date, as MintPy's (cos, sin) columns
    np.testing.assert_allclose(G[:, 3], np.cos(2 * np.pi * t))
    np.testing.assert_allclose(G[:, 4], np.sin(2 * np.pi * t))
    np.testing.assert_array_equal(G[:, 5], [0, 0, 1])  # step strictly after its date
    np.testing.assert_allclose(G[:, 6], [0, 0, 1 - math.exp(-30 / 30)])
    np.testing.assert_allclose(G[:, 7], [0, 0, math.log(1 + 30 / 10)])


def test_check_design_refuses_undetermined_terms():
    m = TimeFunctionModel(steps=(dt.date(2030, 1, 1),))
    with pytest.raises(TemplateError, match="step20300101"):
        m.check_design(m.design_matrix(DATES), DATES)
    m = TimeFunctionModel(polynomial=3)
    with pytest.raises(InputError, match="cannot determine"):
        m.check_design(m.design_matrix(DATES[:3]), DATES[:3])


def test_noise_free_recovery_of_every_term():
    """Known coefficients of every kind of term are recovered to 1e-6 (float64 kernel)."""
    onset = dt.date(2020, 2, 1)
    m = TimeFunctionModel(polynomial=2, periods=(1.0, 0.5), steps=(dt.date(2019, 9, 1),),
                          exps=((onset, (40.0,)),), logs=((dt.date(2020, 8, 1), (15.0,)),))
    G = m.design_matrix(DATES)
    m.check_design(G, DATES)
    rng = np.random.default_rng(3)
    truth = rng.normal(0, 0.02, size=(G.shape[1], 200))
    fit = fit_pixels(G, G @ truth)
    np.testing.assert_allclose(fit.coef, truth, atol=1e-9)
    out = derive(m.outputs(), fit.coef)
    np.testing.assert_allclose(out["acceleration"], truth[2], atol=1e-9)
    np.testing.assert_allclose(out["annualAmplitude"], np.hypot(truth[3], truth[4]), atol=1e-9)
    np.testing.assert_allclose(out["annualPhase"], np.arctan2(truth[3], truth[4]), atol=1e-9)  # MintPy's
    np.testing.assert_allclose(out["exp20200201Tau40D"], truth[-2], atol=1e-9)
    assert np.all(fit.residue < 1e-9)


def test_phase_is_mintpy_sine_phase_from_first_date():
    """MintPy's convention (time_func + timeseries2velocity): d = A·sin(2π(t − t0)/T + φ) with t0 the
    first fitted date: a signal A·sin(2πτ + 0.3) has annualAmplitude A and annualPhase 0.3, whatever
    the calendar date of t0 (the same series fitted from a later first date gets a shifted phase)."""
    m = TimeFunctionModel(polynomial=0, periods=(1.0,))
    tau = np.array([(d - DATES[0]).days for d in DATES]) / 365.25
    y = 0.01 * np.sin(2 * np.pi * tau + 0.3)
    out = derive(m.outputs(), fit_pixels(m.design_matrix(DATES), y[:, None]).coef)
    assert out["annualAmplitude"][0] == pytest.approx(0.01, abs=1e-12)
    assert out["annualPhase"][0] == pytest.approx(0.3, abs=1e-9)
    later = derive(m.outputs(), fit_pixels(m.design_matrix(DATES[5:]), y[5:, None]).coef)
    assert later["annualPhase"][0] == pytest.approx(0.3 + 2 * np.pi * tau[5], abs=1e-9)
