"""ROI_PAC reader: little-endian flat binaries with ``.rsc`` sidecars.

ROI_PAC stores unwrapped phase, correlation and radar heights as "rmg" files: two float32 bands
interleaved by line (BIL), band 1 amplitude/magnitude and band 2 the value (ROI_PAC file
descriptions).  DEMs (``.dem``) are single-band int16, connected components (``.byt``) bytes,
and the geocoding lookup (``geomap*.trans``) two float32 bands, range then azimuth.  Each raster's
``<file>.rsc`` gives its size, grid and radar parameters; pair baselines come from
``P_BASELINE_TOP_HDR``/``BOTTOM_HDR`` in the pair's rsc or its ``<d1>-<d2>_baseline.rsc``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.api import (
    BinaryRaster,
    Block,
    Confidence,
    GeometrySource,
    InputError,
    LoadRequest,
    Metadata,
    PairSource,
    Reader,
    StackSource,
    TransformedRaster,
    hookimpl,
)
from sbts.plugins.readers import _gamma_par as gp
from sbts.plugins.readers import _rsc
from sbts.plugins.readers._common import header_int, is_container, oriented_phase
from sbts.plugins.readers._gamma_products import _derive, angle_layer

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class Layout:
    """How a ROI_PAC file stores one band: sample type, band count, interleave, band to read."""

    dtype: str
    bands: int
    band: int
    interleave: str = "BIL"


# by extension; files of other types are told apart by their size per pixel
LAYOUTS = {
    ".unw": Layout("<f4", 2, 1), ".cor": Layout("<f4", 2, 1), ".hgt": Layout("<f4", 2, 1),
    ".dem": Layout("<i2", 1, 0), ".byt": Layout("u1", 1, 0), ".msk": Layout("u1", 1, 0),
}
BY_SIZE = {8: Layout("<f4", 2, 1), 4: Layout("<f4", 1, 0), 2: Layout("<i2", 1, 0), 1: Layout("u1", 1, 0)}


def layout_of(path: Path, shape: tuple[int, int]) -> Layout:
    ext = path.suffix.lower()
    if ext in LAYOUTS:
        return LAYOUTS[ext]
    per_pixel = os.path.getsize(path) / float(shape[0] * shape[1])
    if per_pixel in BY_SIZE:
        return BY_SIZE[int(per_pixel)]
    raise InputError(f"{path}: {os.path.getsize(path)} bytes is not 1, 2, 4 or 8 bytes per pixel of the "
                     f"{shape[1]}×{shape[0]} grid in its .rsc; the file is truncated or the .rsc is wrong")


def shape_of(raw: Mapping[str, str], path: Path) -> tuple[int, int]:
    """(FILE_LENGTH, WIDTH) of a raster's .rsc: positive integers, else an InputError naming the .rsc."""
    rsc = _rsc.rsc_path(path)
    length_key = "FILE_LENGTH" if "FILE_LENGTH" in raw else "LENGTH"
    return header_int(raw.get(length_key), rsc, length_key), header_int(raw.get("WIDTH"), rsc, "WIDTH")


def band_raster(path: Path, raw: Mapping[str, str], layout: Layout | None = None) -> BinaryRaster:
    shape = shape_of(raw, path)
    lay = layout or layout_of(path, shape)
    return BinaryRaster(path, shape, np.dtype(lay.dtype), band=lay.band, bands=lay.bands, interleave=lay.interleave,
                        geotransform=_geotransform(raw))


def _geotransform(raw: Mapping[str, str]) -> tuple[float, ...] | None:
    """GDAL geotransform of a geocoded file's own .rsc (the loader checks every pair is on one grid)."""
    try:
        x0, dx, y0, dy = (float(raw[k]) for k in ("X_FIRST", "X_STEP", "Y_FIRST", "Y_STEP"))
    except (KeyError, TypeError, ValueError):
        return None
    return (x0, dx, 0.0, y0, 0.0, dy)


