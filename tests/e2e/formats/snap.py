"""SNAP BEAM-DIMAP products, one per layer and pair, as MintPy's SNAP workflow asks for them.

Layout (MintPy's ``prep_snap.py`` notes: one product per layer, named
``yyyymmdd_yyyymmdd_<type>_tc.dim``; the DEM is an elevation band added to a coregistered product
and band-subset)::

    interferograms/<d1>_<d2>/<d1>_<d2>_unw_tc.dim  + .data/Unw_Phase_ifg_<ddMonYYYY>_<ddMonYYYY>_VV.img/.hdr
    interferograms/<d1>_<d2>/<d1>_<d2>_coh_tc.dim  + .data/coh_IW2_VV_<ddMonYYYY>_<ddMonYYYY>.img/.hdr
    geometry/dem_tc.dim + .data/elevation.img/.hdr, incidenceAngleFromEllipsoid.img/.hdr

The ``.dim`` follows the real SNAP 8 product in ``shared/data/snap_dim_metadata_iceland``:
``Coordinate_Reference_System``, ``Geoposition/IMAGE_TO_MODEL_TRANSFORM``, ``Raster_Dimensions``,
``Data_Access`` (one ``Data_File`` per band), ``Image_Interpretation/Spectral_Band_Info`` per band (with
its own IMAGE_TO_MODEL_TRANSFORM, unit, no-data value), and ``Dataset_Sources/metadata/
Abstracted_Metadata`` with the same attribute names and types (MISSION, PASS, first/last_line_time,
first_near_lat ..., incidence_near/far, range/azimuth_spacing, radar_frequency in MHz,
slant_range_to_first_pixel, centre_heading in [0, 360), Orbit_State_Vectors, Baselines).

The ENVI headers are written as SNAP's ``EnviHeader.writeMapProjectionInfo`` does for a
``CrsGeoCoding`` (snap-engine ``ImageGeometry.createTargetGeometry``): the tie point is the centre
of a recomputed grid, ``pixel size = min(mapW/W, mapH/H)``, ``W' = 1 + floor(mapW/pixel)``, reference
pixel ``0.5·W'`` (1-based in the header).  The map boundary is taken as the envelope of the pixel
*centres*, which makes the header half a pixel off and its pixel size (1 − 1/min(W, H)) too small:
for the real 5282 × 1390 Iceland product that is 60 m at the far edge, the size of the error the
issue reports.  The ``.dim`` transform is the grid; the header is not.  Bands are big-endian
float32 (``byte order = 1``), as SNAP writes them.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np

from sbts.tests.e2e.formats import _radar

GEOCODED = True
FREQ_MHZ = 5405.000454334349


def snap_date(d: str) -> str:
    return dt.datetime.strptime(d, "%Y%m%d").strftime("%d%b%Y")


def snap_time(t: dt.datetime) -> str:
    return t.strftime("%d-%b-%Y %H:%M:%S.%f").upper()


def java_double(v: float) -> str:
    """``Double.toString``: plain for 1e-3 <= |v| < 1e7, else ``d.dddE-n``."""
    v = float(v)
    if v == 0.0 or 1e-3 <= abs(v) < 1e7:
        return repr(v)
    mantissa, exp = np.format_float_scientific(v, unique=True, trim="0").split("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{int(exp)}"


def grid_of(synth) -> tuple[float, float, float, float]:
    a = synth.attrs
    return float(a["X_FIRST"]), float(a["Y_FIRST"]), float(a["X_STEP"]), float(a["Y_STEP"])


def envi_map_info(synth) -> str:
    """The ``map info`` SNAP recomputes for a geographic CrsGeoCoding (see the module docstring)."""
    x0, y0, dx, dy = grid_of(synth)
    length, width = synth.shape
    min_x, max_y = x0 + dx / 2, y0 + dy / 2  # envelope of the pixel centres
    map_w, map_h = (width - 1) * dx, (length - 1) * abs(dy)
    pixel = min(map_w / width, map_h / length)
    w2, h2 = 1 + math.floor(map_w / pixel), 1 + math.floor(map_h / pixel)
    ref_x, ref_y = 0.5 * w2, 0.5 * h2
    easting, northing = min_x + ref_x * pixel, max_y - ref_y * pixel
    return (f"{{Geographic Lat/Lon,{ref_x + 1.0},{ref_y + 1.0},{java_double(easting)},{java_double(northing)},"
            f"{java_double(pixel)},{java_double(pixel)},WGS84,units=Degrees}}")


def write_band(data_dir: Path, name: str, data: np.ndarray, unit: str, synth) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    np.asarray(data, dtype=">f4").tofile(data_dir / f"{name}.img")
    (data_dir / f"{name}.hdr").write_text(
        "ENVI\n"
        f"description = {{Sentinel-1 IW Level-1 SLC Product - Unit: {unit}}}\n"
        f"samples = {data.shape[1]}\nlines = {data.shape[0]}\nbands = 1\nheader offset = 0\n"
        "file type = ENVI Standard\ndata type = 4\ninterleave = bsq\nbyte order = 1\n"
        f"band names = {{ {name} }}\n"
        f"map info = {envi_map_info(synth)}\n"
        'coordinate system string = {GEOGCS["WGS84(DD)", DATUM["WGS84", SPHEROID["WGS84", 6378137.0, '
        '298.257223563]], PRIMEM["Greenwich", 0.0], UNIT["degree", 0.017453292519943295], '
        'AXIS["Geodetic longitude", EAST], AXIS["Geodetic latitude", NORTH]]}\n'
        "data gain values = {1.0}\ndata offset values = {0.0}\n")


def _attr(name, value, typ="float64", unit=None):
    u = f' unit="{unit}"' if unit else ""
    return f'                <MDATTR name="{name}" type="{typ}"{u} mode="rw">{value}</MDATTR>\n'


def abstracted_metadata(synth, d1: str, d2: str) -> str:
    """Abstracted_Metadata of the coregistered (d1 reference, d2 secondary) terrain-corrected product."""
    k1, k2 = synth.date_list.index(d1), synth.date_list.index(d2)
    mid = _radar.sensing_mid(synth, synth.dates[k1])
    first, last = mid - dt.timedelta(seconds=2.93), mid + dt.timedelta(seconds=2.93)
    x0, y0, dx, dy = grid_of(synth)
    length, width = synth.shape
    lat_n, lat_s, lon_w, lon_e = y0, y0 + length * dy, x0, x0 + width * dx
    asc = synth.attrs["ORBIT_DIRECTION"] == "ASCENDING"
    # first line near/far, last line near/far (right-looking: ascending looks east, descending west)
    first_lat, last_lat = (lat_s, lat_n) if asc else (lat_n, lat_s)
    near_lon, far_lon = (lon_w, lon_e) if asc else (lon_e, lon_w)
    heading = float(synth.attrs["HEADING"]) % 360.0
    a = "".join([
        _attr("PRODUCT", f"S1A_IW_SLC__1SDV_{d1}T003553_{d1}T003620_027000_030B2C_ABCD", "ascii"),
        _attr("PRODUCT_TYPE", "SLC", "ascii"), _attr("SPH_DESCRIPTOR", "Sentinel-1 IW Level-1 SLC Product", "ascii"),
        _attr("MISSION", "SENTINEL-1A", "ascii"), _attr("ACQUISITION_MODE", "IW", "ascii"),
        _attr("antenna_pointing", "right", "ascii"), _attr("BEAMS", "-", "ascii"), _attr("SWATH", "IW2", "ascii"),
        _attr("REL_ORBIT", 143, "int32"), _attr("ABS_ORBIT", 27000, "int32"),
        _attr("incidence_near", repr(float(synth.incidence_angle.min())), unit="deg"),
        _attr("incidence_far", repr(float(synth.incidence_angle.max())), unit="deg"),
        _attr("first_line_time", snap_time(first), "utc", "utc"), _attr("last_line_time", snap_time(last), "utc", "utc"),
        _attr("first_near_lat", repr(first_lat), unit="deg"), _attr("first_near_long", repr(near_lon), unit="deg"),
        _attr("first_far_lat", repr(first_lat), unit="deg"), _attr("first_far_long", repr(far_lon), unit="deg"),
        _attr("last_near_lat", repr(last_lat), unit="deg"), _attr("last_near_long", repr(near_lon), unit="deg"),
        _attr("last_far_lat", repr(last_lat), unit="deg"), _attr("last_far_long", repr(far_lon), unit="deg"),
        _attr("PASS", synth.attrs["ORBIT_DIRECTION"], "ascii"), _attr("SAMPLE_TYPE", "COMPLEX", "ascii"),
        _attr("mds1_tx_rx_polar", synth.attrs.get("POLARIZATION", "VV"), "ascii"),
        _attr("azimuth_looks", "2.0"), _attr("range_looks", "8.0"),
        _attr("range_spacing", repr(abs(dx) * 111_319.49 * math.cos(math.radians(y0))), unit="m"),
        _attr("azimuth_spacing", repr(abs(dy) * 111_319.49), unit="m"),
        _attr("pulse_repetition_frequency", "1717.128973878037", unit="Hz"),
        _attr("radar_frequency", repr(FREQ_MHZ), unit="MHz"),
        _attr("line_time_interval", "0.0041111125610768795", unit="s"),
        _attr("num_output_lines", length, "uint32", "lines"), _attr("num_samples_per_line", width, "uint32", "samples"),
        _attr("map_projection", "WGS84(DD)", "ascii"), _attr("is_terrain_corrected", 1, "uint8", "flag"),
        _attr("DEM", "SRTM 3Sec", "ascii"), _attr("lat_pixel_res", java_double(abs(dy)), unit="deg"),
        _attr("lon_pixel_res", java_double(dx), unit="deg"),
        _attr("slant_range_to_first_pixel", repr(float(synth.slant_range_distance.min())), unit="m"),
        _attr("range_bandwidth", "56.5", unit="MHz"), _attr("coregistered_stack", 1, "uint8", "flag"),
        _attr("centre_lat", repr(float(synth.lat_axis.mean())), typ="float64"),
        _attr("centre_lon", repr(float(synth.lon_axis.mean())), typ="float64"),
        _attr("centre_heading", repr(heading)), _attr("centre_heading2", repr((heading + 180.0) % 360.0)),
    ])
    osv = "".join(
        f'                    <MDElem name="orbit_vector{k + 1}">\n'
        + _attr("time", snap_time(t), "utc") + _attr("x_pos", repr(float(p[0]))) + _attr("y_pos", repr(float(p[1])))
        + _attr("z_pos", repr(float(p[2]))) + _attr("x_vel", repr(float(v[0]))) + _attr("y_vel", repr(float(v[1])))
        + _attr("z_vel", repr(float(v[2]))) + "                    </MDElem>\n"
        for k, (t, p, v) in enumerate(_radar.orbit_state_vectors(synth, mid)))
    b = float(synth.bperp[k2] - synth.bperp[k1])
    days = (synth.dates[k2] - synth.dates[k1]).days

    def sec(date_a, date_b, perp, temp):
        return (f'                        <MDElem name="Slave: {snap_date(date_b)}">\n'
                + _attr("Perp Baseline", repr(perp)) + _attr("Temp Baseline", repr(temp))
                + "                        </MDElem>\n")

    base = ('                <MDElem name="Baselines">\n'
            f'                    <MDElem name="Master: {snap_date(d1)}">\n'
            + sec(d1, d1, 0.0, 0.0) + sec(d1, d2, b, -float(days)) + "                    </MDElem>\n"
            f'                    <MDElem name="Master: {snap_date(d2)}">\n'
            + sec(d2, d1, -b, float(days)) + sec(d2, d2, 0.0, 0.0) + "                    </MDElem>\n"
            "                </MDElem>\n")
    return (a + '                <MDElem name="Orbit_State_Vectors">\n' + osv + "                </MDElem>\n" + base)


def write_dim(path: Path, synth, d1: str, d2: str, bands: list[tuple[str, np.ndarray, str]]) -> None:
    """``<name>.dim`` + ``<name>.data/`` with one ENVI band per (name, data, unit)."""
    x0, y0, dx, dy = grid_of(synth)
    length, width = synth.shape
    transform = f"{java_double(dx)},0.0,0.0,{java_double(dy)},{java_double(x0)},{java_double(y0)}"
    data_dir = path.with_suffix(".data")
    files, infos = [], []
    for k, (name, data, unit) in enumerate(bands):
        write_band(data_dir, name, data, unit, synth)
        files.append(f'        <Data_File>\n            <DATA_FILE_PATH href="{data_dir.name}/{name}.hdr" />\n'
                     f"            <BAND_INDEX>{k}</BAND_INDEX>\n        </Data_File>\n")
        infos.append(f"""        <Spectral_Band_Info>
            <BAND_INDEX>{k}</BAND_INDEX>
            <BAND_DESCRIPTION />
            <BAND_NAME>{name}</BAND_NAME>
            <BAND_RASTER_WIDTH>{width}</BAND_RASTER_WIDTH>
            <BAND_RASTER_HEIGHT>{length}</BAND_RASTER_HEIGHT>
            <DATA_TYPE>float32</DATA_TYPE>
            <PHYSICAL_UNIT>{unit}</PHYSICAL_UNIT>
            <SOLAR_FLUX>0.0</SOLAR_FLUX>
            <BAND_WAVELEN>0.0</BAND_WAVELEN>
            <BANDWIDTH>0.0</BANDWIDTH>
            <SCALING_FACTOR>1.0</SCALING_FACTOR>
            <SCALING_OFFSET>0.0</SCALING_OFFSET>
            <LOG10_SCALED>false</LOG10_SCALED>
            <NO_DATA_VALUE_USED>true</NO_DATA_VALUE_USED>
            <NO_DATA_VALUE>0.0</NO_DATA_VALUE>
            <IMAGE_TO_MODEL_TRANSFORM>{transform}</IMAGE_TO_MODEL_TRANSFORM>
        </Spectral_Band_Info>
