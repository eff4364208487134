"""``sbts export gbis``: an interferogram or velocity for GBIS (Geodetic Bayesian Inversion Software).

GBIS reads a MATLAB ``.mat`` with vectors over the valid pixels: ``Phase`` (unwrapped phase in
radians), ``Lon``/``Lat`` (degrees), ``Heading`` (satellite heading, degrees clockwise from north)
and ``Inc`` (incidence angle, degrees).  GBIS turns phase into line-of-sight displacement as
``−Phase·λ/(4π)`` (positive toward the satellite), so ``Phase`` here has MintPy's phase sign:
``Phase = −4π/λ · displacement`` (positive = motion away from the satellite).  A velocity becomes
the displacement over its span (START_DATE..END_DATE) first.  ``Height``, the 2-D ``Mask`` and a
``Metadata`` struct are added for provenance.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Exporter,
    ExportRequest,
    InputError,
    Product,
    atomic_output,
    hookimpl,
    label_stem,
    output_path,
    parse_options,
    read_mask,
    select_map,
)

logger = logging.getLogger(__name__)


def heading_from_azimuth(azimuth: np.ndarray, antenna_side: int = -1) -> np.ndarray:
    """Satellite heading (clockwise from north) from MintPy's LOS azimuth (anticlockwise from north).

    For a right-looking radar the ground→satellite direction is 90° left of the flight direction:
    azimuth = 90° − heading; for a left-looking one azimuth = −90° − heading.
    """
    base = 90.0 if antenna_side != 1 else -90.0
    return (base - np.asarray(azimuth, np.float64) + 180.0) % 360.0 - 180.0


def find_geometry(path: Path, explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    from sbts.core.api import find_geometry as find

    return find(path, geocoded=True)


class GbisExporter(Exporter):
    """GBIS ``.mat``: Phase, Lon, Lat, Heading, Inc, Height, Mask, Metadata."""

    name = "gbis"
    summary = "An interferogram or velocity map as the .mat file GBIS inverts (Phase, Lon, Lat, Heading, Inc)."
    description = textwrap.dedent("""\
    Writes GBIS's input: Phase (radians, MintPy's sign: −4π/λ × displacement, positive = away
    from the satellite; GBIS converts back with −λ/4π), Lon, Lat (vectors of the valid pixels),
    Heading (clockwise from north), Inc (incidence angle, per pixel), Height (m, as in the geometry
    file: ellipsoid heights are not converted to the geoid), Mask (2-D) and Metadata.
    DATASET: velocity (default for velocity files; displacement over START_DATE..END_DATE), a
    time-series pair YYYYMMDD_YYYYMMDD or date YYYYMMDD (since the reference date), or a stack pair.

    \b
    Options:
      -O mask=maskTempCoh.h5     keep only the pixels of this mask (plus finite values)
      -O geometry=geometryGeo.h5 incidence/azimuth angles and height (default: found beside/inputs)
      -O ref_lalo=LAT,LON        re-reference the phase to this point
    -o names the .mat file (default: <name>[_<dataset>].mat beside the input).""")
    requires_geocoded = True

    def export(self, request: ExportRequest) -> list[Path]:
        from scipy.io import savemat

        opts = parse_options(request, {"mask", "geometry", "ref_lalo"}, "gbis")
        product = Product.open(request.input_file)
        meta = product.metadata
        geo = meta.grid.geo
        if geo is None:
            raise InputError(f"{request.input_file} is in radar coordinates; run `sbts geocode {request.input_file}`")
        if not geo.x_unit.lower().startswith("deg"):
            raise InputError(f"{request.input_file}: GBIS needs longitude/latitude; geocode without --utm/--epsg")
        sel = select_map(product, request.dataset)
        if sel.kind not in ("velocity", "displacement", "phase"):
            raise InputError(f"{request.input_file}: {sel.name} is {sel.kind}; GBIS inverts phase: export a velocity, "
                             "a time-series date pair or an interferogram")
        wavelength = meta.radar.require_wavelength()
        phase = sel.phase(wavelength).astype(np.float64)
        valid = np.isfinite(phase)
        if opts.get("mask"):
            valid &= read_mask(opts["mask"], product.shape)
        if opts.get("ref_lalo"):
            try:
                lat0, lon0 = (float(v) for v in opts["ref_lalo"].split(","))
            except ValueError:
                raise InputError(f"ref_lalo={opts['ref_lalo']!r}: expected LAT,LON") from None
            y, x = geo.lalo_to_yx(lat0, lon0)
            if not (0 <= y < product.shape[0] and 0 <= x < product.shape[1]) or not np.isfinite(phase[y, x]):
                raise InputError(f"ref_lalo={opts['ref_lalo']}: outside the map or no data there")
            phase = phase - phase[y, x]
        if not valid.any():
            raise InputError(f"{request.input_file}: no valid pixel to export (all NaN or masked)")
        length, width = product.shape
        lats = geo.y_first + (np.arange(length) + 0.5) * geo.y_step
        lons = geo.x_first + (np.arange(width) + 0.5) * geo.x_step
        rows, cols = np.nonzero(valid)
        out = {"Phase": phase[valid].reshape(-1, 1), "Lon": lons[cols].reshape(-1, 1),
               "Lat": lats[rows].reshape(-1, 1), "Mask": valid.astype(np.uint8)}
        inc, heading, height = self._geometry(product, opts, valid)
        out["Inc"], out["Heading"] = inc, heading
        if height is not None:
            out["Height"] = height
        md = {k: str(v) for k, v in meta.to_attrs().items() if k.isidentifier() and len(k) <= 31}
        md.update(DATASET=sel.name, DATE12=sel.date12 or "", WAVELENGTH=str(wavelength),
                  PHASE_SIGN="positive = motion away from the satellite (LOS = -Phase*WAVELENGTH/(4*pi))")
        out["Metadata"] = md
        path = output_path(request, label_stem(product, sel), ".mat")
        with atomic_output(path) as tmp, open(tmp, "wb") as fh:
            savemat(fh, out, do_compression=True)
        logger.info("wrote %s: %d pixels of %s", path, int(valid.sum()), sel.name)
        return [path]

    @staticmethod
    def _geometry(product: Product, opts: dict[str, str], valid: np.ndarray):
        meta = product.metadata
        path = find_geometry(product.path, opts.get("geometry"))
        geom = Product.open(path) if path is not None else None
        if geom is not None and geom.shape != product.shape:
            raise InputError(f"{path} is {geom.shape} but {product.path} is {product.shape}: geocode both on one grid")
        n = int(valid.sum())
        if geom is not None and geom.has("incidenceAngle"):
            inc = geom.read("incidenceAngle").astype(np.float64)[valid].reshape(-1, 1)
        elif meta.radar.incidence_angle is not None:
            inc = np.full((n, 1), meta.radar.incidence_angle)
        elif meta.extra.get("CENTER_INCIDENCE_ANGLE"):
            inc = np.full((n, 1), float(meta.extra["CENTER_INCIDENCE_ANGLE"]))
        else:
            raise InputError(f"{product.path}: no incidence angle: give -O geometry=geometryGeo.h5 (incidenceAngle) "
                             "or set INCIDENCE_ANGLE in the metadata")
        side = meta.radar.antenna_side or -1
        if geom is not None and geom.has("azimuthAngle"):
            heading = heading_from_azimuth(geom.read("azimuthAngle")[valid], side).reshape(-1, 1)
        elif meta.radar.heading is not None:
            heading = np.full((n, 1), meta.radar.heading)
        else:
            raise InputError(f"{product.path}: no heading: give -O geometry=... with azimuthAngle or set HEADING")
        height = None
        if geom is not None and geom.has("height"):
            height = geom.read("height").astype(np.float64)[valid].reshape(-1, 1)
        return inc, heading, height


@hookimpl
def sbts_exporters():
    return [GbisExporter()]
