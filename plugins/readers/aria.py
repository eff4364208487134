"""ARIA reader: ARIA-tools ``ariaTSsetup.py`` VRT stacks, or ARIA GUNW netCDF products read directly.

**VRT stacks** (``stack/unwrapStack.vrt``, ``cohStack.vrt``, ``connCompStack.vrt``): one band per pair,
whose ``<Metadata domain=...>`` (``unwrappedPhase``, ``Coherence``, ``connectedComponents``) holds
``Dates``, ``Wavelength (m)``, ``UTCTime (HH:MM:SS.ss)``, ``perpendicularBaseline``, ``azimuthAngle``,
``startRange``, ``slantRangeSpacing``, ``orbitDirection``; geometry from ``incidenceAngle/*.vrt``,
``azimuthAngle/*.vrt``, the DEM and ``mask/watermask.msk`` (1 = valid land).

**GUNW products** (``*.nc``, HDF5-based netCDF4): ``/science/grids/data/{unwrappedPhase, coherence,
connectedComponents, latitude, longitude}`` and the 3-D metadata cubes
``/science/grids/imagingGeometry/{perpendicularBaseline, incidenceAngle, azimuthAngle}`` on
``(heightsMeta, latitudeMeta, longitudeMeta)``, interpolated to the data grid at the DEM height (the
``mintpy.load.demFile`` raster on the same grid) or at 0 m.  Products are cropped to their common
extent on the shared 3-arcsecond lattice.

Conventions: a GUNW pair is named ``<reference>_<secondary>`` with the *later* date first; sbts (as
MintPy) stores pairs earlier_later, so for such pairs the phase and the perpendicular baseline change
sign.  ARIA's ``azimuthAngle`` is measured from east, anticlockwise; MintPy's from north,
anticlockwise, so 90° is subtracted.  No-data (0 phase, −1 components) becomes 0.
ALOOKS/RLOOKS are the GUNW processing looks (7 azimuth × 19 range for Sentinel-1, as MintPy assumes);
template keys override them.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Block,
    Confidence,
    GdalRaster,
    GeoGrid,
    GeometrySource,
    Grid,
    InputError,
    LoadRequest,
    Metadata,
    PairSource,
    RadarInfo,
    Reader,
    StackSource,
    dates_in_name,
    hookimpl,
)
from sbts.plugins.readers._common import (
    S1_IW_PIXEL,
    S1_IW_RESOLUTION,
    MappedRaster,
    gdal_geometry_layers,
    header_float,
    header_int,
    independent_looks,
    land_mask,
    oriented_phase,
    override_float,
    pair_of,
    seconds_of_day,
    sorted_pair,
    wrap_degrees,
)

logger = logging.getLogger(__name__)

ARIA_ALOOKS, ARIA_RLOOKS = 7, 19  # GUNW standard product looks (Sentinel-1 IW), MintPy's assumption
S1_AZIMUTH_PIXEL = 14.1  # m, Sentinel-1 IW single-look azimuth spacing (approximate)
_STACK_DOMAINS = {"unwrapPhase": "unwrappedPhase", "coherence": "Coherence", "connectComponent": "connectedComponents"}
_GUNW = "/science/grids/data/unwrappedPhase"


def _aria_az_to_mintpy(a):
    return wrap_degrees(np.asarray(a, dtype=np.float64) - 90.0).astype(np.float32)


def _connc_nodata(a):
    a = np.asarray(a)
    return np.where(np.isnan(a) | (a < 0), 0, a).astype(np.int16) if a.dtype.kind == "f" else np.where(a < 0, 0, a)


def _head(path: Path, n: int = 65536) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


# =============================================================================== VRT stacks
@dataclass(frozen=True)
class VrtBand:
    index: int  # 1-based
    meta: dict
    sources: tuple[Path, ...] = ()  # the files its pixels come from (SourceFilename), resolved


def _source_files(elem: ET.Element, vrt: Path) -> list[Path]:
    """The files named by the ``SourceFilename`` elements under ``elem`` of the VRT ``vrt``."""
    out = []
    for src in elem.iter("SourceFilename"):
        name = (src.text or "").strip()
        if name:
            out.append(vrt.parent / name if src.get("relativeToVRT", "0") == "1" else Path(name))
    return out


def band_inputs(band: VrtBand) -> list[Path]:
    """The files behind a stack band: its source files and, for a source that is itself a VRT (the
    per-pair ``unwrappedPhase/<pair>.vrt`` of ariaTSsetup), the files that one reads.  Update mode
    stamps them per pair (:attr:`PairSource.inputs`)."""
    out = []
    for f in band.sources:
        out.append(f)
        if f.suffix.lower() == ".vrt":
            try:
                out += _source_files(ET.parse(f).getroot(), f)
            except (OSError, ET.ParseError):
                pass  # the stamp of the VRT itself stands for it
    return out


def read_stack_vrt(path: Path) -> tuple[tuple[int, int], GeoGrid | None, list[VrtBand]]:
    """Size, grid and per-band metadata of an ariaTSsetup stack VRT (parsed as XML, no GDAL)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise InputError(f"{path}: cannot parse the VRT ({exc})") from None
    shape = (header_int(root.get("rasterYSize"), path, "rasterYSize"),
             header_int(root.get("rasterXSize"), path, "rasterXSize"))
    geo = None
    gt = root.findtext("GeoTransform")
    if gt and gt.strip():
        items = gt.split(",")
        if len(items) != 6:
            raise InputError(f"{path}: GeoTransform {gt.strip()!r} does not hold 6 comma-separated numbers")
        v = [header_float(x, path, "GeoTransform") for x in items]
        srs = (root.findtext("SRS") or "").upper()
        geographic = not srs or "PROJCS" not in srs
        unit = "degrees" if geographic else "meters"
        geo = GeoGrid(v[0], v[3], v[1], v[5], unit, unit, 4326 if geographic else None)
    bands = []
    for b in root.findall("VRTRasterBand"):
        meta = {}
        for md in b.findall("Metadata"):
            for mdi in md.findall("MDI"):
                meta[mdi.get("key")] = (mdi.text or "").strip()
        bands.append(VrtBand(header_int(b.get("band"), path, "VRTRasterBand band"), meta,
                             tuple(_source_files(b, path))))
    return shape, geo, bands


