"""Third-party plugins installed with pip extend sbts without any change to sbts.

The packages under ``tests/thirdparty/`` are built and installed with the current interpreter's pip
(``--no-deps --no-build-isolation``: setuptools from this environment, no network), then sbts is
run in a subprocess so its entry-point discovery sees them:

- ``sbts-toy`` adds the ``toy`` reader (auto-detected by ``sbts load``) and the ``toy-csv`` exporter;
- ``sbts-broken`` fails on import and ``sbts-misspelled`` implements ``sbts_reader``: both must be
  reported by name and skipped while everything else keeps working.

By default the packages go to a private ``--target`` folder put on ``PYTHONPATH`` of the
subprocesses, so the shared environment never sees the broken plugins (other test runs may be
going on in it, and a killed run would leave them installed).  ``SBTS_TEST_SITE_INSTALL=1``
installs into the interpreter's site-packages instead and uninstalls at teardown.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from sbts.core.io.products import write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata

HERE = Path(__file__).resolve().parents[2] / "thirdparty"
PACKAGES = {"sbts-toy": "sbts_toy", "sbts-broken": "sbts_broken", "sbts-misspelled": "sbts_misspelled"}
TOY_VERSION = "0.3.1"
SHAPE = (6, 8)
PAIRS = [("20200101", "20200113", 12.5), ("20200101", "20200125", -30.0), ("20200113", "20200125", -42.5)]


def _pip(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict:
    """Environment for sbts subprocesses that see the three test plugins."""
    root = tmp_path_factory.mktemp("thirdparty")
    sources = []
    for name in PACKAGES:  # build from copies: setuptools writes build/ and *.egg-info beside the sources
        shutil.copytree(HERE / name, root / name)
        sources.append(str(root / name))
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    site = os.environ.get("SBTS_TEST_SITE_INSTALL") == "1"
    base = ["install", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    if site:
        res = _pip(*base, *sources)
    else:
        target = root / "site"
        res = _pip(*base, "--target", str(target), *sources)
        env["PYTHONPATH"] = os.pathsep.join([str(target), *filter(None, [env.get("PYTHONPATH")])])
    if res.returncode != 0:
        pytest.fail(f"pip install of the test plugins failed:\n{res.stdout}\n{res.stderr}")
    try:
        yield env
    finally:
        if site:
            _pip("uninstall", "-y", *PACKAGES)


def _sbts(env: dict, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the sbts command line of this interpreter (its console script, else the same entry)."""
    script = Path(sys.executable).parent / ("sbts.exe" if os.name == "nt" else "sbts")
    cmd = [str(script)] if script.exists() else [sys.executable, "-c", "from sbts.cli.main import cli; cli()"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=180, env=env,
                          cwd=str(cwd) if cwd else None)


