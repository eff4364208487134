"""``sbts export kite``: a displacement map as a Kite scene (pyrocko/kite, for earthquake and volcano modelling).

Kite (``pip install kite``, or sbts's ``kite`` extra) stores a scene as ``<name>.npz`` (displacement,
theta, phi) plus ``<name>.yml`` (frame and metadata), written here with Kite's own ``Scene.save``.

Conventions (Kite's, from its documentation, and sbts's/MintPy's):

- displacement in metres along the LOS, positive toward the satellite (sbts's sign); a velocity
  becomes the displacement over START_DATE..END_DATE, a time-series date or pair the displacement
  between its dates, an interferogram ``−λ/(4π)·phase``;
- ``theta`` = elevation of the ground→satellite vector above the horizon = 90° − incidenceAngle;
  ``phi`` = its horizontal direction counter-clockwise from east = MintPy's azimuthAngle + 90°
  (azimuthAngle is counter-clockwise from north), both in radians.  Kite's unit vector
  ``(cos θ cos φ, cos θ sin φ, sin θ)`` (east, north, up) is then sbts's
  ``(−sin i sin α, sin i cos α, cos i)``;
- the frame: rows run south → north (arrays flipped), ``llLat``/``llLon`` the lower-left corner of
  the grid (``Y_FIRST + LENGTH·Y_STEP``, ``X_FIRST``), ``dE``/``dN`` the pixel size in degrees.

Per-pixel angles come from the geometry file (geocoded, found beside the input or ``-O
geometry=``), else from INCIDENCE_ANGLE/CENTER_INCIDENCE_ANGLE and HEADING.  ``-O mask=`` sets
masked pixels to NaN (Kite's no-data).
"""

from __future__ import annotations

import datetime as _dt
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
    find_geometry,
    hookimpl,
    label_stem,
    output_path,
    parse_options,
    read_mask,
    select_map,
)

logger = logging.getLogger(__name__)