def _band_pair(band: VrtBand, path: Path):
    dates = dates_in_name(band.meta.get("Dates", ""))
    if len(dates) < 2:
        raise InputError(f"{path}: band {band.index} has no 'Dates' metadata (YYYYMMDD_YYYYMMDD); "
                         "was the stack written by ariaTSsetup.py?")
    return dates[0], dates[1]


def _float(meta: dict, key: str):
    try:
        return float(meta[key])
    except (KeyError, ValueError):
        return None


def _radar_from(request: LoadRequest, wavelength, start_range, spacing, direction, utc, az_mean) -> RadarInfo:
    alooks = int(override_float(request, "ALOOKS") or ARIA_ALOOKS)
    rlooks = int(override_float(request, "RLOOKS") or ARIA_RLOOKS)
    wavelength = override_float(request, "WAVELENGTH") or wavelength
    if wavelength is None:
        raise InputError(f"{request.pattern('unwFile')}: no wavelength in the ARIA metadata "
                         "('Wavelength (m)' / /science/radarMetaData/wavelength); set WAVELENGTH in the template")
    heading = override_float(request, "HEADING")
    if heading is None and az_mean is not None:
        # right-looking: LOS azimuth (ground→satellite, from north anticlockwise) = 90° − heading
        heading = float(wrap_degrees(90.0 - az_mean))
    if heading is None and direction:
        heading = -12.0 if direction.upper().startswith("A") else -168.0
        logger.info("ARIA: no azimuth angle metadata; HEADING set to the Sentinel-1 nominal %.0f°", heading)
    return RadarInfo(
        wavelength=wavelength, alooks=alooks, rlooks=rlooks,
        range_pixel_size=None if spacing is None else spacing * rlooks,
        azimuth_pixel_size=override_float(request, "AZIMUTH_PIXEL_SIZE") or S1_AZIMUTH_PIXEL * alooks,
        starting_range=start_range, heading=heading,
        earth_radius=override_float(request, "EARTH_RADIUS"), height=override_float(request, "HEIGHT"),
        orbit_direction=direction.upper() if direction else None, antenna_side=-1,
        platform="sen", center_line_utc=utc,
        # as MintPy's prep_aria: the standard product's looks over the IW2 oversampling
        ncorrlooks=override_float(request, "NCORRLOOKS") or independent_looks(alooks, rlooks,
                                                                               S1_IW_RESOLUTION["IW2"], S1_IW_PIXEL),
    )


