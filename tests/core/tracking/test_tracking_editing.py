import numpy as np
import pytest

from cellsight.core.tracking import track
from cellsight.core.tracking.editing import TrackEditor
from cellsight.core.tracking.tracks import relabel


@pytest.fixture
def editor(movie):
    return TrackEditor(track(movie), movie)


def _consistent(ed):
    r = ed.result
    assert np.array_equal(r.labels, relabel(ed.input_labels, r.detections, r.node_track))


def test_break_and_link_with_undo_redo(editor):
    det = editor.result.detections
    events = []
    editor.listeners.append(events.append)
    before = editor.result.node_track.copy()
    node = det.node_of(3, 9)
    editor.break_link(node)
    assert editor.result.parent[node] == -1 and editor.result.node_track[node] not in before
    _consistent(editor)
    editor.undo()
    assert np.array_equal(editor.result.node_track, before)
    _consistent(editor)
    editor.redo()
    editor.link(det.node_of(2, 9), node)
    assert editor.result.node_track[node] == before[node]
    actions = [e.action for e in events]
    assert actions == ["break link", "undo break link", "redo break link", "link"]
    assert events[0].frames == (3,)


def test_division_edits(editor):
    det = editor.result.detections
    mother = det.node_of(1, 4)
    editor.unmark_division(mother)
    assert len(editor.children(mother)) == 1
    _consistent(editor)
    kept = editor.children(mother)
    lost = det.node_of(2, 1) if kept == [det.node_of(2, 2)] else det.node_of(2, 2)
    editor.mark_division(mother, lost)
    assert sorted(editor.children(mother)) == sorted([det.node_of(2, 1), det.node_of(2, 2)])
    with pytest.raises(ValueError, match="already divides"):
        editor.mark_division(mother, det.node_of(2, 9))
    _, graph, _ = editor.napari_tracks()
    assert len(graph) == 2


def test_delete_track_and_bad_edits(editor):
    det = editor.result.detections
    tid = int(editor.result.node_track[det.node_of(0, 9)])
    editor.delete_track(tid)
    assert not np.any(editor.result.labels == tid)
    assert editor.node_at(0, tid) is None
    _consistent(editor)
    editor.undo()
    assert editor.node_at(0, tid) == det.node_of(0, 9)
    with pytest.raises(ValueError, match="forward in time"):
        editor.link(det.node_of(2, 9), det.node_of(1, 9))
    with pytest.raises(ValueError, match="no incoming link"):
        editor.break_link(det.node_of(0, 1))
    editor.redo()
    assert editor.node_at(0, tid) is None
    editor.undo()
    with pytest.raises(ValueError, match="Nothing to undo"):
        editor.undo()
