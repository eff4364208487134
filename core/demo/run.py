"""``sbts demo``: the synthetic stack written to disk, then the pipeline run on it.

The synthetic stack (:mod:`sbts.core.demo.synthetic`) is written in MintPy's layout, as another tool
would hand it over, with its truth beside it; then every step that exists runs through the same
library calls as the commands: load (through the ``mintpy`` reader plugin), network and
reference point, weighted inversion, a correction plugin, an export plugin; finally the result is
compared with the truth.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from sbts.core.errors import InputError
from sbts.core.io.h5 import atomic_write_text
from sbts.core.io.products import StackWriter, TimeSeries, TimeSeriesWriter, write_map
from sbts.core.model.metadata import Metadata
from sbts.core.model.pairs import Pairs

logger = logging.getLogger(__name__)

DEMO_TEMPLATE = """\
# sbts demo template: MintPy keys, so the same file drives MintPy's smallbaselineApp.py
mintpy.load.processor       = mintpy
mintpy.load.unwFile         = synthetic/ifgramStack.h5
mintpy.load.demFile         = synthetic/geometryGeo.h5
mintpy.unwrapError.method   = bridging
mintpy.unwrapError.connCompMinArea = 100
mintpy.networkInversion.weightFunc = var
mintpy.networkInversion.minTempCoh = 0.7
mintpy.topographicResidual  = yes
mintpy.timeFunc.periodic    = 1
mintpy.save.kmz             = yes
"""


# the synthetic stack is built in memory: about this many bytes per pixel and date
_BYTES_PER_PIXEL_DATE = 64
DEMO_MEMORY_GB = 8.0


def check_demo_size(shape: tuple[int, int], num_date: int) -> None:
    """Refuse sizes the synthetic stack cannot have (too small for its features, or beyond memory)."""
    try:
        rows, cols = (int(v) for v in shape)
        num_date = int(num_date)
    except (TypeError, ValueError):
        raise InputError(f"demo size {shape!r} / dates {num_date!r}: give whole numbers") from None
    if rows < 16 or cols < 16:
        raise InputError(f"demo size {rows} × {cols}: the synthetic stack needs at least 16 × 16 pixels")
    if num_date < 3:
        raise InputError(f"demo with {num_date} date(s): the synthetic stack needs at least 3 acquisitions")
    need = rows * cols * num_date * _BYTES_PER_PIXEL_DATE / 1024**3
    if need > DEMO_MEMORY_GB:
        raise InputError(f"demo size {rows} × {cols} with {num_date} dates would need about {need:.0f} GB of memory "
                         f"(the synthetic stack is built whole); keep rows × columns × dates under "
                         f"{int(DEMO_MEMORY_GB * 1024**3 / _BYTES_PER_PIXEL_DATE):,}")


def write_synthetic(directory: str | os.PathLike, seed: int = 0, shape: tuple[int, int] = (120, 150),
                    num_date: int = 30, **keywords) -> Path:
    """Write the synthetic stack (ifgramStack.h5, geometryGeo.h5, truth.h5) into ``directory``;
    ``keywords`` go to :func:`~sbts.core.demo.synthetic.make_synthetic_stack` (``orbit_direction`` ...)."""
    from sbts.core.demo.synthetic import make_synthetic_stack

    check_demo_size(shape, num_date)
    return write_synthetic_files(directory, make_synthetic_stack(shape=tuple(shape), num_date=num_date, seed=seed,
                                                                 **keywords))


def write_synthetic_files(directory: str | os.PathLike, s) -> Path:
    """Write a :class:`~sbts.core.demo.synthetic.SyntheticStack` in MintPy's layout, its truth beside it."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    shape = s.shape
    attrs = dict(s.attrs)
    attrs.update(LENGTH=str(shape[0]), WIDTH=str(shape[1]))
    meta = Metadata.from_attrs(attrs, source="synthetic stack")
    pairs = Pairs.from_indices(list(s.dates), s.date1_index, s.date2_index, s.bperp)
    with StackWriter(out / "ifgramStack.h5", meta, pairs, ["unwrapPhase", "coherence", "connectComponent"]) as w:
        w.write("unwrapPhase", s.unwrap_phase)
        w.write("coherence", s.coherence)
        w.write("connectComponent", s.conn_comp)
    geometry = {
        "height": s.height, "incidenceAngle": s.incidence_angle, "azimuthAngle": s.azimuth_angle,
        "slantRangeDistance": s.slant_range_distance, "waterMask": s.water_mask, "shadowMask": s.shadow_mask,
    }
    write_map(out / "geometryGeo.h5", meta, "geometry", geometry, unit=None)
    truth = s.truth
    ry, rx = truth.reference_yx
    total = s.truth_timeseries()
    total = total - total[:, ry:ry + 1, rx:rx + 1]
    tmeta = meta.with_reference(y=ry, x=rx).with_extra(DESCRIPTION="known truth of the sbts synthetic demo stack")
    with TimeSeriesWriter(out / "truth.h5", tmeta, s.date_list, s.bperp) as w:
        w.write("timeseries", total.astype(np.float32))
        w.create("deformation", data=(truth.deformation - truth.deformation[:, ry:ry + 1, rx:rx + 1]).astype(np.float32))
        w.create("velocity", data=(truth.velocity - truth.velocity[ry, rx]).astype(np.float32))
        w.create("seasonalAmplitude", data=np.asarray(truth.seasonal_amplitude, np.float32))
        w.create("demError", data=np.asarray(truth.dem_error, np.float32))
        w.create("troposphere", data=np.asarray(truth.troposphere_turbulent + truth.troposphere_stratified, np.float32))
        w.create("unwrapErrorPairs", data=np.array([e[0] for e in truth.unwrap_errors], np.int32))
        w.create("noisyDateIndex", data=np.array([truth.noisy_date_index], np.int32))
    return out


