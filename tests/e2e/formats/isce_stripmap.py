"""ISCE2 stripmapStack work folder (``stackStripMap.py``), as MintPy's stripmapStack template reads it.

Layout::

    merged/SLC/<ref>/referenceShelve/data.{dat,dir,bak}  the reference Frame, a Python shelve
                                                   (dbm.dumb) holding the pickled ISCE Frame under 'frame'
    baselines/<ref>_<sec>.txt                      "PERP_BASELINE_BOTTOM v" / "PERP_BASELINE_TOP v"
    Igrams/<d1>_<d2>/filt_<d1>_<d2>.unw(.xml)      2-band BIL float32 (amplitude, phase)
    Igrams/<d1>_<d2>/filt_<d1>_<d2>.cor(.xml)      1-band float32
    Igrams/<d1>_<d2>/filt_<d1>_<d2>.unw.conncomp   1-band BYTE
    geom_reference/{hgt,lat,lon,los,waterMask}.rdr (+ hgt.rdr.full.xml)

The shelve's Frame is pickled from stand-in classes registered under ISCE's module and class names
(``isceobj.Scene.Frame.Frame``, ``isceobj.Radar.Radar.Radar``, ``isceobj.Platform.Platform.Platform``,
``isceobj.Orbit.Orbit.Orbit`` / ``StateVector``) whose attributes carry ISCE's parameter attribute
names (Frame ``_sensingStart/_sensingMid/_sensingStop/_startingRange/_polarization/_passDirection/
_trackNumber/orbitNumber/_instrument/_orbit``; Radar ``PRF/radarWavelength/rangePixelSize/pulseLength/
chirpSlope/_platform``; Platform ``spacecraftName/antennaLength``; StateVector ``_time/_position/
_velocity``), as ISCE's pickling keeps them (``__getstate__`` is the instance dict).  What cannot be
checked without ISCE: the container ISCE uses for the orbit's state vectors (a plain list here).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import pickle
import shelve
import sys
import types
from pathlib import Path

from sbts.tests.e2e.formats import _radar
from sbts.tests.e2e.formats.isce_tops import write_geometry, write_interferograms

GEOCODED = False
_CLASSES = {"isceobj.Scene.Frame": "Frame", "isceobj.Radar.Radar": "Radar", "isceobj.Platform.Platform": "Platform",
            "isceobj.Orbit.Orbit": ("Orbit", "StateVector")}


@contextlib.contextmanager
def _isce_stand_ins():
    """Plain classes registered as ISCE's, so that pickle records ISCE's module/class names."""
    added, classes = [], {}
    for module, names in _CLASSES.items():
        parts = module.split(".")
        for i in range(1, len(parts) + 1):  # pickle imports the parent packages too
            name = ".".join(parts[:i])
            if name not in sys.modules:
                sys.modules[name] = types.ModuleType(name)
                added.append(name)
        mod = sys.modules[module]
        for name in (names if isinstance(names, tuple) else (names,)):
            cls = type(name, (), {"__module__": module})
            setattr(mod, name, cls)
            classes[name] = cls
    try:
        yield classes
    finally:
        for module in added:
            del sys.modules[module]


def _obj(cls, **attrs):
    o = cls.__new__(cls)
    o.__dict__.update(attrs)
    return o


def write_shelve(folder: Path, synth, date: dt.date, near_range: float) -> Path:
    mid = _radar.sensing_mid(synth, date)
    half = dt.timedelta(seconds=7.5)
    folder.mkdir(parents=True, exist_ok=True)
    with _isce_stand_ins() as c:
        svs = [_obj(c["StateVector"], _time=t, _position=[float(x) for x in p], _velocity=[float(x) for x in v])
               for t, p, v in _radar.orbit_state_vectors(synth, mid)]
        orbit = _obj(c["Orbit"], _stateVectors=svs, _orbitQuality="precise", _orbitSource="PRC",
                     _referenceFrame="ECR", _minTime=svs[0]._time, _maxTime=svs[-1]._time)
        platform = _obj(c["Platform"], spacecraftName="ERS2", antennaLength=10.0, mission="ERS2", pointingDirection=-1)
        prf = 1679.9
        radar = _obj(c["Radar"], PRF=prf, radarWavelength=float(synth.attrs["WAVELENGTH"]),
                     rangePixelSize=7.9048, pulseLength=3.71e-5, chirpSlope=4.1779e11, rangeSamplingRate=18.962e6,
                     _platform=platform)
        frame = _obj(c["Frame"], _sensingStart=mid - half, _sensingMid=mid, _sensingStop=mid + half,
                     _startingRange=near_range, _farRange=near_range + 100_000.0,
                     _polarization=synth.attrs.get("POLARIZATION", "VV"),
                     _passDirection=synth.attrs["ORBIT_DIRECTION"], _trackNumber=27, orbitNumber=40123,
                     _frameNumber=2925, _numberOfLines=27000, _numberOfSamples=5000, _instrument=radar, _orbit=orbit)
        import dbm.dumb

        with shelve.Shelf(dbm.dumb.open(str(folder / "data"), "n"), protocol=pickle.DEFAULT_PROTOCOL) as db:
            db["frame"] = frame
    return folder / "data.dat"


def azimuth_pixel(synth) -> float:
    """Single-look azimuth pixel: Earth-fixed speed / PRF (what MintPy takes for stripmapStack)."""
    return _radar.SPEED / 1679.9


def write(root: Path, synth) -> Path:
    root = Path(root)
    ref = _radar.reference_index(synth)
    dates = synth.date_list
    near = float(synth.slant_range_distance[:, 0].mean())
    write_shelve(root / "merged" / "SLC" / dates[ref] / "referenceShelve", synth, synth.dates[ref], near)
    for k, d in enumerate(dates):
        if k == ref:
            continue
        b = float(synth.bperp[k] - synth.bperp[ref])
        (root / "baselines").mkdir(parents=True, exist_ok=True)
        (root / "baselines" / f"{dates[ref]}_{d}.txt").write_text(
            f"PERP_BASELINE_BOTTOM {b - 0.02}\nPERP_BASELINE_TOP {b + 0.02}\n")
    write_interferograms(root / "Igrams", synth, name="filt", ifg_dir=lambda d1, d2: f"{d1}_{d2}")
    for folder in (root / "Igrams").iterdir():  # stripmapStack names the files after the pair
        for f in folder.iterdir():
            f.rename(f.with_name(f.name.replace("filt.", f"filt_{folder.name}.")))
        for f in folder.glob("*.xml"):
            f.write_text(f.read_text().replace("filt.", f"filt_{folder.name}."))
        for f in folder.glob("*.vrt"):
            f.write_text(f.read_text().replace(">filt.", f">filt_{folder.name}."))
    slant_step = float(abs(synth.slant_range_distance[:, 1:] - synth.slant_range_distance[:, :-1]).mean())
    az_ground, _ = _radar.ground_spacing(synth)
    looks = (max(1, round(az_ground / azimuth_pixel(synth))), max(1, round(slant_step / 7.9048)))
    write_geometry(root / "geom_reference", synth, looks, shadow=False)
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    template = work / "isce_stripmap.cfg"
    template.write_text(
        "mintpy.load.processor     = isce\n"
        "mintpy.load.metaFile      = ../merged/SLC/*/referenceShelve/data.dat\n"
        "mintpy.load.baselineDir   = ../baselines\n"
        "mintpy.load.unwFile       = ../Igrams/*/filt_*.unw\n"
        "mintpy.load.corFile       = ../Igrams/*/filt_*.cor\n"
        "mintpy.load.connCompFile  = ../Igrams/*/filt_*.unw.conncomp\n"
        "mintpy.load.demFile       = ../geom_reference/hgt.rdr\n"
        "mintpy.load.lookupYFile   = ../geom_reference/lat.rdr\n"
        "mintpy.load.lookupXFile   = ../geom_reference/lon.rdr\n"
        "mintpy.load.incAngleFile  = ../geom_reference/los.rdr\n"
        "mintpy.load.azAngleFile   = ../geom_reference/los.rdr\n"
        "mintpy.load.waterMaskFile = ../geom_reference/waterMask.rdr\n")
    return template
