"""Dock widget "Instance segmentation": separated nuclei from a model, tuned live.

Predict runs the model once
(:func:`cellsight.core.segmentation.instance_model.predict_instance_maps`) and keeps the
foreground and boundary maps; the seed / mask threshold sliders and the minimum size then
re-run only the watershed
(:func:`cellsight.core.segmentation.instance_model.instances_from_maps`), both through
``start_job``. The result goes to a NEW Labels layer, which later threshold changes update
(it is the plugin's own layer; a user's layers are never touched).
"""

import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from cellsight.config.instances import InstancePostConfig, InstancePredictConfig
from cellsight.core.segmentation.instance_model import (
    InstanceModel,
    instances_from_maps,
    predict_instance_maps,
)
from cellsight.gui.layer_utils import layers_of_type, owned_layer
from cellsight.gui.workers import start_job
from cellsight.models import BUILTIN_MODELS

FOLDER_ITEM = "Model folder…"
MODES = {"2D (Y, X)": "2d", "3D (Z, Y, X)": "3d", "T (time series)": "t"}
#: ms to wait after the last slider move before re-running the watershed
DEBOUNCE_MS = 60


def load_model(source: str) -> InstanceModel:
    """Load a built-in model by name or a model folder (worker thread)."""
    return InstanceModel.load(source)


def predict_job(model, source, image, config, progress, should_stop):
    """Worker: load the model if needed, then predict the maps."""
    model = model if model is not None else load_model(source)
    maps = predict_instance_maps(model, image, config, progress, should_stop)
    return model, maps


def watershed_job(maps, post, progress, should_stop):
    """Worker: the seeded watershed on kept maps (frame by frame for time series)."""
    return instances_from_maps(maps, post, progress, should_stop)


def _slider(value: float) -> QLabeledDoubleSlider:
    slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
    slider.setRange(0.05, 0.95)
    slider.setSingleStep(0.01)
    slider.setValue(value)
    return slider


