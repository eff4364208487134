"""The ``data.rsc`` MintPy's ``prep_isce.py`` writes beside an ISCE2 stack's reference metadata.

MintPy reads an ISCE2 stack's common metadata with ISCE itself (``import isce``: the ProductManager
for ``reference/IW*.xml``, the pickled ``Frame`` in the stripmapStack shelve, and ISCE's orbit
interpolation), which is not installable from PyPI.  It writes what it derives to
``reference/data.rsc`` (topsStack) or ``referenceShelve/data.rsc`` (stripmapStack) and, on the next
run, reads that file instead (``extract_isce_metadata`` skips the extraction when the .rsc is newer
than the metadata file).  A stack that has been through MintPy once therefore has it, and the
oracle tests give MintPy that file.

It is made here the way ``mintpy.utils.isce_utils.extract_isce_metadata`` makes it, with the one
part that needs ISCE replaced by its known answer:

- what ISCE's classes hand over unchanged (PRF, wavelength, starting range, pass direction,
  polarization, track/orbit numbers, burst and sensing times, pixel sizes, antenna length, chirp)
  is read from the fixture's own files: the swath XML (topsStack) or the shelve (stripmapStack,
  unpickled with the fixture's stand-in classes);
- what ISCE computes from the orbit at mid-scene (ENU heading, altitude, along-heading radius of
  curvature, speed) is the fixture's analytic orbit truth (``formats/_radar.orbit_truth``: a
  circular arc built to have exactly those values there);
- the rest runs in MintPy's interpreter with MintPy's own functions: ``extract_geometry_metadata``
  (ALOOKS/RLOOKS from ``*.full.xml``, pixel sizes × looks, LAT/LON_REF from lat/lon.rdr,
  CENTER_INCIDENCE_ANGLE), ``standardize_sensor_name``, the sensor resolution table,
  ``standardize_metadata`` and ``write_roipac_rsc``.

So the metadata MintPy loads is MintPy's except for five orbit numbers, which are exact.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shelve
import xml.etree.ElementTree as ET
from pathlib import Path

from formats import _radar

_FINISH = r"""
import json
from mintpy.objects import sensor
from mintpy.utils import isce_utils, readfile, writefile
meta, geom_dir, rsc_file, iw = json.loads(ARGS)
meta['PLATFORM'] = sensor.standardize_sensor_name(meta.pop('spacecraft'))
if iw:
    meta['azimuthResolution'] = sensor.SENSOR_DICT['sen'][iw]['azimuth_resolution']
    meta['rangeResolution'] = sensor.SENSOR_DICT['sen'][iw]['range_resolution']
meta = isce_utils.extract_geometry_metadata(geom_dir, meta)
meta['PROCESSOR'] = 'isce'
meta.setdefault('ANTENNA_SIDE', '-1')
meta = readfile.standardize_metadata({k: str(v) for k, v in meta.items()})
writefile.write_roipac_rsc(meta, rsc_file)
"""


def _seconds(t: dt.datetime) -> float:
    """CENTER_LINE_UTC as MintPy takes it from ISCE: hour, minute and the *integer* second."""
    return t.hour * 3600.0 + t.minute * 60.0 + t.second


def _props(elem) -> dict[str, str]:
    return {p.get("name"): p.find("value").text.strip() for p in elem.findall("property")}


def _time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")


def _orbit(synth) -> dict:
    truth = _radar.orbit_truth(synth)
    return {"HEADING": truth["HEADING"], "earthRadius": truth["EARTH_RADIUS"], "altitude": truth["HEIGHT"],
            "satelliteSpeed": truth["speed"]}


def tops_metadata(meta_file: Path, synth) -> tuple[dict, str]:
    """``extract_tops_metadata``'s dict for ``reference/IW1.xml`` (before the geometry step)."""
    root = ET.parse(meta_file).getroot().find("component")
    top = _props(root)
    bursts = [_props(b) for b in root.find("component[@name='bursts']").findall("component")]
    first, last = bursts[0], bursts[-1]
    start, stop = _time(first["sensingstart"]), _time(first["sensingstop"])
    mid = start + (stop - start) / 2  # ISCE's BurstSLC.sensingMid
    swaths = sorted(int(_props(ET.parse(f).getroot().find("component").find("component[@name='bursts']")
                                      .find("component"))["swathnumber"])
                    for f in meta_file.parent.glob("IW*.xml"))
    node = _time(top["ascendingnodetime"])
    meta = {
        "prf": float(first["prf"]), "startUTC": str(_time(first["burststartutc"])),
        "stopUTC": str(_time(last["burststoputc"])), "radarWavelength": float(first["radarwavelength"]),
        "startingRange": float(first["startingrange"]), "passDirection": first["passdirection"],
        "polarization": first["polarization"], "trackNumber": int(first["tracknumber"]),
        "orbitNumber": int(first["orbitnumber"]), "spacecraft": top["spacecraftname"],
        "CENTER_LINE_UTC": _seconds(mid), **_orbit(synth),
        "rangePixelSize": float(first["rangepixelsize"]), "beam_mode": "IW",
        "swathNumber": "".join(map(str, swaths)) if len(swaths) > 1 else int(first["swathnumber"]),
        "firstFrameNumber": int(0.2 * (_time(first["burststartutc"]) - node).total_seconds()),
        "lastFrameNumber": int(0.2 * (_time(last["burststoputc"]) - node).total_seconds()),
    }
    meta["azimuthPixelSize"] = meta["satelliteSpeed"] * float(first["azimuthtimeinterval"])
    return meta, meta_file.stem


def stripmap_metadata(meta_file: Path, synth) -> tuple[dict, None]:
    """``extract_stripmap_metadata``'s dict for ``referenceShelve/data.dat``."""
    import dbm.dumb

    from formats.isce_stripmap import _isce_stand_ins

    with _isce_stand_ins(), shelve.Shelf(dbm.dumb.open(str(meta_file.with_suffix("")), "r")) as db:
        frame = db["frame"]
    radar, platform = frame._instrument, frame._instrument._platform
    meta = {
        "prf": radar.PRF, "startUTC": str(frame._sensingStart), "stopUTC": str(frame._sensingStop),
        "radarWavelength": radar.radarWavelength, "startingRange": frame._startingRange,
        "trackNumber": frame._trackNumber, "orbitNumber": frame.orbitNumber, "spacecraft": platform.spacecraftName,
        "polarization": str(frame._polarization).replace("/", ""), "CENTER_LINE_UTC": _seconds(frame._sensingMid),
        **_orbit(synth), "azimuthResolution": platform.antennaLength / 2.0,
        "rangeResolution": abs(299_792_458.0 / (2.0 * radar.pulseLength * radar.chirpSlope)),
        "rangePixelSize": radar.rangePixelSize, "beam_mode": "SM",
    }
    meta["azimuthPixelSize"] = meta["satelliteSpeed"] / radar.PRF
    return meta, None


def write_data_rsc(oracle, meta_file: Path, geom_dir: Path, synth) -> Path:
    """Write ``data.rsc`` beside ``meta_file`` as MintPy's first prep_isce run would have."""
    meta_file = Path(meta_file)
    meta, iw = (tops_metadata if meta_file.suffix == ".xml" else stripmap_metadata)(meta_file, synth)
    assert all(math.isfinite(v) for v in meta.values() if isinstance(v, float))
    rsc = meta_file.parent / "data.rsc"
    args = json.dumps([meta, str(geom_dir), str(rsc), iw])
    oracle.python(f"ARGS = {args!r}\n" + _FINISH)
    return rsc
