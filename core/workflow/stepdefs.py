"""The steps of ``sbts run`` that are not plugins: what each reads, writes and runs.

Each step's work is a ``run(options, workdir, compute, ...)`` of its module in :mod:`sbts.core.steps`
(or of the inversion engine), with options parsed once by ``XxxOptions.from_template``; this module
only says which files of the plan each one takes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sbts.core.errors import InputError, SbtsError
from sbts.core.io.workdir import AVG_COHERENCE_FILE, MASKS, NUM_INV_FILE, TEMP_COHERENCE_FILE, TIMESERIES_FILE
from sbts.core.plugin.interfaces import Exporter, RunProducts
from sbts.core.workflow.plan import RunContext, Step

logger = logging.getLogger(__name__)

TEMPLATE_USED = "sbts_template_used.cfg"


# --------------------------------------------------------------------------- load .. inversion
def _parse_load(ctx: RunContext):
    from sbts.core.steps.load import LoadOptions

    return LoadOptions.from_template(ctx.template, ctx.base_dir)


def _load(ctx: RunContext) -> list[Path]:
    from sbts.core.steps import load

    try:
        return load.run(ctx.opt("load_data"), ctx.workdir, ctx.compute, force=ctx.force)
    finally:
        ctx.refresh()  # the stack may be new: its metadata and the chain are read again


def _load_stale(ctx: RunContext) -> str:
    from sbts.core.steps import load

    return load.stale(ctx.opt("load_data"), ctx.workdir)


def _parse_network(ctx: RunContext):
    from sbts.core.steps.network import NetworkOptions

    return NetworkOptions.from_template(ctx.template)


def _network(ctx: RunContext) -> list[Path]:
    from sbts.core.inversion.options import UPDATE_STORE_KEY
    from sbts.core.steps import network

    return network.run(ctx.opt("modify_network"), ctx.workdir, ctx.compute,
                       update_store=ctx.template.get_bool(UPDATE_STORE_KEY), force=ctx.force)


def _parse_reference(ctx: RunContext):
    from sbts.core.steps.reference import ReferenceOptions

    return ReferenceOptions.from_template(ctx.template)


def _reference(ctx: RunContext) -> list[Path]:
    from sbts.core.inversion.options import UPDATE_STORE_KEY
    from sbts.core.steps import reference

    # the store switch is not a reference option: turning it on must not choose another point
    return reference.run(ctx.opt("reference_point"), ctx.workdir, ctx.compute, keep=_previous_reference(ctx),
                         update_store=ctx.template.get_bool(UPDATE_STORE_KEY), force=ctx.force)


def _appended(ctx: RunContext) -> dict | None:
    """What the last load appended to the stack (None: loaded whole)."""
    from sbts.core.io.load_record import read_update_record

    return read_update_record(ctx.stack_file) if ctx.stack_file.exists() else None


def _previous_reference(ctx: RunContext) -> tuple[int, int, float | None, float | None] | None:
    """After new acquisitions were appended, the reference point of the previous run, when the
    reference options are those it was chosen with (another point would mean a full inversion)."""
    from sbts.core.workflow import state as st

    update = _appended(ctx)
    ref = (update or {}).get("old_reference") or {}
    if "REF_Y" not in ref or "REF_X" not in ref:
        return None
    rec = st.load_state(ctx.work_dir).get("reference_point") or {}
    if rec.get("options") != st.digest(ctx.opt("reference_point")):
        logger.info("the reference options changed since the last run: the reference point is chosen again "
                    "(a changed reference point means a full inversion)")
        return None
    lat, lon = ref.get("REF_LAT"), ref.get("REF_LON")
    return (int(ref["REF_Y"]), int(ref["REF_X"]), None if lat is None else float(lat),
            None if lon is None else float(lon))


def _load_report(ctx: RunContext) -> str:
    update = _appended(ctx)
    if update is None:
        return "loaded every pair"
    return f"appended {len(update.get('new_pairs', []))} pair(s), {len(update.get('new_dates', []))} new date(s)"


def _invert_report(ctx: RunContext) -> str:
    from sbts.core.inversion.incremental import UPDATE_ATTR
    from sbts.core.io.h5 import read_attrs

    if "invert_network" in ctx.notes:
        return ctx.notes["invert_network"]
    path = ctx.workdir.file(TIMESERIES_FILE)
    try:
        note = read_attrs(path).get(UPDATE_ATTR)
    except SbtsError:
        note = None
    return f"updated: {note}" if note else "recomputed (full inversion)"


def _parse_overview(ctx: RunContext):
    from sbts.core.steps.averages import OverviewOptions

    return OverviewOptions.from_template(ctx.template)


def _overview(ctx: RunContext) -> list[Path]:
    from sbts.core.steps.averages import quick_overview

    return quick_overview(ctx.workdir, ctx.compute, update_store=ctx.opt("quick_overview").update_store,
                          force=ctx.force)


def _parse_inversion(ctx: RunContext):
    from sbts.core.inversion.engine import InversionOptions

    return InversionOptions.from_template(ctx.template)  # the unwrapError method picks the dataset


def _invert(ctx: RunContext) -> list[Path]:
    from sbts.core.inversion.engine import invert_network
    from sbts.core.inversion.options import UPDATE_STORE_KEY
    from sbts.core.steps.reference import reference_chooser

    out = invert_network(ctx.stack_file, ctx.work_dir, ctx.opt("invert_network"), max_memory=ctx.compute.max_memory,
                         num_worker=ctx.compute.num_worker, cluster=ctx.compute.cluster,
                         choose_reference=reference_chooser(ctx.template, ctx.work_dir, ctx.compute.max_memory),
                         update_store=ctx.template.get_bool(UPDATE_STORE_KEY), force=ctx.force)
    if out.skipped:  # its own check (stack signature and options) kept the outputs
        ctx.notes["invert_network"] = "kept: timeseries.h5 is up to date with the stack and the same options"
    return list(out.paths)  # + numGap.h5 (NSBAS), timeseriesDecorCov.h5 (covariance) when asked for


def _inversion_outputs(ctx: RunContext) -> list[Path]:
    names = [TIMESERIES_FILE, TEMP_COHERENCE_FILE, NUM_INV_FILE, MASKS["tempCoh"]]
    options = ctx.opt("invert_network")
    names += ["numGap.h5"] * options.nsbas + ["timeseriesDecorCov.h5"] * options.calc_cov
    return [ctx.workdir.file(n) for n in names]


# --------------------------------------------------------------------------- after the corrections
def _rms_input(ctx: RunContext) -> list[Path]:
    """The residual of the correction that models the whole signal (MintPy: the DEM-error step),
    the time series MintPy's residual_RMS step uses, and the mask of the pixels it averages."""
    residual = ctx.product("residual")
    if residual is None:
        return []
    return [residual, *_named(ctx, ctx.opt("residual_RMS").mask_file.value)]