""")
    k1 = synth.date_list.index(d1)
    mid = _radar.sensing_mid(synth, synth.dates[k1])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<Dimap_Document name="{path.name}">
    <Metadata_Id>
        <METADATA_FORMAT version="2.12.1">DIMAP</METADATA_FORMAT>
        <METADATA_PROFILE>BEAM-DATAMODEL-V1</METADATA_PROFILE>
    </Metadata_Id>
    <Dataset_Id>
        <DATASET_SERIES>BEAM-PRODUCT</DATASET_SERIES>
        <DATASET_NAME>{path.stem}</DATASET_NAME>
    </Dataset_Id>
    <Dataset_Use>
        <DATASET_COMMENTS>Sentinel-1 IW Level-1 SLC Product</DATASET_COMMENTS>
    </Dataset_Use>
    <Production>
        <DATASET_PRODUCER_NAME />
        <PRODUCT_TYPE>SLC</PRODUCT_TYPE>
        <PRODUCT_SCENE_RASTER_START_TIME>{snap_time(mid - dt.timedelta(seconds=2.93))}</PRODUCT_SCENE_RASTER_START_TIME>
        <PRODUCT_SCENE_RASTER_STOP_TIME>{snap_time(mid + dt.timedelta(seconds=2.93))}</PRODUCT_SCENE_RASTER_STOP_TIME>
    </Production>
    <Coordinate_Reference_System>
        <WKT>
             GEOGCS["WGS84(DD)",
               DATUM["WGS84",
                 SPHEROID["WGS84", 6378137.0, 298.257223563]],
               PRIMEM["Greenwich", 0.0],
               UNIT["degree", 0.017453292519943295],
               AXIS["Geodetic longitude", EAST],
               AXIS["Geodetic latitude", NORTH]]
        </WKT>
    </Coordinate_Reference_System>
    <Geoposition>
        <IMAGE_TO_MODEL_TRANSFORM>{transform}</IMAGE_TO_MODEL_TRANSFORM>
    </Geoposition>
    <Raster_Dimensions>
        <NCOLS>{width}</NCOLS>
        <NROWS>{length}</NROWS>
        <NBANDS>{len(bands)}</NBANDS>
    </Raster_Dimensions>
    <Data_Access>
        <DATA_FILE_FORMAT>ENVI</DATA_FILE_FORMAT>
        <DATA_FILE_FORMAT_DESC>ENVI File Format</DATA_FILE_FORMAT_DESC>
        <DATA_FILE_ORGANISATION>BAND_SEPARATE</DATA_FILE_ORGANISATION>
{"".join(files)}    </Data_Access>
    <Image_Interpretation>
{"".join(infos)}    </Image_Interpretation>
    <Dataset_Sources>
        <MDElem name="metadata">
            <MDElem name="Abstracted_Metadata">
{abstracted_metadata(synth, d1, d2)}            </MDElem>
        </MDElem>
    </Dataset_Sources>
</Dimap_Document>
""")


