"""``sbts export hdfeos5``: a geocoded time series as an HDF-EOS5 ``.he5`` file (UNAVCO/insarmaps layout).

One file holds the displacement cube, its quality layers and the geometry under
``/HDFEOS/GRIDS/timeseries/{observation,quality,geometry}``; each dataset carries ``Title``,
``MissingValue``, ``_FillValue`` and ``Units``; the root attributes are the product's metadata plus
UNAVCO's InSAR metadata (mission, beam, orbit, frames, dates, footprint ...).  The file name is
built from that metadata: ``<SAT>_<SW>_<RELORB:03d>_<FRAME1:04d>[_<FRAME2:04d>]_<DATE1>_<DATE2>.he5``.
Missing required items are named with the template line that supplies them.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Block,
    ChunkCodec,
    ComputeOptions,
    Exporter,
    ExportRequest,
    H5Writer,
    InputError,
    MapProduct,
    Metadata,
    Product,
    RunProducts,
    Template,
    TemplateError,
    TimeSeries,
    chunk_aligned,
    encode_dates,
    hookimpl,
    memory_per_task,
    mission_code,
    option_memory,
    pack_chunks,
    parse_options,
    plan_blocks,
    progress,
    run_blocks,
    safe_part,
    shown,
    unpack_chunks,
)

logger = logging.getLogger(__name__)

GROUP = "HDFEOS/GRIDS/timeseries"
GEOMETRY = ("height", "incidenceAngle", "slantRangeDistance", "azimuthAngle", "shadowMask", "waterMask",
            "latitude", "longitude", "bperp")
UNITS = {"displacement": "meters", "temporalCoherence": "1", "avgSpatialCoherence": "1", "mask": "1",
         "height": "meters", "incidenceAngle": "degrees", "slantRangeDistance": "meters",
         "azimuthAngle": "degrees", "shadowMask": "1", "waterMask": "1", "latitude": "degrees",
         "longitude": "degrees", "bperp": "meters"}
MISSIONS = {"sen": "S1", "s1": "S1", "sentinel-1": "S1", "sentinel1": "S1", "sentinel": "S1", "alos": "ALOS",
            "alos2": "ALOS2", "alos-2": "ALOS2", "csk": "CSK", "cosmo-skymed": "CSK", "env": "ENV", "envisat": "ENV",
            "ers": "ERS", "jers": "JERS", "nisar": "NISAR", "rs1": "RS1", "radarsat-1": "RS1", "rs2": "RS2",
            "radarsat-2": "RS2", "tsx": "TSX", "terrasar-x": "TSX", "uavsar": "UAV", "uav": "UAV"}
UNAVCO_KEYS = ("mission", "beam_mode", "beam_swath", "relative_orbit", "first_frame", "last_frame",
               "processing_dem", "unwrap_method", "atmos_correct_method")
# optional UNAVCO keys that MintPy's save_hdfeos5 writes even when nothing gives them (insarmaps reads them)
PLACEHOLDERS = {"atmos_correct_method": "None", "processing_dem": "Unknown", "unwrap_method": "Unknown"}
# UNAVCO keys MintPy writes as numbers, not strings
INT_KEYS = ("beam_swath", "relative_orbit", "first_frame", "last_frame")
FLOAT_KEYS = ("prf", "wavelength")


def _lookup(sources: list[dict[str, str]], key: str) -> str | None:
    """The value of ``key`` in the first source that has it (case-insensitive; template keys too)."""
    variants = {f"{prefix}{key}".lower() for prefix in ("", "mintpy.save.hdfeos5.", "unavco.", "hdfeos5.")}
    aliases = {"relative_orbit": {"track", "tracknumber", "track_number"}, "first_frame": {"frame"},
               "mission": {"platform"}}
    variants |= aliases.get(key, set())
    for src in sources:
        for k, v in src.items():
            if k.lower() in variants and str(v).strip() not in ("", "None", "none", "auto"):
                return str(v).strip()
    return None


def unavco_metadata(meta: Metadata, dates: list[str], opts: dict[str, str], template: dict[str, str]) -> dict[str, str]:
    """UNAVCO InSAR metadata from -O options, a template, then the file's attributes."""
    attrs = meta.to_attrs()
    sources = [opts, template, attrs]
    out: dict[str, str] = {}
    mission = _lookup(sources, "mission")
    if mission:
        mission = mission_code(mission) or MISSIONS.get(mission.lower(), mission.upper())
    beam_mode = _lookup(sources, "beam_mode") or ("IW" if mission == "S1" else None)
    missing = []
    for key, value, example in (("mission", mission, "S1"), ("beam_mode", beam_mode, "IW"),
                                ("relative_orbit", _lookup(sources, "relative_orbit"), "128")):
        if value is None:
            missing.append(f"{key} = {example}")
        out[key] = value or ""
    out["first_frame"] = _lookup(sources, "first_frame") or "0"  # MintPy's placeholder when not given
    if missing:
        raise InputError("HDF-EOS5 needs UNAVCO metadata that neither the options nor the file give: "
                         + "; ".join(missing) + ". Add the line(s) to a template passed with -O template=FILE "
                         "(or as mintpy.save.hdfEos5.<key>), or give -O key=value (e.g. -O "
                         + missing[0].replace(" = ", "=") + ")")
    for key in ("relative_orbit", "first_frame"):
        try:
            out[key] = str(int(float(out[key])))
        except ValueError:
            raise InputError(f"{key} = {out[key]!r}: must be an integer") from None
    last = _lookup(sources, "last_frame") or out["first_frame"]
    try:
        out["last_frame"] = str(int(float(last)))
    except ValueError:
        raise InputError(f"last_frame = {last!r}: must be an integer") from None
    beam_swath = _lookup(sources, "beam_swath") or "0"
    try:  # a number in MintPy's files (the swaths: 1, 123 ...), so never a path either
        out["beam_swath"] = str(int(float(beam_swath)))
    except ValueError:
        raise InputError(f"beam_swath = {shown(beam_swath)}: must be an integer (the swath numbers, e.g. 1 or 123)") from None
    for key, placeholder in PLACEHOLDERS.items():  # MintPy writes these keys always, with placeholders
        out[key] = _lookup(sources, key) or placeholder
    d1, d2 = dates[0], dates[-1]
    out["first_date"] = f"{d1[:4]}-{d1[4:6]}-{d1[6:]}"
    out["last_date"] = f"{d2[:4]}-{d2[4:6]}-{d2[6:]}"
    geo = meta.grid.geo
    s = geo.y_first + meta.grid.length * geo.y_step
    e = geo.x_first + meta.grid.width * geo.x_step
    n, w = geo.y_first, geo.x_first
    out["data_footprint"] = f"POLYGON(({w} {n},{e} {n},{e} {s},{w} {s},{w} {n}))"
    corners = [(_lookup(sources, f"LON_REF{i}"), _lookup(sources, f"LAT_REF{i}")) for i in (1, 3, 4, 2, 1)]  # MintPy's ring
    if all(a and b for a, b in corners):
        out["scene_footprint"] = "POLYGON((" + ",".join(f"{a} {b}" for a, b in corners) + "))"
    out["processing_type"] = "LOS_TIMESERIES"
    out["processing_software"] = meta.processor or "sbts"
    out["post_processing_method"] = "sbts"
    out["history"] = _dt.date.today().isoformat()
    direction = (meta.radar.orbit_direction or "").upper()
    if not direction and meta.radar.heading is not None:
        direction = "DESCENDING" if abs(meta.radar.heading) > 90 else "ASCENDING"
    out["flight_direction"] = (direction or "U")[0]  # MintPy: first letter of ORBIT_DIRECTION, else U(nknown)
    out["look_direction"] = "L" if meta.radar.antenna_side == 1 else "R"
    out["polarization"] = attrs.get("POLARIZATION") or _lookup(sources, "polarization") or "Unknown"
    out["prf"] = repr(meta.radar.prf if meta.radar.prf is not None else 0.0)
    if meta.radar.wavelength is not None:
        out["wavelength"] = repr(meta.radar.wavelength)
    return out


