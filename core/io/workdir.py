"""The work directory of a project, in MintPy's layout: the one place that finds its files.

::

    WORK_DIR/inputs/ifgramStack.h5          the interferogram stack (load_data)
    WORK_DIR/inputs/geometryRadar.h5        geometry on the radar grid (ISCE, GAMMA's DEM in radar ...)
    WORK_DIR/inputs/geometryGeo.h5          geometry on a geographic grid (geocoded stacks, GAMMA lookup)
    WORK_DIR/timeseries[_SUFFIX...].h5      the time series and its correction chain
    WORK_DIR/maskTempCoh.h5, waterMask.h5, maskConnComp.h5, avgSpatialCoh.h5 ...  masks and maps
    WORK_DIR/geo/geo_<name>.h5              geocoded copies

Every command and step looks for these files through this module, with ONE search order: the
folder of the file the caller starts from (a stack in ``inputs/`` finds its geometry beside it),
that folder's ``inputs/``, its ``geo/`` copies, then the work directory's ``inputs/`` and the work
directory itself, then the parent folder's ``inputs/`` and the parent (a product in ``geo/`` or a
stack in ``inputs/`` finds the work directory's files).  The first existing file, in folder order
then name order, that the caller accepts wins.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

STACK_FILE = "ifgramStack.h5"
GEOMETRY_RADAR = "geometryRadar.h5"
GEOMETRY_GEO = "geometryGeo.h5"
GEOMETRY_FILES = (GEOMETRY_RADAR, GEOMETRY_GEO)
TIMESERIES_FILE = "timeseries.h5"
TEMP_COHERENCE_FILE = "temporalCoherence.h5"
AVG_COHERENCE_FILE = "avgSpatialCoh.h5"
NUM_INV_FILE = "numInvIfgram.h5"
MASKS = {"tempCoh": "maskTempCoh.h5", "water": "waterMask.h5", "connComp": "maskConnComp.h5"}
GEO_FOLDER = "geo"
GEO_PREFIX = "geo_"


def search_folders(near: str | os.PathLike | None = None, work_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched, in order (see the module doc); duplicates removed."""
    folders: list[Path] = []
    if near is not None:
        here = Path(near).parent
        folders += [here, here / "inputs", here / GEO_FOLDER]
    if work_dir is not None:
        folders += [Path(work_dir) / "inputs", Path(work_dir)]
    if near is not None:
        folders += [Path(near).parent.parent / "inputs", Path(near).parent.parent]
    out: list[Path] = []
    seen: set[str] = set()
    for folder in folders:
        key = os.path.abspath(folder)
        if key not in seen:
            seen.add(key)
            out.append(folder)
    return out


def find_file(names: Iterable[str], near: str | os.PathLike | None = None, work_dir: str | os.PathLike | None = None,
              accept: Callable[[Path], bool] | None = None, exclude: str | os.PathLike | None = None) -> Path | None:
    """The first existing regular file of ``names`` in :func:`search_folders` that ``accept`` takes
    (default: any), ``exclude`` (a file that cannot be its own companion) left out."""
    names = tuple(names)
    for folder in search_folders(near, work_dir):
        for name in names:
            candidate = folder / name
            if not candidate.is_file():
                continue
            if exclude is not None and _same(candidate, Path(exclude)):
                continue
            if accept is None or accept(candidate):
                return candidate
    return None


def find_geometry(near: str | os.PathLike | None = None, work_dir: str | os.PathLike | None = None,
                  names: Sequence[str] = GEOMETRY_FILES, accept: Callable[[Path], bool] | None = None,
                  geocoded: bool | None = None) -> Path | None:
    """The geometry file of a stack or product at ``near`` (or of ``work_dir``).

    Parameters
    ----------
    near : str or os.PathLike, optional
        A stack or product: its folder, its ``inputs/`` and ``geo/`` are searched first.
    work_dir : str or os.PathLike, optional
        The work directory (its ``inputs/``, then itself).
    names : sequence of str
        File names to look for, in order (default ``geometryRadar.h5``, ``geometryGeo.h5``).
    accept : callable, optional
        Takes a candidate path, says whether it will do.
    geocoded : bool, optional
        True: look for the geometry on a geographic grid first (``geometryGeo.h5``, then a
        geocoded copy ``geo_geometryRadar.h5``), which products in ``geo/`` need.

    Returns
    -------
    pathlib.Path or None
        The first match, ``None`` when there is none.
    """
    if geocoded and tuple(names) == GEOMETRY_FILES:
        names = (GEOMETRY_GEO, GEO_PREFIX + GEOMETRY_RADAR, GEO_PREFIX + GEOMETRY_GEO)
    return find_file(names, near, work_dir, accept)