S1_HEIGHT = 693_000.0  # m, Sentinel-1 nominal altitude (MintPy's prep_aria value)


def _with_orbit_geometry(meta: Metadata) -> Metadata:
    """HEIGHT, EARTH_RADIUS and LAT/LON_REF1..4 that ARIA products do not carry (MintPy's dem_error.py
    and save_hdfeos5.py need them).  HEIGHT: Sentinel-1's nominal altitude (as prep_aria); EARTH_RADIUS:
    the WGS84 radius of curvature along the heading at the scene centre (prep_aria writes a constant);
    corners: the grid's, in MintPy's near/far order for the pass direction."""
    from sbts.plugins.readers._common import corner_refs
    from sbts.plugins.readers._orbit import radius_along_heading

    radar, geo = meta.radar, meta.grid.geo
    changes = {}
    if radar.height is None:
        changes["height"] = S1_HEIGHT
    if radar.earth_radius is None and geo is not None:
        lat = geo.y_first + meta.grid.length * geo.y_step / 2
        changes["earth_radius"] = radius_along_heading(lat, radar.heading if radar.heading is not None else 0.0)
    if changes:
        meta = meta.with_radar(**changes)
    extra = {k: v for k, v in corner_refs(geo, meta.grid.shape, radar.orbit_direction).items() if k not in meta.extra}
    return meta.with_extra(**extra) if extra else meta


def _with_slant_range(layers: dict, meta: Metadata) -> None:
    """slantRangeDistance from the incidence layer (the triangle Earth centre / platform / target).
    MintPy's prep_aria writes the constant STARTING_RANGE instead, which is the near edge of the full
    GUNW swath, not the range of these pixels."""
    from sbts.plugins.readers._common import slant_range_layer

    r = meta.radar
    if "incidenceAngle" in layers and r.earth_radius is not None and r.height is not None:
        layers["slantRangeDistance"] = slant_range_layer(layers["incidenceAngle"], r.earth_radius, r.height)


# =============================================================================== GUNW netCDF
@dataclass(frozen=True)
class H5Raster:
    """A 2-D window of an HDF5 dataset (fill value → NaN), rows optionally flipped to north-up."""

    path: Path
    dataset: str
    row0: int
    col0: int
    shape: tuple[int, int]
    flip_rows: bool = False
    total_rows: int = 0

    @property
    def dtype(self) -> np.dtype:
        import h5py

        with h5py.File(self.path, "r") as f:
            return f[self.dataset].dtype

    def read(self, block: Block | None = None) -> np.ndarray:
        import h5py

        block = block or Block(0, self.shape[0], 0, self.shape[1])
        r0, r1 = self.row0 + block.row_start, self.row0 + block.row_stop
        c0, c1 = self.col0 + block.col_start, self.col0 + block.col_stop
        with h5py.File(self.path, "r") as f:
            ds = f[self.dataset]
            if self.flip_rows:
                data = ds[self.total_rows - r1:self.total_rows - r0, c0:c1][::-1]
            else:
                data = ds[r0:r1, c0:c1]
            fill = ds.attrs.get("_FillValue")
        data = np.array(data)
        if fill is not None and data.dtype.kind == "f":
            data = data.astype(np.float32)
            data[data == np.asarray(fill).ravel()[0]] = np.nan
        return data


