"""Re-referencing to a date (library and CLI), plus CLI runs of velocity and rms."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from sbts.cli.main import cli
from sbts.core.errors import InputError
from sbts.core.io.products import TimeSeriesWriter
from sbts.core.model.metadata import Metadata
from sbts.core.steps.refdate import reference_date

DATES = [f"2020{m:02d}01" for m in range(1, 13)]


def _write(path, data=None):
    rng = np.random.default_rng(0)
    data = rng.normal(0, 0.01, (12, 5, 6)) if data is None else data
    data = data - data[0]
    meta = Metadata.from_attrs({"LENGTH": 5, "WIDTH": 6, "REF_Y": 1, "REF_X": 1, "REF_DATE": DATES[0],
                                "CUSTOM": "kept"})
    with TimeSeriesWriter(path, meta, DATES, bperp=np.arange(12.0)) as w:
        w.write("timeseries", data.astype(np.float32))
        w.create("extra", data=np.ones((5, 6), np.float32))
    return path, data.astype(np.float32)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_output_elsewhere_leaves_input_untouched(tmp_path):
    ts, data = _write(tmp_path / "timeseries.h5")
    before = _digest(ts)
    (out,) = reference_date([ts], "20200501", output=tmp_path / "out.h5", max_memory=1e-6)
    assert _digest(ts) == before
    with h5py.File(out) as f:
        np.testing.assert_allclose(f["timeseries"][()], data - data[4], atol=1e-7)
        assert np.all(f["timeseries"][4] == 0)
        assert f.attrs["REF_DATE"] == "20200501" and f.attrs["CUSTOM"] == "kept"
        np.testing.assert_array_equal(f["bperp"][()], np.arange(12.0))
        assert "extra" in f and f.attrs["FILE_TYPE"] == "timeseries"


def test_in_place_from_reference_date_file(tmp_path):
    a, data = _write(tmp_path / "timeseries.h5")
    b, _ = _write(tmp_path / "timeseries_ramp.h5")
    (tmp_path / "reference_date.txt").write_text("20200901\n")
    assert reference_date([a, b], "reference_date.txt", work_dir=tmp_path) == [a, b]
    for path in (a, b):
        with h5py.File(path) as f:
            np.testing.assert_allclose(f["timeseries"][()], data - data[8], atol=1e-7)
            assert f.attrs["REF_DATE"] == "20200901"
    assert not list(tmp_path.glob("*.part"))
    before = _digest(a)
    reference_date([a], "20200901")  # already there: unchanged
    assert _digest(a) == before


def test_missing_date_lists_range_and_changes_nothing(tmp_path):
    a, _ = _write(tmp_path / "a.h5")
    before = _digest(a)
    with pytest.raises(InputError, match=r"20200101\.\.20201201"):
        reference_date([a], "20210101")
    with pytest.raises(InputError, match="neither a date"):
        reference_date([a], "nofile.txt")
    assert _digest(a) == before


# ---------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("command", ["velocity", "rms", "refdate"])
def test_help(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_cli_refdate(tmp_path):
    ts, data = _write(tmp_path / "timeseries.h5")
    result = CliRunner().invoke(cli, ["refdate", str(ts), "--date", "20200301", "-o", str(tmp_path / "o.h5")])
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "o.h5") as f:
        np.testing.assert_allclose(f["timeseries"][()], data - data[2], atol=1e-7)
    result = CliRunner().invoke(cli, ["refdate", str(ts), "--date", "20190101"])
    assert result.exit_code != 0 and "not in the time series" in result.output


def test_cli_velocity_and_rms(tmp_path):
    t = np.arange(12) * 30.5 / 365.25
    data = 0.03 * t[:, None, None] + np.random.default_rng(1).normal(0, 1e-3, (12, 5, 6))
    _write(tmp_path / "timeseries.h5", data)
    tpl = tmp_path / "smallbaselineApp.cfg"
    tpl.write_text("mintpy.timeFunc.polynomial = 1\nmintpy.residualRMS.maskFile = no\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["velocity", str(tpl), "--exclude-date", "20200601", "--uncertainty",
                                 "bootstrap", "--bootstrap-count", "50", "--periodic", "1"])
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "velocity.h5") as f:
        assert np.abs(f["velocity"][()] - 0.03).max() < 0.01
        assert f.attrs["mintpy.timeFunc.excludeDate"] == "20200601"
        assert f.attrs["mintpy.timeFunc.uncertaintyQuantification"] == "bootstrap"
        assert "annualAmplitudeStd" in f
    result = runner.invoke(cli, ["rms", str(tpl), "-i", str(tmp_path / "timeseries.h5"), "--deramp", "linear",
                                 "--cutoff", "2", "--no-plot"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rms_timeseries_ramp.txt").exists()
    assert (tmp_path / "reference_date.txt").read_text().strip() in DATES
    result = runner.invoke(cli, ["velocity", str(tpl), "--uncertainty", "covariance"])
    assert result.exit_code != 0 and "covariance" in result.output


def test_resolve_reference_date_from_template(tmp_path):
    from sbts.core.config.template import Template
    from sbts.core.steps.refdate import resolve_reference_date

    assert resolve_reference_date(Template(), tmp_path) is None  # default file absent: unchanged
    (tmp_path / "reference_date.txt").write_text("20200301\n")
    assert resolve_reference_date(Template(), tmp_path) == "20200301"
    assert resolve_reference_date(Template({"mintpy.reference.date": "no"}), tmp_path) is None
    assert resolve_reference_date(Template({"mintpy.reference.date": "20200501"}), tmp_path) == "20200501"
    with pytest.raises(InputError):
        resolve_reference_date(Template({"mintpy.reference.date": "other.txt"}), tmp_path)
