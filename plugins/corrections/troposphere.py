"""``sbts correct pyaps | height_correlation | gacos``: tropospheric delay corrections.

Signs and units (all three): a tropospheric delay δ lengthens the radar path, a range *increase*, so in
the sbts/MintPy displacement sign (metres, positive toward the satellite) it enters the series as −δ.
The zenith delay maps to the line of sight by 1/cos θ (θ = incidence angle from the vertical, per pixel
from the geometry's ``incidenceAngle``, else the scalar ``INCIDENCE_ANGLE``): δ_LOS = δ_zenith / cos θ.
Corrected series = ts − (−δ_LOS), each delay taken relative to the reference pixel (REF_Y/REF_X) and the
reference date (REF_DATE), so the corrected series keeps its references.

- ``pyaps`` (Jolivet et al. 2011, 2014): ERA5 (or ERA-Interim/HRES) pressure-level GRIB files in
  ``weatherDir`` (``<dir>/ERA5/`` or ``<dir>``, pyaps3's names ``ERA5_<S>_<N>_<W>_<E>_<YYYYMMDD>_<HH>.grb``),
  hour = the model hour closest to ``CENTER_LINE_UTC``; pyaps3 integrates refractivity to the zenith
  delay at each pixel's height and maps it with 1/cos θ.  Absolute delays go to ``inputs/ERA5.h5``
  (displacement sign, no REF attrs), then are subtracted after re-referencing → ``<input>_ERA5.h5``.
  Dates without a weather file are listed and left uncorrected.  Nothing is downloaded unless the user
  asks (``mintpy.troposphericDelay.download = yes``) and has Copernicus CDS credentials
  (``~/.cdsapirc`` or pyaps3's ``model.cfg``); then the missing ERA5 files are fetched with pyaps3
  ``ECMWFdload`` into the weather folder.
- ``height_correlation`` (Doin et al. 2009): per date, a polynomial of the phase against elevation
  (h / cos θ, i.e. the LOS path through the stratified layer) fitted on multilooked reliable pixels, used
  when |correlation| ≥ ``minCorrelation``, and removed.
- ``gacos`` (Yu et al. 2018): GACOS zenith total delay maps ``<YYYYMMDD>.ztd`` (+ ``.rsc``) resampled
  bilinearly onto the data grid (by coordinates; radar grids via the geometry's latitude/longitude),
  mapped with 1/cos θ into ``inputs/GACOS.h5``, then subtracted like ERA5.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Block,
    Correction,
    CorrectionContext,
    CorrectionResult,
    DataError,
    InputError,
    MapProduct,
    PluginError,
    TaskArrays,
    Template,
    TemplateError,
    TimeSeries,
    TimeSeriesWriter,
    describe,
    hookimpl,
    memory_per_task,
    pixel_bytes,
    plan_blocks_for,
    progress,
    run_blocks,
    runs_apart,
    task_arrays,
)
from sbts.plugins.corrections._tropo_common import (
    GeometryAccess,
    apply_delay,
    delay_signatures,
    expected_output,
    incidence_cosine,
    provenance,
    reference_pixel,
    resolve_path,
    reusable_delay_file,
    write_delay_file,
)

logger = logging.getLogger(__name__)

P = "mintpy.troposphericDelay"
METHOD_KEY = P + ".method"
MODEL_KEY = P + ".weatherModel"
DIR_KEY = P + ".weatherDir"
DOWNLOAD_KEY = P + ".download"
POLY_KEY = P + ".polyOrder"
LOOKS_KEY = P + ".looks"
MINCOR_KEY = P + ".minCorrelation"
GACOS_KEY = P + ".gacosDir"

# weather model → (pyaps3 file prefix, pyaps3 grib name, model hours)
MODELS = {
    "ERA5": ("ERA5", "ERA5", tuple(range(24))),
    "ERAINT": ("ERAI", "ERAINT", (0, 6, 12, 18)),
    "HRES": ("HRES", "HRES", (0, 6, 12, 18)),
}
_SNWE = re.compile(r"_([NS])(\d+)_([NS])(\d+)_([WE])(\d+)_([WE])(\d+)_")


def closest_hour(center_line_utc: float, hours) -> int:
    """The model hour nearest the acquisition time (seconds of day); no wrap past midnight, as MintPy."""
    h = center_line_utc / 3600.0
    return int(min(hours, key=lambda x: abs(x - h)))


def _snwe_of(name: str) -> tuple[float, float, float, float] | None:
    m = _SNWE.search(name)
    if not m:
        return None
    v = [float(m.group(i)) * (-1 if m.group(i - 1) in "SW" else 1) for i in (2, 4, 6, 8)]
    return v[0], v[1], v[2], v[3]


METHODS = ("pyaps", "height_correlation", "gacos")


class _TroposphericDelay(Correction):
    """The three methods are one step of ``sbts run``; ``mintpy.troposphericDelay.method`` picks one."""

    stage = "timeseries"
    step = "correct_troposphere"
    after = "correct_ionosphere"  # MintPy: correct_LOD, correct_SET, correct_ionosphere, correct_troposphere

    def enabled(self, template: Template, metadata) -> bool:
        return template.get_str(METHOD_KEY, ["no", *METHODS]) == self.name


@dataclass(frozen=True)
class PyapsOptions:
    model: str = "ERA5"  # upper case, one of MODELS
    model_name: str = "ERA5"  # as written: the output suffix
    weather_dir: str = "./"
    download: bool = False


@dataclass(frozen=True)
class HeightCorrelationOptions:
    poly: int = 1
    looks: int = 8
    min_correlation: float = 0.0


@dataclass(frozen=True)
class GacosOptions:
    folder: str = "./GACOS"


# ============================================================================ pyaps
class PyapsDelay(_TroposphericDelay):
    """Removes the ERA5 delay computed with pyaps3 from local GRIB files (no download)."""

    name = "pyaps"
    summary = "Remove the tropospheric delay from a weather model (ERA5 GRIB files, pyaps3)."
    suffix = "ERA5"
    stage = "timeseries"
    keys = {
        METHOD_KEY: "pyaps | height_correlation | gacos | no: the workflow's choice (`sbts correct pyaps` runs this)",
        MODEL_KEY: "ERA5 (default) | ERAINT | HRES: model of the GRIB files; also the output suffix",
        DIR_KEY: "folder of the GRIB files, searched as <dir>/ERA5/ and <dir> (default ${WEATHER_DIR}, else ./)",
        DOWNLOAD_KEY: "no (default) | yes: fetch missing ERA5 files with pyaps3 (needs CDS credentials, ~/.cdsapirc)",
    }

    def parse_options(self, template: Template) -> PyapsOptions:
        t = template
        name = t.get(MODEL_KEY) or "ERA5"
        model = name.upper()
        if model not in MODELS:
            raise TemplateError(f"{MODEL_KEY} = {model}: sbts computes delays with pyaps3 for "
                                f"{', '.join(MODELS)} only (pyaps3 0.3 cannot read MERRA/NARR)")
        return PyapsOptions(model=model, model_name=name, weather_dir=t.raw(DIR_KEY),
                            download=t.get_bool(DOWNLOAD_KEY))

    def output_suffix(self, options: PyapsOptions) -> str:
        return options.model_name  # MintPy's timeseries_ERA5.h5

    def reads(self, options: PyapsOptions, work_dir: Path) -> list[Path]:
        """The geometry and the model's GRIB files in the weather folders: a file that arrives for a
        date left uncorrected (or a file downloaded again) runs the correction again."""
        prefix = MODELS[options.model][0]
        gribs = [p for folder in _weather_folders(options.weather_dir, Path(work_dir), options.model)
                 if folder.is_dir() for p in sorted(folder.glob(f"{prefix}_*.grb"))]
        return [*super().reads(options, work_dir), *gribs]

    def run(self, context: CorrectionContext) -> CorrectionResult:
        options = self.options_of(context)
        model = options.model
        prefix, grib_name, hours = MODELS[model]
        require_pyaps3(model)
        ts = TimeSeries(context.input_file)
        utc = ts.metadata.radar.center_line_utc
        if utc is None:
            raise InputError(f"{ts.path}: CENTER_LINE_UTC (acquisition time, s of day) is missing; it selects "
                             "the weather-model hour (set CENTER_LINE_UTC = ... in the template)")
        hour = closest_hour(utc, hours)
        folders = _weather_folders(options.weather_dir, Path(context.work_dir), model)
        geom = GeometryAccess(context, ts)
        for name in ("height",):
            if not geom.has_layer(name):
                raise geom.missing_error(name, "the weather-model delay (pixel heights)")
        if not geom.available("incidenceAngle"):
            raise geom.missing_error("incidenceAngle", "the zenith→LOS mapping of the delay")
        lat, lon = geom.lat_lon(None, "the weather-model delay")
        files, missing = _collect_gribs(ts.date_strings, folders, prefix, hour, lat, lon)
        if missing and options.download:
            download_era5(missing, hour, folders[0], model, lat, lon)
            files, missing = _collect_gribs(ts.date_strings, folders, prefix, hour, lat, lon)
        expected = [f"{prefix}_<S>_<N>_<W>_<E>_{d}_{hour:02d}.grb" for d in ts.date_strings[:3]]
        if not files:
            raise InputError(
                f"no {model} weather file found in {' or '.join(str(f) for f in folders)} for the {len(ts.dates)} "
                f"dates of {ts.path.name} at {hour:02d} UTC (expected e.g. {', '.join(expected)}). Put them there "
                f"(or set {DIR_KEY}), or let sbts fetch them with {DOWNLOAD_KEY} = yes (needs Copernicus CDS "
                "credentials in ~/.cdsapirc)")
        if missing:
            logger.warning("%d date(s) have no %s file at %02d UTC and stay uncorrected: %s", len(missing), model,
                           hour, ", ".join(missing))
        out_path = expected_output(context, self.suffix, model)
        delay_path = Path(context.work_dir) / "inputs" / f"{model}.h5"
        keys = {i: f"{ts.date_strings[i]}|{f.name}|{f.stat().st_size}|{f.stat().st_mtime_ns}" for i, f in files.items()}
        base, sig = delay_signatures([model, hour, geom.content_id(), *ts.shape], keys)
        extra = {METHOD_KEY: "pyaps", MODEL_KEY: model, "SBTS_DELAY_INPUTS": sig}
        if reusable_delay_file(delay_path, ts, sig):
            logger.info("reusing %s (same weather files and geometry)", delay_path)
        else:
            height = geom.read("height", None, "the weather-model delay")
            cos = incidence_cosine(geom, None, "the zenith→LOS mapping of the delay")
            inc = np.where(np.isfinite(cos), np.rad2deg(np.arccos(np.where(np.isfinite(cos), cos, 1))), 0.0)
            mask = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(height) & np.isfinite(cos)
            if not mask.any():
                raise InputError(f"{geom.path}: no pixel has a valid latitude, longitude, height and incidence")
            idx = sorted(files)
            logger.info("%s delays for %d dates at %02d UTC with pyaps3 → %s%s", model, len(idx), hour, delay_path,
                        describe(context.num_worker, context.cluster))
            apart = runs_apart(context.num_worker, context.cluster)
            with task_arrays({"height": height, "inc": inc, "lat": lat, "lon": lon, "mask": mask}, delay_path,
                              apart) as geometry:
                write_delay_file(delay_path, ts, idx, _PyapsMaps(files, grib_name, model, geometry), extra, base,
                                 keys, workers=context.num_worker, cluster=context.cluster,
                                 max_memory=context.max_memory, bytes_per_pixel=_PYAPS_BYTES_PER_PIXEL,
                                 what=f"{model} delays")
        corrected, skipped = apply_delay(context, ts, delay_path, out_path,
                                         {**provenance(context, P, (METHOD_KEY, MODEL_KEY, DIR_KEY)),
                                          METHOD_KEY: "pyaps", MODEL_KEY: model}, f"{model} weather-model")
        summary = (f"removed the {model} delay ({hour:02d} UTC) from {len(corrected)} of {len(ts.dates)} dates"
                   + (f"; no weather file for {', '.join(skipped)}" if skipped else ""))
        logger.info(summary)
        return CorrectionResult(out_path, extra_outputs=(delay_path,), summary=summary)


def require_pyaps3(model: str) -> None:
    """pyaps3 is an optional dependency (the ``weather`` extra): say how to get it, before any work."""
    try:
        import pyaps3  # noqa: F401
    except ImportError as exc:
        raise PluginError(f"{METHOD_KEY} = pyaps ({model} delays) needs the Python package pyaps3, which is not "
                          f"installed ({exc}): pip install 'sbts[weather]' (or pip install pyaps3), or choose "
                          "another method (height_correlation, gacos, no)") from None


def _collect_gribs(dates, folders, prefix, hour, lat, lon) -> tuple[dict[int, Path], list[str]]:
    files, missing = {}, []
    for i, d in enumerate(dates):
        f = _find_grib(folders, prefix, d, hour, lat, lon)
        if f is None:
            missing.append(d)
        else:
            files[i] = f
    return files, missing


def cds_credentials() -> str | None:
    """Where the Copernicus CDS credentials are (``~/.cdsapirc`` or pyaps3's model.cfg), or None."""
    rc = Path(os.path.expanduser("~/.cdsapirc"))
    if rc.is_file():
        return str(rc)
    try:
        from pyaps3 import autoget
    except ImportError:
        return None
    cfg = getattr(autoget, "config", None)
    try:
        key = cfg.get("CDS", "key").strip() if cfg is not None else ""
    except Exception:  # noqa: BLE001 - configparser errors: no usable key
        return None
    return "pyaps3 model.cfg" if key and "your-personal" not in key else None


def download_era5(dates: list[str], hour: int, folder: Path, model: str, lat: np.ndarray, lon: np.ndarray) -> None:
    """Fetch the missing ERA5 files with pyaps3 (only called when the user asked for it)."""
    if model != "ERA5":
        raise TemplateError(f"{DOWNLOAD_KEY} = yes: sbts downloads ERA5 only (not {model})")
    where = cds_credentials()
    if where is None:
        raise InputError(f"{DOWNLOAD_KEY} = yes but no Copernicus CDS credentials were found: create ~/.cdsapirc "
                         "(url + key, see https://cds.climate.copernicus.eu/how-to-api) or put the files in the "
                         "weather folder yourself")
    import contextlib
    import io

    from pyaps3 import ECMWFdload

    snwe = (float(np.nanmin(lat)) - 1, float(np.nanmax(lat)) + 1, float(np.nanmin(lon)) - 1,
            float(np.nanmax(lon)) + 1)
    folder.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %d ERA5 file(s) at %02d UTC into %s (credentials: %s)", len(dates), hour, folder, where)
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter):
            ECMWFdload(list(dates), f"{hour:02d}", str(folder) + os.sep, model="ERA5", snwe=snwe)
    except Exception as exc:  # noqa: BLE001 - network, credentials, quota: one message
        raise InputError(f"ERA5 download into {folder} failed: {type(exc).__name__}: {exc}") from None
    for line in chatter.getvalue().splitlines():
        logger.debug("pyaps3: %s", line)


