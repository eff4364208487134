"""Reading maps for the viewer without ever loading a cube: overviews, windows and single pixels.

A time series of 4000 × 4000 pixels and 300 dates is 19 GB; the viewer reads from it only

* an **overview** of the one date shown: every ``s``-th row and column (``s`` keeps the longer side
  within ``overview_pixels``), read row by row (each row's column span is contiguous on disk),
  kept in an LRU cache under a memory budget.  Zoomed-out tiles are cut from it;
* a **window** at the stride a zoomed-in tile needs (at most 256·s × 256·s pixels);
* a **pixel history** ``ds[:, y, x]``.

When a date of a time series is shown, the overviews of its neighbouring dates are built in a
background thread (:meth:`RasterStore.prefetch`), so stepping the date slider finds them ready.

Decimation is by sampling, not averaging, as ``sbts view`` does: a shown colour is the value of a
real pixel, the one a click reads.  Files are opened once and kept open; uncompressed datasets are
read through a handle without HDF5's chunk cache, so a pixel history or a strided row reads only the
bytes it needs (with the cache, HDF5 would read each 1 MiB chunk whole: 300 MiB for one history).
Compressed datasets use a handle with a chunk cache (a chunk must be decompressed whole anyway).
A file rewritten on disk (new modification time) is reopened and its overviews are recomputed.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from sbts.core.errors import InputError

logger = logging.getLogger(__name__)

OVERVIEW_PIXELS = 1024
CACHE_BYTES = 512 << 20
_CHUNK_CACHE_BYTES = 64 << 20
_BAND_ROWS = 64  # overview rows per h5py call (other requests interleave between calls)
PREFETCH_DATES = 2  # dates on each side of the one shown


@dataclass(frozen=True)
class Overview:
    """Every ``stride``-th pixel of one 2-D map (float32, NaN kept)."""

    stride: int
    data: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


def _filtered(ds: h5py.Dataset) -> bool:
    try:
        return ds.id.get_create_plist().get_nfilters() > 0
    except Exception:  # noqa: BLE001 - a virtual or external dataset: take the safe (cached) path
        return True


def read_window(ds: h5py.Dataset, index: int | None, r0: int, r1: int, c0: int, c1: int, stride: int) -> np.ndarray:
    """Rows ``r0:r1:stride`` × columns ``c0:c1:stride`` of a 2-D dataset or of layer ``index`` of a 3-D one.

    Each selected row is read over its whole column span (one contiguous run per chunk) and
    decimated in memory: far fewer I/O calls than a doubly-strided HDF5 selection.
    """
    rows = slice(r0, r1, stride)
    cols = slice(c0, c1)
    try:
        data = ds[rows, cols] if ds.ndim == 2 else ds[index, rows, cols]
    except OSError as exc:
        raise InputError(f"{ds.file.filename}: dataset {ds.name!r} cannot be read ({exc})") from None
    data = np.asarray(data)[:, ::stride]
    if data.dtype.kind == "b":
        data = data.astype(np.float32)
    return data.astype(np.float32, copy=False)


class RasterStore:
    """Open files, cached overviews, windowed and single-pixel reads (thread-safe)."""

    def __init__(self, overview_pixels: int = OVERVIEW_PIXELS, cache_bytes: int = CACHE_BYTES) -> None:
        self.overview_pixels = int(overview_pixels)
        self.cache_bytes = int(cache_bytes)
        self._lock = threading.RLock()
        self._files: dict[tuple[Path, bool], tuple[int, h5py.File]] = {}
        self._overviews: OrderedDict[tuple, Overview] = OrderedDict()
        self._bytes = 0
        self.stats = {"overview_reads": 0, "window_reads": 0, "pixel_reads": 0}
        self._pool = None
        self._queued: set[tuple] = set()

    # ------------------------------------------------------------------ files
    def _stamp(self, path: Path) -> int:
        try:
            st = os.stat(path)
        except OSError:
            raise InputError(f"{path}: file not found (was it removed while the viewer runs?)") from None
        return hash((st.st_ino, st.st_mtime_ns, st.st_size))  # sbts rewrites by renaming a new file over it

    def _handle(self, path: Path, cached: bool) -> h5py.File:
        stamp = self._stamp(path)
        with self._lock:
            found = self._files.get((path, cached))
            if found is not None and found[0] == stamp:
                return found[1]
            if found is not None:
                found[1].close()
            try:
                f = h5py.File(path, "r", rdcc_nbytes=_CHUNK_CACHE_BYTES if cached else 0,
                              rdcc_nslots=10007 if cached else 1)
            except OSError as exc:
                raise InputError(f"{path}: cannot be read as HDF5 ({exc})") from None
            self._files[(path, cached)] = (stamp, f)
            return f

    def dataset(self, path: Path, name: str) -> h5py.Dataset:
        """The dataset through the right handle (no chunk cache unless the data is compressed)."""
        f = self._handle(path, cached=False)
        if name not in f:
            raise InputError(f"{path}: no dataset {name!r}")
        ds = f[name]
        if _filtered(ds):
            ds = self._handle(path, cached=True)[name]
        return ds

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        with self._lock:
            for _, f in self._files.values():
                try:
                    f.close()
                except Exception:  # noqa: BLE001 - closing at shutdown
                    pass
            self._files.clear()
            self._overviews.clear()
            self._bytes = 0

    # ------------------------------------------------------------------ reads
    def overview_stride(self, shape: tuple[int, int]) -> int:
        return max(1, math.ceil(max(shape) / max(1, self.overview_pixels)))

    def overview(self, path: Path, name: str, index: int | None = None) -> Overview:
        """The decimated map (cached); the first call for a date reads 1/stride of its rows.

        Read in bands of rows, so a pixel history or a tile asked for meanwhile (e.g. while dates
        are prefetched) waits for one band, not for the whole map.
        """
        key = (path, self._stamp(path), name, index)
        with self._lock:
            found = self._overviews.get(key)
            if found is not None:
                self._overviews.move_to_end(key)
                return found
        ds = self.dataset(path, name)
        length, width = ds.shape[-2:]
        stride = self.overview_stride((length, width))
        band = stride * _BAND_ROWS
        parts = []
        for r0 in range(0, length, band):  # h5py serialises its own calls: no lock of ours around reads
            parts.append(read_window(ds, index, r0, min(length, r0 + band), 0, width, stride))
        ov = Overview(stride, np.concatenate(parts, axis=0))
        with self._lock:
            self.stats["overview_reads"] += 1
            if key not in self._overviews:
                self._overviews[key] = ov
                self._bytes += ov.nbytes
            while self._bytes > self.cache_bytes and len(self._overviews) > 1:
                _, old = self._overviews.popitem(last=False)
                self._bytes -= old.nbytes
        return ov

    def cached(self, path: Path, name: str, index: int | None) -> bool:
        with self._lock:
            return (path, self._stamp(path), name, index) in self._overviews

    def prefetch(self, path: Path, name: str, indices) -> None:
        """Build the overviews of ``indices`` in a background thread (the neighbours of the date shown,
        so moving the date slider finds them ready); requests already queued are not repeated."""
        todo = [k for k in indices if (path, name, k) not in self._queued and not self.cached(path, name, k)]
        if not todo:
            return
        with self._lock:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sbts-prefetch")
            for k in todo:
                self._queued.add((path, name, k))
                self._pool.submit(self._prefetch_one, path, name, k)

    def _prefetch_one(self, path: Path, name: str, index: int) -> None:
        try:
            self.overview(path, name, index)
            self.stats["prefetched"] = self.stats.get("prefetched", 0) + 1
        except Exception as exc:  # noqa: BLE001 - a prefetch failing only means the request will read it
            logger.debug("prefetch of %s:%s[%s] failed: %s", path.name, name, index, exc)
        finally:
            self._queued.discard((path, name, index))

    def sample(self, path: Path, name: str, index: int | None, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Values at the grid ``rows`` × ``cols`` (pixel indices; −1 or out of range = outside → NaN).

        Served from the overview when the requested spacing is at least its stride, else from a
        window read at the spacing's stride.
        """
        ds = self.dataset(path, name)
        length, width = ds.shape[-2:]
        rows = np.asarray(rows, np.int64)
        cols = np.asarray(cols, np.int64)
        ok_r = (rows >= 0) & (rows < length)
        ok_c = (cols >= 0) & (cols < width)
        out = np.full((rows.size, cols.size), np.nan, np.float32)
        if not ok_r.any() or not ok_c.any():
            return out
        rv, cv = rows[ok_r], cols[ok_c]
        spacing = min(_spacing(rv), _spacing(cv))
        ov_stride = self.overview_stride((length, width))
        if spacing >= ov_stride:
            ov = self.overview(path, name, index)
            ri = np.minimum(rv // ov.stride, ov.data.shape[0] - 1)
            ci = np.minimum(cv // ov.stride, ov.data.shape[1] - 1)
            block = ov.data[np.ix_(ri, ci)]
        else:
            stride = max(1, int(spacing))
            r0, r1, c0, c1 = int(rv.min()), int(rv.max()) + 1, int(cv.min()), int(cv.max()) + 1
            self.stats["window_reads"] += 1
            win = read_window(ds, index, r0, r1, c0, c1, stride)
            block = win[np.ix_((rv - r0) // stride, (cv - c0) // stride)]
        out[np.ix_(ok_r, ok_c)] = block
        return out

    def value(self, path: Path, name: str, index: int | None, y: int, x: int) -> float:
        ds = self.dataset(path, name)
        self.stats["pixel_reads"] += 1
        v = ds[y, x] if ds.ndim == 2 else ds[index, y, x]
        return float(v)

    def pixel(self, path: Path, name: str, y: int, x: int) -> np.ndarray:
        """All layers of a 3-D dataset at one pixel (float64): one small read per chunk it crosses."""
        ds = self.dataset(path, name)
        self.stats["pixel_reads"] += 1
        try:
            data = ds[:, y, x] if ds.ndim == 3 else ds[y, x]
        except OSError as exc:
            raise InputError(f"{path}: dataset {name!r} cannot be read ({exc})") from None
        return np.asarray(data, np.float64)


def _spacing(v: np.ndarray) -> float:
    """Mean distance between successive requested indices (1 for a single one)."""
    if v.size < 2:
        return 1.0
    return max(1.0, float(v.max() - v.min()) / (v.size - 1))


__all__ = ["RasterStore", "Overview", "read_window", "OVERVIEW_PIXELS", "PREFETCH_DATES"]
