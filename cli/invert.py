"""``sbts invert``."""

from __future__ import annotations

from pathlib import Path

import click

from sbts.cli import options as o


@click.command()
@o.template_arg
@click.option("-i", "--stack", "stack_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Interferogram stack (default: WORK_DIR/inputs/ifgramStack.h5).")
@click.option("-w", "--weight-func", type=click.Choice(["var", "fim", "coh", "no"]), default=None,
              help="Weights (mintpy.networkInversion.weightFunc; default var).")
@click.option("--min-norm-velocity/--min-norm-phase", default=None,
              help="SBAS velocity form (default) or phase form (mintpy.networkInversion.minNormVelocity).")
@click.option("--mask-dataset", type=click.Choice(["no", "coherence", "connectComponent"]), default=None,
              help="Mask pairs per pixel by this dataset (mintpy.networkInversion.maskDataset).")
@click.option("--mask-threshold", type=float, default=None, help="mintpy.networkInversion.maskThreshold.")
@click.option("--min-redundancy", type=float, default=None, help="mintpy.networkInversion.minRedundancy.")
@click.option("--min-temp-coh", type=float, default=None, help="mintpy.networkInversion.minTempCoh.")
@click.option("--residual-norm", type=click.Choice(["L2", "L1"], case_sensitive=False), default=None,
              help="Least squares or weighted L1, robust to unwrapping errors (mintpy.networkInversion.residualNorm).")
@click.option("--nsbas/--no-nsbas", default=None,
              help="NSBAS temporal constraint on pixels whose network has gaps; writes numGap.h5 (sbts.nsbas).")
@click.option("--robust/--no-robust", default=None,
              help="Screened least squares, robust to unwrapping errors: pixels with a residual beyond "
                   "sbts.robust.threshold (default 5 rad) are re-fitted by L1 and the pairs it finds off "
                   "by a cycle dropped (sbts.robust).")
@o.work_dir_opt
@o.max_memory_opt
@o.num_worker_opt
@o.cluster_opt
@o.force_opt
def invert(template, stack_file, weight_func, min_norm_velocity, mask_dataset, mask_threshold, min_redundancy,
           min_temp_coh, residual_norm, nsbas, robust, work_dir, max_memory, num_worker, cluster, force) -> None:
    """Invert the interferogram network into a displacement time series.

    Weighted least squares (SBAS, Berardino et al. 2002) of the kept interferograms, per pixel on
    its own valid pairs, batched over all pixels of a block.  Writes timeseries.h5 (metres,
    positive toward the satellite), temporalCoherence.h5, numInvIfgram.h5 and maskTempCoh.h5 in
    WORK_DIR; numGap.h5 with --nsbas, timeseriesDecorCov.h5 when the template asks for
    mintpy.timeFunc.uncertaintyQuantification = covariance.  With --cluster local (or a dask
    scheduler address) blocks run on dask.distributed.  With sbts.networkInversion.updateStore = yes
    what an update needs is kept in inversionUpdate.h5 and, after `sbts load` appended new
    acquisitions, only the last dates are re-solved (equal to a full inversion within float32
    noise) instead of inverting every pair again.
    """
    from sbts.core.pyapi import invert as invert_stack

    out = invert_stack(template, stack_file=stack_file, work_dir=work_dir, weight_func=weight_func,
                       min_norm_velocity=min_norm_velocity, mask_dataset=mask_dataset, mask_threshold=mask_threshold,
                       min_redundancy=min_redundancy, min_temp_coh=min_temp_coh, residual_norm=residual_norm,
                       nsbas=nsbas, robust=robust, max_memory=max_memory, num_worker=num_worker, cluster=cluster,
                       force=force)
    for path in out.paths:
        click.echo(str(path))