def _weather_folders(value: str, work_dir: Path, model: str) -> list[Path]:
    if not value or "$" in value:  # ${WEATHER_DIR} unset
        value = "./"
    base = resolve_path(value, work_dir)
    return [base / model, base]


def _find_grib(folders: list[Path], prefix: str, date: str, hour: int, lat: np.ndarray,
               lon: np.ndarray) -> Path | None:
    """The GRIB file of ``date``/``hour``; among several areas, the smallest that covers the scene."""
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            found += sorted(folder.glob(f"{prefix}_*_{date}_{hour:02d}.grb"))
            found += sorted(folder.glob(f"{prefix}_{date}_{hour:02d}.grb"))
    if len(found) <= 1:
        return found[0] if found else None
    s, n = float(np.nanmin(lat)), float(np.nanmax(lat))
    w, e = float(np.nanmin(lon)), float(np.nanmax(lon))
    covering = []
    for f in found:
        snwe = _snwe_of(f.name)
        if snwe and snwe[0] <= s and snwe[1] >= n and snwe[2] <= w and snwe[3] >= e:
            covering.append(((snwe[1] - snwe[0]) * (snwe[3] - snwe[2]), f))
    return min(covering)[1] if covering else found[0]


#: what computing one date's pyaps3 delay holds per pixel: measured 118 B (pyaps3's interpolation) on a
#: 1380 × 948 ISCE geometry, plus the masked copies of the four geometry layers
_PYAPS_BYTES_PER_PIXEL = 160.0


