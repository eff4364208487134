"""``sbts run``: the step chain, update mode, third-party corrections in the chain, lock, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sbts.cli.main import cli
from sbts.core.demo.run import write_synthetic
from sbts.core.errors import SbtsError
from sbts.core.io.lock import work_dir_lock
from sbts.core.io.products import TimeSeries, TimeSeriesWriter
from sbts.core.plugin import registry as plugins
from sbts.core.plugin.hookspecs import hookimpl
from sbts.core.plugin.interfaces import Correction, CorrectionResult
from sbts.core.workflow.runner import run_workflow

TEMPLATE = """\
mintpy.load.processor = mintpy
mintpy.load.unwFile = synthetic/ifgramStack.h5
mintpy.load.demFile = synthetic/geometryGeo.h5
mintpy.networkInversion.minNumPixel = 10
mintpy.deramp = linear
mintpy.save.kmz = no
"""


@pytest.fixture()
def work(tmp_path) -> Path:
    write_synthetic(tmp_path / "synthetic", seed=1, shape=(40, 50), num_date=12)
    (tmp_path / "sbts.cfg").write_text(TEMPLATE)
    return tmp_path


def _statuses(reports) -> dict[str, str]:
    return {r.name: r.status for r in reports}


def test_full_chain_then_rerun_skips_everything_then_deleted_output_reruns_dependents(work):
    first = _statuses(run_workflow(work / "sbts.cfg", end="velocity"))
    assert first["invert_network"] == "ran" and first["correct_topography"] == "ran"
    assert first["correct_troposphere"] == "disabled"
    for name in ("timeseries.h5", "timeseries_ramp.h5", "timeseries_ramp_demErr.h5", "velocity.h5", "demErr.h5",
                 "reference_date.txt", "sbts_run.log", "sbts_run_summary.txt"):
        assert (work / name).exists(), name
    second = _statuses(run_workflow(work / "sbts.cfg", end="velocity"))
    assert set(second.values()) <= {"skipped", "disabled"}, second
    (work / "timeseries_ramp.h5").unlink()
    third = _statuses(run_workflow(work / "sbts.cfg", end="velocity"))
    assert third["deramp"] == "ran" and third["correct_topography"] == "ran" and third["velocity"] == "ran"
    assert third["invert_network"] == "skipped" and third["load_data"] == "skipped"
    summary = (work / "sbts_run_summary.txt").read_text()
    assert "deramp" in summary and "timeseries_ramp.h5" in summary


def test_changed_option_reruns_that_step(work):
    run_workflow(work / "sbts.cfg", end="velocity")
    (work / "sbts.cfg").write_text(TEMPLATE + "mintpy.timeFunc.periodic = 1\n")
    again = _statuses(run_workflow(work / "sbts.cfg", end="velocity"))
    assert again["velocity"] == "ran" and again["deramp"] == "skipped"


class _AddConstant(Correction):
    """A third-party correction: subtracts 1 mm from every date (for the test)."""

    name = "minus1mm"
    summary = "subtract 1 mm"
    suffix = "m1"

    def run(self, context):
        ts = TimeSeries(context.input_file)
        with TimeSeriesWriter(context.output_file, ts.metadata, ts.date_strings, ts.bperp) as w:
            w.write("timeseries", ts.read_dates() - 0.001)
        return CorrectionResult(context.output_file)


class _Plugin:
    @hookimpl
    def sbts_corrections(self):
        return [_AddConstant()]


def test_third_party_correction_joins_the_chain_from_the_template(work):
    registry = plugins.build_registry(extra_plugins=[("thirdparty", _Plugin())])
    plugins.set_registry(registry)
    (work / "sbts.cfg").write_text(TEMPLATE + "sbts.run.extraCorrections = minus1mm\nmintpy.reference.date = no\n")
    reports = _statuses(run_workflow(work / "sbts.cfg", end="velocity"))
    assert reports["correct_minus1mm"] == "ran"
    a = TimeSeries(work / "timeseries_ramp_demErr.h5").read_dates()
    b = TimeSeries(work / "timeseries_ramp_demErr_m1.h5").read_dates()
    np.testing.assert_allclose(a - b, 0.001, atol=1e-7)
    assert (work / "velocity.h5").exists()


def test_lock_refuses_a_second_run_naming_the_holder(work):
    with work_dir_lock(work):
        with pytest.raises(SbtsError, match=r"in use by sbts process \d+"):
            run_workflow(work / "sbts.cfg", end="load_data")
    run_workflow(work / "sbts.cfg", end="load_data")  # released


def test_interrupted_run_continues_where_it_stopped(work, monkeypatch):
    import sbts.core.workflow.stepdefs as sd

    original = sd._velocity

    def boom(ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(sd, "_velocity", boom)  # the plan is built per run, from the step table
    with pytest.raises(KeyboardInterrupt):
        run_workflow(work / "sbts.cfg", end="velocity")
    monkeypatch.setattr(sd, "_velocity", original)
    again = _statuses(run_workflow(work / "sbts.cfg", end="velocity"))
    assert again["invert_network"] == "skipped" and again["velocity"] == "ran"


def test_cli_run_help_lists_steps_and_dostep_runs_one(work):
    out = CliRunner().invoke(cli, ["run", "--help"]).output
    for step in ("load_data", "invert_network", "correct_topography", "hdfeos5"):
        assert step in out
    result = CliRunner().invoke(cli, ["run", str(work / "sbts.cfg"), "--dostep", "load_data"])
    assert result.exit_code == 0, result.output
    assert "load_data" in result.output and (work / "inputs/ifgramStack.h5").exists()
    bad = CliRunner().invoke(cli, ["run", str(work / "sbts.cfg"), "--dostep", "nonsense"])
    assert bad.exit_code != 0 and "unknown step 'nonsense'" in bad.output and "Traceback" not in bad.output


def test_a_bad_value_of_a_later_step_fails_before_load_data_runs(work):
    """Every selected step's options are parsed at the start: a typo in the velocity step's keys (or a
    correction's) is reported before an hour of loading and inverting, naming the key and the step."""
    from sbts.core.errors import TemplateError

    for bad, key in (("mintpy.timeFunc.uncertaintyQuantification = sometimes", "uncertaintyQuantification"),
                     ("mintpy.timeFunc.polynomial = -1", "polynomial"),
                     ("mintpy.troposphericDelay.method = height_correlation\n"
                      "mintpy.troposphericDelay.polyOrder = 0", "polyOrder")):
        (work / "sbts.cfg").write_text(TEMPLATE + bad + "\n")
        with pytest.raises(TemplateError, match=key) as info:
            run_workflow(work / "sbts.cfg")
        assert not (work / "inputs" / "ifgramStack.h5").exists(), bad
        assert "load_data" not in (work / "sbts_run.log").read_text().split("sbts run in")[-1]
        assert info.value.step in ("velocity", "correct_troposphere")  # the summary names the step
    result = CliRunner().invoke(cli, ["run", str(work / "sbts.cfg")])
    assert result.exit_code != 0 and "polyOrder" in result.output and "Traceback" not in result.output


def test_update_mode_follows_the_content_of_the_stack_edits(work):
    """modify_network rerun by a changed option that keeps the same pairs changes no input of the later
    steps; one that drops a pair reruns exactly the steps that read the drop list."""
    run_workflow(work / "sbts.cfg", end="velocity")
    (work / "sbts.cfg").write_text(TEMPLATE + "mintpy.network.tempBaseMax = 100000\n")
    same = _statuses(run_workflow(work / "sbts.cfg", end="velocity"))
    assert same["modify_network"] == "ran"
    assert {s for n, s in same.items() if n not in ("modify_network", "plot")} <= {"skipped", "disabled"}, same
    from sbts.core.io.products import IfgramStack

    pair = IfgramStack(work / "inputs" / "ifgramStack.h5").pairs.date12[3]
    (work / "sbts.cfg").write_text(TEMPLATE + f"mintpy.network.excludeDate12 = {pair}\n")
    dropped = _statuses(run_workflow(work / "sbts.cfg", end="velocity"))
    assert dropped["load_data"] == "skipped"
    for name in ("modify_network", "reference_point", "quick_overview", "invert_network", "deramp",
                 "correct_topography", "velocity"):
        assert dropped[name] == "ran", (name, dropped)
    again = _statuses(run_workflow(work / "sbts.cfg", end="velocity"))
    assert set(again.values()) <= {"skipped", "disabled"}, again


def test_a_lost_state_file_is_rebuilt_from_the_provenance_of_the_products(work):
    run_workflow(work / "sbts.cfg", end="velocity")
    (work / ".sbts_run.json").unlink()
    again = _statuses(run_workflow(work / "sbts.cfg", end="velocity"))
    # products carry their step, options and input versions: those steps are trusted; steps with
    # text outputs (the coherence table, reference_date.txt) or edits in place run again
    for name in ("load_data", "invert_network", "deramp", "correct_topography", "velocity"):
        assert again[name] == "skipped", (name, again)
    assert again["modify_network"] == "ran"


class _AfterDeramp(_AddConstant):
    name = "after-deramp"
    suffix = "ad"
    after = "deramp"


class _Nowhere(_AddConstant):
    name = "nowhere"
    after = "no_such_step"


class _SlotPlugin:
    @hookimpl
    def sbts_corrections(self):
        return [_AfterDeramp(), _Nowhere(), _AddConstant()]


def test_plan_puts_corrections_in_their_declared_slots():
    from sbts.core.workflow.plan import build_steps

    with pytest.warns(UserWarning, match="'correct_nowhere'.*no_such_step"):
        names = [s.name for s in build_steps(plugins.build_registry(extra_plugins=[("slots", _SlotPlugin())]))]
    # MintPy's order for the built-ins, declared by the plugins themselves
    chain = ["invert_network", "correct_LOD", "correct_SET", "correct_ionosphere", "correct_troposphere", "deramp", "correct_after-deramp",
             "correct_topography", "correct_minus1mm", "residual_RMS"]
    assert names[names.index("invert_network"):names.index("residual_RMS") + 1] == chain
    assert names.index("correct_unwrap_error") == names.index("quick_overview") + 1
    assert "correct_nowhere" not in names


def test_force_reaches_the_steps_that_keep_their_own_up_to_date_check(work, caplog):
    """``sbts run --force`` recomputes: the load rereads unchanged sources (it keeps its own source
    signatures) and the phase-closure correction recomputes its dataset (it keeps its settings on the
    stack); without --force both are skipped."""
    import logging

    (work / "sbts.cfg").write_text(TEMPLATE + "mintpy.unwrapError.method = phase_closure\n")
    run_workflow(work / "sbts.cfg", end="correct_unwrap_error")
    caplog.set_level(logging.INFO, logger="sbts")
    caplog.clear()
    forced = _statuses(run_workflow(work / "sbts.cfg", end="correct_unwrap_error", force=True))
    assert forced["load_data"] == "ran" and forced["correct_unwrap_error"] == "ran"
    text = caplog.text
    assert "unwrapPhase_phaseClosure is up to date" not in text
    assert "step load_data: running (--force)" in text
    assert "phase closure:" in text  # the correction ran its solve
    assert "is up to date with its inputs: skipped" not in text
    assert "writing " in text and "ifgramStack.h5: " in text  # the stack was written again
    caplog.clear()
    for name in list(work.glob("*.json")):  # the run's own record gone: the correction's check decides
        name.unlink()
    run_workflow(work / "sbts.cfg", end="correct_unwrap_error")
    assert "unwrapPhase_phaseClosure is up to date" in caplog.text


def test_force_reaches_the_inversion(work, caplog):
    """``sbts run --force`` re-inverts: the inversion keeps its own check of the stack signature and
    options, which --force must reach (it used to log "running (--force)" and then keep the files)."""
    import logging

    (work / "sbts.cfg").write_text(TEMPLATE)
    run_workflow(work / "sbts.cfg", end="invert_network")
    stamp = (work / "timeseries.h5").stat().st_mtime_ns
    caplog.set_level(logging.INFO, logger="sbts")
    caplog.clear()
    forced = run_workflow(work / "sbts.cfg", dostep="invert_network", force=True)
    assert _statuses(forced)["invert_network"] == "ran"
    assert "timeseries.h5 is up to date" not in caplog.text
    assert (work / "timeseries.h5").stat().st_mtime_ns != stamp
    assert [r.note for r in forced if r.name == "invert_network"] == ["recomputed (full inversion)"]


def _png_width(path: Path) -> int:
    import matplotlib.image as mpimg

    return mpimg.imread(path).shape[1]


def test_mintpy_plot_keys_decide_and_shape_the_pictures(work):
    """mintpy.plot switches the overview off and on, mintpy.plot.dpi sets the resolution of the PNG
    files (width proportional to dpi: the same figure in inches), --plot/--no-plot win over the key."""
    cfg = work / "sbts.cfg"
    cfg.write_text(TEMPLATE + "mintpy.plot = no\n")
    reports = _statuses(run_workflow(cfg, end="velocity"))
    assert "plot" not in reports and not list(work.glob("pic/*.png"))
    cfg.write_text(TEMPLATE + "mintpy.plot = yes\nmintpy.plot.dpi = 40\n")
    reports = _statuses(run_workflow(cfg, end="velocity"))  # nothing ran, but pic/ does not exist yet
    assert {k for k, v in reports.items() if v == "ran"} == {"plot"}, reports
    low = _png_width(work / "pic" / "velocity.png")
    assert "plot" not in _statuses(run_workflow(cfg, end="velocity"))  # nothing ran, pic/ exists
    assert "plot" not in _statuses(run_workflow(cfg, end="velocity", force=True, plot=False))
    cfg.write_text(TEMPLATE + "mintpy.plot = no\nmintpy.plot.dpi = 80\n")
    assert _statuses(run_workflow(cfg, end="velocity", plot=True))["plot"] == "ran"
    high = _png_width(work / "pic" / "velocity.png")
    assert 1.8 < high / low < 2.2, (low, high)  # bbox_inches="tight" rounds each side by a pixel or so
    # one step (--dostep) is rerun or timed without the pictures
    assert "plot" not in _statuses(run_workflow(cfg, dostep="velocity", force=True))


def test_mintpy_plot_max_memory_decimates_the_maps_and_bad_values_stop_the_run_first(work):
    from sbts.core.config.template import Template
    from sbts.core.errors import TemplateError
    from sbts.core.viz.common import MAX_DISPLAY_PIXELS, display_stride, picture_settings
    from sbts.core.viz.options import BYTES_PER_DISPLAYED_PIXEL, PlotOptions

    cfg = work / "sbts.cfg"
    opts = PlotOptions.from_template(Template.read(cfg))
    assert opts.enabled and opts.dpi == 150 and opts.max_pixels == MAX_DISPLAY_PIXELS  # MintPy's defaults
    cfg.write_text(TEMPLATE + "mintpy.plot.maxMemory = 0.0001\n")
    opts = PlotOptions.from_template(Template.read(cfg))
    assert opts.max_pixels == int((1e5 / BYTES_PER_DISPLAYED_PIXEL) ** 0.5) == 39
    with picture_settings(max_pixels=opts.max_pixels):
        assert display_stride((400, 500)) == 13  # ceil(500 / 39)
    assert display_stride((400, 500)) == 1
    for bad in ("mintpy.plot.dpi = 0", "mintpy.plot = maybe", "mintpy.plot.maxMemory = -1"):
        cfg.write_text(TEMPLATE + bad + "\n")
        with pytest.raises(TemplateError, match=bad.split(" =")[0].replace(".", r"\.")):
            run_workflow(cfg, end="velocity")
        assert not (work / "inputs" / "ifgramStack.h5").exists()


def test_load_update_mode_no_reads_every_file_on_every_run(work, caplog):
    """mintpy.load.updateMode = no (MintPy: always reload): load_data runs again on an unchanged
    template and reads every pair's file instead of keeping or appending to the stack."""
    cfg = work / "sbts.cfg"
    cfg.write_text(TEMPLATE + "mintpy.load.updateMode = no\nmintpy.plot = no\n")
    run_workflow(cfg, end="load_data")
    stamp = (work / "inputs" / "ifgramStack.h5").stat().st_mtime_ns
    with caplog.at_level("INFO", logger="sbts"):
        again = _statuses(run_workflow(cfg, end="load_data"))
    assert again["load_data"] == "ran", again
    assert "mintpy.load.updateMode = no: every file is read again" in caplog.text
    assert "copying" not in caplog.text  # no pair copied from the stack on disk
    assert (work / "inputs" / "ifgramStack.h5").stat().st_mtime_ns != stamp
    cfg.write_text(TEMPLATE + "mintpy.plot = no\n")  # back to MintPy's default: kept as loaded
    run_workflow(cfg, end="load_data")
    assert _statuses(run_workflow(cfg, end="load_data"))["load_data"] == "skipped"
