"""The public Python API (``import sbts``): the library calls the commands make, with keyword options.

Each function here is what one command does (``sbts run``, ``sbts load``, ``sbts invert``,
``sbts correct NAME``, ``sbts export FORMAT``), taking the same options as typed keywords and
returning what was written instead of printing it; :func:`open_dataset` gives any product as an
:class:`xarray.Dataset`.  They are re-exported by ``sbts/__init__.py`` (``sbts.run`` ...), imported
on first use so that ``import sbts`` stays light.  A template key can be set without editing the
template through ``settings={"mintpy.networkInversion.minTempCoh": 0.8}`` (bools as yes/no, lists
comma-joined), exactly as ``sbts correct NAME -s KEY=VALUE`` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike


def _template(template: PathLike | None, settings: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None):
    from sbts.core.config.template import Template

    t = Template.read(template)
    return t.updated({**(overrides or {}), **(settings or {})})


def _work_dir(work_dir: PathLike | None, template: PathLike | None) -> Path:
    if work_dir is not None:
        return Path(work_dir)
    if template is not None:
        return Path(template).resolve().parent
    return Path.cwd()


def open_dataset(path: PathLike, dataset: str | Sequence[str] | None = None, *, chunks: Any = "auto"):
    """Open an sbts/MintPy HDF5 product as a lazy :class:`xarray.Dataset`.

    Parameters
    ----------
    path : str or os.PathLike
        Any product: ``timeseries*.h5``, ``ifgramStack.h5``, ``velocity.h5``, ``geometry*.h5``,
        masks, an HDF-EOS5 ``*.he5`` file.
    dataset : str or sequence of str, optional
        Only these datasets (short names for HDF-EOS5 files); default every map and cube.
    chunks : "auto", dict, or None, optional
        dask chunks (default ``"auto"``: each block holds every date/pair, sized by dask); ``None``
        opens without dask (still lazy: a dataset is read when its values are asked for).

    Returns
    -------
    xarray.Dataset
        Dims ``time`` (time series, ``datetime64``) or ``pair`` (stack, ``DATE1_DATE2`` labels with
        ``date1``/``date2``/``bperp``/``dropIfgram`` coordinates), ``y``, ``x``.  Geocoded files have
        pixel-centre coordinates in ``y``/``x`` (and ``lat``/``lon`` for degree grids) and a
        ``spatial_ref`` coordinate (``crs_wkt``, ``GeoTransform``: CF and rioxarray read it);
        radar files have pixel indices.  ``attrs`` are the file's MintPy attributes; each variable has
        its ``units``.  Values are exactly the HDF5 dataset's (no scaling, no re-referencing).

    Raises
    ------
    InputError
        Not an sbts/MintPy file, or no dataset ``dataset``.

    Examples
    --------
    >>> ds = sbts.open_dataset("timeseries.h5")
    >>> ds.timeseries.sel(time="2020-06").mean("time").plot()
    """
    from sbts.core.tools.dataset import open_dataset as _open

    return _open(path, dataset, chunks=chunks)


def run(template: PathLike | None = None, steps: str | Sequence[str] | None = None, *, start: str | None = None,
        end: str | None = None, work_dir: PathLike | None = None, settings: Mapping[str, Any] | None = None,
        force: bool = False, plot: bool | None = None, max_memory: float | None = None,
        num_worker: int | str | None = None, cluster: str | None = None) -> list:
    """Run steps of the small-baseline workflow, as ``sbts run`` (MintPy's smallbaselineApp.py).

    Parameters
    ----------
    template : str or os.PathLike, optional
        MintPy/sbts template; ``None``: the defaults, run in ``work_dir``.
    steps : str or sequence of str, optional
        Run only these steps, in the workflow's order (``--dostep`` for each); default every step
        from ``start`` to ``end``.  ``sbts run --help`` lists the names (``load_data``,
        ``modify_network``, ``invert_network``, ``velocity`` ...).
    start, end : str, optional
        First and last step (``--start``/``--end``); not with ``steps``.
    work_dir : str or os.PathLike, optional
        Default: the template's folder, else the current one.
    settings : mapping, optional
        Template keys set for this run (``{"mintpy.network.excludeIfgIndex": [3, 7]}``).
    force : bool
        Rerun steps whose outputs are up to date.
    plot : bool, optional
        Draw the overview pictures into ``work_dir/pic``: True always, False never, None (default)
        as ``mintpy.plot`` says (yes unless set to no) when more than one step was selected and a
        step ran or ``pic`` does not exist.
    max_memory : float, optional
        GB per block (``mintpy.compute.maxMemory``).
    num_worker : int or str, optional
        Processes: a number, ``"all"`` or ``"N%"`` (``mintpy.compute.numWorker``).
    cluster : str, optional
        ``"local"`` or a dask scheduler address (``mintpy.compute.cluster``).

    Returns
    -------
    list of StepReport
        One per step run or skipped: ``name``, ``status`` (ran/skipped/disabled), ``seconds``,
        ``outputs`` (paths).

    Raises
    ------
    InputError, TemplateError
        Unknown step, ``steps`` with ``start``/``end``, or a bad template value (checked before any
        step runs).
    """
    from sbts.core.config.compute import resolve_workers
    from sbts.core.errors import InputError
    from sbts.core.workflow.runner import run_workflow

    t = _template(template, settings)
    wd = _work_dir(work_dir, template)
    workers = resolve_workers(num_worker, t)
    common = dict(force=force, max_memory=max_memory, num_worker=workers, cluster=cluster, template=t)
    if steps is None:
        return run_workflow(template, wd, start=start, end=end, plot=plot, **common)
    if start is not None or end is not None:
        raise InputError("sbts.run: give either steps or start/end, not both")
    return run_workflow(template, wd, steps=[steps] if isinstance(steps, str) else list(steps), plot=plot, **common)


def load(template: PathLike | None = None, *, work_dir: PathLike | None = None, processor: str | None = None,
         unw_file: str | None = None, cor_file: str | None = None, conncomp_file: str | None = None,
         dem_file: str | None = None, subset_yx: str | None = None, subset_lalo: str | None = None,
         settings: Mapping[str, Any] | None = None, max_memory: float | None = None,
         num_worker: int | str | None = None, cluster: str | None = None, force: bool = False):
    """Load a processor's interferograms and geometry into ``work_dir/inputs``, as ``sbts load``.

    Parameters
    ----------
    template : str or os.PathLike, optional
        Template with the ``mintpy.load.*`` keys (glob patterns relative to its folder).
    work_dir : str or os.PathLike, optional
        Default: the template's folder, else the current one.
    processor : str, optional
        Reader plugin (``mintpy.load.processor``); default: the reader that recognises the files.
    unw_file, cor_file, conncomp_file, dem_file : str, optional
        ``mintpy.load.unwFile``, ``corFile``, ``connCompFile``, ``demFile``.
    subset_yx, subset_lalo : str, optional
        ``mintpy.subset.yx`` (``"y0:y1,x0:x1"``), ``mintpy.subset.lalo`` (``"S:N,W:E"``).
    settings : mapping, optional
        Other template keys.
    max_memory : float, optional
        GB per block.
    num_worker : int or str, optional
        Threads that read a block's interferograms (``mintpy.compute.numWorker``: an integer, ``"all"``
        or ``"N%"``); the written file is the same whatever their number.
    cluster : str, optional
        A dask scheduler's address (``mintpy.compute.cluster``): its workers read the interferograms
        (they need the files at the same paths); ``"local"`` reads with threads here.
    force : bool
        Reload even when the inputs are unchanged.

    Returns
    -------
    LoadResult
        ``stack_file`` (``inputs/ifgramStack.h5``), ``geometry_files``, ``reader``, ``skipped``.
    """
    from sbts.core.config.compute import ComputeOptions
    from sbts.core.steps.load import load_data

    key = "mintpy.load."
    t = _template(template, settings, {key + "unwFile": unw_file, key + "corFile": cor_file,
                                       key + "connCompFile": conncomp_file, key + "demFile": dem_file,
                                       "mintpy.subset.yx": subset_yx, "mintpy.subset.lalo": subset_lalo})
    base = Path(template).resolve().parent if template else Path.cwd()
    compute = ComputeOptions.from_template(t, max_memory, num_worker, cluster)
    return load_data(t, _work_dir(work_dir, template), base_dir=base, processor=processor,
                     max_memory=compute.max_memory, force=force, num_worker=compute.num_worker,
                     cluster=compute.cluster)


def invert(template: PathLike | None = None, *, stack_file: PathLike | None = None, work_dir: PathLike | None = None,
           weight_func: str | None = None, min_norm_velocity: bool | None = None, mask_dataset: str | None = None,
           mask_threshold: float | None = None, min_redundancy: float | None = None,
           min_temp_coh: float | None = None, residual_norm: str | None = None, nsbas: bool | None = None,
           robust: bool | None = None, settings: Mapping[str, Any] | None = None, max_memory: float | None = None,
           num_worker: int | str | None = None, cluster: str | None = None, force: bool = False):
    """Invert the interferogram network into a displacement time series, as ``sbts invert``.

    Parameters
    ----------
    template : str or os.PathLike, optional
        Template whose ``mintpy.networkInversion.*`` keys apply.
    stack_file : str or os.PathLike, optional
        Default ``work_dir/inputs/ifgramStack.h5``.
    work_dir : str or os.PathLike, optional
        Where the outputs go; default: the template's folder, else the current one.
    weight_func : {"var", "fim", "coh", "no"}, optional
        ``mintpy.networkInversion.weightFunc``.
    min_norm_velocity : bool, optional
        SBAS velocity form (True) or phase form (``mintpy.networkInversion.minNormVelocity``).
    mask_dataset : {"no", "coherence", "connectComponent"}, optional
    mask_threshold, min_redundancy, min_temp_coh : float, optional
        ``mintpy.networkInversion.maskThreshold``, ``minRedundancy``, ``minTempCoh``.
    residual_norm : {"L2", "L1"}, optional
        Least squares or weighted L1, robust to unwrapping errors
        (``mintpy.networkInversion.residualNorm``).
    nsbas : bool, optional
        NSBAS temporal constraint on pixels whose network has gaps; writes ``numGap.h5``
        (``sbts.nsbas``).
    robust : bool, optional
        Screened least squares, robust to unwrapping errors: pixels with a residual beyond
        ``sbts.robust.threshold`` (default 5 rad) are re-fitted by L1 and the pairs it finds off by a
        cycle dropped (``sbts.robust``).
    settings : mapping, optional
        Other template keys.
    max_memory : float, optional
        GB per block.
    num_worker : int or str, optional
        Processes.
    cluster : str, optional
        ``"local"`` or a dask scheduler address.
    force : bool
        Recompute even if the outputs are up to date.

    Returns
    -------
    InversionOutputs
        ``timeseries``, ``temporal_coherence``, ``num_inv_ifgram``, ``mask_temp_coh`` (paths),
        ``skipped``, ``num_reliable_pixels``.
    """
    from sbts.core.config.compute import resolve_memory, resolve_workers
    from sbts.core.inversion.engine import InversionOptions, invert_network
    from sbts.core.inversion.options import UPDATE_STORE_KEY
    from sbts.core.steps.reference import reference_chooser

    key = "mintpy.networkInversion."
    t = _template(template, settings, {
        key + "weightFunc": weight_func, key + "minNormVelocity": min_norm_velocity,
        key + "maskDataset": mask_dataset, key + "maskThreshold": mask_threshold,
        key + "minRedundancy": min_redundancy, key + "minTempCoh": min_temp_coh,
        key + "residualNorm": residual_norm, "sbts.nsbas": nsbas, "sbts.robust": robust})
    wd = _work_dir(work_dir, template)
    cluster = cluster if cluster is not None else t.get("mintpy.compute.cluster")
    memory = resolve_memory(max_memory, t)
    return invert_network(Path(stack_file) if stack_file else wd / "inputs" / "ifgramStack.h5", wd,
                          InversionOptions.from_template(t), max_memory=memory,
                          num_worker=resolve_workers(num_worker, t), cluster=cluster, force=force,
                          choose_reference=reference_chooser(t, wd, memory),
                          update_store=t.get_bool(UPDATE_STORE_KEY))


def correct(name: str, template: PathLike | None = None, *, input_file: PathLike | None = None,
            output_file: PathLike | None = None, geometry_file: PathLike | None = None,
            work_dir: PathLike | None = None, settings: Mapping[str, Any] | None = None,
            max_memory: float | None = None, **options: Any):
    """Run correction plugin ``name`` (``deramp``, ``dem_error``, ``bridging`` ...), as ``sbts correct NAME``.

    Parameters
    ----------
    name : str
        The correction (``sbts plugins`` lists them).
    template : str or os.PathLike, optional
        Template whose keys the correction reads.
    input_file : str or os.PathLike, optional
        Default ``work_dir/timeseries.h5`` (``inputs/ifgramStack.h5`` for stack corrections).
    output_file : str or os.PathLike, optional
        Default: the input name with the correction's suffix (``timeseries_ramp.h5``).
    geometry_file : str or os.PathLike, optional
        Default ``work_dir/inputs/geometry*.h5``.
    work_dir : str or os.PathLike, optional
        Default: the template's folder, else the current one.
    settings : mapping, optional
        Template keys (``{"mintpy.deramp": "quadratic"}``).
    max_memory : float, optional
        GB per block.
    **options
        The correction's own options (``-O KEY=VALUE``); one it does not declare is refused.

    Returns
    -------
    CorrectionResult
        ``output`` (path) and ``extra_outputs``.
    """
    from sbts.core.config.compute import resolve_memory
    from sbts.core.plugin.runners import run_correction

    t = _template(template, settings)
    return run_correction(name, t, _work_dir(work_dir, template),
                          input_file=Path(input_file) if input_file else None,
                          output_file=Path(output_file) if output_file else None,
                          geometry_file=Path(geometry_file) if geometry_file else None,
                          max_memory=resolve_memory(max_memory, t), **{k: str(v) for k, v in options.items()})


def export(fmt: str, file: PathLike, dataset: str | None = None, *, output: PathLike | None = None,
           **options: Any) -> list[Path]:
    """Write ``file`` in another format with exporter plugin ``fmt``, as ``sbts export FORMAT``.

    Parameters
    ----------
    fmt : str
        The exporter: ``geotiff``, ``kmz``, ``hdfeos5``, ``gmt``, ``roipac``, ``gbis`` ... (``sbts
        plugins`` lists them).
    file : str or os.PathLike
        The product to export.
    dataset : str, optional
        One dataset or date of it.
    output : str or os.PathLike, optional
        Output file or folder (default: beside the input, named as the command names it).
    **options
        The format's options (``-O KEY=VALUE``).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from sbts.core.plugin.runners import export as run_export

    return run_export(fmt, file, dataset=dataset, output=output, options={k: str(v) for k, v in options.items()})


