"""``sbts run``."""

from __future__ import annotations

import inspect

import click

from sbts.cli import options as o


class _RunCommand(click.Command):
    """The step list of the help comes from the plan (the installed correction and exporter plugins
    in their slots), built only when the help is shown."""

    def format_help_text(self, ctx, formatter) -> None:
        from sbts.core.workflow.plan import describe_steps

        self.help = inspect.cleandoc(self.callback.__doc__ or "").replace("{steps}", describe_steps())
        super().format_help_text(ctx, formatter)


@click.command(cls=_RunCommand)
@o.template_arg
@click.option("--dostep", default=None, metavar="STEP", help="Run only this step.")
@click.option("--start", default=None, metavar="STEP", help="Start at this step.")
@click.option("--end", default=None, metavar="STEP", help="Stop after this step.")
@click.option("--plot/--no-plot", default=None,
              help="Draw the overview pictures into WORK_DIR/pic (default: as mintpy.plot says, yes unless set "
                   "to no, when a step ran and more than one step was selected).")
@o.work_dir_opt
@o.max_memory_opt
@o.num_worker_opt
@o.cluster_opt
@o.force_opt
def run(template, dostep, start, end, plot, work_dir, max_memory, num_worker, cluster, force) -> None:
    """Run the small-baseline workflow, as MintPy's smallbaselineApp.py.

    TEMPLATE is a MintPy/sbts template (a MintPy custom template works as it is); WORK_DIR defaults
    to its folder.  Steps whose outputs exist and whose options and inputs are unchanged since they
    last ran are skipped; --force reruns them.  The options of every step are checked first.  An
    interrupted run rerun continues where it stopped.  The run writes sbts_run.log and
    sbts_run_summary.txt; with mintpy.plot = yes (the default) it draws the
    overview pictures into pic/.

    Correction and exporter plugins run in the slot they declare; a third-party correction without a
    switch of its own joins with the template key sbts.run.extraCorrections = NAME[, NAME].

    \b
    Steps:
    {steps}
    """
    from sbts.core.workflow.runner import run_workflow

    t = o.load_template(template)
    reports = run_workflow(template, work_dir, start=start, end=end, dostep=dostep, force=force, plot=plot,
                           max_memory=max_memory, num_worker=o.resolve_workers(num_worker, t), cluster=cluster,
                           template=t)
    for r in reports:
        click.echo(f"{r.name:<22s} {r.status}")
