"""``sbts run``: the small-baseline workflow (MintPy's smallbaselineApp steps) with update mode.

Each step declares its inputs, outputs and the template keys it depends on.  A step is skipped
when all its outputs exist, are newer than its inputs, and its options are the same as when it
last ran (recorded in ``.sbts_run.json``); ``force`` reruns.  Corrections are resolved by name
in the plugin registry, so a third-party correction joins the time-series chain through the
template key ``sbts.run.extraCorrections``.  The run holds a lock on the work directory, writes
``sbts_run.log`` and a summary of every step's outputs in ``sbts_run_summary.txt``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.errors import InputError, SbtsError
from sbts.core.io.lock import work_dir_lock
from sbts.core.config.template import Template

logger = logging.getLogger(__name__)

STEP_NAMES = (
    "load_data", "modify_network", "reference_point", "quick_overview", "correct_unwrap_error",
    "invert_network", "correct_LOD", "correct_troposphere", "deramp", "correct_topography",
    "residual_RMS", "reference_date", "velocity", "geocode", "google_earth", "hdfeos5",
)
STATE_FILE = ".sbts_run.json"
LOG_FILE = "sbts_run.log"
SUMMARY_FILE = "sbts_run_summary.txt"
TROPO_SUFFIX = {"height_correlation": "tropHgt", "gacos": "GACOS"}


@dataclass
class RunContext:
    """What the steps share: the template, the folders, the budget, and the time-series chain."""

    template: Template
    work_dir: Path
    base_dir: Path
    max_memory: float = DEFAULT_MAX_MEMORY_GB
    num_worker: int = 1
    cluster: str | None = None

    @property
    def inputs(self) -> Path:
        return self.work_dir / "inputs"

    @property
    def stack_file(self) -> Path:
        return self.inputs / "ifgramStack.h5"

    def geometry_file(self) -> Path | None:
        for name in ("geometryRadar.h5", "geometryGeo.h5"):
            if (self.inputs / name).exists():
                return self.inputs / name
        return None

    def metadata(self):
        from sbts.core.io.h5 import read_metadata

        return read_metadata(self.stack_file)

    # ---------------------------------------------------------------- the chain
    def corrections(self) -> list[tuple[str, str, str]]:
        """(step, correction plugin, suffix) of the enabled time-series corrections, in order."""
        from sbts.core.plugin.registry import get_registry

        t, reg = self.template, get_registry()
        chain: list[tuple[str, str, str]] = []
        if self.lod_enabled():
            chain.append(("correct_LOD", "lod", "LOD"))
        method = t.get_str("mintpy.troposphericDelay.method", ["no", "pyaps", "height_correlation", "gacos"])
        if method:
            suffix = (t.get("mintpy.troposphericDelay.weatherModel") or "ERA5") if method == "pyaps" \
                else TROPO_SUFFIX[method]
            chain.append(("correct_troposphere", method, suffix))
        if t.get_str("mintpy.deramp", ["no", "linear", "quadratic", "linear_range", "linear_azimuth",
                                        "quadratic_range", "quadratic_azimuth"]):
            chain.append(("deramp", "deramp", "ramp"))
        if t.get_bool("mintpy.topographicResidual"):
            chain.append(("correct_topography", "dem_error", "demErr"))
        for name in t.get_list("sbts.run.extraCorrections"):
            item = reg.get("correction", name)
            if item.stage != "timeseries":
                raise InputError(f"sbts.run.extraCorrections: {name!r} is an interferogram-stack correction; "
                                 "only time-series corrections can join the chain")
            chain.append((f"correct_{name}", name, item.suffix))
        return chain

    def lod_enabled(self) -> bool:
        value = (self.template.raw("mintpy.localOscillatorDrift") or "").lower()
        if value in ("auto_envisat", "auto"):
            if not self.stack_file.exists():
                return False
            platform = (self.metadata().radar.platform or "").lower()
            return platform.startswith("env")
        return self.template.get_bool("mintpy.localOscillatorDrift")

    def timeseries_file(self, upto: str | None = None) -> Path:
        """The time-series file after the corrections before step ``upto`` (all if None)."""
        name = "timeseries"
        for step, _plugin, suffix in self.corrections():
            if step == upto:
                break
            name += f"_{suffix}"
        return self.work_dir / f"{name}.h5"

    def chain_files(self) -> list[Path]:
        files = [self.work_dir / "timeseries.h5"]
        name = "timeseries"
        for _step, _plugin, suffix in self.corrections():
            name += f"_{suffix}"
            files.append(self.work_dir / f"{name}.h5")
        return files


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[RunContext], Sequence[Path]]
    inputs: Callable[[RunContext], Sequence[Path]]
    outputs: Callable[[RunContext], Sequence[Path]]
    keys: tuple[str, ...] = ()  # template key prefixes whose values form the step's options
    enabled: Callable[[RunContext], bool] = lambda ctx: True
    help: str = ""
    # content the step depends on beyond file times (drop list, reference point, dataset versions)
    fingerprint: Callable[[RunContext], str] = lambda ctx: ""
    # the step's own check of its outputs against sources the workflow does not track as files
    # (load_data: the processor's files, through the loader's input signature); "" = current
    stale: Callable[[RunContext], str] = lambda ctx: ""
    # why the step does not run when ``enabled`` says no (logged and written to the summary)
    off_reason: Callable[[RunContext], str] = lambda ctx: "disabled by the template"


@dataclass
class StepReport:
    name: str
    status: str  # ran / skipped / disabled / failed
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    note: str = ""


# --------------------------------------------------------------------------- step bodies
def _load_patterns(ctx: RunContext) -> dict[str, str]:
    from sbts.core.steps.load import build_request

    return build_request(ctx.template, ctx.base_dir).patterns


def _loaded_files(ctx: RunContext) -> list[Path]:
    return [p for p in (ctx.stack_file, ctx.inputs / "geometryRadar.h5", ctx.inputs / "geometryGeo.h5") if p.exists()]


def _load(ctx: RunContext) -> list[Path]:
    from sbts.core.steps.load import load_data

    if not _load_patterns(ctx) and ctx.stack_file.exists():
        # smallbaselineApp.py goes on with an inputs/ written before (MintPy's load_data.py,
        # prep_aria.py, an earlier `sbts load`) when the template names no file to load
        logger.info("no mintpy.load.*File pattern in the template: using the loaded %s",
                    ", ".join(str(p.relative_to(ctx.work_dir)) for p in _loaded_files(ctx)))
        return _loaded_files(ctx)
    result = load_data(ctx.template, ctx.work_dir, base_dir=ctx.base_dir, max_memory=ctx.max_memory)
    return [p for p in [result.stack_file, *result.geometry_files] if p is not None]


def _load_stale(ctx: RunContext) -> str:
    """The processor's files are load_data's inputs: a changed or added interferogram reloads."""
    from sbts.core.steps.load import stale_outputs

    if not _load_patterns(ctx):
        return "" if ctx.stack_file.exists() else f"{ctx.stack_file.name} is missing"
    return stale_outputs(ctx.template, ctx.work_dir, base_dir=ctx.base_dir)


def _modify_network(ctx: RunContext) -> list[Path]:
    from sbts.core.steps.averages import write_water_mask
    from sbts.core.steps.network import modify_network

    water = write_water_mask(ctx.stack_file, ctx.work_dir)  # as smallbaselineApp, before the network mask
    report = modify_network(ctx.stack_file, ctx.template, ctx.work_dir, ctx.max_memory)
    logger.info("%s", report.summary())
    return [ctx.work_dir / "coherenceSpatialAvg.txt"] + ([water] if water else [])


def _reference_point(ctx: RunContext) -> list[Path]:
    from sbts.core.steps.averages import write_average_coherence, write_conncomp_mask
    from sbts.core.io.products import IfgramStack
    from sbts.core.steps.reference import choose_reference, set_reference

    outputs = []
    if IfgramStack(ctx.stack_file).has("coherence"):
        outputs.append(write_average_coherence(ctx.stack_file, ctx.work_dir, ctx.max_memory))
    outputs.append(write_conncomp_mask(ctx.stack_file, ctx.work_dir, ctx.max_memory))
    choice = choose_reference(IfgramStack(ctx.stack_file), ctx.template, ctx.work_dir, ctx.max_memory)
    set_reference(ctx.stack_file, choice.y, choice.x, choice.lat, choice.lon)
    logger.info("reference point y=%d x=%d (%s)", choice.y, choice.x, choice.method)
    return outputs


def _quick_overview(ctx: RunContext) -> list[Path]:
    from sbts.core.steps.averages import write_stacking_velocity
    from sbts.core.inversion.closure import write_num_nonzero_integer_closure
    from sbts.core.io.products import IfgramStack

    outputs = [write_stacking_velocity(ctx.stack_file, ctx.work_dir, ctx.max_memory)]
    if IfgramStack(ctx.stack_file).pairs.keep.sum() >= 3:
        outputs += write_num_nonzero_integer_closure(ctx.stack_file, ctx.work_dir, ctx.max_memory)
    else:
        logger.info("fewer than 3 kept pairs: no closure phase to count")
    return outputs


def _unwrap_method(ctx: RunContext) -> str | None:
    return ctx.template.get_str("mintpy.unwrapError.method",
                                ["no", "bridging", "phase_closure", "bridging+phase_closure"])


def _correct_unwrap_error(ctx: RunContext) -> list[Path]:
    from sbts.core.plugin.runners import run_correction

    result = run_correction(_unwrap_method(ctx), ctx.template, ctx.work_dir, input_file=ctx.stack_file,
                            max_memory=ctx.max_memory)
    return [result.output, *result.extra_outputs]


def _invert(ctx: RunContext) -> list[Path]:
    from sbts.core.inversion.engine import InversionOptions, invert_network

    options = InversionOptions.from_template(ctx.template)  # the unwrapError method picks the dataset
    out = invert_network(ctx.stack_file, ctx.work_dir, options, template=ctx.template, max_memory=ctx.max_memory,
                         num_worker=ctx.num_worker, cluster=ctx.cluster)
    return [out.timeseries, out.temporal_coherence, out.num_inv_ifgram, out.mask_temp_coh]


def _correction_step(step: str) -> Callable[[RunContext], list[Path]]:
    def run(ctx: RunContext) -> list[Path]:
        from sbts.core.plugin.runners import run_correction

        plugin = next(p for s, p, _ in ctx.corrections() if s == step)
        result = run_correction(plugin, ctx.template, ctx.work_dir, input_file=ctx.timeseries_file(step),
                                output_file=_correction_output(ctx, step), max_memory=ctx.max_memory)
        return [result.output, *result.extra_outputs]

    return run


def _correction_output(ctx: RunContext, step: str) -> Path:
    files = ctx.chain_files()
    names = [s for s, _, _ in ctx.corrections()]
    return files[names.index(step) + 1]


def _rms_input(ctx: RunContext) -> list[Path]:
    """The DEM-error step's residual phase, the only input MintPy's residual_RMS step uses."""
    return [ctx.work_dir / "timeseriesResidual.h5"]


def _rms_enabled(ctx: RunContext) -> bool:
    """As MintPy: the residual comes from the DEM-error step; without it the step is skipped (no
    reference_date.txt, no exclude_date.txt), rather than measuring the deformation itself."""
    return any(s == "correct_topography" for s, _, _ in ctx.corrections())


def _residual_rms(ctx: RunContext) -> list[Path]:
    from sbts.core.steps.rms import residual_rms

    (source,) = _rms_input(ctx)
    result = residual_rms(source, ctx.template, ctx.work_dir)
    return list(result.outputs)


def _reference_date(ctx: RunContext) -> list[Path]:
    from sbts.core.steps.refdate import reference_date, resolve_reference_date

    date = resolve_reference_date(ctx.template, ctx.work_dir)
    if date is None:
        logger.info("mintpy.reference.date = no: time series keep their first date as reference")
        return []
    files = [p for p in ctx.chain_files() if p.exists()]
    return list(reference_date(files, date))


def _velocity(ctx: RunContext) -> list[Path]:
    from sbts.core.steps.velocity import fit_time_functions

    return [fit_time_functions(ctx.timeseries_file(), ctx.template, ctx.work_dir / "velocity.h5",
                               max_memory=ctx.max_memory)]


def _geocoded(ctx: RunContext) -> bool:
    return ctx.stack_file.exists() and ctx.metadata().grid.is_geocoded


def _latlon(ctx: RunContext) -> bool:
    """Geocoded on latitude/longitude (not radar-coded, not a projected grid such as UTM)."""
    if not _geocoded(ctx):
        return False
    return (ctx.metadata().grid.geo.epsg or 4326) == 4326


def _geocode_files(ctx: RunContext) -> list[Path]:
    names = [ctx.timeseries_file(), ctx.work_dir / "velocity.h5", ctx.work_dir / "temporalCoherence.h5",
             ctx.work_dir / "maskTempCoh.h5", ctx.work_dir / "avgSpatialCoh.h5"]
    geometry = [ctx.inputs / ("geometryGeo.h5" if _geocoded(ctx) else "geometryRadar.h5")]
    return [p for p in names + geometry if p.exists()]


def _lookup_file(ctx: RunContext) -> Path | None:
    """The geometry file that maps the stack to latitude/longitude (none for projected grids)."""
    from sbts.core.steps.geocode import Lookup

    if _geocoded(ctx):
        return None
    for name in ("geometryRadar.h5", "geometryGeo.h5"):
        path = ctx.inputs / name
        if path.exists():
            try:
                Lookup.open(path)
            except InputError:
                continue
            return path
    raise InputError(f"{ctx.inputs}: no lookup table to geocode the radar-coded stack (geometryRadar.h5 with "
                     "latitude/longitude, or geometryGeo.h5 with azimuthCoord/rangeCoord); load one with "
                     "mintpy.load.lookupYFile/lookupXFile, or set mintpy.geocode = no")


def _geocode_options(ctx: RunContext):
    from sbts.core.steps.geocode import GeocodeOptions

    # a projected grid (UTM) goes to latitude/longitude: KMZ and HDF-EOS5 need them
    return GeocodeOptions.from_template(ctx.template, max_memory=ctx.max_memory,
                                        epsg=4326 if _geocoded(ctx) else None)


def _geocode(ctx: RunContext) -> list[Path]:
    from sbts.core.steps.geocode import geocode_files

    return list(geocode_files(_geocode_files(ctx), _lookup_file(ctx), ctx.work_dir / "geo",
                              options=_geocode_options(ctx)))


def _geocode_off(ctx: RunContext) -> str:
    if _latlon(ctx):
        return "the stack is already geocoded on latitude/longitude: nothing to geocode"
    return "disabled by the template (mintpy.geocode = no)"


def _geo(ctx: RunContext, path: Path) -> Path:
    return path if _latlon(ctx) else ctx.work_dir / "geo" / f"geo_{path.name}"


def _ensure_latlon(ctx: RunContext, paths: Sequence[Path]) -> None:
    """KMZ and HDF-EOS5 need latitude/longitude: geocode (or warp) what the geocode step did not."""
    from sbts.core.steps.geocode import geocode_files

    if _latlon(ctx):
        return
    todo = [p for p in paths if p.exists() and not _is_newer(_geo(ctx, p), p)]
    if todo:
        logger.info("writing latitude/longitude copies of %s", ", ".join(p.name for p in todo))
        geocode_files(todo, _lookup_file(ctx), ctx.work_dir / "geo", options=_geocode_options(ctx))


def _with_latlon(ctx: RunContext, paths: Sequence[Path]) -> list[Path]:
    """The files and, when the stack is not on latitude/longitude, their geocoded copies."""
    out = list(paths)
    if not _latlon(ctx):
        out += [_geo(ctx, p) for p in paths]
    return out


def _is_newer(target: Path, source: Path) -> bool:
    return target.exists() and target.stat().st_mtime_ns >= source.stat().st_mtime_ns


def _google_earth(ctx: RunContext) -> list[Path]:
    from sbts.core.plugin.exporting import export

    _ensure_latlon(ctx, [ctx.work_dir / "velocity.h5"])
    velocity = _geo(ctx, ctx.work_dir / "velocity.h5")
    return export("kmz", velocity, dataset="velocity", output=ctx.work_dir / "pic" / f"{velocity.stem}.kmz")


def _hdfeos5(ctx: RunContext) -> list[Path]:
    from sbts.core.plugin.exporting import export

    _ensure_latlon(ctx, _geocode_files(ctx))
    ts = _geo(ctx, ctx.timeseries_file())
    used = ctx.inputs / "sbts_template_used.cfg"  # UNAVCO keys (relative_orbit = ...) come from the template
    ctx.inputs.mkdir(parents=True, exist_ok=True)
    _write_template(ctx.template, used)
    options = {"template": str(used)}
    geometry = ctx.inputs / ("geometryGeo.h5" if _geocoded(ctx) else "geometryRadar.h5")
    for key, path in (("tcoh", ctx.work_dir / "temporalCoherence.h5"), ("mask", ctx.work_dir / "maskTempCoh.h5"),
                      ("avg_spatial_coh", ctx.work_dir / "avgSpatialCoh.h5"), ("geometry", geometry)):
        if _geo(ctx, path).exists():  # the companions on the time series' grid, named explicitly
            options[key] = str(_geo(ctx, path))
    return export("hdfeos5", ts, output=ctx.work_dir, options=options)


def _write_template(template: Template, path: Path) -> None:
    from sbts.core.io.h5 import atomic_output

    with atomic_output(path) as tmp:
        template.write(tmp)


def stack_fingerprint(ctx: RunContext, drop: bool = True, reference: bool = True) -> str:
    """Versions of the stack's data, its drop list and reference point: what in-place edits change."""
    import h5py

    if not ctx.stack_file.exists():
        return "no stack"
    parts = []
    with h5py.File(ctx.stack_file, "r") as f:
        for name, obj in f.items():
            if isinstance(obj, h5py.Dataset) and obj.ndim == 3:
                parts.append(f"{name}:{obj.attrs.get('MODIFICATION_TIME', '')}")
        if drop and "dropIfgram" in f:
            parts.append(hashlib.sha1(f["dropIfgram"][()].tobytes()).hexdigest())
        if reference:
            parts.append(f"ref:{f.attrs.get('REF_Y', '')},{f.attrs.get('REF_X', '')}")
    return "|".join(sorted(parts))


