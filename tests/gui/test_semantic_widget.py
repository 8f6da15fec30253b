import numpy as np
import pytest
from qtpy.QtCore import QElapsedTimer, QTimer

from cellsight.gui.semantic_widget import SemanticWidget


def _scene(size=48):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    mask = (yy - 24) ** 2 + (xx - 24) ** 2 < 120
    image = (mask * 1.0 + rng.normal(0, 0.15, mask.shape)).astype(np.float32)
    strokes = np.zeros(mask.shape, np.uint8)
    strokes[22:26, 18:30] = 2  # a stroke inside the blob
    strokes[2:4, :] = 1  # and one in the background
    strokes[-4:-2, :] = 1
    return image, strokes


@pytest.fixture
def setup(make_napari_viewer):
    viewer = make_napari_viewer()
    image, strokes = _scene()
    viewer.add_image(image, name="cells")
    viewer.add_labels(strokes, name="strokes")
    widget = SemanticWidget(viewer)
    widget.network_form.editors["depth"].setValue(2)
    widget.network_form.editors["base_channels"].setValue(4)
    widget.training_form.editors["patch_size"].setValue(32)
    widget.training_form.editors["batch_size"].setValue(2)
    widget.training_form.editors["val_every"].setValue(5)
    widget.device_box.setCurrentText("cpu")
    return viewer, widget


def test_form_follows_the_config(setup):
    viewer, widget = setup
    assert widget.image_box.current_choice == "cells"
    assert widget.labels_box.current_choice == "strokes"
    assert (
        "Down-sampling" in widget.network_form.editors["depth"].toolTip()
        or "down-sampling" in widget.network_form.editors["depth"].toolTip()
    )
    widget.training_form.editors["steps"].setValue(7)
    widget.network_form.editors["norm"].setCurrentText("group")
    config = widget.config()
    assert config.training.steps == 7 and config.unet.norm == "group"
    assert config.training.device == "cpu"
    assert not widget.predict_button.isEnabled()  # no model yet


def test_training_keeps_gui_responsive_then_stop_and_predict(setup, qtbot, tmp_path):
    viewer, widget = setup
    widget.training_form.editors["steps"].setValue(5000)
    gaps, clock = [], QElapsedTimer()
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: gaps.append(clock.restart()))
    clock.start()
    timer.start()
    job = widget.start_training()
    assert job is not None and widget.stop_button.isEnabled()
    qtbot.waitUntil(lambda: len(widget.plot.val_losses) >= 2, timeout=60_000)
    widget.stop_button.click()
    qtbot.waitUntil(lambda: widget.job is None, timeout=30_000)
    timer.stop()
    assert job.state == "cancelled"
    assert len(gaps) > 20 and np.median(gaps) < 100  # the event loop kept ticking
    assert widget.model is not None  # stop keeps the model trained so far
    steps = widget.model.meta["metrics"]["steps_done"]
    assert 10 <= steps < 5000 and widget.model.meta["metrics"]["stop_reason"] == "cancelled"
    assert widget.plot.losses and widget.progress_bar.value() > 0
    assert widget.predict_button.isEnabled(), (widget.job, widget.status.text())

    n_layers = len(viewer.layers)
    job = widget.start_predict()
    qtbot.waitUntil(lambda: widget.job is None, timeout=30_000)
    assert job.state == "done"
    assert len(viewer.layers) == n_layers + 3  # labels + one probability map per class
    labels = viewer.layers["cells semantic"]
    assert labels.data.shape == (48, 48) and set(np.unique(labels.data)) <= {1, 2}
    assert np.array_equal(viewer.layers["strokes"].data, _scene()[1])  # user layer untouched

    plain = [layer.data.copy() for layer in viewer.layers[-2:]]  # probability maps
    widget.tta_check.setChecked(True)  # test-time augmentation: averaged, other maps
    job = widget.start_predict()
    qtbot.waitUntil(lambda: widget.job is None, timeout=30_000)
    assert job.state == "done" and len(viewer.layers) == n_layers + 6
    averaged = [layer.data for layer in viewer.layers[-2:]]
    assert max(np.abs(a - b).max() for a, b in zip(plain, averaged, strict=True)) > 1e-5
    widget.tta_check.setChecked(False)

    assert widget.continue_check.isEnabled()
    widget.continue_check.setChecked(True)  # fine-tune the model with the same strokes
    widget.training_form.editors["steps"].setValue(2)
    widget.network_form.editors["base_channels"].setValue(8)  # ignored: the model's is kept
    first = widget.model
    job = widget.start_training()
    qtbot.waitUntil(lambda: widget.job is None, timeout=30_000)
    assert job.state == "done" and widget.model is not first
    assert widget.model.config.unet == first.config.unet

    widget.save_model(tmp_path / "model")
    other = SemanticWidget(viewer)
    other.load_model(tmp_path / "model")
    assert other.model.config == widget.model.config
    assert other.predict_button.isEnabled()


def test_time_series_is_segmented_frame_by_frame(setup, qtbot):
    viewer, widget = setup
    widget.training_form.editors["steps"].setValue(3)
    job = widget.start_training()
    qtbot.waitUntil(lambda: widget.job is None, timeout=30_000)
    assert job.state == "done"
    image, _ = _scene()
    viewer.add_image(np.stack([image, image[::-1]]), name="movie")
    widget.image_box.value = viewer.layers["movie"]
    assert widget.frames_check.isChecked()  # one axis more than the 2D model
    job = widget.start_predict()
    qtbot.waitUntil(lambda: widget.job is None, timeout=30_000)
    assert viewer.layers["movie semantic"].data.shape == (2, 48, 48)
    assert viewer.layers["movie P(background)"].data.shape == (2, 48, 48)


def test_mismatched_layers_are_refused(setup):
    viewer, widget = setup
    viewer.add_labels(np.zeros((10, 10), np.uint8), name="small")
    widget.labels_box.value = viewer.layers["small"]
    assert widget.start_training() is None
    assert widget.job is None


def test_new_training_options_reach_the_config(setup):
    viewer, widget = setup
    assert widget.config().soft_targets and widget.config().training.mixed_precision
    widget.training_form.editors["zoom"].setChecked(True)
    widget.training_form.editors["weight_averaging"].setValue(0.3)
    widget.training_form.editors["hard_mining"].setValue(0.25)
    widget.training_form.editors["mixed_precision"].setChecked(False)
    widget.data_form.editors["soft_targets"].setChecked(False)
    widget.data_form.editors["scale"].setValue(0.5)
    config = widget.config()
    assert config.training.zoom and config.training.weight_averaging == pytest.approx(0.3)
    assert config.training.hard_mining == pytest.approx(0.25)
    assert not config.training.mixed_precision and not config.soft_targets
    assert config.scale == pytest.approx(0.5)
