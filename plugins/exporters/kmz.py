"""``sbts export kmz`` and ``kmz_timeseries``: Google Earth files of geocoded products (simplekml).

``kmz``: one map as a ``GroundOverlay`` (a PNG coloured with a matplotlib colormap, NaN transparent,
``LatLonBox`` = the grid bounds), a ``ScreenOverlay`` colour bar and a reference-point placemark.

``kmz_timeseries``: the reliable pixels (mask) as placemarks coloured by velocity, in a
level-of-detail grid: one folder per sampling step (default 20, 5, 1 pixels), each tiled into
boxes with their own ``Region``/``Lod``, so Google Earth shows coarse points when zoomed out and
loads the dense ones only for the boxes in view.  Clicking a point opens a balloon with its
displacement history as an inline SVG chart and a table (no external JavaScript).

matplotlib and simplekml are imported only when a file is written.
"""

from __future__ import annotations

import logging
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from sbts.core.dates import years_since
from sbts.core.errors import InputError, PluginError
from sbts.core.hookspecs import hookimpl
from sbts.core.interfaces import Exporter, ExportRequest
from sbts.core.metadata import GeoGrid
from sbts.core.products import MapProduct, Product, TimeSeries

from sbts.core.h5io import atomic_output
from sbts.core.mapselect import label_stem, output_path, parse_options, read_mask, select_map

logger = logging.getLogger(__name__)

_DISPLAY = {"velocity": (100.0, "cm/year"), "displacement": (100.0, "cm")}


def _simplekml():
    try:
        import simplekml
    except ImportError as exc:
        raise PluginError(f"the kmz exporters need simplekml ({exc}): pip install simplekml") from None
    return simplekml


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _check_geo(product: Product) -> GeoGrid:
    geo = product.metadata.grid.geo
    if geo is None:
        raise InputError(f"{product.path} is in radar coordinates; run `sbts geocode {product.path}`")
    if not geo.x_unit.lower().startswith("deg"):
        raise InputError(f"{product.path}: KML needs latitude/longitude; geocode without --utm/--epsg")
    return geo


def _vlim(text: str | None, data: np.ndarray, symmetric: bool) -> tuple[float, float]:
    if text:
        try:
            lo, hi = (float(v) for v in text.split(","))
        except ValueError:
            raise InputError(f"vlim={text!r}: expected MIN,MAX") from None
        if not hi > lo:
            raise InputError(f"vlim={text!r}: MAX must exceed MIN")
        return lo, hi
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return -1.0, 1.0
    if symmetric:
        v = float(np.percentile(np.abs(finite), 98)) or 1.0
        return -v, v
    lo, hi = (float(x) for x in np.percentile(finite, [2, 98]))
    return (lo, hi) if hi > lo else (lo - 1, lo + 1)


