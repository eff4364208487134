"""GAMMA reader: big-endian float32 ``.unw``/``.cor`` rasters described by GAMMA ``.par`` headers.

GAMMA writes headerless binaries; their size lives in other files: the interferogram par
(``.off``/``.diff_par``), the image par (``*.mli.par``/``*.slc.par``) for radar coordinates, or
the DEM/MAP par (``*.dem.par``) for geocoded products.  This reader finds the par files next to
the data, in ``mintpy.load.metaFile`` and beside the DEM/lookup files, and picks for each raster the
par whose grid matches the file size, so geocoded (``*_utm.unw``) and radar-coded stacks load
alike (:mod:`._gamma_products`).  Pair dates come from file names, pair baselines from
``*base.par`` (projected with the image geometry) or ``base_perp`` tables.  Geometry on two grids
(radar DEM + geocoded lookup table) is returned as two sources, as MintPy writes
``geometryRadar.h5`` and ``geometryGeo.h5``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sbts.core.api import (
    Confidence,
    GeometrySource,
    InputError,
    LoadRequest,
    Metadata,
    PairSource,
    Reader,
    StackSource,
    hookimpl,
)
from sbts.plugins.readers import _gamma_par as gp
from sbts.plugins.readers._common import is_container, oriented_phase
from sbts.plugins.readers._gamma_products import (
    GridChoice,
    ParSet,
    _is_par_name,
    baseline_for_pair_from,
    be_raster,
    build_geometry,
    choose_grid,
    dem_is_geocoded,
    grid_candidates,
    metadata_attrs,
    request_pars,
)

logger = logging.getLogger(__name__)

# GAMMA's own names of parameter files (ISP image/interferogram, DIFF&GEO DEM/MAP, baselines)
GAMMA_PAR_ENDINGS = ("slc.par", "mli.par", "diff_par", ".off", "dem.par", "base.par", "base_init.par")


def _is_gamma_par(path: Path) -> bool:
    """A par file GAMMA wrote: one of its names, or its header line ("Gamma ... Parameter File")."""
    if path.name.lower().endswith(GAMMA_PAR_ENDINGS):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(64).lstrip().lower().startswith(b"gamma")
    except OSError:
        return False


class GammaReader(Reader):
    name = "gamma"
    summary = "GAMMA: big-endian float32 .unw/.cor with .par headers (geocoded or radar), base.par baselines"

    # ---------------------------------------------------------- detect
    def detect(self, request: LoadRequest) -> int:
        """Specific: a headerless raster with GAMMA par files (by GAMMA's names or header) beside
        it or in ``mintpy.load.metaFile``; generic: only par-like names (``*par``, ``*.off``)."""
        files = request.files("unwFile")
        if not files or files[0].is_dir() or is_container(files[0]):
            return Confidence.NO
        pars = [p for p in request.files("metaFile") if _is_par_name(p)]
        try:
            pars += sorted(p for p in files[0].parent.iterdir() if _is_par_name(p))
        except OSError:
            pass
        if not pars:
            return Confidence.NO
        return Confidence.SPECIFIC if any(_is_gamma_par(p) for p in pars[:50]) else Confidence.GENERIC

    # ---------------------------------------------------------- stack
    def open_stack(self, request: LoadRequest) -> StackSource | None:
        unw_files = request.files("unwFile")
        if not unw_files:
            return None
        pars = request_pars(request)
        cor_index = gp.date_index(request.files("corFile"))
        cc_index = gp.date_index(request.files("connCompFile"))
        base_index = pars.baseline_index()
        pairs: list[PairSource] = []
        inputs: list[Path] = list(pars.files)
        stack_grid: GridChoice | None = None
        first_date = None
        prefer_geo, ambiguous = dem_is_geocoded(request), []
        for path in unw_files:
            dates = gp.pair_dates(path.name)
            if dates is None:
                raise InputError(f"{path}: no YYYYMMDD-YYYYMMDD (or YYMMDD) pair of dates in the file name; "
                                 "GAMMA interferograms are matched by the dates in their names")
            grid, _ = choose_grid(path, grid_candidates(pars, dates), (4,), "interferogram",
                                  prefer_geo=prefer_geo, ambiguous=ambiguous)
            if stack_grid is None:
                stack_grid, first_date = grid, dates[0]
            # a later_earlier name holds the opposite phase: stored earlier_later, negated
            layers: dict[str, object] = {"unwrapPhase": oriented_phase(be_raster(path, grid),
                                                                       gp.name_is_swapped(path.name))}
            inputs.append(path)
            for cor in cor_index.get(dates, [])[:1]:
                layers["coherence"] = be_raster(cor, grid)
                inputs.append(cor)
            if request.pattern("corFile") and "coherence" not in layers:
                logger.warning("%s: no coherence file of mintpy.load.corFile matches dates %s_%s", path,
                               *(d.strftime("%Y%m%d") for d in dates))
            for cc in cc_index.get(dates, [])[:1]:
                cgrid, nbytes = choose_grid(cc, [grid], (1, 2, 4), "connected components")
                layers["connectComponent"] = be_raster(cc, cgrid, {1: "u1", 2: ">i2", 4: ">i4"}[nbytes])
                inputs.append(cc)
            bperp, bfile = baseline_for_pair_from(base_index, pars, *dates)
            if bfile is not None:
                inputs.append(bfile)
            pairs.append(PairSource(dates[0], dates[1], layers, bperp, str(path)))
        if ambiguous:
            path, chosen, other, why = ambiguous[0]
            kind = "geocoded" if chosen.geocoded else "radar-coded"
            logger.warning("%d GAMMA file(s) fit two grids of the same size, e.g. %s: the %s grid of %s and the %s "
                           "grid of %s; loaded as %s, as %s says (geocoded when the name holds utm/geo/eqa "
                           "or mintpy.load.demFile is a geocoded DEM with its .par)", len(ambiguous), path.name,
                           "geocoded" if chosen.geocoded
                           else "radar", chosen.par.name, "geocoded" if other.geocoded else "radar", other.par.name,
                           kind, why)
        if all(p.bperp is None for p in pairs):
            logger.warning("no baseline file (*base.par, *.base_perp, *bperp.par) matched the pairs: bperp = 0; "
                           "set mintpy.load.bperpFile or mintpy.load.baselineDir")
        attrs = metadata_attrs(stack_grid, pars, first_date, "ifgramStack")
        attrs.setdefault("DATA_TYPE", "float32")
        meta = Metadata.from_attrs(attrs, source=str(stack_grid.par))
        return StackSource(pairs, meta, tuple(inputs))

    # ---------------------------------------------------------- geometry
    def open_geometry(self, request: LoadRequest) -> list[GeometrySource] | None:
        pars = request_pars(request)
        return build_geometry(request, pars, stack_grid=self._stack_grid(request, pars), processor="gamma")

    @staticmethod
    def _stack_grid(request: LoadRequest, pars: ParSet) -> GridChoice | None:
        files = request.files("unwFile")
        if not files:
            return None
        try:
            return choose_grid(files[0], grid_candidates(pars, gp.pair_dates(files[0].name) or ()),
                               prefer_geo=dem_is_geocoded(request))[0]
        except InputError:
            return None


@hookimpl
def sbts_readers():
    return [GammaReader()]
