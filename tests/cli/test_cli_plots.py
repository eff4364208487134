"""``sbts view``, ``sbts tsview`` and ``sbts plot ...`` through click, on the demo outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")

from sbts.cli.main import cli  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from sbts.core.demo.run import run_demo

    work = tmp_path_factory.mktemp("clidemo")
    run_demo(work, shape=(50, 60), num_date=14)
    return work


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("command", [["view"], ["tsview"], ["plot"], ["plot", "network"],
                                     ["plot", "coherence-matrix"], ["plot", "transect"], ["plot", "rms"]])
def test_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    if command != ["plot"]:
        assert "--save" in result.output and "--nodisplay" in result.output


def test_view_cli(demo, tmp_path):
    out = tmp_path / "v.png"
    result = invoke("view", demo / "timeseries.h5", "2019*", "--mask", "auto", "--save", out, "--nodisplay")
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 10_000
    out2 = tmp_path / "v2.pdf"
    result = invoke("view", demo / "avgPhaseVelocity.h5", "--vlim", "-20", "20", "--unit", "mm/year",
                    "--ref-lalo", "19.43", "-99.13", "--dem", demo / "inputs" / "geometryGeo.h5", "--save", out2,
                    "--nodisplay")
    assert result.exit_code == 0, result.output
    assert out2.read_bytes()[:4] == b"%PDF"


def test_view_headless_default_name(demo, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path)
    result = invoke("view", demo / "temporalCoherence.h5")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "temporalCoherence.png").is_file()


def test_tsview_cli(demo, tmp_path):
    out = tmp_path / "ts.png"
    result = invoke("tsview", demo / "timeseries.h5", demo / "timeseries_demErr.h5", "--yx", 20, 30, "--ref-yx", 5, 5,
                    "--zero-first", "--save", out, "--nodisplay")
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 10_000


def test_plot_cli(demo, tmp_path):
    stack = demo / "inputs" / "ifgramStack.h5"
    result = invoke("plot", "network", stack, "--save", tmp_path / "network.png", "--nodisplay")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "coherenceMatrix.png").is_file() and (tmp_path / "bperpHistory.png").is_file()
    result = invoke("plot", "coherence-matrix", stack, "--yx", 10, 10, "--save", tmp_path / "cm.png", "--nodisplay")
    assert result.exit_code == 0, result.output
    result = invoke("plot", "transect", demo / "avgPhaseVelocity.h5", demo / "timeseries.h5", "--start-yx", 5, 5,
                    "--end-yx", 40, 50, "--interp", "bilinear", "--save", tmp_path / "tr.png", "--nodisplay")
    assert result.exit_code == 0, result.output
    rms = tmp_path / "rms_timeseries.txt"
    rms.write_text("# date rms_mm\n20200101 1.0\n20200113 2.0\n20200125 1.5\n20200206 9.0\n", encoding="utf-8")
    result = invoke("plot", "rms", rms, "--save", tmp_path / "rms.png", "--nodisplay")
    assert result.exit_code == 0, result.output
    for name in ("network.png", "cm.png", "tr.png", "rms.png"):
        assert (tmp_path / name).stat().st_size > 10_000


@pytest.mark.parametrize("args, message", [
    (["view", "{d}/timeseries.h5", "nonsense"], "no dataset, date or pair"),
    (["view", "{d}/timeseries.h5", "20300101"], "not in the time series"),
    (["tsview", "{d}/timeseries.h5", "--yx", "500", "3", "--nodisplay"], "outside the image"),
    (["plot", "coherence-matrix", "{d}/inputs/ifgramStack.h5", "--yx", "-1", "0"], "outside the image"),
    (["plot", "transect", "{d}/avgPhaseVelocity.h5", "--start-yx", "0", "0", "--end-yx", "0", "999"], "outside"),
    (["plot", "network", "{d}/timeseries.h5"], "not an interferogram stack"),
    (["plot", "rms", "{d}/sbts_demo.cfg"], "not an RMS file"),
])
def test_errors_are_one_line(demo, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, [a.format(d=demo) for a in args] + ["--save", str(tmp_path / "x.png")])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.output
    assert not (tmp_path / "x.png").exists()
