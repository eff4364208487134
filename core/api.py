"""The one import for plugin authors: ``from sbts.core.api import ...``.

Everything a reader, correction or exporter needs from sbts is here, and only here; sbts's own
plugins (``sbts/plugins/``) import nothing else from sbts, so this surface is enough to write one
and what it names stays stable.  A plugin is a module with :data:`hookimpl`-marked hooks
(``sbts_readers``, ``sbts_corrections``, ``sbts_exporters``) returning instances of the ABCs below,
declared in the ``sbts.plugins`` entry-point group of its package (see ``docs/adding-a-reader.md``).

Contents, by what a plugin does:

Declare
    :data:`hookimpl`; the ABCs :class:`Reader`, :class:`Correction`, :class:`Exporter`; the
    reader's :class:`Confidence` levels.
Receive and return
    :class:`LoadRequest` → :class:`StackSource` of :class:`PairSource`, :class:`GeometrySource`
    (bands are :class:`Raster`\\ s: :class:`ArrayRaster`, :class:`BinaryRaster`,
    :class:`GdalRaster`, :class:`TransformedRaster`); :class:`CorrectionContext` →
    :class:`CorrectionResult`; :class:`ExportRequest` → paths; :func:`check_options` for ``-O``.
Describe
    :class:`Metadata` with its :class:`Grid` (:class:`GeoGrid` when geocoded) and
    :class:`RadarInfo`; :func:`standard_platform`, :func:`mission_code`; dates:
    :func:`parse_date`, :func:`format_date`, :func:`dates_in_name`, :func:`years_since`,
    ``DAYS_PER_YEAR`` (365.25).
Read products
    :class:`Product`, :class:`IfgramStack`, :class:`TimeSeries`, :class:`Geometry`,
    :class:`MapProduct`, :func:`open_h5`, :func:`direct` (a dataset read without the chunk cache); dataset tables ``STACK_DATASETS`` (name → dtype of
    ``ifgramStack.h5``), ``GEOMETRY_DATASETS``, ``UNITS`` (dataset → MintPy unit),
    ``UNWRAP_ERROR_DATASETS`` (``mintpy.unwrapError.method`` → the dataset it writes);
    masks: :func:`read_mask_file`; companions in a work directory: :func:`find_geometry`,
    :func:`find_companion`, ``GEO_PREFIX`` (``geo_``, geocoded copies); maps: :func:`select_map`, :class:`MapSelection`,
    :func:`read_mask`, :func:`scale_unit`.
Work in blocks
    :class:`Block`, :func:`plan_blocks`, :class:`RowSet` (a few scattered rows); a budget without bytes counted by hand:
    :class:`Budget`, :func:`pixel_bytes`, :func:`plan_blocks_for`; run the blocks here, in a
    process pool or on dask (``context.num_worker``, ``context.cluster``): :func:`run_blocks`,
    :func:`memory_per_task` (the budget of one block when several run at once), :func:`describe`;
    :func:`task_arrays` for image-sized arrays every task reads (sent by file, not with each task),
    :func:`runs_apart` (whether the tasks run in other processes), :func:`workers_within` (how many
    unsplittable items run at once within the budget);
    :func:`progress` for the bar.
Write
    :class:`H5Writer`, :class:`TimeSeriesWriter`, :func:`atomic_output`, :func:`atomic_write_text`,
    :func:`edit_in_place`, :class:`StackEditor` (the in-place edits of ``ifgramStack.h5``),
    :func:`check_distinct`, :func:`check_free_space`, :func:`output_lock`,
    :func:`encode_dates`, ``INCOMPLETE_ATTR`` (the attribute marking a dataset being written);
    names: :func:`output_path`, :func:`label_stem`, :func:`safe_part`, :func:`suffixed`;
    exporter options: :func:`parse_options`, :func:`option_memory`.
Compute
    ramps: ``RAMP_KINDS``, :func:`num_coefficients`, :func:`fit_ramps`, :func:`fit_ramps_samples`, :class:`RampSums`,
    :func:`evaluate_ramps`, :func:`evaluate_ramps_at`; phase closure: ``TWO_PI``,
    ``DEFAULT_ALPHA`` (the L1 weight), :func:`triplet_indices`, :func:`triplet_matrix`,
    :func:`integer_ambiguity`, :func:`reference_phase`, :func:`solve_integer_ambiguity`; network
    inversion of another stack with the engine of ``invert_network`` (the ionosphere stack):
    :func:`invert_network` with :class:`InversionOptions` (``from_template``; a
    :func:`dataclasses.replace` copy to change one) and :class:`InversionOutputs` (the file names;
    ``mask_temp_coh=None``: no mask, no minNumPixel check).
Templates and text
    :class:`Template` (``context.template``), :class:`FileOption` (a file a key names),
    :func:`parse_text`, :func:`read_text_file`, :func:`read_text`.
Fail
    :class:`SbtsError` and its kinds :class:`InputError`, :class:`TemplateError`,
    :class:`DataError`, :class:`PluginError`; :func:`shown` to quote a value in a message.  Raise
    them for anything the user can fix: the message reaches them as one line.

Importing this module imports numpy and h5py, never GDAL (rasters open it on first read) nor scipy
(imported where a function needs it: plugin discovery stays fast).
"""

from __future__ import annotations