def build_steps() -> list[Step]:
    w = lambda ctx, *names: [ctx.work_dir / n for n in names]  # noqa: E731
    steps = [
        Step("load_data", _load, lambda c: [], lambda c: [c.stack_file], ("mintpy.load.", "mintpy.subset.", "mintpy.multilook."),
             stale=_load_stale, help="read the processor's files into inputs/ifgramStack.h5 and inputs/geometry*.h5"),
        Step("modify_network", _modify_network, lambda c: [c.stack_file], lambda c: w(c, "coherenceSpatialAvg.txt"),
             ("mintpy.network.",), help="drop pairs (dropIfgram) by baseline, date, index, coherence",
             fingerprint=lambda c: stack_fingerprint(c, drop=False, reference=False)),
        Step("reference_point", _reference_point, lambda c: [c.stack_file], lambda c: w(c, "maskConnComp.h5"),
             ("mintpy.reference.yx", "mintpy.reference.lalo", "mintpy.reference.maskFile",
              "mintpy.reference.coherenceFile", "mintpy.reference.minCoherence"),
             help="average coherence, connected-component mask, reference pixel (REF_Y/REF_X)",
             fingerprint=lambda c: stack_fingerprint(c, reference=False)),
        Step("quick_overview", _quick_overview, lambda c: [c.stack_file],
             lambda c: w(c, "avgPhaseVelocity.h5", "numTriNonzeroIntAmbiguity.h5"), (),
             help="stacking velocity and the number of non-zero closure phases", fingerprint=stack_fingerprint),
        Step("correct_unwrap_error", _correct_unwrap_error, lambda c: [c.stack_file], lambda c: [],
             ("mintpy.unwrapError.",), enabled=lambda c: _unwrap_method(c) is not None,
             help="bridging / phase_closure unwrapping-error correction (mintpy.unwrapError.method)",
             fingerprint=stack_fingerprint),
        Step("invert_network", _invert, lambda c: [c.stack_file],
             lambda c: w(c, "timeseries.h5", "temporalCoherence.h5", "numInvIfgram.h5", "maskTempCoh.h5"),
             ("mintpy.networkInversion.", "mintpy.unwrapError.method"),
             help="weighted least-squares network inversion → timeseries.h5", fingerprint=stack_fingerprint),
    ]
    for step, key, text in (("correct_LOD", "mintpy.localOscillatorDrift", "Envisat local oscillator drift"),
                            ("correct_troposphere", "mintpy.troposphericDelay.", "tropospheric delay"),
                            ("deramp", "mintpy.deramp", "phase ramps"),
                            ("correct_topography", "mintpy.topographicResidual", "DEM error")):
        steps.append(Step(step, _correction_step(step), (lambda s: lambda c: [c.timeseries_file(s)])(step),
                          (lambda s: lambda c: [_correction_output(c, s)])(step), (key,),
                          enabled=(lambda s: lambda c: any(x == s for x, _, _ in c.corrections()))(step),
                          help=text))
    steps += [
        Step("residual_RMS", _residual_rms, _rms_input, lambda c: w(c, "reference_date.txt"),
             ("mintpy.residualRMS.",), enabled=_rms_enabled,
             help="residual RMS per date: reference date and outlier dates (needs correct_topography's residual)"),
        Step("reference_date", _reference_date, lambda c: [*c.chain_files(), *w(c, "reference_date.txt")],
             lambda c: [], ("mintpy.reference.date",), help="re-reference the time series to a date"),
        Step("velocity", _velocity, lambda c: [c.timeseries_file()], lambda c: w(c, "velocity.h5"),
             ("mintpy.timeFunc.",), help="time functions: velocity, seasonal terms, steps → velocity.h5"),
        Step("geocode", _geocode, _geocode_files, lambda c: [c.work_dir / "geo" / f"geo_{p.name}" for p in _geocode_files(c)],
             ("mintpy.geocode",), enabled=lambda c: c.template.get_bool("mintpy.geocode") and not _latlon(c),
             off_reason=_geocode_off,
             help="radar (or a projected grid such as UTM) → latitude/longitude (skipped for lat/lon data)"),
        Step("google_earth", _google_earth, lambda c: _with_latlon(c, [c.work_dir / "velocity.h5"]),
             lambda c: [c.work_dir / "pic" / f"{_geo(c, c.work_dir / 'velocity.h5').stem}.kmz"], ("mintpy.save.kmz",),
             enabled=lambda c: c.template.get_bool("mintpy.save.kmz"), help="KMZ of the velocity for Google Earth"),
        Step("hdfeos5", _hdfeos5, lambda c: _with_latlon(c, _geocode_files(c)), lambda c: [], ("mintpy.save.hdfEos5",),
             enabled=lambda c: c.template.get_bool("mintpy.save.hdfEos5"), help="HDF-EOS5 product for insarmaps"),
    ]
    return steps


