"""``sbts diff``, ``sbts add``, ``sbts math``: arithmetic on sbts/MintPy files (MintPy diff.py, add.py, image_math.py).

``diff``: ``FILE1 − FILE2 [− FILE3 …]``; ``add``: ``FILE1 + FILE2 [+ …]``.  All files on one grid.

Time series (``FILE1`` a time series; the others time series or delay files such as
``inputs/ERA5.h5`` / ``SET.h5``)
    Dates are matched by name: each date of FILE1 takes the same date of the other file.  A date of
    FILE1 missing from another file is an error, unless ``force``: then it is left as FILE1 has it
    (as MintPy's ``--force``).  Before combining, each other file is brought to FILE1's reference,
    as MintPy does (so un-referenced delay files can be removed directly):

    - temporal: when its ``REF_DATE`` differs from FILE1's (or it has none) it becomes
      ``f − f[REF_DATE of FILE1]`` (that date must be in it);
    - spatial: when FILE1 has ``REF_Y/REF_X`` and the other file a different (or no) reference
      pixel, ``f − f[:, REF_Y, REF_X]`` per date.

    The output has FILE1's dates, ``bperp`` and attributes.

Interferogram stacks
    Pairs (``date1_date2``) matched by name; the phase dataset(s) of FILE1 found in the others
    (``unwrapPhase`` …) are combined, the others copied from FILE1; missing pairs as for dates.

Maps (velocity, masks, any single-map file)
    The 2-D datasets present in every file are combined; ``*Std`` datasets as independent errors,
    ``sqrt(σ1² + σ2² + …)`` for both diff and add.  ``velocity``, ``acceleration``, ``intercept`` and
    ``displacement`` are first re-referenced to FILE1's ``REF_Y/REF_X`` as for time series.
    Datasets not in every file are left out (logged).

``math``: ``FILE OP VALUE`` with OP one of ``+ - * / ^`` on every float dataset on the grid (every
date, every pair); ``*Std`` datasets follow the error propagation (× ``|v|`` for ``*``, ÷ ``|v|`` for
``/``, unchanged for ``+ -``; dropped for ``^``).  Index datasets and integer/boolean datasets are
copied unchanged.

Everything runs block by block under ``max_memory``; outputs are written under a temporary name and
renamed.  Default outputs: ``<stem1>_diff_<stem2>.h5``, ``<stem1>_plus_<stem2>.h5``,
``<stem>_<op><value>.h5`` (op: plus, minus, times, over, pow) beside FILE1.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.errors import InputError
from sbts.core.io.blocks import plan_blocks
from sbts.core.io.h5 import H5Writer, check_distinct, open_h5, read_metadata
from sbts.core.io.products import IfgramStack, Product, TimeSeries, TimeSeriesWriter
from sbts.core.io.progress import progress
from sbts.core.model.dates import format_date
from sbts.core.tools.windowing import Window, derived, rewrite_file

logger = logging.getLogger(__name__)

REFERENCED = ("velocity", "acceleration", "intercept", "displacement")
OPERATORS = {"+": "plus", "-": "minus", "*": "times", "/": "over", "^": "pow"}


# ---------------------------------------------------------------------------- diff / add
def diff_files(file1: str | os.PathLike, others: Sequence[str | os.PathLike], output: str | os.PathLike | None = None,
               force: bool = False, max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """``file1 − others[0] − others[1] …`` (see the module docstring); returns the output path."""
    return _combine(file1, others, -1.0, output, force, max_memory)


def add_files(files: Sequence[str | os.PathLike], output: str | os.PathLike | None = None, force: bool = False,
              max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """``files[0] + files[1] + …`` (see the module docstring); returns the output path."""
    if len(files) < 2:
        raise InputError("add needs at least two files")
    return _combine(files[0], files[1:], 1.0, output, force, max_memory)


def _combine(file1, others, sign: float, output, force: bool, max_memory: float) -> Path:
    if not others:
        raise InputError("give at least one file to subtract/add")
    first = Product.open(file1)
    rest = [Product.open(p) for p in others]
    for p in rest:
        if p.shape != first.shape:
            raise InputError(f"{p.path} is {p.shape[0]}×{p.shape[1]} but {first.path} is "
                             f"{first.shape[0]}×{first.shape[1]}: subset/multilook them onto one grid first")
    word = "diff" if sign < 0 else "plus"
    out = Path(output) if output is not None else first.path.with_name(
        f"{first.path.stem}_{word}_{'_'.join(p.path.stem for p in rest)}.h5")
    check_distinct(out, [first.path, *(p.path for p in rest)])
    if isinstance(first, TimeSeries):
        _combine_timeseries(first, rest, sign, out, force, max_memory)
    elif isinstance(first, IfgramStack):
        _combine_stacks(first, rest, sign, out, force, max_memory)
    else:
        _combine_maps(first, rest, sign, out, max_memory)
    logger.info("wrote %s = %s", out, f" {'-' if sign < 0 else '+'} ".join(p.path.name for p in [first, *rest]))
    return out


def _match(names1: Sequence[str], names2: Sequence[str], path2: Path, what: str, force: bool) -> np.ndarray:
    """Index in ``names2`` of each of ``names1`` (−1 where missing, allowed only with ``force``)."""
    where = {n: i for i, n in enumerate(names2)}
    index = np.array([where.get(n, -1) for n in names1], np.int64)
    missing = [n for n, i in zip(names1, index) if i < 0]
    if missing and not force:
        raise InputError(f"{path2}: {len(missing)} {what}(s) of the first file missing ({', '.join(missing[:3])}"
                         f"{' ...' if len(missing) > 3 else ''}); use --force to leave them uncorrected")
    if missing:
        logger.warning("%s: %d %s(s) missing, left as in the first file: %s", path2.name, len(missing), what,
                       ", ".join(missing[:5]))
    if (index < 0).all():
        raise InputError(f"{path2}: no {what} in common with the first file")
    return index


def _combine_timeseries(ts1: TimeSeries, rest: list[Product], sign: float, out: Path, force: bool,
                        max_memory: float) -> None:
    meta1 = ts1.metadata
    plans = []
    for p in rest:
        if not isinstance(p, TimeSeries):
            raise InputError(f"{p.path} is {p.metadata.file_type or 'not a time series'}: a time series can only be "
                             "combined with time series (or delay files with a date dataset)")
        index = _match(ts1.date_strings, p.date_strings, p.path, "date", force)
        ref_index = None
        ref_date = meta1.reference.date
        if ref_date is not None and p.metadata.reference.date != ref_date:
            if ref_date not in p.dates:
                raise InputError(f"{p.path}: lacks the reference date {format_date(ref_date)} of {ts1.path.name}, "
                                 "so it cannot be re-referenced to it")
            ref_index = p.dates.index(ref_date)
            logger.info("%s: re-referenced to date %s", p.path.name, format_date(ref_date))
        offsets = None
        r1, r2 = meta1.reference, p.metadata.reference
        if r1.has_point and (r2.y, r2.x) != (r1.y, r1.x):
            from sbts.core.io.blocks import Block

            offsets = p.read_dates(Block(r1.y, r1.y + 1, r1.x, r1.x + 1))[:, 0, 0].astype(np.float64)
            logger.info("%s: re-referenced to pixel (%d, %d)", p.path.name, r1.y, r1.x)
        plans.append((p, index, ref_index, offsets))
    n1 = len(ts1.dates)
    per_pixel = 8.0 * (2 * n1 + max(len(p.dates) for p in rest))
    blocks = plan_blocks(ts1.shape, per_pixel, max_memory, ts1.chunk_shape(ts1.dataset_name))
    with TimeSeriesWriter(out, derived(meta1), ts1.date_strings, ts1.bperp, dataset=ts1.dataset_name,
                          unit=meta1.unit or "m") as w:
        for block in progress(blocks, "combine", "block"):
            acc = ts1.read_dates(block).astype(np.float64)
            for p, index, ref_index, offsets in plans:
                have = index >= 0
                layers = p.read_dates(block, index=index[have]).astype(np.float64)
                if ref_index is not None:
                    layers -= p.read_dates(block, index=ref_index).astype(np.float64)[None]
                if offsets is not None:
                    shift = offsets[index[have]] - (offsets[ref_index] if ref_index is not None else 0.0)
                    layers -= shift[:, None, None]
                acc[have] += sign * layers
            w.write(ts1.dataset_name, acc.astype(np.float32), block)


def _combine_stacks(s1: IfgramStack, rest: list[Product], sign: float, out: Path, force: bool,
                    max_memory: float) -> None:
    names1 = s1.pairs.date12
    plans = []
    for p in rest:
        if not isinstance(p, IfgramStack):
            raise InputError(f"{p.path} is {p.metadata.file_type}: an interferogram stack combines only with stacks")
        plans.append((p, _match(names1, p.pairs.date12, p.path, "pair", force)))
    phases = [n for n in s1.datasets if n.startswith("unwrapPhase") and all(p.has(n) for p, _ in plans)]
    if not phases:
        raise InputError(f"{s1.path}: no unwrapPhase dataset shared with {rest[0].path}")
    m = len(names1)
    blocks = plan_blocks(s1.shape, 8.0 * 3 * m, max_memory)

    def apply(name: str, data: np.ndarray, block) -> np.ndarray:
        if name not in phases:
            return data
        acc = data.astype(np.float64)
        for p, index in plans:
            have = index >= 0
            acc[have] += sign * p.read(name, block, index=index[have]).astype(np.float64)
        return acc.astype(np.float32)

    _copy_with(s1.path, out, derived(s1.metadata), blocks, apply)


def _copy_with(src_path: Path, out: Path, meta, blocks, apply) -> None:
    """Copy every dataset of ``src_path``, the grid ones block by block through ``apply(name, data, block)``."""
    with open_h5(src_path) as src, H5Writer(out, meta) as w:
        grid = meta.grid.shape
        for name, ds in src.items():
            if not isinstance(ds, h5py.Dataset):
                continue
            attrs = {k: v for k, v in ds.attrs.items() if k != "MODIFICATION_TIME"}
            if ds.ndim < 2 or tuple(ds.shape[-2:]) != grid:
                w.create(name, data=ds[()], attrs=attrs)
                continue
            w.create(name, shape=ds.shape, dtype=ds.dtype, attrs=attrs)
            for block in blocks:
                w.write(name, apply(name, ds[(Ellipsis, block.rows, block.cols)], block).astype(ds.dtype), block)


def _combine_maps(first: Product, rest: list[Product], sign: float, out: Path, max_memory: float) -> None:
    shape = first.shape
    names = [n for n in first.datasets
             if len(first.dataset_shape(n)) == 2 and all(p.has(n) and len(p.dataset_shape(n)) == 2 for p in rest)]
    dropped = [n for n in first.datasets if n not in names and len(first.dataset_shape(n)) >= 2]
    if not names:
        raise InputError(f"{first.path}: no 2-D dataset shared with {rest[0].path} "
                         f"({', '.join(first.datasets)} vs {', '.join(rest[0].datasets)})")
    if dropped:
        logger.info("left out (not in every file): %s", ", ".join(dropped))
    r1 = first.metadata.reference
    offsets: dict[tuple[int, str], float] = {}
    if r1.has_point:
        from sbts.core.io.blocks import Block

        for k, p in enumerate(rest):
            r2 = p.metadata.reference
            if (r2.y, r2.x) == (r1.y, r1.x):
                continue
            for n in names:
                if n in REFERENCED:
                    offsets[(k, n)] = float(p.read(n, Block(r1.y, r1.y + 1, r1.x, r1.x + 1))[0, 0])
            logger.info("%s: re-referenced to pixel (%d, %d)", p.path.name, r1.y, r1.x)
    blocks = plan_blocks(shape, 8.0 * 3 * len(names), max_memory)
    with H5Writer(out, derived(first.metadata)) as w:
        for n in names:
            w.create(n, shape=shape, dtype=np.float32)
        for block in progress(blocks, "combine", "block"):
            for n in names:
                acc = first.read(n, block).astype(np.float64)
                std = n.endswith("Std")
                if std:
                    acc = acc ** 2
                for k, p in enumerate(rest):
                    data = p.read(n, block).astype(np.float64)
                    if std:
                        acc += data ** 2
                    else:
                        acc += sign * (data - offsets.get((k, n), 0.0))
                w.write(n, (np.sqrt(acc) if std else acc).astype(np.float32), block)


# ---------------------------------------------------------------------------- math
def image_math(path: str | os.PathLike, operator: str, value: float, output: str | os.PathLike | None = None,
               max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """``FILE OP VALUE`` on every float dataset (see the module docstring); returns the output path."""
    if operator not in OPERATORS:
        raise InputError(f"operator {operator!r}: choose one of {' '.join(OPERATORS)}")
    value = float(value)
    if operator == "/" and value == 0:
        raise InputError("division by zero: give a non-zero VALUE")
    path = Path(path)
    meta = read_metadata(path)
    out = Path(output) if output is not None else path.with_name(f"{path.stem}_{OPERATORS[operator]}{value:g}.h5")
    length, width = meta.grid.shape

    def apply(name: str, data: np.ndarray) -> np.ndarray:
        if not np.issubdtype(data.dtype, np.floating):
            return data
        x = data.astype(np.float64)
        if name.endswith("Std"):
            if operator in "+-":
                return data
            return (x * abs(value) if operator == "*" else x / abs(value)).astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            if operator == "+":
                y = x + value
            elif operator == "-":
                y = x - value
            elif operator == "*":
                y = x * value
            elif operator == "/":
                y = x / value
            else:
                y = np.power(x, value)
        return y.astype(np.float32)

    skip: list[str] = []
    if operator == "^":
        with open_h5(path) as f:
            skip = [n for n in f if n.endswith("Std")]
        if skip:
            logger.warning("%s: %s left out: propagating errors through ^ needs the data", path.name, ", ".join(skip))
    rewrite_file(path, out, Window(0, length, 0, width), meta, max_memory=max_memory, what="math", apply=apply,
                 skip=skip)
    logger.info("wrote %s = %s %s %g", out, path.name, operator, value)
    return out


__all__ = ["diff_files", "add_files", "image_math", "OPERATORS", "REFERENCED"]
