"""``sbts correct deramp``: remove a linear or quadratic phase ramp from every date of a time series.

Orbit errors and long-wavelength troposphere leave a smooth ramp in each acquisition.  One surface
per date is fitted on the reliable pixels (``mintpy.deramp.maskFile``, default ``maskTempCoh.h5``)
and subtracted: ``timeseries.h5`` → ``timeseries_ramp.h5``.

Memory stays bounded whatever the image size: the fit uses every mask pixel, as MintPy does, through
the normal equations summed block by block (:class:`sbts.core.model.ramps.RampSums`: a ramp has at
most 6 coefficients), so the ramps do not depend on the memory budget or the workers; the output is
written block by block, resumably.

Reference point: each ramp is taken relative to its value at ``REF_Y/REF_X`` (as MintPy does), so a
referenced time series stays exactly 0 at its reference pixel — a displacement time series is by
definition relative to that point, and removing an un-referenced ramp would shift every date by
a constant and break that.  Pixels that are 0 at every date (no data in MintPy's files) stay 0.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.api import (
    RAMP_KINDS,
    Block,
    Correction,
    CorrectionContext,
    CorrectionResult,
    DataError,
    FileOption,
    InputError,
    MapProduct,
    RampSums,
    Template,
    TemplateError,
    TimeSeries,
    TimeSeriesWriter,
    describe,
    evaluate_ramps,
    evaluate_ramps_at,
    hookimpl,
    memory_per_task,
    num_coefficients,
    pixel_bytes,
    plan_blocks_for,
    progress,
    run_blocks,
    shown,
)

logger = logging.getLogger(__name__)

KEY = "mintpy.deramp"
MASK_KEY = "mintpy.deramp.maskFile"
DEFAULT_MASK = "maskTempCoh.h5"


class Deramp(Correction):
    """Fits one ramp per date on the mask pixels and removes it relative to REF_Y/REF_X (which stays 0)."""

    name = "deramp"
    summary = "Remove a linear/quadratic phase ramp from each date (orbit errors, long-wavelength delay)."
    suffix = "ramp"
    stage = "timeseries"
    step = "deramp"
    after = "correct_troposphere"
    keys = {
        KEY: f"ramp to remove: {' | '.join(RAMP_KINDS)} (no = skip this step)",
        MASK_KEY: "mask of the pixels the ramps are fitted on (default maskTempCoh.h5 in the work dir; no = all pixels)",
    }
    options = {
        "kind": f"ramp to remove, instead of {KEY}: {' | '.join(RAMP_KINDS)}",
        "mask_file": f"mask file, instead of {MASK_KEY}",
    }

    def parse_options(self, template: Template) -> DerampOptions:
        value = template.raw(KEY)
        kind = _parse_kind(value) if value.strip().lower() not in _OFF else None
        return DerampOptions(kind, value, FileOption.from_template(template, MASK_KEY))

    def enabled(self, template: Template, metadata) -> bool:
        return template.get_str(KEY, ["no", *RAMP_KINDS]) is not None

    def reads(self, options: DerampOptions, work_dir: Path) -> list[Path]:
        """Only the mask file (the ramps are fitted on its pixels); no geometry."""
        path = options.mask_file.path(work_dir) if isinstance(options, DerampOptions) else None
        return [path] if path is not None else []

    def run(self, context: CorrectionContext) -> CorrectionResult:
        kind = _kind(context, self.options_of(context))
        ts = TimeSeries(context.input_file)
        shape = ts.shape
        n = len(ts.dates)
        mask_path, mask_label = _mask_file(context, self.options_of(context))
        mask = MapProduct(mask_path) if mask_path is not None else None
        if mask is not None and mask.shape != shape:
            raise InputError(f"{mask_path}: mask is {mask.shape[0]}×{mask.shape[1]} but {context.input_file} is "
                             f"{shape[0]}×{shape[1]}; use a mask of the same grid (mintpy.deramp.maskFile)")
        mask_name = _mask_dataset(mask) if mask is not None else None

        # --- fit: every mask pixel, block by block
        coeffs, nsample = _fit(ts, mask, mask_name, kind, context.max_memory, context.num_worker, context.cluster)
        bad = [ts.date_strings[i] for i in np.flatnonzero(~np.isfinite(coeffs).all(axis=1))]
        if bad:
            raise DataError(f"{context.input_file}: too few valid mask pixels to fit a {kind} ramp on "
                            f"{', '.join(bad)}; check {mask_label} (mintpy.deramp.maskFile)")

        ref = ts.metadata.reference
        if ref.has_point and 0 <= ref.y < shape[0] and 0 <= ref.x < shape[1]:
            coeffs_ref = evaluate_ramps_at(coeffs, ref.y, ref.x, shape, kind)
        else:
            if ref.has_point:
                logger.warning("REF_Y/REF_X = %s/%s is outside the %d×%d image: ramps not re-referenced",
                               ref.y, ref.x, *shape)
            coeffs_ref = np.zeros(n)

        # --- remove, block by block
        meta = ts.metadata.with_extra(**{KEY: kind, MASK_KEY: mask_label})
        signature = _signature(context.input_file, mask_path, kind, coeffs)
        # the block, its ramp and output, and the next block read ahead
        blocks = plan_blocks_for(shape, pixel_bytes(n, 4, copies=5),
                                 memory_per_task(context.max_memory, context.num_worker, context.cluster),
                                 ts.chunk_shape(ts.dataset_name))
        logger.info("removing %s ramps from %d dates (%d×%d, %d block(s)%s)", kind, n, *shape, len(blocks),
                    describe(context.num_worker, context.cluster))
        with TimeSeriesWriter(context.output_file, meta, ts.date_strings, ts.bperp, dataset=ts.dataset_name,
                              signature=signature, unit=ts.metadata.unit or "m") as w:
            todo = [b for b in blocks if not w.is_done(b)]
            results = run_blocks(todo, functools.partial(_read_block, ts),
                                 functools.partial(_remove_ramps, coeffs, coeffs_ref, shape, kind),
                                 workers=context.num_worker, cluster=context.cluster)
            for block, out in progress(results, "deramp", "block", total=len(todo)):
                w.write(ts.dataset_name, out, block)
                w.mark_done(block)
        summary = (f"removed {kind} ramps ({num_coefficients(kind)} coefficients) from {n} dates, "
                   f"fitted on {nsample} pixels of {mask_label}")
        logger.info(summary)
        return CorrectionResult(Path(context.output_file), summary=summary)


_OFF = ("no", "none", "false", "off", "n", "0")


@dataclass(frozen=True)
class DerampOptions:
    """``mintpy.deramp`` (the ramp; ``None`` = off) and ``mintpy.deramp.maskFile``."""

    kind: str | None
    value: str  # as written, for the message when the correction is asked for while off
    mask_file: FileOption


def _parse_kind(value: str) -> str:
    for kind in RAMP_KINDS:
        if value.strip().lower() == kind:
            return kind
    raise TemplateError(f"{KEY} = {shown(value)} is not one of: {', '.join(RAMP_KINDS)} (or no)")


def _kind(context: CorrectionContext, options: DerampOptions) -> str:
    value = context.options.get("kind")
    if value:
        if value.strip().lower() not in _OFF:
            return _parse_kind(value)
    elif options.kind is not None:
        return options.kind
    else:
        value = options.value
    raise TemplateError(f"{KEY} = {value}: deramp is off; set {KEY} = linear or quadratic "
                        f"(e.g. sbts correct deramp -s {KEY}=linear)")


def _mask_file(context: CorrectionContext, options: DerampOptions) -> tuple[Path | None, str]:
    """The mask file and the label recorded in the output (``no`` when all pixels are used)."""
    given = context.options.get("mask_file")
    option = FileOption(MASK_KEY, str(given), True) if given else options.mask_file
    path = option.path(context.work_dir)
    if path is None:
        return None, "no"
    value = option.value
    if path.exists():
        return path, str(value)
    if option.explicit:
        raise InputError(f"{path}: mask file not found ({MASK_KEY} = {value}); "
                         f"give an existing mask or set {MASK_KEY} = no to fit on all pixels")
    logger.warning("%s not found: fitting the ramps on all valid pixels (set %s to choose a mask)", path, MASK_KEY)
    return None, "no"


def _mask_dataset(mask: MapProduct) -> str:
    two_d = [n for n in mask.datasets if len(mask.dataset_shape(n)) == 2]
    for name in ("mask", *two_d):
        if name in two_d:
            return name
    raise InputError(f"{mask.path}: no 2-D dataset to use as a mask")


def _read_mask(mask: MapProduct | None, name: str | None, block: Block) -> np.ndarray:
    if mask is None:
        return np.ones(block.shape, bool)
    data = mask.read(name, block)
    return np.isfinite(data) & (data != 0) if data.dtype.kind == "f" else data != 0


def _fit(ts: TimeSeries, mask: MapProduct | None, mask_name: str | None, kind: str,
         max_memory: float, num_worker: int = 1, cluster: str | None = None) -> tuple[np.ndarray, int]:
    """Ramp coefficients of every date from every valid mask pixel, read block by block (here, in the
    pool or on dask); and the number of pixels they were fitted on.  A pixel that is 0 at every date
    (no data) carries no ramp."""
    sums, any_mask = RampSums.of_series(ts, functools.partial(_read_mask, mask, mask_name), kind, max_memory,
                                        num_worker, cluster)
    if not any_mask:
        raise DataError(f"{mask.path if mask else 'the image'}: the mask selects no pixel; nothing to fit a ramp on")
    if not sums.count:
        raise DataError(f"{ts.path}: no valid pixel inside the mask to fit a ramp on")
    return sums.solve(), sums.count


def _read_block(ts: TimeSeries, block: Block) -> np.ndarray:
    """Every date of one block, float32."""
    return ts.read_dates(block).astype(np.float32, copy=False)


def _remove_ramps(coeffs: np.ndarray, coeffs_ref: np.ndarray, shape: tuple[int, int], kind: str, block: Block,
                  data: np.ndarray) -> np.ndarray:
    """``data`` minus the ramps referenced at the reference point; no-data pixels (0 at every date) stay 0."""
    ramp = evaluate_ramps(coeffs, shape, kind, block)
    ramp -= coeffs_ref.astype(np.float32)[:, None, None]
    nodata = np.all(data == 0, axis=0)
    out = data - ramp
    out[:, nodata] = 0
    return out


def _signature(path: Path, mask: Path | None, kind: str, coeffs: np.ndarray) -> str:
    """Identifies a run for resuming an interrupted write: same input, mask, kind and ramps."""
    h = hashlib.sha256()
    for p in (path, mask):
        if p is not None:
            st = os.stat(p)
            h.update(f"{Path(p).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    h.update(json.dumps(["deramp", kind]).encode())
    h.update(np.ascontiguousarray(coeffs).tobytes())
    return h.hexdigest()


@hookimpl
def sbts_corrections():
    return [Deramp()]
