"""Mask files: reading a map file as a boolean mask (True = use the pixel).

Steps (network, reference point, inversion) and plugins (unwrapping-error correction) take masks
from user-named files; they all read them here, with one rule for what counts as a mask.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from sbts.core.errors import InputError
from sbts.core.io.h5 import open_h5

logger = logging.getLogger(__name__)


def read_mask_file(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """Read a mask (True = use) from any sbts/MintPy map file.

    The dataset is ``mask`` or ``waterMask`` when present, else the first 2-D dataset; it must be
    boolean-like (bool, integers, or floats holding only 0/1/NaN) so that a velocity or coherence
    map is not silently used as a mask.  Non-zero finite values are True.

    Parameters
    ----------
    path : str or os.PathLike
        An HDF5 map file (``maskTempCoh.h5``, ``waterMask.h5``, a geometry file ...).
    shape : tuple of int
        ``(rows, columns)`` the mask must have: the grid of the data it masks.

    Returns
    -------
    numpy.ndarray
        Boolean array of ``shape``.

    Raises
    ------
    InputError
        No 2-D dataset, a shape other than ``shape``, or values that are not a mask.
    """
    path = Path(path)
    with open_h5(path) as f:
        names = [n for n, o in f.items() if getattr(o, "ndim", 0) == 2]
        name = next((n for n in ("mask", "waterMask") if n in names), names[0] if names else None)
        if name is None:
            raise InputError(f"{path}: no 2-D dataset to use as a mask")
        data = f[name][()]
    if data.shape != tuple(shape):
        raise InputError(f"{path}: mask {name!r} has shape {data.shape} but the stack is {tuple(shape)}")
    if data.dtype.kind == "f":
        finite = data[np.isfinite(data)]
        if finite.size and not np.all((finite == 0) | (finite == 1)):
            raise InputError(f"{path}: dataset {name!r} holds values other than 0/1; not a mask file")
    elif data.dtype.kind not in "biu":
        raise InputError(f"{path}: dataset {name!r} of type {data.dtype} is not a mask")
    with np.errstate(invalid="ignore"):
        return np.isfinite(data) & (data != 0) if data.dtype.kind == "f" else data != 0


def geometry_water_mask(stack_path: str | os.PathLike, work_dir: str | os.PathLike | None,
                        shape: tuple[int, int]) -> np.ndarray | None:
    """``waterMask`` (True = land) of the geometry file, if there is one with that dataset."""
    from sbts.core.io.workdir import find_geometry

    geom = find_geometry(stack_path, work_dir)
    if geom is None:
        return None
    with open_h5(geom) as f:
        if "waterMask" not in f:
            return None
        data = f["waterMask"][()]
    if data.shape != tuple(shape):
        logger.warning("%s: waterMask shape %s differs from the stack %s; not used", geom, data.shape, shape)
        return None
    return np.asarray(data != 0)
