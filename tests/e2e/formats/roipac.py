"""ROI_PAC, radar-coded: little-endian rmg files with ``.rsc`` resource files, as process_2pass.pl leaves them.

::

    PROCESS/DONE/IFG_<yymmdd1>-<yymmdd2>/filt_<yymmdd1>-<yymmdd2>-sim_HDR_8rlks_c10.unw(.rsc)  two bands BIL:
                                         amplitude, unwrapped phase (float32 little-endian)
                                         filt_…_8rlks.cor(.rsc)         amplitude, correlation
                                         <yymmdd1>_<yymmdd2>_baseline.rsc  P_BASELINE_TOP/BOTTOM_HDR …
    PROCESS/DONE/IFG_<ref12>/radar_8rlks.hgt(.rsc)                     amplitude, height (radar grid)
    PROCESS/GEO/geo_<ref12>/geomap_8rlks.trans(.rsc)                    two bands BIL on a lat/lon grid: range
                                                                        sample, azimuth line (0 outside)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sbts.tests.e2e.formats._common import RadarFrame, pairs, write_template, write_text, yymmdd

GEOCODED = False


def rsc(values: dict) -> str:
    return "".join(f"{k:<40s} {v}\n" for k, v in values.items())


def rmg(path: Path, band1: np.ndarray, band2: np.ndarray) -> None:
    """Two float32 little-endian bands interleaved by line (ROI_PAC's rmg layout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.stack([band1, band2], axis=1).astype("<f4").tofile(path)


def radar_rsc(synth, frame: RadarFrame, extra: dict | None = None) -> dict:
    """The radar keys ROI_PAC writes into an interferogram's ``.rsc``."""
    a = synth.attrs
    length, width = synth.shape
    corners = frame.corners()
    near, dr = float(a["STARTING_RANGE"]), float(a["RANGE_PIXEL_SIZE"])
    out = {
        "WIDTH": width, "FILE_LENGTH": length, "XMIN": 0, "XMAX": width - 1, "YMIN": 0, "YMAX": length - 1,
        "RLOOKS": a["RLOOKS"], "ALOOKS": a["ALOOKS"],
        "CENTER_LINE_UTC": a["CENTER_LINE_UTC"], "FIRST_LINE_UTC": float(a["CENTER_LINE_UTC"]) - 9.3,
        "LAST_LINE_UTC": float(a["CENTER_LINE_UTC"]) + 9.3, "DELTA_LINE_UTC": 0.0041111,
        "HEIGHT": a["HEIGHT"], "HEIGHT_TOP": a["HEIGHT"], "EARTH_RADIUS": a["EARTH_RADIUS"],
        "VELOCITY": 7593.2, "STARTING_RANGE": near, "RANGE_PIXEL_SIZE": dr,
        "AZIMUTH_PIXEL_SIZE": a["AZIMUTH_PIXEL_SIZE"], "PRF": 486.4863103, "WAVELENGTH": a["WAVELENGTH"],
        "PLATFORM": "S1A", "ORBIT_DIRECTION": "ascending", "HEADING_DEG": a["HEADING"],
        "ANTENNA_SIDE": -1, "POLARIZATION": "VV",
    }
    for n, (la, lo) in enumerate(corners, start=1):
        rng = near + dr * (0 if n in (1, 3) else width - 1)
        out.update({f"RGE_REF{n}": f"{rng / 1000:.4f}", f"LOOK_REF{n}": f"{33.5 + 2.0 * (n in (2, 4)):.4f}",
                    f"LAT_REF{n}": f"{la:.4f}", f"LON_REF{n}": f"{lo:.4f}"})
    out.update(extra or {})
    return out


def baseline_rsc(synth, k: int, d1: str, d2: str) -> dict:
    b = float(synth.pair_bperp[k])
    days = (synth.dates[synth.date2_index[k]] - synth.dates[synth.date1_index[k]]).days
    return {"TIME_SPAN_YEAR": f"{days / 365.25:.9f}", "H_BASELINE_TOP_HDR": f"{b * 0.95:.4f}",
            "H_BASELINE_RATE_HDR": "0.00012", "H_BASELINE_ACC_HDR": "0", "V_BASELINE_TOP_HDR": f"{b * 0.3:.4f}",
            "V_BASELINE_RATE_HDR": "0.00004", "V_BASELINE_ACC_HDR": "0",
            "P_BASELINE_TOP_HDR": f"{b * 0.995:.4f}", "P_BASELINE_BOTTOM_HDR": f"{b * 1.005:.4f}",
            "ORB_SLC_AZ_OFFSET_HDR": "0.0", "ORB_SLC_R_OFFSET_HDR": "0.0", "RANGE_OFFSET_HDR": "0.0",
            "PHASE_CONST_HDR": "-99999", "HEIGHT_TOP": synth.attrs["HEIGHT"]}


def write(root: Path, synth) -> Path:
    root = Path(root)
    frame = RadarFrame.of(synth)
    amplitude = (0.2 + synth.coherence.mean(axis=0)).astype(np.float32)
    ref12 = None
    for d1, d2, k in pairs(synth):
        date12 = f"{yymmdd(d1)}-{yymmdd(d2)}"
        ref12 = ref12 or date12
        folder = root / "PROCESS" / "DONE" / f"IFG_{date12}"
        days = (synth.dates[synth.date2_index[k]] - synth.dates[synth.date1_index[k]]).days
        extra = {"DATE": yymmdd(d1), "DATE12": date12, "TIME_SPAN_YEAR": f"{days / 365.25:.9f}"}
        name = f"filt_{date12}-sim_HDR_8rlks_c10"
        rmg(folder / f"{name}.unw", amplitude, synth.unwrap_phase[k])
        write_text(folder / f"{name}.unw.rsc", rsc(radar_rsc(synth, frame, extra)))
        rmg(folder / f"{name}.cor", amplitude, synth.coherence[k])
        write_text(folder / f"{name}.cor.rsc", rsc(radar_rsc(synth, frame, extra)))
        write_text(folder / f"{yymmdd(d1)}_{yymmdd(d2)}_baseline.rsc", rsc(baseline_rsc(synth, k, d1, d2)))
    hgt = root / "PROCESS" / "DONE" / f"IFG_{ref12}" / "radar_8rlks.hgt"
    rmg(hgt, amplitude, synth.height)
    write_text(Path(str(hgt) + ".rsc"), rsc(radar_rsc(synth, frame)))
    grid = frame.geo_grid()
    line, sample = frame.lookup(grid)
    trans = root / "PROCESS" / "GEO" / f"geo_{ref12}" / "geomap_8rlks.trans"
    rmg(trans, sample, line)  # band 1 range sample, band 2 azimuth line
    write_text(Path(str(trans) + ".rsc"), rsc({
        "WIDTH": grid["width"], "FILE_LENGTH": grid["length"], "XMIN": 0, "XMAX": grid["width"] - 1,
        "YMIN": 0, "YMAX": grid["length"] - 1, "X_FIRST": repr(grid["x_first"]), "Y_FIRST": repr(grid["y_first"]),
        "X_STEP": repr(grid["x_step"]), "Y_STEP": repr(grid["y_step"]), "X_UNIT": "degrees", "Y_UNIT": "degrees",
        "Z_OFFSET": 0, "Z_SCALE": 1, "PROJECTION": "LATLON", "DATUM": "WGS84",
        "RLOOKS": synth.attrs["RLOOKS"], "ALOOKS": synth.attrs["ALOOKS"],
    }))
    return write_template(root, "roipac", {
        "mintpy.load.processor": "roipac",
        "mintpy.load.unwFile": "../PROCESS/DONE/IFG*/filt*.unw",
        "mintpy.load.corFile": "../PROCESS/DONE/IFG*/filt*.cor",
        "mintpy.load.demFile": "../PROCESS/DONE/*/radar_*rlks.hgt",
        "mintpy.load.lookupYFile": "../PROCESS/GEO/geo_*/geomap_*rlks.trans",
        "mintpy.load.lookupXFile": "../PROCESS/GEO/geo_*/geomap_*rlks.trans",
    })
