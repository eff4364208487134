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

from sbts.core.errors import InputError, PluginError
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
        reg = build_registry(entry_points=[], extra_plugins=list(plugins), builtins=False)
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


def test_builtins_are_registered_by_module_path_without_entry_points():
    """A source checkout works without re-installing: no entry point is needed for a built-in."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = build_registry(entry_points=[])
    assert not [w for w in caught if issubclass(w.category, PluginWarning)]
    from sbts.plugins import BUILTIN

    assert {i.plugin for i in reg.info} == set(BUILTIN)
    assert "deramp" in reg.corrections
    assert {"geotiff", "hdf5"} <= set(reg.exporters)
    assert set(reg.readers) == {"mintpy", "gamma", "roipac", "geotiff", "isce", "aria", "snap", "hyp3"}
    info = {(i.kind, i.name): i for i in reg.info}
    for key, plugin in ((("correction", "deramp"), "correction-deramp"), (("exporter", "geotiff"), "exporter-geotiff"),
                        (("exporter", "hdf5"), "exporter-hdf5")):
        assert info[key].plugin == plugin
        assert info[key].package == "sbts"
        assert info[key].version == importlib_metadata.version("sbts")
    assert reg.exporters["geotiff"].requires_geocoded and not reg.exporters["hdf5"].requires_geocoded
    assert reg.corrections["deramp"].suffix == "ramp" and reg.corrections["deramp"].stage == "timeseries"


class _Dist:
    def __init__(self, name, version="1.0"):
        self.name, self.version = name, version


class _EP:
    """An installed entry point (what importlib.metadata gives), loading a given object."""

    def __init__(self, name, value, obj=None, dist="thirdparty"):
        self.name, self.value, self.dist, self._obj = name, value, _Dist(dist), obj
        self.loaded = False

    def load(self):
        self.loaded = True
        return self._obj


def _build_with(entry_points, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = build_registry(entry_points=entry_points, **kwargs)
    return reg, [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]


def test_an_entry_point_cannot_shadow_a_builtin():
    by_name = _EP("reader-gamma", "evil_pkg", _Plugin(readers=[_Reader()]))
    by_item = _EP("evil", "evil_pkg2", _Plugin(exporters=[_Exporter("geotiff")]))
    reg, warned = _build_with([by_name, by_item])
    assert not by_name.loaded  # not even imported
    assert any("'reader-gamma'" in w and "the name of a built-in plugin" in w for w in warned)
    assert "fake" not in reg.readers and type(reg.readers["gamma"]).__module__ == "sbts.plugins.readers.gamma"
    assert any("'evil'" in w and "exporter name 'geotiff' is already provided by plugin 'exporter-geotiff'" in w
               for w in warned)
    assert type(reg.exporters["geotiff"]).__module__ == "sbts.plugins.exporters.geotiff"


def test_stale_entry_points_of_sbts_itself_are_ignored_quietly():
    """An older install declared the built-ins as entry points; its metadata may linger."""
    stale = [_EP("reader-gamma", "sbts.plugins.readers.gamma", None, dist="sbts"),
             _EP("exporter-kmz", "sbts.plugins.exporters.kmz", None, dist="other-name")]
    reg, warned = _build_with(stale)
    assert not warned and not any(ep.loaded for ep in stale)
    assert [i.plugin for i in reg.info].count("reader-gamma") == 1


def test_two_packages_with_one_plugin_name_keep_the_first():
    first = _EP("same", "pkg_a", _Plugin(exporters=[_Exporter("from_a")]), dist="pkg-a")
    second = _EP("same", "pkg_b", _Plugin(exporters=[_Exporter("from_b")]), dist="pkg-b")
    reg, warned = _build_with([first, second])
    assert "from_a" in reg.exporters and "from_b" not in reg.exporters
    assert any("'same'" in w and "another plugin named 'same' is loaded already" in w for w in warned)


def test_autoload_switch(monkeypatch):
    from sbts.core.plugin import discovery

    ep = _EP("third", "third_pkg", _Plugin(exporters=[_Exporter("third")]))
    monkeypatch.setattr(discovery.importlib_metadata, "entry_points", lambda group: [ep] if group == "sbts.plugins" else [])
    reg, _ = _build_with(None)
    assert "third" in reg.exporters
    for value in ("1", "yes", "true"):
        monkeypatch.setenv("SBTS_DISABLE_PLUGIN_AUTOLOAD", value)
        ep.loaded = False
        reg, _ = _build_with(None)
        assert "third" not in reg.exporters and not ep.loaded and "geotiff" in reg.exporters
    monkeypatch.setenv("SBTS_DISABLE_PLUGIN_AUTOLOAD", "0")
    reg, _ = _build_with(None)
    assert "third" in reg.exporters


def test_disable_switch(monkeypatch):
    ep = _EP("third", "third_pkg", _Plugin(exporters=[_Exporter("third")]), dist="third-party_pkg")
    monkeypatch.setenv("SBTS_DISABLE_PLUGINS", "reader-gamma, third")
    reg, warned = _build_with([ep])
    assert not warned and "gamma" not in reg.readers and "third" not in reg.exporters and not ep.loaded
    assert reg.disabled == ["reader-gamma", "third"] and "roipac" in reg.readers
    monkeypatch.setenv("SBTS_DISABLE_PLUGINS", "Third_Party.pkg")  # a distribution, any spelling of its name
    reg, warned = _build_with([ep])
    assert "third" not in reg.exporters and not warned
    monkeypatch.setenv("SBTS_DISABLE_PLUGINS", "sbts")  # a distribution name disables third parties only
    reg, warned = _build_with([])
    assert "gamma" in reg.readers and any("'sbts'" in w and "no installed plugin" in w for w in warned)
    monkeypatch.setenv("SBTS_DISABLE_PLUGINS", "nosuch")
    reg, warned = _build_with([])
    assert any("SBTS_DISABLE_PLUGINS names 'nosuch', which is no installed plugin" in w for w in warned)


def test_a_commands_hook_is_refused_with_the_way_to_declare_commands():
    module = types.ModuleType("sbts_oldstyle")
    module.sbts_commands = hookimpl(lambda: [])
    reg, warned = _build(("oldstyle", module))
    assert "oldstyle" in reg.broken and "'sbts.commands' entry-point group" in reg.broken["oldstyle"]


def test_correction_options_must_be_lower_case_names():
    class Opt(_Correction):
        name = "opt"
        options = {"Kind": "bad"}

    reg, warned = _build(("a", _Plugin(corrections=[Opt()])))
    assert "opt" not in reg.corrections and any("'options'" in w for w in warned)


# ----------------------------------------------------------------------------- reader detection
class _Sure(_Reader):
    def __init__(self, name, answer):
        self.name, self.answer = name, answer

    def detect(self, request):
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def _request(tmp_path):
    from sbts.core.config.template import Template
    from sbts.core.steps.load import build_request

    (tmp_path / "a.unw").write_bytes(b"\0" * 16)
    return build_request(Template({"mintpy.load.unwFile": str(tmp_path / "*.unw")}), tmp_path)


def _detect(tmp_path, *readers):
    from sbts.core.plugin.registry import detect_reader

    reg, _ = _build(("a", _Plugin(readers=list(readers))))
    return detect_reader(_request(tmp_path), reg).name


def test_the_surest_reader_wins(tmp_path):
    from sbts.core.plugin.interfaces import Confidence

    assert _detect(tmp_path, _Sure("generic", Confidence.GENERIC), _Sure("specific", 2), _Sure("no", 0)) == "specific"
    assert _detect(tmp_path, _Sure("generic", 1), _Sure("no", False)) == "generic"
    assert _detect(tmp_path, _Sure("yes", True), _Sure("no", None)) == "yes"  # bool: the old contract, True = 1


def test_a_tie_is_refused_naming_the_readers(tmp_path):
    with pytest.raises(InputError, match=r"readers aaa, bbb all recognise the files .*\(specific match\): "
                       r"set mintpy.load.processor"):
        _detect(tmp_path, _Sure("bbb", 2), _Sure("aaa", 2), _Sure("ccc", 1))
    with pytest.raises(InputError, match=r"readers aaa, bbb .*\(generic match\)"):
        _detect(tmp_path, _Sure("bbb", 1), _Sure("aaa", 1))


def test_nothing_recognised_lists_the_readers(tmp_path):
    with pytest.raises(InputError, match=r"no reader recognises .* set mintpy.load.processor \(one of: "
                       r"aaa, bbb\)"):
        _detect(tmp_path, _Sure("aaa", 0), _Sure("bbb", False))


def test_a_failing_or_odd_detect_is_named_and_counts_as_no(tmp_path, caplog):
    readers = (_Sure("boom", RuntimeError("kaput")), _Sure("exits", SystemExit(3)), _Sure("odd", 7),
               _Sure("unsure", InputError("cannot read the header")), _Sure("ok", 1))
    with caplog.at_level("WARNING"):
        assert _detect(tmp_path, *readers) == "ok"
    text = caplog.text
    assert "reader 'boom' detecting the format failed: RuntimeError: kaput" in text
    assert "reader 'exits' detecting the format stopped: it called sys.exit(3)" in text
    assert "reader 'odd': detect() returned '7'" in text
    assert "unsure" not in text  # a reader that looked and could not tell is not a broken plugin


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
                         cwd=str(Path(__file__).resolve().parents[2]))
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
