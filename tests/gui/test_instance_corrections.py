"""The Instance dock never rewrites corrections and records its prediction (issue 19)."""

import numpy as np
import pytest

from cellsight.core.curation.correction_data import correction_frames
from cellsight.core.segmentation.instance_model import InstanceMaps
from cellsight.gui.corrections_widget import CorrectionsWidget
from cellsight.gui.finetune_widget import FineTuneWidget
from cellsight.gui.instance_widget import InstanceWidget
from cellsight.gui.layer_utils import PREDICTION_KEY

CENTRES = ((24, 24), (24, 70), (70, 40))


def blob_maps(frames: int = 0) -> InstanceMaps:
    """Three smooth nuclei: a higher mask threshold gives smaller objects."""
    yy, xx = np.mgrid[:96, :96]
    fg = np.zeros((96, 96), np.float32)
    for cy, cx in CENTRES:
        fg = np.maximum(fg, np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 9.0**2)))
    if frames:
        fg = np.stack([fg] * frames)
    return InstanceMaps(fg, np.zeros_like(fg), has_time=bool(frames))


@pytest.fixture
def dock(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget = InstanceWidget(viewer)
    shown = []
    show = widget._show_labels
    widget._show_labels = lambda labels: (show(labels), shown.append(1))
    widget.shown = shown
    return viewer, widget


def predict(viewer, w, qtbot, maps) -> object:
    """What Predict does once the maps are back (no network needed)."""
    w._target = viewer.add_image(maps.foreground, name="img")
    n = len(w.shown)
    w._predicted((w.model, maps, 0.0))
    qtbot.waitUntil(lambda: len(w.shown) > n and w.ws_job is None, timeout=30_000)
    return viewer.layers[w._result_name]


def move_mask_slider(w, qtbot, value: float) -> None:
    n = len(w.shown)
    w.post_form.editors["mask_threshold"].setValue(value)
    qtbot.waitUntil(lambda: len(w.shown) > n and w.ws_job is None
                    and not w._debounce.isActive(), timeout=30_000)


def test_a_corrected_result_is_never_rewritten_by_a_slider(dock, qtbot):
    viewer, w = dock
    layer = predict(viewer, w, qtbot, blob_maps())
    assert layer.name == "img instances" and layer.metadata["axes"] == "YX"
    np.testing.assert_array_equal(layer.metadata[PREDICTION_KEY], layer.data)

    # not edited: the slider updates the dock's own layer, as one undoable edit
    first = layer.data.copy()
    n_layers = len(viewer.layers)
    move_mask_slider(w, qtbot, 0.8)
    assert len(viewer.layers) == n_layers and (layer.data > 0).sum() < (first > 0).sum()
    np.testing.assert_array_equal(layer.metadata[PREDICTION_KEY], layer.data)
    layer.undo()  # Ctrl+Z gives the previous thresholds' labels back exactly
    np.testing.assert_array_equal(layer.data, first)
    layer.redo()

    # the user paints: from now on the layer is theirs
    layer.brush_size = 6
    layer.selected_label = 9
    layer.paint((50, 80), 9)
    corrected = layer.data.copy()
    move_mask_slider(w, qtbot, 0.3)
    np.testing.assert_array_equal(layer.data, corrected)  # nothing of the correction lost
    new = viewer.layers[w._result_name]
    seed = w.post_config().seed_threshold  # the model's own, shown by the dock
    assert new is not layer and new.name == f"img instances (thresholds {seed:.2f}/0.30)"
    assert (new.data > 0).sum() > (corrected > 0).sum() - (corrected == 9).sum()
    assert "'img instances' is kept" in w.status.text()
    move_mask_slider(w, qtbot, 0.4)  # later moves update the new layer only
    assert viewer.layers[w._result_name] is new and len(viewer.layers) == n_layers + 1
    np.testing.assert_array_equal(layer.data, corrected)

    # a new prediction does not rewrite it either
    predict(viewer, w, qtbot, blob_maps())
    np.testing.assert_array_equal(layer.data, corrected)


def test_an_edit_without_events_is_detected_by_content(dock, qtbot):
    viewer, w = dock
    layer = predict(viewer, w, qtbot, blob_maps())
    layer.data[40:44, 0:4] = 5  # e.g. a script writing into the array: no paint event
    corrected = layer.data.copy()
    move_mask_slider(w, qtbot, 0.7)
    np.testing.assert_array_equal(layer.data, corrected)
    assert w._result_name != "img instances"


def test_the_first_correction_is_listed_and_counts_for_fine_tuning(
    dock, qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("CELLSIGHT_MODELS_DIR", str(tmp_path))
    viewer, w = dock
    layer = predict(viewer, w, qtbot, blob_maps())
    predicted = layer.data.copy()
    layer.brush_size = 5
    layer.selected_label = 9
    layer.paint((50, 80), 9)  # one stroke, before the Correct dock is even opened

    correct = CorrectionsWidget(viewer)
    assert correct.layer is layer
    correct.refresh_edits()
    assert correct.edits_list.count() == 1
    np.testing.assert_array_equal(layer.metadata[PREDICTION_KEY], predicted)

    tune = FineTuneWidget(viewer)
    tune.image_box.value = viewer.layers["img"]
    tune.labels_box.value = layer
    started = []
    monkeypatch.setattr(tune, "run_job", lambda func, *args, **kw: started.append(args))
    tune.start_fine_tune()
    image, labels, _source, _config, prediction = started[0][:5]
    np.testing.assert_array_equal(prediction, predicted)
    frames = correction_frames(image, labels, 2, predictions=prediction, region="edited")
    assert len(frames) == 1 and frames[0].mask[50, 80] and not frames[0].mask[5, 5]


def test_a_time_series_result_says_it_has_a_time_axis(dock, qtbot):
    viewer, w = dock
    layer = predict(viewer, w, qtbot, blob_maps(frames=2))
    assert layer.metadata["axes"] == "TYX"
    assert CorrectionsWidget(viewer).has_time
