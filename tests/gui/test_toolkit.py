"""The dock toolkit: layer choosers, the job mixin, napari task status, model chooser, forms."""

import time

import napari
import numpy as np
import pytest
from qtpy.QtCore import QThreadPool
from qtpy.QtWidgets import QDialog, QWidget

from cellsight.config.instances import InstancePostConfig, InstancePredictConfig
from cellsight.config.tracking import TrackingConfig
from cellsight.core.progress import Cancelled, ProgressEvent
from cellsight.gui.toolkit import (
    ConfigForm,
    EtaProgressBar,
    JobMixin,
    ModelChooser,
    format_seconds,
    layer_chooser,
    layer_mode,
    model_ndim,
)
from cellsight.gui.workers import running_jobs


def slow_job(steps, progress, should_stop):
    """Reports ``steps`` steps of 20 ms; a stop keeps the count done so far."""
    for i in range(steps):
        if should_stop():
            raise Cancelled(partial=i)
        time.sleep(0.02)
        progress(ProgressEvent(i + 1, steps, "working"))
    return steps


class Dock(JobMixin, QWidget):
    """The smallest dock: one Run button."""

    def __init__(self, viewer):
        super().__init__()
        from qtpy.QtWidgets import QPushButton

        self.init_jobs(viewer, "idle")
        self.run_button = QPushButton("Run")
        self.busy_disables(self.run_button)
        self.results, self.partial = [], []

    def start(self, steps):
        return self.run_job(slow_job, steps, name="Slow job", status="working",
                            total=steps, on_result=self.results.append,
                            on_cancelled=self.partial.append)


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def test_layer_chooser_follows_the_layer_list_without_docking(viewer):
    chooser = layer_chooser(viewer, napari.layers.Image, "Image")
    assert chooser.value is None
    seen = []
    chooser.changed.connect(seen.append)
    first = viewer.add_image(np.zeros((8, 8)), name="first")
    assert chooser.value is first and seen == [first]
    viewer.add_labels(np.zeros((8, 8), int), name="labels")  # other kind: not offered
    viewer.add_image(np.zeros((8, 8)), name="preview", metadata={"cellsight_preview": True})
    assert [layer.name for layer in chooser.choices] == ["first"]
    second = viewer.add_image(np.zeros((3, 8, 8)), name="second")
    chooser.value = second
    first.name = "renamed"
    names = [chooser.native.itemText(i) for i in range(chooser.native.count())]
    assert chooser.current_choice == "second" and sorted(names) == ["renamed", "second"]
    viewer.layers.remove(second)
    assert chooser.value is first
    optional = layer_chooser(viewer, napari.layers.Image, optional=True)
    assert optional.value is None and optional.choices == (None, first)


def test_layer_chooser_in_a_docked_widget(viewer):
    from cellsight.gui.tracking_widget import TrackingWidget

    widget = TrackingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Track cells")
    labels = viewer.add_labels(np.zeros((2, 8, 8), int), name="seg")
    assert widget.labels_box.value is labels and widget.image_box.value is None


def test_layer_mode_uses_the_core_guess(viewer):
    movie = viewer.add_image(np.zeros((3, 8, 8)))
    rgb = viewer.add_image(np.zeros((8, 8, 3), np.uint8), rgb=True)
    assert layer_mode(movie) == "t" and layer_mode(movie, model_ndim=3) == "3d"
    assert layer_mode(rgb) == "2d"


def test_job_mixin_runs_reports_eta_and_frees_buttons(viewer, qtbot):
    dock = Dock(viewer)
    assert dock.run_button.isEnabled() and not dock.stop_button.isEnabled()
    job = dock.start(15)
    assert not dock.run_button.isEnabled() and dock.stop_button.isEnabled()
    assert dock.status.text() == "working"
    qtbot.waitUntil(lambda: dock.progress_bar.eta_text != "", timeout=5000)
    assert dock.progress_bar.eta_text.endswith("left")
    assert "left" in dock.progress_bar.format()
    qtbot.waitUntil(lambda: dock.job is None, timeout=5000)
    assert job.state == "done" and dock.results == [15]
    assert dock.run_button.isEnabled() and not dock.stop_button.isEnabled()
    assert dock.progress_bar.value() == 15 and "left" not in dock.progress_bar.format()


def test_job_mixin_stop_keeps_partial_and_failure_is_shown(viewer, qtbot, monkeypatch):
    from cellsight.gui import workers

    dock = Dock(viewer)
    job = dock.start(1000)
    qtbot.wait(100)
    dock.stop_button.click()
    qtbot.waitUntil(lambda: dock.job is None, timeout=5000)
    assert job.state == "cancelled" and dock.partial and 0 < dock.partial[0] < 1000
    shown = []
    monkeypatch.setattr(workers, "show_error", shown.append)
    job = dock.run_job(slow_job, "x", name="Broken")  # range("x"): TypeError in the worker
    qtbot.waitUntil(lambda: dock.job is None, timeout=5000)
    assert job.state == "failed" and dock.status.text().startswith("Failed:")
    assert shown and "Broken failed: TypeError" in shown[0]
    assert dock.run_button.isEnabled()


