"""Names built from data, and hostile plugins.

*Names from data*: a file name made of an attribute (``PLATFORM``), a template key or an option
must stay inside its folder whatever the value (``../../x``, ``a/b``, ``..``).
*Hostile plugins*: a plugin that calls ``sys.exit()`` at import or in a hook, raises from a
property, or declares a path as its file suffix must be reported by name and skipped, the rest of
sbts working; only Ctrl-C (``KeyboardInterrupt``) goes through.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import h5py
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.rcase(area="names from data")

HOSTILE = ["../../x", "../escape", "a/b", "..", "/tmp/abs", "x\\..\\y", " ", "s1\x00", "IW/../.."]
UNAVCO = ["-O", "relative_orbit=128", "-O", "first_frame=593", "-O", "beam_mode=IW"]


def _outside(root: Path, before: set[Path]) -> list[Path]:
    """Files created anywhere under ``root``'s parent folders that are not inside ``root``."""
    found = []
    for top in (root.parent, root.parent.parent):
        for p in top.rglob("*.he5"):
            if root not in p.parents and p not in before:
                found.append(p)
    return found


# =========================================================================== HDF-EOS5 name from mission/PLATFORM
@pytest.mark.parametrize("value", ["../../x", "../escape", "a/b", "IW/../.."])
@pytest.mark.parametrize("source", ["option", "template", "attribute"])
@pytest.mark.rcase(input="HDF-EOS5 export: mission / PLATFORM = VALUE from an option, a template key or the file",
                   expected="ok: the .he5 is written inside the output folder under a sanitised name")
def test_he5_name_from_data(rel, project, value, source, note):
    work = project.parent
    out = work / "out"
    out.mkdir()
    before = set(work.parent.parent.rglob("*.he5"))
    args = ["export", "hdfeos5", work / "timeseries.h5", *UNAVCO, "-o", out]
    if source == "option":
        args += ["-O", f"mission={value}"]
    elif source == "template":
        tmpl = work / "he5.cfg"
        tmpl.write_text(f"mintpy.save.hdfEos5.mission = {value}\n")
        args += ["-O", f"template={tmpl}"]
    else:
        with h5py.File(work / "timeseries.h5", "r+") as f:
            f.attrs["PLATFORM"] = value
    res = rel.cli(*args)
    assert res.code == 0, res.out
    written = list(out.glob("*.he5"))
    assert len(written) == 1, (written, res.out)
    assert not _outside(out, before), _outside(out, before)
    assert "/" not in written[0].name and not written[0].name.startswith(".")
    note(observed=f"ok: {written[0].name}")


@pytest.mark.rcase(input="HDF-EOS5 export with -O beam_mode = ../../../../x", expected="ok: inside the folder")
def test_he5_beam_from_option(rel, project, note):
    out = project.parent / "out"
    out.mkdir()
    args = [a for a in UNAVCO if not a.startswith("beam_mode")][:-1]
    res = rel.cli("export", "hdfeos5", project.parent / "timeseries.h5", *args, "-O", "beam_mode=../../../../x", "-o", out)
    assert res.code == 0, res.out
    (written,) = out.glob("*.he5")
    assert not _outside(out, set()), _outside(out, set())
    note(observed=f"ok: {written.name}")


@pytest.mark.rcase(input="HDF-EOS5 export with -O beam_swath = ../../../../x (a number in MintPy's files)",
                   expected="clean error naming beam_swath; nothing written")
def test_he5_beam_swath_not_a_number(rel, project, note):
    out = project.parent / "out"
    out.mkdir()
    res = rel.cli("export", "hdfeos5", project.parent / "timeseries.h5", *UNAVCO, "-O", "beam_swath=../../../../x",
                  "-o", out)
    note(observed=rel.assert_clean_error(res, "beam_swath"))
    assert not list(out.iterdir()) and not _outside(out, set())


