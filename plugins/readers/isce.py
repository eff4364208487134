"""ISCE2 topsStack / stripmapStack reader: ``merged/interferograms/<d1>_<d2>/filt_fine.*`` + ``geom_reference``.

Layout (ISCE2 stack processors): each raster is a flat binary file described by an ISCE image XML
(``<file>.xml``: width, length, number_bands, data_type, scheme, byte_order); ``filt_fine.unw`` is
2-band BIL (amplitude, phase in radians), ``filt_fine.cor`` 1 band, ``filt_fine.unw.conncomp`` 1 band;
``geom_reference/{hgt,lat,lon,los,shadowMask,waterMask}.rdr`` (``los.rdr`` 2-band BIL: incidence,
azimuth, degrees, already in MintPy's convention).  Radar parameters come from the reference product
XML (``reference/IW*.xml``: ``radarwavelength``, ``rangepixelsize``, ``startingrange``, ``prf``,
``sensingstart/stop``, ``passdirection``); perpendicular baselines from ``baselines/`` text files.
stripmapStack keeps them in ``referenceShelve/data.dat`` (the pickled reference Frame, read without
ISCE).  HEADING, EARTH_RADIUS, HEIGHT and AZIMUTH_PIXEL_SIZE are computed from the orbit state vectors
as MintPy's prep_isce has ISCE compute them (see ``_orbit.py``); LAT/LON_REF1..4 come from the lookup
rasters; UPPER_CASE template keys override any value.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
from pathlib import Path

import numpy as np

from sbts.core.api import (
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
    S1_IW_RESOLUTION,
    SPEED_OF_LIGHT,
    MappedRaster,
    independent_looks,
    index_by_pair,
    oriented_phase,
    override,
    override_float,
    pair_of,
    seconds_of_day,
    slant_range_raster,
    sorted_pair,
    wrap_degrees,
)
from sbts.plugins.readers._isce_xml import (
    orbit_from_groups,
    read_image_xml,
    read_product_xml,
    read_reference_shelve,
)
from sbts.plugins.readers._orbit import parse_time, platform_geometry

logger = logging.getLogger(__name__)

_GEOM_KEYS = ("demFile", "lookupYFile", "lookupXFile", "incAngleFile", "azAngleFile", "shadowMaskFile",
              "waterMaskFile")


def _stripmap_resolution(frame) -> tuple[float, float] | None:
    """Stripmap single-look (range, azimuth) resolution: c / (2 · chirp bandwidth), antenna length / 2."""
    if not (frame.antenna_length and frame.pulse_length and frame.chirp_slope):
        return None
    return abs(SPEED_OF_LIGHT / (2.0 * frame.pulse_length * frame.chirp_slope)), frame.antenna_length / 2.0


def _has_xml(path: Path) -> bool:
    return path.with_name(path.name + ".xml").exists()


class IsceReader(Reader):
    name = "isce"
    summary = "ISCE2 topsStack/stripmapStack: filt_fine.unw/.cor/.conncomp + .xml, geom_reference/*.rdr, baselines/"

    # ------------------------------------------------------------------ detect
    def detect(self, request: LoadRequest) -> int:
        """Specific: an ``*.unw*`` interferogram (or, geometry alone, a ``.rdr``/``.hgt`` DEM) with
        the ISCE ``.xml`` image description beside it."""
        unw = request.files("unwFile")
        if unw:
            f = unw[0]
            found = ".unw" in f.name and not f.name.endswith(".xml") and _has_xml(f)
        else:
            dem = request.files("demFile")
            found = bool(dem) and dem[0].suffix in (".rdr", ".hgt", ".full") and _has_xml(dem[0])
        return Confidence.SPECIFIC if found else Confidence.NO

    # ------------------------------------------------------------------ metadata
    def _radar(self, request: LoadRequest, looks: tuple[int, int], required: bool) -> tuple[RadarInfo, dict]:
        """RadarInfo (+ extra attributes) from the reference metadata of ``mintpy.load.metaFile``.

        topsStack: ``reference/IW*.xml`` (swath products: bursts, orbit state vectors); stripmapStack:
        ``referenceShelve/data.dat`` (the pickled reference Frame).  HEADING, HEIGHT, EARTH_RADIUS and
        the azimuth pixel size come from the orbit at the first burst's (the frame's) mid time, as
        MintPy's prep_isce has ISCE compute them; UPPER_CASE template keys override every value.
        """
        groups: list[dict[str, str]] = []
        meta_files = request.files("metaFile")
        xml_files = [f for f in meta_files if f.suffix == ".xml"]
        for f in xml_files:
            groups.extend(read_product_xml(f))
        frame = None
        shelves = [f for f in meta_files if f.suffix != ".xml"]
        if shelves and not xml_files:
            frame = read_reference_shelve(shelves[0])

        def first(name):
            return next((g[name] for g in groups if name in g), None)

        def num(name):
            v = first(name)
            try:
                return None if v is None else float(v)
            except ValueError:
                return None

        alooks, rlooks = looks
        extra: dict[str, str] = {}
        if frame is not None:
            wavelength, rps, prf = frame.wavelength, frame.range_pixel_size, frame.prf
            ranges = [frame.starting_range] if frame.starting_range is not None else []
            mid, vectors, direction, platform = frame.sensing_mid, frame.orbit, frame.pass_direction, frame.platform
            polarization, ati = frame.polarization, (1.0 / prf if prf else None)
        else:
            wavelength, rps, prf = num("radarwavelength"), num("rangepixelsize"), num("prf")
            if wavelength is None and num("radarfrequency"):
                wavelength = SPEED_OF_LIGHT / num("radarfrequency")
            # swath-wide values: the smallest starting range is the merged image's near range (IW1)
            ranges = [float(g["startingrange"]) for g in groups if "startingrange" in g]
            bursts = [g for g in groups if "sensingstart" in g and "sensingstop" in g]
            mid = None
            if bursts:  # MintPy: the first burst's mid time
                t0, t1 = parse_time(bursts[0]["sensingstart"]), parse_time(bursts[0]["sensingstop"])
                mid = t0 + (t1 - t0) / 2 if t0 and t1 else None
            vectors = orbit_from_groups(groups)
            direction, platform = first("passdirection"), first("spacecraftname") or first("mission")
            polarization, ati = first("polarization"), num("azimuthtimeinterval")
        wavelength = override_float(request, "WAVELENGTH") or wavelength
        if wavelength is None and required:
            src = ", ".join(str(f) for f in meta_files) or "mintpy.load.metaFile (not set or no match)"
            raise InputError(f"{src}: no radar wavelength (property 'radarwavelength'); point mintpy.load.metaFile "
                             "to the reference XML (e.g. ../reference/IW*.xml) or set WAVELENGTH in the template")
        geometry = None
        if vectors and mid is not None:
            try:
                geometry = platform_geometry(vectors, mid)
            except InputError as exc:
                logger.warning("%s: %s; HEADING/HEIGHT/EARTH_RADIUS not derived", meta_files[0], exc)
        if frame is not None:
            center = frame.center_seconds
        else:
            starts = [seconds_of_day(g["sensingstart"]) for g in groups if "sensingstart" in g]
            stops = [seconds_of_day(g["sensingstop"]) for g in groups if "sensingstop" in g]
            starts, stops = [s for s in starts if s is not None], [s for s in stops if s is not None]
            center = (min(starts) + max(stops)) / 2 if starts and stops else None
        az_pixel = override_float(request, "AZIMUTH_PIXEL_SIZE")
        if az_pixel is None and geometry is not None and ati:
            az_pixel = geometry.speed * ati * alooks
        ncorr = override_float(request, "NCORRLOOKS")
        if ncorr is None and geometry is not None and ati and rps:
            resolution = (_stripmap_resolution(frame) if frame is not None
                          else S1_IW_RESOLUTION.get(xml_files[0].stem if xml_files else "", S1_IW_RESOLUTION["IW2"]))
            if resolution is not None:
                ncorr = independent_looks(alooks, rlooks, resolution, (rps, geometry.speed * ati))
        if polarization:
            extra["POLARIZATION"] = str(polarization).replace("/", "")
        if frame is not None or groups:
            extra["beam_mode"] = "SM" if frame is not None else "IW"  # as prep_isce (stripmap / tops)
        radar = RadarInfo(
            wavelength=wavelength,
            alooks=alooks, rlooks=rlooks, ncorrlooks=ncorr,
            range_pixel_size=None if rps is None else rps * rlooks,
            azimuth_pixel_size=az_pixel,
            starting_range=min(ranges) if ranges else None,
            earth_radius=override_float(request, "EARTH_RADIUS") or (geometry and geometry.earth_radius),
            height=override_float(request, "HEIGHT") or (geometry and geometry.height),
            heading=override_float(request, "HEADING") or (geometry and geometry.heading),
            orbit_direction=direction.upper() if direction else override(request, "ORBIT_DIRECTION"),
            antenna_side=-1,
            platform=standard_platform(platform),
            center_line_utc=center,
            prf=prf,
        )
        missing = [k for k, v in (("HEADING", radar.heading), ("EARTH_RADIUS", radar.earth_radius),
                                  ("HEIGHT", radar.height)) if v is None]
        if missing and required:
            logger.info("ISCE reference metadata give no %s (no orbit state vectors); set them in the template "
                        "if a later step needs them", ", ".join(missing))
        return radar, extra

    @staticmethod
    def corner_coordinates(request: LoadRequest) -> dict[str, str]:
        """LAT_REF1..4 / LON_REF1..4 from the lat/lon lookup rasters, as MintPy takes them: the first and
        last rows without zeros (2 rows inside), first and last columns (near/far range)."""
        out = {}
        for key, prefix in (("lookupYFile", "LAT_REF"), ("lookupXFile", "LON_REF")):
            files = [f for f in request.files(key) if not f.name.endswith((".xml", ".vrt"))]
            if not files:
                continue
            data = np.asarray(read_image_xml(files[0]).band(0).read(), dtype=np.float64)
            full = np.flatnonzero((data != 0).all(axis=1) & np.isfinite(data).all(axis=1))
            if full.size == 0:
                continue
            r0, r1 = min(full[0] + 2, data.shape[0] - 1), max(full[-1] - 2, 0)
            for k, (r, c) in enumerate(((r0, 0), (r0, -1), (r1, 0), (r1, -1)), 1):
                out[f"{prefix}{k}"] = repr(float(data[r, c]))
        return out

    def _looks(self, request: LoadRequest, shape: tuple[int, int]) -> tuple[int, int]:
        """ALOOKS/RLOOKS: template keys, else full-resolution geometry ``*.full.xml`` size / this size."""
        a, r = override_float(request, "ALOOKS"), override_float(request, "RLOOKS")
        if a is None or r is None:
            for key in ("demFile", "lookupYFile"):
                files = request.files(key)
                if not files:
                    continue
                f = files[0]
                full = f.with_name(f.name + ".full") if not f.name.endswith(".full") else f
                if _has_xml(full):
                    img = read_image_xml(full)
                    a = a or max(1, round(img.length / shape[0]))
                    r = r or max(1, round(img.width / shape[1]))
                    break
        if a is None or r is None:
            logger.info("ALOOKS/RLOOKS unknown (no template keys, no geom_reference/*.full.xml): assuming 1")
        return int(a or 1), int(r or 1)

    # ------------------------------------------------------------------ baselines
    @staticmethod
    def read_baselines(request: LoadRequest) -> dict[_dt.date, float]:
        """Perpendicular baseline of each date relative to the stack reference (reference date = 0).

        topsStack: ``baselines/<ref>_<sec>/<ref>_<sec>.txt`` with one ``Bperp (average): v`` line per
        swath (averaged); stripmapStack: ``PERP_BASELINE_TOP``/``PERP_BASELINE_BOTTOM`` (averaged).
        """
        pattern = request.pattern("baselineDir")
        if not pattern:
            return {}
        roots = request.files("baselineDir")
        files: list[Path] = []
        for root in roots:
            files.extend(sorted(root.rglob("*.txt")) if root.is_dir() else [root])
        out: dict[_dt.date, float] = {}
        for f in files:
            dates = dates_in_name(f.stem)
            if not dates:
                continue
            values, top_bottom = [], []
            for line in f.read_text(errors="replace").splitlines():
                key, _, rest = line.partition(":") if ":" in line else line.partition(" ")
                rest = rest.strip()
                nums = re.findall(r"[-+]?\d+\.?\d*(?:[eE][-+]?\d+)?", rest)
                if not nums:
                    continue
                if "bperp" in key.lower() and "average" in key.lower():
                    values.append(float(nums[0]))
                elif key.strip().upper() in ("PERP_BASELINE_TOP", "PERP_BASELINE_BOTTOM"):
                    top_bottom.append(float(nums[0]))
            value = np.mean(values) if values else (np.mean(top_bottom) if top_bottom else None)
            if value is None:
                logger.warning("%s: no 'Bperp (average)' or PERP_BASELINE_TOP/BOTTOM line; ignored", f)
                continue
            if len(dates) >= 2:
                out.setdefault(dates[0], 0.0)
                out[dates[1]] = float(value)
            else:
                out[dates[0]] = float(value)
        if roots and not out:
            logger.warning("mintpy.load.baselineDir = %s: no baseline file found; bperp will be 0", pattern)
        return out

    # ------------------------------------------------------------------ stack
    def open_stack(self, request: LoadRequest) -> StackSource | None:
        unw_files = [f for f in request.files("unwFile") if not f.name.endswith((".xml", ".vrt", ".conncomp"))]
        if not unw_files:
            return None
        cor = index_by_pair(f for f in request.files("corFile") if not f.name.endswith((".xml", ".vrt")))
        conn = index_by_pair(f for f in request.files("connCompFile") if not f.name.endswith((".xml", ".vrt")))
        bperps = self.read_baselines(request)
        pairs, inputs = [], []
        first_img = None
        for f in unw_files:
            p = pair_of(f)
            if p is None:
                raise InputError(f"{f}: no pair of dates (YYYYMMDD_YYYYMMDD) in the file or folder name")
            d1, d2, swapped = sorted_pair(*p)
            if swapped:
                logger.info("%s: pair stored later_earlier; loaded as %s_%s with the phase sign changed", f, d1, d2)
            img = read_image_xml(f)
            first_img = first_img or img
            # 2-band BIL .unw: band 1 amplitude, band 2 unwrapped phase
            layers = {"unwrapPhase": oriented_phase(img.band(1 if img.bands >= 2 else 0), swapped)}
            inputs += [f, f.with_name(f.name + ".xml")]
            if (d1, d2) in cor:
                c = read_image_xml(cor[(d1, d2)])
                layers["coherence"] = c.band(c.bands - 1)  # 2-band .cor: amplitude, coherence
                inputs.append(cor[(d1, d2)])
            elif request.pattern("corFile"):
                logger.warning("no coherence file for pair %s_%s in %s", d1, d2, request.pattern("corFile"))
            if (d1, d2) in conn:
                layers["connectComponent"] = read_image_xml(conn[(d1, d2)]).band(0)
                inputs.append(conn[(d1, d2)])
            bperp = None
            if bperps:
                if d1 in bperps and d2 in bperps:
                    bperp = bperps[d2] - bperps[d1]
                else:
                    logger.warning("no baseline for %s or %s in %s", d1, d2, request.pattern("baselineDir"))
            pairs.append(PairSource(d1, d2, layers, bperp, str(f)))
        shape = (first_img.length, first_img.width)
        radar, extra = self._radar(request, self._looks(request, shape), required=True)
        inputs += [f for f in request.files("metaFile")]
        meta = Metadata(grid=Grid(*shape), file_type="ifgramStack", processor="isce", radar=radar)
        meta = meta.with_extra(**extra, **self.corner_coordinates(request))
        return StackSource(pairs, meta, tuple(inputs))

    # ------------------------------------------------------------------ geometry
    def open_geometry(self, request: LoadRequest) -> GeometrySource | None:
        files = {k: request.files(k)[0] for k in _GEOM_KEYS if request.files(k)}
        if not files:
            return None
        layers, inputs = {}, []
        grid_img = None

        def add(name, path: Path, band: int = 0, invert: bool = False, func=None):
            nonlocal grid_img
            img = read_image_xml(path)
            grid_img = grid_img or img
            raster = img.band(band)
            if invert:
                raster = MappedRaster(raster, lambda a: a == 0, np.dtype(bool))
            elif func is not None:
                raster = MappedRaster(raster, func)
            layers[name] = raster
            inputs.extend([path, path.with_name(path.name + ".xml")])

        if "demFile" in files:
            add("height", files["demFile"])
        if "lookupYFile" in files:
            add("latitude", files["lookupYFile"])
        if "lookupXFile" in files:
            add("longitude", files["lookupXFile"])
        if "incAngleFile" in files:
            add("incidenceAngle", files["incAngleFile"], 0)
        if "azAngleFile" in files:
            img = read_image_xml(files["azAngleFile"])
            # ISCE writes azimuths anywhere in (-360, 360); same angle, wrapped to [-180, 180)
            add("azimuthAngle", files["azAngleFile"], 1 if img.bands >= 2 else 0, func=wrap_degrees)
        if "shadowMaskFile" in files:
            add("shadowMask", files["shadowMaskFile"])
        if "waterMaskFile" in files:
            f = files["waterMaskFile"]
            # waterMask.rdr: 1 = land (MintPy's convention); water-body files (*.wbd, waterBody*) flag water
            add("waterMask", f, invert=("wbd" in f.name.lower() or "waterbody" in f.name.lower()))
        shape = (grid_img.length, grid_img.width)
        for name, layer in layers.items():
            if tuple(layer.shape) != shape:
                raise InputError(f"geometry layer {name} is {layer.shape} but {grid_img.path.name} is {shape}; "
                                 "the geometry files do not match")
        radar, extra = self._radar(request, self._looks(request, shape), required=False)
        if radar.starting_range is not None and radar.range_pixel_size is not None:
            layers["slantRangeDistance"] = slant_range_raster(shape, radar.starting_range, radar.range_pixel_size)
        meta = Metadata(grid=Grid(*shape), file_type="geometry", processor="isce", radar=radar)
        meta = meta.with_extra(**extra, **self.corner_coordinates(request))
        return GeometrySource(layers, meta, tuple(inputs))


@hookimpl
def sbts_readers():
    return [IsceReader()]
