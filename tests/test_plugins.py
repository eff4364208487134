"""The plugin registry, without installing packages: discovery, validation, isolation, CLI listing."""

from __future__ import annotations

import subprocess
import sys
import types
import warnings
from importlib import metadata as importlib_metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from sbts.core.errors import PluginError
from sbts.core.plugin.hookspecs import hookimpl
from sbts.core.plugin.interfaces import Correction, CorrectionResult, Exporter, Reader
from sbts.core.plugin.registry import PluginWarning, build_registry


# ----------------------------------------------------------------------------- small plugins
class _Reader(Reader):
    name = "fake"
    summary = "A fake reader.\nSecond line not shown."

    def detect(self, request):
        return False

    def open_stack(self, request):
        return None


class _Correction(Correction):
    name = "noop"
    suffix = "noop"

    def run(self, context):
        return CorrectionResult(context.input_file)


class _Exporter(Exporter):
    def __init__(self, name="fakeexp"):
        self.name = name

    def export(self, request):
        return []


class _Plugin:
    """A plugin object (pluggy accepts any object with marked hook methods)."""

    def __init__(self, readers=(), corrections=(), exporters=()):
        self._r, self._c, self._e = list(readers), list(corrections), list(exporters)

    @hookimpl
    def sbts_readers(self):
        return self._r

    @hookimpl
    def sbts_corrections(self):
        return self._c

    @hookimpl
    def sbts_exporters(self):
        return self._e


def _build(*plugins):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = build_registry(entry_points=[], extra_plugins=list(plugins))
    return reg, [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]


# ----------------------------------------------------------------------------- registry
def test_discovery_of_every_kind():
    reg, warned = _build(("a", _Plugin([_Reader()], [_Correction()], [_Exporter()])))
    assert not warned
    assert set(reg.readers) == {"fake"} and set(reg.corrections) == {"noop"} and set(reg.exporters) == {"fakeexp"}
    info = {(i.kind, i.name): i for i in reg.info}
    assert info[("reader", "fake")].plugin == "a"
    assert info[("reader", "fake")].summary == "A fake reader."
    assert reg.get("exporter", "fakeexp") is reg.exporters["fakeexp"]


def test_unknown_name_lists_what_exists():
    reg, _ = _build(("a", _Plugin(exporters=[_Exporter()])))
    with pytest.raises(PluginError, match="fakeexp"):
        reg.get("exporter", "kmz")


def test_item_missing_a_method_is_rejected():
    class NoExport:  # duck-typed, but incomplete
        name = "half"

    reg, warned = _build(("a", _Plugin(exporters=[NoExport(), _Exporter("good")])))
    assert set(reg.exporters) == {"good"}
    assert any("'a'" in w and "lacks method" in w and "export" in w for w in warned)


@pytest.mark.parametrize("bad", ["", "9lives", "two words", None])
def test_bad_names_are_rejected(bad):
    reg, warned = _build(("badname", _Plugin(exporters=[_Exporter(bad)])))
    assert not reg.exporters
    assert any("'badname'" in w and "valid 'name'" in w for w in warned)


def test_correction_with_unknown_stage_is_rejected():
    class Odd(_Correction):
        name = "odd"
        stage = "geometry"

    reg, warned = _build(("a", _Plugin(corrections=[Odd()])))
    assert "odd" not in reg.corrections
    assert any("stage" in w for w in warned)


def test_duplicate_names_keep_the_first():
    first, second = _Exporter("same"), _Exporter("same")
    reg, warned = _build(("one", _Plugin(exporters=[first])), ("two", _Plugin(exporters=[second])))
    assert reg.exporters["same"] is first
    assert any("'two'" in w and "already provided by plugin 'one'" in w for w in warned)


def test_duplicate_names_are_rejected_with_a_warning():
    reg, warned = _build(("one", _Plugin(exporters=[_Exporter("same")])), ("two", _Plugin(exporters=[_Exporter("same")])))
    assert list(reg.exporters) == ["same"]
    assert len([i for i in reg.info if i.name == "same"]) == 1
    assert any("exporter name 'same' is already provided by plugin" in w for w in warned)


