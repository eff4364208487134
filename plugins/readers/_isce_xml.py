"""ISCE2 XML files: image descriptors (``<file>.xml``) and product dumps (``reference/IW1.xml``).

Both are trees of ``<property name="..."><value>...</value></property>`` and ``<component>`` elements
(ISCE's Configurable serialisation); parsed with the standard library, ISCE itself is not needed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.api import BinaryRaster, InputError
from sbts.plugins.readers._common import header_int

# ISCE data_type → numpy (complex types are refused: the loader reads real bands only)
ISCE_TYPES = {"BYTE": "u1", "CHAR": "u1", "SHORT": "i2", "INT": "i4", "LONG": "i8", "FLOAT": "f4",
              "DOUBLE": "f8", "CFLOAT": "c8", "CDOUBLE": "c16"}


def _properties(elem: ET.Element) -> dict[str, str]:
    """Direct ``property`` children of ``elem``: lower-case name → value text."""
    out = {}
    for prop in elem.findall("property"):
        name = prop.get("name")
        value = prop.find("value")
        if name is not None and value is not None and value.text is not None:
            out[name.lower()] = value.text.strip()
    return out


def _parse(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except FileNotFoundError:
        raise InputError(f"{path}: not found") from None
    except ET.ParseError as exc:
        raise InputError(f"{path}: not valid XML ({exc})") from None


@dataclass(frozen=True)
class IsceImage:
    """What an ISCE image XML says about its binary file."""

    path: Path  # the binary file
    width: int
    length: int
    bands: int
    dtype: np.dtype
    scheme: str
    coord_delta: tuple[float | None, float | None]  # (range, azimuth) coordinate deltas

    def band(self, index: int, nodata: float | None = None) -> BinaryRaster:
        """Band ``index`` (0-based) as a window-readable raster."""
        if index >= self.bands:
            raise InputError(f"{self.path}: band {index + 1} requested but its .xml lists {self.bands} band(s)")
        return BinaryRaster(self.path, (self.length, self.width), self.dtype, band=index, bands=self.bands,
                            interleave=self.scheme, nodata=nodata)


def read_image_xml(data_file: Path) -> IsceImage:
    """Parse ``<data_file>.xml`` (width, length, number_bands, data_type, scheme, byte_order)."""
    data_file = Path(data_file)
    xml = data_file.with_name(data_file.name + ".xml")
    if not xml.exists():
        raise InputError(f"{data_file}: its ISCE sidecar {xml.name} is missing (needed for width, length, "
                         "data type and band layout); regenerate it with ISCE's fixImageXml.py")
    root = _parse(xml)
    props = _properties(root)
    coords = {}
    for comp in root.findall("component"):
        name = (comp.get("name") or "").lower()
        if name in ("coordinate1", "coordinate2"):
            coords[name] = _properties(comp)
    def size(prop: str, coord: str) -> int:
        if props.get(prop):
            return header_int(props[prop], xml, prop)
        if coords.get(coord, {}).get("size"):
            return header_int(coords[coord]["size"], xml, f"{coord} size")
        raise InputError(f"{xml}: no {prop} (properties 'width' and 'length')")

    width, length = size("width", "coordinate1"), size("length", "coordinate2")
    dtype_name = props.get("data_type", "").upper()
    if dtype_name not in ISCE_TYPES:
        raise InputError(f"{xml}: data_type {dtype_name or '(missing)'} is not an ISCE type")
    if dtype_name.startswith("C"):
        raise InputError(f"{data_file}: complex data ({dtype_name}) cannot be loaded as a real layer")
    order = ">" if props.get("byte_order", "l").lower().startswith("b") else "<"
    bands = header_int(props.get("number_bands", "1"), xml, "number_bands")
    scheme = props.get("scheme", "BIL").strip().upper()
    if scheme not in ("BIL", "BIP", "BSQ"):
        raise InputError(f"{xml}: unknown interleave scheme {scheme!r}")

    def delta(name):
        try:
            return float(coords[name]["delta"])
        except (KeyError, ValueError):
            return None

    return IsceImage(data_file, width, length, bands, np.dtype(order + ISCE_TYPES[dtype_name]), scheme,
                     (delta("coordinate1"), delta("coordinate2")))


def read_product_xml(path: Path) -> list[dict[str, str]]:
    """Every group of properties in an ISCE product XML, depth first (swath first, then each burst).

    The caller picks values by name; the first group holding a name wins for swath-wide values, and
    all groups are scanned for per-burst values (sensing start/stop).
    """
    root = _parse(Path(path))
    groups = []

    def walk(elem):
        props = _properties(elem)
        if props:
            groups.append(props)
        for comp in elem.findall("component"):
            walk(comp)

    walk(root)
    if not groups:
        raise InputError(f"{path}: no ISCE <property> elements; not an ISCE product XML")
    return groups


def orbit_from_groups(groups: list[dict[str, str]]):
    """State vectors (time, position, velocity properties) of a product XML, first burst's orbit only."""
    from sbts.plugins.readers._orbit import StateVector, parse_time, parse_vector

    out, seen = [], set()
    for g in groups:
        if not {"time", "position", "velocity"} <= g.keys():
            continue
        t, p, v = parse_time(g["time"]), parse_vector(g["position"]), parse_vector(g["velocity"])
        if t is None or p is None or v is None or t in seen:
            continue
        seen.add(t)
        out.append(StateVector(t, p, v))
    return out