def test_running_job_is_a_napari_task_asked_about_on_close(viewer, qtbot, monkeypatch):
    import napari._qt.qt_main_window as qmw

    dock = Dock(viewer)
    job = dock.start(1000)
    manager = viewer.window._task_status_manager
    assert manager.is_busy() and any("Slow job" in s for s in manager.get_status())
    asked = []

    class Refuse:  # the confirmation dialog: the user says "no, keep napari open"
        def __init__(self, parent, close_app=False, extra_info="", display_checkbox=True):
            asked.append(extra_info)

        def exec_(self):
            return QDialog.DialogCode.Rejected

    class CloseEvent:
        ignored = False

        def spontaneous(self):
            return True

        def ignore(self):
            self.ignored = True

    monkeypatch.setattr(qmw, "ConfirmCloseDialog", Refuse)
    event = CloseEvent()
    viewer.window._qt_window.closeEvent(event)
    assert event.ignored and asked and "Slow job" in asked[0]
    assert job.is_running  # napari stays open, the job goes on
    manager.cancel_all()  # what napari does when the user confirms the close
    qtbot.waitUntil(lambda: not job.is_running, timeout=5000)
    assert job.state == "cancelled"
    assert not manager.is_busy() and manager.get_status() == []


def test_cancel_from_the_activity_dock_stops_the_job(viewer, qtbot):
    from napari.utils.progress import cancelable_progress, progress

    dock = Dock(viewer)
    job = dock.start(1000)
    pbar = job._pbar
    assert isinstance(pbar, cancelable_progress) and pbar in progress._all_instances
    qtbot.wait(100)
    pbar.cancel()  # the activity dock's Cancel button calls this
    qtbot.waitUntil(lambda: not job.is_running, timeout=5000)
    assert job.state == "cancelled" and dock.partial
    # a finished job leaves nothing running
    assert pbar not in progress._all_instances and job not in running_jobs()
    assert not viewer.window._task_status_manager.is_busy()
    pool = QThreadPool.globalInstance()
    qtbot.waitUntil(lambda: pool.activeThreadCount() == 0, timeout=2000)


def test_eta_text():
    bar = EtaProgressBar()
    bar.begin(0)
    assert bar.maximum() == 0  # unknown length: busy indicator
    bar.report(1, 10)
    bar._origin = (bar._origin[0] - 2.0, 1)  # step 1 was reached 2 s ago
    bar.report(5, 10)
    assert bar.eta_text == "0:03 left"  # 4 steps took 2 s, 5 to go
    assert format_seconds(3725) == "1:02:05"
    bar.finish(done=True)
    assert bar.value() == 5 and bar.eta_text == ""


def test_model_chooser_builtins_folders_and_pickers(qtbot, tmp_path):
    picked = []

    def picker(parent):
        return picked.pop() if picked else None

    chooser = ModelChooser(pickers={"a folder…": picker})
    qtbot.addWidget(chooser)
    assert chooser.source() == "nuclei" and chooser.itemText(chooser.count() - 1) == "a folder…"
    sources = []
    chooser.chosen.connect(sources.append)
    chooser.activated.emit(chooser.count() - 1)  # cancelled dialog: the choice is kept
    assert chooser.source() == "nuclei" and sources == []
    picked.append(str(tmp_path))
    chooser.setCurrentIndex(chooser.count() - 1)
    chooser.activated.emit(chooser.count() - 1)
    assert chooser.source() == str(tmp_path) and sources == [str(tmp_path)]
    chooser.set_source("nuclei")
    assert chooser.source() == "nuclei" and chooser.count() == 3
    assert model_ndim("nuclei") == 2 and model_ndim(str(tmp_path / "missing")) == 2
    trained = ModelChooser(builtins={}, none_text="model trained here")
    qtbot.addWidget(trained)
    # none_text + the default pickers: a folder…, a bioimage.io package (.zip)…
    assert trained.source() == "" and trained.count() == 3


def test_config_form_reads_bounds_labels_and_options(qtbot):
    options = {"mode": {"labels": {"t": "T (time series)"}}, "diameter": {"suffix": " px"}}
    predict = ConfigForm(InstancePredictConfig(), ("mode", "diameter"), options)
    mode, diameter = predict.editors["mode"], predict.editors["diameter"]
    assert mode.itemText(2) == "T (time series)" and diameter.suffix() == " px"
    assert (diameter.minimum(), diameter.maximum()) == (0.0, 2000.0)  # from Field(ge, le)
    mode.setCurrentIndex(2)
    assert predict.config().mode == "t"
    slider_option = {"seed_threshold": {"slider": True}}
    post = ConfigForm(InstancePostConfig(), ("seed_threshold",), slider_option)
    slider = post.editors["seed_threshold"]
    assert (slider.minimum(), slider.maximum()) == pytest.approx((0.01, 0.99))
    changed = []
    post.changed.connect(lambda: changed.append(1))
    post.set_values(InstancePostConfig(seed_threshold=0.3, smoothing=1.0))
    assert changed == [] and post.config().smoothing == 1.0  # the base follows set_values
    slider.setValue(0.7)
    assert changed and post.config().seed_threshold == pytest.approx(0.7)
    auto = {"max_distance": {"special": "auto"}}
    tracking = ConfigForm(TrackingConfig(), ("max_distance",), auto)
    assert tracking.editors["max_distance"].text() == "auto"
    assert "displacement" in tracking.editors["max_distance"].toolTip()
