"""Defaults that fit the task (issue 19 item 4): what the docks preselect and warn about."""

import napari
import numpy as np
import pytest

from cellsight.gui.finetune_widget import FineTuneWidget
from cellsight.gui.layer_utils import PREDICTION_KEY
from cellsight.gui.semantic_widget import SemanticWidget, classes_colormap
from cellsight.gui.toolkit import layer_chooser, time_series_labels
from cellsight.plugin.samples import load_sample, nuclei_2d


def _add_sample(viewer, layer_data) -> list:
    return [getattr(viewer, f"add_{kind}")(data, **meta) for data, meta, kind in layer_data]


def _strokes(shape) -> np.ndarray:
    strokes = np.zeros(shape, np.uint8)
    strokes[5:8, 5:60] = 1
    strokes[30:33, 30:40] = 2
    return strokes


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def test_chooser_preselects_the_most_recent_usable_layer(viewer):
    flat = viewer.add_labels(np.zeros((8, 8), np.uint8), name="2D mask")
    chooser = layer_chooser(viewer, napari.layers.Labels, usable=time_series_labels)
    assert chooser.value is None  # a 2D mask cannot be tracked: never preselected
    movie = viewer.add_labels(np.zeros((3, 8, 8), np.uint8), name="movie",
                              metadata={"axes": "TYX"})
    assert chooser.value is movie
    newer = viewer.add_labels(np.zeros((4, 8, 8), np.uint8), name="newer")
    assert chooser.value is newer  # the most recent usable one, until one is chosen
    viewer.add_labels(np.zeros((5, 8, 8), np.uint8), name="stack", metadata={"axes": "ZYX"})
    assert chooser.value is newer
    chooser.value = movie  # a choice is kept while the layer exists
    viewer.add_labels(np.zeros((2, 8, 8), np.uint8), name="newest")
    assert chooser.value is movie
    viewer.layers.remove(movie)
    assert chooser.value is viewer.layers["newest"]
    chooser.value = flat  # the user may still pick any layer
    assert chooser.value is flat


def test_semantic_dock_never_takes_instance_masks_as_strokes_and_warns(viewer, qtbot):
    image, masks = _add_sample(viewer, nuclei_2d())
    widget = SemanticWidget(viewer)
    assert widget.image_box.value is image
    assert widget.labels_box.value is None  # 'DSB2018 nuclei masks' look like instances
    assert "1 = background" in widget.status.text()
    strokes = viewer.add_labels(_strokes(image.data.shape), name="strokes")
    assert widget.labels_box.value is strokes
    # results added by the dock are not taken as the user's image / strokes
    viewer.add_image(image.data, name="probabilities", metadata={"cellsight_owned": True})
    assert widget.image_box.value is image and widget.labels_box.value is strokes

    widget.labels_box.value = masks  # chosen on purpose: warned once, before training
    widget.training_form.editors["steps"].setValue(1)
    assert widget.start_training() is None
    text = widget.status.text()
    assert "instance masks" in text and "Train again" in text and "\n" not in text
    assert widget.job is None


def test_semantic_warning_is_a_notification_and_train_again_goes_ahead(viewer, qtbot,
                                                                       monkeypatch):
    import cellsight.gui.semantic_widget as sw

    shown = []
    monkeypatch.setattr(sw, "show_warning", shown.append)
    image = viewer.add_image(load_sample("nuclei_2d")[:64, :64], name="crop")
    labels = np.zeros((64, 64), np.uint8)
    for k in range(12):  # 12 classes of strokes
        labels[k * 5:k * 5 + 2, 4:60] = k + 1
    viewer.add_labels(labels, name="twelve")
    widget = SemanticWidget(viewer)
    widget.labels_box.value = viewer.layers["twelve"]
    widget.training_form.editors["steps"].setValue(1)
    widget.training_form.editors["patch_size"].setValue(32)
    widget.network_form.editors["depth"].setValue(2)
    widget.network_form.editors["base_channels"].setValue(4)
    widget.device_box.setCurrentText("cpu")
    assert widget.start_training() is None
    assert len(shown) == 1 and "12 different ids" in shown[0] and "12-class" in shown[0]
    assert shown[0] == widget.status.text()
    job = widget.start_training()  # the second press trains anyway
    assert job is not None
    qtbot.waitUntil(lambda: widget.job is None, timeout=60_000)
    assert job.state == "done" and widget.model.config.n_classes == 12
    assert image is widget.image_box.value


def test_semantic_prediction_shows_background_transparent(viewer, qtbot):
    crop = load_sample("nuclei_2d")[:64, :64]
    viewer.add_image(crop, name="crop")
    viewer.add_labels(_strokes(crop.shape), name="strokes")
    widget = SemanticWidget(viewer)
    widget.training_form.editors["steps"].setValue(2)
    widget.training_form.editors["patch_size"].setValue(32)
    widget.network_form.editors["depth"].setValue(2)
    widget.network_form.editors["base_channels"].setValue(4)
    widget.device_box.setCurrentText("cpu")
    widget.start_training()
    qtbot.waitUntil(lambda: widget.job is None, timeout=60_000)
    widget.start_predict()
    qtbot.waitUntil(lambda: widget.job is None, timeout=60_000)
    labels = viewer.layers["crop semantic"]
    assert labels.colormap.map(1)[..., 3] == 0  # class 1 = background: transparent
    assert labels.colormap.map(2)[..., 3] == 1
    assert "crop P(background)" in viewer.layers and "crop P(class 2)" in viewer.layers
    # a dense mask (0 = background): class 0 transparent, class 1 coloured
    dense = classes_colormap(2, 0)
    assert dense.map(0)[..., 3] == 0 and dense.map(1)[..., 3] == 1


def test_finetune_dock_preselects_the_corrected_prediction(viewer):
    image, masks = _add_sample(viewer, nuclei_2d())
    predicted = viewer.add_labels(masks.data.copy(), name="DSB2018 nuclei instances",
                                  metadata={PREDICTION_KEY: masks.data.copy(),
                                            "cellsight_owned": True})
    viewer.add_labels(np.zeros_like(masks.data), name="scribbles")  # newer, not a prediction
    widget = FineTuneWidget(viewer)
    assert widget.labels_box.value is predicted
    assert widget.image_box.value is image
    assert widget.diameter_form.editors["diameter"].text() == "model's own scale"
