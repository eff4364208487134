"""``sbts export hdf5``: a subset (datasets, dates, pixels) of any sbts/MintPy file as a new MintPy file.

The copy keeps MintPy's layout (index datasets ``date``/``bperp``/``dropIfgram`` cut to the dates
kept) and its attributes, updated as MintPy's ``subset.py`` does: ``LENGTH/WIDTH``,
``X_FIRST/Y_FIRST`` moved to the new corner, ``REF_Y/REF_X`` shifted (also when the reference pixel
falls outside the box: the pieces of a scene keep their common reference; ``REF_LAT/REF_LON``
unchanged), ``STARTING_RANGE`` moved for radar coordinates, ``SUBSET_*`` recording the box in the
original pixels.  It is written block by block and atomically (:class:`~sbts.core.io.h5.H5Writer`),
so a large stack is never held in memory and a partial file never carries the final name.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Block,
    Exporter,
    ExportRequest,
    GeoGrid,
    Grid,
    H5Writer,
    IfgramStack,
    InputError,
    Metadata,
    Product,
    TimeSeries,
    hookimpl,
    open_h5,
    option_memory,
    parse_date,
    plan_blocks,
)

logger = logging.getLogger(__name__)

INDEX_DATASETS = ("date", "bperp", "dropIfgram")


class Hdf5Exporter(Exporter):
    """Copy datasets, a date range and/or a pixel box of a file into a new MintPy-layout HDF5 file."""

    name = "hdf5"
    summary = "A subset (datasets, date range, pixel box) of an sbts/MintPy file as a new MintPy HDF5 file."
    description = textwrap.dedent("""\
    Copies the datasets named by DATASET (comma-separated; default: all) of any sbts/MintPy file into
    a new HDF5 file in MintPy's layout, block by block.

    \b
    Options:
      -O start=YYYYMMDD -O end=YYYYMMDD   keep the dates (time series) or pairs (stack) in the range
      -O yx=y0:y1,x0:x1                   keep a pixel box (either bound may be empty)
      -O lalo=S:N,W:E                     keep a geographic box (geocoded files)
    Attributes follow as in MintPy's subset.py: LENGTH/WIDTH, X_FIRST/Y_FIRST, REF_Y/REF_X (shifted,
    even outside the box; REF_LAT/REF_LON kept), STARTING_RANGE, SUBSET_*.  -o names the output (default: sub_<name>.h5 beside the input).""")
    requires_geocoded = False

    def export(self, request: ExportRequest) -> list[Path]:
        product = Product.open(request.input_file)
        opts = {str(k).lower(): str(v) for k, v in request.options.items()}
        unknown = set(opts) - {"start", "end", "yx", "lalo", "max_memory"}
        if unknown:
            raise InputError(f"hdf5 export: unknown option(s) {', '.join(sorted(unknown))} "
                             "(known: start, end, yx, lalo)")
        output = _output(product.path, request.output)
        box = _box(product, opts)
        layers = _layers(product, opts.get("start"), opts.get("end"))
        names = _datasets(product, request.dataset)
        meta = _metadata(product.metadata, box)
        if layers is not None and isinstance(product, TimeSeries):  # the dates kept, as on any time series
            meta = meta.with_extra(START_DATE=product.date_strings[layers[0]], END_DATE=product.date_strings[layers[-1]])
        max_memory = option_memory(opts, request.compute.max_memory if request.compute else 1.0, "hdf5")
        y0, y1, x0, x1 = box
        out_shape = (y1 - y0, x1 - x0)
        num_layers = _num_layers(product)
        logger.info("writing %s: %s, rows %d:%d, cols %d:%d%s", output, ", ".join(names), y0, y1, x0, x1,
                    "" if layers is None else f", {len(layers)} of {num_layers} layers")
        with open_h5(product.path) as src, H5Writer(output, meta) as w:
            for name in names:
                ds = src[name]
                attrs = {k: v for k, v in ds.attrs.items() if k != "MODIFICATION_TIME"}
                layered = layers is not None and ds.ndim in (1, 2, 3) and ds.shape[0] == num_layers
                spatial = ds.ndim >= 2 and tuple(ds.shape[-2:]) == product.shape
                if not spatial:  # small index/auxiliary dataset: copy whole (cut to the layers kept)
                    data = ds[()]
                    w.create(name, data=data[layers] if layered else data, attrs=attrs)
                    continue
                index = layers if layered and ds.ndim == 3 else None
                lead = (len(layers),) if index is not None else tuple(ds.shape[:-2])
                w.create(name, shape=lead + out_shape, dtype=ds.dtype, compression=ds.compression,
                         attrs=attrs)
                per_pixel = 2 * ds.dtype.itemsize * int(np.prod(lead or (1,)))
                for block in plan_blocks(out_shape, per_pixel, max_memory, product.chunk_shape(name)):
                    source = Block(block.row_start + y0, block.row_stop + y0,
                                   block.col_start + x0, block.col_stop + x0)
                    w.write(name, product.read(name, source, index), block)
        return [output]


def _output(path: Path, output: Path | None) -> Path:
    if output is None:
        out = path.with_name(f"sub_{path.name}")
    else:
        out = Path(output)
        if out.is_dir():
            out = out / f"sub_{path.name}"
    if out.resolve() == path.resolve():
        raise InputError(f"{out}: the output would overwrite the input; choose another name with -o")
    return out


def _num_layers(product: Product) -> int | None:
    if isinstance(product, TimeSeries):
        return len(product.dates)
    if isinstance(product, IfgramStack):
        return len(product.pairs)
    return None


def _layers(product: Product, start: str | None, end: str | None) -> np.ndarray | None:
    """Indices of the dates (time series) or pairs (stack) within [start, end]; None = all."""
    if not start and not end:
        return None
    try:
        lo = parse_date(start) if start else None
        hi = parse_date(end) if end else None
    except Exception:  # noqa: BLE001 - any unparsable date is the user's to fix
        raise InputError(f"start={start!r} / end={end!r}: dates must be YYYYMMDD") from None
    if isinstance(product, TimeSeries):
        firsts = lasts = np.array(product.dates)
    elif isinstance(product, IfgramStack):
        firsts, lasts = np.array(product.pairs.date1), np.array(product.pairs.date2)
    else:
        raise InputError(f"{product.path}: a {product.metadata.file_type or 'map'} file has no dates; "
                         "drop -O start/end")
    keep = np.ones(len(firsts), bool)
    if lo is not None:
        keep &= np.array([d >= lo for d in firsts])
    if hi is not None:
        keep &= np.array([d <= hi for d in lasts])
    if not keep.any():
        raise InputError(f"{product.path}: no date between {start or 'the first'} and {end or 'the last'}")
    return np.flatnonzero(keep)


def _datasets(product: Product, dataset: str | None) -> list[str]:
    names = [n.strip() for n in dataset.split(",") if n.strip()] if dataset else list(product.datasets)
    for n in names:
        if not product.has(n):
            raise InputError(f"{product.path}: no dataset {n!r} (has: {', '.join(product.datasets)})")
    if isinstance(product, (TimeSeries, IfgramStack)):  # the layout needs its index datasets
        names = [n for n in INDEX_DATASETS if product.has(n) and n not in names] + names
    return names


def _box(product: Product, opts: dict[str, str]) -> tuple[int, int, int, int]:
    length, width = product.shape
    if "yx" in opts and "lalo" in opts:
        raise InputError("give -O yx or -O lalo, not both")
    if "lalo" in opts:
        geo = product.metadata.grid.geo
        if geo is None:
            raise InputError(f"{product.path} is in radar coordinates: use -O yx=y0:y1,x0:x1")
        try:
            (s, n), (w, e) = (sorted(float(v) for v in p.split(":")) for p in opts["lalo"].replace(" ", "").split(","))
        except ValueError:
            raise InputError(f"lalo={opts['lalo']!r}: expected S:N,W:E") from None
        ya, xa = geo.lalo_to_yx(n, w)
        yb, xb = geo.lalo_to_yx(s, e)
        y0, y1, x0, x1 = min(ya, yb), max(ya, yb) + 1, min(xa, xb), max(xa, xb) + 1
    elif "yx" in opts:
        text = opts["yx"]
        try:
            ys, xs = text.replace(" ", "").split(",")
            (a, b), (c, d) = (p.split(":") for p in (ys, xs))
            y0, y1 = int(a) if a else 0, int(b) if b else length
            x0, x1 = int(c) if c else 0, int(d) if d else width
        except ValueError:
            raise InputError(f"yx={text!r}: expected y0:y1,x0:x1") from None
    else:
        return 0, length, 0, width
    y0, x0, y1, x1 = max(0, y0), max(0, x0), min(length, y1), min(width, x1)
    if y1 <= y0 or x1 <= x0:
        raise InputError(f"the subset is empty or outside the {length}×{width} image of {product.path}")
    return y0, y1, x0, x1


def _metadata(meta: Metadata, box: tuple[int, int, int, int]) -> Metadata:
    y0, y1, x0, x1 = box
    if (y0, y1, x0, x1) == (0, meta.grid.length, 0, meta.grid.width):
        return meta
    geo = meta.grid.geo
    if geo is not None:
        geo = GeoGrid(geo.x_first + x0 * geo.x_step, geo.y_first + y0 * geo.y_step, geo.x_step, geo.y_step,
                      geo.x_unit, geo.y_unit, geo.epsg)
    out = meta.replace(grid=Grid(y1 - y0, x1 - x0, geo))
    ref = meta.reference
    if ref.has_point:
        # as MintPy's subset (utils.attribute.update_attribute4subset): REF_Y/REF_X shifted into the
        # subset's pixels even when they fall outside it, REF_LAT/REF_LON kept, so the pieces of a
        # scene keep one common reference (image_stitch.py re-derives REF_Y/X from REF_LAT/LON)
        out = out.with_reference(y=ref.y - y0, x=ref.x - x0)
        if not (y0 <= ref.y < y1 and x0 <= ref.x < x1):
            logger.warning("the reference pixel (%d, %d) is outside the subset: REF_Y/REF_X = %d/%d point outside "
                           "the new image, as MintPy's subset writes them", ref.y, ref.x, ref.y - y0, ref.x - x0)
    if geo is None and meta.radar.starting_range is not None and meta.radar.range_pixel_size is not None:
        out = out.with_radar(starting_range=meta.radar.starting_range + x0 * meta.radar.range_pixel_size)
    # SUBSET_* is the box in the pixels of the original (loaded) image, as the loader writes it
    oy = int(meta.extra.get("SUBSET_YMIN", 0) or 0)
    ox = int(meta.extra.get("SUBSET_XMIN", 0) or 0)
    return out.with_extra(SUBSET_YMIN=oy + y0, SUBSET_YMAX=oy + y1, SUBSET_XMIN=ox + x0, SUBSET_XMAX=ox + x1)


@hookimpl
def sbts_exporters():
    return [Hdf5Exporter()]
