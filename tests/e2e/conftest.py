"""The end-to-end matrix shares one small synthetic stack (all formats write the same truth)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the format writers: ``import formats``


@pytest.fixture(scope="session")
def synth():
    """60 × 80 pixels, 14 dates (45 pairs): a full `sbts run` takes a few seconds.

    The turbulent troposphere is 3 mm (instead of the demo's 1 cm) so the DEM error of the
    truth (+30 m / −18 m patches) stands out of the noise of a 14-date stack; everything else is
    the synthetic stack's default physics (bowl −25 cm/yr, seasonal 8 mm, three unwrapping errors)."""
    from sbts.core.demo.synthetic import make_synthetic_stack

    return make_synthetic_stack(shape=(60, 80), num_date=14, seed=3, turbulence_std=0.003)
