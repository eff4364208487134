"""One PLATFORM vocabulary: MintPy's sensor names, from any spelling a processor or a file name uses.

MintPy names sensors by short lower-case keys (``sen``, ``env``, ``ers``, ``alos``, ``alos2``, ``csk``,
``tsx``, ``rs1``, ``rs2``, ...; ``mintpy.objects.sensor``) and matches a processor's spelling by
lower-casing it and dropping ``-`` and ``_`` (``Sentinel-1A`` → ``sentinel1a`` → ``sen``).  Every sbts
reader writes ``PLATFORM`` in that vocabulary, so the Envisat LOD switch (``PLATFORM`` starting with
``env``), the HDF-EOS5 mission code and MintPy's own tools see the same value whatever the processor.

A template named after the project (MintPy's ``<Region><Sensor><A|D><track>`` convention:
``SydneyEnvD123.txt``, ``FernandinaSenDT128.template``) names the sensor too: MintPy takes PLATFORM
and PROJECT_NAME from it when the files do not say; :func:`from_project_name` does the same.
"""

from __future__ import annotations

import os
import re

# key → spellings (after lower-casing and removing '-' and '_')
_VARIANTS: dict[str, tuple[str, ...]] = {
    "alos": ("alos", "alos1", "palsar", "palsar1"),
    "alos2": ("alos2", "palsar2"),
    "alos4": ("alos4", "palsar3"),
    "bio": ("bio", "biomass"),
    "csk": ("csk", "csk1", "csk2", "csk3", "csk4", "cos", "cosmo", "cosmoskymed"),
    "env": ("env", "envisat", "asar"),
    "ers": ("ers", "ers1", "ers2", "ers12"),
    "gf3": ("gf3", "gfen3", "gaofen3", "g3", "gaofen"),
    "hj1c": ("hj1c", "hj1", "huanjing1c"),
    "jers": ("jers", "jers1"),
    "ksat5": ("ksat5", "kompsat5", "kompsat", "kmps5"),
    "lt1": ("lt1", "lt", "lutan", "lutan1"),
    "ni": ("ni", "nisar"),
    "saocom": ("saocom", "sao", "saocom1a", "saocom1b"),
    "rs1": ("rs1", "rsat", "rsat1", "radarsat", "radarsat1"),
    "rs2": ("rs2", "rsat2", "radarsat2"),
    "rcm": ("rcm", "rsatc", "radarsatconstellation", "radarsatconstellationmission"),
    "sen": ("sen", "s1", "s1a", "s1b", "s1c", "s1d", "sent1", "sentinel1", "sentinel1a", "sentinel1b",
            "sentinel1c", "sentinel1d", "sentinel"),
    "tsx": ("tsx", "terra", "terrasar", "terrasarx", "tdx", "tandemx"),
    "uav": ("uav", "uavsar"),
}
_LOOKUP = {v: k for k, vs in _VARIANTS.items() for v in vs}

# UNAVCO / HDF-EOS5 mission codes (MintPy's save_hdfeos5 vocabulary)
_MISSIONS = {"alos": "ALOS", "alos2": "ALOS2", "csk": "CSK", "env": "ENV", "ers": "ERS", "jers": "JERS",
             "rs1": "RS1", "rs2": "RS2", "sen": "S1", "tsx": "TSX", "saocom": "SAOCOM", "uav": "UAV",
             "ni": "NISAR"}


def standard_platform(name: object) -> str | None:
    """MintPy's key for a sensor name in any spelling (``Sentinel-1A`` → ``sen``).

    Parameters
    ----------
    name : object
        The sensor as a processor wrote it (str, bytes or ``None``).

    Returns
    -------
    str or None
        MintPy's key; an unknown name lower-cased without separators; ``None`` for none/unknown.
    """
    if name is None:
        return None
    if isinstance(name, bytes):
        name = name.decode("utf-8", errors="replace")
    text = str(name).strip()
    if not text or text.lower() in ("none", "unknown"):
        return None
    key = re.sub(r"[-_\s]", "", text).lower()
    return _LOOKUP.get(key, key)


def mission_code(platform: object) -> str | None:
    """HDF-EOS5 ``mission`` code (``S1``, ``ENV``, ``ALOS2`` ...) of a platform in any spelling.

    Parameters
    ----------
    platform : object
        ``PLATFORM`` as written in a file.

    Returns
    -------
    str or None
        ``None`` when the sensor has no UNAVCO mission code.
    """
    key = standard_platform(platform)
    return None if key is None else _MISSIONS.get(key)


def from_project_name(path: str | os.PathLike | None) -> tuple[str | None, str | None]:
    """(PROJECT_NAME, PLATFORM) from a template path named ``<Region><Sensor>...`` (MintPy's convention).

    The sensor is a capitalised key inside one path component, followed by the pass direction or the
    track (``SydneyEnvD123`` → ``env``, ``KyushuAlos2DT23`` → ``alos2``); the longest match wins.  (None, None) when no component names a sensor.
    """
    if not path:
        return None, None
    for segment in reversed(str(path).split(os.sep)):
        stem = os.path.splitext(segment)[0]
        if stem.lower() in ("users", "inputs", "") or stem.startswith("."):
            continue
        # the sensor is followed by the pass (A/D), a track (T123) or a digit: "Nice" names no NISAR
        found = [k for k in _VARIANTS if re.search(rf"{k.capitalize()}(?=[AD]|T?\d|$)", stem)]
        if found:
            return stem, max(found, key=len)
    return None, None
