import numpy as np
import pytest

from cellsight.gui.corrections_widget import PREDICTION_KEY, CorrectionsWidget


def touching_pair():
    lab = np.zeros((40, 60), np.int32)
    lab[10:30, 5:25] = 1
    lab[10:30, 25:50] = 2
    lab[2:6, 2:6] = 3
    return lab


@pytest.fixture
def setup(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(touching_pair(), name="nuclei")
    widget = CorrectionsWidget(viewer)
    return viewer, layer, widget


def test_merge_is_undoable_and_listed(setup, qtbot):
    viewer, layer, widget = setup
    widget.snapshot_prediction()
    assert PREDICTION_KEY in layer.metadata
    widget.ids_edit.setText("1, 2")
    widget.buttons["Merge"].click()
    assert set(np.unique(layer.data)) == {0, 1, 3}
    widget.refresh_edits()
    assert widget.edits_list.count() == 1
    overlay = viewer.layers["edited regions (nuclei)"]
    assert overlay.data.sum() == 400  # the smaller merged part changed owner
    layer.undo()
    np.testing.assert_array_equal(layer.data, touching_pair())
    widget.refresh_edits()
    assert widget.edits_list.count() == 0


def test_split_delete_fill_relabel(setup):
    viewer, layer, widget = setup
    widget.ids_edit.setText("1, 2")
    widget.merge()
    widget.add_helper_layers()
    viewer.layers["split seeds"].data = np.array([[20, 10], [20, 40]])
    widget.ids_edit.setText("")
    widget.split_seeds()
    assert len(np.unique(layer.data)) == 4
    widget.ids_edit.setText("3")
    widget.delete()
    assert 3 not in layer.data
    widget.ids_edit.setText("")
    widget.relabel()
    assert set(np.unique(layer.data)) == {0, 1, 2}


def test_split_by_drawn_line(setup):
    viewer, layer, widget = setup
    widget.ids_edit.setText("1, 2")
    widget.merge()
    widget.ids_edit.setText("")
    widget.add_helper_layers()
    viewer.layers["split line"].add_paths(np.array([[5, 25], [35, 25]]))
    widget.split_line()
    assert len(np.unique(layer.data)) == 4


def test_bad_selection_notifies_and_keeps_data(setup, monkeypatch):
    from cellsight.gui import corrections_widget as mod

    shown = []
    monkeypatch.setattr(mod, "show_error", shown.append)
    viewer, layer, widget = setup
    widget.ids_edit.setText("99")
    widget.delete()
    assert shown and "99" in shown[0]
    np.testing.assert_array_equal(layer.data, touching_pair())


def test_time_series_edits_only_current_frame(make_napari_viewer):
    viewer = make_napari_viewer()
    movie = np.stack([touching_pair()] * 3)
    layer = viewer.add_labels(movie, name="movie")
    widget = CorrectionsWidget(viewer)
    assert widget.has_time and not widget.all_frames_box.isChecked()  # the default
    assert "time point shown" in widget.buttons["Delete"].toolTip()
    assert "time point shown" in widget.all_frames_box.toolTip()
    viewer.dims.set_current_step(0, 2)
    widget.ids_edit.setText("3")
    widget.delete()
    np.testing.assert_array_equal(layer.data[:2], movie[:2])  # other frames untouched
    assert 3 not in layer.data[2]
    widget.refresh_edits()
    assert widget.edits_list.count() == 1
    assert widget.edits_list.item(0).text().startswith("frame 2")
    widget.all_frames_box.setChecked(True)  # explicitly: every frame
    widget.ids_edit.setText("2")
    widget.delete()
    assert 2 not in layer.data


def test_time_series_fill_and_split_follow_the_frame_shown(make_napari_viewer):
    viewer = make_napari_viewer()
    movie = np.stack([touching_pair()] * 3)
    movie[:, 15:20, 10:15] = 0  # a hole in object 1 in every frame
    layer = viewer.add_labels(movie, name="movie")
    widget = CorrectionsWidget(viewer)
    viewer.dims.set_current_step(0, 1)
    widget.fill()
    assert (layer.data[1, 15:20, 10:15] == 1).all()
    assert (layer.data[[0, 2], 15:20, 10:15] == 0).all()
    widget.all_frames_box.setChecked(True)
    widget.fill()  # frame by frame, not as one 3D volume
    assert (layer.data[:, 15:20, 10:15] == 1).all()
    widget.add_helper_layers()
    viewer.layers["split seeds"].data = np.array([[1, 20, 8], [1, 20, 20]])
    widget.split_seeds()  # seeds of frame 1 split frame 1 only, even with "all frames"
    assert len(np.unique(layer.data[1])) == 5 and len(np.unique(layer.data[0])) == 4


def test_a_z_stack_is_edited_as_one_volume(make_napari_viewer):
    viewer = make_napari_viewer()
    stack = np.stack([touching_pair()] * 3)
    layer = viewer.add_labels(stack, name="stack", metadata={"axes": "ZYX"})
    widget = CorrectionsWidget(viewer)
    assert not widget.has_time and not widget.all_frames_box.isEnabled()
    widget.ids_edit.setText("3")
    widget.delete()
    assert 3 not in layer.data


@pytest.mark.parametrize("tool", ["merge", "delete", "fill", "split"])
def test_every_tool_is_undone_exactly_by_the_layer_undo(setup, tool):
    viewer, layer, widget = setup
    before = layer.data.copy()
    before[15:18, 10:13] = 0  # a hole for "fill"
    layer.data = before.copy()
    widget.ids_edit.setText({"merge": "1, 2", "delete": "1, 3", "fill": "", "split": ""}[tool])
    if tool == "split":
        widget.add_helper_layers()
        viewer.layers["split seeds"].data = np.array([[20, 30], [20, 45]])
        widget.split_seeds()
    else:
        getattr(widget, tool)()
    assert not np.array_equal(layer.data, before)
    layer.undo()  # what Ctrl+Z does
    np.testing.assert_array_equal(layer.data, before)
    layer.redo()
    assert not np.array_equal(layer.data, before)


def test_edit_list_follows_painting_and_undo(setup, qtbot):
    viewer, layer, widget = setup
    assert PREDICTION_KEY in layer.metadata  # taken before the first correction
    calls = []
    refresh = widget.refresh_edits
    widget.refresh_edits = lambda: (calls.append(1), refresh())
    widget._refresh_timer.timeout.disconnect()
    widget._refresh_timer.timeout.connect(widget.refresh_edits)
    for x in range(8, 20):  # one stroke, many paint events
        layer.paint((35, x), 5)
    qtbot.waitUntil(lambda: widget.edits_list.count() == 1, timeout=5_000)
    assert len(calls) == 1  # throttled: one refresh after the stroke, not one per event
    for _ in range(12):  # Ctrl+Z for each dab: napari sends no paint / data event
        layer.undo()
    qtbot.waitUntil(lambda: widget.edits_list.count() == 0, timeout=5_000)
    layer.redo()
    qtbot.waitUntil(lambda: widget.edits_list.count() == 1, timeout=5_000)
    viewer.dims.set_current_step(0, 0)  # no history change: no refresh


def test_every_button_has_a_tooltip_and_shortcuts_are_listed(setup):
    from qtpy.QtWidgets import QLabel, QPushButton

    _viewer, _layer, widget = setup
    buttons = widget.findChildren(QPushButton)
    assert len(buttons) >= 12
    assert all(b.toolTip() for b in buttons), [b.text() for b in buttons if not b.toolTip()]
    texts = " ".join(label.text() for label in widget.findChildren(QLabel))
    assert "Alt+click" in texts and "Shift+click" in texts and "Enter" in texts
