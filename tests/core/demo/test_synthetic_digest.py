"""The synthetic generator is reproducible bit for bit: digests recorded before it was split.

``make_synthetic_stack`` was one 360-line function; it is now one function per physical component
(:mod:`sbts.core.demo`).  Many tests and the demo's known truth rest on its exact output, so the
SHA-256 of every array (stack, geometry, truth, unwrapping-error masks), the dates and the
attributes is compared with the digests the single function produced, for parameter sets that
reach every branch (defaults; a small scene; descending orbit with sample coherence, ramps and 4
looks; every nuisance switched off; a crowded scene where unwrapping-error blobs must overlap and
every water pair is no-data; another place, wavelength, date span and one look).

Recorded with numpy 2.4 on x86-64.  The draws (``SeedSequence``/PCG64) are stable across numpy
releases; the transcendental functions and the FFT are not guaranteed to be: if a numpy upgrade
alone changes these digests, re-record them from a checkout whose generator is known good, never
to make a change of the generator pass.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pytest

from sbts.core.demo.specs import SceneSpec, SyntheticSpec
from sbts.core.demo.synthetic import build_synthetic_stack, make_synthetic_stack

STACK_FIELDS = ("date1_index", "date2_index", "bperp", "unwrap_phase", "coherence", "conn_comp", "height",
                "incidence_angle", "azimuth_angle", "slant_range_distance", "water_mask", "shadow_mask")
TRUTH_FIELDS = ("deformation", "velocity", "seasonal_amplitude", "dem_error", "troposphere_turbulent",
                "troposphere_stratified", "troposphere_coefficient", "ramps", "pair_offset", "coherence_true")

CASES = {
    "default": dict(),
    "small_seed7": dict(shape=(48, 64), num_date=14, seed=7),
    "desc_sample_ramps": dict(shape=(40, 56), num_date=9, seed=3, orbit_direction="DESCENDING",
                              reported_coherence="sample", ramp_amplitude=0.02, looks=4),
    "ideal": dict(shape=(32, 40), num_date=6, seed=11, phase_noise=False, turbulence_std=0.0, stratified_std=0.0,
                  dem_error=0.0, with_unwrap_errors=False, pair_offsets=False),
    "crowded": dict(shape=(16, 20), num_date=12, seed=5, num_unwrap_errors=20, water_nodata_fraction=1.0,
                    num_neighbor=2, max_perp_baseline=30.0),
    "place": dict(shape=(24, 30), num_date=5, seed=2, start_date=dt.date(2016, 3, 1), span_years=0.5,
                  center_lat_lon=(35.0, 139.0), pixel_size_deg=1 / 3600, center_incidence=33.0,
                  bowl_rate=-0.1, uplift_rate=0.0, seasonal_amplitude=0.0, seasonal_peak=0.2,
                  noisy_date_factor=1.0, looks=1, wavelength=0.2362),
}

# SHA-256 of make_synthetic_stack(**CASES[name]) from the single-function generator (commit b30f668)
RECORDED = {
    "default": "9df1bb95240b1cb03ebd92fd97a67824e60760bad09873688e7011ccb513f406",
    "small_seed7": "0b1cb3bb5459ec3eecdf1eabfee2e9638f7520c6e2c5e76280ece454e15cc652",
    "desc_sample_ramps": "ae4303fb6150c972f02a4b1c895b9c0514b625a4cb3bfdd3ea6a37334b1929ae",
    "ideal": "6d029c14311a5fc56cfb77300fbcac599ea36c8d965dfdad4e250041df0e0aec",
    "crowded": "c26b41a2f684f179782e727d4a8ca1ba508a890c7a586555b3a35b988b3b89c6",
    "place": "5678f14d90af8c05f3f7ee0b1a35fe7487c1f11811ac8ac5ce60dd8cebe47001",
}


def stack_digest(stack) -> str:
    """SHA-256 over every array (name, dtype, shape, bytes), the dates, attributes and truth scalars."""
    h = hashlib.sha256()

    def put(name: str, a: np.ndarray) -> None:
        a = np.ascontiguousarray(a)
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())

    for name in STACK_FIELDS:
        put(name, getattr(stack, name))
    h.update(repr(stack.dates).encode())
    h.update(json.dumps(stack.attrs, sort_keys=True).encode())
    t = stack.truth
    for name in TRUTH_FIELDS:
        put("truth." + name, getattr(t, name))
    for e in t.unwrap_errors:
        h.update(f"{e.pair_index},{e.cycles}".encode())
        put("err", e.mask)
    h.update(repr((t.seasonal_peak, t.reference_yx, t.bowl_center_yx, t.noisy_date_index)).encode())
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_bits_as_the_single_function_generator(name):
    assert stack_digest(make_synthetic_stack(**CASES[name])) == RECORDED[name]


def test_specs_and_keywords_build_the_same_stack():
    kw = CASES["desc_sample_ramps"]
    spec = SyntheticSpec.from_keywords(**{k: v for k, v in kw.items() if k != "seed"})
    assert spec.scene == SceneSpec(shape=(40, 56), orbit_direction="DESCENDING")
    assert spec.noise.looks == 4 and spec.acquisitions.ramp_amplitude == 0.02
    assert stack_digest(build_synthetic_stack(spec, seed=3)) == RECORDED["desc_sample_ramps"]


def test_every_keyword_belongs_to_one_group_and_typos_are_refused():
    # the keywords of the single-function generator (seed aside), each now a field of one group
    before = {"shape", "num_date", "wavelength", "looks", "orbit_direction", "start_date", "span_years",
              "center_lat_lon", "pixel_size_deg", "center_incidence", "num_neighbor", "max_perp_baseline",
              "bowl_rate", "uplift_rate", "seasonal_amplitude", "seasonal_peak", "dem_error", "turbulence_std",
              "noisy_date_factor", "stratified_std", "ramp_amplitude", "phase_noise", "with_unwrap_errors",
              "num_unwrap_errors", "pair_offsets", "water_nodata_fraction", "reported_coherence"}
    assert set(SyntheticSpec.keywords()) == before
    with pytest.raises(TypeError, match="bowl_rat"):
        make_synthetic_stack(shape=(16, 16), num_date=3, bowl_rat=-0.1)
