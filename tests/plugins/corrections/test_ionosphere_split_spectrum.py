"""Split-spectrum ionosphere (mintpy.ionosphericDelay.method = split_spectrum): the ISCE2 topsStack ion files
(``ion/<pair>/ion_cal/filt.ion`` + ``raw_no_projection.cor``) loaded into inputs/ionStack.h5, inverted with the
network-inversion engine into inputs/ion.h5 and removed; checked against the known ionosphere time series the
pairs were made from, with excludeDate/excludeDate12 honoured."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fixtures.isce_topsstack import WAVELENGTH, build_topsstack, template_text, write_isce_image  # noqa: E402

from sbts.core.config.template import Template  # noqa: E402
from sbts.core.errors import InputError, TemplateError  # noqa: E402
from sbts.core.io.products import IfgramStack, TimeSeries, TimeSeriesWriter  # noqa: E402
from sbts.core.plugin.runners import run_correction  # noqa: E402
from sbts.core.steps.load import load_data  # noqa: E402

DATES = ("20190101", "20190113", "20190125", "20190206", "20190218")
REF = (7, 11)


def _ion_truth(shape):
    """An ionospheric phase screen per date (radians): a ramp and a bump that change from date to date."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    screens = {}
    for k, d in enumerate(DATES):
        screens[d] = (0.3 * k * (xx / shape[1]) - 0.2 * (k % 2) * (yy / shape[0])
                      + 0.5 * np.sin(k) * np.exp(-((yy - 10) ** 2 + (xx - 20) ** 2) / 60.0))
    return screens


def _write_ion(root: Path, pairs, screens, shape):
    """topsStack's layout: ion/<d1>_<d2>/ion_cal/filt.ion (1-band float32) and raw_no_projection.cor."""
    rng = np.random.default_rng(3)
    for d1, d2 in pairs:
        folder = root / "ion" / f"{d1}_{d2}" / "ion_cal"
        write_isce_image(folder / "filt.ion", [(screens[d2] - screens[d1]).astype(np.float32)])
        write_isce_image(folder / "raw_no_projection.cor", [rng.uniform(0.5, 1, shape).astype(np.float32)])


def _template(root: Path, extra: str = "") -> Template:
    return Template.from_text(template_text(root) + f"mintpy.load.ionUnwFile = {root}/ion/*/ion_cal/filt.ion\n"
                              f"mintpy.load.ionCorFile = {root}/ion/*/ion_cal/raw_no_projection.cor\n"
                              "mintpy.ionosphericDelay.method = split_spectrum\n" + extra)


@pytest.fixture
def tops(tmp_path):
    root = tmp_path / "tops"
    info = build_topsstack(root, dates=DATES)
    screens = _ion_truth(info["shape"])
    _write_ion(root, info["pairs"], screens, info["shape"])
    work = tmp_path / "work"
    load_data(_template(root), work)
    # a time series on the stack's grid, referenced at REF and the first date (what invert_network writes)
    meta = IfgramStack(work / "inputs" / "ifgramStack.h5").metadata
    meta = meta.with_reference(y=REF[0], x=REF[1], date=dt.date(2019, 1, 1))
    signal = np.random.default_rng(4).normal(0, 0.01, (len(DATES), *info["shape"])).astype(np.float32)
    signal -= signal[:, REF[0]:REF[0] + 1, REF[1]:REF[1] + 1]
    signal -= signal[0]
    signal[:, REF[0], REF[1]] = 0
    signal[1:, 0, 1] += 1e-3  # no pixel is zero at every date (zero = no data)
    with TimeSeriesWriter(work / "timeseries.h5", meta, list(DATES), np.zeros(len(DATES))) as w:
        w.write("timeseries", signal)
    return root, work, info, screens, signal


def _expected_ion(screens, dates):
    """ion.h5 in metres, displacement sign (−λ/4π·phase), relative to REF and the first date."""
    out = np.stack([-WAVELENGTH / (4 * np.pi) * (screens[d] - screens[DATES[0]]) for d in dates])
    out = out - out[:, REF[0]:REF[0] + 1, REF[1]:REF[1] + 1]
    out[:, :, :3] = 0  # the fixture's waterMask.rdr (columns 0–2): not inverted, as for the phase
    return out