def _gunw_grid(path: Path):
    """(lat, lon) pixel-centre coordinates of a GUNW data grid."""
    import h5py

    with h5py.File(path, "r") as f:
        try:
            lat = f["/science/grids/data/latitude"][()].astype(np.float64)
            lon = f["/science/grids/data/longitude"][()].astype(np.float64)
        except KeyError:
            raise InputError(f"{path}: no /science/grids/data/latitude|longitude; not an ARIA GUNW product") from None
    return lat, lon


@dataclass(frozen=True)
class CubeRaster:
    """A GUNW metadata cube (heights × lat × lon) interpolated to a lat/lon grid at given heights."""

    path: Path
    dataset: str
    lat: np.ndarray  # output pixel-centre latitudes (rows)
    lon: np.ndarray  # output longitudes (cols)
    height: object = 0.0  # float, or a raster on the output grid
    func: object = None

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.lat), len(self.lon))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    def read(self, block: Block | None = None) -> np.ndarray:
        import h5py
        from scipy.interpolate import RegularGridInterpolator

        block = block or Block(0, self.shape[0], 0, self.shape[1])
        with h5py.File(self.path, "r") as f:
            g = f["/science/grids/imagingGeometry"]
            cube = g[self.dataset.rsplit("/", 1)[-1]][()].astype(np.float64)
            hs = g["heightsMeta"][()].astype(np.float64)
            la = g["latitudeMeta"][()].astype(np.float64)
            lo = g["longitudeMeta"][()].astype(np.float64)
        # axes must be ascending for the interpolator
        for axis, coord in ((0, hs), (1, la), (2, lo)):
            if coord.size > 1 and coord[1] < coord[0]:
                cube = np.flip(cube, axis)
        hs, la, lo = np.sort(hs), np.sort(la), np.sort(lo)
        interp = RegularGridInterpolator((hs, la, lo), cube, bounds_error=False, fill_value=None)
        yy, xx = np.meshgrid(self.lat[block.rows], self.lon[block.cols], indexing="ij")
        if isinstance(self.height, (int, float)):
            h = np.full(yy.shape, float(self.height))
        else:
            h = np.nan_to_num(np.asarray(self.height.read(block), dtype=np.float64))
        h = np.clip(h, hs[0], hs[-1])
        out = interp(np.stack([h, yy, xx], axis=-1))
        out = out.astype(np.float32)
        return out if self.func is None else np.asarray(self.func(out), dtype=np.float32)


def _h5_scalar(f, name: str):
    if name not in f:
        return None
    v = f[name][()]
    v = np.asarray(v).ravel()
    if v.size == 0:
        return None
    v = v[0]
    if isinstance(v, bytes):
        return v.decode()
    return v.item() if hasattr(v, "item") else v


def _find_dataset(f, leaf: str):
    found = []

    def visit(name, _obj):
        if name.rsplit("/", 1)[-1] == leaf and not found:
            found.append(name)

    f.visititems(visit)
    return found[0] if found else None


