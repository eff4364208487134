"""What plugins provide and what they are given.

Three kinds of plugin extend sbts, each an object returned by a hook (see :mod:`sbts.core.plugin.hookspecs`):

- a :class:`Reader` recognises a processor's files and exposes them as rasters (it parses and reads;
  only core writes HDF5);
- a :class:`Correction` turns one product into a corrected one (``timeseries.h5`` →
  ``timeseries_ramp.h5``) or edits the interferogram stack;
- an :class:`Exporter` writes a product in another format.

Plugins subclass these ABCs (or provide the same attributes); the registry validates them.
"""

from __future__ import annotations

import abc
import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.io.blocks import Block
from sbts.core.model.metadata import Metadata
from sbts.core.config.template import Template


# ------------------------------------------------------------------------- rasters
@runtime_checkable
class Raster(Protocol):
    """A 2-D band a reader can read window by window."""

    shape: tuple[int, int]
    dtype: np.dtype

    def read(self, block: Block | None = None) -> np.ndarray:
        """The pixels of ``block`` (the whole band for ``None``), with nodata already as NaN/0."""


@dataclass(frozen=True)
class ArrayRaster:
    """A raster held in memory (small files, toy formats, tests)."""

    data: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape[-2:]

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def read(self, block: Block | None = None) -> np.ndarray:
        return self.data if block is None else self.data[block.slices]


# ------------------------------------------------------------------------- readers
@dataclass(frozen=True)
class PairSource:
    """One interferogram: its dates, baseline and layers (``unwrapPhase``, ``coherence``, ...)."""

    date1: _dt.date
    date2: _dt.date
    layers: Mapping[str, Raster]
    bperp: float | None = None
    path: str = ""  # main file, for messages


@dataclass(frozen=True)
class StackSource:
    """Everything a reader found for the interferogram stack."""

    pairs: Sequence[PairSource]
    metadata: Metadata
    inputs: Sequence[Path] = ()  # files read, for update mode (mtime/size checks)


@dataclass(frozen=True)
class GeometrySource:
    """Geometry layers (``height``, ``incidenceAngle``, ``latitude`` or ``azimuthCoord`` ...)."""

    layers: Mapping[str, Raster]
    metadata: Metadata
    inputs: Sequence[Path] = ()


LOAD_FILE_KEYS = (
    "unwFile", "corFile", "connCompFile", "intFile", "magFile", "demFile", "lookupYFile", "lookupXFile",
    "incAngleFile", "azAngleFile", "shadowMaskFile", "waterMaskFile", "bperpFile", "metaFile", "baselineDir",
)


@dataclass(frozen=True)
class LoadRequest:
    """What the user asked ``sbts load`` for: file patterns (``mintpy.load.*File``) and options.

    ``patterns`` maps the MintPy key suffix (``unwFile``, ``demFile``...) to a glob pattern that is
    already absolute (resolved against the template's folder); absent keys are not in the mapping.
    """

    patterns: Mapping[str, str]
    template: Template
    base_dir: Path
    metadata_overrides: Mapping[str, str] = field(default_factory=dict)

    def pattern(self, key: str) -> str | None:
        return self.patterns.get(key)

    def files(self, key: str) -> list[Path]:
        """Sorted files matching the pattern of ``key`` (empty when unset or nothing matches)."""
        import glob

        from sbts.core.io.safenames import require_regular

        pattern = self.patterns.get(key)
        if not pattern:
            return []
        found = sorted(Path(p) for p in glob.glob(escape_existing_prefix(pattern), recursive=True))
        for path in found:  # a FIFO or a device would block or never end in a reader
            require_regular(path, f"mintpy.load.{key} match", allow_dir=True)
        return found


def escape_existing_prefix(pattern: str) -> str:
    """``pattern`` with its leading folders that exist as written escaped for :mod:`glob`.

    Folder names may hold glob characters (``data[1]/``, ``run*old/``): a folder that exists under
    its literal name is that folder, not a pattern; the rest of the pattern keeps its wildcards.  A
    pattern naming an existing file as written is that file.
    """
    import glob
    import os

    if os.path.exists(pattern) and not os.path.isdir(pattern):
        return glob.escape(pattern)
    parts = Path(pattern).parts
    prefix = Path(parts[0]) if parts else Path()
    used = 1
    for part in parts[1:-1]:
        candidate = prefix / part
        if not candidate.is_dir():
            break
        prefix, used = candidate, used + 1
    if not glob.has_magic(str(prefix)):
        return pattern
    rest = parts[used:]
    return str(Path(glob.escape(str(prefix)), *rest))


