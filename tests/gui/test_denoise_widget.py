import numpy as np
import pytest
from qtpy.QtCore import QElapsedTimer, QTimer

from cellsight.gui.denoise_widget import DenoiseWidget
from cellsight.gui.toolkit import layer_axes_choices as axes_choices


@pytest.fixture
def setup(make_napari_viewer):
    viewer = make_napari_viewer()
    noisy = np.random.default_rng(0).poisson(30, size=(64, 64)).astype(np.uint16)
    viewer.add_image(noisy, name="noisy", contrast_limits=(10, 50))
    widget = DenoiseWidget(viewer)
    widget.form.editors["patch_size"].setValue(16)
    widget.form.editors["batch_size"].setValue(2)
    widget.device_box.setCurrentText("cpu")
    return viewer, widget


def _ticking():
    gaps, clock, timer = [], QElapsedTimer(), QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: gaps.append(clock.restart()))
    clock.start()
    timer.start()
    return timer, gaps


def test_train_and_denoise_with_live_preview(setup, qtbot):
    viewer, widget = setup
    assert widget.image_box.current_choice == "noisy" and widget.axes_box.currentText() == "YX"
    assert not widget.apply_button.isEnabled()  # no model yet
    widget.form.editors["steps"].setValue(80)
    previews = []
    show = widget._show_preview
    widget._show_preview = lambda crop: (previews.append(crop.step), show(crop))
    timer, gaps = _ticking()
    job = widget.start()
    assert job is not None and widget.stop_button.isEnabled()
    qtbot.waitUntil(lambda: widget.job is None and "noisy denoised" in viewer.layers,
                    timeout=60_000)
    timer.stop()
    assert job.state == "done", widget.status.text()
    assert len(gaps) > 10 and np.median(gaps) < 100  # the event loop kept running
    assert previews == [25, 50, 75, 80]  # the preview updated while training
    preview = viewer.layers["noisy N2V preview"]
    assert preview.metadata["cellsight_preview"] and preview.data.shape == (64, 64)
    result = viewer.layers["noisy denoised"]
    assert result.data.shape == (64, 64) and result.data.dtype == np.float32
    assert tuple(result.contrast_limits) == (10, 50)  # matches the source layer
    assert viewer.layers["noisy"].data.dtype == np.uint16  # the user's layer is untouched
    assert widget.plot.losses and widget.plot.val_losses
    assert widget.model.meta["steps_done"] == 80 and widget.apply_button.isEnabled()


def test_stop_keeps_the_model_then_save_load_apply(setup, qtbot, tmp_path):
    viewer, widget = setup
    widget.form.editors["steps"].setValue(100_000)
    job = widget.start()
    qtbot.waitUntil(lambda: len(widget.plot.losses) >= 3, timeout=60_000)
    widget.stop_button.click()
    qtbot.waitUntil(lambda: widget.job is None and widget.model is not None, timeout=30_000)
    assert job.state == "cancelled"
    assert widget.model is not None and 0 < widget.model.meta["steps_done"] < 100_000
    assert "noisy denoised" not in viewer.layers
    assert widget.apply_button.isEnabled() and widget.save_button.isEnabled()

    widget.save_model(tmp_path / "model")
    widget.model = None
    widget.load_model(tmp_path / "model")
    assert widget.model is not None and widget.apply_button.isEnabled()
    viewer.add_image(np.random.default_rng(1).normal(30, 5, (40, 48)), name="other")
    widget.image_box.value = viewer.layers["other"]
    widget.apply_button.click()
    assert widget.job is not None
    qtbot.waitUntil(lambda: "other denoised" in viewer.layers, timeout=30_000)
    assert viewer.layers["other denoised"].data.shape == (40, 48)


def test_axes_choices_follow_the_layer(make_napari_viewer):
    viewer = make_napari_viewer()
    stack = viewer.add_image(np.zeros((3, 16, 16)), name="stack")
    assert axes_choices(stack)[0] == "TYX" and "ZYX" in axes_choices(stack)
    stack.metadata["axes"] = "ZYX"
    assert axes_choices(stack)[0] == "ZYX"
    rgb = viewer.add_image(np.zeros((16, 16, 3), np.uint8), name="rgb", rgb=True)
    assert axes_choices(rgb) == ("YXC",)


def _files(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _stop_after_some_steps(widget, qtbot):
    widget.form.editors["steps"].setValue(100_000)
    widget.plot.clear()
    job = widget.start()
    qtbot.waitUntil(lambda: len(widget.plot.losses) >= 2, timeout=60_000)
    widget.stop_button.click()
    qtbot.waitUntil(lambda: widget.job is None, timeout=30_000)
    assert job.state == "cancelled"


def test_stop_never_replaces_the_current_model(setup, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("CELLSIGHT_MODELS_DIR", str(tmp_path / "user"))
    viewer, widget = setup
    widget.form.editors["steps"].setValue(30)
    widget.start()
    qtbot.waitUntil(lambda: widget.job is None and "noisy denoised" in viewer.layers,
                    timeout=60_000)
    good = widget.model
    assert good.meta["steps_done"] == 30

    # a model trained here: a stopped second run leaves it active
    _stop_after_some_steps(widget, qtbot)
    assert widget.model is good and "stays active" in widget.status.text()
    (aside,) = (tmp_path / "user").iterdir()
    assert aside.name == "n2v-stopped-001" and (aside / "weights.pt").exists()
    assert widget.model_box.findText(str(aside)) >= 0  # offered, not chosen
    assert widget.model_box.source() == ""

    # a model loaded from a folder: it stays active and its files are untouched
    widget.save_model(tmp_path / "good")
    widget.load_model(tmp_path / "good")
    before = _files(tmp_path / "good")
    _stop_after_some_steps(widget, qtbot)
    assert widget.model.meta["steps_done"] == 30
    assert widget.model_box.source() == str(tmp_path / "good")
    assert _files(tmp_path / "good") == before
    stopped = tmp_path / "good-stopped-001"
    assert str(stopped) in widget.status.text()
    from cellsight.core.denoise import N2VModel

    assert 0 < N2VModel.load(stopped).meta["steps_done"] < 100_000