@pytest.mark.rcase(input="HDF-EOS5 export: mission = '///' (nothing usable in a name)",
                   expected="clean error naming the mission")
def test_he5_mission_unusable(rel, project, note):
    res = rel.cli("export", "hdfeos5", project.parent / "timeseries.h5", *UNAVCO, "-O", "mission=///")
    note(observed=rel.assert_clean_error(res, "mission"))


@pytest.mark.rcase(input="safe_part on arbitrary text (hypothesis)",
                   expected="one path component inside the folder, or InputError; never '..' or a separator")
@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80))
def test_safe_part_property(text):
    from sbts.core.errors import InputError
    from sbts.core.io.safenames import safe_part

    try:
        part = safe_part(text)
    except InputError:
        return
    assert part and part not in (".", "..") and "/" not in part and "\\" not in part and "\x00" not in part
    assert not part.startswith(".")
    root = Path("/out/folder")
    assert (root / part).resolve().parent == root


@pytest.mark.rcase(input="mask dataset name holding '/' (a nested HDF5 path) used for the default mask name",
                   expected="ok: mask_<safe>.h5 in the file's folder")
def test_mask_name_from_nested_dataset(rel, project, note):
    work = project.parent
    src = work / "nested.h5"
    with h5py.File(work / "temporalCoherence.h5") as f, h5py.File(src, "w") as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v
        g["temporalCoherence"] = f["temporalCoherence"][()]
    from sbts.core.io.products import Product
    from sbts.core.tools.masks import _default_output

    out = _default_output(Product.open(src), "../../evil", False)
    assert out.parent == work and "/" not in out.name and ".." not in out.name
    note(observed=f"ok: {out.name}")


@pytest.mark.rcase(input="mintpy.troposphericDelay.weatherModel = ../../x (sbts correct pyaps)",
                   expected="clean error naming weatherModel; nothing written outside the folder")
def test_weather_model_name(rel, project, note):
    res = rel.cli("correct", "pyaps", project, "-s", "mintpy.troposphericDelay.weatherModel=../../x")
    note(observed=rel.assert_clean_error(res, "weatherModel"))
    assert not list(project.parent.parent.glob("*.h5"))


# =========================================================================== hostile plugins
def _fake_dist(site: Path, module: str, code: str, entry: str = "", group: str = "sbts.plugins",
               name: str = "") -> None:
    """An installed-looking distribution (dist-info with entry points) in ``site``."""
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{module}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name or module} = {entry or module}\n")


