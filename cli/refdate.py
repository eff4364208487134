"""``sbts refdate``."""

from __future__ import annotations

from pathlib import Path

import click

from sbts.cli import options as o


@click.command()
@o.template_arg
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--date", default=None, metavar="YYYYMMDD|FILE",
              help="New reference date, or a file holding it (mintpy.reference.date; default reference_date.txt).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of replacing the input (one input only).")
@o.work_dir_opt
@o.max_memory_opt
@o.num_worker_opt
@o.cluster_opt
def refdate(template, files, date, output, work_dir, max_memory, num_worker, cluster) -> None:
    """Re-reference time-series files to a date: ts −= ts[date], REF_DATE updated.

    Each file is rewritten completely before it atomically replaces the original (never left half
    modified), or written to -o.  FILES default to WORK_DIR/timeseries*.h5; a first argument
    ending in .h5 is a file, not a template.  A relative date file is looked up in the current
    folder, then in WORK_DIR (default: the template's folder, else the first file's).
    """
    from sbts.core.steps.refdate import reference_date

    if template is not None and template.suffix == ".h5":  # no template: the first argument is a file
        files, template = (template, *files), None
    t = o.load_template(template, {"mintpy.reference.date": date})
    wd = o.resolve_work_dir(work_dir if work_dir is not None or template is not None or not files
                            else Path(files[0]).resolve().parent, template)
    value = t.get("mintpy.reference.date")
    if value is None:
        click.echo("mintpy.reference.date = no: nothing to do")
        return
    if not files:
        files = tuple(sorted(wd.glob("timeseries*.h5")))
    for path in reference_date(files, value, output, max_memory=o.resolve_memory(max_memory, t), work_dir=wd,
                               num_worker=o.resolve_workers(num_worker, t),
                               cluster=cluster if cluster is not None else t.get("mintpy.compute.cluster")):
        click.echo(str(path))