def trans_interleave(path: Path, shape: tuple[int, int]) -> str:
    """BIL or BIP for a two-band ``.trans``: the range coordinate varies smoothly along a row, so
    the reading that gives the smoother first rows wins (BIL, ROI_PAC's rmg layout, on ties)."""
    rough = {}
    for il in ("BIL", "BIP"):
        r = BinaryRaster(path, shape, np.dtype("<f4"), band=0, bands=2, interleave=il)
        rows = np.asarray(r.read(Block(0, min(shape[0], 8), 0, shape[1])), np.float64)
        rows = rows[:, np.all(np.isfinite(rows), axis=0)]
        rough[il] = float(np.nanmean(np.abs(np.diff(np.diff(rows, axis=1), axis=1)))) if rows.shape[1] > 2 else 0.0
    choice = "BIP" if rough["BIP"] < rough["BIL"] else "BIL"
    logger.debug("%s: lookup read as %s (second differences %s)", path, choice, rough)
    return choice


def _pair_dates(path: Path, raw: Mapping[str, str]) -> tuple[_dt.date, _dt.date]:
    dates = gp.pair_dates(raw.get("DATE12", "")) or gp.pair_dates(path.name)
    if dates is None:
        raise InputError(f"{path}: no DATE12 in its .rsc and no pair of dates (YYMMDD-YYMMDD) in its name")
    return dates


def _baseline_files(request: LoadRequest, folders: list[Path]) -> dict:
    files = list(request.files("bperpFile"))
    for d in request.files("baselineDir"):
        files.extend(sorted(d.rglob("*baseline*.rsc")) if d.is_dir() else [d])
    for f in folders:
        files.extend(sorted(f.glob("*baseline*.rsc")))
    return gp.date_index(dict.fromkeys(files))