class Reader(abc.ABC):
    """A processor format (GAMMA, ISCE, ...)."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""

    @abc.abstractmethod
    def detect(self, request: LoadRequest) -> bool:
        """Cheap check (file names, a header line) whether these files are this format."""

    @abc.abstractmethod
    def open_stack(self, request: LoadRequest) -> StackSource | None:
        """The interferograms, or ``None`` when the request holds none for this reader."""

    def open_geometry(self, request: LoadRequest) -> GeometrySource | Sequence[GeometrySource] | None:
        """The geometry layers, or ``None`` when the request names none.

        Return two sources when the processor gives geometry on two grids (GAMMA/ROI_PAC: DEM in
        radar coordinates and the lookup table on a geographic grid): they become
        ``geometryRadar.h5`` and ``geometryGeo.h5``.
        """
        return None


# ------------------------------------------------------------------------- corrections
@dataclass(frozen=True)
class CorrectionContext:
    """Inputs of one correction run."""

    input_file: Path  # timeseries file (stage "timeseries") or ifgramStack.h5 (stage "ifgram")
    output_file: Path  # where to write (timeseries stage); MintPy's suffix chain
    work_dir: Path
    template: Template
    geometry_file: Path | None = None
    max_memory: float = DEFAULT_MAX_MEMORY_GB  # GB per block
    options: Mapping[str, Any] = field(default_factory=dict)  # command-line settings (kind=, seed= ...)
    # what :meth:`Correction.parse_options` returned for this run's template (``sbts run`` parses
    # every step's options once, at its start); ``None``: parse them from ``template``
    parsed_options: Any = None


@dataclass(frozen=True)
class CorrectionResult:
    output: Path
    extra_outputs: Sequence[Path] = ()
    summary: str = ""


class Correction(abc.ABC):
    """A correction step (deramp, DEM error, troposphere, ...).

    In ``sbts run`` a correction is a step of the plan, built once per run from the registry:

    - ``step`` is the workflow step it is (default ``correct_<name>``); several corrections may
      share one step (the troposphere methods): :meth:`enabled` picks at most one per run;
    - ``after`` is its slot: the step it runs after (MintPy's order for the built-ins:
      correct_LOD, correct_troposphere, deramp, correct_topography after invert_network); a
      time-series correction reads the time series the chain holds at that point and writes
      ``<that name>_<suffix>.h5``, which the following steps then read;
    - :meth:`enabled` says whether the template switches it on; a correction without a switch
      of its own (``None``) joins only when named in ``sbts.run.extraCorrections``.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    suffix: ClassVar[str] = ""  # appended to the time-series file name: timeseries_<suffix>.h5
    stage: ClassVar[str] = "timeseries"  # "timeseries" or "ifgram"
    keys: ClassVar[Mapping[str, str]] = {}  # template keys it reads → one-line help
    step: ClassVar[str] = ""  # the sbts run step it is; "" = correct_<name>
    after: ClassVar[str] = "correct_topography"  # the step it runs after in sbts run
    # named products it writes in the work directory besides its output, which later steps of
    # sbts run use: {"residual": "timeseriesResidual.h5"} feeds residual_RMS
    products: ClassVar[Mapping[str, str]] = {}

    @abc.abstractmethod
    def run(self, context: CorrectionContext) -> CorrectionResult:
        """Compute and write the corrected product; raise SbtsError for unusable input."""

    def parse_options(self, template: Template) -> Any:
        """This correction's options from ``template``, parsed once (``sbts run`` does it at its start,
        so a bad value fails before any work): raise :class:`~sbts.core.errors.TemplateError` for a
        bad value.  The result reaches :meth:`run` as ``context.parsed_options``.  Default: the
        values of the keys in :attr:`keys` (``None`` for a key neither set nor defaulted)."""
        from sbts.core.errors import TemplateError

        values: dict[str, Any] = {}
        for key in self.keys:
            try:
                values[key] = template.raw(key)
            except TemplateError:
                values[key] = None
        return values

    def enabled(self, template: Template, metadata: Metadata | None) -> bool | None:
        """Whether the template switches this correction on in ``sbts run`` (``metadata``: the stack's,
        ``None`` before it is loaded); ``None``: no switch of its own (sbts.run.extraCorrections)."""
        return None

    def output_suffix(self, options: Any) -> str:
        """The suffix of the output file for these options (default :attr:`suffix`)."""
        return self.suffix

    def options_of(self, context: CorrectionContext) -> Any:
        """The parsed options of a run: ``context.parsed_options``, else parsed from its template."""
        if context.parsed_options is not None:
            return context.parsed_options
        return self.parse_options(context.template)


def workflow_step(correction: Correction) -> str:
    """The ``sbts run`` step name of a correction."""
    step = getattr(correction, "step", "") or ""
    return step if isinstance(step, str) and step else f"correct_{correction.name}"


# ------------------------------------------------------------------------- exporters
@dataclass(frozen=True)
class ExportRequest:
    input_file: Path
    dataset: str | None = None
    output: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


class Exporter(abc.ABC):
    """An output format (GeoTIFF, KMZ, ...)."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    description: ClassVar[str] = ""  # what it writes: shown by `sbts export NAME --help`
    requires_geocoded: ClassVar[bool] = False

    @abc.abstractmethod
    def export(self, request: ExportRequest) -> list[Path]:
        """Write the files; return their paths."""


KINDS: dict[str, type] = {"reader": Reader, "correction": Correction, "exporter": Exporter}
