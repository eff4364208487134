"""``sbts export roipac``: a map as a ROI_PAC flat binary with its ``.rsc`` resource file.

ROI_PAC's layouts (little-endian): ``.unw`` and ``.cor`` are two float32 bands interleaved by line
(BIL: a row of magnitude, then the same row of phase/coherence), ``.dem`` one int16 band, and other
maps one float32 band (``.flt``).  The ``.rsc`` carries ``WIDTH``/``FILE_LENGTH``,
``XMIN..YMAX``, the geocoding (``X_FIRST``...), ``WAVELENGTH``, ``DATE12`` (``YYMMDD-YYMMDD``) and
the product's other attributes, so ``sbts load`` (ROI_PAC reader) or MintPy reads it back.
Radar-coded files are fine (no geocoding keys are written then).
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
    atomic_write_text,
    hookimpl,
    label_stem,
    output_path,
    parse_options,
    plan_blocks,
    select_map,
)

logger = logging.getLogger(__name__)

_SKIP_ATTRS = {"FILE_TYPE", "LENGTH", "UNIT", "SBTS_INPUT_SIGNATURE", "SBTS_INVERSION_SIGNATURE"}


def _yymmdd(date) -> str:
    return date.strftime("%y%m%d")


def write_rsc(path: Path, items: dict[str, str]) -> None:
    width = max(len(k) for k in items) + 1
    text = "".join(f"{k:<{width}} {v}\n" for k, v in items.items() if " " not in k)
    atomic_write_text(path, text)


class RoipacExporter(Exporter):
    """``.unw``/``.cor``/``.dem``/``.flt`` + ``.rsc``."""

    name = "roipac"
    summary = "A map as a ROI_PAC binary (.unw/.cor/.dem/.flt) with its .rsc resource file."
    description = textwrap.dedent("""\
    DATASET picks the map and the file type:
      velocity (velocity files) → .unw: phase over START_DATE..END_DATE, −4π/λ × v × Δt (rad);
      YYYYMMDD_YYYYMMDD of a time series, or YYYYMMDD (since the reference date) → .unw;
      a stack pair (unwrapPhase) → .unw; coherence, temporalCoherence, avgSpatialCoherence → .cor;
      height → .dem (int16, metres); any other 2-D dataset → .flt (float32).
    .unw/.cor: two float32 bands by line (magnitude 1 where valid, 0 where no data; value, NaN
    written as 0).  The .rsc holds WIDTH, FILE_LENGTH, XMIN/XMAX/YMIN/YMAX, X_FIRST/Y_FIRST/
    X_STEP/Y_STEP/X_UNIT/Y_UNIT (geocoded files), WAVELENGTH, DATE12, DATE, PROCESSOR and the
    other attributes.  -o names the file (its extension is replaced by the type's).
    Option: -O type=unw|cor|dem|flt to force a type.""")
    requires_geocoded = False

    def export(self, request: ExportRequest) -> list[Path]:
        opts = parse_options(request, {"type"}, "roipac")
        product = Product.open(request.input_file)
        meta = product.metadata
        sel = select_map(product, request.dataset)
        kind = opts.get("type") or {"velocity": "unw", "displacement": "unw", "phase": "unw", "coherence": "cor",
                                    "height": "dem"}.get(sel.kind, "flt")
        if kind not in ("unw", "cor", "dem", "flt"):
            raise InputError(f"type={kind!r}: use unw, cor, dem or flt")
        if kind == "unw":
            data = sel.phase(meta.radar.require_wavelength())
        else:
            data = sel.data
        path = output_path(request, label_stem(product, sel), "." + kind)
        if request.output is not None and path.suffix != "." + kind:
            path = path.with_suffix("." + kind)
        length, width = data.shape
        items = {"WIDTH": str(width), "FILE_LENGTH": str(length), "XMIN": "0", "XMAX": str(width - 1),
                 "YMIN": "0", "YMAX": str(length - 1)}
        attrs = meta.to_attrs()
        for key in ("X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP", "X_UNIT", "Y_UNIT", "EPSG", "WAVELENGTH", "PROCESSOR"):
            if key in attrs:
                items[key] = attrs[key]
        if sel.date1 is not None and sel.date2 is not None and kind == "unw":
            items["DATE12"] = f"{_yymmdd(sel.date1)}-{_yymmdd(sel.date2)}"
            items["DATE"] = _yymmdd(sel.date1)
            items["TIME_SPAN_YEAR"] = repr(round(sel.years, 6))
        if kind == "unw":
            items["UNIT"] = "radian"
        elif kind == "dem":
            items["UNIT"] = "m"
        items["FILE_TYPE"] = "." + kind
        for key, value in attrs.items():
            if key not in items and key not in _SKIP_ATTRS and key.upper() == key and value.strip():
                items[key] = value.replace("\n", " ")
        # the raster takes its name last, once its .rsc is in place
        with atomic_output(path, length * width * 8) as tmp:
            with open(tmp, "wb") as fh:
                for block in plan_blocks((length, width), 16, 0.25):
                    rows = data[block.rows]
                    if kind in ("unw", "cor"):
                        valid = np.isfinite(rows)
                        mag = valid.astype("<f4")
                        val = np.where(valid, rows, 0).astype("<f4")
                        fh.write(np.stack([mag, val], axis=1).tobytes())  # (rows, band, width): BIL
                    elif kind == "dem":
                        fh.write(np.round(np.nan_to_num(rows)).clip(-32768, 32767).astype("<i2").tobytes())
                    else:
                        fh.write(rows.astype("<f4").tobytes())
            write_rsc(Path(str(path) + ".rsc"), items)
        logger.info("wrote %s and its .rsc (%s)", path, sel.name)
        return [path, Path(str(path) + ".rsc")]


@hookimpl
def sbts_exporters():
    return [RoipacExporter()]