def _extra_steps(ctx: RunContext) -> list[Step]:
    """Third-party corrections named in sbts.run.extraCorrections, run after correct_topography."""
    out = []
    for step, _plugin, _suffix in ctx.corrections():
        if step.startswith("correct_") and step not in STEP_NAMES:
            out.append(Step(step, _correction_step(step), (lambda s: lambda c: [c.timeseries_file(s)])(step),
                            (lambda s: lambda c: [_correction_output(c, s)])(step), ("sbts.run.extraCorrections",),
                            help=f"correction plugin {_plugin}"))
    return out


def steps_for(ctx: RunContext) -> list[Step]:
    steps = build_steps()
    extras = _extra_steps(ctx)
    if extras:
        at = [s.name for s in steps].index("correct_topography") + 1
        steps[at:at] = extras
    return steps


def select(steps: list[Step], start: str | None, end: str | None, dostep: str | None) -> list[Step]:
    names = [s.name for s in steps]
    for value in (start, end, dostep):
        if value is not None and value not in names:
            raise InputError(f"unknown step {value!r}; steps: {', '.join(names)}")
    if dostep:
        return [steps[names.index(dostep)]]
    i0 = names.index(start) if start else 0
    i1 = names.index(end) if end else len(names) - 1
    if i1 < i0:
        raise InputError(f"--end {end} comes before --start {start}")
    return steps[i0:i1 + 1]


