"""Reader for stacks already in MintPy's HDF5 layout (from MintPy, sbts, or another tool).

``mintpy.load.unwFile`` names an ``ifgramStack.h5``; ``mintpy.load.demFile`` (or any geometry key)
may name a ``geometryRadar.h5``/``geometryGeo.h5``.  Loading copies them block by block into the
work directory's ``inputs/``, applying subset and multilook like any other format.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from sbts.core.api import (
    GEOMETRY_DATASETS,
    STACK_DATASETS,
    Block,
    Confidence,
    Geometry,
    GeometrySource,
    IfgramStack,
    InputError,
    LoadRequest,
    PairSource,
    Reader,
    StackSource,
    direct,
    hookimpl,
    open_h5,
)


@functools.lru_cache(maxsize=64)
def _dataset_meta(path: str, dataset: str, _mtime_ns: int, _size: int) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a dataset, opened once per file version (a stack of 230 pairs has 1380
    layers to check: 0.5 s when each opened the file)."""
    with open_h5(path) as f:
        ds = f[dataset]
        return ds.shape, ds.dtype


@dataclass(frozen=True)
class H5Raster:
    """One 2-D layer of an HDF5 dataset (``index`` selects the layer of a 3-D dataset)."""

    path: str
    dataset: str
    index: int | None = None

    @property
    def _meta(self) -> tuple[tuple[int, ...], np.dtype]:
        st = os.stat(self.path)  # the file's version: a rewritten file is opened again
        return _dataset_meta(self.path, self.dataset, st.st_mtime_ns, st.st_size)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self._meta[0][-2:])

    @property
    def dtype(self) -> np.dtype:
        return self._meta[1]

    def read(self, block: Block | None = None) -> np.ndarray:
        rows, cols = (slice(None), slice(None)) if block is None else block.slices
        with open_h5(self.path) as f:
            ds = direct(f, self.dataset)  # no chunk cache between the file and the block
            return ds[self.index, rows, cols] if self.index is not None else ds[rows, cols]


def _file_type(path: Path) -> str:
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("FILE_TYPE", "")
    except OSError:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


class MintpyH5Reader(Reader):
    name = "mintpy"
    summary = "Stacks in MintPy's HDF5 layout (ifgramStack.h5 + geometry*.h5) from MintPy or sbts."

    def detect(self, request: LoadRequest) -> int:
        """Specific: one ``.h5`` whose ``FILE_TYPE`` attribute is ``ifgramStack``."""
        files = request.files("unwFile")
        found = len(files) == 1 and files[0].suffix == ".h5" and _file_type(files[0]) == "ifgramStack"
        return Confidence.SPECIFIC if found else Confidence.NO

    def open_stack(self, request: LoadRequest) -> StackSource | None:
        files = request.files("unwFile")
        if not files:
            return None
        if len(files) != 1 or _file_type(files[0]) != "ifgramStack":
            raise InputError(f"mintpy.load.unwFile = {request.pattern('unwFile')!r} must name one ifgramStack.h5 "
                             "for the mintpy reader")
        stack = IfgramStack(files[0])
        names = [n for n in STACK_DATASETS if stack.has(n)]
        if "unwrapPhase" not in names:
            raise InputError(f"{files[0]}: no unwrapPhase dataset")
        pairs = []
        for k, (d1, d2) in enumerate(zip(stack.pairs.date1, stack.pairs.date2)):
            layers = {n: H5Raster(str(files[0]), n, k) for n in names}
            pairs.append(PairSource(d1, d2, layers, float(stack.pairs.bperp[k]), f"{files[0]}[{k}]"))
        meta = stack.metadata.replace(reference=stack.metadata.reference.__class__())
        return StackSource(pairs, meta, inputs=[files[0]])

    def open_geometry(self, request: LoadRequest) -> GeometrySource | None:
        candidates = []
        for key in ("demFile", "lookupYFile", "lookupXFile", "incAngleFile"):
            candidates += [p for p in request.files(key) if p.suffix == ".h5"]
        if not candidates:
            # geometry beside the stack, as MintPy writes it
            for stack_file in request.files("unwFile"):
                for name in ("geometryRadar.h5", "geometryGeo.h5"):
                    if (stack_file.parent / name).exists():
                        candidates.append(stack_file.parent / name)
        if not candidates:
            return None
        path = candidates[0]
        geom = Geometry(path)
        layers = {n: H5Raster(str(path), n) for n in GEOMETRY_DATASETS
                  if geom.has(n) and len(geom.dataset_shape(n)) == 2}
        return GeometrySource(layers, geom.metadata, inputs=[path])


@hookimpl
def sbts_readers():
    return [MintpyH5Reader()]
