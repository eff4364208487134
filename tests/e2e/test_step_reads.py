"""Every file a step of ``sbts run`` reads is one it declares, so that a changed file runs it again.

``sbts run`` skips a step whose options and declared inputs are as when it last ran.  A file a
step reads without declaring it (a mask, the geometry) can change — a user's own waterMask.h5, a
geometry loaded again from a corrected DEM — and the step would be skipped with results made from
the old file.  So the whole workflow runs here with every file opening traced (Python's ``open``,
``h5py.File``, GDAL, ``numpy.fromfile``/``memmap``), on a radar-coded ISCE stack with MintPy's
corrections switched on, on a GAMMA one (its lookup table is another file) and on a geocoded HyP3
stack, and each step's reads in the work directory must be among its declared inputs or its own
outputs.  Then the consequence, as users meet it: a replaced waterMask.h5 runs the inversion again,
and a geometry with other incidence angles runs the DEM-error fit again.
"""

from __future__ import annotations

import builtins
import io
import os
from pathlib import Path

import checks
import h5py
import numpy as np
import pytest
from checks import sbts, statuses, writer

pytest.importorskip("osgeo.gdal")

CORRECTIONS = checks.CORRECTIONS + "mintpy.unwrapError.method = bridging\n"  # and the stack's correction

#: reads no declaration covers, and why
UNDECLARED = {
    # the load record is written with the stack and changes only with it (the appended pairs)
    "inputs/ifgramStack_load.json": "part of the stack",
    # the template as used, which the exporters read for metadata keys: its values are the options
    "inputs/sbts_template_used.cfg": "the options",
    # MintPy's excludeDate = auto: the dates the residual_RMS step of the run before listed; declared,
    # every run after a changed list would fit the DEM error again (a cycle MintPy leaves too)
    "exclude_date.txt": "the previous run's list",
}


class Tracer:
    """Files opened for reading, by the step that runs (``current``)."""

    def __init__(self, monkeypatch):
        self.current: str | None = None
        self.reads: dict[str, set[Path]] = {}
        from osgeo import gdal

        real_open, real_h5 = builtins.open, h5py.File.__init__
        real_gdal, real_gdal_ex = gdal.Open, gdal.OpenEx
        real_fromfile, real_memmap = np.fromfile, np.memmap.__new__

        def t_open(file, mode="r", *a, **k):
            if isinstance(file, (str, os.PathLike)) and "r" in mode and "+" not in mode:
                self.note(file)
            return real_open(file, mode, *a, **k)

        def t_h5(obj, name, mode="r", *a, **k):
            if isinstance(name, (str, os.PathLike)) and mode in ("r", "r+", "a"):
                self.note(name)
            return real_h5(obj, name, mode, *a, **k)

        def t_gdal(path, *a):
            self.note(path)
            return real_gdal(path, *a)

        def t_gdal_ex(path, *a, **k):
            self.note(path)
            return real_gdal_ex(path, *a, **k)

        def t_fromfile(file, *a, **k):
            if isinstance(file, (str, os.PathLike)):
                self.note(file)
            return real_fromfile(file, *a, **k)

        def t_memmap(cls, filename, *a, **k):
            if isinstance(filename, (str, os.PathLike)):
                self.note(filename)
            return real_memmap(cls, filename, *a, **k)

        monkeypatch.setattr(builtins, "open", t_open)
        monkeypatch.setattr(io, "open", t_open)
        monkeypatch.setattr(h5py.File, "__init__", t_h5)
        monkeypatch.setattr(gdal, "Open", t_gdal)
        monkeypatch.setattr(gdal, "OpenEx", t_gdal_ex)
        monkeypatch.setattr(np, "fromfile", t_fromfile)
        monkeypatch.setattr(np.memmap, "__new__", t_memmap)

    def note(self, path) -> None:
        if self.current is not None:
            self.reads.setdefault(self.current, set()).add(Path(os.fspath(path)).resolve())