def _run_with(site: Path, *args, timeout=60):
    env = dict(os.environ, PYTHONPATH=str(site) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "sbts", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout + p.stderr


EXIT_AT_IMPORT = "import sys\nsys.exit(0)\n"
EXIT_IN_HOOK = """
import sys
from sbts.core.api import hookimpl

@hookimpl
def sbts_exporters():
    sys.exit(3)
"""
EXIT_COMMAND = '''
import sys

sys.exit("bye")


def hostile():
    """Does hostile things to your files.

    Never imported by `sbts --help`.
    """
'''
RAISING_NAME = """
from sbts.core.api import Exporter, hookimpl

class Evil(Exporter):
    @property
    def name(self):
        raise SystemExit(5)

    def export(self, request):
        return []

@hookimpl
def sbts_exporters():
    return [Evil()]
"""
PATH_SUFFIX = """
from sbts.core.api import Correction, CorrectionResult, hookimpl

class Escape(Correction):
    name = "escape"
    suffix = "../../../pwned"

    def run(self, context):
        return CorrectionResult(context.output_file)

@hookimpl
def sbts_corrections():
    return [Escape()]
"""


@pytest.mark.parametrize("code, needle", [(EXIT_AT_IMPORT, "sys.exit"), (EXIT_IN_HOOK, "sys.exit(3)"),
                                          (RAISING_NAME, "sys.exit(5)"), (PATH_SUFFIX, "suffix")],
                         ids=["exit-at-import", "exit-in-hook", "raising-name", "path-suffix"])
@pytest.mark.rcase(area="hostile plugin", input="an installed plugin (entry point) that exits or is malformed; "
                   "`sbts plugins` and `sbts info` as subprocesses",
                   expected="ok: a warning naming the plugin, built-ins listed, other commands unaffected, exit 0")
def test_installed_hostile_plugin(tmp_path, project, code, needle, note):
    site = tmp_path / "site"
    site.mkdir()
    _fake_dist(site, "hostile_plugin", code)
    rc, out = _run_with(site, "plugins")
    assert rc == 0, out
    assert "hostile_plugin" in out and needle in out, out
    assert "geotiff" in out and "isce" in out, out  # the built-ins are still there
    rc, out2 = _run_with(site, "info", project.parent / "timeseries.h5")
    assert rc == 0 and "timeseries" in out2, out2
    rc, out3 = _run_with(site, "export", "geotiff", "--help")
    assert rc == 0, out3
    note(observed="ok: " + next(ln for ln in out.splitlines() if "hostile_plugin" in ln)[:150])


@pytest.mark.rcase(area="hostile plugin", input="a command (sbts.commands entry point) whose module calls sys.exit() "
                   "at import; `sbts --help`, `sbts hostile`, `sbts nosuchcommand`",
                   expected="--help lists it from its docstring without importing it; running it is one error "
                   "naming it and its package (exit 1); an unknown command a usage error")
def test_command_that_exits_at_import(tmp_path, note):
    site = tmp_path / "site"
    site.mkdir()
    _fake_dist(site, "hostile_cmd", EXIT_COMMAND, entry="hostile_cmd:hostile", group="sbts.commands", name="hostile")
    rc, out = _run_with(site, "--help")
    assert rc == 0 and "Plugin commands" in out, out
    assert re.search(r"hostile\s+Does hostile things to your files\.", out), out
    rc, out = _run_with(site, "hostile")
    assert rc == 1 and "'hostile' of hostile_cmd 1.0 could not be loaded" in out and "sys.exit(bye)" in out, out
    assert "Traceback" not in out
    rc, out2 = _run_with(site, "nosuchcommand")
    assert rc == 2 and "No such command" in out2, out2
    note(observed="ok: " + out.strip().splitlines()[-1][:150])


@pytest.mark.rcase(area="hostile plugin", input="a plugin raising KeyboardInterrupt at import",
                   expected="the interrupt goes through (Ctrl-C must stop sbts)")
def test_keyboard_interrupt_not_contained():
    from sbts.core.plugin.registry import build_registry

    class EP:
        name, value, dist = "ki", "ki:x", None

        def load(self):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_registry(entry_points=[EP()])


def _registry_with(item, kind: str):
    from sbts.core.plugin.hookspecs import hookimpl
    from sbts.core.plugin.registry import build_registry

    class P:
        pass

    setattr(P, f"sbts_{kind}s", hookimpl(lambda self: [item]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = build_registry(extra_plugins=[("hostile", P())])
    return reg, [str(w.message) for w in caught]


@pytest.mark.rcase(area="hostile plugin", input="a reader whose detect() calls sys.exit(), then `sbts load` (auto)",
                   expected="the reader named in a warning, the other readers tried: the stack loads")
def test_reader_detect_exits(rel, tmp_path):
    from sbts.core.config.template import Template
    from sbts.core.plugin.interfaces import Reader
    from sbts.core.steps.load import load_data

    class Exits(Reader):
        name = "aaa_exits"

        def detect(self, request):
            raise SystemExit(0)

        def open_stack(self, request):
            return None

    reg, _ = _registry_with(Exits(), "reader")
    cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
    t = Template.read(cfg).updated({"mintpy.load.processor": "auto"})
    result = load_data(t, cfg.parent, registry=reg)
    assert result.reader == "mintpy" and result.stack_file.exists()


@pytest.mark.parametrize("what", ["open_stack", "read"])
@pytest.mark.rcase(area="hostile plugin", input="a reader that calls sys.exit() in open_stack / in a raster read",
                   expected="PluginError naming the reader (exit status 1, not the plugin's), nothing written")
def test_reader_exits_while_loading(rel, tmp_path, what):
    import numpy as np

    from sbts.core.config.template import Template
    from sbts.core.errors import PluginError
    from sbts.core.model.metadata import Grid, Metadata
    from sbts.core.plugin.interfaces import PairSource, Reader, StackSource
    from sbts.core.steps.load import load_data

    class ExitRaster:
        shape, dtype = (8, 9), np.dtype(np.float32)

        def read(self, block=None):
            raise SystemExit(0)

    class Exits(Reader):
        name = "exits"

        def detect(self, request):
            return True

        def open_stack(self, request):
            if what == "open_stack":
                raise SystemExit(0)
            import datetime as dt

            pair = PairSource(dt.date(2020, 1, 1), dt.date(2020, 2, 1), {"unwrapPhase": ExitRaster()}, 0.0)
            return StackSource([pair], Metadata(Grid(8, 9), extra={"WAVELENGTH": "0.05"}))

    reg, _ = _registry_with(Exits(), "reader")
    (tmp_path / "a.x").write_text("x")
    t = Template({"mintpy.load.processor": "exits", "mintpy.load.unwFile": str(tmp_path / "*.x")}, warn_unknown=False)
    with pytest.raises(PluginError, match="exits"):
        load_data(t, tmp_path / "w", registry=reg)
    assert not (tmp_path / "w/inputs/ifgramStack.h5").exists()


@pytest.mark.parametrize("kind", ["correction", "exporter"])
@pytest.mark.rcase(area="hostile plugin", input="a correction / exporter whose run/export calls sys.exit(0)",
                   expected="PluginError naming it (not a silent exit 0)")
def test_correction_exporter_exit(project, kind):
    from sbts.core.config.template import Template
    from sbts.core.errors import PluginError
    from sbts.core.plugin.interfaces import Correction, Exporter
    from sbts.core.plugin.runners import export, run_correction

    class C(Correction):
        name, suffix = "exits", "ex"

        def run(self, context):
            sys.exit(0)

    class E(Exporter):
        name = "exits"

        def export(self, request):
            sys.exit(0)

    reg, _ = _registry_with(C() if kind == "correction" else E(), kind)
    with pytest.raises(PluginError, match="'exits'.*sys.exit"):
        if kind == "correction":
            run_correction("exits", Template(), project.parent, registry=reg)
        else:
            export("exits", project.parent / "velocity.h5" if (project.parent / "velocity.h5").exists()
                   else project.parent / "temporalCoherence.h5", registry=reg)


@pytest.mark.parametrize("name", ["x" * 1000, "../x", "a/b"])
@pytest.mark.rcase(area="hostile plugin", input="an exporter with a 1000-character name / a path as its name",
                   expected="skipped with a warning, the message short")
def test_absurd_plugin_names(name):
    from sbts.core.plugin.interfaces import Exporter

    class E(Exporter):
        def export(self, request):
            return []

    e = E()
    e.name = name
    reg, warned = _registry_with(e, "exporter")
    assert name not in reg.exporters
    assert any("hostile" in w and len(w) < 400 for w in warned), warned


@pytest.mark.rcase(area="hostile plugin", input="an exporter whose summary is a number, or whose hook returns one "
                   "object instead of a list", expected="ok: listed (summary empty) / the object taken as one item")
def test_odd_but_usable_plugin():
    from sbts.core.plugin.interfaces import Exporter

    class E(Exporter):
        name = "oddsummary"
        summary = 42

        def export(self, request):
            return []

    reg, warned = _registry_with(E(), "exporter")
    assert "oddsummary" in reg.exporters, warned
    info = next(i for i in reg.info if i.name == "oddsummary")
    assert info.summary == ""
