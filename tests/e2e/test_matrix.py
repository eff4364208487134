"""The end-to-end matrix: every processor format through every step of ``sbts run``, as users run it.

For each format of ``formats.FORMATS`` the writer puts the shared synthetic stack on disk as that
processor writes it, with a template that sets only the file patterns; then the CLI runs
``sbts run <template>`` with MintPy's defaults through all steps.  ``test_step[<format>-<step>]``
checks each step's products: present, readable by sbts, the expected datasets and attributes, and
values against the synthetic truth where there is one (tolerances at each check, with the reason).
A second ``sbts run`` must skip every step; switching HDF-EOS5 on must run that step alone.

A format whose writer module is not in this tree is skipped (the ISCE, ARIA and SNAP writers come
from another branch); once present it runs like the others.
"""

from __future__ import annotations

from pathlib import Path

import formats
import pytest
from checks import CHECKS, OFF_BY_DEFAULT, Run, sbts, statuses, writer

from sbts.core.workflow.runner import STEP_NAMES

pytest.importorskip("osgeo.gdal")

# UNAVCO metadata HDF-EOS5 needs and no synthetic product carries (MintPy: from the template too)
HDFEOS5_ON = ("mintpy.save.hdfEos5 = yes\nmintpy.save.hdfEos5.relative_orbit = 128\n"
              "mintpy.save.hdfEos5.first_frame = 593\n")


@pytest.fixture(scope="session", params=formats.FORMATS)
def run(request, synth, tmp_path_factory) -> Run:
    """One format written and run through all steps (defaults), rerun, then with HDF-EOS5 on."""
    name = request.param
    module = writer(name)
    root = tmp_path_factory.mktemp(name)
    template = Path(module.write(root, synth))
    assert template == root / "work" / f"{name}.cfg", template
    runs, logs = [], []
    for extra in ("", "", HDFEOS5_ON, ""):
        if extra:
            template.write_text(template.read_text() + extra)
        code, out = sbts("run", template)
        logs.append(out)
        assert code == 0, f"sbts run {name} failed:\n{out[-3000:]}"
        runs.append(statuses(out))
    return Run(name, module.GEOCODED, root, template, *runs, logs=logs)


@pytest.mark.parametrize("step", STEP_NAMES)
def test_step(run: Run, step: str, synth) -> None:
    """The step ran (or is off by MintPy's default) and its products are right."""
    if step in OFF_BY_DEFAULT:
        assert run.first[step] == "disabled", f"{step} should be off by MintPy's defaults"
        return
    if step not in ("geocode", "hdfeos5"):
        assert run.first[step] == "ran", f"{step}: {run.first.get(step)}"
    CHECKS[step](run, synth)


def test_second_run_skips_every_step(run: Run) -> None:
    """Update mode settles in one run: nothing reruns, with HDF-EOS5 switched on only that step runs."""
    assert set(run.second.values()) <= {"skipped", "disabled"}, run.second
    # the pictures (mintpy.plot = yes by default) are redrawn only when a step ran
    assert [s for s, v in run.hdfeos5.items() if v == "ran"] == ["hdfeos5", "plot"], run.hdfeos5
    assert set(run.third.values()) <= {"skipped", "disabled"}, run.third


def test_pictures(run: Run) -> None:
    """MintPy's default mintpy.plot = yes: the first run draws the overview of its products into pic/."""
    assert run.first["plot"] == "ran", run.first
    pics = {p.name for p in (run.template.parent / "pic").glob("*.png")}
    assert {"network.png", "velocity.png", "tsview.png", "temporalCoherence.png"} <= pics, sorted(pics)
    failed = [ln for ln in run.logs[0].splitlines() if "overview:" in ln and "skipped" in ln]
    assert not failed, failed
