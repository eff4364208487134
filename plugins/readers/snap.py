"""SNAP reader: BEAM-DIMAP products (``<name>.dim`` XML + ``<name>.data/*.img`` ENVI bands).

Each interferogram is a terrain-corrected (geocoded) product; its ``.data/`` folder holds ENVI bands
(``Unw_Phase_ifg_<ddMonYYYY>_<ddMonYYYY>_<pol>.img``, ``coh_<swath>_<pol>_<d1>_<d2>.img``), usually
big-endian (``byte order = 1``), read here through a memory map with the header's layout and
``map info`` tie point (1-based pixel, upper-left corner).  Radar metadata come from the ``.dim``'s
``Abstracted_Metadata`` (``radar_frequency`` in MHz, ``first/last_line_time``, ``range/azimuth_spacing``,
``PASS``, ``azimuth/range_looks``, ``incidence_near/far``, ``slant_range_to_first_pixel``,
``pulse_repetition_frequency``, ``centre_heading``, orbit state vectors for HEIGHT/EARTH_RADIUS) and the
pair baseline from its ``Baselines`` element (``Master: d1`` / ``Slave: d2`` / ``Perp Baseline``).
Without a ``.dim`` (bare ``.img``/``.hdr``) the layers load and WAVELENGTH etc. must be template keys.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import math
import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

from sbts.core.api import (
    BinaryRaster,
    Confidence,
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
    standard_platform,
)
from sbts.plugins.readers._common import (
    SPEED_OF_LIGHT,
    earth_radius_at,
    envi_geogrid,
    envi_layout,
    header_float,
    header_int,
    oriented_phase,
    override_float,
    read_envi_header,
    seconds_of_day,
    slant_range_from_incidence,
    slant_range_layer,
    sorted_pair,
    wrap_degrees,
)

logger = logging.getLogger(__name__)

_SNAP_DATE = re.compile(r"(\d{2})([A-Za-z]{3})(\d{4})")


def snap_dates(name: str) -> list[_dt.date]:
    """Dates written SNAP's way (``17Mar2017``), else YYYYMMDD."""
    out = []
    for d, mon, y in _SNAP_DATE.findall(name):
        try:
            out.append(_dt.datetime.strptime(f"{d}{mon.title()}{y}", "%d%b%Y").date())
        except ValueError:
            continue
    return out or dates_in_name(name)


def header_of(img: Path) -> Path:
    return img.with_suffix(".hdr")


def dim_of(img: Path) -> Path | None:
    """``<name>.dim`` beside the ``<name>.data`` folder holding ``img``."""
    parent = img.parent
    if parent.suffix == ".data":
        dim = parent.with_suffix(".dim")
        if dim.exists():
            return dim
    return None


def envi_raster(img: Path) -> tuple[BinaryRaster, dict]:
    hdr_path = header_of(img)
    if not hdr_path.exists():
        raise InputError(f"{img}: its ENVI header {hdr_path.name} is missing (SNAP writes one per band)")
    hdr = read_envi_header(hdr_path)
    lay = envi_layout(hdr, hdr_path)
    raster = BinaryRaster(img, lay["shape"], lay["dtype"], band=0, bands=lay["bands"],
                          interleave=lay["interleave"], offset=lay["offset"])
    return raster, hdr