def _bounds(geo: GeoGrid, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """north, south, east, west edges of the grid (pixel corners)."""
    n, w = geo.y_first, geo.x_first
    s, e = n + shape[0] * geo.y_step, w + shape[1] * geo.x_step
    return max(n, s), min(n, s), max(e, w), min(e, w)


def _colorbar_png(path: Path, cmap: str, vlim: tuple[float, float], label: str) -> None:
    plt = _pyplot()
    import matplotlib as mpl

    fig = plt.figure(figsize=(0.9, 3.2), dpi=150)
    ax = fig.add_axes([0.15, 0.05, 0.25, 0.9])
    mpl.colorbar.ColorbarBase(ax, cmap=plt.get_cmap(cmap), norm=mpl.colors.Normalize(*vlim), label=label)
    ax.tick_params(labelsize=7)
    fig.savefig(path, transparent=False, facecolor="white")
    plt.close(fig)


def _rgba(data: np.ndarray, cmap: str, vlim: tuple[float, float]) -> np.ndarray:
    plt = _pyplot()
    norm = (data - vlim[0]) / (vlim[1] - vlim[0])
    rgba = plt.get_cmap(cmap)(np.clip(np.nan_to_num(norm), 0, 1), bytes=True)
    rgba[..., 3] = np.where(np.isfinite(data), 255, 0)  # no data: transparent
    return rgba


def _save(kml, path: Path) -> None:
    with atomic_output(path) as tmp:
        kml.savekmz(str(tmp), format=False)


def _display(sel_kind: str, unit: str) -> tuple[float, str]:
    return _DISPLAY.get(sel_kind, (1.0, unit))


def _colour_bar_overlay(kml, bar: Path) -> None:
    """The colour-bar PNG pinned to the lower left of the screen."""
    import simplekml

    cb = kml.newscreenoverlay(name="colour bar")
    cb.icon.href = kml.addfile(str(bar))
    cb.overlayxy = simplekml.OverlayXY(x=0, y=0, xunits=simplekml.Units.fraction, yunits=simplekml.Units.fraction)
    cb.screenxy = simplekml.ScreenXY(x=0.02, y=0.08, xunits=simplekml.Units.fraction, yunits=simplekml.Units.fraction)
    cb.size.x, cb.size.y = 0, 0.4
    cb.size.xunits, cb.size.yunits = simplekml.Units.fraction, simplekml.Units.fraction


def _reference_placemark(kml_folder, product: Product, geo: GeoGrid) -> None:
    ref = product.metadata.reference
    if not ref.has_point:
        return
    lat, lon = geo.yx_to_lalo(ref.y, ref.x)
    p = kml_folder.newpoint(name="Reference point", coords=[(lon, lat)])
    p.description = f"REF_Y/REF_X = {ref.y}/{ref.x}; REF_LAT/REF_LON = {lat:.6f}/{lon:.6f}"
    p.style.iconstyle.icon.href = "http://maps.google.com/mapfiles/kml/paddle/wht-stars.png"
    p.style.iconstyle.scale = 1.0


class KmzExporter(Exporter):
    """One geocoded map as a coloured GroundOverlay with a colour bar."""

    name = "kmz"
    summary = "A geocoded map (velocity, a date, any 2-D dataset) as a Google Earth KMZ overlay with colour bar."
    description = textwrap.dedent("""\
    Writes <name>[_<dataset>].kmz: a GroundOverlay PNG (NaN transparent; LatLonBox = the grid's
    bounds), a ScreenOverlay colour bar and a placemark at the reference point.  DATASET: a 2-D
    dataset (default: the file's main map), a time-series date YYYYMMDD or pair YYYYMMDD_YYYYMMDD.
    Velocity is shown in cm/year and displacement in cm, other data in their units.

    \b
    Options:
      -O vlim=-5,5     colour limits in the displayed unit (default: ±98th percentile of |data|)
      -O cmap=jet      matplotlib colormap (default jet; RdBu_r, viridis, ...)
      -O mask=FILE     hide the pixels outside this mask (e.g. maskTempCoh.h5)""")
    requires_geocoded = True

    def export(self, request: ExportRequest) -> list[Path]:
        simplekml = _simplekml()
        opts = parse_options(request, {"vlim", "cmap", "mask"}, "kmz")
        product = Product.open(request.input_file)
        geo = _check_geo(product)
        sel = select_map(product, request.dataset)
        scale, unit = _display(sel.kind, sel.unit)
        data = sel.data * np.float32(scale)
        if opts.get("mask"):
            data = np.where(read_mask(opts["mask"], product.shape), data, np.nan)
        symmetric = sel.kind in ("velocity", "displacement", "phase")
        vlim = _vlim(opts.get("vlim"), data, symmetric)
        cmap = opts.get("cmap", "jet")
        _pyplot().get_cmap(cmap)  # an unknown name fails here, before any file is written
        stem = label_stem(product, sel)
        out = output_path(request, stem, ".kmz")
        north, south, east, west = _bounds(geo, product.shape)
        with tempfile.TemporaryDirectory() as tmpdir:
            img, bar = Path(tmpdir) / f"{stem}.png", Path(tmpdir) / f"{stem}_colorbar.png"
            _pyplot().imsave(img, _rgba(data, cmap, vlim))
            _colorbar_png(bar, cmap, vlim, f"{sel.name} [{unit}]")
            kml = simplekml.Kml(name=out.stem)
            ov = kml.newgroundoverlay(name=sel.name)
            ov.icon.href = kml.addfile(str(img))
            ov.latlonbox.north, ov.latlonbox.south = north, south
            ov.latlonbox.east, ov.latlonbox.west = east, west
            ov.description = f"{product.path.name}: {sel.name}, colour limits {vlim[0]:g}..{vlim[1]:g} {unit}"
            _colour_bar_overlay(kml, bar)
            _reference_placemark(kml, product, geo)
            _save(kml, out)
        logger.info("wrote %s", out)
        return [out]


# ------------------------------------------------------------------------- time series
def _svg_chart(years: np.ndarray, values: np.ndarray, labels: list[str]) -> str:
    """A small inline SVG line chart of one displacement history (cm)."""
    w, h, pad = 320, 140, 28
    ok = np.isfinite(values)
    if not ok.any():
        return "<p>no data</p>"
    t0, t1 = float(years.min()), float(years.max()) or 1.0
    v0, v1 = float(np.nanmin(values)), float(np.nanmax(values))
    if v1 - v0 < 1e-6:
        v0, v1 = v0 - 1, v1 + 1

    def xy(t, v):
        return pad + (t - t0) / (t1 - t0 or 1) * (w - pad - 6), h - pad + (v0 - v) / (v1 - v0) * (h - pad - 8)

    pts = " ".join("%.1f,%.1f" % xy(t, v) for t, v in zip(years[ok], values[ok]))
    dots = "".join('<circle cx="%.1f" cy="%.1f" r="2" fill="#d62728"/>' % xy(t, v) for t, v in zip(years[ok], values[ok]))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" style="background:#fff">'
            f'<line x1="{pad}" y1="{h - pad}" x2="{w - 6}" y2="{h - pad}" stroke="#888"/>'
            f'<line x1="{pad}" y1="8" x2="{pad}" y2="{h - pad}" stroke="#888"/>'
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{pts}"/>{dots}'
            f'<text x="2" y="14" font-size="10">{v1:.1f}</text><text x="2" y="{h - pad}" font-size="10">{v0:.1f}</text>'
            f'<text x="{pad}" y="{h - 8}" font-size="10">{labels[0]}</text>'
            f'<text x="{w - 60}" y="{h - 8}" font-size="10">{labels[-1]}</text></svg>')


