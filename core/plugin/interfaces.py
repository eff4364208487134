"""What plugins provide and what they are given.

Three kinds of plugin extend sbts, each an object returned by a hook (see :mod:`sbts.core.plugin.hookspecs`):

- a :class:`Reader` recognises a processor's files and exposes them as rasters (it parses and reads;
  only core writes HDF5);
- a :class:`Correction` turns one product into a corrected one (``timeseries.h5`` →
  ``timeseries_ramp.h5``) or edits the interferogram stack;
- an :class:`Exporter` writes a product in another format.

Plugins subclass these ABCs (or provide the same attributes); the registry validates them.  Plugin
authors import all of this from :mod:`sbts.core.api`.
"""

from __future__ import annotations

import abc
import datetime as _dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB, ComputeOptions
from sbts.core.config.template import Template
from sbts.core.io.blocks import Block
from sbts.core.model.metadata import Metadata


# ------------------------------------------------------------------------- rasters
@runtime_checkable
class Raster(Protocol):
    """A 2-D band a reader can read window by window (what :class:`PairSource` layers hold).

    ``read`` may be called from several threads at once (``sbts load --num-worker N`` reads the
    pairs of a block in parallel threads): open a file handle per read, or guard a shared one.  On a
    dask cluster the raster is sent to the workers (cloudpickle) and read there: hold what
    describes the band (paths, band numbers, a transform), not an open file.

    Attributes
    ----------
    shape : tuple of int
        ``(rows, columns)`` of the band.
    dtype : numpy.dtype
        Type of the values :meth:`read` returns.
    """

    shape: tuple[int, int]
    dtype: np.dtype

    def read(self, block: Block | None = None) -> np.ndarray:
        """The pixels of ``block`` (the whole band for ``None``), with nodata already as NaN/0.

        Parameters
        ----------
        block : Block, optional
            The window to read; ``None`` reads the whole band.

        Returns
        -------
        numpy.ndarray
            2-D array of ``block.shape`` (or :attr:`shape`).
        """


