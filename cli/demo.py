"""``sbts demo``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path), default=Path("sbts_demo"))
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the synthetic stack.")
@click.option("--size", type=(int, int), default=(120, 150), show_default=True, help="Rows and columns.")
@click.option("--dates", "num_date", type=int, default=30, show_default=True, help="Number of acquisitions.")
@click.option("--export", "export_format", default="geotiff", show_default=True, metavar="FORMAT",
              help="Also export the velocity into DIRECTORY/export with this exporter ('none': no export).")
def demo(directory: Path, seed: int, size: tuple[int, int], num_date: int, export_format: str) -> None:
    """Write the synthetic demo stack into DIRECTORY and run the pipeline on it.

    The stack is seeded and physically plausible (subsiding bowl, seasonal motion, DEM error,
    turbulent and stratified troposphere, decorrelation noise, a lake, a few unwrapping errors);
    the known truth is saved beside it in truth.h5.  No download; about half a minute.
    """
    from sbts.core.demo.run import run_demo

    summary = run_demo(directory, seed=seed, shape=size, num_date=num_date,
                       export_format=None if export_format.lower() == "none" else export_format)
    click.echo(summary)
