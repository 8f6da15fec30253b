import numpy as np
import pytest

from cellsight.config.tracking import TrackingConfig
from cellsight.core.progress import Cancelled
from cellsight.core.tracking import track


@pytest.mark.parametrize("solver", ["ilp", "greedy"])
def test_division_and_static_cell(movie, solver):
    result = track(movie, config=TrackingConfig(solver=solver))
    det = result.detections
    kids = result.children()
    mother = det.node_of(1, 4)
    assert sorted(kids[mother]) == sorted([det.node_of(2, 1), det.node_of(2, 2)])
    # daughters continue to the nearest cell in the last frame
    assert result.parent[det.node_of(3, 3)] == det.node_of(2, 1)
    assert result.parent[det.node_of(3, 1)] == det.node_of(2, 2)
    static = [det.node_of(t, 9) for t in range(4)]
    assert len(set(result.node_track[static])) == 1
    assert result.n_tracks == 4  # mother, two daughters, static cell


def test_no_divisions_when_disabled(movie):
    result = track(movie, config=TrackingConfig(divisions=False))
    assert all(len(k) == 1 for k in result.children().values())


def _gt_links(gt):
    links = set()
    for t in range(len(gt) - 1):
        for lab in np.intersect1d(np.unique(gt[t]), np.unique(gt[t + 1])):
            if lab:
                links.add((t, int(lab)))
    return links


@pytest.mark.parametrize("solver", ["ilp", "greedy"])
def test_links_real_cells(sim_crop, solver):
    gt, scrambled = sim_crop
    result = track(scrambled, config=TrackingConfig(solver=solver))
    det = result.detections
    true = _gt_links(gt)
    found = 0
    for s, d in result.links:
        ts, td = int(det.t[s]), int(det.t[d])
        gs = np.bincount(gt[ts][scrambled[ts] == det.label[s]]).argmax()
        gd = np.bincount(gt[td][scrambled[td] == det.label[d]]).argmax()
        found += int(td == ts + 1 and gs == gd and (ts, int(gs)) in true)
    assert found / len(true) > 0.97


def test_stop_request_cancels(movie):
    with pytest.raises(Cancelled):
        track(movie, should_stop=lambda: True)


def test_unknown_scale_length_is_rejected(movie):
    with pytest.raises(ValueError, match="scale"):
        track(movie, scale=(1.0, 1.0, 1.0))