@dataclass(frozen=True)
class ArrayRaster:
    """A raster held in memory (small files, toy formats, tests).

    Parameters
    ----------
    data : numpy.ndarray
        The band (2-D; for more dimensions the last two are rows and columns).
    """

    data: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)``: the last two dimensions of :attr:`data`."""
        return self.data.shape[-2:]

    @property
    def dtype(self) -> np.dtype:
        """The type of :attr:`data`."""
        return self.data.dtype

    def read(self, block: Block | None = None) -> np.ndarray:
        """The window ``block`` of :attr:`data` (all of it for ``None``)."""
        return self.data if block is None else self.data[block.slices]


# ------------------------------------------------------------------------- readers
@dataclass(frozen=True)
class PairSource:
    """One interferogram as a reader found it.

    Parameters
    ----------
    date1, date2 : datetime.date
        Reference (earlier) and secondary (later) acquisition dates.
    layers : Mapping[str, Raster]
        MintPy dataset name → band: ``unwrapPhase`` (radians; required), ``coherence``,
        ``connectComponent``, ``wrapPhase``, ``magnitude``.
    bperp : float, optional
        Perpendicular baseline in metres (``None`` when the files do not say).
    path : str
        The main file, for messages.
    inputs : Sequence[pathlib.Path]
        The files this pair's values are read from, where they are not the stack's own
        :attr:`StackSource.inputs`: a reader whose stack file lists many pairs (ariaTSsetup's stack
        VRTs) names here the per-pair files behind the pair's bands, so that update mode can tell
        an old pair unchanged when that listing was rewritten with new pairs (see
        :attr:`StackSource.listings`).
    """

    date1: _dt.date
    date2: _dt.date
    layers: Mapping[str, Raster]
    bperp: float | None = None
    path: str = ""  # main file, for messages
    inputs: Sequence[Path] = ()


@dataclass(frozen=True)
class StackSource:
    """Everything a reader found for the interferogram stack.

    Parameters
    ----------
    pairs : Sequence[PairSource]
        The interferograms (any order; the loader sorts them).
    metadata : Metadata
        The stack's grid and acquisition metadata (MintPy attributes).
    inputs : Sequence[pathlib.Path]
        Every file read, so update mode can tell when an input changed.
    listings : Sequence[pathlib.Path]
        Those of :attr:`inputs` that list the pairs (a stack VRT whose bands point to per-pair
        files).  A new acquisition rewrites such a file; the loader still appends the new pairs to
        the loaded stack when every old pair is described as before, its
        :attr:`PairSource.inputs` unchanged.  A reader that leaves this empty has any changed
        input reload every pair.
    """

    pairs: Sequence[PairSource]
    metadata: Metadata
    inputs: Sequence[Path] = ()  # files read, for update mode (mtime/size checks)
    listings: Sequence[Path] = ()


@dataclass(frozen=True)
class GeometrySource:
    """Geometry layers on one grid, as a reader found them.

    Parameters
    ----------
    layers : Mapping[str, Raster]
        MintPy dataset name → band (``height``, ``incidenceAngle``, ``azimuthAngle``,
        ``latitude``/``longitude`` or ``azimuthCoord``/``rangeCoord``, ``slantRangeDistance``,
        ``waterMask``, ``shadowMask``).
    metadata : Metadata
        The grid of the layers and the acquisition metadata.
    inputs : Sequence[pathlib.Path]
        Every file read (update mode).
    """

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

    Parameters
    ----------
    patterns : Mapping[str, str]
        MintPy key suffix (``unwFile``, ``demFile`` ...) → glob pattern, already absolute (resolved
        against the template's folder); keys the user did not set are absent.
    template : Template
        The whole template (a reader may read its own keys).
    base_dir : pathlib.Path
        The template's folder.
    metadata_overrides : Mapping[str, str]
        UPPER_CASE template keys that override metadata (``WAVELENGTH``, ``HEADING`` ...).
    """

    patterns: Mapping[str, str]
    template: Template
    base_dir: Path
    metadata_overrides: Mapping[str, str] = field(default_factory=dict)

    def pattern(self, key: str) -> str | None:
        """The pattern of ``mintpy.load.<key>`` (``None`` when unset).

        Parameters
        ----------
        key : str
            MintPy key suffix, e.g. ``"unwFile"``.

        Returns
        -------
        str or None
        """
        return self.patterns.get(key)

    def files(self, key: str) -> list[Path]:
        """Sorted files matching the pattern of ``mintpy.load.<key>``.

        Parameters
        ----------
        key : str
            MintPy key suffix, e.g. ``"unwFile"``.

        Returns
        -------
        list of pathlib.Path
            Empty when the key is unset or nothing matches.

        Raises
        ------
        InputError
            A match is a FIFO, a device or another special file (a reader would block on it).
        """
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


class Confidence(enum.IntEnum):
    """How sure a reader's :meth:`Reader.detect` is that the files are its format.

    With ``mintpy.load.processor = auto`` the loader asks every reader and takes the one with the
    highest confidence; two readers sure to the same highest degree are refused (the user sets
    ``mintpy.load.processor``).  So a reader says only what it sees in the files, never what
    other readers would say: a new format never edits another reader.
    """

    NO = 0
    """Not this format."""
    GENERIC = 1
    """The files could be this format, but what was checked is shared with other formats (a
    ``.tif`` extension, a raw binary next to parameter files)."""
    SPECIFIC = 2
    """A mark only this format carries (a header line, a sidecar kind, a dataset name)."""


