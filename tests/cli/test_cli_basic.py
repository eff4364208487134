"""Every command answers --help; info and plugins on real files; errors are one line without traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from sbts.cli.main import COMMANDS, cli
from sbts.core.plugin.registry import get_registry


def _invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_top_level_help_lists_every_command():
    out = _invoke("--help").output
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listing_shows_each_commands_own_summary(name):
    """`sbts --help` reads the summaries from the sources (nothing imported), and they are exactly
    what click makes of the imported command's own docstring: the listing cannot drift."""
    import importlib

    from sbts.cli.main import summary

    module, _, attr = COMMANDS[name].partition(":")
    command = getattr(importlib.import_module(module), attr)
    assert command.name == name
    for limit in (45, 66, 200):
        assert summary(COMMANDS[name], limit) == command.get_short_help_str(limit)
    assert summary(COMMANDS[name], 200)  # every command has one
    out = _invoke("--help").output
    pad = max(map(len, COMMANDS)) + 1  # click lays names out in a column 2 wider than the longest
    assert f"  {name:<{pad}s} {summary(COMMANDS[name], 80 - 6 - max(map(len, COMMANDS)))}" in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name):
    result = _invoke(name, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and len(result.output) > 200


@pytest.mark.parametrize("kind,group", [("correction", "correct"), ("exporter", "export")])
def test_every_plugin_subcommand_has_help(kind, group):
    names = sorted(get_registry().of_kind(kind))
    assert names
    for name in names:
        result = _invoke(group, name, "--help")
        assert result.exit_code == 0, (name, result.output)
        assert name in result.output


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    from sbts.core.demo.run import write_synthetic

    d = tmp_path_factory.mktemp("info")
    write_synthetic(d, shape=(30, 40), num_date=8)
    return d


def test_info_on_mintpy_layout_files(demo_dir):
    out = _invoke("info", str(demo_dir / "ifgramStack.h5")).output
    assert "ifgramStack" in out and "/unwrapPhase" in out and "WAVELENGTH" in out and "pairs:" in out
    dates = _invoke("info", "--dates", str(demo_dir / "truth.h5")).output.split()
    assert len(dates) == 8 and all(len(d) == 8 for d in dates)


def test_plugins_lists_builtins_by_kind():
    out = _invoke("plugins").output
    readers = out.split("Readers:")[1].split("Corrections:")[0]
    for name in ("gamma", "isce", "aria", "snap", "roipac", "hyp3", "geotiff", "mintpy"):
        assert f"  {name} " in readers
    corrections = out.split("Corrections:")[1].split("Exporters:")[0]
    for name in ("deramp", "dem_error", "lod", "pyaps", "height_correlation", "gacos", "phase_closure", "bridging"):
        assert f"  {name} " in corrections
    exporters = out.split("Exporters:")[1]
    for name in ("geotiff", "hdf5", "kmz", "gmt", "gbis", "hdfeos5", "roipac"):
        assert f"  {name} " in exporters
    assert "Broken plugins" not in out


def test_user_errors_are_one_line_without_traceback_and_v_shows_it(tmp_path):
    missing = tmp_path / "nope.h5"
    missing.write_bytes(b"")
    result = _invoke("info", str(missing))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().startswith("Error:") and len(result.output.strip().splitlines()) == 1
    verbose = subprocess.run([sys.executable, "-m", "sbts", "-v", "info", str(missing)], capture_output=True, text=True)
    assert verbose.returncode != 0 and "Traceback" in verbose.stderr


def test_python_m_sbts_is_the_command():
    out = subprocess.run([sys.executable, "-m", "sbts", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "sbts" in out.stdout


def test_ctrl_c_wrapped_by_python_is_an_interruption(tmp_path, monkeypatch):
    """A Ctrl-C that lands while Python creates a class (a dataclass imported at that moment) reaches
    the command as a RuntimeError raised from the KeyboardInterrupt (Python 3.11): it is reported as
    an interruption (exit 130), not as an internal error."""
    import sbts.core.tools.info as info_mod

    def interrupted(*args, **kwargs):
        class Descriptor:
            def __set_name__(self, owner, name):
                raise KeyboardInterrupt

        class Created:  # noqa: F841 - the class creation is what raises
            field = Descriptor()

    monkeypatch.setattr(info_mod, "describe", interrupted)
    res = _invoke("info", str(tmp_path / "x.h5"))
    assert res.exit_code == 130, res.output
    assert "interrupted" in res.output and "internal error" not in res.output