from sbts.core.compute.scheduling import describe, memory_per_task, run_blocks, runs_apart, workers_within
from sbts.core.compute.task_arrays import TaskArrays, task_arrays
from sbts.core.config.compute import ComputeOptions
from sbts.core.config.options import FileOption
from sbts.core.config.template import Template, parse_text, read_text_file
from sbts.core.errors import DataError, InputError, PluginError, SbtsError, TemplateError, shown
from sbts.core.inversion.closure import (
    DEFAULT_ALPHA,
    TWO_PI,
    integer_ambiguity,
    reference_phase,
    solve_integer_ambiguity,
    triplet_indices,
    triplet_matrix,
)
from sbts.core.inversion.engine import UNWRAP_ERROR_DATASETS, InversionOutputs, invert_network
from sbts.core.inversion.options import InversionOptions
from sbts.core.io.blocks import Block, Budget, RowSet, pixel_bytes, plan_blocks, plan_blocks_for
from sbts.core.io.chunk_codec import ChunkCodec, EncodedChunk, chunk_aligned, pack_chunks, unpack_chunks
from sbts.core.io.h5 import (
    INCOMPLETE_ATTR,
    H5Writer,
    atomic_output,
    atomic_write_text,
    check_distinct,
    check_free_space,
    direct,
    edit_in_place,
    encode_dates,
    open_h5,
)
from sbts.core.io.lock import output_lock
from sbts.core.io.maps import (
    MapSelection,
    label_stem,
    option_memory,
    output_path,
    parse_options,
    read_mask,
    scale_unit,
    select_map,
)
from sbts.core.io.masks import read_mask_file
from sbts.core.io.products import (
    GEOMETRY_DATASETS,
    STACK_DATASETS,
    UNITS,
    Geometry,
    IfgramStack,
    MapProduct,
    Product,
    TimeSeries,
    TimeSeriesWriter,
)
from sbts.core.io.progress import progress
from sbts.core.io.rasters import BinaryRaster, GdalRaster, TransformedRaster
from sbts.core.io.safenames import read_text, safe_part
from sbts.core.io.stack_editor import StackEditor
from sbts.core.io.workdir import GEO_PREFIX, find_companion, find_geometry
from sbts.core.model.dates import DAYS_PER_YEAR, dates_in_name, format_date, parse_date, years_since
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo
from sbts.core.model.platform import mission_code, standard_platform
from sbts.core.model.ramps import (
    RAMP_KINDS,
    RampSums,
    evaluate_ramps,
    evaluate_ramps_at,
    fit_ramps,
    fit_ramps_samples,
    num_coefficients,
)
from sbts.core.plugin.hookspecs import hookimpl
from sbts.core.plugin.interfaces import (
    ArrayRaster,
    Confidence,
    Correction,
    CorrectionContext,
    CorrectionResult,
    Exporter,
    ExportRequest,
    GeometrySource,
    LoadRequest,
    PairSource,
    Raster,
    Reader,
    RunProducts,
    StackSource,
    check_options,
)
from sbts.core.plugin.runners import suffixed

__all__ = [
    # declare
    "hookimpl", "Reader", "Correction", "Exporter", "Confidence",
    # receive and return
    "LoadRequest", "PairSource", "StackSource", "GeometrySource", "Raster", "ArrayRaster", "BinaryRaster",
    "GdalRaster", "TransformedRaster", "CorrectionContext", "CorrectionResult", "ExportRequest", "RunProducts", "check_options",
    # describe
    "Metadata", "Grid", "GeoGrid", "RadarInfo", "standard_platform", "mission_code",
    "parse_date", "format_date", "dates_in_name", "years_since", "DAYS_PER_YEAR",
    # read products
    "Product", "IfgramStack", "TimeSeries", "Geometry", "MapProduct", "open_h5", "direct",
    "STACK_DATASETS", "GEOMETRY_DATASETS", "UNITS", "UNWRAP_ERROR_DATASETS",
    "read_mask_file", "find_geometry", "find_companion", "GEO_PREFIX", "select_map", "MapSelection", "read_mask", "scale_unit",
    # work in blocks
    "Block", "RowSet", "plan_blocks", "plan_blocks_for", "pixel_bytes", "Budget", "run_blocks", "memory_per_task", "describe", "runs_apart", "workers_within", "TaskArrays", "task_arrays",
    "progress", "ComputeOptions",
    # write
    "H5Writer", "TimeSeriesWriter", "atomic_output", "atomic_write_text", "edit_in_place", "check_distinct",
    "check_free_space", "output_lock", "StackEditor", "encode_dates", "INCOMPLETE_ATTR",
    "output_path", "label_stem", "safe_part", "suffixed", "parse_options", "option_memory",
    "ChunkCodec", "EncodedChunk", "chunk_aligned", "pack_chunks", "unpack_chunks",
    # compute
    "RAMP_KINDS", "num_coefficients", "fit_ramps", "fit_ramps_samples", "RampSums", "evaluate_ramps", "evaluate_ramps_at",
    "TWO_PI", "DEFAULT_ALPHA", "triplet_indices", "triplet_matrix", "integer_ambiguity", "reference_phase",
    "solve_integer_ambiguity", "invert_network", "InversionOptions", "InversionOutputs",
    # templates and text
    "Template", "FileOption", "parse_text", "read_text_file", "read_text",
    # fail
    "SbtsError", "InputError", "TemplateError", "DataError", "PluginError", "shown",
]