@dataclass(frozen=True)
class _PyapsMaps:
    """The delay map of date ``i`` (picklable: the pool and dask compute dates in parallel)."""

    files: dict[int, Path]
    grib_name: str
    model: str
    geometry: TaskArrays  # height, inc (deg), lat, lon, mask

    def __call__(self, i: int) -> np.ndarray:
        g = self.geometry
        return _pyaps_delay(self.files[i], self.grib_name, self.model, g["height"], g["inc"], g["lat"], g["lon"],
                            g["mask"])


def _pyaps_delay(grib: Path, grib_name: str, model: str, height, inc, lat, lon, mask) -> np.ndarray:
    """LOS delay of one date in displacement sign (−δ_LOS, m); NaN outside the valid geometry."""
    import pyaps3

    aps = pyaps3.PyAPS(str(grib), dem=np.where(mask, height, 0.0), inc=np.where(mask, inc, 0.0),
                       lat=np.where(mask, lat, 0.0), lon=np.where(mask, lon, 0.0), mask=mask.astype(np.float64),
                       grib=grib_name, model=model, Del="comb")
    los = np.asarray(aps.getdelay(), np.float64)  # metres along the LOS (pyaps3 divides by cos θ)
    los[~mask] = np.nan
    if np.any(los[mask] == 0):  # pyaps3 fills points outside the model grid with 0
        raise InputError(f"{grib}: the weather-model area does not cover the scene (lat {np.nanmin(lat[mask]):.2f}"
                         f"..{np.nanmax(lat[mask]):.2f}, lon {np.nanmin(lon[mask]):.2f}..{np.nanmax(lon[mask]):.2f}); "
                         "use a file of a larger area")
    return -los


