"""The ``mintpy.plot.*`` keys of ``sbts run``, parsed once into :class:`PlotOptions`.

MintPy's smallbaselineApp draws its pictures at the end of a run when ``mintpy.plot`` is yes (its
default); so does ``sbts run``, into ``<work_dir>/pic`` (:func:`sbts.core.viz.overview.plot_overview`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sbts.core.viz.common import DEFAULT_DPI, MAX_DISPLAY_PIXELS

BYTES_PER_DISPLAYED_PIXEL = 64
"""What the overview holds per displayed pixel at most: the linear-rate sums (five float64 maps, the
date being read and its mask) and the pictures' arrays are smaller; one layer is read at a time."""


@dataclass(frozen=True)
class PlotOptions:
    """Whether, and how, ``sbts run`` draws its overview pictures.

    Attributes
    ----------
    enabled : bool
        ``mintpy.plot`` (default yes, as MintPy's).
    dpi : float
        ``mintpy.plot.dpi``: resolution of the PNG files.
    max_memory : float
        ``mintpy.plot.maxMemory`` (GB): the maps are decimated so that the overview stays within it.
    """

    enabled: bool = True
    dpi: float = DEFAULT_DPI
    max_memory: float = 4.0

    @classmethod
    def from_template(cls, template: Any) -> PlotOptions:
        """The template's ``mintpy.plot``, ``mintpy.plot.dpi`` and ``mintpy.plot.maxMemory`` (ranges
        checked by the template getters: dpi and memory > 0)."""
        dpi = template.get_float("mintpy.plot.dpi")
        memory = template.get_float("mintpy.plot.maxMemory")
        return cls(enabled=template.get_bool("mintpy.plot"),
                   dpi=DEFAULT_DPI if dpi is None else dpi,
                   max_memory=4.0 if memory is None else memory)

    @property
    def max_pixels(self) -> int:
        """Displayed pixels per axis: :data:`MAX_DISPLAY_PIXELS`, fewer when ``max_memory`` cannot
        hold that many."""
        fit = int(math.sqrt(self.max_memory * 1e9 / BYTES_PER_DISPLAYED_PIXEL))
        return max(16, min(MAX_DISPLAY_PIXELS, fit))


__all__ = ["PlotOptions", "BYTES_PER_DISPLAYED_PIXEL"]