def _write_toy(folder: Path) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    lines = ["# sbts-toy", f"# WAVELENGTH=0.0555 LENGTH={SHAPE[0]} WIDTH={SHAPE[1]}"]
    grids = []
    for k, (d1, d2, bperp) in enumerate(PAIRS):
        phase = rng.normal(size=SHAPE).astype(np.float32)
        np.savetxt(folder / f"ifg_{k}.txt", phase, fmt="%.6f")
        np.savetxt(folder / f"cor_{k}.txt", np.full(SHAPE, 0.7), fmt="%.3f")
        grids.append(np.loadtxt(folder / f"ifg_{k}.txt", dtype=np.float32))
        lines.append(f"{d1} {d2} {bperp} ifg_{k}.txt cor_{k}.txt")
    (folder / "pairs.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return grids


def test_plugins_lists_third_party_with_package_and_version(plugin_env):
    res = _sbts(plugin_env, "plugins")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    toy = next(line for line in out.splitlines() if re.match(r"\s+toy\s", line))
    csv = next(line for line in out.splitlines() if re.match(r"\s+toy-csv\s", line))
    for line in (toy, csv):
        assert re.search(r"sbts[-_]toy", line) and TOY_VERSION in line
    assert out.index("Readers:") < out.index(toy) < out.index("Corrections:") < out.index("Exporters:") < out.index(csv)
    # built-ins unaffected
    assert re.search(r"^\s+deramp\s+sbts\s", out, re.M) and re.search(r"^\s+geotiff\s+sbts\s", out, re.M)


def test_broken_and_misspelled_plugins_are_reported_and_skipped(plugin_env):
    res = _sbts(plugin_env, "plugins")
    assert res.returncode == 0, res.stderr
    broken_section = res.stdout[res.stdout.index("Broken plugins"):]
    assert re.search(r"broken: import of sbts_broken failed: ImportError: .*not_installed_dependency", broken_section)
    assert re.search(r"misspelled: .*sbts_reader", broken_section)
    # the warnings name them too
    assert "'broken'" in res.stderr and "'misspelled'" in res.stderr


def test_load_auto_detects_the_toy_reader(plugin_env, tmp_path):
    grids = _write_toy(tmp_path / "toy")
    template = tmp_path / "project.txt"
    template.write_text("mintpy.load.processor = auto\nmintpy.load.unwFile = ./toy/pairs.txt\n", encoding="utf-8")
    res = _sbts(plugin_env, "load", str(template), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    stack = tmp_path / "inputs" / "ifgramStack.h5"
    assert str(stack) in res.stdout or "ifgramStack.h5" in res.stdout
    assert "toy" in res.stderr  # the reader used is logged
    with h5py.File(stack) as f:
        dates = [tuple(x.decode() for x in row) for row in f["date"][()]]
        assert dates == [(a, b) for a, b, _ in PAIRS]
        np.testing.assert_allclose(f["bperp"][()], [b for _, _, b in PAIRS])
        np.testing.assert_array_equal(f["unwrapPhase"][()], np.stack(grids))
        np.testing.assert_allclose(f["coherence"][()], 0.7, rtol=1e-6)
        attrs = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}
    assert attrs["PROCESSOR"] == "toy" and float(attrs["WAVELENGTH"]) == 0.0555
    assert (attrs["LENGTH"], attrs["WIDTH"]) == (str(SHAPE[0]), str(SHAPE[1]))


def test_export_with_the_toy_exporter(plugin_env, tmp_path):
    vel = np.arange(12, dtype=np.float32).reshape(3, 4) / 8
    meta = Metadata(Grid(3, 4, GeoGrid(10.0, 50.0, 0.1, -0.1)), unit="m/year")
    write_map(tmp_path / "velocity.h5", meta, "velocity", {"velocity": vel})
    res = _sbts(plugin_env, "export", "toy-csv", str(tmp_path / "velocity.h5"), "velocity",
                "-o", str(tmp_path / "v.csv"))
    assert res.returncode == 0, res.stderr
    assert str(tmp_path / "v.csv") in res.stdout
    np.testing.assert_allclose(np.loadtxt(tmp_path / "v.csv", delimiter=","), vel)
    # a built-in exporter keeps working beside the third-party ones
    res = _sbts(plugin_env, "export", "hdf5", str(tmp_path / "velocity.h5"), "-O", "yx=0:2,0:2")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "sub_velocity.h5").exists()