def _parse_rms(ctx: RunContext):
    from sbts.core.steps.rms import RmsOptions

    return RmsOptions.from_template(ctx.template)


def _rms(ctx: RunContext) -> list[Path]:
    from sbts.core.steps import rms

    source = _rms_input(ctx)[0]
    return rms.run(ctx.opt("residual_RMS"), ctx.workdir, ctx.compute, source)


def _parse_refdate(ctx: RunContext):
    from sbts.core.steps.refdate import RefDateOptions

    return RefDateOptions.from_template(ctx.template)


def _refdate(ctx: RunContext) -> list[Path]:
    from sbts.core.steps import refdate

    return refdate.run(ctx.opt("reference_date"), ctx.workdir, ctx.compute, ctx.chain_files())


def _refdate_inputs(ctx: RunContext) -> list[Path]:
    return [*ctx.chain_files(), ctx.workdir.file("reference_date.txt")]


def _parse_velocity(ctx: RunContext):
    from sbts.core.steps.velocity import VelocityOptions

    return VelocityOptions.from_template(ctx.template, resolve=False)  # exclude_date.txt: read when it runs


def _velocity(ctx: RunContext) -> list[Path]:
    from sbts.core.steps import velocity

    return velocity.run(ctx.opt("velocity"), ctx.workdir, ctx.compute, ctx.timeseries_file())


