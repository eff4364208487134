"""ROI_PAC ``.rsc`` resource files: ``KEY value`` lines beside each raster.

ROI_PAC's keys are, almost all, MintPy's attribute names (MintPy adopted them); the few that
differ are renamed here (``FILE_LENGTH`` → ``LENGTH``, ``HEADING_DEG`` → ``HEADING``).
"""

from __future__ import annotations

from pathlib import Path

from sbts.core.api import InputError
from sbts.plugins.readers import _gamma_par as gp

RENAME = {"FILE_LENGTH": "LENGTH", "HEADING_DEG": "HEADING"}
# per-interferogram keys: kept per pair, not in the stack's root attributes
PAIR_KEYS = {"DATE", "DATE12", "P_BASELINE_TOP_HDR", "P_BASELINE_BOTTOM_HDR", "TIME_SPAN_YEAR",
             "P_BASELINE_TOP_ODR", "P_BASELINE_BOTTOM_ODR", "ORBIT_NUMBER", "FIRST_FRAME_SCENE_CENTER_TIME"}


def rsc_path(path: str | Path) -> Path:
    return Path(str(path) + ".rsc")


def read_rsc(path: str | Path) -> dict[str, str]:
    """Raw ``KEY value`` pairs of an ``.rsc`` file (the value may hold spaces; first key wins)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        raise InputError(f"{path}: cannot read this ROI_PAC resource file") from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if not parts or parts[0].startswith("#"):
            continue
        out.setdefault(parts[0], parts[1].strip() if len(parts) > 1 else "")
    return out


def raster_rsc(path: str | Path) -> dict[str, str]:
    """The ``<file>.rsc`` of a ROI_PAC raster, with an actionable error when it is missing."""
    rsc = rsc_path(path)
    if not rsc.is_file():
        raise InputError(f"{rsc}: missing; a ROI_PAC raster needs its .rsc (WIDTH, FILE_LENGTH, ...) beside it "
                         f"to give its size; write one, or load {Path(path).name} with another reader "
                         "(mintpy.load.processor)")
    raw = read_rsc(rsc)
    for key in ("WIDTH", "FILE_LENGTH"):
        if key not in raw and RENAME.get(key, key) not in raw:
            raise InputError(f"{rsc}: no {key}; a ROI_PAC .rsc must state WIDTH and FILE_LENGTH")
    return raw


def mintpy_attrs(raw: dict[str, str], keep_pair_keys: bool = False) -> dict[str, str]:
    """MintPy attribute names and derived ORBIT_DIRECTION; pair keys dropped unless asked."""
    a: dict[str, str] = {}
    for key, value in raw.items():
        if not keep_pair_keys and key in PAIR_KEYS:
            continue
        a.setdefault(RENAME.get(key, key), value)
    if "X_FIRST" in a and "EPSG" not in a and a.get("PROJECTION", "LATLON").upper() in ("LATLON", "LL", "GEO") \
            and a.get("X_UNIT", "degrees").lower().startswith("deg"):
        a["EPSG"] = "4326"
    gp.add_orbit_direction(a)
    return a


def pair_bperp(raw: dict[str, str]) -> float | None:
    """Pair bperp = mean(P_BASELINE_TOP_HDR, P_BASELINE_BOTTOM_HDR) (MintPy's convention)."""
    vals = []
    for key in ("P_BASELINE_TOP_HDR", "P_BASELINE_BOTTOM_HDR"):
        try:
            vals.append(float(raw[key]))
        except (KeyError, ValueError):
            continue
    return sum(vals) / len(vals) if vals else None