def he5_name(unavco: dict[str, str], dates: list[str], update: bool = False) -> str:
    """UNAVCO's file name; every part taken from metadata (options, template, attributes) is made
    safe, so ``PLATFORM = ../../x`` cannot put the file outside its folder."""
    mission = safe_part(unavco["mission"], "HDF-EOS5 mission")
    sw = safe_part(unavco["beam_mode"], "HDF-EOS5 beam_mode")
    if unavco["beam_swath"] not in ("0", ""):
        sw += safe_part(unavco["beam_swath"], "HDF-EOS5 beam_swath")
    frames = f"{int(unavco['first_frame']):04d}"
    if unavco["last_frame"] != unavco["first_frame"]:
        frames += f"_{int(unavco['last_frame']):04d}"
    last = "XXXXXXXX" if update else safe_part(dates[-1], "date")
    return f"{mission}_{sw}_{int(unavco['relative_orbit']):03d}_{frames}_{safe_part(dates[0], 'date')}_{last}.he5"


def _beside(ts_path: Path, names: tuple[str, ...], explicit: str | None, what: str, required: bool,
            shape: tuple[int, int] | None = None) -> Path | None:
    """The companion file ``what`` of the time series (given, else found by :mod:`sbts.core.io.workdir`
    among the files geocoded on its grid; a file off the grid is named in the error)."""
    from sbts.core.api import GEO_PREFIX, find_companion

    if explicit:
        p = Path(explicit)
        if not p.exists():
            raise InputError(f"{what} file {p}: not found")
        return p

    def on_grid(path: Path) -> bool:
        try:
            other = Product.open(path)
        except InputError:
            return False
        return shape is None or (other.metadata.grid.is_geocoded and tuple(other.shape) == tuple(shape))

    for name in names:
        found = find_companion(ts_path, name, accept=on_grid)
        if found is not None:
            return found
    if required:
        prefix = GEO_PREFIX if ts_path.name.startswith(GEO_PREFIX) else ""
        elsewhere = next((p for p in (find_companion(ts_path, n) for n in names) if p is not None), None)
        why = (f"; {elsewhere} is not geocoded on its grid ({shape}): `sbts geocode {elsewhere}`"
               if elsewhere is not None else "")
        raise InputError(f"no {what} file beside {ts_path} (looked for {', '.join(prefix + n for n in names)}){why}; "
                         f"give it with -O {what}=FILE")
    return None


