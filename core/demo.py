"""``sbts demo``: the synthetic stack written to disk, then the pipeline run on it.

The synthetic stack (:mod:`sbts.core.synthetic`) is written in MintPy's layout, as another tool
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

from .h5io import H5Writer
from .metadata import Metadata
from .pairs import Pairs
from .products import StackWriter, TimeSeries, TimeSeriesWriter, write_map
from .template import Template

logger = logging.getLogger(__name__)

DEMO_TEMPLATE = """\
# sbts demo template: MintPy keys, so the same file drives MintPy's smallbaselineApp.py
mintpy.load.processor       = mintpy
mintpy.load.unwFile         = synthetic/ifgramStack.h5
mintpy.load.demFile         = synthetic/geometryGeo.h5
mintpy.networkInversion.weightFunc = var
mintpy.networkInversion.minTempCoh = 0.7
mintpy.deramp               = linear
mintpy.unwrapError.connCompMinArea = 100
"""


def write_synthetic(directory: str | os.PathLike, seed: int = 0, shape: tuple[int, int] = (120, 150),
                    num_date: int = 30) -> Path:
    """Write the synthetic stack (ifgramStack.h5, geometryGeo.h5, truth.h5) into ``directory``."""
    from .synthetic import make_synthetic_stack

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    s = make_synthetic_stack(shape=tuple(shape), num_date=num_date, seed=seed)
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


def run_demo(directory: str | os.PathLike = "sbts_demo", seed: int = 0, shape: tuple[int, int] = (120, 150),
             num_date: int = 30) -> str:
    """Write the demo data into ``directory`` and run the pipeline; returns a summary for the user."""
    from .corrections import run_correction
    from .exporting import export
    from .inversion import InversionOptions, invert_network
    from .loader import load_data
    from .steps import prepare_network

    start = time.perf_counter()
    work = Path(directory).resolve()
    work.mkdir(parents=True, exist_ok=True)
    logger.info("writing the synthetic stack into %s", work / "synthetic")
    write_synthetic(work / "synthetic", seed=seed, shape=shape, num_date=num_date)
    template_path = work / "sbts_demo.cfg"
    template_path.write_text(DEMO_TEMPLATE, encoding="utf-8")
    t = Template.read(template_path)

    lines = [f"sbts demo in {work}", f"  template: {template_path.name}"]
    loaded = load_data(t, work, base_dir=work, max_memory=0.5, force=True)
    lines.append(f"  load:     {loaded.stack_file.relative_to(work)}, "
                 + ", ".join(str(p.relative_to(work)) for p in loaded.geometry_files))
    report = prepare_network(loaded.stack_file, t, work, max_memory=0.5)
    lines.append("  network:  " + report.replace("\n", "\n            "))
    inv = invert_network(loaded.stack_file, work, InversionOptions.from_template(t), template=t, max_memory=0.5,
                         force=True)
    lines.append(f"  invert:   {inv.timeseries.name}, {inv.temporal_coherence.name}, {inv.num_inv_ifgram.name}, "
                 f"{inv.mask_temp_coh.name} ({inv.num_reliable_pixels} reliable pixels)")
    corrected = run_correction("deramp", t, work, input_file=inv.timeseries, max_memory=0.5)
    lines.append(f"  correct:  {corrected.output.name} (deramp)")
    exported = export("geotiff", inv.temporal_coherence, output=work / "export" / "temporalCoherence.tif")
    lines.append("  export:   " + ", ".join(str(p.relative_to(work)) for p in exported))
    lines.append("  accuracy: " + compare_with_truth(inv.timeseries, work / "synthetic" / "truth.h5",
                                                     inv.mask_temp_coh))
    lines.append(f"  done in {time.perf_counter() - start:.1f} s; inspect with `sbts info {inv.timeseries}`")
    return "\n".join(lines)


def compare_with_truth(timeseries_file: Path, truth_file: Path, mask_file: Path | None = None) -> str:
    """RMS difference between an inverted time series and the truth on reliable pixels (mm)."""
    from .products import MapProduct

    ts = TimeSeries(timeseries_file)
    truth = TimeSeries(truth_file)
    est = ts.read_dates()
    ref = truth.read("timeseries")
    ry, rx = ts.metadata.reference.y, ts.metadata.reference.x
    ref = ref - ref[:, ry:ry + 1, rx:rx + 1]
    mask = np.ones(ts.shape, bool) if mask_file is None else MapProduct(mask_file).read("mask").astype(bool)
    diff = (est - ref)[:, mask]
    rms = float(np.sqrt(np.nanmean(diff ** 2))) * 1000
    return f"time-series RMS error vs truth {rms:.1f} mm over {int(mask.sum())} reliable pixels"


__all__ = ["run_demo", "write_synthetic", "compare_with_truth", "H5Writer"]