def _balloon(lat: float, lon: float, vel: float, years, values, labels) -> str:
    rows = "".join(f"<tr><td>{d}</td><td align='right'>{'' if not np.isfinite(v) else f'{v:.2f}'}</td></tr>"
                   for d, v in zip(labels, values))
    return (f"<![CDATA[<div style='font-family:sans-serif;font-size:11px'>"
            f"<b>Lat, Lon</b>: {lat:.5f}, {lon:.5f}<br/><b>Velocity</b>: {vel:.2f} cm/year<br/>"
            f"<b>Displacement</b> (cm, LOS, positive toward the satellite):<br/>{_svg_chart(years, values, labels)}"
            f"<table border='0' cellspacing='0' style='font-size:10px'><tr><th>date</th><th>cm</th></tr>{rows}"
            f"</table></div>]]>")


def linear_rate(ts: TimeSeries, block=None) -> np.ndarray:
    """Least-squares linear velocity (m/year) of every pixel of a time series (NaN-free pixels)."""
    t = years_since(list(ts.dates))
    g = np.c_[np.ones_like(t), t]
    data = ts.read_dates(block).astype(np.float64)
    n, length, width = data.shape
    flat = data.reshape(n, -1)
    ok = np.all(np.isfinite(flat), axis=0)
    out = np.full(flat.shape[1], np.nan)
    if ok.any():
        out[ok] = np.linalg.lstsq(g, flat[:, ok], rcond=None)[0][1]
    return out.reshape(length, width).astype(np.float32)