# ---------------------------------------------------------------------------- .dim
@lru_cache(maxsize=16)
def read_dim(path: Path) -> dict:
    """Abstracted_Metadata attributes (name → text), orbit vectors and baselines of a ``.dim``."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise InputError(f"{path}: cannot parse the BEAM-DIMAP XML ({exc})") from None
    abstracted = next((e for e in root.iter("MDElem") if e.get("name") == "Abstracted_Metadata"), None)
    if abstracted is None:
        raise InputError(f"{path}: no Abstracted_Metadata element; not a SNAP product .dim")
    attrs = {a.get("name"): (a.text or "").strip() for a in abstracted.findall("MDATTR")}
    orbit = []
    osv = next((e for e in abstracted.findall("MDElem") if e.get("name") == "Orbit_State_Vectors"), None)
    if osv is not None:
        for vec in osv.findall("MDElem"):
            v = {a.get("name"): (a.text or "").strip() for a in vec.findall("MDATTR")}
            try:
                orbit.append(tuple(float(v[k]) for k in ("x_pos", "y_pos", "z_pos")))
            except (KeyError, ValueError):
                continue
    baselines = {}
    base = next((e for e in abstracted.findall("MDElem") if e.get("name") == "Baselines"), None)
    if base is not None:
        for ref in base.findall("MDElem"):
            rd = snap_dates(ref.get("name", ""))
            for sec in ref.findall("MDElem"):
                sd = snap_dates(sec.get("name", ""))
                perp = next((a.text for a in sec.findall("MDATTR") if a.get("name") == "Perp Baseline"), None)
                if rd and sd and perp is not None:
                    baselines.setdefault((rd[0], sd[0]), header_float(perp, path, f"Perp Baseline ({sec.get('name')})"))
    tr = root.findtext("Geoposition/IMAGE_TO_MODEL_TRANSFORM")
    band_tr = {(b.findtext("BAND_NAME") or "").strip(): b.findtext("IMAGE_TO_MODEL_TRANSFORM")
               for b in root.iter("Spectral_Band_Info") if b.findtext("IMAGE_TO_MODEL_TRANSFORM")}
    return {"path": path, "attrs": attrs, "orbit": orbit, "baselines": baselines, "transform": tr,
            "band_transforms": band_tr,
            "ncols": root.findtext("Raster_Dimensions/NCOLS"), "nrows": root.findtext("Raster_Dimensions/NROWS")}


def dim_geogrid(dim: dict, band: str | None = None):
    """The grid of a band from the ``.dim``: its Spectral_Band_Info IMAGE_TO_MODEL_TRANSFORM, else the
    product's Geoposition one (Java AffineTransform order: scaleX, shearY, shearX, scaleY, x0, y0, the
    upper-left corner of the first pixel).  None when the .dim has no transform or a rotated one."""
    from sbts.core.api import GeoGrid

    text = dim.get("band_transforms", {}).get(band or "") or dim.get("transform")
    if not text:
        return None
    try:
        sx, shy, shx, sy, x0, y0 = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{dim['path']}: IMAGE_TO_MODEL_TRANSFORM {text!r} is not six numbers") from None
    if shy or shx:
        raise InputError(f"{dim['path']}: IMAGE_TO_MODEL_TRANSFORM {text!r} is rotated; sbts reads north-up grids")
    return GeoGrid(x0, y0, sx, sy, "degrees", "degrees", 4326)


def grid_of_band(img: Path, shape: tuple[int, int], hdr: dict) -> Grid:
    """The band's grid: the ``.dim`` transform when the product has a ``.dim``, else the ENVI map info.

    SNAP recomputes the ENVI header's ``map info`` from the map boundary (snap-engine
    ``ImageGeometry``): its tie point and pixel size are not the product grid (half a pixel and a
    slightly wrong pixel size, tens of metres at the far edge of a full frame); MintPy's prep_snap
    ignores it for the same reason.
    """
    dim = dim_of(img)
    geo = dim_geogrid(read_dim(dim), img.stem) if dim is not None else None
    if geo is None:
        geo = envi_geogrid(hdr)
    return Grid(shape[0], shape[1], geo)


def dim_corners(dim: dict) -> dict[str, str]:
    """LAT_REF1..4 / LON_REF1..4 from the .dim's first/last line near/far corners (MintPy's names)."""
    a, out = dim["attrs"], {}
    for k, corner in enumerate(("first_near", "first_far", "last_near", "last_far"), 1):
        for key, suffix in (("LAT_REF", "lat"), ("LON_REF", "long")):
            value = a.get(f"{corner}_{suffix}")
            if value not in (None, ""):
                out[f"{key}{k}"] = value
    return out


def unavco_keys(dim: dict) -> dict[str, str]:
    """beam_mode and relative_orbit (the HDF-EOS5 keys MintPy's save_hdfeos5.py requires) from the .dim's
    ACQUISITION_MODE (IW, SM ...) and REL_ORBIT."""
    a, out = dim["attrs"], {}
    mode = (a.get("ACQUISITION_MODE") or "").strip()
    if mode and mode not in ("-", "99999"):
        out["beam_mode"] = mode
    orbit = (a.get("REL_ORBIT") or "").strip()
    if orbit.isdigit() and int(orbit) not in (0, 99999):
        out["relative_orbit"] = str(int(orbit))
    return out


def radar_from_dim(dim: dict, request: LoadRequest | None = None) -> RadarInfo:
    a = dim["attrs"]
    source = dim.get("path", ".dim")

    def num(key):  # optional values: absent, unparsable, non-finite or SNAP's 99999 "no value" → None
        try:
            v = float(a[key])
        except (KeyError, ValueError):
            return None
        return None if v == 99999.0 or not math.isfinite(v) else v

    def looks(key, name):  # template key, else a positive integer in the .dim, else 1
        value = ov(key)
        if value:
            return header_int(value, "template", key)
        text = (a.get(name) or "").strip()
        if not text or text in ("99999", "99999.0"):
            return 1
        return header_int(text, source, name)

    def ov(key):
        return override_float(request, key) if request is not None else None

    freq = num("radar_frequency")  # MHz
    wavelength = ov("WAVELENGTH") or (SPEED_OF_LIGHT / (freq * 1e6) if freq else None)
    t0, t1 = seconds_of_day(a.get("first_line_time", "")), seconds_of_day(a.get("last_line_time", ""))
    center = (t0 + t1) / 2 if t0 is not None and t1 is not None else t0
    inc = [v for v in (num("incidence_near"), num("incidence_far")) if v is not None]
    height = earth_radius = None
    if dim["orbit"]:
        x, y, z = dim["orbit"][len(dim["orbit"]) // 2]
        r = math.sqrt(x * x + y * y + z * z)
        lat = math.degrees(math.atan2(z, math.hypot(x, y)))
        earth_radius = earth_radius_at(lat)
        height = r - earth_radius
    heading = num("centre_heading")
    antenna = a.get("antenna_pointing", "right").lower()
    return RadarInfo(
        wavelength=wavelength,
        alooks=looks("ALOOKS", "azimuth_looks"),
        rlooks=looks("RLOOKS", "range_looks"),
        range_pixel_size=num("range_spacing"),
        azimuth_pixel_size=num("azimuth_spacing"),
        starting_range=num("slant_range_to_first_pixel"),
        earth_radius=ov("EARTH_RADIUS") or earth_radius,
        height=ov("HEIGHT") or height,
        heading=ov("HEADING") or (None if heading is None else float(wrap_degrees(heading))),
        orbit_direction=(a.get("PASS") or "").upper() or None,
        antenna_side=1 if antenna.startswith("left") else -1,
        platform=standard_platform(a.get("MISSION")),
        center_line_utc=center,
        prf=num("pulse_repetition_frequency"),
        incidence_angle=sum(inc) / len(inc) if inc else None,
    )


def _radar_from_template(request: LoadRequest, where: str) -> RadarInfo:
    wavelength = override_float(request, "WAVELENGTH")
    if wavelength is None:
        raise InputError(f"{where}: no SNAP .dim beside the .data folder, so no radar metadata; keep the "
                         "<name>.dim next to <name>.data/ or set WAVELENGTH (and HEADING, INCIDENCE_ANGLE ...) "
                         "in the template")
    return RadarInfo(wavelength=wavelength, alooks=int(override_float(request, "ALOOKS") or 1),
                     rlooks=int(override_float(request, "RLOOKS") or 1),
                     heading=override_float(request, "HEADING"),
                     incidence_angle=override_float(request, "INCIDENCE_ANGLE"))


class SnapReader(Reader):
    name = "snap"
    summary = "SNAP BEAM-DIMAP: <pair>.data/Unw_Phase_*.img, coh_*.img (ENVI) + <pair>.dim metadata"

    def detect(self, request: LoadRequest) -> int:
        """Specific: an ENVI ``.img``/``.hdr`` band of a BEAM-DIMAP product (its ``.dim``), or whose
        header names SNAP's unwrapped-phase band."""
        files = request.files("unwFile")
        if not files:
            return Confidence.NO
        f = files[0]
        if f.suffix != ".img" or not header_of(f).exists():
            return Confidence.NO
        if dim_of(f) is not None:
            return Confidence.SPECIFIC
        head = header_of(f).read_text(errors="replace")[:4096]
        found = head.startswith("ENVI") and ("abs_phase" in head or "Unw_Phase" in head)
        return Confidence.SPECIFIC if found else Confidence.NO

    def open_stack(self, request: LoadRequest) -> StackSource | None:
        files = [f for f in request.files("unwFile") if f.suffix == ".img"]
        if not files:
            return None

        def index(key):
            out = {}
            for f in request.files(key):
                d = snap_dates(f.stem) or snap_dates(f.parent.name)
                if len(d) >= 2:
                    out.setdefault(tuple(sorted(d[:2])), f)
            return out

        cor, conn = index("corFile"), index("connCompFile")
        pairs, inputs = [], []
        radar = grid = None
        for f in files:
            dates = snap_dates(f.stem) or snap_dates(f.parent.name)
            if len(dates) < 2:
                raise InputError(f"{f}: no pair of dates (e.g. 17Mar2017_10Apr2017) in the band or folder name")
            d1, d2, swapped = sorted_pair(dates[0], dates[1])
            if swapped:
                logger.info("%s: pair stored later_earlier; loaded as %s_%s with the phase sign changed", f, d1, d2)
            unw, hdr = envi_raster(f)
            if grid is None:
                grid = grid_of_band(f, unw.shape, hdr)
            # bperp below is looked up for (d1, d2) already, so only the phase changes sign here
            layers = {"unwrapPhase": oriented_phase(unw, swapped)}
            if (d1, d2) in cor:
                layers["coherence"] = envi_raster(cor[(d1, d2)])[0]
                inputs.append(cor[(d1, d2)])
            elif request.pattern("corFile"):
                logger.warning("no coherence band for pair %s_%s in %s", d1, d2, request.pattern("corFile"))
            if (d1, d2) in conn:
                layers["connectComponent"] = envi_raster(conn[(d1, d2)])[0]
            dim_path = dim_of(f)
            bperp = None
            if dim_path is not None:
                dim = read_dim(dim_path)
                bperp = dim["baselines"].get((d1, d2))
                if bperp is None and (d2, d1) in dim["baselines"]:
                    bperp = -dim["baselines"][(d2, d1)]
                if radar is None:
                    radar = radar_from_dim(dim, request)
                inputs.append(dim_path)
            pairs.append(PairSource(d1, d2, layers, bperp, str(f)))
            inputs += [f, header_of(f)]
        if radar is None:
            radar = _radar_from_template(request, str(files[0]))
        elif radar.wavelength is None:
            raise InputError(f"{dim_of(files[0])}: no radar_frequency in Abstracted_Metadata; set WAVELENGTH in "
                             "the template")
        meta = Metadata(grid=grid, file_type="ifgramStack", processor="snap", radar=radar)
        if dim_of(files[0]) is not None:
            dim = read_dim(dim_of(files[0]))
            meta = meta.with_extra(**dim_corners(dim), **unavco_keys(dim))
        return StackSource(pairs, meta, tuple(inputs))

    def open_geometry(self, request: LoadRequest) -> GeometrySource | None:
        layers, inputs, grid = {}, [], None
        for key, name in (("demFile", "height"), ("incAngleFile", "incidenceAngle"),
                          ("azAngleFile", "azimuthAngle"), ("waterMaskFile", "waterMask")):
            files = [f for f in request.files(key) if f.suffix == ".img"]
            if not files:
                continue
            r, hdr = envi_raster(files[0])
            if grid is None:
                grid = grid_of_band(files[0], r.shape, hdr)
            elif tuple(r.shape) != grid.shape:
                raise InputError(f"{files[0]}: {r.shape} pixels but the other geometry bands have {grid.shape}")
            layers[name] = r
            inputs.append(files[0])
        if not layers:
            return None
        radar = RadarInfo()
        unw = request.files("unwFile")
        if unw and dim_of(unw[0]) is not None:
            radar = radar_from_dim(read_dim(dim_of(unw[0])), request)
        elif request.files("demFile") and dim_of(request.files("demFile")[0]) is not None:
            radar = radar_from_dim(read_dim(dim_of(request.files("demFile")[0])), request)
        extra = {}
        if radar.earth_radius is not None and radar.height is not None:
            # MintPy: from the incidence raster when there is one, else the scalar from the .dim's
            # incidence angle (the same triangle Earth centre / platform / target)
            if "incidenceAngle" in layers:
                layers["slantRangeDistance"] = slant_range_layer(layers["incidenceAngle"], radar.earth_radius,
                                                                 radar.height)
            elif radar.incidence_angle is not None:
                srd = float(slant_range_from_incidence(radar.incidence_angle, radar.earth_radius, radar.height))
                radar = dataclasses.replace(radar, slant_range_distance=srd)
        else:
            logger.warning("SNAP: no orbit state vectors in the .dim, so no HEIGHT/EARTH_RADIUS and no slant range; "
                           "the DEM-error step then needs SLANT_RANGE_DISTANCE in the template")
        meta = Metadata(grid=grid, file_type="geometry", processor="snap", radar=radar).with_extra(**extra)
        dims = [dim_of(f[0]) for f in (request.files("unwFile"), request.files("demFile")) if f and dim_of(f[0])]
        if dims:
            meta = meta.with_extra(**dim_corners(read_dim(dims[0])))
        return GeometrySource(layers, meta, tuple(inputs))


@hookimpl
def sbts_readers():
    return [SnapReader()]
