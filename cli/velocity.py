"""``sbts velocity``."""

from __future__ import annotations

from pathlib import Path

import click

from sbts.cli import options as o


@click.command()
@o.template_arg
@click.option("-i", "--input", "input_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Time-series file (default: the newest WORK_DIR/timeseries*.h5, i.e. the end of the "
                   "correction chain).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file (default: WORK_DIR/velocity.h5).")
@click.option("--start-date", default=None, metavar="YYYYMMDD", help="First date fitted (mintpy.timeFunc.startDate).")
@click.option("--end-date", default=None, metavar="YYYYMMDD", help="Last date fitted (mintpy.timeFunc.endDate).")
@click.option("--exclude-date", multiple=True, metavar="DATE|FILE",
              help="Dates, or a file of dates, left out of the fit; repeatable (mintpy.timeFunc.excludeDate, "
                   "default exclude_date.txt when it exists).")
@click.option("--polynomial", type=click.IntRange(min=0), default=None,
              help="Polynomial degree: 1 velocity, 2 + acceleration (mintpy.timeFunc.polynomial).")
@click.option("--periodic", type=float, multiple=True, metavar="YEARS",
              help="Period in years of a cos/sin term, repeatable: --periodic 1 --periodic 0.5 "
                   "(mintpy.timeFunc.periodic).")
@click.option("--step-date", multiple=True, metavar="YYYYMMDD", help="Step (Heaviside) onset, repeatable "
              "(mintpy.timeFunc.stepDate).")
@click.option("--exp", "exp_terms", default=None, metavar="ONSET,TAU[,TAU2][;ONSET2,TAU]",
              help="Exponential post-seismic terms, tau in days (mintpy.timeFunc.exp).")
@click.option("--log", "log_terms", default=None, metavar="ONSET,TAU[,TAU2][;ONSET2,TAU]",
              help="Logarithmic post-seismic terms, tau in days (mintpy.timeFunc.log).")
@click.option("--uncertainty", type=click.Choice(["residue", "bootstrap", "covariance"]), default=None,
              help="How the Std maps are computed (mintpy.timeFunc.uncertaintyQuantification; default residue).")
@click.option("--bootstrap-count", type=click.IntRange(min=2), default=None,
              help="Number of bootstrap resamples (mintpy.timeFunc.bootstrapCount; default 400).")
@o.work_dir_opt
@o.max_memory_opt
@o.num_worker_opt
@o.cluster_opt
def velocity(template, input_file, output, start_date, end_date, exclude_date, polynomial, periodic, step_date,
             exp_terms, log_terms, uncertainty, bootstrap_count, work_dir, max_memory, num_worker, cluster) -> None:
    """Fit time functions to every pixel of a time series: velocity, seasonal terms, steps.

    One least-squares per block for all pixels (Hetland et al. 2012 time functions): polynomial
    (intercept, velocity m/year, acceleration with d = ... + a·t²/2), periodic amplitude and phase
    (MintPy's A·sin(2πτ/T + φ), τ in years since the first fitted date), steps after their dates,
    exp/log post-seismic terms.  Std maps from the residuals (default) or a seeded bootstrap over
    dates.  Writes velocity.h5 (MintPy's layout) with a Std map per term and 'residue' (MintPy's:
    root of the sum of squared residuals, m).
    """
    from sbts.core.steps.velocity import default_timeseries, fit_time_functions

    key = "mintpy.timeFunc."
    t = o.load_template(template, {
        key + "startDate": start_date, key + "endDate": end_date,
        key + "excludeDate": list(exclude_date) or None, key + "polynomial": polynomial,
        key + "periodic": list(periodic) or None, key + "stepDate": list(step_date) or None,
        key + "exp": exp_terms, key + "log": log_terms,
        key + "uncertaintyQuantification": uncertainty, key + "bootstrapCount": bootstrap_count,
    })
    wd = o.resolve_work_dir(work_dir, template)
    out = fit_time_functions(input_file or default_timeseries(wd), t, output or wd / "velocity.h5",
                             max_memory=o.resolve_memory(max_memory, t), work_dir=wd,
                             num_worker=o.resolve_workers(num_worker, t),
                             cluster=cluster if cluster is not None else t.get("mintpy.compute.cluster"))
    click.echo(str(out))