class Reader(abc.ABC):
    """A processor format (GAMMA, ISCE, ...): finds and parses the files, never writes.

    Attributes
    ----------
    name : str
        What ``mintpy.load.processor`` selects (a short identifier).
    summary : str
        One line for ``sbts plugins``.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""

    @abc.abstractmethod
    def detect(self, request: LoadRequest) -> int:
        """How sure this reader is that the request's files are its format (cheap: names, a header).

        Parameters
        ----------
        request : LoadRequest
            The file patterns of the template.

        Returns
        -------
        int
            A :class:`Confidence`: 0 (no), 1 (generic) or 2 (specific).  ``False``/``True`` are
            taken as 0/1.
        """

    @abc.abstractmethod
    def open_stack(self, request: LoadRequest) -> StackSource | None:
        """The interferograms of the request.

        Parameters
        ----------
        request : LoadRequest
            The file patterns of the template.

        Returns
        -------
        StackSource or None
            ``None`` when the request holds no interferogram for this reader.
        """

    def open_geometry(self, request: LoadRequest) -> GeometrySource | Sequence[GeometrySource] | None:
        """The geometry layers of the request.

        Parameters
        ----------
        request : LoadRequest
            The file patterns of the template.

        Returns
        -------
        GeometrySource, sequence of GeometrySource, or None
            ``None`` when the request names no geometry.  Two sources when the processor gives
            geometry on two grids (GAMMA/ROI_PAC: DEM in radar coordinates and the lookup table on
            a geographic grid): they become ``geometryRadar.h5`` and ``geometryGeo.h5``.
        """
        return None


# ------------------------------------------------------------------------- corrections
@dataclass(frozen=True)
class CorrectionContext:
    """Inputs of one correction run.

    Parameters
    ----------
    input_file : pathlib.Path
        Time-series file (stage ``"timeseries"``) or ``ifgramStack.h5`` (stage ``"ifgram"``).
    output_file : pathlib.Path
        Where to write (stage ``"timeseries"``: MintPy's suffix chain, ``timeseries_<suffix>.h5``).
    work_dir : pathlib.Path
        The working directory (relative paths of template keys are taken from it).
    template : Template
        The run's template: the correction reads its own keys from it.
    geometry_file : pathlib.Path, optional
        ``geometryRadar.h5``/``geometryGeo.h5`` when there is one.
    max_memory : float
        Memory budget per block, in GB.
    num_worker : int
        Processes the correction may run its blocks on (``mintpy.compute.numWorker``): pass it with
        ``cluster`` to :func:`sbts.core.api.run_blocks`.
    cluster : str, optional
        ``"local"`` or a dask scheduler address (``mintpy.compute.cluster``); ``None``: this machine.
    options : Mapping[str, Any]
        The correction's own options (``sbts correct NAME -O KEY=VALUE``, strings from the command
        line), only keys the correction declares in :attr:`Correction.options`.
    """

    input_file: Path  # timeseries file (stage "timeseries") or ifgramStack.h5 (stage "ifgram")
    output_file: Path  # where to write (timeseries stage); MintPy's suffix chain
    work_dir: Path
    template: Template
    geometry_file: Path | None = None
    max_memory: float = DEFAULT_MAX_MEMORY_GB  # GB per block
    num_worker: int = 1
    cluster: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # command-line settings (kind=, seed= ...)
    # what :meth:`Correction.parse_options` returned for this run's template (``sbts run`` parses
    # every step's options once, at its start); ``None``: parse them from ``template``
    parsed_options: Any = None


@dataclass(frozen=True)
class CorrectionResult:
    """What a correction wrote.

    Parameters
    ----------
    output : pathlib.Path
        The corrected product (must exist).
    extra_outputs : Sequence[pathlib.Path]
        Side products (the estimated delay, ramp or DEM error ...).
    summary : str
        One line for the run's log.
    """

    output: Path
    extra_outputs: Sequence[Path] = ()
    summary: str = ""


class Correction(abc.ABC):
    """A correction step (deramp, DEM error, troposphere, ...).

    In ``sbts run`` a correction is a step of the plan, built once per run from the registry:

    - ``step`` is the workflow step it is (default ``correct_<name>``); several corrections may
      share one step (the troposphere methods): :meth:`enabled` picks at most one per run;
    - ``after`` is its slot: the step it runs after (MintPy's order for the built-ins:
      correct_LOD, correct_SET, correct_ionosphere, correct_troposphere, deramp, correct_topography
      after invert_network); a
      time-series correction reads the time series the chain holds at that point and writes
      ``<that name>_<suffix>.h5``, which the following steps then read;
    - :meth:`enabled` says whether the template switches it on; a correction without a switch
      of its own (``None``) joins only when named in ``sbts.run.extraCorrections``.

    Attributes
    ----------
    name : str
        What ``sbts correct NAME`` runs.
    summary : str
        One line for ``sbts plugins`` and ``sbts correct --help``.
    suffix : str
        Appended to the time-series file name: ``timeseries_<suffix>.h5``.
    stage : str
        ``"timeseries"`` (reads a time series, writes a corrected one) or ``"ifgram"`` (adds a
        dataset to the interferogram stack).
    keys : Mapping[str, str]
        Template keys it reads → one-line help (shown by ``sbts correct NAME --help``).
    options : Mapping[str, str]
        Its own options → one-line help: what ``-O KEY=VALUE`` may set (others are refused).
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    suffix: ClassVar[str] = ""  # appended to the time-series file name: timeseries_<suffix>.h5
    stage: ClassVar[str] = "timeseries"  # "timeseries" or "ifgram"
    keys: ClassVar[Mapping[str, str]] = {}  # template keys it reads → one-line help
    options: ClassVar[Mapping[str, str]] = {}  # -O KEY=VALUE it accepts → one-line help
    step: ClassVar[str] = ""  # the sbts run step it is; "" = correct_<name>
    after: ClassVar[str] = "correct_topography"  # the step it runs after in sbts run
    # named products it writes in the work directory besides its output, which later steps of
    # sbts run use: {"residual": "timeseriesResidual.h5"} feeds residual_RMS
    products: ClassVar[Mapping[str, str]] = {}

    @abc.abstractmethod
    def run(self, context: CorrectionContext) -> CorrectionResult:
        """Compute and write the corrected product.

        Parameters
        ----------
        context : CorrectionContext
            Input and output files, template, options.

        Returns
        -------
        CorrectionResult

        Raises
        ------
        SbtsError
            For unusable input (its subclasses :class:`InputError`, :class:`TemplateError`,
            :class:`DataError`): the message reaches the user as it is.
        """

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

    def reads(self, options: Any, work_dir: Path) -> Sequence[Path]:
        """The files this correction reads besides its input (the loaded geometry, a mask file its
        options name, the delay files of a folder outside ``work_dir``): ``sbts run`` runs it again
        when one of them changes, as when its input does.  ``options`` are those of
        :meth:`parse_options`.  A name that does not exist is fine (it counts as changed when it
        appears).  Default: the loaded geometry files, which most corrections read (angles,
        heights, positions)."""
        from sbts.core.io.workdir import WorkDir

        return WorkDir(Path(work_dir)).geometry_files()

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
    """What ``sbts export FORMAT FILE [DATASET] [-o OUT] [-O KEY=VALUE ...]`` asks for.

    Parameters
    ----------
    input_file : pathlib.Path
        The product to export.
    dataset : str, optional
        A dataset or date of it (``None``: the exporter's default).
    output : pathlib.Path, optional
        Output file or folder (``None``: beside the input).
    options : Mapping[str, Any]
        ``-O KEY=VALUE`` options (strings); check them with :func:`check_options`.
    compute : ComputeOptions, optional
        The run's memory budget and workers (``sbts run``'s, or ``sbts export --max-memory
        --num-worker --cluster``); ``None``: one process and the exporter's own default budget.  An
        exporter that reads a whole time series works block-wise under it (``-O max_memory`` wins).
    """

    input_file: Path
    dataset: str | None = None
    output: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    compute: ComputeOptions | None = None


