"""``sbts correct lod``: Envisat ASAR local-oscillator drift (Marinkovic & Larsen 2013).

The ASAR local oscillator frequency decays over the mission, which adds to every interferogram a phase
ramp in range that grows linearly with time: an apparent displacement

    C(x, t) [m] = 3.87e-7 [1/yr] · Δr(x) [m] · (t − t_ref) [yr]

with Δr the slant range relative to the reference pixel (so REF_Y/REF_X stays 0) and t_ref = REF_DATE
(so the reference date stays 0); t in years = days / 365.25.

Sign: the corrected series is ``ts − C`` with ``ts`` in sbts/MintPy displacement sign (metres, positive
toward the satellite), i.e. the drift appears as motion toward the satellite that grows with range and
time.  This is the convention of MintPy's implementation of the paper (``shared/reference/mintpy.md``
§4.3: ``ts_i −= C(x, t_i)``), which sbts keeps so that results agree.

Δr comes from the geometry layer ``slantRangeDistance``; without it, in radar coordinates, from
``RANGE_PIXEL_SIZE·(col − REF_X)`` (exact for a slant-range grid).  The correction is only meaningful
for Envisat; it runs for any platform when asked (and says so), while the workflow's
``mintpy.localOscillatorDrift = auto_envisat`` uses :func:`applies_by_default`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sbts.core.api import (
    DAYS_PER_YEAR,
    Block,
    Correction,
    CorrectionContext,
    CorrectionResult,
    InputError,
    Metadata,
    Template,
    TimeSeries,
    TimeSeriesWriter,
    hookimpl,
    pixel_bytes,
    plan_blocks_for,
)
from sbts.plugins.corrections._tropo_common import (
    GeometryAccess,
    reference_date_index,
    reference_pixel,
)

logger = logging.getLogger(__name__)

KEY = "mintpy.localOscillatorDrift"
DRIFT_RATE = 3.87e-7  # 1/yr: apparent range change per metre of slant range per year (Marinkovic & Larsen 2013)


def applies_by_default(metadata: Metadata | Mapping[str, Any]) -> bool:
    """True for Envisat (PLATFORM starting with 'env', any case): ``auto_envisat`` switches the step on."""
    if isinstance(metadata, Metadata):
        platform = metadata.radar.platform
    else:
        platform = metadata.get("PLATFORM")
        if isinstance(platform, bytes):
            platform = platform.decode("utf-8", errors="replace")
    return bool(platform) and str(platform).strip().lower().startswith("env")


@dataclass(frozen=True)
class LodOptions:
    """``mintpy.localOscillatorDrift`` as given (``auto_envisat``, ``yes`` ...)."""

    value: str = "auto_envisat"
    given: bool = False


class LocalOscillatorDrift(Correction):
    """Removes C = 3.87e-7/yr · Δr · (t − t_ref) (Δr slant range relative to REF_Y/REF_X)."""

    name = "lod"
    summary = "Remove the Envisat local-oscillator drift ramp (range × time)."
    suffix = "LOD"
    stage = "timeseries"
    step = "correct_LOD"
    after = "invert_network"  # MintPy: the first correction of the time series
    keys = {
        KEY: "auto_envisat (workflow: only for PLATFORM env*) | yes | no; `sbts correct lod` always runs",
    }

    def parse_options(self, template: Template) -> LodOptions:
        value = (template.raw(KEY) or "").strip()
        if value.lower() not in ("auto", "auto_envisat"):
            template.get_bool(KEY)  # a bad value fails now
        # what the output records: the key's value when given, else "yes" (asked for by name)
        return LodOptions(value=value, given=KEY in template.values)

    def enabled(self, template: Template, metadata: Metadata | None) -> bool:
        value = (template.raw(KEY) or "").lower()
        if value in ("auto_envisat", "auto"):
            return metadata is not None and applies_by_default(metadata)
        return template.get_bool(KEY)

    def run(self, context: CorrectionContext) -> CorrectionResult:
        options = self.options_of(context)
        ts = TimeSeries(context.input_file)
        meta = ts.metadata
        if not applies_by_default(meta):
            logger.warning("PLATFORM = %s is not Envisat: the local-oscillator drift is an Envisat ASAR artefact; "
                           "correcting anyway because it was asked for", meta.radar.platform or "(unknown)")
        ref_yx = reference_pixel(ts)
        range_of = _range_function(context, ts, ref_yx)
        ref_i = reference_date_index(ts)
        years = np.array([(d - ts.dates[ref_i]).days for d in ts.dates], np.float64) / DAYS_PER_YEAR
        n = len(ts.dates)
        value = options.value if options.given else "yes"
        out_meta = meta.with_extra(**{KEY: value, "LOD_RATE": repr(DRIFT_RATE)})
        blocks = plan_blocks_for(ts.shape, pixel_bytes(n, 4, copies=3, extra=16), context.max_memory, ts.chunk_shape(ts.dataset_name))
        with TimeSeriesWriter(context.output_file, out_meta, ts.date_strings, ts.bperp, dataset=ts.dataset_name,
                              unit=meta.unit or "m") as w:
            span = 0.0
            for block in blocks:
                data = ts.read_dates(block).astype(np.float32, copy=False)
                drange = range_of(block)
                if np.isfinite(drange).any():
                    span = max(span, float(np.nanmax(np.abs(drange))))
                corr = DRIFT_RATE * years[:, None, None] * drange[None]
                out = (data - corr).astype(np.float32)
                out[:, np.all(data == 0, axis=0)] = 0
                w.write(ts.dataset_name, out, block)
                del data, corr, out  # released before the next block is read
        if span < _MIN_RANGE_SPAN:
            summary = (f"nothing removed: the slant range does not vary over the scene, so the local-oscillator "
                       f"drift ramp is zero ({n} dates copied unchanged)")
        else:
            summary = (f"removed the local-oscillator drift ({DRIFT_RATE:g}/yr × range) from {n} dates, "
                       f"up to {DRIFT_RATE * span * np.abs(years).max() * 100:.2f} cm at {span / 1e3:.1f} km "
                       f"from the reference pixel")
        logger.info(summary)
        return CorrectionResult(Path(context.output_file), summary=summary)


_MIN_RANGE_SPAN = 1.0  # m: less slant-range variation than this over the scene leaves no ramp to remove


def _warn_if_constant(geom: GeometryAccess, ts: TimeSeries, r0: float) -> None:
    """Say why the correction will change nothing when the geometry holds one range for every pixel.

    Geocoded GAMMA/ROI_PAC/SNAP products (and MintPy's geometryGeo.h5 of them) carry only the
    scene-centre slant range; the drift is a ramp in range, so with a constant range it is zero.
    """
    layer = geom.read("slantRangeDistance", None, "the LOD correction")
    finite = layer[np.isfinite(layer)]
    if finite.size and float(finite.max() - finite.min()) < _MIN_RANGE_SPAN:
        grid = "geocoded " if ts.metadata.grid.is_geocoded else ""
        logger.warning("LOD: slantRangeDistance of %s is constant (%.1f km for every pixel; the %sproduct gives "
                       "only the scene-centre range), so the drift ramp is zero and the LOD correction removes "
                       "nothing; correct the radar-coded time series, or give a geometry with per-pixel slant "
                       "range (-g)", geom.path, r0 / 1e3, grid)


def _range_function(context: CorrectionContext, ts: TimeSeries, ref_yx):
    """Δr(block): slant range relative to the reference pixel (the near-range column when there is none)."""
    geom = GeometryAccess(context, ts)
    if geom.has_layer("slantRangeDistance"):
        if ref_yx is not None:
            r0 = float(geom.read("slantRangeDistance", Block(ref_yx[0], ref_yx[0] + 1, ref_yx[1], ref_yx[1] + 1),
                                 "the LOD correction")[0, 0])
        else:
            r0 = float(np.nanmin(geom.read("slantRangeDistance", None, "the LOD correction")))
        if not np.isfinite(r0) or r0 <= 0:
            raise InputError(f"{geom.path}: slantRangeDistance is {r0} at the reference pixel; cannot reference "
                             "the LOD correction")
        logger.info("LOD: slant range from slantRangeDistance of %s", geom.path)
        _warn_if_constant(geom, ts, r0)
        return lambda block: geom.read("slantRangeDistance", block, "the LOD correction") - r0
    pixel = ts.metadata.radar.range_pixel_size
    where = (f"{geom.path} has no slantRangeDistance layer" if geom.path is not None
             else "no geometry file was found (give one with -g)")
    if ts.metadata.grid.is_geocoded:
        raise InputError(f"the LOD correction needs the slant range of each pixel: {where}, and {ts.path} is "
                         "geocoded, so RANGE_PIXEL_SIZE·column is not a range; use the radar-coded series or a "
                         "geometry file with slantRangeDistance")
    if pixel is None:
        raise InputError(f"the LOD correction needs the slant range of each pixel: {where} and {ts.path} has no "
                         "RANGE_PIXEL_SIZE attribute (set RANGE_PIXEL_SIZE = ... in the template)")
    x0 = ref_yx[1] if ref_yx is not None else 0
    logger.info("LOD: slant range from RANGE_PIXEL_SIZE = %g m × (column − %d)", pixel, x0)

    def from_columns(block: Block) -> np.ndarray:
        cols = np.arange(block.col_start, block.col_stop, dtype=np.float64) - x0
        return np.broadcast_to(pixel * cols[None, :], block.shape)

    return from_columns


@hookimpl
def sbts_corrections():
    return [LocalOscillatorDrift()]
