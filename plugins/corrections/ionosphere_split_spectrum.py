"""``sbts correct ionosphere_split_spectrum``: the split-spectrum ionosphere stack, inverted and removed
(mintpy.ionosphericDelay.method = split_spectrum; Gomba et al. 2016, Fattahi et al. 2017, Liang et al. 2019).

The ISCE2 stack processors estimate the ionospheric phase of every interferogram from its lower and upper
sub-bands; ``sbts load`` puts those interferograms (``mintpy.load.ionUnwFile`` …) into
``inputs/ionStack.h5``, on the grid of ``ifgramStack.h5``.  This step

1. drops the ionosphere pairs of ``mintpy.ionosphericDelay.excludeDate`` (pairs touching those dates) and
   ``excludeDate12`` (those pairs) in ionStack.h5's ``dropIfgram`` (every other pair is kept, so an earlier
   exclusion is undone when the keys change);
2. inverts the kept pairs with the engine of ``invert_network`` and the template's
   ``mintpy.networkInversion.*`` options, relative to the time series' reference pixel, without weights
   (``weightFunc = no``, as MintPy inverts the ionosphere stack: its coherence is not the phase's) and
   without the minNumPixel check (no ``maskTempCoh``) → ``inputs/ion.h5`` (metres, displacement sign:
   −λ/4π·phase, like the phase), ``inputs/temporalCoherenceIon.h5``, ``inputs/numInvIon.h5``;
3. removes it: ``ts − (ion − ion[REF_Y/REF_X] − ion[REF_DATE])`` → ``<input>_ion.h5``.  Dates the
   ionosphere stack does not reach stay uncorrected (listed); the reference date must be one of its dates.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Correction,
    CorrectionContext,
    CorrectionResult,
    IfgramStack,
    InputError,
    InversionOptions,
    InversionOutputs,
    StackEditor,
    Template,
    TemplateError,
    TimeSeries,
    dates_in_name,
    format_date,
    hookimpl,
    invert_network,
    parse_date,
)
from sbts.plugins.corrections._iono_common import (
    EXCLUDE_DATE12_KEY,
    EXCLUDE_DATE_KEY,
    METHOD_KEY,
    P,
    ionosphere_method,
)
from sbts.plugins.corrections._tropo_common import apply_delay, reference_pixel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitSpectrumOptions:
    exclude_dates: tuple[str, ...] = ()  # YYYYMMDD
    exclude_pairs: tuple[str, ...] = ()  # YYYYMMDD_YYYYMMDD


def _listed(template: Template, key: str) -> list[str]:
    value = template.get(key)
    if value is None:
        return []
    return [v for v in str(value).replace(",", " ").split() if v]


def parse_exclusions(template: Template) -> SplitSpectrumOptions:
    """``excludeDate`` (YYYYMMDD or YYMMDD) and ``excludeDate12`` (YYYYMMDD_YYYYMMDD or YYMMDD-YYMMDD)."""
    dates = []
    for token in _listed(template, EXCLUDE_DATE_KEY):
        try:
            dates.append(format_date(parse_date(token)))
        except Exception:  # noqa: BLE001 - any parse failure: one message naming the key
            raise TemplateError(f"{EXCLUDE_DATE_KEY} = {template.raw(EXCLUDE_DATE_KEY)}: {token!r} is not a date "
                                "(YYYYMMDD)") from None
    pairs = []
    for token in _listed(template, EXCLUDE_DATE12_KEY):
        found = dates_in_name(token)
        if len(found) != 2:
            raise TemplateError(f"{EXCLUDE_DATE12_KEY} = {template.raw(EXCLUDE_DATE12_KEY)}: {token!r} is not a pair "
                                "of dates (YYYYMMDD_YYYYMMDD)")
        d1, d2 = sorted(found)
        pairs.append(f"{format_date(d1)}_{format_date(d2)}")
    return SplitSpectrumOptions(tuple(dates), tuple(pairs))


class IonosphereSplitSpectrum(Correction):
    """Inverts ``inputs/ionStack.h5`` into ``inputs/ion.h5`` and removes it from the time series."""

    name = "ionosphere_split_spectrum"
    summary = "Remove the ionosphere estimated by split spectrum (ISCE2 stacks: inputs/ionStack.h5)."
    suffix = "ion"
    stage = "timeseries"
    step = "correct_ionosphere"
    after = "correct_SET"
    keys = {
        METHOD_KEY: "no (default) | split_spectrum | tec: the workflow's choice "
                    "(`sbts correct ionosphere_split_spectrum` runs this)",
        EXCLUDE_DATE_KEY: "no (default) | YYYYMMDD,...: drop the ionosphere pairs touching these dates",
        EXCLUDE_DATE12_KEY: "no (default) | YYYYMMDD_YYYYMMDD,...: drop these ionosphere pairs",
        "mintpy.networkInversion.*": "the inversion's options (weightFunc is no for the ionosphere, as in MintPy)",
    }

    def parse_options(self, template: Template) -> SplitSpectrumOptions:
        InversionOptions.from_template(template)  # a bad inversion option fails now
        return parse_exclusions(template)

    def enabled(self, template: Template, metadata) -> bool:
        return ionosphere_method(template) == "split_spectrum"

    def reads(self, options: SplitSpectrumOptions, work_dir: Path) -> list[Path]:
        """The ionosphere stack it inverts, besides the geometry."""
        return [*super().reads(options, work_dir), Path(work_dir) / "inputs" / "ionStack.h5"]

    def run(self, context: CorrectionContext) -> CorrectionResult:
        options = self.options_of(context)
        work_dir = Path(context.work_dir)
        ts = TimeSeries(context.input_file)
        stack_path = work_dir / "inputs" / "ionStack.h5"
        if not stack_path.exists():
            raise InputError(f"{stack_path} not found: the split-spectrum correction inverts the ionosphere stack; "
                             "load it with mintpy.load.ionUnwFile = ../ion/*/ion_cal/filt.ion (and ionCorFile) "
                             "and sbts load / sbts run --dostep load_data")
        stack = IfgramStack(stack_path)
        if stack.shape != ts.shape:
            raise InputError(f"{stack_path} is {stack.shape[0]}×{stack.shape[1]} but {ts.path} is "
                             f"{ts.shape[0]}×{ts.shape[1]}; load both with the same subset and looks")
        ref = reference_pixel(ts)
        if ref is None:
            raise InputError(f"{ts.path} has no valid REF_Y/REF_X: the ionosphere is inverted relative to the "
                             "time series' reference pixel (run reference_point first)")
        keep = _kept(stack, options)
        if not keep.any():
            raise InputError(f"{EXCLUDE_DATE_KEY}/{EXCLUDE_DATE12_KEY} drop every pair of {stack_path.name}")
        StackEditor(stack_path, step="correct_ionosphere").set_drop(keep)
        inv = dataclasses.replace(InversionOptions.from_template(context.template), weight_func="no",
                                  min_num_pixel=0, obs_dataset="unwrapPhase")
        inputs = work_dir / "inputs"
        outputs = InversionOutputs(inputs / "ion.h5", inputs / "temporalCoherenceIon.h5", inputs / "numInvIon.h5",
                                   None)
        logger.info("inverting %d of %d ionosphere pairs of %s (reference pixel %d/%d, no weights)",
                    int(keep.sum()), keep.size, stack_path.name, *ref)
        result = invert_network(stack_path, work_dir, inv, context.template, context.max_memory, outputs=outputs,
                                ref_yx=ref)
        out = Path(context.output_file)
        corrected, skipped = apply_delay(context, ts, result.timeseries, out,
                                         {METHOD_KEY: "split_spectrum",
                                          EXCLUDE_DATE_KEY: ",".join(options.exclude_dates) or "no",
                                          EXCLUDE_DATE12_KEY: ",".join(options.exclude_pairs) or "no"},
                                         "split-spectrum ionospheric")
        summary = (f"removed the split-spectrum ionosphere ({int(keep.sum())} pairs inverted into "
                   f"{result.timeseries.name}) from {len(corrected)} of {len(ts.dates)} dates"
                   + (f"; not reached by the ionosphere stack: {', '.join(skipped)}" if skipped else ""))
        logger.info(summary)
        return CorrectionResult(out, extra_outputs=tuple(result.paths), summary=summary)


def _kept(stack: IfgramStack, options: SplitSpectrumOptions) -> np.ndarray:
    """True for the pairs of ``stack`` neither excludeDate nor excludeDate12 drops."""
    pairs = stack.pairs
    d1 = [format_date(d) for d in pairs.date1]
    d2 = [format_date(d) for d in pairs.date2]
    dates, date12 = set(options.exclude_dates), set(options.exclude_pairs)
    unknown = sorted(dates - set(d1) - set(d2)) + sorted(date12 - {f"{a}_{b}" for a, b in zip(d1, d2)})
    if unknown:
        logger.warning("%s: %s not in %s; nothing dropped for them", P + ".excludeDate*", ", ".join(unknown),
                       stack.path.name)
    return np.array([not (a in dates or b in dates or f"{a}_{b}" in date12) for a, b in zip(d1, d2)], bool)


@hookimpl
def sbts_corrections():
    return [IonosphereSplitSpectrum()]