# ============================================================================ height correlation
class HeightCorrelation(_TroposphericDelay):
    """Removes, per date, the part of the phase that correlates with elevation (stratified delay)."""

    name = "height_correlation"
    summary = "Remove the stratified delay estimated from the phase/elevation correlation (Doin et al. 2009)."
    suffix = "tropHgt"
    stage = "timeseries"
    keys = {
        POLY_KEY: "degree of the polynomial of delay against elevation (default 1)",
        LOOKS_KEY: "extra multilooking of data and elevation for the estimation only (default 8)",
        MINCOR_KEY: "minimum |correlation| of phase and elevation for a date to be corrected (default 0)",
    }

    def parse_options(self, template: Template) -> HeightCorrelationOptions:
        t = template
        poly = t.get_int(POLY_KEY) or 1
        if poly < 1:
            raise TemplateError(f"{POLY_KEY} = {poly}: must be >= 1")
        return HeightCorrelationOptions(poly=poly, looks=max(1, t.get_int(LOOKS_KEY) or 1),
                                        min_correlation=t.get_float(MINCOR_KEY) or 0.0)

    def reads(self, options: HeightCorrelationOptions, work_dir: Path) -> list[Path]:
        """The geometry (heights) and ``maskTempCoh.h5``, the pixels the height relation is fitted on."""
        return [*super().reads(options, work_dir), Path(work_dir) / "maskTempCoh.h5"]

    def run(self, context: CorrectionContext) -> CorrectionResult:
        options = self.options_of(context)
        poly, looks, min_corr = options.poly, options.looks, options.min_correlation
        ts = TimeSeries(context.input_file)
        n = len(ts.dates)
        geom = GeometryAccess(context, ts)
        purpose = "the height-correlated delay (elevation)"
        if not geom.has_layer("height"):
            raise geom.missing_error("height", purpose)
        use_inc = geom.available("incidenceAngle")
        if not use_inc:
            logger.warning("no incidence angle: regressing on the elevation h instead of h / cos θ")

        elevation = functools.partial(_elevation, geom, use_inc, purpose)

        mask, mask_label = _reliable_mask(context, ts)
        ts_ml, h_ml = _multilook(ts, elevation, mask, looks, context.max_memory, context.num_worker, context.cluster)
        if h_ml.size < poly + 2:
            raise DataError(f"{ts.path}: only {h_ml.size} multilooked reliable pixels; lower {LOOKS_KEY} = {looks}")
        a = np.stack([h_ml ** k for k in range(poly + 1)], axis=1)
        coeffs = np.linalg.lstsq(a, ts_ml, rcond=None)[0]  # (poly+1, n)
        hc = h_ml - h_ml.mean()
        yc = ts_ml - ts_ml.mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = (hc @ yc) / np.sqrt((hc @ hc) * np.sum(yc * yc, axis=0))
        corr = np.nan_to_num(corr)
        weak = np.abs(corr) < min_corr
        coeffs[:, weak] = 0
        if weak.any():
            logger.info("%d date(s) with |correlation| < %g left uncorrected: %s", int(weak.sum()), min_corr,
                        ", ".join(d for d, w in zip(ts.date_strings, weak) if w))
        ref_yx = reference_pixel(ts)
        h_ref = float(elevation(Block(ref_yx[0], ref_yx[0] + 1, ref_yx[1], ref_yx[1] + 1))[0, 0]) if ref_yx else 0.0
        if not np.isfinite(h_ref):
            raise DataError(f"{geom.path}: the elevation is NaN at the reference pixel {ref_yx}")
        extra = {**provenance(context, P, (POLY_KEY, LOOKS_KEY, MINCOR_KEY)), METHOD_KEY: "height_correlation"}
        # the block, its delay and output, and the next block read ahead
        blocks = plan_blocks_for(ts.shape, pixel_bytes(n, 4, copies=5, extra=32),
                                 memory_per_task(context.max_memory, context.num_worker, context.cluster),
                                 ts.chunk_shape(ts.dataset_name))
        logger.info("height correlation: removing the delay from %d dates, %d block(s)%s", n, len(blocks),
                    describe(context.num_worker, context.cluster))
        with TimeSeriesWriter(context.output_file, ts.metadata.with_extra(**extra), ts.date_strings, ts.bperp,
                              dataset=ts.dataset_name, unit=ts.metadata.unit or "m") as w:
            results = run_blocks(blocks, functools.partial(_read_with_elevation, ts, elevation),
                                 functools.partial(_remove_height_delay, coeffs, h_ref, poly),
                                 workers=context.num_worker, cluster=context.cluster)
            for block, out in progress(results, "height correlation", "block", total=len(blocks)):
                w.write(ts.dataset_name, out, block)
        logger.info("height correlation: slope per date (mm/km) %s; correlation %s",
                    np.array2string(coeffs[1] * 1e6, precision=1), np.array2string(corr, precision=2))
        summary = (f"removed a degree-{poly} delay/elevation polynomial from {int((~weak).sum())} of {n} dates "
                   f"(fitted on {h_ml.size} {looks}×{looks}-looked pixels of {mask_label})")
        logger.info(summary)
        return CorrectionResult(Path(context.output_file), summary=summary)


