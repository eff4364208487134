"""ARIA Sentinel-1 GUNW products (netCDF4/HDF5), one per pair, read directly (no ariaTSsetup).

Layout of a product (``S1-GUNW-<A|D>-R-<track>-tops-<ref>_<sec>-<hhmmss>-<lon>_<lat>-PP-<id>-v<version>.nc``,
reference = the later date)::

    /science/grids/data/{unwrappedPhase, coherence, connectedComponents, amplitude}  (lat × lon)
    /science/grids/data/{latitude, longitude}            1-D pixel-centre coordinates, north first
    /science/grids/imagingGeometry/{perpendicularBaseline, parallelBaseline, incidenceAngle,
        lookAngle, azimuthAngle}                          metadata cubes (heightsMeta × latitudeMeta ×
                                                          longitudeMeta), azimuth from east, anticlockwise
    /science/radarMetaData/{wavelength, centerFrequency, slantRangeSpacing, slantRangeStart,
        slantRangeEnd, missionID, productType}
    /science/radarMetaData/inputSLC/{reference,secondary}/{L1InputGranules, orbitType,
        azimuthZeroDopplerMidTime}                         (v3: one group per input SLC)

``version="2"`` writes the v2 product (no ``inputSLC`` groups, ``v2_0_5`` in the name); ``write``
writes the current v3 product.  Phase and baseline are those of (later → earlier), i.e. of the
MintPy pair with the sign changed, as in the VRT stacks ARIA-tools makes from them.  ARIA products
carry no DEM: a ``DEM/glo_90.dem`` on the product grid (what ``ariaTSsetup.py`` downloads) and a water
mask are written beside them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sbts.tests.e2e.formats import _radar
from sbts.tests.e2e.formats.aria_vrt import write_envi

GEOCODED = True


def _cube_axes(synth):
    lat, lon = synth.lat_axis, synth.lon_axis
    lat_m = np.linspace(lat.max() + 0.1, lat.min() - 0.1, 5)  # north first, as the product
    lon_m = np.linspace(lon.min() - 0.1, lon.max() + 0.1, 5)
    heights = np.array([-1500.0, 0.0, 3000.0, 9000.0])
    return heights, lat_m, lon_m


def _plane(values, synth, lat_m, lon_m):
    """Least-squares plane of a (lat, lon) field evaluated on the coarse metadata grid."""
    yy, xx = np.meshgrid(synth.lat_axis, synth.lon_axis, indexing="ij")
    a = np.column_stack([np.ones(yy.size), yy.ravel(), xx.ravel()])
    coef = np.linalg.lstsq(a, np.asarray(values, np.float64).ravel(), rcond=None)[0]
    gy, gx = np.meshgrid(lat_m, lon_m, indexing="ij")
    return coef[0] + coef[1] * gy + coef[2] * gx


def write_product(path: Path, synth, k: int, version: str = "3") -> None:
    import h5py

    d1, d2 = _radar.pair_names(synth)[k]
    heights, lat_m, lon_m = _cube_axes(synth)
    inc0 = _plane(synth.incidence_angle, synth, lat_m, lon_m)
    az0 = _plane(synth.azimuth_angle, synth, lat_m, lon_m) + 90.0  # ARIA: from east
    shape3 = (len(heights), len(lat_m), len(lon_m))
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["Conventions"] = "CF-1.6"
        f.attrs["title"] = "ARIA standard product UNW GEO IFG"
        f.attrs["version"] = f"{version}.0"
        d = f.create_group("science/grids/data")
        d["latitude"], d["longitude"] = synth.lat_axis.astype(np.float64), synth.lon_axis.astype(np.float64)
        for name, data, fill in (("unwrappedPhase", -synth.unwrap_phase[k], np.float32(0)),
                                 ("coherence", synth.coherence[k], np.float32(0)),
                                 ("amplitude", np.ones(synth.shape, np.float32), np.float32(0))):
            ds = d.create_dataset(name, data=np.asarray(data, np.float32))
            ds.attrs["_FillValue"] = fill
        cc = d.create_dataset("connectedComponents", data=synth.conn_comp[k].astype(np.int16))
        cc.attrs["_FillValue"] = np.int16(-1)
        g = f.create_group("science/grids/imagingGeometry")
        g["heightsMeta"], g["latitudeMeta"], g["longitudeMeta"] = heights, lat_m, lon_m
        bperp = -float(synth.pair_bperp[k])
        g["perpendicularBaseline"] = np.full(shape3, bperp, np.float32)
        g["parallelBaseline"] = np.full(shape3, 0.3 * bperp, np.float32)
        # incidence grows slightly with height (the target is nearer the platform)
        g["incidenceAngle"] = (inc0[None] + heights[:, None, None] * 1e-4).astype(np.float32)
        g["lookAngle"] = (inc0[None] - 4.4 + 0 * heights[:, None, None]).astype(np.float32)
        g["azimuthAngle"] = np.broadcast_to(az0[None], shape3).astype(np.float32)
        r = f.create_group("science/radarMetaData")
        r["wavelength"] = float(synth.attrs["WAVELENGTH"])
        r["centerFrequency"] = 299_792_458.0 / float(synth.attrs["WAVELENGTH"])
        r["slantRangeSpacing"] = _radar.S1_RANGE_PIXEL
        start = float(synth.slant_range_distance.min()) - 20_000.0
        r["slantRangeStart"], r["slantRangeEnd"] = start, start + 250_000.0
        r["missionID"] = np.bytes_("S1")
        r["productType"] = np.bytes_("UNW GEO IFG")
        if version.startswith("3"):
            for role, date in (("reference", d2), ("secondary", d1)):
                s = r.create_group(f"inputSLC/{role}")
                s["L1InputGranules"] = np.bytes_(f"S1A_IW_SLC__1SDV_{date}T003553_{date}T003620_027000_030B2C_ABCD")
                s["orbitType"] = np.bytes_("POEORB")
                mid = _radar.sensing_mid(synth, synth.dates[synth.date_list.index(date)])
                s["azimuthZeroDopplerMidTime"] = np.bytes_(mid.strftime("%Y-%m-%dT%H:%M:%S.%f"))


def product_name(synth, k: int, version: str = "3") -> str:
    d1, d2 = _radar.pair_names(synth)[k]
    lat0, lon0 = _radar.scene_centre(synth)
    direction = synth.attrs["ORBIT_DIRECTION"][0]
    tag = "v3_0_1" if version.startswith("3") else "v2_0_5"
    hhmmss = _radar.sensing_mid(synth, synth.dates[synth.date_list.index(d2)]).strftime("%H%M%S")
    return (f"S1-GUNW-{direction}-R-143-tops-{d2}_{d1}-{hhmmss}-{abs(lon0) * 1000:05.0f}W_{lat0 * 1000:05.0f}N"
            f"-PP-{k:04x}-{tag}.nc")


def write(root: Path, synth, version: str = "3") -> Path:
    root = Path(root)
    for k in range(synth.num_pair):
        write_product(root / "products" / product_name(synth, k, version), synth, k, version)
    write_envi(root / "DEM" / "glo_90.dem", synth.height.astype(np.float32), synth)
    write_envi(root / "mask" / "watermask.msk", synth.water_mask.astype(np.uint8), synth)
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    template = work / "aria_gunw.cfg"
    template.write_text(
        "mintpy.load.processor     = aria\n"
        "mintpy.load.unwFile       = ../products/S1-GUNW-*.nc\n"
        "mintpy.load.demFile       = ../DEM/glo_90.dem\n"
        "mintpy.load.waterMaskFile = ../mask/watermask.msk\n")
    return template