@pytest.mark.parametrize(("fmt", "extra"), [
    ("isce_tops", CORRECTIONS),  # radar-coded, latitude/longitude layers
    ("gamma_radar", CORRECTIONS.replace("bridging", "phase_closure")),  # the lookup table in geometryGeo.h5
    ("hyp3", "mintpy.deramp = linear\n"),  # geocoded
])
def test_every_file_a_step_reads_is_declared(fmt, extra, tmp_path, monkeypatch):
    from sbts.core.demo.synthetic import make_synthetic_stack
    from sbts.core.workflow import runner

    template = Path(writer(fmt).write(tmp_path / fmt, make_synthetic_stack(shape=(40, 48), num_date=8, seed=3)))
    # one process: the reads of pool workers would not reach the tracer
    template.write_text(template.read_text() + "\nmintpy.plot = no\nmintpy.compute.numWorker = 1\n" + extra)
    work = template.parent.resolve()
    tracer = Tracer(monkeypatch)
    declared: dict[str, set[Path]] = {}
    real_run_step = runner._run_step

    def traced(ctx, step, state, force):
        tracer.current = step.name
        try:
            report = real_run_step(ctx, step, state, force)
        finally:
            tracer.current = None
        if report.status == "ran":
            own = [*step.inputs(ctx), *step.outputs(ctx), *report.outputs]
            declared[step.name] = {Path(p).resolve() for p in own}
        return report

    monkeypatch.setattr(runner, "_run_step", traced)
    reports = runner.run_workflow(template, work_dir=work, plot=False)
    ran = {r.name for r in reports if r.status == "ran"}
    assert {"invert_network", "correct_topography", "deramp", "velocity", "google_earth"} <= ran, ran
    undeclared = {}
    for name in ran - {"load_data"}:  # load_data checks the processor's files itself (its stale check)
        extra_reads = sorted(str(p.relative_to(work)) for p in tracer.reads.get(name, ())
                             if p.is_relative_to(work) and p.is_file() and p not in declared[name]
                             and str(p.relative_to(work)) not in UNDECLARED)
        if extra_reads:
            undeclared[name] = extra_reads
    assert not undeclared, undeclared
    # and what is declared does not change by itself: a second run has nothing to do
    again = {r.name: r.status for r in runner.run_workflow(template, work_dir=work, plot=False)}
    assert set(again.values()) <= {"skipped", "disabled"}, again


def _run(template: Path) -> dict[str, str]:
    code, out = sbts("run", template)
    assert code == 0, out[-3000:]
    return statuses(out)


def test_a_replaced_water_mask_runs_the_inversion_again(tmp_path):
    """A user's own waterMask.h5 (written as MintPy's generate_mask.py writes one: a new file) in
    place of the one sbts wrote: the inversion and the steps after it run again and the masked
    pixels are left out, as in a fresh run with that mask."""
    from sbts.core.demo.synthetic import make_synthetic_stack

    template = Path(writer("isce_tops").write(tmp_path / "isce", make_synthetic_stack(shape=(40, 48), num_date=6,
                                                                                      seed=3)))
    template.write_text(template.read_text() + "\nmintpy.plot = no\n")
    work = template.parent
    _run(template)
    with h5py.File(work / "waterMask.h5", "r") as f:
        water, attrs = f["waterMask"][()], {k: v for k, v in f.attrs.items() if not k.startswith("SBTS")}
    assert water.all() or water.mean() > 0.5
    water = water.copy()
    water[:, :10] = False  # the user masks the first ten columns
    with h5py.File(work / "waterMask.h5", "w") as f:
        f["waterMask"] = water
        f.attrs.update(attrs)
    ran = _run(template)
    assert ran["invert_network"] == "ran" and ran["velocity"] == "ran", ran
    assert ran["load_data"] == "skipped", ran
    with h5py.File(work / "timeseries.h5", "r") as f:
        ts = f["timeseries"][()]
    assert np.all(np.isnan(ts[:, :, :10]) | (ts[:, :, :10] == 0))  # left out, as MintPy leaves them (0)
    assert np.count_nonzero(ts[-1][:, 10:]) > 0.5 * ts[-1][:, 10:].size
    assert all(s in ("skipped", "disabled") for s in _run(template).values())  # and it is kept


def test_a_geometry_with_other_angles_runs_the_dem_error_fit_again(tmp_path):
    """The processor's geometry written again with other incidence angles (a corrected geometry),
    the interferograms unchanged: the load writes the geometry again, and the DEM-error fit, which
    uses the angles, runs again (before, only the time series counted as its input: the fit was
    skipped and kept the old angles' DEM error)."""
    from sbts.core.demo.synthetic import make_synthetic_stack

    module = writer("isce_tops")
    synth = make_synthetic_stack(shape=(40, 48), num_date=6, seed=3)
    root = tmp_path / "isce"
    template = Path(module.write(root, synth))
    template.write_text(template.read_text() + "\nmintpy.plot = no\n")
    work = template.parent
    _run(template)
    with h5py.File(work / "demErr.h5", "r") as f:
        before = f["dem"][()]
    module.write_isce_image(root / "merged/geom_reference/los.rdr", [synth.incidence_angle.astype(np.float32) + 10,
                                                                    synth.azimuth_angle.astype(np.float32)])
    ran = _run(template)
    assert ran["load_data"] == "ran", ran
    assert ran["correct_topography"] == "ran", ran
    with h5py.File(work / "demErr.h5", "r") as f:
        after = f["dem"][()]
    assert not np.allclose(after, before)
