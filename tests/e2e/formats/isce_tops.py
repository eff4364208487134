"""ISCE2 topsStack work folder, as ``stackSentinel.py`` runs leave it for MintPy.

Layout (topsStack, what MintPy's ``prep_isce.py`` and its topsStack template read)::

    reference/IW1.xml, IW2.xml          swath products (TOPSSwathSLCProduct dumps: spacecraftname,
                                        mission, ascendingnodetime, numberofbursts, bursts/burstN
                                        with startingrange, rangepixelsize, azimuthtimeinterval, prf,
                                        radarwavelength, polarization, passdirection, sensingstart/stop,
                                        burststartutc/burststoputc, and the orbit's state vectors)
    baselines/<ref>_<sec>/<ref>_<sec>.txt   "swath: IWn / Bperp (average): / Bpar (average):" per swath
    merged/interferograms/<d1>_<d2>/filt_fine.unw(.xml/.vrt)   2-band BIL float32: amplitude, phase
    merged/interferograms/<d1>_<d2>/filt_fine.cor               1-band float32 coherence
    merged/interferograms/<d1>_<d2>/filt_fine.unw.conncomp      1-band BYTE components (0 = none)
    merged/geom_reference/{hgt,lat,lon}.rdr (float64), los.rdr (2-band float32: incidence, azimuth),
        shadowMask.rdr (BYTE, 1 = shadow), waterMask.rdr (BYTE, 1 = land), hgt.rdr.full.xml
        (the full-resolution size: ALOOKS/RLOOKS as MintPy derives them)

The image XMLs are ISCE's ``<imageFile>`` dumps (written by ``tests/fixtures/isce_topsstack.py``).
What cannot be checked against a real dump: the element names of the orbit's state-vector sequence
inside ``bursts/burstN/orbit`` (each state vector is a component with ``time``, ``position`` and
``velocity`` properties here).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fixtures.isce_topsstack import write_isce_image  # noqa: E402

from sbts.tests.e2e.formats import _radar  # noqa: E402

GEOCODED = False


def _prop(name, value, indent=12):
    pad = " " * indent
    return f'{pad}<property name="{name}">\n{pad}    <value>{value}</value>\n{pad}</property>\n'


def _vec(v):
    return "[" + ", ".join(repr(float(x)) for x in v) + "]"


def write_swath_xml(path: Path, synth, swath: int, starting_range: float, date: dt.date,
                    spacecraft: str = "Sentinel-1A", num_bursts: int = 3) -> None:
    """``reference/IW<swath>.xml``: swath product with bursts and the orbit state vectors."""
    mid = _radar.sensing_mid(synth, date)
    burst_len = dt.timedelta(seconds=2.758277)
    # MintPy takes the orbit at the first burst's mid time: the orbit's reference state is there
    first = mid - dt.timedelta(seconds=1500 * _radar.S1_AZIMUTH_TIME / 2)
    orbit = _radar.orbit_state_vectors(synth, mid)
    direction = synth.attrs["ORBIT_DIRECTION"]
    svs = "".join(
        f'                <component name="statevector{k + 1}">\n'
        + _prop("time", t.strftime("%Y-%m-%d %H:%M:%S.%f"), 20) + _prop("position", _vec(p), 20)
        + _prop("velocity", _vec(v), 20) + "                </component>\n"
        for k, (t, p, v) in enumerate(orbit))
    bursts = []
    for b in range(num_bursts):
        start = first + burst_len * b
        stop = start + dt.timedelta(seconds=1500 * _radar.S1_AZIMUTH_TIME)
        bursts.append(
            f'        <component name="burst{b + 1}">\n'
            + _prop("numberoflines", 1500) + _prop("numberofsamples", 21000)
            + _prop("startingrange", repr(starting_range))
            + _prop("sensingstart", start.strftime("%Y-%m-%d %H:%M:%S.%f"))
            + _prop("sensingstop", stop.strftime("%Y-%m-%d %H:%M:%S.%f"))
            + _prop("burststartutc", start.strftime("%Y-%m-%d %H:%M:%S.%f"))
            + _prop("burststoputc", (start + burst_len).strftime("%Y-%m-%d %H:%M:%S.%f"))
            + _prop("tracknumber", 143) + _prop("framenumber", 1) + _prop("orbitnumber", 25847)
            + _prop("swathnumber", swath) + _prop("burstnumber", b + 1)
            + _prop("rangepixelsize", _radar.S1_RANGE_PIXEL)
            + _prop("azimuthtimeinterval", _radar.S1_AZIMUTH_TIME)
            + _prop("passdirection", direction) + _prop("azimuthsteeringrate", 0.0276)
            + _prop("radarwavelength", synth.attrs["WAVELENGTH"]) + _prop("prf", _radar.S1_PRF)
            + _prop("polarization", synth.attrs.get("POLARIZATION", "VV")) + _prop("terrainheight", 250.0)
            + '            <component name="orbit">\n'
            + _prop("orbitquality", "precise", 16) + _prop("orbitsource", "S1A_OPER_AUX_POEORB", 16)
            + _prop("orbitreferenceframe", "ECR", 16)
            + '            <component name="statevectors">\n' + svs + "            </component>\n"
            + "            </component>\n        </component>\n")
    text = ("<productmanager_name>\n"
            '    <component name="instance">\n'
            '        <factorymodule>isceobj.Sensor.TOPS</factorymodule>\n'
            '        <factoryname>createTOPSSwathSLCProduct</factoryname>\n'
            + _prop("imagingmode", "TOPS", 8) + _prop("folder", f"reference/IW{swath}", 8)
            + _prop("spacecraftname", spacecraft, 8) + _prop("mission", "S1A", 8)
            + _prop("ascendingnodetime", (mid - dt.timedelta(minutes=17)).strftime("%Y-%m-%d %H:%M:%S.%f"), 8)
            + _prop("numberofbursts", num_bursts, 8)
            + '        <component name="bursts">\n' + "".join(bursts) + "        </component>\n"
            "    </component>\n</productmanager_name>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_geometry(folder: Path, synth, looks: tuple[int, int], shadow: bool = True) -> None:
    lat, lon = _radar.lookup_latlon(synth)
    write_isce_image(folder / "hgt.rdr", [synth.height.astype(np.float64)])
    write_isce_image(folder / "lat.rdr", [lat])
    write_isce_image(folder / "lon.rdr", [lon])
    write_isce_image(folder / "los.rdr", [synth.incidence_angle.astype(np.float32),
                                           synth.azimuth_angle.astype(np.float32)])
    if shadow:
        write_isce_image(folder / "shadowMask.rdr", [synth.shadow_mask.astype(np.uint8)])
    write_isce_image(folder / "waterMask.rdr", [synth.water_mask.astype(np.uint8)])
    # the full-resolution geometry: MintPy (and sbts) take ALOOKS/RLOOKS from its size
    length, width = synth.shape
    full = folder / "hgt.rdr.full"
    write_isce_image(full, [np.zeros((1, 1), np.float64)])
    xml = full.with_name(full.name + ".xml")
    xml.write_text(_resized_xml(xml.read_text(), length * looks[0], width * looks[1]))
    full.unlink()  # only the descriptor is needed (the real one is ALOOKS x RLOOKS times larger)
    full.with_name(full.name + ".vrt").unlink()


def _resized_xml(text: str, length: int, width: int) -> str:
    """An ISCE image XML of a 1x1 raster rewritten for length x width (coordinate1 = width)."""
    import re

    text = re.sub(r'(<property name="width">\s*<value>)1(</value>)', rf"\g<1>{width}\2", text)
    text = re.sub(r'(<property name="length">\s*<value>)1(</value>)', rf"\g<1>{length}\2", text)
    text = re.sub(r'(<property name="xmax">\s*<value>)1.0(</value>)', rf"\g<1>{float(width)}\2", text)
    sizes = iter((width, length))
    return re.sub(r'(<property name="size">\s*<value>)1(</value>)', lambda m: f"{m.group(1)}{next(sizes)}{m.group(2)}",
                  text)


def write_interferograms(folder: Path, synth, name: str = "filt_fine", ifg_dir=lambda d1, d2: f"{d1}_{d2}") -> None:
    rng = np.random.default_rng(7)
    for k, (d1, d2) in enumerate(_radar.pair_names(synth)):
        out = folder / ifg_dir(d1, d2)
        amp = rng.uniform(0.5, 2.0, synth.shape).astype(np.float32)
        write_isce_image(out / f"{name}.unw", [amp, synth.unwrap_phase[k]])
        write_isce_image(out / f"{name}.cor", [synth.coherence[k].astype(np.float32)])
        write_isce_image(out / f"{name}.unw.conncomp", [synth.conn_comp[k].astype(np.uint8)])


def write(root: Path, synth) -> Path:
    root = Path(root)
    looks = _radar.radar_looks(synth)
    ref = _radar.reference_index(synth)
    ref_date = synth.dates[ref]
    near = float(synth.slant_range_distance[:, 0].mean())
    # the merged image starts in IW1; IW2 starts further out
    write_swath_xml(root / "reference" / "IW1.xml", synth, 1, near, ref_date)
    write_swath_xml(root / "reference" / "IW2.xml", synth, 2, near + 55_000.0, ref_date)
    dates = synth.date_list
    for k, d in enumerate(dates):
        if k == ref:
            continue
        b = float(synth.bperp[k] - synth.bperp[ref])
        txt = "".join(f"swath: IW{s}\nBperp (average): {b + 0.01 * (s - 1.5)}\nBpar (average): {b / 3}\n"
                      for s in (1, 2))
        f = root / "baselines" / f"{dates[ref]}_{d}" / f"{dates[ref]}_{d}.txt"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(txt)
    write_interferograms(root / "merged" / "interferograms", synth)
    write_geometry(root / "merged" / "geom_reference", synth, looks)
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    template = work / "isce_tops.cfg"
    template.write_text(
        "mintpy.load.processor      = isce\n"
        "mintpy.load.metaFile       = ../reference/IW*.xml\n"
        "mintpy.load.baselineDir    = ../baselines\n"
        "mintpy.load.unwFile        = ../merged/interferograms/*/filt_fine.unw\n"
        "mintpy.load.corFile        = ../merged/interferograms/*/filt_fine.cor\n"
        "mintpy.load.connCompFile   = ../merged/interferograms/*/filt_fine.unw.conncomp\n"
        "mintpy.load.demFile        = ../merged/geom_reference/hgt.rdr\n"
        "mintpy.load.lookupYFile    = ../merged/geom_reference/lat.rdr\n"
        "mintpy.load.lookupXFile    = ../merged/geom_reference/lon.rdr\n"
        "mintpy.load.incAngleFile   = ../merged/geom_reference/los.rdr\n"
        "mintpy.load.azAngleFile    = ../merged/geom_reference/los.rdr\n"
        "mintpy.load.shadowMaskFile = ../merged/geom_reference/shadowMask.rdr\n"
        "mintpy.load.waterMaskFile  = ../merged/geom_reference/waterMask.rdr\n")
    return template
