"""``sbts export kmz`` and ``kmz_timeseries``: Google Earth files of geocoded products.

``kmz``: one map as a ``GroundOverlay`` (a PNG coloured with a matplotlib colormap, NaN transparent,
``LatLonBox`` = the grid bounds), a ``ScreenOverlay`` colour bar and a reference-point placemark.

``kmz_timeseries``: the reliable pixels (mask) as placemarks coloured by velocity, in a
level-of-detail grid: one folder per sampling step (default 20, 5, 1 pixels), each tiled into
boxes.  Every box is a KML file of its own in the KMZ, reached from doc.kml by a ``NetworkLink``
whose ``Region``/``Lod`` makes Google Earth fetch it only when the box is in view at that zoom: doc.kml
stays small (a few hundred bytes per box) and no file grows with the scene, so a whole frame opens
at once.  Clicking a point opens a balloon with its displacement history as an inline SVG chart and
a table (no external JavaScript).

``kmz`` is written with simplekml, ``kmz_timeseries`` as KML text (its region files are many and
regular).  matplotlib and simplekml are imported only when a file is written.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from sbts.core.api import (
    ComputeOptions,
    Exporter,
    ExportRequest,
    GeoGrid,
    InputError,
    MapProduct,
    PluginError,
    Product,
    RunProducts,
    Template,
    TimeSeries,
    atomic_output,
    hookimpl,
    label_stem,
    option_memory,
    output_path,
    parse_options,
    pixel_bytes,
    plan_blocks_for,
    progress,
    read_mask,
    run_blocks,
    select_map,
    years_since,
)
from sbts.plugins.exporters._zip import Deflated, ZipWriter, deflate

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


_NO = ("no", "none", "false", "off", "0")


def reliable_pixels(product: Product, option: str | None) -> tuple[np.ndarray | None, str]:
    """Where to show a velocity/time-series map, and why: as MintPy's save_kmz, the reliable-pixel mask
    ``maskTempCoh.h5`` beside the file (``geo_maskTempCoh.h5`` beside ``geo_*``) unless ``-O mask=``
    names another or ``no``; the inversion leaves water and unreliable pixels out of it.

    Pixels the inversion left empty (0, MintPy's no-data, other than the reference pixel) are hidden
    even without a mask file: shown, they would read as 0 cm/year.
    """
    shape = product.shape
    kind = product.metadata.file_type
    mask, why = None, "no mask"
    if option and option.strip().lower() not in _NO:
        mask, why = read_mask(option, shape), f"mask {option}"
    elif option is None and kind in ("velocity", "timeseries"):
        prefix = "geo_" if product.path.name.startswith("geo_") else ""
        for name in (f"{prefix}maskTempCoh.h5", "maskTempCoh.h5", "geo_maskTempCoh.h5"):
            path = product.path.with_name(name)
            if path.is_file():
                candidate = MapProduct(path)
                if candidate.shape == shape:
                    mask, why = read_mask(path, shape), f"reliable pixels of {path.name}"
                    break
        if mask is None:
            logger.warning("no maskTempCoh.h5 beside %s: unreliable pixels are shown (give -O mask=FILE)",
                           product.path)
    return mask, why


def _empty_pixels(product: Product, data: np.ndarray) -> np.ndarray | None:
    """Exact zeros of a velocity or time-series map other than at the reference pixel (no data)."""
    if product.metadata.file_type not in ("velocity", "timeseries"):
        return None
    empty = data == 0
    ref = product.metadata.reference
    if ref.has_point and 0 <= ref.y < data.shape[0] and 0 <= ref.x < data.shape[1]:
        empty[ref.y, ref.x] = False
    return empty if empty.any() else None


def _restart_ids(simplekml) -> None:
    """simplekml numbers its elements (``id="N"``) from a counter shared by every document of the
    process; it restarts at 0 for each file so that a file does not depend on what was written before
    it (the same map gives the same bytes; tests/plugins/exporters/test_export_kmz.py checks it)."""
    base = getattr(simplekml, "base", None)
    if base is not None and hasattr(getattr(base, "Kmlable", None), "_globalid"):
        base.Kmlable._globalid = 0


def _save(kml, path: Path) -> None:
    """simplekml's archive, its members re-stored with a fixed time (:class:`._zip.ZipWriter`)."""
    with tempfile.TemporaryDirectory() as tmpdir:
        raw = Path(tmpdir) / "simplekml.kmz"
        kml.savekmz(str(raw), format=False)
        with atomic_output(path) as tmp, zipfile.ZipFile(raw) as src, open(tmp, "wb") as dst:
            archive = ZipWriter(dst)
            for name in src.namelist():
                archive.add(deflate(name, src.read(name)))
            archive.close()


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


KMZ_KEY = "mintpy.save.kmz"


@dataclass(frozen=True)
class KmzRunOptions:
    """``mintpy.save.kmz``: the google_earth step of ``sbts run`` writes a KMZ of the velocity."""

    enabled: bool = True


class KmzExporter(Exporter):
    """One geocoded map as a coloured GroundOverlay with a colour bar.

    As the google_earth step of ``sbts run`` (``mintpy.save.kmz``, on by default as in MintPy) it
    writes ``pic/<geocoded velocity>.kmz`` of the velocity.
    """

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
      -O mask=FILE     hide the pixels outside this mask; default for velocity and time series: the
                       maskTempCoh.h5 beside FILE (geo_maskTempCoh.h5 beside geo_*), as MintPy;
                       -O mask=no shows every pixel with data""")
    requires_geocoded = True
    step = "google_earth"
    keys = {KMZ_KEY: "yes: KMZ of the velocity for Google Earth (pic/geo_velocity.kmz)"}
    uses = ("velocity", "mask")  # the reliable pixels shown (maskTempCoh.h5, as MintPy's save_kmz)

    def parse_options(self, template: Template) -> KmzRunOptions:
        return KmzRunOptions(template.get_bool(KMZ_KEY))

    def enabled(self, options: KmzRunOptions) -> bool:
        return options.enabled

    def run_request(self, products: RunProducts, options: KmzRunOptions) -> ExportRequest:
        if products.velocity is None:
            raise InputError(f"{products.work_dir}: no velocity.h5 for the KMZ; run the velocity step first, "
                             f"or set {KMZ_KEY} = no")
        return ExportRequest(products.velocity, "velocity",
                             products.work_dir / "pic" / f"{products.velocity.stem}.kmz")

    def export(self, request: ExportRequest) -> list[Path]:
        simplekml = _simplekml()
        opts = parse_options(request, {"vlim", "cmap", "mask"}, "kmz")
        product = Product.open(request.input_file)
        geo = _check_geo(product)
        sel = select_map(product, request.dataset)
        scale, unit = _display(sel.kind, sel.unit)
        data = sel.data * np.float32(scale)
        empty = _empty_pixels(product, sel.data) if sel.kind == "velocity" else None
        if empty is not None:
            data = np.where(empty, np.nan, data)
        mask, why = reliable_pixels(product, opts.get("mask"))
        if mask is not None:
            data = np.where(mask, data, np.nan)
            logger.info("kmz: showing the %s (%d of %d pixels)", why, int(np.isfinite(data).sum()), data.size)
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
            _restart_ids(simplekml)
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
KML_NS = "http://www.opengis.net/kml/2.2"
_DOT = "files/dot.png"
_COLORBAR = "files/colorbar.png"
_NBINS = 64  # colour classes of the points (one Style each)


_CHART_W, _CHART_H, _CHART_PAD = 320, 140, 28


def _svg_charts(years: np.ndarray, values: np.ndarray, labels) -> list[str]:
    """Small inline SVG line charts of displacement histories (cm), one per row of ``values``
    ``(points, dates)``; one marker definition draws the dots at every date, so a chart costs a few
    bytes per date.  The points are scaled for all rows at once (the arithmetic of one row, in its
    dtype) and formatted from Python numbers (numpy scalars format several times slower)."""
    w, h, pad = _CHART_W, _CHART_H, _CHART_PAD
    values = np.asarray(values)
    ok = np.isfinite(values)
    some = ok.any(axis=1)
    t0, t1 = float(years.min()), float(years.max())
    x = pad + (years - t0) / ((t1 - t0) or 1.0) * (w - pad - 6)
    x_text = [f"{a:.0f}" for a in x.tolist()]
    with np.errstate(invalid="ignore", all="ignore"):
        lo = np.where(some, np.nanmin(np.where(ok, values, np.inf), axis=1), 0).astype(np.float64)
        hi = np.where(some, np.nanmax(np.where(ok, values, -np.inf), axis=1), 0).astype(np.float64)
    flat = hi - lo < 1e-6
    lo = np.where(flat, lo - 1, lo)
    hi = np.where(flat, hi + 1, hi)
    dt = values.dtype if values.dtype.kind == "f" else np.dtype(np.float64)
    with np.errstate(invalid="ignore"):
        y = (h - pad) + (lo.astype(dt)[:, None] - values) / (hi - lo).astype(dt)[:, None] * dt.type(h - pad - 8)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" style="background:#fff">'
            '<defs><marker id="d" viewBox="0 0 4 4" refX="2" refY="2" markerWidth="4" markerHeight="4">'
            '<circle cx="2" cy="2" r="2" fill="#d62728"/></marker></defs>'
            f'<line x1="{pad}" y1="{h - pad}" x2="{w - 6}" y2="{h - pad}" stroke="#888"/>'
            f'<line x1="{pad}" y1="8" x2="{pad}" y2="{h - pad}" stroke="#888"/>'
            '<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" marker-start="url(#d)" '
            'marker-mid="url(#d)" marker-end="url(#d)" points="')
    tail = (f'<text x="{pad}" y="{h - 8}" font-size="10">{labels[0]}</text>'
            f'<text x="{w - 60}" y="{h - 8}" font-size="10">{labels[-1]}</text></svg>')
    charts = []
    for row_ok, row_y, any_ok, v0, v1 in zip(ok.tolist(), y.tolist(), some.tolist(), lo.tolist(), hi.tolist()):
        if not any_ok:
            charts.append("<p>no data</p>")
            continue
        pts = " ".join(f"{a},{b:.0f}" for a, b, good in zip(x_text, row_y, row_ok) if good)
        charts.append(f'{head}{pts}"/><text x="2" y="14" font-size="10">{v1:.1f}</text>'
                      f'<text x="2" y="{h - pad}" font-size="10">{v0:.1f}</text>{tail}')
    return charts


def _value_lists(labels, values: np.ndarray) -> list[str]:
    """Each row of ``values`` as ``date value`` lines (cm; empty where NaN)."""
    out = []
    for row in values.tolist():
        out.append("\n".join(f"{d} {f'{v:8.2f}' if v == v and abs(v) != float('inf') else ''}"
                             for d, v in zip(labels, row)))
    return out



def linear_rate(ts: TimeSeries, block=None, max_memory: float = 1.0) -> np.ndarray:
    """Least-squares linear velocity (m/year) of every pixel of a time series (NaN-free pixels), over
    ``block`` or the whole grid, read block by block within ``max_memory`` GB."""
    if block is None:
        n = len(ts.dates)
        out = np.full(ts.shape, np.nan, np.float32)
        # float32 read, float64 copy and the selected columns
        for b in plan_blocks_for(ts.shape, pixel_bytes(n, 4) + pixel_bytes(n, 8, copies=2), max_memory,
                                 ts.chunk_shape(ts.dataset_name)):
            out[b.slices] = linear_rate(ts, b)
        return out
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


def _png_bytes(image: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    _pyplot().imsave(buf, image, format="png")
    return buf.getvalue()


def _dot_png() -> bytes:
    """A white disc with a dark rim; IconStyle colours it per velocity bin."""
    n = 32
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2)
    img = np.zeros((n, n, 4), np.uint8)
    img[r <= n / 2 - 1] = (255, 255, 255, 255)
    img[(r > n / 2 - 3) & (r <= n / 2 - 1)] = (40, 40, 40, 255)
    return _png_bytes(img)


def _kml_colour(rgba) -> str:
    """KML colour ``aabbggrr`` of a matplotlib RGBA tuple (0..1)."""
    r, g, b = (int(round(255 * c)) for c in rgba[:3])
    return f"ff{b:02x}{g:02x}{r:02x}"


def _region_xml(north: float, south: float, east: float, west: float, min_lod: int, max_lod: int) -> str:
    return (f"<Region><LatLonAltBox><north>{north:.8f}</north><south>{south:.8f}</south><east>{east:.8f}</east>"
            f"<west>{west:.8f}</west></LatLonAltBox><Lod><minLodPixels>{min_lod}</minLodPixels>"
            f"<maxLodPixels>{max_lod}</maxLodPixels></Lod></Region>")


def _kml_document(name: str, body: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="{KML_NS}"><Document><name>{escape(name)}</name>'
            f"{body}</Document></kml>\n")


class KmzTimeSeriesExporter(Exporter):
    """Reliable points coloured by velocity, regionated by level of detail, with time-series balloons."""

    name = "kmz_timeseries"
    summary = "A geocoded time series as Google Earth points (coloured by velocity) with clickable histories."
    description = textwrap.dedent("""\
    FILE is a geocoded time series.  The points are the reliable pixels of the mask (-O mask=, default
    maskTempCoh.h5 beside FILE as MintPy; -O mask=no for all pixels with data), coloured by velocity
    (-O velocity=, default velocity.h5 beside FILE; else the linear rate fitted to the time series), at
    several sampling steps (-O steps=20,5,1 pixels).  Each level is tiled into boxes of BOX × BOX points
    (-O box=25); every box is a KML file of its own inside the KMZ, loaded through a NetworkLink with a
    Region and Lod only when it is in view at that zoom (doc.kml holds only the links), so a whole
    frame stays usable: Google Earth reads a few boxes at a time, never the full-resolution points of
    the frame at once.  Clicking a point shows its displacement history (cm) as an inline SVG chart
    and table.  The reference point is a star.

    \b
    Options: -O vlim=-2,2 (cm/year), -O cmap=jet, -O steps=20,5,1, -O velocity=FILE, -O mask=FILE|no,
    -O box=25 (points per box side), -O max_memory=1 (GB, for the linear rate read block by block when there
    is no velocity file).  -o names the .kmz (default: <name>.kmz beside FILE).""")
    requires_geocoded = True

    def export(self, request: ExportRequest) -> list[Path]:
        opts = parse_options(request, {"vlim", "cmap", "steps", "velocity", "mask", "box", "max_memory"},
                             "kmz_timeseries")
        max_memory = option_memory(opts, request.compute.max_memory if request.compute else 1.0, "kmz_timeseries")
        product = Product.open(request.input_file)
        if not isinstance(product, TimeSeries):
            raise InputError(f"{request.input_file} is not a time series; use `sbts export kmz` for maps")
        geo = _check_geo(product)
        folder = product.path.parent
        velocity = self._velocity(product, opts.get("velocity"), folder, max_memory)
        reliable, why = reliable_pixels(product, opts.get("mask"))
        mask = np.isfinite(velocity) if reliable is None else reliable & np.isfinite(velocity)
        empty = _empty_pixels(product, np.where(np.isfinite(velocity), velocity, np.nan))
        if empty is not None:
            mask &= ~empty
        if not mask.any():
            raise InputError(f"{product.path}: no reliable pixel with a velocity to show ({why})")
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
        cmap = _pyplot().get_cmap(cmap_name)
        colours = [_kml_colour(cmap((k + 0.5) / _NBINS)) for k in range(_NBINS)]
        years = years_since(list(product.dates))
        labels = list(product.date_strings)
        out = output_path(request, product.path.stem, ".kmz")
        with atomic_output(out) as tmp:
            count, links = self._write(tmp, out.stem, product, geo, mask, steps, box, vel_cm, vlim, cmap_name,
                                       colours, years, labels, request.compute)
        logger.info("wrote %s: %d placemarks over %d levels in %d region files (%s)", out, count, len(steps),
                    links, why)
        return [out]

    def _write(self, tmp: Path, title: str, product: TimeSeries, geo: GeoGrid, mask, steps, box, vel_cm, vlim,
               cmap_name, colours, years, labels, compute: ComputeOptions | None = None) -> tuple[int, int]:
        """Write the KMZ: doc.kml first (Google Earth opens the archive's first KML: overlays and the
        NetworkLinks), then one KML per box and level, and the icons.

        The region files are made by the run's workers (their points' text is most of the work) and
        stored here in the order of doc.kml's links, so the archive is the same for any number of
        workers, in the pool or on dask."""
        shape = product.shape
        boxes, folders = [], []
        for level, step in enumerate(steps):
            finer = steps[level + 1] if level + 1 < len(steps) else None
            min_lod = 0 if level == 0 else 8 * box  # switch when points are ~8 screen px apart
            max_lod = -1 if finer is None else int(8 * box * step / finer)
            side = step * box
            links = []
            for r0 in range(0, shape[0], side):
                for c0 in range(0, shape[1], side):
                    rows = np.arange(r0 + step // 2, min(shape[0], r0 + side), step)
                    cols = np.arange(c0 + step // 2, min(shape[1], c0 + side), step)
                    if rows.size == 0 or cols.size == 0:
                        continue
                    sub = mask[np.ix_(rows, cols)]
                    if not sub.any():
                        continue
                    name = f"L{level}_{step}px_r{r0}_c{c0}.kml"
                    boxes.append(_Box(name, rows, cols, sub, vel_cm[np.ix_(rows, cols)]))
                    region = _region_xml(*self._bounds(geo, shape, r0, c0, side), min_lod, max_lod)
                    links.append(f"<NetworkLink><name>rows {r0}-{min(shape[0], r0 + side)}, cols {c0}-"
                                 f"{min(shape[1], c0 + side)}</name>{region}<Link><href>{name}</href>"
                                 "<viewRefreshMode>onRegion</viewRefreshMode></Link></NetworkLink>")
            folders.append(f"<Folder><name>every {step} px</name>{''.join(links)}</Folder>")
        count = 0
        style = _BoxStyle(geo, vlim, tuple(colours), years, tuple(labels))
        workers, cluster = (compute.num_worker, compute.cluster) if compute else (1, None)
        groups = _box_groups(boxes, workers)
        with tempfile.TemporaryDirectory() as tmpdir, open(tmp, "wb") as out:
            z = ZipWriter(out)
            z.add(deflate("doc.kml", _kml_document(title, self._overlays(product, geo) + "".join(folders))))
            bar = Path(tmpdir) / "colorbar.png"
            _colorbar_png(bar, cmap_name, vlim, "LOS velocity [cm/year]")
            z.add(deflate(_COLORBAR, bar.read_bytes()))
            z.add(deflate(_DOT, _dot_png()))
            # stored in doc.kml's link order (ordered: dask too), whoever made them
            results = run_blocks(groups, functools.partial(_read_boxes, product), functools.partial(_boxes_kml, style),
                                 workers=workers, cluster=cluster, ordered=True)
            for _group, members in progress(results, "KMZ time-series regions", "group", total=len(groups)):
                for member, n in members:
                    z.add(member)
                    count += n
            z.close()
        return count, len(boxes)

    @staticmethod
    def _overlays(product: TimeSeries, geo: GeoGrid) -> str:
        """The colour bar (screen overlay) and the reference-point star of doc.kml."""
        text = (f"<ScreenOverlay><name>colour bar</name><Icon><href>{_COLORBAR}</href></Icon>"
                '<overlayXY x="0" y="0" xunits="fraction" yunits="fraction"/>'
                '<screenXY x="0.02" y="0.08" xunits="fraction" yunits="fraction"/>'
                '<size x="0" y="0.4" xunits="fraction" yunits="fraction"/></ScreenOverlay>')
        ref = product.metadata.reference
        if ref.has_point:
            lat, lon = geo.yx_to_lalo(ref.y, ref.x)
            text += ("<Placemark><name>Reference point</name>"
                     f"<description>REF_Y/REF_X = {ref.y}/{ref.x}; REF_LAT/REF_LON = {lat:.6f}/{lon:.6f}"
                     "</description><Style><IconStyle><scale>1.0</scale><Icon><href>"
                     "http://maps.google.com/mapfiles/kml/paddle/wht-stars.png</href></Icon></IconStyle></Style>"
                     f"<Point><coordinates>{lon:.8f},{lat:.8f},0</coordinates></Point></Placemark>")
        return text

    @staticmethod
    def _bounds(geo: GeoGrid, shape, r0: int, c0: int, side: int) -> tuple[float, float, float, float]:
        n_lat, s_lat = geo.y_first + r0 * geo.y_step, geo.y_first + min(shape[0], r0 + side) * geo.y_step
        w_lon, e_lon = geo.x_first + c0 * geo.x_step, geo.x_first + min(shape[1], c0 + side) * geo.x_step
        return max(n_lat, s_lat), min(n_lat, s_lat), max(e_lon, w_lon), min(e_lon, w_lon)

    @staticmethod
    def _velocity(product: TimeSeries, explicit: str | None, folder: Path, max_memory: float) -> np.ndarray:
        path = Path(explicit) if explicit else next(
            (p for p in (folder / "velocity.h5", folder / "geo_velocity.h5") if p.exists()), None)
        if path is None:
            logger.info("no velocity file beside %s: using the linear rate of the time series", product.path)
            return linear_rate(product, max_memory=max_memory)
        v = MapProduct(path)
        if v.shape != product.shape or not v.has("velocity"):
            raise InputError(f"{path}: needs a 'velocity' dataset on the grid of {product.path} ({product.shape})")
        return v.read("velocity").astype(np.float32)

@dataclass(frozen=True)
class _Box:
    """One region file: the sampled rows and columns of a box of one level, which of its points are
    shown (``sub``) and their velocities (cm/year)."""

    name: str
    rows: np.ndarray
    cols: np.ndarray
    sub: np.ndarray
    vel_cm: np.ndarray


@dataclass(frozen=True)
class _BoxStyle:
    """What every region file shares: the grid, the colour classes and the dates."""

    geo: GeoGrid
    vlim: tuple[float, float]
    colours: tuple[str, ...]
    years: np.ndarray
    labels: tuple[str, ...]


#: points' text a task makes: enough that a task's start costs little beside it (~50 ms at 60 dates),
#: few enough that the region files wait in memory briefly
_POINTS_PER_TASK = 20_000


def _box_groups(boxes: list[_Box], workers: int) -> list[list[_Box]]:
    """Consecutive boxes in groups of about ``_POINTS_PER_TASK`` points, at least 4 groups a worker
    when there are enough boxes (so that the workers finish together)."""
    total = sum(int(b.sub.sum()) for b in boxes)
    target = max(1, min(_POINTS_PER_TASK, -(-total // (4 * workers)) if workers > 1 else _POINTS_PER_TASK))
    groups: list[list[_Box]] = []
    points = 0
    for b in boxes:
        if not groups or points >= target:
            groups.append([])
            points = 0
        groups[-1].append(b)
        points += int(b.sub.sum())
    return groups


def _read_boxes(product: TimeSeries, group: list[_Box]) -> list[np.ndarray]:
    """The displacement (cm) of the sampled pixels of every box of a group (a worker's read)."""
    from sbts.core.api import Block

    out = []
    for b in group:
        block = Block(int(b.rows[0]), int(b.rows[-1]) + 1, int(b.cols[0]), int(b.cols[-1]) + 1)
        data = product.read_dates(block)[:, b.rows - block.row_start][:, :, b.cols - block.col_start]
        out.append(data * 100)
    return out


def _boxes_kml(style: _BoxStyle, group: list[_Box], data: list[np.ndarray]) -> list[tuple[Deflated, int]]:
    """(the zip member, number of points) of every region file of a group: the worker writes the KML
    and deflates it (:mod:`._zip`), the archive's writer only stores the bytes."""
    out = []
    for b, d in zip(group, data):
        name, text, n = _box_kml(b, d, style)
        out.append((deflate(name, text), n))
    return out


def _box_kml(b: _Box, data: np.ndarray, style: _BoxStyle) -> tuple[str, str, int]:
    """One region file: the points of one box of one level, with the styles they use.  Each point's
    balloon: position, velocity, the history as a chart and as a date/value list (plain preformatted
    text: 16 bytes a date, where an HTML table row costs 40)."""
    geo, vlim, colours = style.geo, style.vlim, style.colours
    ii, jj = np.nonzero(b.sub)
    ys, xs = b.rows[ii], b.cols[jj]
    lats = geo.y_first + (ys + 0.5) * geo.y_step
    lons = geo.x_first + (xs + 0.5) * geo.x_step
    vels = b.vel_cm[ii, jj].astype(np.float64)
    bins = np.clip(((vels - vlim[0]) / (vlim[1] - vlim[0]) * _NBINS).astype(int), 0, _NBINS - 1)
    styles = "".join(f'<Style id="v{k}"><IconStyle><color>{colours[k]}</color><scale>0.5</scale><Icon><href>'
                     f"{_DOT}</href></Icon></IconStyle><LabelStyle><scale>0</scale></LabelStyle></Style>"
                     for k in np.unique(bins).tolist())
    labels = list(style.labels)
    values = np.ascontiguousarray(data[:, ii, jj].T)  # (points, dates)
    charts = _svg_charts(style.years, values, labels)
    lists = _value_lists(labels, values)
    marks = []
    for y, x, lat, lon, v, k, chart, rows in zip(ys.tolist(), xs.tolist(), lats.tolist(), lons.tolist(),
                                                 vels.tolist(), bins.tolist(), charts, lists):
        # KML 2.2 order of a Feature's children: description, styleUrl, ExtendedData, then the geometry
        marks.append(f"<Placemark><description><![CDATA[<div style='font-family:sans-serif;font-size:11px'>"
                     f"<b>Lat, Lon</b>: {lat:.5f}, {lon:.5f}<br/><b>Velocity</b>: {v:.2f} cm/year<br/>"
                     f"<b>Displacement</b> (cm, LOS, positive toward the satellite):<br/>{chart}"
                     f"<pre style='font-size:10px'>date           cm\n{rows}</pre></div>]]></description>"
                     f"<styleUrl>#v{k}</styleUrl>"
                     f'<ExtendedData><Data name="velocity_cm_per_year"><value>{v:.3f}</value></Data>'
                     f'<Data name="yx"><value>{y},{x}</value></Data></ExtendedData>'
                     f"<Point><coordinates>{lon:.8f},{lat:.8f},0</coordinates></Point></Placemark>")
    return b.name, _kml_document(b.name[:-4], styles + "".join(marks)), len(marks)


@hookimpl
def sbts_exporters():
    return [KmzExporter(), KmzTimeSeriesExporter()]


__all__ = ["KmzExporter", "KmzTimeSeriesExporter", "linear_rate"]
