"""Reference point: deterministic automatic choice, checks of a given pixel, lat/lon, REF_* attrs."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.errors import DataError
from sbts.core.io.products import IfgramStack, StackWriter, write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo
from sbts.core.model.pairs import Pairs
from sbts.core.steps import reference
from sbts.core.steps.averages import write_average_coherence, write_conncomp_mask

DATE12 = ["20200101_20200113", "20200101_20200125", "20200113_20200125", "20200113_20200206",
          "20200125_20200206"]
SHAPE = (12, 10)
GEO = GeoGrid(-99.0, 19.5, 0.01, -0.01)


def T(**values) -> Template:
    return Template({f"mintpy.reference.{k}": str(v) for k, v in values.items()}, warn_unknown=False)


def make_stack(tmp_path, coh=None, unw=None, keep=None, geo=True, shape=SHAPE, with_coherence=True):
    m = len(DATE12)
    if coh is None and with_coherence:
        yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
        # a coherent hill centred on (7, 4): the best pixel and the best neighbourhood
        coh = 0.95 - 0.01 * np.hypot(yy - 7, xx - 4)
        coh = np.broadcast_to(coh, (m,) + shape).astype(np.float32).copy()
    if unw is None:
        unw = np.ones((m,) + shape, np.float32)
    pairs = Pairs.from_date12(DATE12, None, keep)
    meta = Metadata(grid=Grid(*shape, GEO if geo else None), radar=RadarInfo(wavelength=0.0555))
    path = tmp_path / "inputs" / "ifgramStack.h5"
    names = ["unwrapPhase", "coherence"] if with_coherence else ["unwrapPhase"]
    with StackWriter(path, meta, pairs, names) as w:
        w.write("unwrapPhase", unw, None)
        if with_coherence:
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
    # not next to the gap: the masked gap is an edge of the candidate area, like the image border
    assert max(abs(first.y - 7), abs(first.x - 4)) >= 2
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
    # flat coherence: the interior pixels tie on the score → the deepest, nearest the centre, then y, x
    for _ in range(2):
        choice = reference.choose_reference(stack, T(), tmp_path)
        assert (choice.y, choice.x) == (5, 4)


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


def _depth_from_edges(y, x, shape, bad=None):
    """Chessboard distance of (y, x) to the image border or to the nearest ``bad`` pixel (slow, obvious)."""
    d = min(y + 1, x + 1, shape[0] - y, shape[1] - x)
    if bad is not None and bad.any():
        by, bx = np.nonzero(bad)
        d = min(d, int(np.min(np.maximum(np.abs(by - y), np.abs(bx - x)))))
    return d


def test_auto_choice_without_coherence_is_central_and_says_so(tmp_path, caplog):
    """No coherence (e.g. an unwrapped stack without .cor files): not the first row, and no 'coherence 1.000'."""
    shape = (60, 80)
    stack = make_stack(tmp_path, shape=shape, with_coherence=False)
    with caplog.at_level("INFO", logger="sbts.core.steps.reference"):
        choice = reference.choose_reference(stack, T(), tmp_path)
    margin = reference.edge_margin(shape)
    assert margin == 3
    # flat scores: the deepest pixels win, i.e. the centre of the image
    assert abs(choice.y - 29.5) <= 1 and abs(choice.x - 39.5) <= 1
    assert "coherence 1.000" not in caplog.text and "no coherence" in caplog.text


def test_auto_choice_on_coherent_unmasked_ground_away_from_edges(tmp_path):
    """A realistic layout: the most coherent ground runs along the first rows and the left edge (where
    a pick by coherence alone lands), a lake is masked, a decorrelated valley crosses the scene.  The
    choice must be coherent with coherent surroundings, unmasked, and well away from the image edge and
    from the mask."""
    shape = (80, 100)
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    coh = 0.88 + 0.04 * rng.random(shape)
    coh[:4, :] = 0.99  # brightest: the image's first rows
    coh[:, :3] = 0.99  # and the left edge
    coh[np.abs(xx - 60) < 4] = 0.3  # a decorrelated valley
    lake = np.hypot(yy - 40, xx - 30) < 12
    coh_stack = np.broadcast_to(coh, (len(DATE12),) + shape).astype(np.float32).copy()
    stack = make_stack(tmp_path, coh=coh_stack, shape=shape)
    write_map(tmp_path / "myMask.h5", Metadata(grid=Grid(*shape)), "mask", {"mask": ~lake})
    choice = reference.choose_reference(stack, T(maskFile="myMask.h5"), tmp_path)
    y, x = choice.y, choice.x
    margin, r = reference.edge_margin(shape), reference.neighbourhood_radius(shape)
    assert (margin, r) == (4, 2)
    assert not lake[y, x] and coh[y, x] >= 0.85
    assert (coh[y - r:y + r + 1, x - r:x + r + 1] >= 0.85).all()  # coherent surroundings, not the valley's shore
    assert _depth_from_edges(y, x, shape, lake) >= 4 * margin  # well inside: not the bright first rows/edge


def test_auto_choice_among_scattered_coherent_pixels_is_not_on_the_edge(tmp_path):
    """A city: only scattered pixels reach minCoherence, the brightest on the first rows (the Mexico City
    stack, where sbts picked y = 1).  Each is 'on an edge' of the thresholded area; the depth is measured
    to the image border and the masks instead, so an interior one is chosen."""
    shape = (60, 100)
    rng = np.random.default_rng(5)
    coh = (0.55 + 0.15 * rng.random(shape)).astype(np.float32)
    strong = [(0, 12), (1, 28), (1, 29), (0, 70), (7, 3), (12, 37), (21, 55), (33, 80), (47, 20), (58, 90)]
    for y, x in strong:
        coh[y, x] = 0.86
    coh[0:2, 27:31] = 0.9  # the first rows: the brightest clump
    stack = make_stack(tmp_path, coh=np.broadcast_to(coh, (len(DATE12),) + shape).copy(), shape=shape)
    choice = reference.choose_reference(stack, T(), tmp_path)
    assert coh[choice.y, choice.x] >= 0.85
    assert _depth_from_edges(choice.y, choice.x, shape) > reference.edge_margin(shape)


def test_edge_depth_matches_a_slow_reference():
    rng = np.random.default_rng(0)
    area = rng.random((17, 23)) > 0.2
    depth = reference.edge_depth(area)
    for y in range(17):
        for x in range(23):
            want = _depth_from_edges(y, x, area.shape, ~area) if area[y, x] else 0
            assert depth[y, x] == want, (y, x)


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
    auto = reference.choose_reference(stack, T(), tmp_path)
    with pytest.raises(DataError) as err:
        reference.choose_reference(stack, T(yx="3,3"), tmp_path)
    msg = str(err.value)
    assert "y/x = 3, 3" in msg and DATE12[2] in msg and f"automatic choice would be y/x = {auto.y}, {auto.x}" in msg
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
