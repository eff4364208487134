"""Raster access shared by the built-in readers: flat binary files and anything GDAL opens.

Nothing here imports GDAL at module level: ``sbts --help`` and format detection stay light.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sbts.core.errors import InputError
from sbts.core.io.blocks import Block


@dataclass(frozen=True)
class BinaryRaster:
    """One band of a flat binary raster (GAMMA, ROI_PAC, ISCE, ENVI), read through a memory map.

    Parameters
    ----------
    path : pathlib.Path
        The raster file.
    shape : tuple of int
        ``(lines, samples)`` from the format's header; checked to be positive integers.
    dtype : numpy.dtype
        Stored type, with its byte order (``">f4"`` for GAMMA, ``"<f4"`` for ROI_PAC).
    band, bands : int
        Which band (from 0) of how many stored in the file.
    interleave : str
        ``"BIL"`` (rows of each band in turn: ROI_PAC ``.unw``), ``"BIP"`` or ``"BSQ"``.
    offset : int
        Bytes before the first pixel (a header inside the file).
    nodata : float, optional
        Value that becomes NaN (float data only).
    geotransform : tuple of float, optional
        The GDAL geotransform from a per-file header (ROI_PAC ``geo_*.rsc``), for the loader's
        check that every interferogram lies on one grid.

    Raises
    ------
    InputError
        A size, band or offset from a header that the file cannot hold.
    """

    path: Path
    shape: tuple[int, int]
    dtype: np.dtype
    band: int = 0
    bands: int = 1
    interleave: str = "BSQ"
    offset: int = 0
    nodata: float | None = None
    geotransform: tuple[float, ...] | None = None  # from a per-file header (ROI_PAC geo_*.rsc), for the loader

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        # sizes come from headers: refuse what numpy would turn into OverflowError/IndexError later
        def count(v) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        if len(tuple(self.shape)) != 2 or not all(count(n) and n >= 1 for n in self.shape):
            raise InputError(f"{self.path}: size {tuple(self.shape)} (lines, samples) from its header is not "
                             "two positive integers; check WIDTH/LENGTH (samples/lines) in the header")
        if not count(self.bands) or self.bands < 1:
            raise InputError(f"{self.path}: {self.bands!r} bands in its header; a raster has at least 1")
        if not count(self.band) or not 0 <= self.band < self.bands:
            raise InputError(f"{self.path}: band {self.band!r} (0-based) requested but its header lists "
                             f"{self.bands} band(s)")
        if not count(self.offset) or self.offset < 0:
            raise InputError(f"{self.path}: header offset {self.offset!r} is not a byte count ≥ 0")
        if str(self.interleave).upper() not in ("BSQ", "BIL", "BIP"):
            raise InputError(f"{self.path}: interleave {self.interleave!r} is not BSQ, BIL or BIP")
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))
        object.__setattr__(self, "interleave", str(self.interleave).upper())
        length, width = self.shape
        expected = self.offset + length * width * self.bands * self.dtype.itemsize
        try:
            size = os.path.getsize(self.path)
        except OSError:
            raise InputError(f"{self.path}: file not found or unreadable") from None
        if size < expected:
            raise InputError(
                f"{self.path}: {size} bytes, but {length} lines × {width} samples × {self.bands} band(s) of "
                f"{self.dtype.itemsize}-byte {self.dtype.name} need {expected}; wrong width/length in the header, "
                "or a truncated file"
            )

    def _memmap(self) -> np.ndarray:
        length, width = self.shape
        layout = {
            "BSQ": (self.bands, length, width),
            "BIL": (length, self.bands, width),
            "BIP": (length, width, self.bands),
        }[self.interleave.upper()]
        return np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=layout)

    def read(self, block: Block | None = None) -> np.ndarray:
        """The pixels of ``block`` (the whole band for ``None``), ``nodata`` as NaN."""
        mm = self._memmap()
        rows, cols = (slice(None), slice(None)) if block is None else block.slices
        il = self.interleave.upper()
        if il == "BSQ":
            data = mm[self.band, rows, cols]
        elif il == "BIL":
            data = mm[rows, self.band, cols]
        else:
            data = mm[rows, cols, self.band]
        data = np.array(data, dtype=self.dtype.newbyteorder("="))
        del mm
        if self.nodata is not None and data.dtype.kind == "f":
            data[data == self.nodata] = np.nan
        return data


@dataclass(frozen=True)
class GdalRaster:
    """One band of any raster GDAL opens (GeoTIFF, VRT, netCDF subdataset, ENVI ...).

    GDAL is imported on the first read, never when the plugin is loaded.

    Parameters
    ----------
    path : str
        Anything ``gdal.Open`` takes (a file, ``NETCDF:"f.nc":band``, a VRT).
    band : int
        GDAL band number, from 1.
    nodata_to_nan : bool
        Turn the band's nodata value into NaN (float data).
    scale : float
        Factor applied on read (unit conversion).
    """

    path: str
    band: int = 1
    nodata_to_nan: bool = True
    scale: float = 1.0

    @property
    def _ds(self):
        from osgeo import gdal

        gdal.UseExceptions()
        try:
            ds = gdal.Open(str(self.path), gdal.GA_ReadOnly)
        except RuntimeError as exc:
            raise InputError(f"{self.path}: GDAL cannot open it ({exc})") from None
        if ds is None:
            raise InputError(f"{self.path}: GDAL cannot open it")
        return ds

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the band."""
        ds = self._ds
        return (ds.RasterYSize, ds.RasterXSize)

    @property
    def dtype(self) -> np.dtype:
        """The band's type, as numpy spells it."""
        from osgeo import gdal_array

        return np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(self._ds.GetRasterBand(self.band).DataType))

    @property
    def geotransform(self) -> tuple[float, ...] | None:
        """The file's own GDAL geotransform (``None`` without one): the loader checks that every
        interferogram of a geocoded stack lies on the same grid."""
        gt = tuple(float(v) for v in self._ds.GetGeoTransform(can_return_null=True) or ())
        return gt if len(gt) == 6 and gt != (0.0, 1.0, 0.0, 0.0, 0.0, 1.0) else None

    def read(self, block: Block | None = None) -> np.ndarray:
        """The pixels of ``block`` (the whole band for ``None``), nodata as NaN, times :attr:`scale`."""
        ds = self._ds
        band = ds.GetRasterBand(self.band)
        if block is None:
            data = band.ReadAsArray()
        else:
            data = band.ReadAsArray(block.col_start, block.row_start, block.shape[1], block.shape[0])
        if data is None:
            raise InputError(f"{self.path}: band {self.band} could not be read")
        nodata = band.GetNoDataValue()
        if self.nodata_to_nan and nodata is not None and data.dtype.kind == "f":
            data = data.astype(np.float32, copy=False)
            data[data == nodata] = np.nan
        if self.scale != 1.0:
            data = data * self.scale
        return data


@dataclass(frozen=True)
class TransformedRaster:
    """A raster with a per-pixel function applied on read (unit conversions, sign flips).

    Parameters
    ----------
    base : Raster
        The raster read.
    func : callable
        ``array -> array`` of the same shape, applied to every window read (result float32).
    """

    base: Any  # a Raster
    func: Callable[[np.ndarray], np.ndarray]

    @property
    def shape(self) -> tuple[int, int]:
        """The shape of :attr:`base`."""
        return self.base.shape

    @property
    def dtype(self) -> np.dtype:
        """float32."""
        return np.dtype(np.float32)

    @property
    def geotransform(self) -> tuple[float, ...] | None:
        """The geotransform of :attr:`base` (``None`` if it has none)."""
        return getattr(self.base, "geotransform", None)

    def read(self, block: Block | None = None) -> np.ndarray:
        """``func`` of the window ``block`` of :attr:`base`."""
        return self.func(self.base.read(block))