# ----------------------------------------------------------------------------- stripmapStack shelve
class _IsceRecord:
    """Stand-in for any ISCE class found in a pickled Frame: its attributes, nothing else."""

    def __setstate__(self, state):
        if isinstance(state, tuple):  # (dict, slots)
            state = state[0] or {}
        if isinstance(state, dict):
            self.__dict__.update(state)


class _FrameUnpickler:
    """Unpickles the Frame of a stripmapStack ``referenceShelve`` without ISCE, and runs no code.

    ISCE classes (``isceobj.*``, ``iscesys.*``) become :class:`_IsceRecord`; besides them only the
    standard constructors a pickle of plain data needs are allowed.
    """

    SAFE = {("datetime", "datetime"), ("datetime", "date"), ("datetime", "timedelta"), ("copyreg", "_reconstructor"),
            ("builtins", "object"), ("builtins", "list"), ("builtins", "dict"), ("collections", "OrderedDict")}

    @classmethod
    def load(cls, data: bytes, source: Path):
        import importlib
        import io
        import pickle

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if module.split(".")[0] in ("isceobj", "iscesys", "isce", "contrib", "stdproc"):
                    return type(name, (_IsceRecord,), {})
                if (module, name) in cls.SAFE:
                    return getattr(importlib.import_module(module), name)
                raise InputError(f"{source}: the pickled reference frame refers to {module}.{name}, which sbts "
                                 "does not load; is it an ISCE stripmapStack referenceShelve?")

        try:
            return Unpickler(io.BytesIO(data)).load()
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the unpickler is a bad file
            raise InputError(f"{source}: cannot read the pickled reference frame ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class ShelveFrame:
    """What MintPy's prep_isce takes from a stripmapStack reference Frame."""

    wavelength: float | None
    prf: float | None
    range_pixel_size: float | None
    starting_range: float | None
    sensing_mid: object
    center_seconds: float | None
    pass_direction: str | None
    platform: str | None
    polarization: str | None
    orbit: list
    antenna_length: float | None = None  # m: azimuth resolution = antenna length / 2
    pulse_length: float | None = None  # s
    chirp_slope: float | None = None  # Hz/s: range bandwidth = pulse length x chirp slope


def read_reference_shelve(path: Path) -> ShelveFrame:
    """The reference Frame of ``referenceShelve/data.dat`` (a ``dbm.dumb`` shelve: data.dat + data.dir)."""
    import ast

    from sbts.plugins.readers._orbit import StateVector, parse_vector

    path = Path(path)
    index = path.with_suffix(".dir")
    if not index.exists():
        raise InputError(f"{path}: its shelve index {index.name} is missing (stripmapStack writes data.dat, "
                         "data.dir and data.bak together)")
    entries = {}
    for line in index.read_text(errors="replace").splitlines():
        if line.strip():
            key, (pos, size) = ast.literal_eval(line)
            entries[key] = (pos, size)
    if "frame" not in entries:
        raise InputError(f"{path}: the shelve holds no 'frame' (keys: {', '.join(sorted(entries)) or 'none'})")
    pos, size = entries["frame"]
    with open(path, "rb") as fh:
        fh.seek(pos)
        frame = _FrameUnpickler.load(fh.read(size), path)

    def get(obj, *names):
        for n in names:
            if obj is not None and n in getattr(obj, "__dict__", {}):
                return obj.__dict__[n]
        return None

    radar = get(frame, "_instrument", "instrument")
    platform = get(radar, "_platform", "platform")
    orbit_obj = get(frame, "_orbit", "orbit")
    vectors = []

    def collect(obj, depth=0):
        if depth > 6 or obj is None:
            return
        if isinstance(obj, (list, tuple)):
            for item in obj:
                collect(item, depth + 1)
            return
        d = getattr(obj, "__dict__", None)
        if not d:
            return
        t, p, v = get(obj, "_time", "time"), get(obj, "_position", "position"), get(obj, "_velocity", "velocity")
        if t is not None and p is not None and v is not None:
            p, v = parse_vector(str(list(p))), parse_vector(str(list(v)))
            if p is not None and v is not None:
                vectors.append(StateVector(t, p, v))
            return
        for value in d.values():
            if isinstance(value, (list, tuple, _IsceRecord)):
                collect(value, depth + 1)

    collect(orbit_obj)
    mid = get(frame, "_sensingMid", "sensingMid")
    start, stop = get(frame, "_sensingStart"), get(frame, "_sensingStop")
    if mid is None and start is not None and stop is not None:
        mid = start + (stop - start) / 2

    def fnum(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    return ShelveFrame(
        wavelength=fnum(get(radar, "radarWavelength", "_radarWavelength")),
        prf=fnum(get(radar, "PRF", "_PRF")),
        range_pixel_size=fnum(get(radar, "rangePixelSize", "_rangePixelSize")),
        starting_range=fnum(get(frame, "_startingRange", "startingRange")),
        sensing_mid=mid,
        center_seconds=None if mid is None else mid.hour * 3600 + mid.minute * 60 + mid.second + mid.microsecond / 1e6,
        pass_direction=get(frame, "_passDirection", "passDirection"),
        platform=get(platform, "spacecraftName", "_spacecraftName", "mission", "_mission"),
        polarization=get(frame, "_polarization", "polarization"),
        orbit=sorted(vectors, key=lambda s: s.time),
        antenna_length=fnum(get(platform, "antennaLength", "_antennaLength")),
        pulse_length=fnum(get(radar, "pulseLength", "_pulseLength")),
        chirp_slope=fnum(get(radar, "chirpSlope", "_chirpSlope")),
    )
