"""Writers of small product stacks, one module per processor format, for the end-to-end matrix.

Each module ``<name>.py`` exposes ``GEOCODED: bool`` and ``write(root, synth) -> template path``:
it writes the synthetic stack under ``root`` as the processor writes it, plus ``root/work/<name>.cfg``
setting only the file patterns (MintPy's defaults for everything else).
"""

FORMATS = [
    "isce_tops", "isce_stripmap", "aria_vrt", "aria_gunw", "gamma_radar", "gamma_geo", "roipac", "snap",
    "hyp3", "geotiff", "mintpy",
]
