"""ARIA-tools ``ariaTSsetup.py`` work folder: per-pair rasters and the stack VRTs MintPy loads.

Layout (ARIA-tools time-series setup, as MintPy's ARIA template reads it)::

    unwrappedPhase/<ref>_<sec>(.vrt)      per-pair float32, no-data 0 (ENVI + VRT)
    coherence/<ref>_<sec>(.vrt)           float32, no-data 0
    connectedComponents/<ref>_<sec>(.vrt) int16, no-data -1
    stack/unwrapStack.vrt, cohStack.vrt, connCompStack.vrt
                                           one VRTRasterBand per pair, its <Metadata domain="unwrappedPhase"
                                           | "Coherence" | "connectedComponents"> holding Dates,
                                           "Wavelength (m)", "UTCTime (HH:MM:SS.ss)", perpendicularBaseline,
                                           incidenceAngle, lookAngle, azimuthAngle, startRange, endRange,
                                           slantRangeSpacing, orbitDirection
    incidenceAngle/<ref>_<sec>.vrt, azimuthAngle/<ref>_<sec>.vrt   degrees; azimuth of the
                                           target-to-sensor vector from east, anticlockwise
    DEM/glo_90.dem(.vrt)                    float32 heights
    mask/watermask.msk(.vrt)               uint8, 1 = land

Conventions (ARIA-tools README: "ReferenceDate_SecondaryDate", reference = the more recent pass):
pairs are named later_earlier, so the stored phase and perpendicular baseline are those of
(earlier → later) with the sign changed; MintPy's prep_aria.py negates both when loading.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sbts.tests.e2e.formats import _radar

GEOCODED = True


def _geotransform(synth):
    a = synth.attrs
    return (float(a["X_FIRST"]), float(a["X_STEP"]), 0.0, float(a["Y_FIRST"]), 0.0, float(a["Y_STEP"]))


def write_envi(path: Path, data: np.ndarray, synth, nodata=None) -> Path:
    """A GDAL ENVI raster on the stack's grid plus ``<path>.vrt`` (as ARIA-tools leaves them)."""
    from osgeo import gdal, osr

    gdal.UseExceptions()
    path.parent.mkdir(parents=True, exist_ok=True)
    types = {"float32": gdal.GDT_Float32, "int16": gdal.GDT_Int16, "uint8": gdal.GDT_Byte}
    ds = gdal.GetDriverByName("ENVI").Create(str(path), data.shape[1], data.shape[0], 1, types[data.dtype.name])
    ds.SetGeoTransform(_geotransform(synth))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    band.WriteArray(data)
    ds = None
    gdal.Translate(str(path) + ".vrt", str(path), format="VRT")
    return path


def band_metadata(synth, ref: str, sec: str, bperp: float) -> dict[str, str]:
    """Per-pair metadata ARIA-tools copies from the GUNW product into each stack band."""
    inc = float(np.mean(synth.incidence_angle))
    az = float(np.mean(synth.azimuth_angle)) + 90.0  # ARIA: from east
    start = float(synth.slant_range_distance.min()) - 20_000.0  # the full GUNW swath starts nearer
    # the reference (later) acquisition's mid-scene time, as in the GUNW products the stack is made of
    mid = _radar.sensing_mid(synth, synth.dates[synth.date_list.index(ref)])
    return {"Dates": f"{ref}_{sec}", "Wavelength (m)": synth.attrs["WAVELENGTH"],
            "UTCTime (HH:MM:SS.ss)": mid.strftime("%H:%M:%S.%f"), "perpendicularBaseline": repr(bperp),
            "incidenceAngle": repr(inc), "lookAngle": repr(inc - 4.4), "azimuthAngle": repr(az),
            "startRange": repr(start), "endRange": repr(start + 250_000.0),
            "slantRangeSpacing": repr(_radar.S1_RANGE_PIXEL), "orbitDirection": synth.attrs["ORBIT_DIRECTION"]}