# =============================================================================== reader
class AriaReader(Reader):
    name = "aria"
    summary = "ARIA: ariaTSsetup.py VRT stacks (stack/*Stack.vrt) or ARIA GUNW netCDF products (*.nc)"

    def detect(self, request: LoadRequest) -> int:
        """Specific: an ARIA-tools stack VRT (its band metadata) or a GUNW product (its HDF5 group);
        generic: a ``.nc`` named ``*GUNW*`` whose content could not be checked."""
        files = request.files("unwFile")
        if not files:
            return Confidence.NO
        f = files[0]
        if f.suffix == ".vrt":
            head = _head(f)
            found = b"<VRTDataset" in head and (b"unwrappedPhase" in head or b'key="Dates"' in head)
            return Confidence.SPECIFIC if found else Confidence.NO
        if f.suffix == ".nc":
            if _head(f, 8).startswith(b"\x89HDF"):
                import h5py

                try:
                    with h5py.File(f, "r") as h:
                        if _GUNW in h:
                            return Confidence.SPECIFIC
                except OSError:
                    pass
            if "GUNW" in f.name:
                return Confidence.GENERIC
        return Confidence.NO

    def _is_gunw(self, request: LoadRequest) -> bool:
        files = request.files("unwFile")
        return bool(files) and files[0].suffix == ".nc"

    # ------------------------------------------------------------------ stack
    def open_stack(self, request: LoadRequest) -> StackSource | None:
        if not request.files("unwFile"):
            return None
        return self._gunw_stack(request) if self._is_gunw(request) else self._vrt_stack(request)

    def _vrt_stack(self, request: LoadRequest) -> StackSource:
        unw_path = request.files("unwFile")[0]
        shape, geo, bands = read_stack_vrt(unw_path)
        others = {}
        for name, key in (("coherence", "corFile"), ("connectComponent", "connCompFile")):
            if request.files(key):
                p = request.files(key)[0]
                oshape, _, obands = read_stack_vrt(p)
                if oshape != shape:
                    raise InputError(f"{p}: {oshape} pixels but {unw_path.name} has {shape}")
                others[name] = (p, {_band_pair(b, p): b for b in obands})
        pairs = []
        for band in bands:
            da, db = _band_pair(band, unw_path)
            d1, d2, swapped = sorted_pair(da, db)
            sign = -1.0 if swapped else 1.0
            layers = {"unwrapPhase": oriented_phase(GdalRaster(str(unw_path), band.index), swapped)}
            inputs = band_inputs(band)
            for name, (p, index) in others.items():
                other = index.get((da, db))
                if other is None:
                    logger.warning("%s: no band for pair %s_%s", p, da, db)
                    continue
                inputs += band_inputs(other)
                r = GdalRaster(str(p), other.index)
                layers[name] = MappedRaster(r, _connc_nodata, np.dtype(np.int16)) if name == "connectComponent" else r
            bperp = _float(band.meta, "perpendicularBaseline")
            pairs.append(PairSource(d1, d2, layers, None if bperp is None else sign * bperp,
                                    f"{unw_path}:band{band.index}", tuple(inputs)))
        m = bands[0].meta if bands else {}
        az = _float(m, "azimuthAngle")
        radar = _radar_from(request, _float(m, "Wavelength (m)"), _float(m, "startRange"),
                            _float(m, "slantRangeSpacing"), m.get("orbitDirection"),
                            seconds_of_day(m.get("UTCTime (HH:MM:SS.ss)", "")),
                            None if az is None else float(_aria_az_to_mintpy(az)))
        meta = Metadata(grid=Grid(shape[0], shape[1], geo), file_type="ifgramStack", processor="aria", radar=radar)
        meta = _with_orbit_geometry(meta)
        inputs = [unw_path] + [p for p, _ in others.values()]
        return StackSource(pairs, meta, tuple(inputs), listings=tuple(inputs))

    # GUNW -------------------------------------------------------------
    def _common_grid(self, files: list[Path]):
        """Crop offsets of each product to the common extent, and that extent's centre coordinates."""
        grids = [_gunw_grid(f) for f in files]
        lat0, lon0 = grids[0]
        dlat, dlon = abs(lat0[1] - lat0[0]), abs(lon0[1] - lon0[0])
        north = min(g[0].max() for g in grids)
        south = max(g[0].min() for g in grids)
        west = max(g[1].min() for g in grids)
        east = min(g[1].max() for g in grids)
        if north < south or east < west:
            raise InputError("the GUNW products of mintpy.load.unwFile do not overlap")
        nrow = int(round((north - south) / dlat)) + 1
        ncol = int(round((east - west) / dlon)) + 1
        crops = []
        for (lat, lon), f in zip(grids, files):
            flip = lat[1] > lat[0]
            top = lat.max()
            row0 = int(round((top - north) / dlat))
            col0 = int(round((west - lon.min()) / dlon)) if lon[1] > lon[0] else None
            if col0 is None:
                raise InputError(f"{f}: longitudes decrease along the rows; unsupported grid")
            crops.append((row0, col0, flip, len(lat)))
        lats = north - np.arange(nrow) * dlat
        lons = west + np.arange(ncol) * dlon
        # plain floats: numpy scalars would be written as 'np.float64(...)' attributes
        geo = GeoGrid(float(west - dlon / 2), float(north + dlat / 2), float(dlon), float(-dlat),
                      "degrees", "degrees", 4326)
        return crops, (nrow, ncol), geo, lats, lons

    def _gunw_stack(self, request: LoadRequest) -> StackSource:
        import h5py

        files = request.files("unwFile")
        crops, shape, geo, _lats, _lons = self._common_grid(files)
        pairs = []
        radar_src = {}
        for f, (row0, col0, flip, nrows) in zip(files, crops):
            p = pair_of(f, levels=1)
            if p is None:
                raise InputError(f"{f}: no YYYYMMDD_YYYYMMDD pair in the GUNW file name")
            d1, d2, swapped = sorted_pair(*p)

            def h5r(name):  # called in this iteration only
                return H5Raster(f, f"/science/grids/data/{name}", row0, col0, shape, flip, nrows)  # noqa: B023

            with h5py.File(f, "r") as h:
                if _GUNW not in h:
                    raise InputError(f"{f}: no {_GUNW}; not an ARIA GUNW product")
                names = set(h["/science/grids/data"].keys())
                bp = h.get("/science/grids/imagingGeometry/perpendicularBaseline")
                bperp = None
                if bp is not None:
                    v = np.asarray(bp[()], dtype=np.float64)
                    fill = bp.attrs.get("_FillValue")
                    if fill is not None:
                        v = v[v != np.asarray(fill).ravel()[0]]
                    bperp = float(np.nanmean(v)) if v.size else None
                if not radar_src:
                    rm = "/science/radarMetaData/"
                    mid = _find_dataset(h["/science/radarMetaData"], "azimuthZeroDopplerMidTime") \
                        if "/science/radarMetaData" in h else None
                    radar_src = dict(
                        wavelength=_h5_scalar(h, rm + "wavelength"),
                        start=_h5_scalar(h, rm + "slantRangeStart"),
                        spacing=_h5_scalar(h, rm + "slantRangeSpacing"),
                        utc=_h5_scalar(h["/science/radarMetaData"], mid) if mid else None,
                    )
            sign = -1.0 if swapped else 1.0
            layers = {"unwrapPhase": oriented_phase(h5r("unwrappedPhase"), swapped)}
            if "coherence" in names:
                layers["coherence"] = h5r("coherence")
            if "connectedComponents" in names:
                layers["connectComponent"] = MappedRaster(h5r("connectedComponents"), _connc_nodata, np.dtype(np.int16))
            pairs.append(PairSource(d1, d2, layers, None if bperp is None else sign * bperp, str(f)))
        parts = files[0].name.split("-")
        direction = {"A": "ASCENDING", "D": "DESCENDING"}.get(parts[2] if len(parts) > 2 else "", None)
        az = None
        try:
            az_r = self._cube(files[0], "azimuthAngle", request, _lats, _lons, shape, _aria_az_to_mintpy)
            az = float(np.nanmean(az_r.read(Block(shape[0] // 2, shape[0] // 2 + 1, 0, shape[1]))))
        except (KeyError, InputError):
            pass
        utc = radar_src.get("utc")
        radar = _radar_from(request, radar_src.get("wavelength"), radar_src.get("start"), radar_src.get("spacing"),
                            direction, seconds_of_day(str(utc)) if utc is not None else None, az)
        meta = Metadata(grid=Grid(shape[0], shape[1], geo), file_type="ifgramStack", processor="aria", radar=radar)
        meta = _with_orbit_geometry(meta)
        # S1-GUNW-<A|D>-R-<track>-tops-...: the HDF-EOS5 keys MintPy's save_hdfeos5.py needs
        if len(parts) > 5 and parts[4].isdigit():
            meta = meta.with_extra(relative_orbit=str(int(parts[4])))
            if parts[5].lower() == "tops":
                meta = meta.with_extra(beam_mode="IW")
        return StackSource(pairs, meta, tuple(files))

    def _cube(self, path, name, request, lats, lons, shape, func=None):
        import h5py

        with h5py.File(path, "r") as h:
            if f"/science/grids/imagingGeometry/{name}" not in h:
                raise InputError(f"{path}: no /science/grids/imagingGeometry/{name} cube")
        height: object = 0.0
        dem = request.files("demFile")
        if dem:
            r = GdalRaster(str(dem[0]))
            if tuple(r.shape) == tuple(shape):
                height = r
            else:
                logger.warning("%s is %s, not the %s GUNW grid: metadata cubes interpolated at 0 m", dem[0],
                               r.shape, shape)
        return CubeRaster(path, name, lats, lons, height, func)

    # ------------------------------------------------------------------ geometry
    def open_geometry(self, request: LoadRequest) -> GeometrySource | None:
        if self._is_gunw(request):
            return self._gunw_geometry(request)
        layers, inputs, grid = gdal_geometry_layers(request, (
            ("demFile", "height", None), ("incAngleFile", "incidenceAngle", None),
            ("azAngleFile", "azimuthAngle", _aria_az_to_mintpy), ("waterMaskFile", "waterMask", land_mask)))
        if not layers:
            return None
        stack = self._vrt_radar(request)
        meta = _with_orbit_geometry(Metadata(grid=grid, file_type="geometry", processor="aria", radar=stack))
        _with_slant_range(layers, meta)
        return GeometrySource(layers, meta, tuple(inputs))

    def _vrt_radar(self, request: LoadRequest) -> RadarInfo:
        files = request.files("unwFile")
        if not files:
            return RadarInfo()
        return self._vrt_stack(request).metadata.radar

    def _gunw_geometry(self, request: LoadRequest) -> GeometrySource:
        files = request.files("unwFile")
        _crops, shape, geo, lats, lons = self._common_grid(files)
        layers = {}
        for name, func in (("incidenceAngle", None), ("azimuthAngle", _aria_az_to_mintpy)):
            try:
                layers[name] = self._cube(files[0], name, request, lats, lons, shape, func)
            except InputError as exc:
                logger.warning("%s", exc)
        inputs = [files[0]]
        dem = request.files("demFile")
        if dem:
            r = GdalRaster(str(dem[0]))
            if tuple(r.shape) == tuple(shape):
                layers["height"] = r
                inputs.append(dem[0])
        if request.files("waterMaskFile"):
            f = request.files("waterMaskFile")[0]
            r = GdalRaster(str(f))
            if tuple(r.shape) == tuple(shape):
                layers["waterMask"] = MappedRaster(r, lambda a: np.nan_to_num(a) > 0, np.dtype(bool))
                inputs.append(f)
        radar = self._gunw_stack(request).metadata.radar
        meta = _with_orbit_geometry(Metadata(grid=Grid(shape[0], shape[1], geo), file_type="geometry",
                                             processor="aria", radar=radar))
        _with_slant_range(layers, meta)
        return GeometrySource(layers, meta, tuple(inputs))


@hookimpl
def sbts_readers():
    return [AriaReader()]
