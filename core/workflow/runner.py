"""``sbts run``: the small-baseline workflow (MintPy's smallbaselineApp steps) with update mode.

The run builds its plan once (:mod:`sbts.core.workflow.plan`: the steps in order, the corrections of
the plugin registry in the slots they declare), parses the options of every selected step before
anything runs, then runs the steps in order.  A step is skipped when its outputs exist and its
options and the content versions of its inputs are those of its last run (:mod:`.state`); ``force``
reruns.  While a step runs, every HDF5 file it writes records its provenance (sbts version, step,
options, input versions).  The run holds a lock on the work directory, writes ``sbts_run.log`` and
a summary of every step's outputs in ``sbts_run_summary.txt``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sbts.core.compute.heap import release_spare_memory
from sbts.core.compute.scheduling import close_clusters, keep_pool, kept_workers_bytes, start_kept_pool
from sbts.core.config.compute import ComputeOptions
from sbts.core.config.template import Template
from sbts.core.errors import SbtsError
from sbts.core.io.blocks import Budget
from sbts.core.io.lock import work_dir_lock
from sbts.core.io.provenance import Provenance, recording
from sbts.core.workflow import state as st
from sbts.core.workflow.plan import RunContext, Step, describe_steps, select, step_names
from sbts.core.workflow.stepdefs import TEMPLATE_USED, write_template

logger = logging.getLogger(__name__)

STATE_FILE = st.STATE_FILE
LOG_FILE = "sbts_run.log"
SUMMARY_FILE = "sbts_run_summary.txt"


@dataclass
class StepReport:
    name: str
    status: str  # ran / skipped / disabled / failed
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    note: str = ""


def __getattr__(name: str):
    if name == "STEP_NAMES":  # the steps with the installed plugins (built when asked)
        return step_names()
    raise AttributeError(name)


# --------------------------------------------------------------------------- driver
def run_workflow(template_path: str | os.PathLike | None, work_dir: str | os.PathLike | None = None,
                 start: str | None = None, end: str | None = None, dostep: str | None = None,
                 force: bool = False, plot: bool | None = None, max_memory: float | None = None,
                 num_worker: int | str | None = 1, cluster: str | None = None,
                 template: Template | None = None, steps: Sequence[str] | None = None) -> list[StepReport]:
    """Run the selected steps in order; returns one report per step (also written to the summary).

    ``steps``: several steps by name (run in the workflow's order), instead of ``start``/``end``/``dostep``.
    ``num_worker``: processes (default 1, this process; None: the template's ``mintpy.compute.numWorker``,
    as ``sbts run`` and :func:`sbts.run` resolve it); with more than one (and no ``cluster``) the steps
    share one process pool forked before the first step that runs (:func:`~sbts.core.compute.scheduling.keep_pool`).
    ``plot``: draw the overview pictures into ``pic/`` (True: always; False: never; None: as
    ``mintpy.plot`` says, after a run of more than one step where a step ran or ``pic/`` does not
    exist yet: a single ``--dostep`` is how one step is rerun or timed, without the pictures).
    """
    from sbts.core.viz.options import PlotOptions

    template = template or Template.read(template_path)
    base_dir = Path(template_path).resolve().parent if template_path else Path.cwd()
    work_dir = Path(work_dir) if work_dir else base_dir
    compute = ComputeOptions.from_template(template, max_memory=max_memory, num_worker=num_worker, cluster=cluster)
    plotting = PlotOptions.from_template(template)
    reports: list[StepReport] = []
    with work_dir_lock(work_dir):
        handler = _RunLogHandler(work_dir / LOG_FILE, encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("sbts")
        root.addHandler(handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        try:
            logger.info("sbts run in %s (template %s)", work_dir, template_path or "defaults")
            ctx = RunContext(template, work_dir, base_dir, compute, force=force)
            if steps is None:
                selected = select(ctx.steps, start, end, dostep)
            else:  # each name checked as --dostep is, then in the workflow's order
                chosen = {s.name for name in steps for s in select(ctx.steps, None, None, name)}
                selected = [s for s in ctx.steps if s.name in chosen]
            ctx.parse(selected)  # every selected step's options, before any work
            if template_path:
                (work_dir / "inputs").mkdir(parents=True, exist_ok=True)
                write_template(template, work_dir / "inputs" / TEMPLATE_USED)
            state = st.load_state(work_dir)
            # one process pool for every step (forked before the first step that runs: _run_step)
            with keep_pool(compute.num_worker, compute.cluster, compute.max_memory):
                for step in selected:
                    reports.append(_run_step(ctx, step, state, force))
                    # the next step reuses what this one freed (sbts.core.compute.heap), up to the budget
                    # less what the pool's workers keep for their next items
                    release_spare_memory(max(0, Budget(compute.max_memory).bytes - kept_workers_bytes()))
            if _wants_pictures(plot, plotting, reports, len(selected), work_dir):
                reports.append(_plot(work_dir, plotting))
        except SbtsError as exc:
            reports.append(StepReport(getattr(exc, "step", "?"), "failed", note=str(exc)))
            raise
        finally:
            close_clusters()  # the dask client the steps shared (none without --cluster)
            _write_summary(work_dir, reports)
            root.removeHandler(handler)
            handler.close()
    return reports


def _wants_pictures(plot: bool | None, plotting, reports: Sequence[StepReport], n_selected: int,
                    work_dir: Path) -> bool:
    if plot is not None:
        return plot
    if not plotting.enabled or n_selected < 2:
        return False
    return any(r.status == "ran" for r in reports) or not (work_dir / "pic").is_dir()


def _plot(work_dir: Path, plotting) -> StepReport:
    """The overview pictures (a picture that cannot be drawn is a warning, never the run's failure)."""
    from sbts.core.viz.common import picture_settings
    from sbts.core.viz.overview import plot_overview

    logger.info("plot: the overview pictures into %s (mintpy.plot.dpi = %g)", work_dir / "pic", plotting.dpi)
    start = time.perf_counter()
    with picture_settings(dpi=plotting.dpi, max_pixels=plotting.max_pixels):
        pics = plot_overview(work_dir)
    return StepReport("plot", "ran", time.perf_counter() - start, list(pics))


def _inputs(ctx: RunContext, step: Step) -> dict[str, dict[str, str]]:
    return st.input_versions(step.inputs(ctx), ctx.work_dir, ctx.earlier(step.name), step.name)


def is_up_to_date(ctx: RunContext, step: Step, state: dict, deep: bool = True) -> tuple[bool, str]:
    """Outputs exist, the same options, the same input versions as when the step last ran here.

    ``deep`` adds the step's own check of sources the workflow does not track as files (load_data
    opens the processor's files for it)."""
    options = ctx.opt(step.name)
    inputs = _inputs(ctx, step)
    rec = state.get(step.name)
    current, reason = st.check(options, step.outputs(ctx), inputs, rec)
    if not current and rec is None and st.vouched_by_provenance(step.name, options, step.outputs(ctx), inputs):
        current, reason = True, ""
        state[step.name] = st.record(options, step.outputs(ctx), inputs)
    if current and deep:
        reason = step.stale(ctx)
        current = not reason
    return current, reason


def _run_step(ctx: RunContext, step: Step, state: dict, force: bool) -> StepReport:
    if not step.enabled(ctx):
        reason = step.off_reason(ctx)
        logger.info("step %s: %s", step.name, reason)
        return StepReport(step.name, "disabled", note=reason)
    if not force:
        current, reason = is_up_to_date(ctx, step, state)
        if current:
            logger.info("step %s: up to date, skipped", step.name)
            return StepReport(step.name, "skipped", outputs=[Path(p) for p in state[step.name]["outputs"]])
    else:
        reason = "--force"
    start_kept_pool()  # the run's pool, forked between steps: no output file is open
    logger.info("step %s: running (%s)", step.name, reason)
    options = ctx.opt(step.name)
    provenance = Provenance(step.name, options, _inputs(ctx, step))
    start = time.perf_counter()
    try:
        with recording(provenance):
            outputs = [Path(p) for p in step.run(ctx)]
    except BaseException as exc:
        state[step.name] = st.failure(exc)
        st.save_quietly(ctx.work_dir, state)
        if isinstance(exc, SbtsError):
            exc.step = step.name  # type: ignore[attr-defined]
        raise
    seconds = time.perf_counter() - start
    state[step.name] = st.record(options, outputs, _inputs(ctx, step))
    st.save_state(ctx.work_dir, state)
    note = step.report(ctx)
    if note:
        logger.info("step %s: %s", step.name, note)
    logger.info("step %s: done in %.1f s", step.name, seconds)
    return StepReport(step.name, "ran", seconds, outputs, note)


class _RunLogHandler(logging.FileHandler):
    """``sbts_run.log``: a copy of the messages.  When it cannot be written (disk full) it stops
    quietly; the messages still reach the terminal, and the error that matters is reported once."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        self.setLevel(logging.CRITICAL + 1)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the buffered tail cannot be written either
            super().close()


def _write_summary(work_dir: Path, reports: Sequence[StepReport]) -> None:
    lines = [f"sbts run summary ({time.strftime('%Y-%m-%d %H:%M:%S')})", ""]
    for r in reports:
        lines.append(f"{r.name:<22s} {r.status:<9s} {r.seconds:7.1f} s  {r.note}")
        for p in r.outputs:
            try:
                size = f"{p.stat().st_size / 1e6:.2f} MB"
            except OSError:
                size = "missing"
            lines.append(f"    {p}  ({size})")
    from sbts.core.io.h5 import atomic_write_text

    try:
        atomic_write_text(work_dir / SUMMARY_FILE, "\n".join(lines) + "\n")
    except SbtsError as exc:  # a report of the run: its failure must not hide the run's own error
        logger.warning("%s", exc)


__all__ = ["run_workflow", "StepReport", "RunContext", "is_up_to_date", "describe_steps", "STATE_FILE",
           "LOG_FILE", "SUMMARY_FILE"]