def write_demo_inputs(directory: str | os.PathLike = "sbts_demo", seed: int = 0, shape: tuple[int, int] = (120, 150),
                      num_date: int = 30, **keywords) -> Path:
    """Write the synthetic stack into ``directory/synthetic`` and the demo template beside it; returns
    the template (``directory/sbts_demo.cfg``), ready for ``sbts run`` (nothing is run).  ``keywords``
    go to :func:`write_synthetic` (``orbit_direction="DESCENDING"`` ...)."""
    work = Path(directory).resolve()
    work.mkdir(parents=True, exist_ok=True)
    logger.info("writing the synthetic stack into %s", work / "synthetic")
    from sbts.core.io.provenance import Provenance, recording

    with recording(Provenance("demo", {"seed": seed, "shape": list(shape), "num_date": num_date, **keywords})):
        write_synthetic(work / "synthetic", seed=seed, shape=shape, num_date=num_date, **keywords)
    template_path = work / "sbts_demo.cfg"
    truth_ref = TimeSeries(work / "synthetic" / "truth.h5").metadata.reference
    # as users do with a GNSS station or a known stable area: a coherent, nearly stable pixel
    reference = (f"mintpy.reference.yx        = {truth_ref.y},{truth_ref.x}   "
                 "# a stable, coherent pixel (the synthetic truth's)\n")
    atomic_write_text(template_path, DEMO_TEMPLATE + reference)
    return template_path