def _elevation(geom: GeometryAccess, use_inc: bool, purpose: str, block: Block) -> np.ndarray:
    """The regressor of one block: h / cos θ (or h without an incidence angle)."""
    h = geom.read("height", block, purpose)
    return h / incidence_cosine(geom, block, purpose) if use_inc else h


def _read_with_elevation(ts: TimeSeries, elevation, block: Block) -> tuple[np.ndarray, np.ndarray]:
    """The series (float32) and the regressor of one block."""
    return ts.read_dates(block).astype(np.float32, copy=False), elevation(block)


def _remove_height_delay(coeffs: np.ndarray, h_ref: float, poly: int, _block: Block, inputs) -> np.ndarray:
    """The block minus the fitted delay polynomial of its elevation, referenced at the reference pixel;
    no-data pixels (0 at every date) stay 0."""
    data, h = inputs
    terms = [h ** k - h_ref ** k for k in range(1, poly + 1)]
    out = np.empty(data.shape, np.float32)
    for i in range(data.shape[0]):  # date by date: one float64 layer of temporaries, same arithmetic
        delay = 0
        for k, term in enumerate(terms, start=1):
            delay = delay + coeffs[k][i] * term
        out[i] = data[i] - delay
    out[:, np.all(data == 0, axis=0)] = 0
    return out


