"""The deramp correction: ramps removed, reference kept, mask handling, bounded memory, CLI."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from sbts.core.config.template import Template
from sbts.core.errors import InputError, TemplateError
from sbts.core.io.products import TimeSeries, TimeSeriesWriter, write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, Reference
from sbts.core.model.ramps import evaluate_ramps
from sbts.core.plugin.runners import run_correction

L, W = 36, 44
DATES = ["20200101", "20200113", "20200125", "20200206", "20200218"]
REF = (6, 9)
BLOB = (slice(12, 22), slice(14, 26))  # deforming area, outside the mask


def _meta() -> Metadata:
    return Metadata(Grid(L, W, GeoGrid(100.0, 30.0, 0.001, -0.001, epsg=4326)), unit="m",
                    reference=Reference(y=REF[0], x=REF[1], date=None), processor="isce",
                    extra={"OG_FILE_PATH": "/data/timeseries.h5"})


def _signal() -> np.ndarray:
    sig = np.zeros((len(DATES), L, W), np.float32)
    sig[:, BLOB[0], BLOB[1]] = (np.arange(len(DATES)) * 0.01)[:, None, None]
    return sig


def _write_case(folder, kind="linear", mask=True, seed=0):
    """timeseries.h5 = signal + ramps, referenced; maskTempCoh.h5 excluding the deforming area."""
    rng = np.random.default_rng(seed)
    k = {"linear": 3, "quadratic": 6}[kind]
    coeffs = rng.normal(0, 0.03, (len(DATES), k))
    coeffs[0] = 0  # reference date
    data = _signal() + evaluate_ramps(coeffs, (L, W), kind)
    data -= data[:, REF[0]:REF[0] + 1, REF[1]:REF[1] + 1]
    bperp = np.linspace(0, 80, len(DATES)).astype(np.float32)
    with TimeSeriesWriter(folder / "timeseries.h5", _meta(), DATES, bperp) as w:
        w.write("timeseries", data)
    if mask:
        m = np.ones((L, W), bool)
        m[BLOB] = False
        write_map(folder / "maskTempCoh.h5", _meta(), "mask", {"mask": m}, unit="1")
    return data


def _expected() -> np.ndarray:
    sig = _signal()
    return sig - sig[:, REF[0]:REF[0] + 1, REF[1]:REF[1] + 1]


@pytest.mark.parametrize("kind", ["linear", "quadratic"])
def test_ramps_removed_and_reference_kept(tmp_path, kind):
    _write_case(tmp_path, kind)
    result = run_correction("deramp", Template({"mintpy.deramp": kind}), tmp_path)
    assert result.output == tmp_path / "timeseries_ramp.h5"
    out = TimeSeries(result.output)
    data = out.read_dates()
    np.testing.assert_allclose(data, _expected(), atol=2e-6)
    assert np.all(data[:, REF[0], REF[1]] == 0)  # still referenced
    assert out.date_strings == DATES
    np.testing.assert_allclose(out.bperp, np.linspace(0, 80, len(DATES)))
    meta = out.metadata
    assert meta.reference.y == REF[0] and meta.reference.x == REF[1]
    assert meta.extra["mintpy.deramp"] == kind
    assert meta.extra["mintpy.deramp.maskFile"] == "maskTempCoh.h5"
    assert meta.processor == "isce" and meta.extra["OG_FILE_PATH"] == "/data/timeseries.h5"
    assert meta.file_type == "timeseries" and meta.unit == "m"
    assert not list(tmp_path.glob("*.part"))


def test_small_memory_budget_subsamples_and_blocks(tmp_path):
    _write_case(tmp_path, "quadratic")
    # ~10 kB per block: a few rows per block and a subsample of the mask pixels for the fit
    run_correction("deramp", Template({"mintpy.deramp": "quadratic"}), tmp_path, max_memory=1e-5)
    data = TimeSeries(tmp_path / "timeseries_ramp.h5").read_dates()
    np.testing.assert_allclose(data, _expected(), atol=2e-6)


def test_deramp_no_is_a_template_error(tmp_path):
    _write_case(tmp_path)
    with pytest.raises(TemplateError, match="linear or quadratic"):
        run_correction("deramp", Template({"mintpy.deramp": "no"}), tmp_path)


def test_bad_kind_is_a_template_error(tmp_path):
    _write_case(tmp_path)
    with pytest.raises(TemplateError, match="cubic"):
        run_correction("deramp", Template({"mintpy.deramp": "cubic"}, warn_unknown=False), tmp_path)


def test_missing_mask_named_by_the_key_is_an_error(tmp_path):
    _write_case(tmp_path)
    t = Template({"mintpy.deramp": "linear", "mintpy.deramp.maskFile": "myMask.h5"})
    with pytest.raises(InputError, match="myMask.h5"):
        run_correction("deramp", t, tmp_path)
    assert not (tmp_path / "timeseries_ramp.h5").exists()


def test_mask_no_uses_all_pixels(tmp_path):
    rng = np.random.default_rng(3)
    coeffs = rng.normal(0, 0.03, (len(DATES), 3))
    ramps = evaluate_ramps(coeffs, (L, W), "linear")
    ramps -= ramps[:, REF[0]:REF[0] + 1, REF[1]:REF[1] + 1]
    with TimeSeriesWriter(tmp_path / "timeseries.h5", _meta(), DATES) as w:
        w.write("timeseries", ramps)
    t = Template({"mintpy.deramp": "linear", "mintpy.deramp.maskFile": "no"})
    run_correction("deramp", t, tmp_path)
    out = TimeSeries(tmp_path / "timeseries_ramp.h5")
    np.testing.assert_allclose(out.read_dates(), 0, atol=2e-6)
    assert out.metadata.extra["mintpy.deramp.maskFile"] == "no"


def test_default_mask_absent_falls_back_to_all_pixels(tmp_path):
    _write_case(tmp_path, mask=False)
    run_correction("deramp", Template({"mintpy.deramp": "linear"}), tmp_path)
    assert TimeSeries(tmp_path / "timeseries_ramp.h5").metadata.extra["mintpy.deramp.maskFile"] == "no"


def test_nan_and_no_data_pixels(tmp_path):
    data = _write_case(tmp_path)
    data[2, 30:, 30:] = np.nan  # a hole in one date
    data[:, 0, 0] = 0  # a pixel without data at every date (MintPy's 0)
    with TimeSeriesWriter(tmp_path / "timeseries.h5", _meta(), DATES) as w:
        w.write("timeseries", data)
    run_correction("deramp", Template({"mintpy.deramp": "linear"}), tmp_path)
    out = TimeSeries(tmp_path / "timeseries_ramp.h5").read_dates()
    assert np.isnan(out[2, 30:, 30:]).all()
    assert np.all(out[:, 0, 0] == 0)
    finite = np.isfinite(out)
    finite[:, 0, 0] = False
    np.testing.assert_allclose(out[finite], _expected()[finite], atol=2e-6)


def test_mask_of_another_grid_is_refused(tmp_path):
    _write_case(tmp_path, mask=False)
    small = Metadata(Grid(5, 5), unit="1")
    write_map(tmp_path / "maskTempCoh.h5", small, "mask", {"mask": np.ones((5, 5), bool)})
    with pytest.raises(InputError, match="same grid"):
        run_correction("deramp", Template({"mintpy.deramp": "linear"}), tmp_path)


# ----------------------------------------------------------------------------- CLI
def test_cli_help_lists_keys():
    from sbts.cli.main import cli

    res = CliRunner().invoke(cli, ["correct", "deramp", "--help"])
    assert res.exit_code == 0, res.output
    assert "mintpy.deramp " in res.output and "mintpy.deramp.maskFile" in res.output
    assert "timeseries" in res.output


def test_cli_runs_deramp(tmp_path):
    from sbts.cli.main import cli

    _write_case(tmp_path, "quadratic")
    res = CliRunner().invoke(cli, ["-q", "correct", "deramp", "-d", str(tmp_path), "-s", "mintpy.deramp=quadratic"])
    assert res.exit_code == 0, res.output
    assert "timeseries_ramp.h5" in res.output
    np.testing.assert_allclose(TimeSeries(tmp_path / "timeseries_ramp.h5").read_dates(), _expected(), atol=2e-6)


def test_cli_deramp_off_says_what_to_set(tmp_path):
    from sbts.cli.main import cli

    _write_case(tmp_path)
    res = CliRunner().invoke(cli, ["-q", "correct", "deramp", "-d", str(tmp_path)])
    assert res.exit_code != 0
    assert "linear or quadratic" in res.output


def test_cli_option_is_the_corrections_own_option(tmp_path):
    """`-O KEY=VALUE` passes the options the correction declares (same spelling as `sbts export`)."""
    from sbts.cli.main import cli

    _write_case(tmp_path, "quadratic")
    res = CliRunner().invoke(cli, ["correct", "deramp", "--help"])
    assert "-O, --option KEY=VALUE" in res.output and "kind : ramp to remove" in res.output
    res = CliRunner().invoke(cli, ["-q", "correct", "deramp", "-d", str(tmp_path), "-O", "kind=quadratic"])
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(TimeSeries(tmp_path / "timeseries_ramp.h5").read_dates(), _expected(), atol=2e-6)


@pytest.mark.parametrize("args, message", [
    (["-O", "knd=linear"], "correction 'deramp': unknown option(s) knd (known: kind, mask_file)"),
    (["-O", "kind"], "'kind': expected KEY=VALUE"),
    (["-s", "=linear"], "'=linear': expected KEY=VALUE"),
])
def test_cli_option_misspelt_is_refused(tmp_path, args, message):
    from sbts.cli.main import cli

    _write_case(tmp_path)
    res = CliRunner().invoke(cli, ["-q", "correct", "deramp", "-d", str(tmp_path), *args])
    assert res.exit_code != 0 and message in res.output, res.output
    assert not (tmp_path / "timeseries_ramp.h5").exists()
