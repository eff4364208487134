"""``sbts export FORMAT``: one subcommand per exporter plugin."""

from __future__ import annotations

from pathlib import Path

import click

from sbts.cli import options as o
from sbts.cli._plugin_group import PluginGroup


def _make_command(item) -> click.Command:
    text = (item.summary or item.name).strip()
    if item.description:
        text += "\n\n" + item.description.strip()
    if item.requires_geocoded:
        text += "\n\nNeeds geocoded input (sbts geocode first for radar-coordinate files)."

    @click.command(name=item.name, help=text)
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.argument("dataset", required=False)
    @click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Output file or folder.")
    @o.option_opt("Format option, repeatable (see the description above).")
    @o.max_memory_opt
    @o.num_worker_opt
    @o.cluster_opt
    def command(file, dataset, output, opts, max_memory, num_worker, cluster) -> None:
        from sbts.core.config.compute import ComputeOptions
        from sbts.core.plugin.runners import export

        options = o.key_values(opts, "--option")
        compute = ComputeOptions.from_template(None, max_memory, num_worker, cluster)
        for path in export(item.name, file, dataset=dataset, output=output, options=options,
                           compute=compute if (max_memory, num_worker, cluster) != (None, None, None) else None):
            click.echo(str(path))

    return command


@click.group(cls=PluginGroup, kind="exporter", make_command=_make_command)
def export() -> None:
    """Write a product in another format: sbts export FORMAT FILE [DATASET] [-o OUT].

    `sbts export FORMAT --help` says what each format writes.
    """
