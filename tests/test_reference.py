"""Reference point: deterministic automatic choice, checks of a given pixel, lat/lon, REF_* attrs."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from sbts.core import reference
from sbts.core.averages import write_average_coherence, write_conncomp_mask
from sbts.core.errors import DataError
from sbts.core.metadata import GeoGrid, Grid, Metadata, RadarInfo
from sbts.core.pairs import Pairs
from sbts.core.products import IfgramStack, StackWriter, write_map
from sbts.core.template import Template


DATE12 = ["20200101_20200113", "20200101_20200125", "20200113_20200125", "20200113_20200206",
          "20200125_20200206"]
SHAPE = (12, 10)
GEO = GeoGrid(-99.0, 19.5, 0.01, -0.01)


def T(**values) -> Template:
    return Template({f"mintpy.reference.{k}": str(v) for k, v in values.items()}, warn_unknown=False)


def make_stack(tmp_path, coh=None, unw=None, keep=None, geo=True):
    m = len(DATE12)
    if coh is None:
        yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
        # a coherent hill centred on (7, 4): the best pixel and the best neighbourhood
        coh = 0.95 - 0.01 * np.hypot(yy - 7, xx - 4)
        coh = np.broadcast_to(coh, (m,) + SHAPE).astype(np.float32).copy()
    if unw is None:
        unw = np.ones((m,) + SHAPE, np.float32)
    pairs = Pairs.from_date12(DATE12, None, keep)
    meta = Metadata(grid=Grid(*SHAPE, GEO if geo else None), radar=RadarInfo(wavelength=0.0555))
    path = tmp_path / "inputs" / "ifgramStack.h5"
    with StackWriter(path, meta, pairs, ["unwrapPhase", "coherence"]) as w:
        w.write("unwrapPhase", unw, None)
        w.write("coherence", coh, None)
    return path


def test_auto_choice_picks_most_coherent_area(tmp_path):
    stack = make_stack(tmp_path)
    choice = reference.choose_reference(IfgramStack(stack), T(), tmp_path)
    assert (choice.y, choice.x, choice.method) == (7, 4, "maxCoherence")
    assert choice.lat == pytest.approx(19.5 - 7.5 * 0.01) and choice.lon == pytest.approx(-99.0 + 4.5 * 0.01)


def test_auto_choice_skips_pixels_without_data_and_masked(tmp_path):
    unw = np.ones((len(DATE12),) + SHAPE, np.float32)
    unw[3, 7, 4] = np.nan  # best pixel: NaN in one kept pair
    stack = make_stack(tmp_path, unw=unw)
    first = reference.choose_reference(stack, T(), tmp_path)
    assert (first.y, first.x) != (7, 4)
    # still on the hill, but not next to the gap (masked neighbours lower the 3×3 score)
    assert abs(first.y - 7) <= 2 and abs(first.x - 4) <= 2
    assert max(abs(first.y - 7), abs(first.x - 4)) == 2
    # the same gap in a dropped pair does not matter
    stack = make_stack(tmp_path, unw=unw, keep=[True, True, True, False, True])
    assert (reference.choose_reference(stack, T(), tmp_path).y, ) == (7,)
    # a user mask excluding the hill top moves the choice
    mask = np.ones(SHAPE, bool)
    mask[6:9, 3:6] = False
    write_map(tmp_path / "myMask.h5", Metadata(grid=Grid(*SHAPE)), "mask", {"mask": mask})
    choice = reference.choose_reference(stack, T(maskFile="myMask.h5"), tmp_path)
    assert not (6 <= choice.y < 9 and 3 <= choice.x < 6)


@pytest.mark.parametrize("num_checked", [20, 1])
def test_auto_choice_checks_coverage_without_mask(tmp_path, monkeypatch, num_checked):
    """No reference mask: the per-candidate check (or, past it, the full coverage pass) rejects gaps."""
    monkeypatch.setattr(reference, "_NUM_CHECKED", num_checked)
    unw = np.ones((len(DATE12),) + SHAPE, np.float32)
    unw[1, 7, 4] = 0.0
    stack = make_stack(tmp_path, unw=unw)
    choice = reference.choose_reference(stack, T(maskFile="no"), tmp_path)
    # the best-scored valid pixel: a neighbour of the hole-free hill top, as the hill top itself fails
    assert max(abs(choice.y - 7), abs(choice.x - 4)) == 1
    assert not reference.pixel_problems(IfgramStack(stack), choice.y, choice.x)


def test_auto_choice_is_deterministic_on_ties(tmp_path):
    coh = np.full((len(DATE12),) + SHAPE, 0.9, np.float32)
    stack = make_stack(tmp_path, coh=coh)
    # flat coherence: the interior pixels tie on every score → smallest y, then x, away from the edge
    for _ in range(2):
        choice = reference.choose_reference(stack, T(), tmp_path)
        assert (choice.y, choice.x) == (1, 1)


def test_auto_choice_uses_written_averages(tmp_path):
    stack = make_stack(tmp_path)
    write_average_coherence(stack, tmp_path)
    write_conncomp_mask(stack, tmp_path)
    # overwrite avgSpatialCoh.h5 with a map whose best pixel is elsewhere: it must be the one used
    coh = np.full(SHAPE, 0.5, np.float32)
    coh[2:5, 6:9] = 0.99
    write_map(tmp_path / "avgSpatialCoh.h5", Metadata(grid=Grid(*SHAPE)), "coherence", {"coherence": coh})
    choice = reference.choose_reference(stack, T(), tmp_path)
    assert (choice.y, choice.x) == (3, 7)


def test_rank_candidates_order():
    coh = np.array([[0.9, 0.9, 0.2], [0.9, 0.95, 0.2], [0.2, 0.2, 0.99]])
    order = reference.rank_candidates(coh, np.ones_like(coh, bool), 0.85)
    # (1,1) has the best 3×3 neighbourhood; the isolated 0.99 pixel comes after it
    assert np.unravel_index(order[0], coh.shape) == (1, 1)
    assert set(order.tolist()) == {0, 1, 3, 4, 8}


def test_given_yx_accepted_and_refused(tmp_path):
    unw = np.ones((len(DATE12),) + SHAPE, np.float32)
    unw[2, 3, 3] = np.nan
    unw[4, 5, 5] = 0.0
    stack = make_stack(tmp_path, unw=unw)
    choice = reference.choose_reference(stack, T(yx="1,2"), tmp_path)
    assert (choice.y, choice.x, choice.method) == (1, 2, "yx")
    with pytest.raises(DataError) as err:
        reference.choose_reference(stack, T(yx="3,3"), tmp_path)
    msg = str(err.value)
    assert "y/x = 3, 3" in msg and DATE12[2] in msg and "automatic choice would be y/x = 7, 4" in msg
    with pytest.raises(DataError, match=DATE12[4]):
        reference.choose_reference(stack, T(yx="5,5"), tmp_path)
    with pytest.raises(DataError, match="outside the 12×10 image"):
        reference.choose_reference(stack, T(yx="12,0"), tmp_path)
    mask = np.ones(SHAPE, bool)
    mask[1, 2] = False
    write_map(tmp_path / "myMask.h5", Metadata(grid=Grid(*SHAPE)), "mask", {"mask": mask})
    with pytest.raises(DataError, match="masked"):
        reference.choose_reference(stack, T(yx="1,2", maskFile="myMask.h5"), tmp_path)


def test_given_lalo_on_geo_grid(tmp_path):
    stack = make_stack(tmp_path)
    choice = reference.choose_reference(stack, T(lalo="19.4251,-98.9649"), tmp_path)
    assert (choice.y, choice.x, choice.method) == (7, 3, "lalo")
    with pytest.raises(DataError, match="outside"):
        reference.choose_reference(stack, T(lalo="20.0,-98.95"), tmp_path)


def test_given_lalo_through_radar_geometry(tmp_path):
    stack = make_stack(tmp_path, geo=False)
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    lat = (30.0 - 0.001 * yy + 0.0002 * xx).astype(np.float32)  # a slightly rotated radar grid
    lon = (120.0 + 0.001 * xx + 0.0001 * yy).astype(np.float32)
    write_map(tmp_path / "inputs" / "geometryRadar.h5", Metadata(grid=Grid(*SHAPE)), "geometry",
              {"latitude": lat, "longitude": lon})
    choice = reference.choose_reference(stack, T(lalo=f"{lat[5, 6]:.6f},{lon[5, 6]:.6f}"), tmp_path)
    assert (choice.y, choice.x) == (5, 6)
    assert choice.lat == pytest.approx(lat[5, 6]) and choice.lon == pytest.approx(lon[5, 6])
    with pytest.raises(DataError, match="outside"):
        reference.choose_reference(stack, T(lalo="31,121"), tmp_path)


def test_set_reference_writes_attrs_once(tmp_path):
    stack = make_stack(tmp_path)
    reference.set_reference(stack, 7, 4)
    with h5py.File(stack) as f:
        assert f.attrs["REF_Y"] == "7" and f.attrs["REF_X"] == "4"
        assert float(f.attrs["REF_LAT"]) == pytest.approx(19.425)
        data_time = f["unwrapPhase"].attrs["MODIFICATION_TIME"]
    meta = IfgramStack(stack).metadata
    assert (meta.reference.y, meta.reference.x) == (7, 4)
    mtime = stack.stat().st_mtime_ns
    reference.set_reference(stack, 7, 4)  # same point: file untouched
    assert stack.stat().st_mtime_ns == mtime
    with h5py.File(stack) as f:
        assert f["unwrapPhase"].attrs["MODIFICATION_TIME"] == data_time
    with pytest.raises(DataError, match="outside"):
        reference.set_reference(stack, -1, 0)
