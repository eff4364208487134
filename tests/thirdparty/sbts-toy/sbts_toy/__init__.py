"""sbts-toy: a third-party sbts plugin with a reader for a toy text format, a CSV exporter and a
time-series correction that ``sbts run`` runs in the slot it declares (right after ``deramp``).

It imports only sbts's plugin API, ``sbts.core.api``, as any outside package should.  Its command
``sbts toy-info`` lives in :mod:`sbts_toy.commands` (the ``sbts.commands`` entry point).

Toy format: a folder holding ``pairs.txt``::

    # sbts-toy
    # WAVELENGTH=0.0555 LENGTH=6 WIDTH=8
    20200101 20200113 12.5 ifg_01.txt [cor_01.txt]

one line per interferogram (dates, perpendicular baseline in metres, phase grid file and optional
coherence grid file); each grid is a whitespace-separated text matrix read with ``numpy.loadtxt``.
Point ``mintpy.load.unwFile`` at the folder or at its ``pairs.txt``.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np

from sbts.core.api import (
    ArrayRaster,
    Confidence,
    Correction,
    CorrectionContext,
    CorrectionResult,
    Exporter,
    ExportRequest,
    Grid,
    InputError,
    LoadRequest,
    Metadata,
    PairSource,
    RadarInfo,
    Reader,
    StackSource,
    TimeSeries,
    TimeSeriesWriter,
    hookimpl,
)

__version__ = "0.3.1"
logger = logging.getLogger(__name__)
MAGIC = "# sbts-toy"


def _pairs_file(request: LoadRequest) -> Path | None:
    for path in request.files("unwFile"):
        candidate = path / "pairs.txt" if path.is_dir() else path
        if candidate.name == "pairs.txt" and candidate.is_file():
            with open(candidate, encoding="utf-8") as f:
                if f.readline().strip() == MAGIC:
                    return candidate
    return None


def _date(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%Y%m%d").date()


class ToyReader(Reader):
    """Reads the toy text format (see the module docstring)."""

    name = "toy"
    summary = "Toy text format: pairs.txt + text grids (sbts plugin example)."

    def detect(self, request: LoadRequest) -> int:
        # the magic first line is this format's own mark: a specific match
        return Confidence.SPECIFIC if _pairs_file(request) is not None else Confidence.NO

    def open_stack(self, request: LoadRequest) -> StackSource | None:
        index = _pairs_file(request)
        if index is None:
            return None
        header: dict[str, str] = {}
        pairs, inputs = [], [index]
        for lineno, line in enumerate(index.read_text(encoding="utf-8").splitlines(), 1):
            line = line.strip()
            if not line or line == MAGIC:
                continue
            if line.startswith("#"):
                header.update(item.split("=", 1) for item in line[1:].split() if "=" in item)
                continue
            parts = line.split()
            if len(parts) < 4:
                raise InputError(f"{index}, line {lineno}: expected 'date1 date2 bperp file [corfile]'")
            layers = {"unwrapPhase": ArrayRaster(self._grid(index.parent / parts[3]))}
            inputs.append(index.parent / parts[3])
            if len(parts) > 4:
                layers["coherence"] = ArrayRaster(self._grid(index.parent / parts[4]))
                inputs.append(index.parent / parts[4])
            pairs.append(PairSource(_date(parts[0]), _date(parts[1]), layers, float(parts[2]),
                                    str(index.parent / parts[3])))
        length = int(header.get("LENGTH", 0)) or pairs[0].layers["unwrapPhase"].shape[0]
        width = int(header.get("WIDTH", 0)) or pairs[0].layers["unwrapPhase"].shape[1]
        wavelength = float(header["WAVELENGTH"]) if "WAVELENGTH" in header else None
        meta = Metadata(Grid(length, width), file_type="ifgramStack", processor="toy",
                        radar=RadarInfo(wavelength=wavelength, alooks=1, rlooks=1))
        logger.info("toy reader: %d pairs in %s", len(pairs), index)
        return StackSource(pairs, meta, inputs)

    @staticmethod
    def _grid(path: Path) -> np.ndarray:
        if not path.is_file():
            raise InputError(f"{path}: grid file listed in pairs.txt not found")
        return np.atleast_2d(np.loadtxt(path, dtype=np.float32))


class ToyCsvExporter(Exporter):
    """Writes one map dataset as a CSV grid (one line per image row)."""

    name = "toy-csv"
    summary = "A map dataset as a CSV grid (sbts plugin example)."
    description = "Writes DATASET (default: the first 2-D dataset) as comma-separated rows; -o names the file."

    def export(self, request: ExportRequest) -> list[Path]:
        import h5py

        with h5py.File(request.input_file, "r") as f:
            maps = [k for k, v in f.items() if isinstance(v, h5py.Dataset) and v.ndim == 2]
            name = request.dataset or (maps[0] if maps else None)
            if name is None or name not in maps:
                raise InputError(f"{request.input_file}: no 2-D dataset {name!r} (maps: {', '.join(maps) or 'none'})")
            data = f[name][()]
        out = request.output or Path(request.input_file).with_name(f"{Path(request.input_file).stem}_{name}.csv")
        np.savetxt(out, data, delimiter=",", fmt="%.7g")
        return [Path(out)]


class ToyShift(Correction):
    """Subtracts a constant from every date: template key ``toy.shift`` (metres, default 1 mm), or
    ``sbts correct toyshift -O shift=...`` on the command line."""

    name = "toyshift"
    summary = "Subtract a constant from every date (sbts plugin example)."
    suffix = "toy"
    stage = "timeseries"
    after = "deramp"  # its slot in sbts run: it reads deramp's output, the DEM-error step reads its own

    keys = {"toy.shift": "constant to subtract from every date, in metres (default 0.001)"}
    options = {"shift": "constant to subtract, in metres, instead of toy.shift"}

    def parse_options(self, template) -> dict:
        value = template.get_float("toy.shift") if template.is_set("toy.shift") else None
        return {"shift": 0.001 if value is None else value}

    def run(self, context: CorrectionContext) -> CorrectionResult:
        shift = float(context.options.get("shift", self.options_of(context)["shift"]))
        ts = TimeSeries(context.input_file)
        with TimeSeriesWriter(context.output_file, ts.metadata, ts.date_strings, ts.bperp) as w:
            w.write("timeseries", ts.read_dates() - shift)
        return CorrectionResult(context.output_file, summary=f"subtracted {shift} m")


@hookimpl
def sbts_corrections():
    return [ToyShift()]


@hookimpl
def sbts_readers():
    return [ToyReader()]


@hookimpl
def sbts_exporters():
    return [ToyCsvExporter()]
