"""The options of the network inversion (``mintpy.networkInversion.*``), parsed once and checked.

:class:`InversionOptions` is what :func:`sbts.core.inversion.engine.invert_network` needs to know
about the user's choices; :meth:`InversionOptions.from_template` reads MintPy's template keys (and
their MintPy aliases: ``sbas`` = ``no``, ``wls`` = ``var``), :meth:`InversionOptions.provenance`
writes them back as the attributes MintPy's update mode compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from sbts.core.config.template import Template
from sbts.core.errors import TemplateError
from sbts.core.inversion.kernel import ROBUST_THRESHOLD

WEIGHT_FUNCS = ("var", "fim", "coh", "no")
RESIDUAL_NORMS = ("L2", "L1")
NSBAS_MODELS = ("linear", "seasonal")
# NSBAS is sbts's own: MintPy has no such key, so it lives outside mintpy.networkInversion.*
# (``sbts.nsbas`` is read as ``mintpy.nsbas``, a name MintPy does not use)
NSBAS_KEY = "sbts.nsbas"
# screened least squares (sbts's own, like NSBAS): L2 where the residuals stay within the threshold,
# otherwise L1 to find the pairs off by an unwrapping error and L2 without them
ROBUST_KEY = "sbts.robust"
#: the switch of every update store (inversion, network, reference point, quick overview) and of the
#: load's appends in parts: one key, read by each step that keeps something for appended acquisitions
UPDATE_STORE_KEY = "sbts.networkInversion.updateStore"
# dataset inverted after each mintpy.unwrapError.method (MintPy's names)
UNWRAP_ERROR_DATASETS = {
    "bridging": "unwrapPhase_bridging",
    "phase_closure": "unwrapPhase_phaseClosure",
    "bridging+phase_closure": "unwrapPhase_bridging_phaseClosure",
}
MASK_DATASETS = ("coherence", "connectComponent")

_T = TypeVar("_T")


@dataclass(frozen=True)
class InversionOptions:
    """``mintpy.networkInversion.*`` options, resolved (:meth:`from_template` reads a template).

    Parameters
    ----------
    weight_func : str
        ``var``, ``fim``, ``coh`` or ``no`` (MintPy's ``sbas``/``wls`` are ``no``/``var``).
    min_norm_velocity : bool
        Minimum-norm velocity (True) or phase (False) where the network is disconnected.
    mask_dataset : str, optional
        ``coherence`` or ``connectComponent``: pairs below ``mask_threshold`` are masked per pixel.
    mask_threshold : float
        Threshold of ``mask_dataset``.
    min_redundancy : float
        Fewest pairs per date for a pixel to be inverted.
    min_temp_coh : float
        Temporal coherence of ``maskTempCoh.h5``.
    min_num_pixel : int
        Fewest reliable pixels before the inversion is called a failure.
    shadow_mask : bool
        Leave out the geometry's shadow pixels.
    water_mask_file : str, optional
        A water mask (True = land) to leave out water.
    water_mask_required : bool
        The template names ``water_mask_file`` explicitly: a missing file is an error.
    obs_dataset : str
        The stack dataset inverted (``unwrapPhase`` or a corrected one).
    residual_norm : str
        ``L2`` (least squares) or ``L1`` (``mintpy.networkInversion.residualNorm``; iteratively
        reweighted, see docs/inversion.md).
    nsbas : bool
        NSBAS gap filling (``sbts.nsbas``): a small-weight temporal model ties disconnected pieces.
    nsbas_gamma : float
        Relative weight of the NSBAS constraint (``sbts.nsbas.gamma``).
    nsbas_model : str
        ``linear`` or ``seasonal`` (``sbts.nsbas.model``).
    robust : bool
        Screened least squares (``sbts.robust``): pixels with a least-squares residual beyond
        ``robust_threshold`` are re-fitted by L1, the pairs whose L1 residual exceeds it are
        dropped and the rest fitted by least squares (docs/inversion.md).
    robust_threshold : float
        The threshold in radians (``sbts.robust.threshold``, default 5 rad ≈ 0.8 cycle: a pair off
        by a cycle leaves ≈ 2π in the L1 residual, the noise of a coherent pair far less).
    calc_cov : bool
        Write ``timeseriesDecorCov.h5``, the propagated decorrelation covariance (on when
        ``mintpy.timeFunc.uncertaintyQuantification = covariance``).
    """

    weight_func: str = "var"
    min_norm_velocity: bool = True
    mask_dataset: str | None = None
    mask_threshold: float = 0.4
    min_redundancy: float = 1.0
    min_temp_coh: float = 0.7
    min_num_pixel: int = 100
    shadow_mask: bool = True
    water_mask_file: str | None = "waterMask.h5"
    water_mask_required: bool = False  # set explicitly in the template: a missing file is an error
    obs_dataset: str = "unwrapPhase"
    residual_norm: str = "L2"
    nsbas: bool = False
    nsbas_gamma: float = 1e-4
    nsbas_model: str = "linear"
    robust: bool = False
    robust_threshold: float = ROBUST_THRESHOLD
    # write timeseriesDecorCov.h5 (the propagated decorrelation covariance of the time series);
    # on when mintpy.timeFunc.uncertaintyQuantification = covariance, which reads it
    calc_cov: bool = False

    def __post_init__(self) -> None:
        if self.residual_norm not in RESIDUAL_NORMS:
            raise TemplateError(f"mintpy.networkInversion.residualNorm = {self.residual_norm!r}; use L2 or L1")
        if not (self.nsbas_gamma > 0 and self.nsbas_gamma < float("inf")):
            raise TemplateError(f"{NSBAS_KEY}.gamma = {self.nsbas_gamma!r}; use a positive number (1e-4 is usual)")
        if not (self.robust_threshold > 0 and self.robust_threshold < float("inf")):
            raise TemplateError(f"{ROBUST_KEY}.threshold = {self.robust_threshold!r}; use a positive number of "
                                f"radians (auto = {ROBUST_THRESHOLD:g})")
        if self.robust and self.residual_norm != "L2":
            raise TemplateError(f"{ROBUST_KEY} = yes re-fits by least squares, it does not combine with "
                                f"mintpy.networkInversion.residualNorm = {self.residual_norm}: use one or the other")
        if self.nsbas_model not in NSBAS_MODELS:
            raise TemplateError(f"{NSBAS_KEY}.model = {self.nsbas_model!r}; use {' or '.join(NSBAS_MODELS)}")
        if self.weight_func not in WEIGHT_FUNCS:
            raise TemplateError(f"mintpy.networkInversion.weightFunc = {self.weight_func!r}; "
                                f"use one of {', '.join(WEIGHT_FUNCS)}")
        if self.mask_dataset not in (None, *MASK_DATASETS):
            raise TemplateError(f"mintpy.networkInversion.maskDataset = {self.mask_dataset!r}; "
                                f"use no, {' or '.join(MASK_DATASETS)}")

    @classmethod
    def from_template(cls, t: Template) -> InversionOptions:
        """The options from the ``mintpy.networkInversion.*`` keys (and ``mintpy.unwrapError.method``,
        which picks the inverted dataset); a bad value raises a ``TemplateError`` naming the key."""
        key = "mintpy.networkInversion."
        weight = t.get_str(key + "weightFunc", ["var", "fim", "coh", "no", "sbas", "wls"]) or "no"
        weight = {"sbas": "no", "wls": "var"}.get(weight, weight)
        return cls(
            weight_func=weight,
            min_norm_velocity=t.get_bool(key + "minNormVelocity"),
            mask_dataset=t.get_str(key + "maskDataset", ["coherence", "connectComponent"]),
            # "no" switches a threshold off (0); a number, 0 included, is used as given
            mask_threshold=_or(t.get_float(key + "maskThreshold"), 0.0),
            min_redundancy=_or(t.get_float(key + "minRedundancy"), 0.0),
            min_temp_coh=_or(t.get_float(key + "minTempCoh"), 0.0),
            min_num_pixel=_or(t.get_int(key + "minNumPixel"), 0),
            shadow_mask=t.get_bool(key + "shadowMask"),
            water_mask_file=t.get(key + "waterMaskFile"),
            water_mask_required=t.is_set(key + "waterMaskFile") and t.get(key + "waterMaskFile") is not None,
            obs_dataset=UNWRAP_ERROR_DATASETS.get(
                t.get_str("mintpy.unwrapError.method", list(UNWRAP_ERROR_DATASETS)) or "", "unwrapPhase"),
            residual_norm=t.get_str(key + "residualNorm", RESIDUAL_NORMS) or "L2",
            nsbas=t.get_bool(NSBAS_KEY),
            nsbas_gamma=_or(t.get_float(NSBAS_KEY + ".gamma"), 1e-4),
            nsbas_model=t.get_str(NSBAS_KEY + ".model", NSBAS_MODELS) or "linear",
            robust=t.get_bool(ROBUST_KEY),
            robust_threshold=_or(t.get_float(ROBUST_KEY + ".threshold"), ROBUST_THRESHOLD),
            # the velocity step checks the value; a wrong one is its error, not this step's
            calc_cov=str(t.raw("mintpy.timeFunc.uncertaintyQuantification")).strip().lower() == "covariance",
        )

    def provenance(self) -> dict[str, str]:
        """The options as MintPy's attribute keys (its update mode compares them)."""
        key = "mintpy.networkInversion."
        return {
            key + "weightFunc": self.weight_func,
            key + "minNormVelocity": "yes" if self.min_norm_velocity else "no",
            key + "maskDataset": self.mask_dataset or "no",
            key + "maskThreshold": str(self.mask_threshold),
            key + "minRedundancy": str(self.min_redundancy),
            key + "obsDatasetName": self.obs_dataset,
            key + "minTempCoh": str(self.min_temp_coh),
            key + "shadowMask": "yes" if self.shadow_mask else "no",
            key + "residualNorm": self.residual_norm,
            NSBAS_KEY: "yes" if self.nsbas else "no",
            **({NSBAS_KEY + ".gamma": str(self.nsbas_gamma), NSBAS_KEY + ".model": self.nsbas_model}
               if self.nsbas else {}),
            ROBUST_KEY: "yes" if self.robust else "no",
            **({ROBUST_KEY + ".threshold": repr(self.robust_threshold)} if self.robust else {}),
        }

    @property
    def needs_coherence(self) -> bool:
        """Whether the coherence is read (weights, the coherence mask or the covariance)."""
        return self.weighted or self.mask_dataset == "coherence" or self.calc_cov

    @property
    def weighted(self) -> bool:
        """Whether the pairs are weighted (and the coherence must be read)."""
        return self.weight_func != "no"

    @property
    def unwrap_error_method(self) -> str | None:
        """The ``mintpy.unwrapError.method`` whose output is inverted, if any."""
        return next((m for m, d in UNWRAP_ERROR_DATASETS.items() if d == self.obs_dataset), None)


def _or(value: _T | None, default: _T) -> _T:
    """``value`` unless the key said no (``None``): ``0`` is kept, unlike ``value or default``."""
    return default if value is None else value
