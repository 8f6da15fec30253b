import numpy as np
import pytest
from qtpy.QtCore import QElapsedTimer, QTimer

import cellsight.gui.instance_widget as iw
from cellsight.core.evaluation.metrics import match_instances
from cellsight.gui.instance_widget import InstanceWidget
from cellsight.plugin.samples import load_sample


@pytest.fixture
def widget(make_napari_viewer):
    viewer = make_napari_viewer()
    return viewer, InstanceWidget(viewer)


def _count_predictions(monkeypatch) -> list:
    calls = []
    real = iw.predict_instance_maps

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(iw, "predict_instance_maps", counting)
    return calls


def test_builtin_model_segments_nuclei_and_sliders_rerun_only_watershed(
    widget, qtbot, monkeypatch
):
    viewer, w = widget
    image = load_sample("nuclei_2d")[:256, :256]
    truth = load_sample("nuclei_2d_masks")[:256, :256]
    viewer.add_image(image, name="nuclei")
    user = viewer.add_labels(np.zeros(image.shape, np.uint8), name="my labels")
    calls = _count_predictions(monkeypatch)
    assert w.model_source() == "nuclei" and w.image_box.current_choice == "nuclei"
    # the model's own watershed settings are shown before it runs
    own = w.post_config()
    builtin = iw.load_model("nuclei").config.postprocessing
    assert own.seed_threshold == pytest.approx(builtin.seed_threshold)
    assert own.split_by_shape is builtin.split_by_shape is True
    assert w.predict_form.values()["mode"] == "2d"
    diameter = w.predict_form.editors["diameter"]
    assert diameter.text() == "auto" and w.predict_config().estimate_diameter  # the default
    assert w.diameter_used.isHidden()
    w.predict_form.editors["device"].setCurrentText("cpu")
    job = w.start_predict()
    assert job is not None
    qtbot.waitUntil(lambda: "nuclei instances" in viewer.layers, timeout=60_000)
    qtbot.waitUntil(lambda: w.ws_job is None and w.job is None, timeout=10_000)
    layer = viewer.layers["nuclei instances"]
    assert layer.data.shape == image.shape
    assert match_instances(truth, layer.data).ap > 0.6
    assert calls == [1]
    used = w.diameter_used.text()  # the estimate it used is shown
    assert not w.diameter_used.isHidden()
    assert used.startswith("Diameter used: ") and used.endswith(" px (estimated)"), used
    assert 5 < float(used.split()[2]) < 60
    source = viewer.layers["nuclei"]  # an image with a physical pixel size: microns too
    source.scale, source.units = (0.5, 0.5), ("micrometer", "micrometer")
    w.show_diameter(20.0)
    assert w.diameter_used.text() == "Diameter used: 20.0 px = 10 µm (estimated)"
    # defaults of the model were shown in the sliders
    shown = w.post_form.values()["seed_threshold"]
    assert shown == pytest.approx(w.model.config.postprocessing.seed_threshold)
    assert w.post_form.values()["split_by_shape"] is True  # the model's own setting

    # split by shape off: touching nuclei the boundary missed stay merged (fewer objects)
    split_count = int(layer.data.max())
    w.post_form.editors["split_by_shape"].setChecked(False)
    qtbot.waitUntil(lambda: int(layer.data.max()) < split_count, timeout=10_000)
    qtbot.waitUntil(lambda: w.ws_job is None, timeout=10_000)
    assert calls == [1]
    w.post_form.editors["split_by_shape"].setChecked(True)
    qtbot.waitUntil(lambda: int(layer.data.max()) == split_count, timeout=10_000)
    qtbot.waitUntil(lambda: w.ws_job is None, timeout=10_000)

    before = layer.data.copy()
    n_layers = len(viewer.layers)
    w.post_form.editors["mask_threshold"].setValue(0.9)
    w.post_form.editors["seed_threshold"].setValue(0.9)
    qtbot.waitUntil(lambda: not np.array_equal(layer.data, before), timeout=10_000)
    qtbot.waitUntil(lambda: w.ws_job is None, timeout=10_000)
    assert calls == [1]  # the network did not run again
    assert len(viewer.layers) == n_layers  # the plugin's own layer was updated
    assert (layer.data > 0).sum() < (before > 0).sum()  # higher mask threshold: smaller objects
    w.post_form.editors["min_size"].setValue(100_000)
    qtbot.waitUntil(lambda: layer.data.max() == 0, timeout=10_000)
    assert calls == [1]
    assert not user.data.any()  # the user's layer is never touched


def test_event_loop_runs_during_prediction_of_a_time_series(widget, qtbot, tmp_path):
    viewer, w = widget
    image = load_sample("nuclei_2d")
    viewer.add_image(np.stack([image, image[::-1], image[:, ::-1]]), name="movie")
    assert w.predict_form.values()["mode"] == "t"
    w.predict_form.editors["device"].setCurrentText("cpu")
    w.predict_form.editors["diameter"].setValue(24)
    gaps, clock = [], QElapsedTimer()
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: gaps.append(clock.restart()))
    clock.start()
    timer.start()
    job = w.start_predict()
    assert w.stop_button.isEnabled() and not w.predict_button.isEnabled()
    qtbot.waitUntil(lambda: "movie instances" in viewer.layers, timeout=120_000)
    timer.stop()
    assert job.state == "done"
    assert len(gaps) > 10 and np.median(gaps) < 100  # the GUI kept ticking
    labels = viewer.layers["movie instances"].data
    assert labels.shape == (3, *image.shape)
    assert all(frame.max() > 50 for frame in labels)  # every frame segmented on its own
    assert w.predict_button.isEnabled()


def test_stop_cancels_prediction(widget, qtbot):
    viewer, w = widget
    image = load_sample("nuclei_2d")
    viewer.add_image(np.stack([image] * 30), name="long")
    w.predict_form.editors["device"].setCurrentText("cpu")
    w.predict_form.editors["diameter"].setValue(24)
    job = w.start_predict()
    w.stop()
    qtbot.waitUntil(lambda: w.job is None, timeout=60_000)
    assert job.state == "cancelled"
    assert "long instances" not in viewer.layers


def test_model_folder_and_errors(widget, tmp_path):
    viewer, w = widget
    assert w.start_predict() is None  # no image layer
    w.set_model_folder(tmp_path / "missing")
    assert w.model_source() == str(tmp_path / "missing")
    shown = w.post_form.values()["seed_threshold"]
    assert w.post_config().seed_threshold == pytest.approx(shown, abs=1e-3)
    assert w.predict_config().test_time_augmentation is False
    w.predict_form.editors["test_time_augmentation"].setChecked(True)
    assert w.predict_config().test_time_augmentation is True