def _reliable_mask(context: CorrectionContext, ts: TimeSeries):
    path = Path(context.work_dir) / "maskTempCoh.h5"
    if not path.exists():
        logger.warning("%s not found: estimating the height correlation on all valid pixels", path)
        return None, "all pixels"
    m = MapProduct(path)
    if m.shape != ts.shape:
        raise InputError(f"{path}: mask is {m.shape[0]}×{m.shape[1]} but {ts.path} is {ts.shape[0]}×{ts.shape[1]}")
    name = "mask" if m.has("mask") else next(d for d in m.datasets if len(m.dataset_shape(d)) == 2)
    return (m, name), path.name


def _multilook(ts: TimeSeries, elevation, mask, looks: int, max_memory: float, num_worker: int = 1,
               cluster: str | None = None):
    """Means over looks×looks windows of the reliable pixels: (windows, dates) data and (windows,) elevation.

    The blocks are aligned on ``looks`` (unless the budget holds fewer rows than ``looks``), so a
    window's sums come from one block: the blocks are read and summed (:func:`_window_sums`) here, in
    the pool or on dask, and added here in block order, the same bits whoever summed them.
    """
    length, width = ts.shape
    wl, ww = -(-length // looks), -(-width // looks)
    n = len(ts.dates)
    sums = np.zeros((n, wl, ww))
    hsum = np.zeros((wl, ww))
    count = np.zeros((wl, ww))
    blocks = plan_blocks_for(ts.shape, pixel_bytes(n, 4, copies=3, extra=32),
                             memory_per_task(max_memory, num_worker, cluster), (looks, looks))
    results = run_blocks(blocks, functools.partial(_read_for_windows, ts, elevation, mask),
                         functools.partial(_window_sums, looks), workers=num_worker, cluster=cluster, ordered=True)
    for block, (w_sums, w_h, w_count) in progress(results, "height correlation: multilook", "block", total=len(blocks)):
        # the block's windows (the first and last may be shared with the blocks around it)
        rows = slice(block.row_start // looks, block.row_start // looks + w_count.shape[0])
        cols = slice(block.col_start // looks, block.col_start // looks + w_count.shape[1])
        sums[:, rows, cols] += w_sums
        hsum[rows, cols] += w_h
        count[rows, cols] += w_count
    sums, hsum, count = sums.reshape(n, -1), hsum.ravel(), count.ravel()
    keep = count > 0
    if not keep.any():
        raise DataError(f"{ts.path}: no reliable pixel with data and elevation to estimate the height correlation")
    return (sums[:, keep] / count[keep]).T, hsum[keep] / count[keep]


def _read_for_windows(ts: TimeSeries, elevation, mask, block: Block):
    """The I/O of a block of :func:`_multilook`: the series, the regressor and the reliable mask."""
    mv = None if mask is None else mask[0].read(mask[1], block)
    return ts.read_dates(block), elevation(block), mv


def _window_sums(looks: int, block: Block, inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sums over the looks×looks windows (of the image) that ``block`` touches, of its reliable
    pixels' dates and elevation, and their counts: (n, wr, wc), (wr, wc), (wr, wc)."""
    data, h, mv = inputs
    data = data.astype(np.float64)
    n = data.shape[0]
    ok = np.all(np.isfinite(data), axis=0) & ~np.all(data == 0, axis=0) & np.isfinite(h)
    if mv is not None:
        ok &= (np.isfinite(mv) & (mv != 0)) if mv.dtype.kind == "f" else mv != 0
    rows = np.arange(block.row_start, block.row_stop) // looks - block.row_start // looks
    cols = np.arange(block.col_start, block.col_stop) // looks - block.col_start // looks
    wr, wc = int(rows[-1]) + 1, int(cols[-1]) + 1
    win = (rows[:, None] * wc + cols[None, :])[ok]
    count = np.bincount(win, minlength=wr * wc).astype(np.float64)
    hsum = np.bincount(win, weights=h[ok], minlength=wr * wc)
    sums = np.empty((n, wr * wc))
    for i in range(n):  # loop over dates, vectorised over pixels
        sums[i] = np.bincount(win, weights=data[i][ok], minlength=wr * wc)
    return sums.reshape(n, wr, wc), hsum.reshape(wr, wc), count.reshape(wr, wc)


# ============================================================================ GACOS
class GacosDelay(_TroposphericDelay):
    """Removes GACOS zenith total delays, resampled to the data grid and mapped to the LOS."""

    name = "gacos"
    summary = "Remove the GACOS tropospheric delay (<YYYYMMDD>.ztd maps, Yu et al. 2018)."
    suffix = "GACOS"
    stage = "timeseries"
    keys = {
        GACOS_KEY: "folder of the GACOS <YYYYMMDD>.ztd + .ztd.rsc files (default ./GACOS)",
    }

    def parse_options(self, template: Template) -> GacosOptions:
        return GacosOptions(folder=template.raw(GACOS_KEY))

    def reads(self, options: GacosOptions, work_dir: Path) -> list[Path]:
        """The geometry and the GACOS files (``<date>.ztd`` and their ``.rsc``) of the folder."""
        folder = resolve_path(options.folder, Path(work_dir))
        ztd = sorted(folder.glob("*.ztd")) + sorted(folder.glob("*.ztd.rsc")) if folder.is_dir() else []
        return [*super().reads(options, work_dir), *ztd]

    def run(self, context: CorrectionContext) -> CorrectionResult:
        options = self.options_of(context)
        folder = resolve_path(options.folder, Path(context.work_dir))
        if not folder.is_dir():
            raise InputError(f"{folder}: GACOS folder not found ({GACOS_KEY} = {options.folder}); it should hold "
                             "<YYYYMMDD>.ztd and <YYYYMMDD>.ztd.rsc for the dates of the time series")
        ts = TimeSeries(context.input_file)
        files = {i: folder / f"{d}.ztd" for i, d in enumerate(ts.date_strings) if (folder / f"{d}.ztd").exists()}
        if not files:
            raise InputError(f"{folder}: no GACOS file for any date of {ts.path.name} (expected "
                             f"{', '.join(d + '.ztd' for d in ts.date_strings[:3])} ... with their .rsc)")
        geom = GeometryAccess(context, ts)
        if not geom.available("incidenceAngle"):
            raise geom.missing_error("incidenceAngle", "the zenith→LOS mapping of the GACOS delay")
        lat, lon = geom.lat_lon(None, "resampling the GACOS maps")
        cos = incidence_cosine(geom, None, "the zenith→LOS mapping of the GACOS delay")
        delay_path = Path(context.work_dir) / "inputs" / "GACOS.h5"
        keys = {i: f"{ts.date_strings[i]}|{f}|{f.stat().st_size}|{f.stat().st_mtime_ns}" for i, f in files.items()}
        base, sig = delay_signatures(["GACOS", geom.content_id(), *ts.shape], keys)
        if reusable_delay_file(delay_path, ts, sig):
            logger.info("reusing %s (same GACOS files and geometry)", delay_path)
        else:
            apart = runs_apart(context.num_worker, context.cluster)
            with task_arrays({"lat": lat, "lon": lon, "cos": cos}, delay_path, apart) as geometry:
                write_delay_file(delay_path, ts, sorted(files), _GacosMaps(files, geometry),
                                 {METHOD_KEY: "gacos", "SBTS_DELAY_INPUTS": sig}, base, keys,
                                 workers=context.num_worker, cluster=context.cluster, max_memory=context.max_memory,
                                 bytes_per_pixel=_GACOS_BYTES_PER_PIXEL, what="GACOS delays")
        corrected, skipped = apply_delay(context, ts, delay_path, Path(context.output_file),
                                         {**provenance(context, P, (GACOS_KEY,)), METHOD_KEY: "gacos"}, "GACOS")
        summary = (f"removed the GACOS delay from {len(corrected)} of {len(ts.dates)} dates"
                   + (f"; no GACOS file for {', '.join(skipped)}" if skipped else ""))
        logger.info(summary)
        return CorrectionResult(Path(context.output_file), extra_outputs=(delay_path,), summary=summary)


def read_rsc(path: Path) -> dict[str, str]:
    if not path.exists():
        raise InputError(f"{path}: GACOS header missing (needed for WIDTH, FILE_LENGTH, X/Y_FIRST, X/Y_STEP)")
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[0].upper()] = parts[1]
    return out


def read_ztd(path: Path) -> tuple[np.ndarray, dict[str, float]]:
    """A GACOS ``.ztd`` map (float32 little-endian, metres) and its grid from the ``.rsc``."""
    rsc_path = path.with_name(path.name + ".rsc")
    rsc = read_rsc(rsc_path)
    try:
        grid = {k: float(rsc[k]) for k in ("WIDTH", "FILE_LENGTH", "X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP")}
    except (KeyError, ValueError) as exc:
        raise InputError(f"{rsc_path}: missing or bad {exc}") from None
    width, length = int(grid["WIDTH"]), int(grid["FILE_LENGTH"])
    size = path.stat().st_size
    if size != width * length * 4:
        raise InputError(f"{path}: {size} bytes but its .rsc says {length}×{width} float32 ({width * length * 4})")
    return np.fromfile(path, "<f4").reshape(length, width), grid


#: what resampling one date's GACOS map holds per pixel (the query points, the result and its mask)
_GACOS_BYTES_PER_PIXEL = 96.0


@dataclass(frozen=True)
class _GacosMaps:
    """The LOS delay map of date ``i`` (picklable: the pool and dask compute dates in parallel)."""

    files: dict[int, Path]
    geometry: TaskArrays  # lat, lon, cos (cosine of the incidence angle)

    def __call__(self, i: int) -> np.ndarray:
        g = self.geometry
        return -resample_ztd(self.files[i], np.asarray(g["lat"]), np.asarray(g["lon"])) / g["cos"]


def resample_ztd(path: Path, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a ZTD map at (lat, lon); X/Y_FIRST taken as the first pixel's outer corner
    (MintPy's convention for .rsc grids), so sample centres are at FIRST + (i + ½)·STEP.
    """
    from scipy.interpolate import RegularGridInterpolator

    data, g = read_ztd(path)
    ys = g["Y_FIRST"] + (np.arange(data.shape[0]) + 0.5) * g["Y_STEP"]
    xs = g["X_FIRST"] + (np.arange(data.shape[1]) + 0.5) * g["X_STEP"]
    if ys[0] > ys[-1]:
        ys, data = ys[::-1], data[::-1]
    if xs[0] > xs[-1]:
        xs, data = xs[::-1], data[:, ::-1]
    # pixels within half a GACOS pixel of the edge: clamp to the edge samples rather than lose them
    yq = np.clip(lat, ys[0], ys[-1]) if np.all(np.abs(np.clip(lat, ys[0], ys[-1]) - lat)[np.isfinite(lat)]
                                                 <= abs(g["Y_STEP"]) / 2 + 1e-9) else lat
    xq = np.clip(lon, xs[0], xs[-1]) if np.all(np.abs(np.clip(lon, xs[0], xs[-1]) - lon)[np.isfinite(lon)]
                                                 <= abs(g["X_STEP"]) / 2 + 1e-9) else lon
    f = RegularGridInterpolator((ys, xs), np.asarray(data, np.float64), method="linear", bounds_error=False,
                                fill_value=np.nan)
    ok = np.isfinite(yq) & np.isfinite(xq)
    out = np.full(lat.shape, np.nan)
    out[ok] = f(np.stack([yq[ok], xq[ok]], axis=-1))
    out[out == 0] = np.nan  # GACOS no-data
    covered = np.isfinite(out)
    if not covered[ok].any():
        raise InputError(f"{path}: the GACOS map (lat {ys[0]:.3f}..{ys[-1]:.3f}, lon {xs[0]:.3f}..{xs[-1]:.3f}) does "
                         "not cover the data grid")
    if not covered[ok].all():
        logger.warning("%s covers %.1f %% of the pixels; the others get no GACOS correction (NaN)", path.name,
                       100 * covered[ok].mean())
    return out


@hookimpl
def sbts_corrections():
    return [PyapsDelay(), HeightCorrelation(), GacosDelay()]


__all__ = ["PyapsDelay", "HeightCorrelation", "GacosDelay", "closest_hour", "read_ztd", "resample_ztd"]
