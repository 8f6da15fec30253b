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
    widget.time_box.setChecked(True)
    viewer.dims.set_current_step(0, 2)
    widget.snapshot_prediction()
    widget.ids_edit.setText("3")
    widget.delete()
    assert 3 in layer.data[0] and 3 not in layer.data[2]
    widget.refresh_edits()
    assert widget.edits_list.count() == 1
    assert widget.edits_list.item(0).text().startswith("frame 2")