class Exporter(abc.ABC):
    """An output format (GeoTIFF, KMZ, ...).

    Attributes
    ----------
    name : str
        What ``sbts export NAME`` runs.
    summary : str
        One line for ``sbts plugins`` and ``sbts export --help``.
    description : str
        What it writes and its ``-O`` options: shown by ``sbts export NAME --help``.
    requires_geocoded : bool
        Refuse radar-coordinate input (the runner says to geocode first).
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    description: ClassVar[str] = ""  # what it writes: shown by `sbts export NAME --help`
    requires_geocoded: ClassVar[bool] = False
    # as a step of `sbts run` (after geocode, in registry order): its step name ("" = not a step),
    # the template keys it reads and the products (fields of RunProducts) it exports from; the run
    # writes latitude/longitude copies of those first when the stack is not on latitude/longitude
    step: ClassVar[str] = ""
    keys: ClassVar[Mapping[str, str]] = {}
    uses: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def export(self, request: ExportRequest) -> list[Path]:
        """Write the files.

        Parameters
        ----------
        request : ExportRequest
            Input, dataset, output and options.

        Returns
        -------
        list of pathlib.Path
            The files written (each must exist).
        """

    def parse_options(self, template: Template) -> Any:
        """Its options as a step of ``sbts run``, parsed once at the start of the run (raise
        :class:`~sbts.core.errors.TemplateError` for a bad value).  Default: ``None``."""
        return None

    def enabled(self, options: Any) -> bool:
        """Whether the run's template (parsed: ``options``) switches this step on.  Default: off."""
        return False

    def run_request(self, products: RunProducts, options: Any) -> ExportRequest:
        """What to export as a step of ``sbts run``, from the run's ``products`` (on latitude/longitude
        when the exporter :attr:`requires_geocoded`).  Raise
        :class:`~sbts.core.errors.InputError` when a product it needs is missing.  Only exporters
        with a :attr:`step` are asked."""
        from sbts.core.errors import PluginError

        raise PluginError(f"exporter {self.name!r} declares the step {self.step!r} but no run_request")