def _dot_png(path: Path) -> None:
    """A white disc with a dark rim; IconStyle colours it per velocity bin."""
    plt = _pyplot()
    n = 32
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2)
    img = np.zeros((n, n, 4), np.uint8)
    img[r <= n / 2 - 1] = (255, 255, 255, 255)
    img[(r > n / 2 - 3) & (r <= n / 2 - 1)] = (40, 40, 40, 255)
    plt.imsave(path, img)


class KmzTimeSeriesExporter(Exporter):
    """Reliable points coloured by velocity, regionated by level of detail, with time-series balloons."""

    name = "kmz_timeseries"
    summary = "A geocoded time series as Google Earth points (coloured by velocity) with clickable histories."
    description = textwrap.dedent("""\
    FILE is a geocoded time series.  The points are the reliable pixels of the mask (-O mask=, default
    maskTempCoh.h5 beside FILE; all pixels when there is none), coloured by velocity (-O velocity=,
    default velocity.h5 beside FILE; else the linear rate fitted to the time series), at several
    sampling steps (-O steps=20,5,1 pixels): each level is tiled into boxes with a Region and Lod,
    so Google Earth switches to denser points as you zoom in.  Clicking a point shows its
    displacement history (cm) as an inline SVG chart and table.  The reference point is a star.

    \b
    Options: -O vlim=-2,2 (cm/year), -O cmap=jet, -O steps=20,5,1, -O velocity=FILE, -O mask=FILE,
    -O box=25 (points per box side).  -o names the .kmz (default: <name>.kmz beside FILE).""")
    requires_geocoded = True

    def export(self, request: ExportRequest) -> list[Path]:
        simplekml = _simplekml()
        opts = parse_options(request, {"vlim", "cmap", "steps", "velocity", "mask", "box"}, "kmz_timeseries")
        product = Product.open(request.input_file)
        if not isinstance(product, TimeSeries):
            raise InputError(f"{request.input_file} is not a time series; use `sbts export kmz` for maps")
        geo = _check_geo(product)
        shape = product.shape
        folder = product.path.parent
        velocity = self._velocity(product, opts.get("velocity"), folder)
        mask_path = Path(opts["mask"]) if opts.get("mask") else next(
            (p for p in (folder / "maskTempCoh.h5", folder / "geo_maskTempCoh.h5") if p.exists()), None)
        mask = read_mask(mask_path, shape) if mask_path is not None else np.ones(shape, bool)
        if mask_path is None:
            logger.warning("no mask beside %s: every pixel with data is shown", product.path)
        mask &= np.isfinite(velocity)
        if not mask.any():
            raise InputError(f"{product.path}: no reliable pixel with a velocity to show")
        try:
            steps = sorted({int(s) for s in opts.get("steps", "20,5,1").split(",")}, reverse=True)
            box = int(opts.get("box", 25))
        except ValueError:
            raise InputError("steps/box: integers expected (e.g. -O steps=20,5,1 -O box=25)") from None
        if min(steps) < 1 or box < 1:
            raise InputError("steps and box must be ≥ 1")
        vel_cm = velocity * 100
        vlim = _vlim(opts.get("vlim"), np.where(mask, vel_cm, np.nan), True)
        cmap_name = opts.get("cmap", "jet")
        plt = _pyplot()
        cmap = plt.get_cmap(cmap_name)
        years = years_since(list(product.dates))
        labels = list(product.date_strings)
        out = output_path(request, product.path.stem, ".kmz")
        with tempfile.TemporaryDirectory() as tmpdir:
            dot, bar = Path(tmpdir) / "dot.png", Path(tmpdir) / "colorbar.png"
            _dot_png(dot)
            _colorbar_png(bar, cmap_name, vlim, "LOS velocity [cm/year]")
            kml = simplekml.Kml(name=out.stem)
            dot_href = kml.addfile(str(dot))
            nbins = 64
            styles = []
            for k in range(nbins):
                r, g, b, _ = (int(255 * c) for c in cmap((k + 0.5) / nbins))
                st = simplekml.Style()
                st.iconstyle.icon.href = dot_href
                st.iconstyle.color = simplekml.Color.rgb(r, g, b)
                st.iconstyle.scale = 0.5
                st.labelstyle.scale = 0
                styles.append(st)
            _colour_bar_overlay(kml, bar)
            _reference_placemark(kml, product, geo)
            count = 0
            for level, step in enumerate(steps):
                lvl = kml.newfolder(name=f"every {step} px")
                finer = steps[level + 1] if level + 1 < len(steps) else None
                min_lod = 0 if level == 0 else 8 * box  # switch when points are ~8 screen px apart
                max_lod = -1 if finer is None else int(8 * box * step / finer)
                side = step * box
                for r0 in range(0, shape[0], side):
                    for c0 in range(0, shape[1], side):
                        rows = np.arange(r0 + step // 2, min(shape[0], r0 + side), step)
                        cols = np.arange(c0 + step // 2, min(shape[1], c0 + side), step)
                        if rows.size == 0 or cols.size == 0:
                            continue
                        sub = mask[np.ix_(rows, cols)]
                        if not sub.any():
                            continue
                        count += self._box(simplekml, lvl, product, geo, rows, cols, sub, vel_cm, vlim, styles,
                                           years, labels, min_lod, max_lod, (r0, c0, side))
            _save(kml, out)
        logger.info("wrote %s: %d placemarks over %d levels", out, count, len(steps))
        return [out]

    @staticmethod
    def _velocity(product: TimeSeries, explicit: str | None, folder: Path) -> np.ndarray:
        path = Path(explicit) if explicit else next(
            (p for p in (folder / "velocity.h5", folder / "geo_velocity.h5") if p.exists()), None)
        if path is None:
            logger.info("no velocity file beside %s: using the linear rate of the time series", product.path)
            return linear_rate(product)
        v = MapProduct(path)
        if v.shape != product.shape or not v.has("velocity"):
            raise InputError(f"{path}: needs a 'velocity' dataset on the grid of {product.path} ({product.shape})")
        return v.read("velocity").astype(np.float32)

    @staticmethod
    def _box(simplekml, parent, product, geo, rows, cols, sub, vel_cm, vlim, styles, years, labels,
             min_lod, max_lod, extent) -> int:
        from sbts.core.blocks import Block

        r0, c0, side = extent
        f = parent.newfolder(name=f"rows {r0}-{r0 + side}, cols {c0}-{c0 + side}")
        n_lat, s_lat = geo.y_first + r0 * geo.y_step, geo.y_first + min(product.shape[0], r0 + side) * geo.y_step
        w_lon, e_lon = geo.x_first + c0 * geo.x_step, geo.x_first + min(product.shape[1], c0 + side) * geo.x_step
        f.region = simplekml.Region(
            simplekml.LatLonAltBox(north=max(n_lat, s_lat), south=min(n_lat, s_lat), east=max(e_lon, w_lon),
                                   west=min(e_lon, w_lon)),
            simplekml.Lod(minlodpixels=min_lod, maxlodpixels=max_lod))
        block = Block(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
        data = product.read_dates(block)[:, rows - block.row_start][:, :, cols - block.col_start] * 100
        nbins = len(styles)
        n = 0
        for i, j in zip(*np.nonzero(sub)):
            y, x = int(rows[i]), int(cols[j])
            lat, lon = geo.yx_to_lalo(y, x)
            v = float(vel_cm[y, x])
            k = int(np.clip((v - vlim[0]) / (vlim[1] - vlim[0]) * nbins, 0, nbins - 1))
            p = f.newpoint(coords=[(lon, lat)])
            p.style = styles[k]
            p.description = _balloon(lat, lon, v, years, data[:, i, j], labels)
            p.extendeddata.newdata("velocity_cm_per_year", f"{v:.3f}")
            p.extendeddata.newdata("yx", f"{y},{x}")
            n += 1
        return n


@hookimpl
def sbts_exporters():
    return [KmzExporter(), KmzTimeSeriesExporter()]


__all__ = ["KmzExporter", "KmzTimeSeriesExporter", "linear_rate"]
