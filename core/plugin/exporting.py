"""Running exporter plugins, with the checks every format shares."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sbts.core.errors import InputError, PluginError, SbtsError
from sbts.core.io.h5 import check_distinct, read_metadata
from sbts.core.plugin.interfaces import ExportRequest
from sbts.core.plugin.registry import Registry, get_registry, plugin_call

logger = logging.getLogger(__name__)


def export(name: str, input_file: str | os.PathLike, dataset: str | None = None, output: str | os.PathLike | None = None,
           options: Mapping[str, Any] | None = None, registry: Registry | None = None) -> list[Path]:
    """Export ``input_file`` (optionally one ``dataset`` or date) with exporter ``name``."""
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
    request = ExportRequest(input_file, dataset, Path(output) if output else None, dict(options or {}))
    try:
        with plugin_call(f"exporter {name!r}"):
            paths = exporter.export(request)
    except SbtsError:
        raise
    except Exception as exc:
        raise PluginError(f"exporter {name!r} failed: {type(exc).__name__}: {exc}") from exc
    paths = [Path(p) for p in paths]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise PluginError(f"exporter {name!r} reported files it did not write: {', '.join(map(str, missing))}")
    return paths