def demo_data(directory: PathLike = "sbts_demo", *, seed: int = 0, size: tuple[int, int] = (120, 150),
              dates: int = 30, orbit: str = "ascending") -> Path:
    """Write the synthetic demo stack and its template, without running anything (``sbts demo`` runs it all).

    The stack is what a processor hands over, in MintPy's layout (``synthetic/ifgramStack.h5``,
    ``synthetic/geometryGeo.h5``): a subsiding bowl, seasonal motion, DEM error, troposphere,
    decorrelation, a lake and a few unwrapping errors, seeded; the known truth is in
    ``synthetic/truth.h5``.  No download.

    Parameters
    ----------
    directory : str or os.PathLike
        Where to write (created).
    seed : int
        Random seed.
    size : (int, int)
        Rows and columns (at least 16 each).
    dates : int
        Number of acquisitions (at least 3).
    orbit : {"ascending", "descending"}
        The track's look geometry (heading, incidence, azimuth angle in ``geometryGeo.h5``); a
        second track on the same ground for ``sbts horzvert``.

    Returns
    -------
    pathlib.Path
        The template ``directory/sbts_demo.cfg`` for :func:`run` and the other steps.
    """
    from sbts.core.demo.run import write_demo_inputs
    from sbts.core.errors import InputError

    if str(orbit).lower() not in ("ascending", "descending"):
        raise InputError(f"sbts.demo_data: orbit={orbit!r}; use 'ascending' or 'descending'")
    return write_demo_inputs(directory, seed=seed, shape=tuple(size), num_date=dates,
                             orbit_direction=str(orbit).upper())


__all__ = ["open_dataset", "run", "load", "invert", "correct", "export", "demo_data"]
