"""Running correction plugins: file names of MintPy's suffix chain, inputs found, results checked."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.errors import InputError, PluginError, SbtsError
from sbts.core.io.h5 import check_distinct
from sbts.core.io.workdir import find_geometry
from sbts.core.plugin.interfaces import CorrectionContext, CorrectionResult
from sbts.core.plugin.registry import Registry, get_registry, plugin_call
from sbts.core.config.template import Template

logger = logging.getLogger(__name__)


def suffixed(path: Path, suffix: str) -> Path:
    """``timeseries.h5`` + ``ramp`` → ``timeseries_ramp.h5`` (MintPy's chain)."""
    return path.with_name(f"{path.stem}_{suffix}{path.suffix}") if suffix else path


def run_correction(name: str, template: Template, work_dir: str | os.PathLike, input_file: Path | None = None,
                   output_file: Path | None = None, geometry_file: Path | None = None, max_memory: float = DEFAULT_MAX_MEMORY_GB,
                   registry: Registry | None = None, parsed_options=None, **options) -> CorrectionResult:
    """Run correction ``name`` on ``input_file`` (default: the stage's usual input in ``work_dir``).

    ``parsed_options``: what the correction's ``parse_options`` returned for ``template`` (``sbts
    run`` parses them once, at its start); by default the correction parses them itself."""
    work_dir = Path(work_dir)
    correction = (registry or get_registry()).get("correction", name)
    if input_file is None:
        input_file = work_dir / ("inputs/ifgramStack.h5" if correction.stage == "ifgram" else "timeseries.h5")
    input_file = Path(input_file)
    if not input_file.exists():
        raise InputError(f"{input_file}: not found (the input of correction {name!r}; give it with -i)")
    if output_file is None:
        output_file = input_file if correction.stage == "ifgram" else suffixed(input_file, correction.suffix)
    if correction.stage != "ifgram":  # stack corrections add a dataset to their input, by design
        check_distinct(output_file, input_file)
    ctx = CorrectionContext(
        input_file=input_file, output_file=Path(output_file), work_dir=work_dir, template=template,
        geometry_file=Path(geometry_file) if geometry_file else find_geometry(work_dir=work_dir),
        max_memory=max_memory, options=options, parsed_options=parsed_options,
    )
    logger.info("correction %s: %s → %s", name, input_file.name, ctx.output_file.name)
    try:
        with plugin_call(f"correction {name!r}"):
            result = correction.run(ctx)
    except SbtsError:
        raise
    except Exception as exc:
        raise PluginError(f"correction {name!r} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, CorrectionResult) or not Path(result.output).exists():
        raise PluginError(f"correction {name!r} did not produce its output file")
    return result