class InstanceWidget(QWidget):
    """Segment separated nuclei with the built-in model or a model folder."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.job = None  # the prediction job
        self.ws_job = None  # the watershed job
        self._ws_pending = False
        self.model: InstanceModel | None = None
        self._model_source: str | None = None  # chosen folder
        self._loaded_from: str | None = None  # source of self.model
        self._requested: str | None = None  # source of the running prediction
        self.maps = None
        self._target = None
        self._result_name: str | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.rerun_watershed)
        self._build()
        self.viewer.layers.events.inserted.connect(self._sync_layers)
        self.viewer.layers.events.removed.connect(self._sync_layers)
        self._sync_layers()

    # --- layout ---------------------------------------------------------------
    def _build(self) -> None:
        self.model_box = QComboBox()
        self.model_box.addItems([f"{name} (built-in)" for name in BUILTIN_MODELS] + [FOLDER_ITEM])
        self.model_box.setToolTip("\n".join(f"{k}: {v}" for k, v in BUILTIN_MODELS.items()))
        self.model_box.activated.connect(self._model_chosen)
        self.image_box = QComboBox()
        self.image_box.currentTextChanged.connect(self._guess_mode)
        self.mode_box = QComboBox()
        self.mode_box.addItems(list(MODES))
        self.mode_box.setToolTip(InstancePredictConfig.field_help("mode")[1])
        self.diameter_box = QDoubleSpinBox()
        self.diameter_box.setRange(0.0, 2000.0)
        self.diameter_box.setSuffix(" px")
        self.diameter_box.setToolTip(InstancePredictConfig.field_help("diameter")[1])
        self.estimate_check = QCheckBox("Estimate diameter")
        self.estimate_check.setToolTip(InstancePredictConfig.field_help("estimate_diameter")[1])
        title, tip = InstancePredictConfig.field_help("test_time_augmentation")
        self.tta_check = QCheckBox(title)
        self.tta_check.setToolTip(tip)
        self.device_box = QComboBox()
        self.device_box.addItems(["auto", "cpu", "cuda", "mps"])
        form = QFormLayout()
        form.addRow("Model", self.model_box)
        form.addRow("Image", self.image_box)
        form.addRow("Predict", self.mode_box)
        diameter = QHBoxLayout()
        diameter.addWidget(self.diameter_box)
        diameter.addWidget(self.estimate_check)
        form.addRow("Nucleus diameter", diameter)
        form.addRow("", self.tta_check)
        form.addRow("Device", self.device_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(self._buttons())
        layout.addLayout(self._post_form())
        self.progress_bar = QProgressBar()
        self.status = QLabel("Pick a model and an image, then Predict.")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.predict_button = QPushButton("Predict")
        self.stop_button = QPushButton("Stop")
        self.predict_button.clicked.connect(self.start_predict)
        self.stop_button.clicked.connect(self.stop)
        row.addWidget(self.predict_button)
        row.addWidget(self.stop_button)
        self.stop_button.setEnabled(False)
        return row

    def _post_form(self) -> QFormLayout:
        defaults = InstancePostConfig()
        self.seed_slider = _slider(defaults.seed_threshold)
        self.mask_slider = _slider(defaults.mask_threshold)
        self.min_size_box = QSpinBox()
        self.min_size_box.setRange(0, 10_000_000)
        self.min_size_box.setValue(defaults.min_size)
        form = QFormLayout()
        for name, editor in (
            ("seed_threshold", self.seed_slider),
            ("mask_threshold", self.mask_slider),
            ("min_size", self.min_size_box),
        ):
            title, tip = InstancePostConfig.field_help(name)
            editor.setToolTip(tip)
            form.addRow(title, editor)
        self.seed_slider.valueChanged.connect(self._post_changed)
        self.mask_slider.valueChanged.connect(self._post_changed)
        self.min_size_box.valueChanged.connect(self._post_changed)
        return form

    def _sync_layers(self, event=None) -> None:
        current = self.image_box.currentText()
        self.image_box.blockSignals(True)
        self.image_box.clear()
        self.image_box.addItems([layer.name for layer in layers_of_type(self.viewer, "Image")])
        if current:
            self.image_box.setCurrentText(current)
        self.image_box.blockSignals(False)
        self._guess_mode()

    def _guess_mode(self, *args) -> None:
        layer = self._image_layer()
        if layer is None:
            return
        ndim = layer.ndim - (1 if getattr(layer, "rgb", False) else 0)
        mode = {2: "2D (Y, X)", 3: "T (time series)", 4: "T (time series)"}.get(ndim)
        if mode:
            self.mode_box.setCurrentText(mode)

    def _image_layer(self):
        name = self.image_box.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    # --- model choice ------------------------------------------------------------
    def model_source(self) -> str:
        """Built-in name or folder of the chosen model."""
        text = self.model_box.currentText()
        if text == FOLDER_ITEM:
            return self._model_source or ""
        return text.split(" ")[0]

    def set_model_folder(self, folder) -> None:
        """Use the instance model in ``folder`` (loaded at the next Predict)."""
        folder = str(folder)
        if self.model_box.findText(folder) < 0:
            self.model_box.insertItem(self.model_box.count() - 1, folder)
        self.model_box.setCurrentText(folder)
        self._model_source = folder

    def _model_chosen(self, *args) -> None:
        if self.model_box.currentText() == FOLDER_ITEM:
            folder = QFileDialog.getExistingDirectory(self, "Instance model folder")
            if folder:
                self.set_model_folder(folder)

    # --- configuration -------------------------------------------------------------
    def predict_config(self) -> InstancePredictConfig:
        """Prediction parameters currently set."""
        return InstancePredictConfig(
            mode=MODES[self.mode_box.currentText()],
            diameter=self.diameter_box.value(),
            estimate_diameter=self.estimate_check.isChecked(),
            test_time_augmentation=self.tta_check.isChecked(),
            device=self.device_box.currentText(),
        )

    def post_config(self) -> InstancePostConfig:
        """Watershed parameters currently set."""
        return InstancePostConfig(
            seed_threshold=round(self.seed_slider.value(), 3),
            mask_threshold=round(self.mask_slider.value(), 3),
            min_size=self.min_size_box.value(),
        )

    def _show_post(self, post: InstancePostConfig) -> None:
        for editor, value in (
            (self.seed_slider, post.seed_threshold),
            (self.mask_slider, post.mask_threshold),
            (self.min_size_box, post.min_size),
        ):
            editor.blockSignals(True)
            editor.setValue(value)
            editor.blockSignals(False)

    # --- jobs ------------------------------------------------------------------------
    def start_predict(self):
        """Read the image (main thread) and predict its maps in a worker thread."""
        layer = self._image_layer()
        source = self.model_source()
        if layer is None or not source:
            show_error("Choose a model and an Image layer first.")
            return None
        data = np.asarray(layer.data)
        if getattr(layer, "rgb", False):
            data = data[..., :3].mean(axis=-1)
        try:
            config = self.predict_config()
        except ValueError as exc:
            show_error(f"Invalid parameters: {exc}")
            return None
        model = self.model if source == self._loaded_from else None
        self._target = layer
        self._requested = source
        self.progress_bar.setRange(0, 0)
        self.status.setText("Predicting …")
        self._set_running(True)
        self.job = start_job(
            predict_job, model, source, data, config,
            name="Instance prediction",
            on_progress=self._on_progress,
            on_result=self._predicted,
            on_error=self._failed,
            on_finished=self._predict_finished,
        )
        return self.job

    def stop(self) -> None:
        """Ask the running prediction to stop."""
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Stopping …")

    def rerun_watershed(self):
        """Re-run only the watershed on the kept maps with the current thresholds."""
        if self.maps is None:
            return None
        if self.ws_job is not None:  # one at a time; the latest values run next
            self._ws_pending = True
            return None
        self._ws_pending = False
        self.ws_job = start_job(
            watershed_job, self.maps, self.post_config(),
            name="Watershed",
            on_result=self._show_labels,
            on_error=self._failed,
            on_finished=self._ws_finished,
        )
        return self.ws_job

    # --- callbacks (main thread) ------------------------------------------------------
    def _post_changed(self, *args) -> None:
        if self.maps is not None:
            self._debounce.start()

    def _on_progress(self, event) -> None:
        if event.total:
            self.progress_bar.setRange(0, event.total)
            self.progress_bar.setValue(min(event.step, event.total))

    def _predicted(self, result) -> None:
        model, maps = result
        if model is not self.model:
            self.model, self._loaded_from = model, self._requested
            self._show_post(model.config.postprocessing)
        self.maps = maps
        layer = self._target
        self._result_name = f"{layer.name if layer is not None else 'image'} instances"
        self.status.setText("Separating nuclei …")
        self.rerun_watershed()

    def _show_labels(self, labels) -> None:
        layer = owned_layer(self.viewer, self._result_name or "")
        if layer is not None and layer.data.shape == labels.shape:
            layer.data = labels
        else:
            scale = getattr(self._target, "scale", None)
            spatial = scale[-labels.ndim :] if scale is not None else None
            layer = self.viewer.add_labels(
                labels, name=self._result_name, scale=spatial, metadata={"cellsight_owned": True}
            )
            self._result_name = layer.name
        post = self.post_config()
        frames = labels if self.maps.has_time else labels[None]
        count = sum(int(f.max()) for f in frames)
        where = f" in {len(frames)} frames" if self.maps.has_time else ""
        self.status.setText(
            f"{count} objects{where} (seed {post.seed_threshold:.2f}, mask "
            f"{post.mask_threshold:.2f}, min size {post.min_size}); move the sliders to refine."
        )

    def _failed(self, exc) -> None:
        self.status.setText(f"Failed: {exc}")

    def _predict_finished(self) -> None:
        self.job = None
        self._set_running(False)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1)

    def _ws_finished(self) -> None:
        self.ws_job = None
        if self._ws_pending:
            self.rerun_watershed()

    def _set_running(self, running: bool) -> None:
        self.predict_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
