"""Processing steps that combine several library calls (used by the CLI and the workflow)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.config.template import Template

logger = logging.getLogger(__name__)


def prepare_network(stack_path: str | os.PathLike, template: Template, work_dir: str | os.PathLike,
                    max_memory: float = DEFAULT_MAX_MEMORY_GB) -> str:
    """modify_network + reference_point (+ the averages they need); returns a text report."""
    from sbts.core.io.products import IfgramStack
    from sbts.core.steps.averages import (
        write_average_coherence,
        write_conncomp_mask,
        write_stacking_velocity,
        write_water_mask,
    )
    from sbts.core.steps.network import modify_network
    from sbts.core.steps.reference import choose_reference, set_reference

    stack_path, work_dir = Path(stack_path), Path(work_dir)
    write_water_mask(stack_path, work_dir)
    report = modify_network(stack_path, template, work_dir, max_memory)
    if IfgramStack(stack_path).has("coherence"):
        write_average_coherence(stack_path, work_dir, max_memory)
    else:
        logger.info("%s has no coherence: avgSpatialCoh.h5 is not written", stack_path.name)
    write_conncomp_mask(stack_path, work_dir, max_memory)
    choice = choose_reference(IfgramStack(stack_path), template, work_dir, max_memory)
    set_reference(stack_path, choice.y, choice.x, choice.lat, choice.lon)
    write_stacking_velocity(stack_path, work_dir, max_memory)
    lines = [report.summary(), f"reference point: y={choice.y}, x={choice.x} ({choice.method})"]
    return "\n".join(lines)
