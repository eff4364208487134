"""Temporal re-referencing: ``ts(t) − ts(t_ref)`` for every pixel, ``REF_DATE`` updated.

A displacement time series is relative to one acquisition; moving that reference to a quiet date
(the minimum-RMS date of ``sbts rms``) keeps that date's noise out of every other one.  Unlike
MintPy (in place), sbts never half-modifies a file: each file is rewritten block by block to a
partial file that atomically replaces the original only once complete — or written elsewhere with
``output``.  Datasets other than the time series (``date``, ``bperp``, extra maps) are copied as is.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.compute.scheduling import describe, memory_per_task, run_blocks
from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB, ComputeOptions
from sbts.core.config.options import FileOption
from sbts.core.errors import InputError, shown
from sbts.core.io.blocks import Block, pixel_bytes, plan_blocks_for
from sbts.core.io.h5 import open_h5
from sbts.core.io.products import TimeSeries, TimeSeriesWriter
from sbts.core.io.progress import progress
from sbts.core.io.safenames import read_text
from sbts.core.io.workdir import WorkDir
from sbts.core.model.dates import format_date, parse_date

logger = logging.getLogger(__name__)


def resolve_date(date: str | os.PathLike, work_dir: str | os.PathLike | None = None) -> str:
    """A date ``YYYYMMDD`` given directly or as a file holding it (e.g. ``reference_date.txt``)."""
    text = str(date).strip()
    path = Path(os.path.expanduser(text))
    if not path.is_absolute() and work_dir is not None and not path.exists():
        path = Path(work_dir) / path
    if path.exists() and not path.is_dir():  # read_text refuses a FIFO or a device by name
        for line in read_text(path, "reference-date file").splitlines():
            token = line.split("#", 1)[0].split()
            if token:
                return format_date(parse_date(token[0]))
        raise InputError(f"{path}: no date in the file")
    try:
        return format_date(parse_date(text))
    except InputError:
        raise InputError(f"reference date {shown(text)}: neither a date (YYYYMMDD) nor an existing file") from None


KEY = "mintpy.reference.date"


@dataclass(frozen=True)
class RefDateOptions:
    """``mintpy.reference.date``: a date, a file holding one (default ``reference_date.txt``, written by
    the residual_RMS step of the same run, so it is read when the step runs), or no."""

    date: FileOption = FileOption(KEY, "reference_date.txt")

    @classmethod
    def from_template(cls, template) -> RefDateOptions:
        option = FileOption.from_template(template, KEY)
        if option.value is not None and re.fullmatch(r"\d{8}", option.value.strip()):
            resolve_date(option.value.strip())  # a date given directly is checked now
        return cls(option)

    def resolve(self, work_dir: str | os.PathLike | None = None) -> str | None:
        """The date: ``None`` for no, or when the default file does not exist; a date file set
        explicitly must."""
        value = self.date.value
        if value is None:
            return None
        if not self.date.explicit and not re.fullmatch(r"\d{8}", value.strip()):
            path = self.date.path(work_dir) if work_dir is not None else Path(os.path.expanduser(value))
            if not path.exists():
                logger.info("%s not found: reference date unchanged (run `sbts rms` or set %s)", path, KEY)
                return None
        return resolve_date(value, work_dir)


def resolve_reference_date(template, work_dir: str | os.PathLike | None = None) -> str | None:
    """The date of ``mintpy.reference.date``: ``None`` for no, or when the default file
    ``reference_date.txt`` (written by ``sbts rms``) does not exist; a date file set explicitly must."""
    return RefDateOptions.from_template(template).resolve(work_dir)


def reference_date(files, date: str | os.PathLike, output: str | os.PathLike | None = None,
                   max_memory: float = DEFAULT_MAX_MEMORY_GB, work_dir: str | os.PathLike | None = None,
                   num_worker: int = 1, cluster: str | None = None) -> list[Path]:
    """Re-reference each time-series file of ``files`` to ``date``; returns the paths written.

    The blocks run here, in a pool of ``num_worker`` processes or on dask (``cluster``).

    ``output`` (one input only) writes there instead of replacing the input.  A file already
    referenced to ``date`` is left untouched (or just copied to ``output``).
    """
    paths = [Path(files)] if isinstance(files, (str, os.PathLike)) else [Path(f) for f in files]
    if not paths:
        raise InputError("no time-series file given to re-reference")
    if output is not None and len(paths) > 1:
        raise InputError(f"an output file name is valid for one input only ({len(paths)} given)")
    date = resolve_date(date, work_dir)
    series = [TimeSeries(p) for p in paths]
    for ts in series:  # check every file before changing any
        ts.date_index(date)
    written = []
    for ts in series:
        target = Path(output) if output is not None else ts.path
        written.append(_rereference(ts, date, target, max_memory, num_worker, cluster))
    return written


def _rereference(ts: TimeSeries, date: str, target: Path, max_memory: float, num_worker: int = 1,
                 cluster: str | None = None) -> Path:
    idx = ts.date_index(date)
    current = ts.metadata.reference.date
    same = current is not None and format_date(current) == date
    if same and target.resolve() == ts.path.resolve():
        logger.info("%s is already referenced to %s: unchanged", ts.path, date)
        return target
    n, shape = len(ts.dates), ts.shape
    meta = ts.metadata.with_reference(date=parse_date(date))
    # the block, its difference, and the next block read ahead
    blocks = plan_blocks_for(shape, pixel_bytes(n, 4, copies=4), memory_per_task(max_memory, num_worker, cluster),
                             ts.chunk_shape(ts.dataset_name))
    logger.info("re-referencing %s to %s (was %s) -> %s, %d block(s)%s", ts.path.name, date,
                format_date(current) if current else "unset", target, len(blocks), describe(num_worker, cluster))
    provenance = None  # a copy elsewhere is a new product; a file re-referenced in place keeps its history
    if target.resolve() == ts.path.resolve():
        from sbts.core.io.h5 import read_attrs
        from sbts.core.io.provenance import edited_file_attrs

        provenance = edited_file_attrs(read_attrs(ts.path), "refdate", date)
    with TimeSeriesWriter(target, meta, ts.date_strings, ts.bperp, dataset=ts.dataset_name,
                          unit=ts.metadata.unit or "m", provenance=provenance) as w:
        with open_h5(ts.path) as src:  # other datasets (extra maps, sensingMid ...) copied unchanged
            for name in src:
                if name not in ("date", "bperp", ts.dataset_name):
                    src.copy(src[name], w.file, name=name)
        results = run_blocks(blocks, ts.read_dates, functools.partial(_rereference_block, None if same else idx),
                             workers=num_worker, cluster=cluster)
        for block, data in progress(results, "reference date", "block", total=len(blocks)):
            w.write(ts.dataset_name, data, block)
    return target


def _rereference_block(idx: int | None, _block: Block, data: np.ndarray) -> np.ndarray:
    """``data − data[idx]`` (float32, in place: one layer copied, not the block), or ``data`` itself
    when ``idx`` is None (already referenced)."""
    if idx is None:
        return data.astype(np.float32, copy=False)
    if data.dtype != np.float32:  # subtracted in the stored precision, then rounded once
        return (data - data[idx][None]).astype(np.float32)
    data -= data[idx].copy()  # the block's own read: changed in place
    return data


def run(options: RefDateOptions, workdir: WorkDir, compute: ComputeOptions, files: list[Path]) -> list[Path]:
    """The reference_date step of ``sbts run``: every existing file of the time-series chain
    re-referenced to the date of the options (none for no)."""
    date = options.resolve(workdir.root)
    if date is None:
        logger.info("mintpy.reference.date = no: time series keep their first date as reference")
        return []
    return list(reference_date([p for p in files if p.exists()], date, max_memory=compute.max_memory,
                               num_worker=compute.num_worker, cluster=compute.cluster))


__all__ = ["run", "RefDateOptions", "reference_date", "resolve_date", "resolve_reference_date"]