def run_demo(directory: str | os.PathLike = "sbts_demo", seed: int = 0, shape: tuple[int, int] = (120, 150),
             num_date: int = 30, export_format: str | None = None) -> str:
    """Write the demo data into ``directory``, run the whole workflow and the pictures; returns a summary.

    ``export_format``: an exporter that also writes the velocity into ``export/`` (``sbts demo``
    asks for ``geotiff``, to show a file for GIS software).
    """
    from sbts.core.plugin.runners import export
    from sbts.core.workflow.runner import run_workflow

    start = time.perf_counter()
    work = Path(directory).resolve()
    template_path = write_demo_inputs(work, seed=seed, shape=shape, num_date=num_date)
    reports = run_workflow(template_path, work, force=True, plot=True, max_memory=0.5)
    exported = []
    if export_format:
        exported = export(export_format, work / "velocity.h5", dataset="velocity", output=work / "export")

    lines = [f"sbts demo in {work}", f"  template: {template_path.name} (rerun any step: sbts run {template_path.name} --dostep STEP)"]
    for r in reports:
        if r.status == "ran" and r.name != "plot":
            shown = ", ".join(p.name for p in r.outputs[:4]) + (" ..." if len(r.outputs) > 4 else "")
            lines.append(f"  {r.name:<21s} {shown}")
    pics = next((r.outputs for r in reports if r.name == "plot"), [])
    lines.append(f"  pictures:             {len(pics)} in {work / 'pic'} (start with velocity.png, network.png)")
    if exported:
        lines.append("  export:               " + ", ".join(str(p.relative_to(work)) for p in exported))
    lines.append("  inversion accuracy:   " + compare_with_truth(work / "timeseries.h5", work / "synthetic" / "truth.h5",
                                                                 work / "maskTempCoh.h5"))
    lines.append("  velocity accuracy:    " + velocity_error(work / "velocity.h5", work / "synthetic" / "truth.h5",
                                                             work / "maskTempCoh.h5"))
    lines.append(f"  done in {time.perf_counter() - start:.1f} s")
    return "\n".join(lines)


def velocity_error(velocity_file: Path, truth_file: Path, mask_file: Path) -> str:
    """RMS difference between the estimated and the true velocity on reliable pixels (mm/yr)."""
    from sbts.core.io.products import MapProduct

    est = MapProduct(velocity_file)
    v = est.read("velocity")
    truth = MapProduct(truth_file).read("velocity")
    ry, rx = est.metadata.reference.y, est.metadata.reference.x
    truth = truth - truth[ry, rx]
    mask = MapProduct(mask_file).read("mask").astype(bool)
    rms = float(np.sqrt(np.nanmean((v - truth)[mask] ** 2))) * 1000
    return (f"RMS error {rms:.1f} mm/yr against a true velocity of {truth[mask].min() * 100:.1f} .. "
            f"{truth[mask].max() * 100:.1f} cm/yr (the subsiding bowl)")


def compare_with_truth(timeseries_file: Path, truth_file: Path, mask_file: Path | None = None,
                       deformation_only: bool = False) -> str:
    """RMS difference between a time series and the truth on reliable pixels (mm).

    Both are referenced to the file's reference pixel and date.  ``deformation_only`` compares with
    the deformation alone (for a corrected series: troposphere and DEM error removed).
    """
    from sbts.core.io.products import MapProduct

    ts = TimeSeries(timeseries_file)
    truth = TimeSeries(truth_file)
    est = ts.read_dates()
    ref = truth.read("deformation" if deformation_only else "timeseries")
    ry, rx = ts.metadata.reference.y, ts.metadata.reference.x
    ref = ref - ref[:, ry:ry + 1, rx:rx + 1]
    ref_date = ts.metadata.reference.date
    k = ts.dates.index(ref_date) if ref_date in ts.dates else 0
    ref = ref - ref[k:k + 1]
    est = est - est[k:k + 1]
    mask = np.ones(ts.shape, bool) if mask_file is None else MapProduct(mask_file).read("mask").astype(bool)
    diff = (est - ref)[:, mask]
    rms = float(np.sqrt(np.nanmean(diff ** 2))) * 1000
    what = "deformation" if deformation_only else "truth"
    return f"{timeseries_file.name}: RMS error vs {what} {rms:.1f} mm over {int(mask.sum())} reliable pixels"


__all__ = ["run_demo", "write_demo_inputs", "write_synthetic", "compare_with_truth"]
