"""``sbts average``: temporal average of one stack dataset over the kept pairs (MintPy temporal_average).

The block-wise work is :mod:`sbts.core.steps.averages`; this module only chooses what to average and where
to write it: ``coherence`` → ``avgSpatialCoh.h5``, a phase dataset → the stacking velocity
``avgPhaseVelocity.h5`` (m/year, as MintPy: a plain mean of radians would mix pairs of different
time spans), any other dataset → ``avg<Dataset>.h5``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.io.h5 import check_distinct
from sbts.core.io.products import write_map
from sbts.core.model.dates import format_date
from sbts.core.steps.averages import (
    AVG_COHERENCE_FILE,
    STACKING_VELOCITY_FILE,
    as_stack,
    stacking_velocity,
    temporal_average,
)
from sbts.core.tools.common import default_output_dir

logger = logging.getLogger(__name__)


def average_stack(stack_file: str | os.PathLike, dataset: str = "coherence", output: str | os.PathLike | None = None,
                  max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """Write the temporal average of ``dataset`` of an ifgramStack; returns the output path."""
    stack = as_stack(stack_file)
    stack._require(dataset)
    kept = int(stack.pairs.keep.sum())
    if dataset.startswith("unwrapPhase"):
        data = stacking_velocity(stack, max_memory, dataset)
        pairs = stack.pairs.kept()
        start, end = format_date(pairs.dates[0]), format_date(pairs.dates[-1])
        meta = stack.metadata.for_product("velocity", "m/year")
        name, ftype, unit, extra = "velocity", "velocity", "m/year", {
            "START_DATE": start, "END_DATE": end, "DATE12": f"{start}_{end}"}
        default = STACKING_VELOCITY_FILE
    else:
        data = temporal_average(stack, dataset, max_memory)
        unit = "1" if dataset in ("coherence", "connectComponent") else stack.metadata.unit
        ftype = name = dataset
        meta = stack.metadata.for_product(ftype, unit)
        extra = {}
        default = AVG_COHERENCE_FILE if dataset == "coherence" else f"avg{dataset[0].upper()}{dataset[1:]}.h5"
    path = Path(output) if output is not None else default_output_dir(stack.path) / default
    check_distinct(path, stack.path)
    write_map(path, meta, ftype, {name: data}, unit=unit, NUM_IFGRAM_KEPT=kept, **extra)
    logger.info("wrote %s (temporal average of %s over %d kept pairs)", path, dataset, kept)
    return path


__all__ = ["average_stack"]
