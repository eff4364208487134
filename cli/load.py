"""``sbts load``."""

from __future__ import annotations

from pathlib import Path

import click

from sbts.cli import options as o


@click.command()
@o.template_arg
@click.option("--processor", default=None, help="Reader to use (mintpy.load.processor); default: auto-detect.")
@click.option("--unw", "unwFile", default=None, help="Glob pattern of unwrapped interferograms (mintpy.load.unwFile).")
@click.option("--cor", "corFile", default=None, help="Glob pattern of coherence files (mintpy.load.corFile).")
@click.option("--conncomp", "connCompFile", default=None, help="Connected components (mintpy.load.connCompFile).")
@click.option("--dem", "demFile", default=None, help="DEM / height file (mintpy.load.demFile).")
@click.option("--subset-yx", default=None, help="y0:y1,x0:x1 (mintpy.subset.yx).")
@click.option("--subset-lalo", default=None, help="S:N,W:E (mintpy.subset.lalo).")
@o.work_dir_opt
@o.max_memory_opt
@o.num_worker_opt
@o.cluster_opt
@o.force_opt
def load(template: Path | None, processor, unwFile, corFile, connCompFile, demFile, subset_yx, subset_lalo,
         work_dir, max_memory, num_worker, cluster, force) -> None:
    """Load a processor's interferograms and geometry into WORK_DIR/inputs.

    Reads the files named by the mintpy.load.* keys of TEMPLATE (glob patterns, relative to the
    template's folder) with the reader plugin that recognises them, and writes
    inputs/ifgramStack.h5 and inputs/geometryRadar.h5 or geometryGeo.h5 in MintPy's layout, block
    by block, the interferograms of a block read by --num-worker threads, or by the workers of the
    dask cluster whose scheduler address --cluster gives (they need the files at the same paths;
    'local' reads with threads: workers on this machine would only ship the data back).
    Unchanged inputs are not reloaded (use --force).
    """
    from sbts.core.config.compute import ComputeOptions
    from sbts.core.steps.load import load_data

    overrides = {f"mintpy.load.{k}": v for k, v in
                 dict(unwFile=unwFile, corFile=corFile, connCompFile=connCompFile, demFile=demFile).items()}
    overrides.update({"mintpy.subset.yx": subset_yx, "mintpy.subset.lalo": subset_lalo})
    t = o.load_template(template, overrides)
    wd = o.resolve_work_dir(work_dir, template)
    base = template.resolve().parent if template else Path.cwd()
    compute = ComputeOptions.from_template(t, max_memory, num_worker, cluster)
    result = load_data(t, wd, base_dir=base, processor=processor, max_memory=compute.max_memory, force=force,
                       num_worker=compute.num_worker, cluster=compute.cluster)
    for path in [result.stack_file, *result.geometry_files]:
        if path is not None:
            click.echo(str(path))
