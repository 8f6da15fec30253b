import numpy as np

from cellsight.config.tracking import TrackingConfig
from cellsight.core.tracking import napari_tracks, track
from cellsight.core.tracking.tracks import assign_tracks, relabel


def test_napari_tracks_layout(movie):
    result = track(movie, config=TrackingConfig(solver="greedy"))
    data, graph, features = napari_tracks(result.detections, result.parent, result.node_track)
    assert data.shape == (len(result.detections), 4)  # track_id, t, y, x
    assert np.all(np.diff(data[:, 0]) >= 0)
    mother = int(result.node_track[result.detections.node_of(1, 4)])
    daughters = [k for k, v in graph.items() if v == [mother]]
    assert len(daughters) == 2
    rows = np.isin(data[:, 0], daughters)
    assert set(features["generation"][rows]) == {1}
    assert set(features["lineage_root"][rows]) == {mother}
    assert set(features["track_length"][data[:, 0] == mother]) == {2}


def test_labels_relabelled_by_track_id(movie):
    result = track(movie)
    det = result.detections
    for n in range(len(det)):
        t = det.t[n]
        assert np.all(result.labels[t][movie[t] == det.label[n]] == result.node_track[n])
    assert np.array_equal(result.labels > 0, movie > 0)
    assert movie[1, 25, 25] == 4  # input untouched


def test_assign_tracks_keeps_previous_ids(movie):
    result = track(movie)
    parent = result.parent.copy()
    cut = result.detections.node_of(3, 9)
    parent[cut] = -1
    ids = assign_tracks(result.detections, parent, previous=result.node_track)
    changed = np.flatnonzero(ids != result.node_track)
    assert changed.tolist() == [cut] and ids[cut] == result.node_track.max() + 1
    out = relabel(movie, result.detections, ids, out=result.labels.copy(), nodes=changed)
    assert np.array_equal(out, relabel(movie, result.detections, ids))