def _velocity_inputs(ctx: RunContext) -> list[Path]:
    options = ctx.opt("velocity")
    cov = [ctx.work_dir / (options.cov_file or "timeseriesDecorCov.h5")] if options.uncertainty == "covariance" else []
    return [ctx.timeseries_file(), *options.exclude_files(ctx.work_dir), *cov]


# --------------------------------------------------------------------------- geocode and save
def _geocode_files(ctx: RunContext) -> list[Path]:
    names = [ctx.timeseries_file(), ctx.workdir.file("velocity.h5"), ctx.workdir.file(TEMP_COHERENCE_FILE),
             ctx.workdir.mask("tempCoh"), ctx.workdir.file(AVG_COHERENCE_FILE), ctx.workdir.geometry_for(ctx.geocoded)]
    return [p for p in names if p.exists()]


def _lookup_file(ctx: RunContext) -> Path | None:
    """The geometry file that maps the stack to latitude/longitude (none for projected grids)."""
    from sbts.core.steps.geocode import Lookup

    if ctx.geocoded:
        return None

    def is_lookup(path: Path) -> bool:
        try:
            Lookup.open(path)
        except InputError:
            return False
        return True

    found = ctx.workdir.geometry(accept=is_lookup)
    if found is None:
        raise InputError(f"{ctx.inputs}: no lookup table to geocode the radar-coded stack (geometryRadar.h5 with "
                         "latitude/longitude, or geometryGeo.h5 with azimuthCoord/rangeCoord); load one with "
                         "mintpy.load.lookupYFile/lookupXFile, or set mintpy.geocode = no")
    return found


def _parse_geocode(ctx: RunContext):
    from sbts.core.steps.geocode import GeocodeOptions

    ctx.template.get_bool("mintpy.geocode")  # the switch, checked with the options
    return GeocodeOptions.from_template(ctx.template)


def _geocode_options(ctx: RunContext):
    # a projected grid (UTM) goes to latitude/longitude: KMZ and HDF-EOS5 need them
    return replace(ctx.opt("geocode"), max_memory=ctx.compute.max_memory, epsg=4326 if ctx.geocoded else None)


def _geocode(ctx: RunContext) -> list[Path]:
    from sbts.core.steps.geocode import geocode_files

    return list(geocode_files(_geocode_files(ctx), _lookup_file(ctx), ctx.workdir.geo, options=_geocode_options(ctx),
                              num_worker=ctx.compute.num_worker, cluster=ctx.compute.cluster))


def _geocode_enabled(ctx: RunContext) -> bool:
    return ctx.template.get_bool("mintpy.geocode") and not ctx.latlon


def _geocode_off(ctx: RunContext) -> str:
    if ctx.latlon:
        return "the stack is already geocoded on latitude/longitude: nothing to geocode"
    return "disabled by the template (mintpy.geocode = no)"


def _geo(ctx: RunContext, path: Path) -> Path:
    return path if ctx.latlon else ctx.workdir.geocoded(path)


def _ensure_latlon(ctx: RunContext, paths: Sequence[Path]) -> None:
    """KMZ and HDF-EOS5 need latitude/longitude: geocode (or warp) what the geocode step did not."""
    from sbts.core.steps.geocode import geocode_files

    if ctx.latlon:
        return
    todo = [p for p in paths if p.exists() and not _is_newer(_geo(ctx, p), p)]
    if todo:
        logger.info("writing latitude/longitude copies of %s", ", ".join(p.name for p in todo))
        geocode_files(todo, _lookup_file(ctx), ctx.workdir.geo, options=_geocode_options(ctx),
                      num_worker=ctx.compute.num_worker, cluster=ctx.compute.cluster)