def write_stack_vrt(path: Path, files: list[Path], domain: str, dtype: str, synth, metas: list[dict]) -> None:
    from osgeo import gdal

    ds = gdal.Open(str(files[0]))
    gt, proj = ds.GetGeoTransform(), ds.GetProjection()
    length, width = synth.shape
    out = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{length}">\n    <SRS>{proj}</SRS>\n'
           f'    <GeoTransform>{", ".join(repr(v) for v in gt)}</GeoTransform>\n']
    for k, (f, meta) in enumerate(zip(files, metas)):
        rel = Path("..") / f.parent.name / f.name
        mdi = "".join(f'            <MDI key="{key}">{value}</MDI>\n' for key, value in meta.items())
        out.append(f'''    <VRTRasterBand dataType="{dtype}" band="{k + 1}">
        <SimpleSource>
            <SourceFilename relativeToVRT="1">{rel}</SourceFilename>
            <SourceBand>1</SourceBand>
            <SourceProperties RasterXSize="{width}" RasterYSize="{length}" DataType="{dtype}"/>
            <SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{length}"/>
            <DstRect xOff="0" yOff="0" xSize="{width}" ySize="{length}"/>
        </SimpleSource>
        <Metadata domain="{domain}">
{mdi}        </Metadata>
    </VRTRasterBand>
''')
    out.append("</VRTDataset>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(out))


def write(root: Path, synth) -> Path:
    root = Path(root)
    unw, coh, cc, metas = [], [], [], []
    pair_bperp = synth.pair_bperp
    # ariaTSsetup lists the pairs in file-name order (later date first)
    order = sorted(range(synth.num_pair), key=lambda k: _radar.pair_names(synth)[k][::-1])
    for k in order:
        d1, d2 = _radar.pair_names(synth)[k]
        name = f"{d2}_{d1}"
        phase = -synth.unwrap_phase[k]  # later_earlier: the sign changes
        unw.append(Path(str(write_envi(root / "unwrappedPhase" / name, phase, synth, nodata=0.0)) + ".vrt"))
        coh.append(Path(str(write_envi(root / "coherence" / name, synth.coherence[k], synth, nodata=0.0)) + ".vrt"))
        comp = synth.conn_comp[k].astype(np.int16)
        cc.append(Path(str(write_envi(root / "connectedComponents" / name, comp, synth, nodata=-1)) + ".vrt"))
        metas.append(band_metadata(synth, d2, d1, -float(pair_bperp[k])))
    write_stack_vrt(root / "stack" / "unwrapStack.vrt", unw, "unwrappedPhase", "Float32", synth, metas)
    write_stack_vrt(root / "stack" / "cohStack.vrt", coh, "Coherence", "Float32", synth, metas)
    write_stack_vrt(root / "stack" / "connCompStack.vrt", cc, "connectedComponents", "Int16", synth, metas)
    first = f"{_radar.pair_names(synth)[order[0]][1]}_{_radar.pair_names(synth)[order[0]][0]}"
    write_envi(root / "incidenceAngle" / first, synth.incidence_angle.astype(np.float32), synth)
    aria_az = (synth.azimuth_angle + 90.0).astype(np.float32)
    write_envi(root / "azimuthAngle" / first, aria_az, synth)
    write_envi(root / "DEM" / "glo_90.dem", synth.height.astype(np.float32), synth)
    write_envi(root / "mask" / "watermask.msk", synth.water_mask.astype(np.uint8), synth)
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    template = work / "aria_vrt.cfg"
    template.write_text(
        "mintpy.load.processor     = aria\n"
        "mintpy.load.unwFile       = ../stack/unwrapStack.vrt\n"
        "mintpy.load.corFile       = ../stack/cohStack.vrt\n"
        "mintpy.load.connCompFile  = ../stack/connCompStack.vrt\n"
        "mintpy.load.demFile       = ../DEM/*.dem\n"
        "mintpy.load.incAngleFile  = ../incidenceAngle/*.vrt\n"
        "mintpy.load.azAngleFile   = ../azimuthAngle/*.vrt\n"
        "mintpy.load.waterMaskFile = ../mask/watermask.msk\n")
    return template


def list_without(root: Path, date: str):
    """Rewrite the stack VRTs under ``root/stack`` without the bands of the pairs with ``date``, as
    ariaTSsetup wrote them before that acquisition (its per-pair files stay where they are, unlisted).

    Returns a function that writes them back as they were (ariaTSsetup run again after the
    acquisition: every stack VRT rewritten, the old bands unchanged, the new ones added)."""
    import xml.etree.ElementTree as ET

    texts = {p: p.read_text() for p in sorted((Path(root) / "stack").glob("*.vrt"))}
    for path, text in texts.items():
        tree = ET.ElementTree(ET.fromstring(text))
        ds = tree.getroot()
        bands = ds.findall("VRTRasterBand")
        for band in bands:
            if any(date in (mdi.text or "") for mdi in band.iter("MDI") if mdi.get("key") == "Dates"):
                ds.remove(band)
        for k, band in enumerate(ds.findall("VRTRasterBand")):
            band.set("band", str(k + 1))
        assert len(ds.findall("VRTRasterBand")) < len(bands), f"{path}: no band of {date}"
        tree.write(path, encoding="unicode")

    def restore() -> None:
        for p, t in texts.items():
            p.write_text(t)

    return restore
