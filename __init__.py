"""sbts: small-baseline InSAR time-series analysis.

The root folders of the repository form this package: ``sbts.core`` (data model, block I/O,
inversion engine), ``sbts.plugins.*`` (readers, corrections, exporters) and ``sbts.cli``.
"""

__version__ = "0.1.0"
