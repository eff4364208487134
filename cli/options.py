"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path

import click

template_arg = click.argument("template", required=False, type=click.Path(dir_okay=False, path_type=Path))
work_dir_opt = click.option(
    "-d", "--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Working directory (default: the template's folder, else the current one).")
max_memory_opt = click.option(
    "--max-memory", type=click.FloatRange(min=0.01), default=None,
    help="Memory budget per block in GB (mintpy.compute.maxMemory).")
force_opt = click.option("--force", is_flag=True, help="Recompute even if the outputs are up to date.")
num_worker_opt = click.option(
    "--num-worker", type=str, default=None,
    help="Processes to use: an integer, 'all' or 'N%' (mintpy.compute.numWorker).")
cluster_opt = click.option(
    "--cluster", type=str, default=None,
    help="'local' for a dask.distributed LocalCluster, or a scheduler address (mintpy.compute.cluster).")


def option_opt(help_text: str):
    """``-O/--option KEY=VALUE`` (repeatable): a plugin's own options, spelled the same for every
    plugin command (``sbts export FORMAT``, ``sbts correct NAME``); parse with :func:`key_values`."""
    return click.option("-O", "--option", "opts", multiple=True, metavar="KEY=VALUE", help=help_text)


def key_values(items: tuple[str, ...], option: str) -> dict[str, str]:
    """``("a=1", "b = x")`` → ``{"a": "1", "b": "x"}``: the one parser of ``KEY=VALUE`` options.

    ``option`` names the option in the error (``--option``, ``--set``).  A later repetition of a
    key wins, as on any command line.
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=option)
        out[key.strip()] = value.strip()
    return out


def load_template(template: Path | None, overrides: dict | None = None):
    """The user template (or the defaults) with command-line overrides applied."""
    from sbts.core.config.template import Template

    t = Template.read(template)
    return t.updated(overrides or {})


def resolve_work_dir(work_dir: Path | None, template: Path | None) -> Path:
    if work_dir is not None:
        return work_dir
    if template is not None:
        return template.resolve().parent
    return Path.cwd()


def resolve_workers(value: str | None, template) -> int:
    """Number of processes from an option or mintpy.compute.numWorker (int ≥ 1, 'all', 'N%')."""
    from sbts.core.config.compute import resolve_workers as resolve

    return resolve(value, template)


def resolve_memory(value: float | None, template) -> float:
    """GB per block from --max-memory or mintpy.compute.maxMemory (the template getter checks > 0)."""
    from sbts.core.config.compute import resolve_memory as resolve

    return resolve(value, template)
