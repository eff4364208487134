"""Running plugin code: the one error wrapper, corrections (MintPy's suffix chain) and exporters.

Every call into plugin code (a reader's ``detect``/``open_stack``/raster reads, a correction's
``run``, an exporter's ``export``) goes through :func:`guarded`, so that whatever a plugin raises
reaches the user the same way: as an :class:`~sbts.core.errors.SbtsError` that names the plugin.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB, ComputeOptions
from sbts.core.config.template import Template
from sbts.core.errors import InputError, PluginError, SbtsError
from sbts.core.io.h5 import check_distinct, read_metadata
from sbts.core.io.workdir import find_geometry
from sbts.core.plugin.interfaces import CorrectionContext, CorrectionResult, ExportRequest, check_options
from sbts.core.plugin.registry import Registry, describe_exception, get_registry

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def guarded(what: str, error: type[SbtsError] = PluginError) -> Iterator[None]:
    """Run plugin code so that any failure becomes one :class:`SbtsError` naming ``what``.

    ``what`` names the plugin and the action ("reader 'isce'", "exporter 'kmz'").  An
    :class:`SbtsError` the plugin raised on purpose passes unchanged (its message is already for
    the user); any other exception becomes ``error("<what> failed: <Type>: <message>")``, chained
    to the original (``-v`` shows its traceback); ``sys.exit()`` and other ``BaseException``\\ s
    but Ctrl-C become a :class:`PluginError` (a plugin must not end sbts, nor choose its exit
    status); ``KeyboardInterrupt`` passes, so Ctrl-C always stops sbts.
    """
    try:
        yield
    except (SbtsError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise error(f"{what} failed: {describe_exception(exc, limit=None)}") from exc
    except BaseException as exc:  # noqa: BLE001 - SystemExit, GeneratorExit ... from plugin code
        raise PluginError(f"{what} stopped: {describe_exception(exc)}; a plugin must raise an exception, "
                          "not exit") from None


# ------------------------------------------------------------------------- corrections
def suffixed(path: Path, suffix: str) -> Path:
    """MintPy's suffix chain: ``timeseries.h5`` + ``ramp`` → ``timeseries_ramp.h5``.

    Parameters
    ----------
    path : pathlib.Path
    suffix : str
        ``""`` leaves the path unchanged.

    Returns
    -------
    pathlib.Path
    """
    return path.with_name(f"{path.stem}_{suffix}{path.suffix}") if suffix else path


def run_correction(name: str, template: Template, work_dir: str | os.PathLike, input_file: Path | None = None,
                   output_file: Path | None = None, geometry_file: Path | None = None,
                   max_memory: float = DEFAULT_MAX_MEMORY_GB, registry: Registry | None = None,
                   parsed_options: Any = None, num_worker: int = 1, cluster: str | None = None,
                   **options) -> CorrectionResult:
    """Run correction ``name`` on ``input_file`` (default: the stage's usual input in ``work_dir``).

    ``options`` are the correction's own options (``sbts correct NAME -O KEY=VALUE``); a key the
    correction does not declare in its ``options`` is refused.  ``parsed_options``: what the
    correction's ``parse_options`` returned for ``template`` (``sbts run`` parses them once, at its
    start); by default the correction parses them itself.  ``num_worker`` and ``cluster`` say where
    the correction may run its blocks (``mintpy.compute.numWorker`` / ``mintpy.compute.cluster``).
    """
    work_dir = Path(work_dir)
    correction = (registry or get_registry()).get("correction", name)
    options = check_options(options, getattr(correction, "options", {}) or {}, f"correction {name!r}")
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
        max_memory=max_memory, num_worker=max(1, int(num_worker)), cluster=cluster, options=options,
        parsed_options=parsed_options,
    )
    logger.info("correction %s: %s → %s", name, input_file.name, ctx.output_file.name)
    with guarded(f"correction {name!r}"):
        result = correction.run(ctx)
    if not isinstance(result, CorrectionResult) or not Path(result.output).exists():
        raise PluginError(f"correction {name!r} did not produce its output file")
    return result


# ------------------------------------------------------------------------- exporters
def export(name: str, input_file: str | os.PathLike, dataset: str | None = None, output: str | os.PathLike | None = None,
           options: Mapping[str, Any] | None = None, registry: Registry | None = None,
           compute: ComputeOptions | None = None) -> list[Path]:
    """Export ``input_file`` (optionally one ``dataset`` or date) with exporter ``name``; ``compute``:
    the budget and workers (:attr:`ExportRequest.compute`)."""
    exporter = (registry or get_registry()).get("exporter", name)
    input_file = Path(input_file)
    if not input_file.exists():
        raise InputError(f"{input_file}: not found")
    if exporter.requires_geocoded:
        meta = read_metadata(input_file)
        if not meta.grid.is_geocoded:
            raise InputError(f"{input_file} is in radar coordinates; the {name} format needs geocoded data: "
                             f"run `sbts geocode {input_file}` and export geo/geo_{input_file.name}")
    if output:
        check_distinct(output, input_file)
    request = ExportRequest(input_file, dataset, Path(output) if output else None, dict(options or {}), compute)
    with guarded(f"exporter {name!r}"):
        paths = exporter.export(request)
    paths = [Path(p) for p in paths]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise PluginError(f"exporter {name!r} reported files it did not write: {', '.join(map(str, missing))}")
    return paths
