"""ISCE2 XML files: image descriptors (``<file>.xml``) and product dumps (``reference/IW1.xml``).

Both are trees of ``<property name="..."><value>...</value></property>`` and ``<component>`` elements
(ISCE's Configurable serialisation); parsed with the standard library, ISCE itself is not needed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.errors import InputError

from ._common import header_int
from ._raster import BinaryRaster

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
