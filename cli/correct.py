"""``sbts correct NAME``: one subcommand per correction plugin."""

from __future__ import annotations

import inspect
from pathlib import Path

import click

from sbts.cli import options as o
from sbts.cli._plugin_group import PluginGroup


def _help(item) -> str:
    lines = [(item.summary or item.name).strip(), ""]
    doc = inspect.cleandoc(type(item).__doc__ or "")
    if doc and doc != item.summary:
        lines += [doc, ""]
    if item.stage == "timeseries":
        lines.append(f"Reads a time-series file and writes <input>_{item.suffix}.h5 (MintPy's suffix chain).")
    else:
        lines.append("Edits the interferogram stack (adds a corrected dataset).")
    if item.keys:
        lines += ["", "\b", "Template keys (set them with -s KEY=VALUE):"]
        lines += [f"  {key} : {text}" for key, text in item.keys.items()]
    options = getattr(item, "options", {}) or {}
    if options:
        lines += ["", "\b", "Options (-O KEY=VALUE):"]
        lines += [f"  {key} : {text}" for key, text in options.items()]
    return "\n".join(lines)


def _make_command(item) -> click.Command:
    @click.command(name=item.name, help=_help(item))
    @o.template_arg
    @click.option("-i", "--input", "input_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Input file (default: WORK_DIR/timeseries.h5, or inputs/ifgramStack.h5 for stack corrections).")
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Output file (default: input name + _SUFFIX).")
    @click.option("-g", "--geometry", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Geometry file (default: WORK_DIR/inputs/geometry*.h5).")
    @click.option("-s", "--set", "settings", multiple=True, metavar="KEY=VALUE",
                  help="Template key override, repeatable (e.g. -s mintpy.deramp=quadratic).")
    @o.option_opt("Option of this correction, repeatable (see Options above; others are refused).")
    @o.work_dir_opt
    @o.max_memory_opt
    @o.num_worker_opt
    @o.cluster_opt
    def command(template, input_file, output, geometry, settings, opts, work_dir, max_memory, num_worker,
                cluster) -> None:
        from sbts.core.plugin.runners import run_correction

        t = o.load_template(template, o.key_values(settings, "--set"))
        wd = o.resolve_work_dir(work_dir, template)
        result = run_correction(item.name, t, wd, input_file=input_file, output_file=output,
                                geometry_file=geometry, max_memory=o.resolve_memory(max_memory, t),
                                num_worker=o.resolve_workers(num_worker, t),
                                cluster=cluster if cluster is not None else t.get("mintpy.compute.cluster"),
                                **o.key_values(opts, "--option"))
        click.echo(str(result.output))
        for extra in result.extra_outputs:
            click.echo(str(extra))

    return command


@click.group(cls=PluginGroup, kind="correction", make_command=_make_command)
def correct() -> None:
    """Run a correction plugin: sbts correct NAME [TEMPLATE] [-i FILE].

    Each correction reads a product and writes a corrected one, keeping MintPy's file names
    (timeseries.h5 → timeseries_ramp.h5 ...).  `sbts correct NAME --help` lists its template keys.
    """