def test_ion_stack_is_loaded_like_the_interferograms(tops):
    root, work, info, screens, _ = tops
    ion = IfgramStack(work / "inputs" / "ionStack.h5")
    stack = IfgramStack(work / "inputs" / "ifgramStack.h5")
    assert ion.shape == stack.shape and ion.pairs.date12 == stack.pairs.date12
    assert set(ion.datasets) >= {"unwrapPhase", "coherence"}
    k = ion.pairs.date12.index("20190113_20190206")
    np.testing.assert_array_equal(ion.read_pairs("unwrapPhase", index=k),
                                  (screens["20190206"] - screens["20190113"]).astype(np.float32))


def test_inverted_and_removed_against_the_known_screens(tops):
    root, work, info, screens, signal = tops
    result = run_correction("ionosphere_split_spectrum", _template(root), work)
    assert result.output == work / "timeseries_ion.h5"
    ion = TimeSeries(work / "inputs" / "ion.h5")
    assert ion.date_strings == list(DATES)
    # a consistent network without weights recovers the screens exactly (float32 phases: ~1e-7 rad → 1e-9 m)
    np.testing.assert_allclose(ion.read_dates(), _expected_ion(screens, DATES), atol=2e-8)
    assert (work / "inputs" / "temporalCoherenceIon.h5").exists() and (work / "inputs" / "numInvIon.h5").exists()
    assert not (work / "inputs" / "maskTempCohIon.h5").exists()
    out = TimeSeries(result.output).read_dates()
    np.testing.assert_allclose(out, signal - _expected_ion(screens, DATES), atol=2e-8)
    assert np.abs(_expected_ion(screens, DATES)).max() > 3e-3  # millimetres to remove: the check can fail


def test_exclude_date_and_date12_are_honoured(tops, caplog):
    root, work, info, screens, signal = tops
    extra = ("mintpy.ionosphericDelay.excludeDate = 20190218\n"
             "mintpy.ionosphericDelay.excludeDate12 = 20190101_20190113\n")
    with caplog.at_level("WARNING"):
        result = run_correction("ionosphere_split_spectrum", _template(root, extra), work)
    ion_stack = IfgramStack(work / "inputs" / "ionStack.h5")
    dropped = [d for d, keep in zip(ion_stack.pairs.date12, ion_stack.pairs.keep) if not keep]
    assert "20190101_20190113" in dropped and all(("20190218" in d) == (d in dropped) or d == "20190101_20190113"
                                                  for d in ion_stack.pairs.date12)
    ion = TimeSeries(work / "inputs" / "ion.h5")
    assert ion.date_strings == list(DATES[:-1])  # the excluded date is not reached any more
    np.testing.assert_allclose(ion.read_dates(), _expected_ion(screens, DATES[:-1]), atol=2e-8)
    out = TimeSeries(result.output).read_dates()
    np.testing.assert_allclose(out[:-1], signal[:-1] - _expected_ion(screens, DATES[:-1]), atol=2e-8)
    np.testing.assert_array_equal(out[-1], signal[-1])  # left uncorrected, and said so
    assert "20190218" in caplog.text
    # the interferogram stack itself is untouched
    assert IfgramStack(work / "inputs" / "ifgramStack.h5").pairs.keep.all()


def test_errors_are_one_line(tops, tmp_path):
    root, work, *_ = tops
    with pytest.raises(TemplateError, match="excludeDate12.*not a pair"):
        run_correction("ionosphere_split_spectrum", _template(root, "mintpy.ionosphericDelay.excludeDate12 = 2019\n"),
                       work)
    (work / "inputs" / "ionStack.h5").unlink()
    with pytest.raises(InputError, match="ionStack.h5 not found.*mintpy.load.ionUnwFile"):
        run_correction("ionosphere_split_spectrum", _template(root), work)
    with pytest.raises(InputError, match="ionUnwFile.*matches no file"):
        load_data(Template.from_text(template_text(root) + f"mintpy.load.ionUnwFile = {root}/nothing/*.ion\n"),
                  tmp_path / "w2")
