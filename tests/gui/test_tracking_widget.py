import numpy as np
import pytest
from qtpy.QtCore import QElapsedTimer, QPoint, Qt, QTimer

from cellsight.gui import tracking_widget as tw
from cellsight.gui.lineage_view import tick_step
from cellsight.plugin.samples import load_sample


def _movie():
    lab = np.zeros((4, 64, 64), np.uint16)
    lab[0, 20:30, 20:30] = 1
    lab[1, 20:30, 21:31] = 4
    lab[2, 14:21, 20:28] = 1
    lab[2, 30:37, 20:28] = 2
    lab[3, 13:20, 20:28] = 3
    lab[3, 31:38, 20:28] = 1
    lab[:, 50:56, 50:56] = 9
    return lab


@pytest.fixture
def tracked(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_labels(_movie(), name="seg")
    widget = tw.TrackingWidget(viewer)
    widget.labels_box.value = viewer.layers["seg"]
    job = widget.start_tracking()
    qtbot.waitUntil(lambda: not job.is_running, timeout=30_000)
    assert job.state == "done"
    return viewer, widget


def test_track_adds_new_labels_and_tracks_layers(tracked):
    viewer, widget = tracked
    names = [layer.name for layer in viewer.layers]
    assert names == ["seg", "seg tracked", "seg tracks"]
    assert viewer.layers["seg"].data[1, 25, 25] == 4  # the user's layer is untouched
    tracks = viewer.layers["seg tracks"]
    assert len(tracks.graph) == 2 and tracks.data.shape[1] == 4
    assert "generation" in tracks.features
    assert widget.lineage.dots and "4 tracks, 1 divisions" in widget.status.text()


def test_clicking_a_tree_node_moves_the_viewer(tracked, qtbot):
    viewer, widget = tracked
    det = widget.editor.result.detections
    node = det.node_of(3, 3)
    widget.lineage.show()
    qtbot.waitExposed(widget.lineage)
    x, y = widget.lineage.positions[node]
    pos = widget.lineage.mapFromScene(x, y)
    qtbot.mouseClick(widget.lineage.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos))
    assert viewer.dims.current_step[0] == 3
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    np.testing.assert_allclose(camera.center[-2:], det.centroid[node], atol=1e-6)
    tid = widget.editor.result.node_track[node]
    assert viewer.layers["seg tracked"].selected_label == tid
    assert widget.lineage.highlighted == node


def test_selecting_a_cell_in_the_viewer_highlights_its_node(tracked):
    viewer, widget = tracked
    viewer.dims.current_step = (2, 0, 0)
    layer = viewer.layers["seg tracked"]

    class Click:
        position = (2, 33, 24)
        modifiers = ()

    widget._on_click(layer, Click())
    node = widget.editor.result.detections.node_of(2, 2)
    assert widget.selection[-1] == node and widget.lineage.highlighted == node


def test_edit_and_undo_keep_labels_tracks_and_tree_in_sync(tracked):
    viewer, widget = tracked
    det = widget.editor.result.detections
    layer, tracks = viewer.layers["seg tracked"], viewer.layers["seg tracks"]
    mother = det.node_of(1, 4)
    widget.select(mother)
    widget.unmark_division()
    assert len(tracks.graph) == 0
    ids = set(np.unique(layer.data)) - {0}
    assert ids == set(tracks.data[:, 0].astype(int))
    assert len(widget.lineage.dots) == len(det)
    widget.undo()
    assert len(tracks.graph) == 2
    assert set(np.unique(layer.data)) - {0} == set(tracks.data[:, 0].astype(int))
    assert widget.buttons["Redo"].isEnabled()


def test_two_clicks_link_cells(tracked):
    viewer, widget = tracked
    det = widget.editor.result.detections
    a, b = det.node_of(2, 9), det.node_of(3, 1)
    layer = viewer.layers["seg tracked"]

    def click(t, pos, modifiers=()):
        viewer.dims.current_step = (t, 0, 0)

        class Event:
            position = (t, *pos)

        Event.modifiers = modifiers
        widget._on_click(layer, Event())

    click(2, (52, 52))
    click(3, (34, 24), ("Control",))
    assert widget.editor.result.parent[b] == a


def test_event_loop_keeps_running_while_tracking(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    seg = load_sample("hela_timelapse_errseg")
    # long enough (240 frames) that the job spans many 5 ms timer ticks
    viewer.add_labels(np.concatenate([seg, seg[::-1]] * 6), name="seg")
    widget = tw.TrackingWidget(viewer)
    widget.form.editors["solver"].setCurrentText("greedy")
    gaps, clock, state = [], QElapsedTimer(), {}
    timer = QTimer()
    timer.setInterval(5)

    def tick():  # measured only while the worker computes (not while layers are added)
        gap = clock.restart()
        if state["job"].is_running:
            gaps.append(gap)

    timer.timeout.connect(tick)
    clock.start()
    state["job"] = job = widget.start_tracking()
    timer.start()
    qtbot.waitUntil(lambda: not job.is_running, timeout=60_000)
    timer.stop()
    assert job.state == "done" and "seg tracks" in viewer.layers
    assert len(gaps) > 20
    assert max(gaps[1:]) < 250, f"GUI blocked for {max(gaps[1:])} ms"


def test_lineage_tree_has_track_colours_ids_time_axis_zoom_and_room(tracked, qtbot):
    viewer, widget = tracked
    tree = widget.lineage
    tracks = viewer.layers["seg tracks"]
    # every dot has its track's colour in the Tracks layer
    data, colors = np.asarray(tracks.data), np.asarray(tracks.track_colors)
    nt = widget.editor.result.node_track
    for node, item in tree.dots.items():
        row = int(np.flatnonzero(data[:, 0] == nt[node])[0])
        got = item.brush().color()
        assert abs(got.redF() - colors[row][0]) < 0.01 and abs(got.blueF() - colors[row][2]) < 0.01
    # track ids at the start of each track, and a frame axis with labelled ticks
    assert set(tree.labels) == set(int(t) for t in np.unique(data[:, 0]))
    texts = {i.text() for i in tree.scene().items() if hasattr(i, "text")}
    assert {"frame", "0", "3"} <= texts
    # the wheel zooms (within bounds)
    tree.zoom_by(2.0)
    assert tree.zoom == 2.0 and abs(tree.transform().m11() - 2.0) < 1e-6
    tree.zoom_by(1000)
    assert tree.zoom == 20.0
    # the tree dock takes a third of the window
    window = viewer.window._qt_window
    window.resize(1280, 800)
    widget._size_tree_dock()
    qtbot.wait(50)
    assert widget._lineage_dock.height() >= 0.3 * window.height()


def test_tick_step_keeps_labels_apart():
    assert tick_step(1000) == 5  # 12 px per frame: a label every 60 px
    assert tick_step(1000, x_step=1.0) == 50  # zoomed out scene: every 50 frames
    assert tick_step(2, x_step=1.0) == 2  # never more than the movie