def _with_latlon(ctx: RunContext, paths: Sequence[Path]) -> list[Path]:
    """The files and, when the stack is not on latitude/longitude, their geocoded copies."""
    out = list(paths)
    if not ctx.latlon:
        out += [_geo(ctx, p) for p in paths]
    return out


def _is_newer(target: Path, source: Path) -> bool:
    return target.exists() and target.stat().st_mtime_ns >= source.stat().st_mtime_ns


# --------------------------------------------------------------------------- exporter steps
def _product_sources(ctx: RunContext) -> dict[str, Path]:
    """The products an exporter step may use (fields of RunProducts), on the stack's grid."""
    return {"timeseries": ctx.timeseries_file(), "velocity": ctx.workdir.file("velocity.h5"),
            "temporal_coherence": ctx.workdir.file(TEMP_COHERENCE_FILE), "mask": ctx.workdir.mask("tempCoh"),
            "avg_spatial_coherence": ctx.workdir.file(AVG_COHERENCE_FILE),
            "geometry": ctx.workdir.geometry_for(ctx.geocoded)}


def _used_sources(ctx: RunContext, exporter: Exporter) -> list[Path]:
    sources = _product_sources(ctx)
    return [sources[name] for name in exporter.uses if name in sources]


def _run_products(ctx: RunContext, exporter: Exporter) -> RunProducts:
    latlon = exporter.requires_geocoded
    found = {}
    for name, path in _product_sources(ctx).items():
        path = _geo(ctx, path) if latlon else path
        found[name] = path if path.exists() else None
    return RunProducts(ctx.work_dir, ctx.inputs / TEMPLATE_USED, **found)


def export_step(exporter: Exporter) -> Step:
    """The ``sbts run`` step of an exporter that declares one (:attr:`Exporter.step`): it writes the
    latitude/longitude copies of the products it uses when it needs geocoded input, then exports
    what :meth:`Exporter.run_request` asks for."""
    name = exporter.step

    def run(ctx: RunContext) -> list[Path]:
        from sbts.core.plugin.runners import export

        if exporter.requires_geocoded:
            _ensure_latlon(ctx, _used_sources(ctx, exporter))
        ctx.inputs.mkdir(parents=True, exist_ok=True)
        write_template(ctx.template, ctx.inputs / TEMPLATE_USED)  # keys such as UNAVCO's come from it
        request = exporter.run_request(_run_products(ctx, exporter), ctx.opt(name))
        return export(exporter.name, request.input_file, dataset=request.dataset, output=request.output,
                      options=request.options, registry=ctx.registry, compute=ctx.compute)

    def inputs(ctx: RunContext) -> list[Path]:
        used = _used_sources(ctx, exporter)
        return _with_latlon(ctx, used) if exporter.requires_geocoded else used

    def outputs(ctx: RunContext) -> list[Path]:
        """The output file when the request names one (a folder output is checked by its inputs)."""
        try:
            request = exporter.run_request(_run_products(ctx, exporter), ctx.opt(name))
        except SbtsError:
            return []
        out = request.output
        return [out] if out is not None and out.suffix else []

    summary = (exporter.summary or exporter.name).strip().splitlines()[0].rstrip(".")
    return Step(name, run, inputs, outputs, parse=lambda ctx: exporter.parse_options(ctx.template),
                enabled=lambda ctx: bool(exporter.enabled(ctx.opt(name))),
                off_reason=lambda ctx: "disabled by the template" + (f" ({next(iter(exporter.keys))} = no)"
                                                                     if exporter.keys else ""),
                help=f"{exporter.name}: {summary}")


def write_template(template, path: Path) -> None:
    from sbts.core.io.h5 import atomic_output

    with atomic_output(path) as tmp:
        template.write(tmp)


