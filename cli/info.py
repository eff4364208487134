"""``sbts info``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dates", "show_dates", is_flag=True, help="Only the dates (or date pairs), one per line.")
def info(file: Path, show_dates: bool) -> None:
    """Show the structure, attributes and dates of an sbts/MintPy HDF5 FILE."""
    from sbts.core.tools.info import describe

    click.echo(describe(file, dates_only=show_dates))