class RoipacReader(Reader):
    name = "roipac"
    summary = "ROI_PAC: little-endian two-band BIL .unw/.cor/.hgt with .rsc sidecars, geomap .trans lookup"

    def detect(self, request: LoadRequest) -> int:
        """Specific: a headerless raster with its ``.rsc``; generic: the ``.rsc`` says another
        processor wrote the raster (MintPy's ``prep_*`` scripts write ``.rsc`` files too)."""
        files = request.files("unwFile")
        if not files or not _rsc.rsc_path(files[0]).is_file() or is_container(files[0]):
            return Confidence.NO
        try:
            processor = _rsc.read_rsc(_rsc.rsc_path(files[0])).get("PROCESSOR", "roipac").strip().lower()
        except InputError:
            return Confidence.GENERIC
        return Confidence.SPECIFIC if processor in ("roipac", "roi_pac", "") else Confidence.GENERIC

    # ---------------------------------------------------------- stack
    def open_stack(self, request: LoadRequest) -> StackSource | None:
        files = request.files("unwFile")
        if not files:
            return None
        cor = gp.date_index(request.files("corFile"))
        cc = gp.date_index(request.files("connCompFile"))
        baselines = _baseline_files(request, list(dict.fromkeys(p.parent for p in files)))
        pairs, inputs = [], []
        first_raw = None
        for path in files:
            raw = _rsc.raster_rsc(path)
            first_raw = first_raw or raw
            d1, d2 = _pair_dates(path, raw)
            swapped = gp.name_is_swapped(raw.get("DATE12", "") or path.name)
            layers: dict[str, object] = {"unwrapPhase": oriented_phase(band_raster(path, raw, LAYOUTS[".unw"]),
                                                                       swapped)}
            inputs += [path, _rsc.rsc_path(path)]
            for key, name, index in (("corFile", "coherence", cor), ("connCompFile", "connectComponent", cc)):
                match = index.get((d1, d2), [])
                if match:
                    f = match[0]
                    f_raw = _rsc.raster_rsc(f) if _rsc.rsc_path(f).is_file() else raw
                    layers[name] = band_raster(f, f_raw)
                    inputs.append(f)
                elif request.pattern(key):
                    logger.warning("%s: no file of mintpy.load.%s matches dates %s_%s", path, key,
                                   d1.strftime("%Y%m%d"), d2.strftime("%Y%m%d"))
            bperp = _rsc.pair_bperp(raw)
            if bperp is None:
                for f in baselines.get((d1, d2), [])[:1]:
                    bperp = _rsc.pair_bperp(_rsc.read_rsc(f))
                    inputs.append(f)
            pairs.append(PairSource(d1, d2, layers, bperp, str(path)))
        if all(p.bperp is None for p in pairs):
            logger.warning("no P_BASELINE_TOP_HDR/BOTTOM_HDR in the .rsc or *_baseline.rsc files: bperp = 0")
        attrs = _rsc.mintpy_attrs(first_raw)
        attrs.update(FILE_TYPE="ifgramStack", PROCESSOR="roipac")
        return StackSource(pairs, Metadata.from_attrs(attrs, source=str(_rsc.rsc_path(files[0]))), tuple(inputs))

    # ---------------------------------------------------------- geometry
    def open_geometry(self, request: LoadRequest) -> list[GeometrySource] | None:
        stack_raw: dict[str, str] = {}
        unw = request.files("unwFile")
        if unw and _rsc.rsc_path(unw[0]).is_file():
            stack_raw = _rsc.mintpy_attrs(_rsc.read_rsc(_rsc.rsc_path(unw[0])))
        groups: dict[tuple, tuple[dict[str, str], dict[str, object], list[Path]]] = {}

        def put(raw: Mapping[str, str], path: Path, layers: Mapping[str, object]) -> None:
            attrs = _rsc.mintpy_attrs(dict(raw))
            key = "geo" if "Y_FIRST" in attrs else "radar"
            group = groups.setdefault(key, (attrs, {}, []))
            if shape_of(group[0], path) != shape_of(raw, path):
                logger.warning("%s: %s grid differs from the first %s geometry file's: ignored", path, key, key)
                return
            for name, layer in layers.items():
                group[1].setdefault(name, layer)
            group[2].extend([path, _rsc.rsc_path(path)])

        for path in request.files("demFile")[:1]:
            raw = _rsc.raster_rsc(path)
            put(raw, path, {"height": band_raster(path, raw)})
        for path in (request.files("lookupYFile") or request.files("lookupXFile"))[:1]:
            raw = _rsc.raster_rsc(path)
            shape = shape_of(raw, path)
            il = trans_interleave(path, shape)
            put(raw, path, {
                "rangeCoord": BinaryRaster(path, shape, np.dtype("<f4"), band=0, bands=2, interleave=il),
                "azimuthCoord": BinaryRaster(path, shape, np.dtype("<f4"), band=1, bands=2, interleave=il),
            })
        for key, name in (("incAngleFile", "incidenceAngle"), ("azAngleFile", "azimuthAngle")):
            for path in request.files(key)[:1]:
                raw = _rsc.raster_rsc(path)
                put(raw, path, {name: angle_layer(path, band_raster(path, raw), name)})
        for key, name in (("waterMaskFile", "waterMask"), ("shadowMaskFile", "shadowMask")):
            for path in request.files(key)[:1]:
                raw = _rsc.raster_rsc(path)
                put(raw, path, {name: TransformedRaster(band_raster(path, raw), lambda v: (v != 0).astype(np.float32))})
        if not groups:
            return None
        sources = []
        for kind, (attrs, layers, inputs) in groups.items():
            merged = {k: v for k, v in stack_raw.items() if k not in ("LENGTH", "WIDTH") and not k.endswith(("_FIRST", "_STEP"))}
            merged.update(attrs)
            merged.update(FILE_TYPE="geometry", PROCESSOR="roipac")
            shape = shape_of(merged, inputs[0])
            for name, layer in _derive(merged, shape, kind == "geo", layers).items():
                layers.setdefault(name, layer)
            sources.append(GeometrySource(layers, Metadata.from_attrs(merged, source=f"{inputs[1]}"), tuple(inputs)))
        return sources


@hookimpl
def sbts_readers():
    return [RoipacReader()]