def write(root: Path, synth) -> Path:
    root = Path(root)
    for k, (d1, d2) in enumerate(_radar.pair_names(synth)):
        folder = root / "interferograms" / f"{d1}_{d2}"
        s1, s2 = snap_date(d1), snap_date(d2)
        write_dim(folder / f"{d1}_{d2}_unw_tc.dim", synth, d1, d2,
                  [(f"Unw_Phase_ifg_{s1}_{s2}_VV", synth.unwrap_phase[k], "abs_phase")])
        write_dim(folder / f"{d1}_{d2}_coh_tc.dim", synth, d1, d2,
                  [(f"coh_IW2_VV_{s1}_{s2}", synth.coherence[k], "coherence")])
    d1, d2 = _radar.pair_names(synth)[0]
    write_dim(root / "geometry" / "dem_tc.dim", synth, d1, d2,
              [("elevation", synth.height, "meters"),
               ("incidenceAngleFromEllipsoid", synth.incidence_angle, "deg")])
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    template = work / "snap.cfg"
    template.write_text(
        "mintpy.load.processor    = snap\n"
        "mintpy.load.unwFile      = ../interferograms/*/*_unw_tc.data/Unw_*.img\n"
        "mintpy.load.corFile      = ../interferograms/*/*_coh_tc.data/coh_*.img\n"
        "mintpy.load.demFile      = ../geometry/dem_tc.data/elevation.img\n"
        "mintpy.load.incAngleFile = ../geometry/dem_tc.data/incidenceAngleFromEllipsoid.img\n")
    return template