# --------------------------------------------------------------------------- update mode
def _options_hash(ctx: RunContext, step: Step) -> str:
    values = {}
    for prefix in step.keys:
        values.update(ctx.template.section(prefix))
    values["__content__"] = step.fingerprint(ctx)
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _load_state(work_dir: Path) -> dict:
    try:
        return json.loads((work_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _save_state(work_dir: Path, state: dict) -> None:
    from sbts.core.io.h5 import atomic_write_text

    atomic_write_text(work_dir / STATE_FILE, json.dumps(state, indent=1, sort_keys=True))


def is_up_to_date(ctx: RunContext, step: Step, state: dict, deep: bool = True) -> tuple[bool, str]:
    """Outputs exist, inputs unchanged since the step last ran here, and the same options.

    ``deep`` adds the step's own check of sources the workflow does not track as files (load_data
    opens the processor's files for it)."""
    record = state.get(step.name)
    if record is None:
        return False, "never ran here"
    if "failed" in record:
        return False, "it failed last time"
    if record.get("options") != _options_hash(ctx, step):
        return False, "options or input content changed"
    outputs = [Path(p) for p in record.get("outputs", [])] or list(step.outputs(ctx))
    missing = [p for p in outputs if not p.exists()]
    if missing:
        return False, f"{missing[0].name} is missing"
    recorded = record.get("inputs", {})
    for path in step.inputs(ctx):
        if str(path) not in recorded or recorded[str(path)] != _mtime(path):
            return False, f"{path.name} changed"
    if deep:
        reason = step.stale(ctx)
        if reason:
            return False, reason
    return True, ""


def _record(ctx: RunContext, step: Step, outputs: Sequence[Path]) -> dict:
    return {"options": _options_hash(ctx, step), "outputs": [str(p) for p in outputs],
            "inputs": {str(p): _mtime(p) for p in step.inputs(ctx)}, "finished": time.time()}


def _bless(state: dict, before: dict[str, int | None], step: Step, ctx: RunContext, upstream: Sequence[Step]) -> None:
    """A step that edited its own inputs in place (drop list, REF attributes, a corrected dataset,
    re-referencing) keeps the steps before it up to date: the edit is the workflow's own.

    ``upstream`` are the earlier steps that were up to date just before this one ran: their records
    are written again (input times and content fingerprints), so a second run skips them.  Later
    steps only get their input times patched: the fingerprints of the content they depend on (drop
    list, reference point, dataset versions) still make them rerun."""
    for path in step.inputs(ctx):
        old, new = before.get(str(path)), _mtime(path)
        if old is None or old == new:
            continue
        for record in state.values():
            inputs = record.get("inputs", {})
            if inputs.get(str(path)) == old:
                inputs[str(path)] = new
    for earlier in upstream:
        record = state.get(earlier.name)
        if record is not None:
            state[earlier.name] = {**_record(ctx, earlier, [Path(p) for p in record.get("outputs", [])]),
                                   "finished": record.get("finished")}


# --------------------------------------------------------------------------- driver
def run_workflow(template_path: str | os.PathLike | None, work_dir: str | os.PathLike | None = None,
                 start: str | None = None, end: str | None = None, dostep: str | None = None,
                 force: bool = False, plot: bool = False, max_memory: float | None = None,
                 num_worker: int = 1, cluster: str | None = None, template: Template | None = None) -> list[StepReport]:
    """Run the selected steps in order; returns one report per step (also written to the summary)."""
    template = template or Template.read(template_path)
    base_dir = Path(template_path).resolve().parent if template_path else Path.cwd()
    work_dir = Path(work_dir) if work_dir else base_dir
    ctx = RunContext(template, work_dir, base_dir,
                     max_memory if max_memory is not None else (template.get_float("mintpy.compute.maxMemory") or 4.0),
                     num_worker, cluster)
    reports: list[StepReport] = []
    with work_dir_lock(work_dir):
        handler = _RunLogHandler(work_dir / LOG_FILE, encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("sbts")
        root.addHandler(handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        try:
            logger.info("sbts run in %s (template %s)", work_dir, template_path or "defaults")
            if template_path:
                (work_dir / "inputs").mkdir(parents=True, exist_ok=True)
                _write_template(template, work_dir / "inputs" / "sbts_template_used.cfg")
            state = _load_state(work_dir)
            order = steps_for(ctx)
            for step in select(order, start, end, dostep):
                upstream = order[:[s.name for s in order].index(step.name)]
                reports.append(_run_step(ctx, step, state, force, upstream))
            if plot:
                from sbts.core.viz.overview import plot_overview

                pics = plot_overview(work_dir)
                reports.append(StepReport("plot", "ran", 0.0, list(pics)))
        except SbtsError as exc:
            reports.append(StepReport(getattr(exc, "step", "?"), "failed", note=str(exc)))
            raise
        finally:
            _write_summary(work_dir, reports)
            root.removeHandler(handler)
            handler.close()
    return reports


def _run_step(ctx: RunContext, step: Step, state: dict, force: bool, upstream: Sequence[Step] = ()) -> StepReport:
    if not step.enabled(ctx):
        reason = step.off_reason(ctx)
        logger.info("step %s: %s", step.name, reason)
        return StepReport(step.name, "disabled", note=reason)
    if not force:
        current, reason = is_up_to_date(ctx, step, state)
        if current:
            logger.info("step %s: up to date, skipped", step.name)
            return StepReport(step.name, "skipped", outputs=[Path(p) for p in state[step.name]["outputs"]])
        logger.info("step %s: running (%s)", step.name, reason)
    # earlier steps up to date now stay so after this step's in-place edits (see _bless)
    current_before = [u for u in upstream if u.name in state and u.enabled(ctx)
                      and is_up_to_date(ctx, u, state, deep=False)[0]]
    start = time.perf_counter()
    before = {str(p): _mtime(p) for p in step.inputs(ctx)}
    try:
        outputs = [Path(p) for p in step.run(ctx)]
    except BaseException as exc:
        # a step that failed (or was interrupted) never counts as done, whatever ran before
        state[step.name] = {"failed": time.time(), "error": f"{type(exc).__name__}: {exc}"[:500]}
        with contextlib.suppress(Exception):
            _save_state(ctx.work_dir, state)
        if isinstance(exc, SbtsError):
            exc.step = step.name  # type: ignore[attr-defined]
        raise
    seconds = time.perf_counter() - start
    _bless(state, before, step, ctx, current_before)
    state[step.name] = _record(ctx, step, outputs)
    _save_state(ctx.work_dir, state)
    logger.info("step %s: done in %.1f s", step.name, seconds)
    return StepReport(step.name, "ran", seconds, outputs)


class _RunLogHandler(logging.FileHandler):
    """``sbts_run.log``: a copy of the messages.  When it cannot be written (disk full) it stops
    quietly; the messages still reach the terminal, and the error that matters is reported once."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        self.setLevel(logging.CRITICAL + 1)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the buffered tail cannot be written either
            super().close()


def _write_summary(work_dir: Path, reports: list[StepReport]) -> None:
    lines = [f"sbts run summary ({time.strftime('%Y-%m-%d %H:%M:%S')})", ""]
    for r in reports:
        lines.append(f"{r.name:<22s} {r.status:<9s} {r.seconds:7.1f} s  {r.note}")
        for p in r.outputs:
            try:
                size = f"{p.stat().st_size / 1e6:.2f} MB"
            except OSError:
                size = "missing"
            lines.append(f"    {p}  ({size})")
    from sbts.core.io.h5 import atomic_write_text

    try:
        atomic_write_text(work_dir / SUMMARY_FILE, "\n".join(lines) + "\n")
    except SbtsError as exc:  # a report of the run: its failure must not hide the run's own error
        logger.warning("%s", exc)


def describe_steps() -> str:
    return "\n".join(f"  {s.name:<21s} {s.help}" for s in build_steps())