# ----------------------------------------------------------------------------- commands and switches
def test_help_lists_the_toy_command_without_importing_it(plugin_env):
    """`sbts --help` lists a package's command with its docstring's summary, and imports no plugin."""
    res = _sbts(plugin_env, "--help")
    assert res.returncode == 0, res.stderr
    section = res.stdout[res.stdout.index("Plugin commands:"):]
    assert re.search(r"toy-info\s+Count the pairs of a toy-format folder \(sbts plugin example\)\.", section)
    code = ("import sys\nfrom sbts.cli.main import cli\ntry:\n    cli.main(['--help'], standalone_mode=False)\n"
            "except SystemExit:\n    pass\nprint('IMPORTED', sorted(m for m in sys.modules if m.startswith('sbts_')))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=plugin_env)
    assert res.returncode == 0, res.stderr
    assert "toy-info" in res.stdout and "IMPORTED []" in res.stdout


def test_the_toy_command_runs(plugin_env, tmp_path):
    _write_toy(tmp_path / "toy")
    res = _sbts(plugin_env, "toy-info", str(tmp_path / "toy"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{len(PAIRS)} pairs"
    res = _sbts(plugin_env, "plugins")
    assert re.search(r"^\s+toy-info\s+sbts[-_]toy\s+0\.3\.1\s+sbts_toy\.commands:toy_info", res.stdout, re.M)


def test_autoload_switch_loads_no_installed_plugin(plugin_env, tmp_path):
    env = dict(plugin_env, SBTS_DISABLE_PLUGIN_AUTOLOAD="1")
    res = _sbts(env, "plugins")
    assert res.returncode == 0, res.stderr
    assert not re.search(r"^\s+toy", res.stdout, re.M) and "Broken plugins" not in res.stdout
    assert "'broken'" not in res.stderr and "'misspelled'" not in res.stderr  # not even imported
    assert "SBTS_DISABLE_PLUGIN_AUTOLOAD is set" in res.stdout
    assert re.search(r"^\s+geotiff\s+sbts\s", res.stdout, re.M)  # built-ins always load
    res = _sbts(env, "--help")
    assert "Plugin commands" not in res.stdout and "toy-info" not in res.stdout
    _write_toy(tmp_path / "toy")
    res = _sbts(env, "toy-info", str(tmp_path / "toy"))
    assert res.returncode == 2 and "No such command" in res.stderr


def test_disable_switch_names_plugins_or_packages(plugin_env):
    res = _sbts(dict(plugin_env, SBTS_DISABLE_PLUGINS="broken, misspelled"), "plugins")
    assert res.returncode == 0, res.stderr
    assert "Broken plugins" not in res.stdout and "'broken'" not in res.stderr
    assert "Disabled by SBTS_DISABLE_PLUGINS: broken, misspelled" in res.stdout
    assert re.search(r"^\s+toy\s", res.stdout, re.M)
    res = _sbts(dict(plugin_env, SBTS_DISABLE_PLUGINS="sbts-toy,reader-gamma"), "plugins")
    assert not re.search(r"^\s+toy", res.stdout, re.M) and not re.search(r"^\s+gamma\s", res.stdout, re.M)
    assert re.search(r"^\s+roipac\s+sbts\s", res.stdout, re.M)
    res = _sbts(dict(plugin_env, SBTS_DISABLE_PLUGINS="sbts-toy"), "--help")
    assert "toy-info" not in res.stdout
    res = _sbts(dict(plugin_env, SBTS_DISABLE_PLUGINS="toy-info"), "plugins")  # a command by its name
    assert "toy-info" not in res.stdout and "no installed plugin" not in res.stderr
    assert re.search(r"^\s+toy\s", res.stdout, re.M)
    res = _sbts(dict(plugin_env, SBTS_DISABLE_PLUGINS="no-such-plugin"), "plugins")
    assert "SBTS_DISABLE_PLUGINS names 'no-such-plugin', which is no installed plugin" in res.stderr


def test_run_puts_the_toy_correction_in_the_slot_it_declares(plugin_env, tmp_path):
    """A correction installed from another package is a step of `sbts run`: it declares its slot (right
    after deramp), so it reads deramp's output and the DEM-error step reads its own."""
    from sbts.core.demo.run import write_synthetic
    from sbts.core.io.products import TimeSeries

    write_synthetic(tmp_path / "synthetic", seed=1, shape=(40, 50), num_date=12)
    (tmp_path / "sbts.cfg").write_text(
        "mintpy.load.processor = mintpy\nmintpy.load.unwFile = synthetic/ifgramStack.h5\n"
        "mintpy.load.demFile = synthetic/geometryGeo.h5\nmintpy.networkInversion.minNumPixel = 10\n"
        "mintpy.deramp = linear\nmintpy.save.kmz = no\nmintpy.reference.date = no\n"
        "sbts.run.extraCorrections = toyshift\n", encoding="utf-8")
    res = _sbts(plugin_env, "run", str(tmp_path / "sbts.cfg"), "--end", "velocity")
    assert res.returncode == 0, res.stderr[-3000:]
    order = [line.split()[0] for line in res.stdout.splitlines() if line.strip()]
    assert order.index("deramp") + 1 == order.index("correct_toyshift") == order.index("correct_topography") - 1
    status = dict(line.split()[:2] for line in res.stdout.splitlines() if line.strip())
    assert status["correct_toyshift"] == "ran" and status["correct_topography"] == "ran"
    ramp = TimeSeries(tmp_path / "timeseries_ramp.h5").read_dates()
    toy = TimeSeries(tmp_path / "timeseries_ramp_toy.h5").read_dates()
    np.testing.assert_allclose(ramp - toy, 0.001, atol=1e-7)
    assert (tmp_path / "timeseries_ramp_toy_demErr.h5").exists() and not (tmp_path / "timeseries_ramp_demErr.h5").exists()
    with h5py.File(tmp_path / "timeseries_ramp_toy.h5") as f:  # provenance without the plugin doing anything
        assert '"step": "correct_toyshift"' in f.attrs["SBTS_PROVENANCE"]
    again = _sbts(plugin_env, "run", str(tmp_path / "sbts.cfg"), "--end", "velocity")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {line.split()[1] for line in again.stdout.splitlines() if line.strip()} <= {"skipped", "disabled"}
