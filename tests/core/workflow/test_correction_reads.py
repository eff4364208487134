"""A correction step of ``sbts run`` counts among its inputs the files it reads besides the time
series (``Correction.reads``): the geometry, and the delay sources of the folder its options name.
A weather file that arrives for a date left uncorrected (a GRIB file, a GACOS map, an IONEX day)
makes the step out of date, so the next ``sbts run`` corrects that date; before, the step was
skipped (its time series had not changed) and the date stayed uncorrected."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbts.core.config.template import Template
from sbts.core.workflow import runner
from sbts.core.workflow import state as st
from sbts.core.workflow.plan import RunContext

CASES = {  # method: (step, template lines, file that arrives, relative to tmp_path)
    "pyaps": ("correct_troposphere", "mintpy.troposphericDelay.method = pyaps\n"
                                     "mintpy.troposphericDelay.weatherDir = {root}/weather\n",
              "weather/ERA5/ERA5_N30_N40_E120_E140_20190104_14.grb"),
    "gacos": ("correct_troposphere", "mintpy.troposphericDelay.method = gacos\n"
                                     "mintpy.troposphericDelay.gacosDir = {root}/GACOS\n", "GACOS/20190104.ztd"),
    "tec": ("correct_ionosphere", "mintpy.ionosphericDelay.method = tec\nmintpy.ionosphericDelay.tecDir = {root}/IONEX\n",
            "IONEX/jplg0040.19i.Z"),
}


@pytest.mark.parametrize("method", sorted(CASES))
def test_a_delay_file_that_arrives_makes_the_correction_step_out_of_date(method, tmp_path):
    step_name, text, arriving = CASES[method]
    (tmp_path / arriving).parent.mkdir(parents=True)
    ctx = RunContext(Template.from_text(text.format(root=tmp_path)), tmp_path / "work")
    step = next(s for s in ctx.steps if s.name == step_name)
    assert ctx.link(step_name).correction.name.endswith(method)
    inputs = [Path(p) for p in step.inputs(ctx)]
    assert ctx.work_dir / "inputs/geometryRadar.h5" in inputs  # the default: the loaded geometry
    options = ctx.opt(step_name)
    record = st.record(options, [], runner._inputs(ctx, step))
    assert st.check(options, [], runner._inputs(ctx, step), record) == (True, "")
    (tmp_path / arriving).write_bytes(b"a new day")
    assert tmp_path / arriving in [Path(p) for p in step.inputs(ctx)]
    current, why = st.check(options, [], runner._inputs(ctx, step), record)
    assert not current and Path(arriving).name in why