@dataclass(frozen=True)
class RunProducts:
    """The products of ``sbts run`` an exporter step exports from (see :meth:`Exporter.run_request`).

    Parameters
    ----------
    work_dir : pathlib.Path
        The run's work directory.
    template_file : pathlib.Path
        The run's template as used, written to ``inputs/`` (keys such as UNAVCO's metadata).
    timeseries, velocity, temporal_coherence, mask, avg_spatial_coherence, geometry : pathlib.Path, optional
        The last time series of the correction chain, ``velocity.h5``, ``temporalCoherence.h5``,
        ``maskTempCoh.h5``, ``avgSpatialCoh.h5`` and the geometry file; their latitude/longitude
        copies (``geo/geo_*.h5``) when the stack is not on latitude/longitude and the exporter
        requires geocoded input; ``None`` for those the run does not have.
    """

    work_dir: Path
    template_file: Path
    timeseries: Path | None = None
    velocity: Path | None = None
    temporal_coherence: Path | None = None
    mask: Path | None = None
    avg_spatial_coherence: Path | None = None
    geometry: Path | None = None

    #: the product fields, the names an exporter lists in :attr:`Exporter.uses`
    PRODUCTS: ClassVar[tuple[str, ...]] = ("timeseries", "velocity", "temporal_coherence", "mask",
                                           "avg_spatial_coherence", "geometry")


def check_options(options: Mapping[str, Any], known: Iterable[str], what: str) -> dict[str, Any]:
    """The ``-O KEY=VALUE`` options of a plugin with lower-case keys, refusing undeclared ones.

    One rule for exporters and corrections: an option the plugin does not know is an error that
    lists those it does, so a misspelt option is never silently ignored.

    Parameters
    ----------
    options : Mapping[str, Any]
        As given (``ExportRequest.options``, ``CorrectionContext.options``).
    known : Iterable[str]
        The lower-case option names the plugin accepts.
    what : str
        The plugin, for the message (``"kmz export"``).

    Returns
    -------
    dict
        ``options`` with keys stripped and lower-cased.

    Raises
    ------
    InputError
        An option is not in ``known``.
    """
    from sbts.core.errors import InputError

    known = set(known)
    out = {str(k).strip().lower(): v for k, v in options.items()}
    unknown = sorted(set(out) - known)
    if unknown:
        raise InputError(f"{what}: unknown option(s) {', '.join(k[:40] for k in unknown)} "
                         f"(known: {', '.join(sorted(known)) or 'none'})")
    return out


KINDS: dict[str, type] = {"reader": Reader, "correction": Correction, "exporter": Exporter}