def find_companion(near: str | os.PathLike, name: str, work_dir: str | os.PathLike | None = None,
                   accept: Callable[[Path], bool] | None = None) -> Path | None:
    """A product beside ``near`` (a mask, a coherence map).

    ``geo_<name>`` is looked for first when ``near`` is a geocoded copy, so a geocoded series
    finds geocoded companions.

    Parameters
    ----------
    near : str or os.PathLike
        The product whose companion is wanted (never returned itself).
    name : str
        The companion's file name (``maskTempCoh.h5``).
    work_dir : str or os.PathLike, optional
        The work directory, searched after the product's folders.
    accept : callable, optional
        Takes a candidate path, says whether it will do.

    Returns
    -------
    pathlib.Path or None
    """
    names = [GEO_PREFIX + name, name] if Path(near).name.startswith(GEO_PREFIX) else [name]
    return find_file(names, near, work_dir, accept, exclude=near)


def chain_names(suffixes: Sequence[str]) -> list[str]:
    """``timeseries.h5``, ``timeseries_<s1>.h5``, ``timeseries_<s1>_<s2>.h5`` ... (MintPy's chain)."""
    names, stem = [TIMESERIES_FILE], "timeseries"
    for suffix in suffixes:
        stem += f"_{suffix}"
        names.append(f"{stem}.h5")
    return names


def latest_timeseries(work_dir: str | os.PathLike) -> Path:
    """The time series a command uses by default: the newest ``timeseries*.h5`` of the work dir
    (the end of MintPy's correction chain), residual files excluded."""
    from sbts.core.errors import InputError

    wd = Path(work_dir)
    candidates = [p for p in wd.glob("timeseries*.h5") if not p.name.startswith("timeseriesResidual")]
    if not candidates:
        raise InputError(f"{wd}: no timeseries*.h5 found; run `sbts invert` first or give the file with -i")
    return max(candidates, key=lambda p: (p.stat().st_mtime_ns, len(p.name)))


def resolve_path(value: str | os.PathLike, work_dir: str | os.PathLike) -> Path:
    """A file named in a template: ``~`` expanded, relative names taken in the work directory."""
    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else Path(work_dir) / path


@dataclass(frozen=True)
class WorkDir:
    """The files of one work directory (see the module doc)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def stack(self) -> Path:
        return self.inputs / STACK_FILE

    @property
    def geo(self) -> Path:
        return self.root / GEO_FOLDER

    def loaded(self) -> list[Path]:
        """The files load_data writes that exist: the stack and the geometry files."""
        return [p for p in (self.stack, *(self.inputs / n for n in GEOMETRY_FILES)) if p.exists()]

    def geometry_files(self) -> list[Path]:
        """Where load_data writes the geometry, both grids, whether or not they exist (inputs of the
        steps that read water/shadow masks, angles or positions)."""
        return [self.inputs / n for n in GEOMETRY_FILES]

    def geometry(self, names: Sequence[str] = GEOMETRY_FILES, accept: Callable[[Path], bool] | None = None,
                 geocoded: bool | None = None) -> Path | None:
        return find_geometry(self.stack, self.root, names, accept, geocoded)

    def geometry_for(self, geocoded: bool) -> Path:
        """The geometry file load_data writes for a stack on a geographic (or radar) grid."""
        return self.inputs / (GEOMETRY_GEO if geocoded else GEOMETRY_RADAR)

    def file(self, name: str) -> Path:
        return self.root / name

    def mask(self, kind: str) -> Path:
        """``tempCoh`` → maskTempCoh.h5, ``water`` → waterMask.h5, ``connComp`` → maskConnComp.h5."""
        return self.root / MASKS[kind]

    def resolve(self, value: str | os.PathLike) -> Path:
        return resolve_path(value, self.root)

    def chain(self, suffixes: Sequence[str]) -> list[Path]:
        """The time-series files of the correction chain with these suffixes, first to last."""
        return [self.root / n for n in chain_names(suffixes)]

    def geocoded(self, path: Path) -> Path:
        """Where the geocode step writes the copy of ``path``."""
        return self.geo / f"{GEO_PREFIX}{Path(path).name}"


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


__all__ = ["WorkDir", "find_file", "find_geometry", "find_companion", "search_folders", "chain_names",
           "latest_timeseries", "resolve_path", "STACK_FILE", "GEOMETRY_FILES", "GEOMETRY_RADAR", "GEOMETRY_GEO",
           "TIMESERIES_FILE", "MASKS", "AVG_COHERENCE_FILE", "TEMP_COHERENCE_FILE", "NUM_INV_FILE"]