HDFEOS5_KEY = "mintpy.save.hdfEos5"


@dataclass(frozen=True)
class HdfEos5RunOptions:
    """``mintpy.save.hdfEos5*`` and the UNAVCO metadata keys of the template (bare or with a
    prefix: ``relative_orbit``, ``unavco.relative_orbit``, ``mintpy.save.hdfEos5.relative_orbit``),
    which name the file and fill its attributes (so a changed one reruns the step)."""

    enabled: bool = False
    update: bool = False
    metadata: dict = field(default_factory=dict)


class HdfEos5Exporter(Exporter):
    """Time series + quality + geometry as one HDF-EOS5 file with UNAVCO metadata.

    As the hdfeos5 step of ``sbts run`` (``mintpy.save.hdfEos5 = yes``) it writes the last time
    series of the correction chain, on latitude/longitude, with its temporal coherence, mask,
    average spatial coherence and geometry, into the work directory (MintPy's name;
    ``mintpy.save.hdfEos5.update = yes``: end date ``XXXXXXXX``).
    """

    name = "hdfeos5"
    summary = "A geocoded time series with quality and geometry layers as an HDF-EOS5 .he5 (UNAVCO/insarmaps)."
    description = textwrap.dedent("""\
    FILE is a geocoded time series.  Found beside it (or given): temporalCoherence.h5 (-O tcoh=),
    maskTempCoh.h5 (-O mask=), the geometry (-O geometry=; geometryGeo.h5 or geo_geometryRadar.h5,
    also in inputs/), avgSpatialCoh.h5 (-O avg_spatial_coh=, optional).  Layout:
    /HDFEOS/GRIDS/timeseries/observation/{displacement,date,bperp},
    quality/{temporalCoherence,avgSpatialCoherence,mask}, geometry/{height,incidenceAngle,...,
    latitude,longitude}; per-dataset Title, MissingValue, _FillValue, Units.  Root attributes:
    the time series' metadata plus UNAVCO metadata.

    \b
    UNAVCO metadata: -O mission=S1 -O beam_mode=IW -O beam_swath=12 -O relative_orbit=128
    -O first_frame=593 -O last_frame=597 (mission, beam_mode and relative_orbit are required unless in
    the file's attributes or in a template given with -O template=FILE, as `relative_orbit = 128` or
    mintpy.save.hdfEos5.relative_orbit); the others get MintPy's placeholders when absent
    (frames 0, processing_dem / unwrap_method Unknown, atmos_correct_method None, polarization Unknown,
    prf 0, flight_direction U), so every .he5 carries the keys insarmaps reads.
    -O update=yes names the file ..._XXXXXXXX.he5 (MintPy's update mode).
    -o is the output file or folder (default: the standard name beside the input).""")
    requires_geocoded = True
    step = "hdfeos5"
    keys = {HDFEOS5_KEY: "yes: HDF-EOS5 product of the time series for insarmaps",
            HDFEOS5_KEY + ".update": "yes: name the file with end date XXXXXXXX (a product that is updated)",
            HDFEOS5_KEY + ".subset": "no (a subset product is not written by sbts: subset the inputs instead)"}
    uses = ("timeseries", "temporal_coherence", "mask", "avg_spatial_coherence", "geometry")

    def parse_options(self, template: Template) -> HdfEos5RunOptions:
        enabled = template.get_bool(HDFEOS5_KEY)
        update = template.get_bool(HDFEOS5_KEY + ".update")
        if template.get_bool(HDFEOS5_KEY + ".subset"):
            raise TemplateError(f"{HDFEOS5_KEY}.subset = yes: sbts writes the whole time series; set it to no "
                                "(a subset product: subset the time series first and `sbts export hdfeos5` it)")
        metadata = {}
        for key, value in template.values.items():  # given bare or with a prefix
            name = key.lower().rsplit(".", 1)[-1]
            if name in UNAVCO_KEYS + ("polarization",) and (key.lower() == name or key.lower().startswith(
                    ("unavco.", "hdfeos5.", HDFEOS5_KEY.lower() + "."))):
                metadata[key] = value
        return HdfEos5RunOptions(enabled, update, metadata)

    def enabled(self, options: HdfEos5RunOptions) -> bool:
        return options.enabled

    def run_request(self, products: RunProducts, options: HdfEos5RunOptions) -> ExportRequest:
        if products.timeseries is None:
            raise InputError(f"{products.work_dir}: no time series for the HDF-EOS5 product; run the inversion "
                             f"first, or set {HDFEOS5_KEY} = no")
        opts = {"template": str(products.template_file), "update": "yes" if options.update else "no"}
        for key, path in (("tcoh", products.temporal_coherence), ("mask", products.mask),
                          ("avg_spatial_coh", products.avg_spatial_coherence), ("geometry", products.geometry)):
            if path is not None:  # the companions on the time series' grid, named explicitly
                opts[key] = str(path)
        return ExportRequest(products.timeseries, None, products.work_dir, opts)

    def export(self, request: ExportRequest) -> list[Path]:
        known = set(UNAVCO_KEYS) | {"tcoh", "mask", "geometry", "avg_spatial_coh", "template", "update", "polarization"}
        opts = parse_options(request, known, "hdfeos5")
        product = Product.open(request.input_file)
        if not isinstance(product, TimeSeries):
            raise InputError(f"{request.input_file} is a {product.metadata.file_type or 'map'} file; HDF-EOS5 holds a "
                             "time series (timeseries*.h5)")
        if request.dataset:
            raise InputError("hdfeos5 exports the whole time series: drop DATASET")
        meta = product.metadata
        if meta.grid.geo is None:
            raise InputError(f"{request.input_file} is in radar coordinates; run `sbts geocode {request.input_file}`")
        template = {}
        if opts.get("template"):
            from sbts.core.api import parse_text, read_text_file

            template = parse_text(read_text_file(opts["template"]), opts["template"])
        dates = list(product.date_strings)
        unavco = unavco_metadata(meta, dates, {k: v for k, v in opts.items() if k in known}, template)
        ts = request.input_file
        shape = product.shape
        tcoh = _beside(ts, ("temporalCoherence.h5",), opts.get("tcoh"), "tcoh", True, shape)
        mask = _beside(ts, ("maskTempCoh.h5",), opts.get("mask"), "mask", True, shape)
        geom = _beside(ts, ("geometryGeo.h5", "geometryRadar.h5"), opts.get("geometry"), "geometry", True, shape)
        avg = _beside(ts, ("avgSpatialCoh.h5",), opts.get("avg_spatial_coh"), "avg_spatial_coh", False, shape)
        for p in (tcoh, mask, geom, avg):
            if p is not None:
                other = Product.open(p)
                if not other.metadata.grid.is_geocoded or other.shape != shape:
                    raise InputError(f"{p} is {'radar-coded' if not other.metadata.grid.is_geocoded else other.shape}; "
                                     f"it must be geocoded on the grid of {ts} ({shape}): `sbts geocode {p}`")
        update_text = opts.get("update", "no").lower()
        if update_text not in ("yes", "true", "1", "no", "false", "0"):
            raise InputError(f"hdfeos5 export: -O update={update_text[:40]!r}: use yes or no")
        update = update_text in ("yes", "true", "1")
        name = he5_name(unavco, dates, update)
        out = Path(request.output) if request.output else ts.with_name(name)
        if out.is_dir() or (request.output and not out.suffix):
            out = out / name
        attrs = {k: v for k, v in meta.to_attrs().items() if not k.startswith("SBTS_")}
        # as MintPy's prep_metadata: the template's own (non-mintpy) keys join the metadata
        attrs.update({k: v for k, v in template.items() if not k.lower().startswith(("mintpy", "isce", "sbts"))})
        attrs["FILE_TYPE"] = "HDFEOS"
        attrs.update(unavco)
        max_memory = option_memory(opts, request.compute.max_memory if request.compute else 0.5, "hdfeos5")
        with H5Writer(out, attrs) as w:
            for key in INT_KEYS + FLOAT_KEYS:  # MintPy's types (numbers), which readers may rely on
                if key in unavco:
                    w.file.attrs[key] = np.int64(unavco[key]) if key in INT_KEYS else np.float64(unavco[key])
            self._observation(w, product, max_memory, request.compute)
            self._map(w, "quality/temporalCoherence", tcoh, "temporalCoherence", np.float32)
            if avg is not None:
                self._map(w, "quality/avgSpatialCoherence", avg, "coherence", np.float32)
            else:
                logger.warning("no avgSpatialCoh.h5 beside %s: quality/avgSpatialCoherence left out", ts)
            self._map(w, "quality/mask", mask, "mask", np.bool_)
            self._geometry(w, Product.open(geom), meta, max_memory)
        logger.info("wrote %s", out)
        return [out]

    @staticmethod
    def _attrs(name: str, dtype=np.float32) -> dict:
        short = name.rsplit("/", 1)[-1]
        zero = np.bool_(False) if dtype in (bool, np.bool_) else np.float32(0)  # MintPy: BOOL_ZERO on masks
        return {"Title": short, "MissingValue": zero, "_FillValue": zero, "Units": UNITS.get(short, "1")}

    def _observation(self, w: H5Writer, ts: TimeSeries, max_memory: float, compute: ComputeOptions | None) -> None:
        """The lzf-compressed displacement, block by block: the blocks are read and compressed by the
        run's workers (:mod:`sbts.core.io.chunk_codec`: HDF5 compresses in the writing process only),
        and stored here as they come, in order; the file is the same whatever the number of workers."""
        n = len(ts.dates)
        shape = ts.shape
        w.create(f"{GROUP}/observation/date", data=encode_dates(ts.date_strings),
                 attrs=self._attrs("date") | {"Units": "YYYYMMDD"})
        w.create(f"{GROUP}/observation/bperp", data=np.asarray(ts.bperp, np.float32), attrs=self._attrs("bperp"))
        name = f"{GROUP}/observation/displacement"
        chunks = (1,) + tuple(min(s, 256) for s in shape)
        w.create(name, shape=(n,) + shape, dtype=np.float32, chunks=chunks, compression="lzf",
                 attrs=self._attrs("displacement"))
        codec = ChunkCodec(chunks, "lzf")
        workers, cluster = (compute.num_worker, compute.cluster) if compute else (1, None)
        # per worker, at once: the block read (float32), its compressed chunks in the in-memory file
        # that compresses it, the same chunks as bytes and packed in one array (lzf leaves a noisy
        # series near its size): 4 copies; and the packed results in flight, up to two a worker in
        # shared memory until this process has written them: 6
        blocks = plan_blocks(shape, 4 * n * 6, memory_per_task(max_memory, workers, cluster), chunks[1:],
                             min_rows=chunks[1])
        if (workers == 1 and not cluster) or not chunk_aligned(blocks, *chunks[1:]):
            # one process (the codec's copies would only add time), or a budget below one row of
            # chunks: HDF5 compresses as it writes
            for block in progress(blocks, "HDF-EOS5 displacement", "block"):
                w.write(name, _read_displacement(ts, block), block)
            return
        results = run_blocks(blocks, functools.partial(_read_displacement, ts),
                             functools.partial(_encode_block, codec), workers=workers, cluster=cluster)
        for block, packed in progress(results, "HDF-EOS5 displacement", "block", total=len(blocks)):
            w.write_chunks(name, unpack_chunks(packed), block)

    def _map(self, w: H5Writer, name: str, path: Path, dataset: str, dtype) -> None:
        p = MapProduct(path)
        maps = [d for d in p.datasets if len(p.dataset_shape(d)) == 2]
        ds = dataset if dataset in maps else (maps[0] if len(maps) == 1 else None)
        if ds is None:
            raise InputError(f"{path}: no {dataset!r} dataset (has {', '.join(p.datasets)})")
        data = p.read(ds)
        data = np.nan_to_num(data).astype(bool) if dtype is np.bool_ else data.astype(dtype)
        w.create(f"{GROUP}/{name}", data=data, compression="lzf", attrs=self._attrs(name, dtype))

    def _geometry(self, w: H5Writer, geom: Product, meta: Metadata, max_memory: float) -> None:
        shape = meta.grid.shape
        for name in GEOMETRY:
            if geom.has(name) and len(geom.dataset_shape(name)) == 2:
                data = geom.read(name)
                data = data.astype(bool) if name in ("shadowMask", "waterMask") else data.astype(np.float32)
                w.create(f"{GROUP}/geometry/{name}", data=data, compression="lzf",
                         attrs=self._attrs(name, data.dtype.type))
        geo = meta.grid.geo
        for name in ("latitude", "longitude"):  # generated from the grid (pixel centres) when absent
            if geom.has(name):
                continue
            w.create(f"{GROUP}/geometry/{name}", shape=shape, dtype=np.float32, compression="lzf",
                     attrs=self._attrs(name))
            for block in plan_blocks(shape, 16, max_memory):
                if name == "latitude":
                    v = geo.y_first + (np.arange(block.row_start, block.row_stop) + 0.5) * geo.y_step
                    data = np.repeat(v[:, None], block.shape[1], axis=1)
                else:
                    v = geo.x_first + (np.arange(block.col_start, block.col_stop) + 0.5) * geo.x_step
                    data = np.repeat(v[None, :], block.shape[0], axis=0)
                w.write(f"{GROUP}/geometry/{name}", data.astype(np.float32), block)


@hookimpl
def sbts_exporters():
    return [HdfEos5Exporter()]


__all__ = ["HdfEos5Exporter", "he5_name", "unavco_metadata"]


def _read_displacement(ts: TimeSeries, block: Block) -> np.ndarray:
    """The time series of one block, float32 (a worker's read)."""
    return ts.read_dates(block).astype(np.float32, copy=False)


def _encode_block(codec: ChunkCodec, _block: Block, data: np.ndarray) -> tuple:
    """The lzf chunks of one block (a worker's compression), packed in one array (:func:`pack_chunks`:
    it returns through shared memory, not the pool's pipe)."""
    return pack_chunks(codec.encode(data))
