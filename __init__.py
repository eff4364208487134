"""sbts: small-baseline InSAR time-series analysis.

The root folders of the repository form this package: ``sbts.core`` (data model, block I/O,
inversion engine), ``sbts.plugins.*`` (readers, corrections, exporters) and ``sbts.cli``.

The public Python API, for scripts and notebooks (``docs/api.md``; imported on first use, so
``import sbts`` stays light):

- :func:`open_dataset`: any product as a lazy :class:`xarray.Dataset`;
- :func:`run`, :func:`load`, :func:`invert`, :func:`correct`, :func:`export`: the library calls of
  ``sbts run``, ``sbts load``, ``sbts invert``, ``sbts correct NAME``, ``sbts export FORMAT``;
- :func:`demo_data`: the synthetic demo stack and its template, written offline;
- :mod:`sbts.plot`: ``view``, ``tsview``, ``network``, ``coherence_matrix``, ``transect``, ``rms``
  returning matplotlib Figures (inline in Jupyter).

Plugin authors import :mod:`sbts.core.api` instead.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_FUNCTIONS = ("open_dataset", "run", "load", "invert", "correct", "export", "demo_data")

__all__ = ["open_dataset", "run", "load", "invert", "correct", "export", "demo_data", "plot", "__version__"]


def __getattr__(name: str):
    if name in _FUNCTIONS:
        value = getattr(importlib.import_module("sbts.core.pyapi"), name)
    elif name == "plot":
        value = importlib.import_module("sbts.plot")
    else:
        raise AttributeError(f"module 'sbts' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