# --------------------------------------------------------------------------- what the steps read
# A step runs again when a file it reads changes, so its inputs are every file it reads: the stack,
# and the geometry (water and shadow masks, angles, positions) and mask files the options name.
# (tests/e2e/test_step_reads.py traces the files each step opens against these lists.)
def _named(ctx: RunContext, *values: str | None) -> list[Path]:
    """The files the options name (``None``: no file)."""
    return [ctx.workdir.resolve(v) for v in values if v is not None]


def _network_inputs(ctx: RunContext) -> list[Path]:
    """The mask of the mean coherence (mintpy.network.maskFile, default waterMask.h5, which the step
    writes from the geometry unless the one there is newer: a user's mask counts) and the geometry
    (its waterMask, latitude/longitude for aoiLALO)."""
    mask = ctx.opt("modify_network").template.get("mintpy.network.maskFile")
    return [ctx.stack_file, *ctx.workdir.geometry_files(), *_named(ctx, mask)]


def _reference_inputs(ctx: RunContext) -> list[Path]:
    return [ctx.stack_file, *ctx.workdir.geometry_files(), *_named(ctx, ctx.opt("reference_point").mask_file.value)]


def _inversion_inputs(ctx: RunContext) -> list[Path]:
    """The land mask (waterMaskFile, else the geometry's waterMask) and the shadow mask decide the
    pixels solved."""
    return [ctx.stack_file, *ctx.workdir.geometry_files(), *_named(ctx, ctx.opt("invert_network").water_mask_file)]


# --------------------------------------------------------------------------- the table
def builtin_steps() -> list[Step]:
    stack = lambda c: [c.stack_file]  # noqa: E731
    files = lambda *names: (lambda c: [c.workdir.file(n) for n in names])  # noqa: E731
    return [
        Step("load_data", _load, lambda c: [], stack, parse=_parse_load, stale=_load_stale, report=_load_report,
             help="read the processor's files into inputs/ifgramStack.h5 and inputs/geometry*.h5"),
        Step("modify_network", _network, _network_inputs, files("coherenceSpatialAvg.txt"), parse=_parse_network,
             help="drop pairs (dropIfgram) by baseline, date, index, coherence"),
        Step("reference_point", _reference, _reference_inputs, files(MASKS["connComp"]), parse=_parse_reference,
             help="average coherence, connected-component mask, reference pixel (REF_Y/REF_X)"),
        Step("quick_overview", _overview, lambda c: [c.stack_file, *c.workdir.geometry_files()],
             files("avgPhaseVelocity.h5", "numTriNonzeroIntAmbiguity.h5"),
             parse=_parse_overview, help="stacking velocity and the number of non-zero closure phases"),
        Step("invert_network", _invert, _inversion_inputs, _inversion_outputs, parse=_parse_inversion,
             report=_invert_report, help="weighted least-squares network inversion → timeseries.h5"),
        Step("residual_RMS", _rms, _rms_input, files("reference_date.txt"), parse=_parse_rms,
             enabled=lambda c: c.product("residual") is not None,
             off_reason=lambda c: "no correction of this run writes a residual time series (MintPy: the DEM-error "
                                  "step, mintpy.topographicResidual)",
             help="residual RMS per date: reference date and outlier dates (needs the DEM-error step's residual)"),
        Step("reference_date", _refdate, _refdate_inputs, lambda c: [], parse=_parse_refdate,
             help="re-reference the time series to a date"),
        Step("velocity", _velocity, _velocity_inputs, files("velocity.h5"), parse=_parse_velocity,
             help="time functions: velocity, seasonal terms, steps → velocity.h5"),
        Step("geocode", _geocode, lambda c: [*_geocode_files(c), *c.workdir.geometry_files()],  # + the lookup table
             lambda c: [c.workdir.geocoded(p) for p in _geocode_files(c)],
             parse=_parse_geocode, enabled=_geocode_enabled, off_reason=_geocode_off,
             help="radar (or a projected grid such as UTM) → latitude/longitude (skipped for lat/lon data)"),
    ]


__all__ = ["builtin_steps", "export_step", "write_template", "TEMPLATE_USED"]