def test_hook_that_raises_is_isolated():
    class Raising(_Plugin):
        @hookimpl
        def sbts_exporters(self):
            raise RuntimeError("boom")

    reg, warned = _build(("bad", Raising(readers=[_Reader()])), ("ok", _Plugin(exporters=[_Exporter()])))
    assert "fakeexp" in reg.exporters and "fake" in reg.readers
    assert "bad" in reg.broken and "boom" in reg.broken["bad"]
    assert any("'bad'" in w and "RuntimeError" in w for w in warned)


def test_misspelled_hook_is_rejected():
    module = types.ModuleType("sbts_typo")

    @hookimpl
    def sbts_reader():  # should be sbts_readers
        return [_Reader()]

    module.sbts_reader = sbts_reader
    reg, warned = _build(("typo", module), ("ok", _Plugin(exporters=[_Exporter()])))
    assert "fake" not in reg.readers and "fakeexp" in reg.exporters
    assert "typo" in reg.broken
    assert any("'typo'" in w and "sbts_reader" in w for w in warned)


def test_entry_point_that_fails_to_import_is_reported():
    ep = importlib_metadata.EntryPoint(name="ghost", value="sbts_no_such_module_xyz", group="sbts.plugins")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = build_registry(entry_points=[ep], extra_plugins=[("ok", _Plugin(exporters=[_Exporter()]))])
    assert "ghost" in reg.broken and "fakeexp" in reg.exporters
    assert any("'ghost'" in str(w.message) for w in caught)


def test_builtin_entry_points_are_discovered():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)  # readers being written elsewhere may be absent
        reg = build_registry()
    assert "deramp" in reg.corrections
    assert {"geotiff", "hdf5"} <= set(reg.exporters)
    info = {(i.kind, i.name): i for i in reg.info}
    for key, plugin in ((("correction", "deramp"), "correction-deramp"), (("exporter", "geotiff"), "exporter-geotiff"),
                        (("exporter", "hdf5"), "exporter-hdf5")):
        assert info[key].plugin == plugin
        assert info[key].package == "sbts"
        assert info[key].version == importlib_metadata.version("sbts")
    assert reg.exporters["geotiff"].requires_geocoded and not reg.exporters["hdf5"].requires_geocoded
    assert reg.corrections["deramp"].suffix == "ramp" and reg.corrections["deramp"].stage == "timeseries"


# ----------------------------------------------------------------------------- CLI
def test_help_imports_neither_gdal_nor_pyaps3():
    code = (
        "import sys\n"
        "from sbts.cli.main import cli\n"
        "try:\n"
        "    cli.main(['--help'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('MODULES', 'osgeo' in sys.modules, 'pyaps3' in sys.modules, 'sbts.plugins.exporters.geotiff' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(Path(__file__).parent))
    assert res.returncode == 0, res.stderr
    assert "MODULES False False False" in res.stdout
    assert "Commands" in res.stdout


def test_plugins_command_lists_builtins_by_kind():
    from sbts.cli.main import cli

    res = CliRunner().invoke(cli, ["plugins"])
    assert res.exit_code == 0, res.output
    out = res.output
    corrections, exporters = out.index("Corrections:"), out.index("Exporters:")
    assert out.index("Readers:") < corrections < exporters
    assert corrections < out.index("deramp") < exporters
    assert out.index("geotiff", exporters) > exporters and out.index("hdf5", exporters) > exporters
    deramp_line = next(line for line in out.splitlines() if line.strip().startswith("deramp"))
    assert "sbts" in deramp_line and importlib_metadata.version("sbts") in deramp_line


def test_correct_and_export_groups_list_the_plugins():
    from sbts.cli.main import cli

    res = CliRunner().invoke(cli, ["correct", "--help"])
    assert res.exit_code == 0 and "deramp" in res.output
    res = CliRunner().invoke(cli, ["export", "--help"])
    assert res.exit_code == 0 and "geotiff" in res.output and "hdf5" in res.output
    res = CliRunner().invoke(cli, ["export", "kmzz", "x.h5"])
    assert res.exit_code != 0 and "no exporter named 'kmzz'" in res.output