def kite_angles(incidence: np.ndarray, azimuth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kite's (theta, phi) in radians from MintPy's incidenceAngle and azimuthAngle in degrees."""
    theta = np.deg2rad(90.0 - np.asarray(incidence, np.float64))
    phi = np.deg2rad((np.asarray(azimuth, np.float64) + 90.0 + 180.0) % 360.0 - 180.0)
    return theta, phi


class KiteExporter(Exporter):
    """Kite scene (.npz + .yml) of one displacement map with its LOS geometry."""

    name = "kite"
    summary = "A displacement or velocity map as a pyrocko/Kite scene (.npz + .yml) for source modelling."
    description = textwrap.dedent("""\
    Writes <name>.npz and <name>.yml with Kite's Scene.save (needs `pip install kite`):
    displacement (m, LOS, positive toward the satellite; a velocity × its START_DATE..END_DATE span,
    a time-series date YYYYMMDD or pair YYYYMMDD_YYYYMMDD, a stack pair as −λ/4π·phase),
    theta = 90° − incidence and phi = azimuthAngle + 90° (radians, Kite's LOS convention), the
    lat/lon frame (rows south→north, lower-left corner) and the acquisition metadata.
    DATASET: as for `sbts export gbis` (default: the file's main map).

    \b
    Options:
      -O geometry=geometryGeo.h5  incidence/azimuth angles (default: found beside/inputs)
      -O mask=maskTempCoh.h5      NaN outside this mask
    -o names the scene (default: <name>[_<dataset>] beside the input; .npz/.yml added).""")
    requires_geocoded = True

    def export(self, request: ExportRequest) -> list[Path]:
        try:
            from kite import Scene
            from kite.scene import SceneConfig
        except ImportError as exc:
            raise InputError(f"the kite export needs Kite: pip install kite (or sbts[kite]) ({exc})") from None
        opts = parse_options(request, {"geometry", "mask"}, "kite")
        product = Product.open(request.input_file)
        meta = product.metadata
        geo = meta.grid.geo
        if geo is None or not geo.x_unit.lower().startswith("deg"):
            raise InputError(f"{request.input_file}: Kite needs a latitude/longitude grid; geocode it (sbts geocode, "
                             "without --utm)")
        sel = select_map(product, request.dataset)
        if sel.kind == "phase":
            disp = sel.data.astype(np.float64) * (-meta.radar.require_wavelength() / (4 * np.pi))
        elif sel.kind in ("velocity", "displacement"):
            disp = sel.displacement().astype(np.float64)
        else:
            raise InputError(f"{request.input_file}: {sel.name} is {sel.kind}; Kite models displacement: export a "
                             "velocity, a time-series date or pair, or an interferogram")
        if opts.get("mask"):
            disp = np.where(read_mask(opts["mask"], product.shape), disp, np.nan)
        if not np.isfinite(disp).any():
            raise InputError(f"{request.input_file}: no valid pixel in {sel.name}")
        inc, az = self._angles(product, opts)
        theta, phi = kite_angles(inc, az)
        length, width = product.shape
        config = SceneConfig()
        config.frame.spacing = "degree"
        config.frame.llLat = float(geo.y_first + length * geo.y_step)
        config.frame.llLon = float(geo.x_first)
        config.frame.dE = float(abs(geo.x_step))
        config.frame.dN = float(abs(geo.y_step))
        m = config.meta
        m.scene_title = f"{product.path.stem} {sel.name}"
        m.scene_id = label_stem(product, sel)
        m.satellite_name = meta.radar.platform or "unknown"
        if meta.radar.wavelength:
            m.wavelength = float(meta.radar.wavelength)
        direction = (meta.radar.orbit_direction or "").lower()
        if direction.startswith("asc"):
            m.orbital_node = "Ascending"
        elif direction.startswith("desc"):
            m.orbital_node = "Descending"
        if sel.date1 is not None and sel.date2 is not None:
            m.time_master = _timestamp(sel.date1, meta.radar.center_line_utc)
            m.time_slave = _timestamp(sel.date2, meta.radar.center_line_utc)
        m.extra = {"source": str(product.path.name), "dataset": sel.name, "sign": "LOS, positive toward the satellite"}
        scene = Scene(displacement=np.flipud(disp), theta=np.flipud(np.broadcast_to(theta, disp.shape)).copy(),
                      phi=np.flipud(np.broadcast_to(phi, disp.shape)).copy(), config=config)
        base = output_path(request, label_stem(product, sel), "")
        base = base.with_suffix("") if base.suffix in (".npz", ".yml", ".yaml") else base
        outputs = [base.with_name(base.name + ".npz"), base.with_name(base.name + ".yml")]
        with atomic_output(outputs[0]) as tmp_npz, atomic_output(outputs[1]) as tmp_yml:
            stem = tmp_npz.with_name(tmp_npz.name + ".scene")
            scene.save(str(stem))  # writes <stem>.npz and <stem>.yml
            Path(str(stem) + ".npz").replace(tmp_npz)
            Path(str(stem) + ".yml").replace(tmp_yml)
        logger.info("wrote %s and %s (%s)", *outputs, sel.name)
        return outputs

    @staticmethod
    def _angles(product: Product, opts: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
        meta = product.metadata
        path = Path(opts["geometry"]) if opts.get("geometry") else find_geometry(product.path, geocoded=True)
        geom = Product.open(path) if path is not None else None
        if geom is not None and geom.shape == product.shape and geom.has("incidenceAngle") \
                and geom.has("azimuthAngle"):
            return (geom.read("incidenceAngle").astype(np.float64),
                    geom.read("azimuthAngle").astype(np.float64))
        if opts.get("geometry"):
            raise InputError(f"{path}: needs incidenceAngle and azimuthAngle on the {product.shape} grid of "
                             f"{product.path}")
        inc = meta.radar.incidence_angle
        if inc is None and meta.extra.get("CENTER_INCIDENCE_ANGLE"):
            inc = float(meta.extra["CENTER_INCIDENCE_ANGLE"])
        if inc is None or meta.radar.heading is None:
            raise InputError(f"{product.path}: no geometry file with incidenceAngle/azimuthAngle on its grid and no "
                             "INCIDENCE_ANGLE/HEADING attributes: give -O geometry=geometryGeo.h5")
        side = -1 if (meta.radar.antenna_side or -1) < 0 else 1
        az = -meta.radar.heading - 90.0 * side
        logger.info("%s: scalar geometry from the attributes (incidence %.2f°, azimuth %.2f°)",
                    product.path.name, inc, az)
        return np.float64(inc), np.float64((az + 180.0) % 360.0 - 180.0)


def _timestamp(date: _dt.date, seconds_of_day: float | None) -> float:
    t = _dt.datetime(date.year, date.month, date.day, tzinfo=_dt.timezone.utc)
    return t.timestamp() + float(seconds_of_day or 0.0)


@hookimpl
def sbts_exporters():
    return [KiteExporter()]
