"""``sbts toy-info``: a command added by a third-party package (the ``sbts.commands`` entry point).

``sbts --help`` lists it from this function's docstring without importing this module.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("toy-info")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def toy_info(folder: Path) -> None:
    """Count the pairs of a toy-format folder (sbts plugin example).

    Prints the number of pair lines of FOLDER/pairs.txt.
    """
    lines = (folder / "pairs.txt").read_text(encoding="utf-8").splitlines()
    click.echo(f"{sum(1 for line in lines if line.strip() and not line.startswith('#'))} pairs")
