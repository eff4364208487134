"""Image-sized arrays that every task of a step reads, handed to the pool or dask by file, not by value.

A task of :func:`~sbts.core.compute.scheduling.run_blocks` is pickled with its arguments for every
item it runs in a pool worker or on dask: a land mask or a geometry layer given as an argument is
copied once per item (16 MB a layer at 4000 × 4000 px, for each of hundreds of pairs or dates).
:func:`task_arrays` writes them once as ``.npy`` files in a scratch folder beside the step's output
(on the work directory's storage, which dask workers share) and each task maps them; in one process
they are the arrays themselves.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["TaskArrays", "task_arrays"]


class TaskArrays:
    """Named arrays for tasks: the arrays (one process) or their ``.npy`` files (pool, dask).

    Parameters
    ----------
    arrays : dict of str to ndarray
        The arrays by name.
    folder : Path, optional
        Where to write them as ``<name>.npy``; then only their paths are pickled.
    """

    def __init__(self, arrays: dict[str, np.ndarray], folder: Path | None = None):
        self._arrays: dict[str, np.ndarray] | None = dict(arrays)
        self._paths: dict[str, str] = {}
        if folder is not None:
            for name, value in arrays.items():
                target = Path(folder) / f"{name}.npy"
                np.save(target, np.ascontiguousarray(value))
                self._paths[name] = str(target)
            self._arrays = None

    def __getitem__(self, name: str) -> np.ndarray:
        """The array ``name`` (read-only, mapped from its file when the arrays went to files)."""
        if self._arrays is not None:
            return self._arrays[name]
        return np.load(self._paths[name], mmap_mode="r")

    def __contains__(self, name: str) -> bool:
        return name in (self._paths if self._arrays is None else self._arrays)

    def __getstate__(self) -> dict:
        if self._arrays:  # none at all travel as well as paths
            raise RuntimeError("TaskArrays kept in memory go to no other process: make them with task_arrays(..., "
                               "apart=True)")
        return {"_arrays": None if self._paths else {}, "_paths": self._paths}


@contextlib.contextmanager
def task_arrays(arrays: dict[str, np.ndarray], near: Path, apart: bool) -> Iterator[TaskArrays]:
    """:class:`TaskArrays` of ``arrays``: in memory, or (``apart``: the tasks run in other processes)
    in a scratch folder beside ``near`` (hidden, named after it), removed when the block ends.

    Parameters
    ----------
    arrays : dict of str to ndarray
        The arrays the tasks read, by name.
    near : Path
        The step's output: the scratch folder goes into its folder (storage the dask workers share).
    apart : bool
        Whether the tasks run in other processes (``num_worker > 1`` or a cluster).

    Yields
    ------
    TaskArrays
    """
    if not apart:
        yield TaskArrays(arrays)
        return
    near = Path(near)
    near.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{near.stem}_task_arrays_", dir=near.parent) as folder:
        yield TaskArrays(arrays, Path(folder))
