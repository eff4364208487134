"""``sbts rms``."""

from __future__ import annotations

from pathlib import Path

import click

from sbts.cli import options as o


@click.command()
@o.template_arg
@click.option("-i", "--input", "input_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Residual time series (default: WORK_DIR/timeseriesResidual.h5).")
@click.option("--cutoff", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Outlier if RMS > cutoff · median(RMS)/0.6745 (mintpy.residualRMS.cutoff; default 3).")
@click.option("--deramp", type=click.Choice(["no", "linear", "quadratic", "linear_range", "linear_azimuth",
                                             "quadratic_range", "quadratic_azimuth"]), default=None,
              help="Ramp removed from each date first (mintpy.residualRMS.deramp; default quadratic).")
@click.option("--mask", "mask_file", default=None, metavar="FILE|no",
              help="Pixels used (mintpy.residualRMS.maskFile; default maskTempCoh.h5 when it exists).")
@click.option("--no-plot", is_flag=True, help="Do not draw rms_<stem>.pdf/png.")
@o.work_dir_opt
@o.max_memory_opt
@o.num_worker_opt
@o.cluster_opt
def rms(template, input_file, cutoff, deramp, mask_file, no_plot, work_dir, max_memory, num_worker, cluster) -> None:
    """Residual RMS per date: pick the reference date and the noisy dates.

    After removing a ramp per date on the mask pixels, RMS_i = sqrt(mean(r_i²)) (Yunjun et al.
    2019).  The date of minimum RMS is the best temporal reference; dates with RMS above
    cutoff · median(RMS)/0.6745 are outliers.  Writes in WORK_DIR what MintPy's timeseries_rms.py
    writes: the deramped residual <stem>_ramp.h5, rms_<stem>_ramp.txt (metres), reference_date.txt,
    exclude_date.txt (only when there are outliers; read by `sbts refdate` and `sbts velocity`),
    and a bar plot.
    """
    from sbts.core.steps.rms import residual_rms

    key = "mintpy.residualRMS."
    t = o.load_template(template, {key + "cutoff": cutoff, key + "deramp": deramp, key + "maskFile": mask_file})
    wd = o.resolve_work_dir(work_dir, template)
    result = residual_rms(input_file or wd / "timeseriesResidual.h5", t, wd,
                          max_memory=o.resolve_memory(max_memory, t), plot=not no_plot,
                          num_worker=o.resolve_workers(num_worker, t),
                          cluster=cluster if cluster is not None else t.get("mintpy.compute.cluster"))
    for path in result.files:
        click.echo(str(path))
