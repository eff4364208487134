"""GAMMA, geocoded (``geocode_back`` output), with the radar ``.off`` / image par files kept beside.

prep_gamma.py users keep the interferogram folders as GAMMA left them and geocode in place, so each
folder holds the geocoded rasters *and* the radar-geometry par files.  MintPy's loader takes the
raster size from the ``.off`` (its interferogram size must be the geocoded one, so it is written
so) and the grid from the DEM par given with ``prep_gamma.py --dem``: the ``.off`` and the DEM par
then describe two grids of the same size, radar and geocoded, and only the name (``geo_``) and the
geocoded DEM tell them apart.

::

    PROCESS/DONE/IFG_<d1>-<d2>/geo_<d1>-<d2>_8rlks.unw, geo_<d1>-<d2>_8rlks.cor   big-endian float32, lat/lon grid
                              <d1>-<d2>_8rlks.off, <d1>-<d2>_8rlks.base_perp, <d>_8rlks.mli.par, <d>_8rlks.mli.corner
    PROCESS/SIM/sim_<ref12>/sim_<ref12>_8rlks.utm.dem + .utm.dem.par                  the DEM on the same grid
"""

from __future__ import annotations

from pathlib import Path

from sbts.tests.e2e.formats import gamma_radar as gr
from sbts.tests.e2e.formats._common import RadarFrame, pairs, write_template, write_text

GEOCODED = True
RADAR_SIZE = (96, 120)  # the radar MLI the products were geocoded from (the image pars say so)


def synth_grid(synth) -> dict:
    a = synth.attrs
    length, width = synth.shape
    return {"y_first": float(a["Y_FIRST"]), "x_first": float(a["X_FIRST"]), "y_step": float(a["Y_STEP"]),
            "x_step": float(a["X_STEP"]), "length": length, "width": width}


def write(root: Path, synth) -> Path:
    root = Path(root)
    frame = RadarFrame.of(synth)
    for d1, d2, k in pairs(synth):
        folder = root / "PROCESS" / "DONE" / f"IFG_{d1}-{d2}"
        gr.be(folder / f"geo_{d1}-{d2}{gr.LOOKS}.unw", synth.unwrap_phase[k])
        gr.be(folder / f"geo_{d1}-{d2}{gr.LOOKS}.cor", synth.coherence[k])
        # the .off gives the geocoded size (MintPy reads LENGTH/WIDTH from it); the image pars the radar one
        write_text(folder / f"{d1}-{d2}{gr.LOOKS}.off", gr.off_par(synth, d1, d2))
        write_text(folder / f"{d1}-{d2}{gr.LOOKS}.base_perp", gr.base_perp(synth, k, RADAR_SIZE))
        for d in (d1, d2):
            write_text(folder / f"{d}{gr.LOOKS}.mli.par", gr.mli_par(synth, d, frame, RADAR_SIZE))
            write_text(folder / f"{d}{gr.LOOKS}.mli.corner", gr.corner_file(frame))
    d1, d2, _ = pairs(synth)[0]
    sim = root / "PROCESS" / "SIM" / f"sim_{d1}-{d2}"
    base = f"sim_{d1}-{d2}{gr.LOOKS}"
    gr.be(sim / f"{base}.utm.dem", synth.height)
    write_text(sim / f"{base}.utm.dem.par", gr.dem_par(synth_grid(synth), base))
    return write_template(root, "gamma_geo", {
        "mintpy.load.processor": "gamma",
        "mintpy.load.unwFile": "../PROCESS/DONE/IFG_*/geo_*_8rlks.unw",
        "mintpy.load.corFile": "../PROCESS/DONE/IFG_*/geo_*_8rlks.cor",
        "mintpy.load.demFile": "../PROCESS/SIM/sim_*/sim_*_8rlks.utm.dem",
    })
