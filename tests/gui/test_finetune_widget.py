import numpy as np
import pytest
from qtpy.QtCore import QElapsedTimer, QTimer

from cellsight.core.curation.finetune import MODELS_DIR_ENV
from cellsight.core.segmentation.instance_model import InstanceModel
from cellsight.gui.corrections_widget import CorrectionsWidget
from cellsight.gui.finetune_widget import FineTuneWidget
from cellsight.gui.instance_widget import InstanceWidget
from cellsight.plugin.samples import load_sample


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def _ticking():
    gaps, clock, timer = [], QElapsedTimer(), QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: gaps.append(clock.restart()))
    clock.start()
    timer.start()
    return timer, gaps


def test_predict_edit_fine_tune_lists_the_new_version(viewer, qtbot, tmp_path):
    image = load_sample("nuclei_2d")[:96, :128]
    viewer.add_image(image, name="nuclei")
    # 1. predict with the built-in model
    seg = InstanceWidget(viewer)
    viewer.window.add_dock_widget(seg, name="Instance segmentation")
    seg.predict_form.editors["device"].setCurrentText("cpu")
    seg.start_predict()
    qtbot.waitUntil(lambda: "nuclei instances" in viewer.layers and seg.ws_job is None,
                    timeout=60_000)
    layer = viewer.layers["nuclei instances"]
    # 2. correct it: the corrections dock records the prediction, then one object goes
    fix = CorrectionsWidget(viewer)
    fix.layer_box.value = layer
    fix.snapshot_prediction()
    victim = int(np.bincount(layer.data.ravel())[1:].argmax()) + 1
    fix.ids_edit.setText(str(victim))
    fix.delete()
    assert not (layer.data == victim).any()
    # 3. fine-tune on it with a tiny step count
    w = FineTuneWidget(viewer)
    w.out_parent = tmp_path
    w.image_box.value = viewer.layers["nuclei"]
    w.labels_box.value = layer
    w.form.editors["steps"].setValue(2)
    w.form.editors["region"].setCurrentText("edited")
    assert w.model_source() == "nuclei" and w.versions.count() == 0
    timer, gaps = _ticking()
    job = w.start_fine_tune()
    assert job is not None and not w.tune_button.isEnabled() and w.stop_button.isEnabled()
    qtbot.waitUntil(lambda: w.job is None, timeout=120_000)
    timer.stop()
    assert job.state == "done", w.status.text()
    assert len(gaps) > 5 and np.median(gaps) < 100  # the GUI kept ticking
    # 4. the new version is listed and the metrics are shown
    result = w.result
    assert result.model_dir == tmp_path / "nuclei-ft001" and result.steps_done == 2
    assert "AP@0.5 on held-out corrections" in w.status.text()
    assert f"{result.before_ap:.2f} -> {result.after_ap:.2f}" in w.status.text()
    listed = [w.versions.item(i).text() for i in range(w.versions.count())]
    assert listed[0].startswith(str(result.model_dir))
    if result.kept == "new":
        assert w.model_source() == str(result.model_dir) and "(active)" in listed[0]
        assert seg.model_source() == str(result.model_dir)  # the predict dock follows
    else:
        assert w.model_source() == "nuclei" and "stays active" in w.status.text()
    assert InstanceModel.load(result.model_dir).meta["fine_tune"]["kept"] == result.kept
    assert w.tune_button.isEnabled()


def test_review_list_ranks_objects_and_jumps_to_them(viewer, qtbot):
    image = load_sample("nuclei_2d")[:96, :96]
    truth = load_sample("nuclei_2d_masks")[:96, :96].astype(np.int32)
    viewer.add_image(np.stack([image, image[::-1]]), name="movie")
    labels = viewer.add_labels(np.stack([truth, truth[::-1]]), name="cells")
    w = FineTuneWidget(viewer)
    w.labels_box.value = labels
    w.review.views_box.setValue(2)
    job = w.review.start_review()
    qtbot.waitUntil(lambda: w.review.job is None, timeout=60_000)
    assert job.state == "done"
    scores = [it.score for it in w.review.items]
    n_objects = sum(len(np.unique(f)) - 1 for f in labels.data)
    assert len(scores) == n_objects == w.review.list.count()
    assert scores == sorted(scores, reverse=True)
    row = next(i for i, it in enumerate(w.review.items) if it.frame == 1)
    item = w.review.items[row]
    viewer.dims.set_point(0, 0)
    w.review.list.itemClicked.emit(w.review.list.item(row))
    assert viewer.dims.current_step[0] == 1
    assert labels.selected_label == item.label
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    assert np.allclose(camera.center[-2:], item.centroid, atol=1)


def test_versions_of_the_builtin_model_go_to_the_user_folder(viewer, tmp_path, monkeypatch):
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    (tmp_path / "nuclei-ft003").mkdir()
    w = FineTuneWidget(viewer)
    assert w.versions_parent() == (tmp_path, "nuclei")
    assert w.versions.count() == 1
    assert w.start_fine_tune() is None  # no layers yet: an error, no job
    w.versions.itemDoubleClicked.emit(w.versions.item(0))
    assert w.model_source() == str(tmp_path / "nuclei-ft003")


def test_stop_keeps_the_model_and_saves_nothing(viewer, qtbot, tmp_path):
    image = load_sample("nuclei_2d")[:96, :96]
    truth = load_sample("nuclei_2d_masks")[:96, :96].astype(np.int32)
    viewer.add_image(np.stack([image] * 4), name="movie")
    viewer.add_labels(np.stack([truth] * 4), name="fixed")
    w = FineTuneWidget(viewer)
    w.out_parent = tmp_path
    w.form.editors["steps"].setValue(5000)
    job = w.start_fine_tune()
    w.stop()
    qtbot.waitUntil(lambda: w.job is None, timeout=60_000)
    assert job.state == "cancelled" and "unchanged" in w.status.text()
    assert w.model_source() == "nuclei" and not list(tmp_path.iterdir())
