"""Dock widget "Semantic segmentation": paint a few strokes per class, train, predict.

Train runs :func:`cellsight.core.segmentation.semantic.train_semantic` and Predict runs
:func:`cellsight.core.segmentation.semantic.predict_semantic`, both through ``start_job``; the
loss curve and progress bar follow the job's progress events, Stop keeps the model
trained so far, and results go to NEW layers (argmax labels + probability maps).
"""

import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cellsight.config.semantic import SemanticConfig
from cellsight.core.progress import Cancelled
from cellsight.core.segmentation.semantic import SemanticModel, predict_semantic, train_semantic
from cellsight.gui.config_form import ConfigForm
from cellsight.gui.layer_utils import layers_of_type
from cellsight.gui.loss_plot import LossPlot
from cellsight.gui.model_files import ModelFilesMixin
from cellsight.gui.workers import start_job

NETWORK_FIELDS = ("ndim", "depth", "base_channels", "norm", "upsampling")
TRAINING_FIELDS = (
    "steps",
    "batch_size",
    "patch_size",
    "patch_size_z",
    "learning_rate",
    "val_fraction",
    "val_every",
    "patience",
    "flips",
    "rotate90",
    "intensity",
    "zoom",
    "elastic",
    "hard_mining",
    "weight_averaging",
    "mixed_precision",
)


def train_job(image, labels, config, init, progress, should_stop):
    """The training job (worker thread): a stop hands the model so far to ``on_cancelled``."""
    model = train_semantic(
        image, labels, config, init=init, progress=progress, should_stop=should_stop
    )
    if should_stop():
        raise Cancelled("Training stopped; the model trained so far is kept.", partial=model)
    return model


def layer_array(layer) -> np.ndarray:
    """A layer's data as one numpy array (RGB averaged to grey)."""
    data = np.asarray(layer.data)
    if getattr(layer, "rgb", False):
        data = data[..., :3].mean(axis=-1)
    return data


class SemanticWidget(ModelFilesMixin, QWidget):
    """Train a U-Net on painted labels and segment images of any size."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.job = None
        self.model: SemanticModel | None = None
        defaults = SemanticConfig()
        self.data_form = ConfigForm(defaults, ("scale", "soft_targets"))
        self.network_form = ConfigForm(defaults.unet, NETWORK_FIELDS)
        self.training_form = ConfigForm(defaults.training, TRAINING_FIELDS)
        self._build(defaults)
        self.viewer.layers.events.inserted.connect(self._sync_layers)
        self.viewer.layers.events.removed.connect(self._sync_layers)
        self._sync_layers()

    # --- layout -----------------------------------------------------------------
    def _build(self, defaults: SemanticConfig) -> None:
        self.image_box, self.labels_box = QComboBox(), QComboBox()
        self.image_box.currentTextChanged.connect(self._guess_frames)
        self.frames_check = QCheckBox("Frame by frame (time series / stack)")
        self.frames_check.setToolTip("The first axis is time: a 2D model segments each frame.")
        title, tip = SemanticConfig.field_help("zero_is_background")
        self.background_check = QCheckBox(title)
        self.background_check.setToolTip(tip)
        self.device_box = QComboBox()
        self.device_box.addItems(["auto", "cpu", "cuda", "mps"])
        self.device_box.setToolTip(type(defaults.training).field_help("device")[1])
        data = QFormLayout()
        data.addRow("Image", self.image_box)
        data.addRow("Labels (strokes)", self.labels_box)
        data.addRow("", self.frames_check)
        data.addRow("", self.background_check)
        self.continue_check = QCheckBox("Start from the current model")
        self.continue_check.setToolTip(
            "Fine-tune the trained or loaded model with the new strokes instead of "
            "training a new one (its network settings are kept)."
        )
        data.addRow("", self.continue_check)
        self.tta_check = QCheckBox("Test-time augmentation (predict 8x slower)")
        self.tta_check.setToolTip(
            "Average the prediction over the 8 flips / 90° rotations of the image: "
            "smoother, usually slightly more accurate outlines."
        )
        data.addRow("", self.tta_check)
        data.addRow("Device", self.device_box)
        layout = QVBoxLayout(self)
        layout.addLayout(data)
        layout.addLayout(self.data_form)
        layout.addWidget(self._group("Network", self.network_form))
        layout.addWidget(self._group("Training", self.training_form))
        layout.addLayout(self._buttons())
        self.progress_bar = QProgressBar()
        self.status = QLabel("Paint a few strokes per class (1, 2, ...) on a Labels layer.")
        self.status.setWordWrap(True)
        self.plot = LossPlot()
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addWidget(self.plot)
        layout.addStretch(1)

    @staticmethod
    def _group(title: str, form: QFormLayout) -> QGroupBox:
        box = QGroupBox(title)
        box.setLayout(form)
        return box

    def _buttons(self) -> QGridLayout:
        grid = QGridLayout()
        self.train_button = QPushButton("Train")
        self.predict_button = QPushButton("Predict")
        self.stop_button = QPushButton("Stop")
        self.save_button = QPushButton("Save model…")
        self.load_button = QPushButton("Load model…")
        slots = (
            (self.train_button, self.start_training),
            (self.predict_button, self.start_predict),
            (self.stop_button, self.stop),
            (self.save_button, self._ask_save),
            (self.load_button, self._ask_load),
        )
        for k, (button, slot) in enumerate(slots):
            button.clicked.connect(slot)
            grid.addWidget(button, k // 3, k % 3)
        self._set_running(False)
        return grid

    def _sync_layers(self, event=None) -> None:
        for box, kind in ((self.image_box, "Image"), (self.labels_box, "Labels")):
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems([layer.name for layer in layers_of_type(self.viewer, kind)])
            if current:
                box.setCurrentText(current)
            box.blockSignals(False)
        self._guess_frames()

    def _guess_frames(self, *args) -> None:
        layer = self._layer(self.image_box)
        if layer is None:
            return
        ndim = layer.ndim - (1 if getattr(layer, "rgb", False) else 0)
        model_ndim = (
            self.model.config.unet.ndim if self.model else self.network_form.values()["ndim"]
        )
        self.frames_check.setChecked(ndim == model_ndim + 1)

    def _layer(self, box: QComboBox):
        name = box.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def _set_running(self, running: bool) -> None:
        for button in (self.train_button, self.predict_button, self.load_button):
            button.setEnabled(not running)
        self.save_button.setEnabled(not running and self.model is not None)
        self.continue_check.setEnabled(self.model is not None)
        if self.model is None:
            self.continue_check.setChecked(False)
        self.predict_button.setEnabled(not running and self.model is not None)
        self.stop_button.setEnabled(running)

    # --- configuration ------------------------------------------------------------
    def config(self) -> SemanticConfig:
        """The parameters currently set in the widget."""
        return SemanticConfig(
            zero_is_background=self.background_check.isChecked(),
            **self.data_form.values(),
            unet=self.network_form.config(),
            training=self.training_form.config(device=self.device_box.currentText()),
        )

    # --- jobs -------------------------------------------------------------------------
    def start_training(self):
        """Read image and labels (main thread) and train in a worker thread."""
        image_layer, labels_layer = self._layer(self.image_box), self._layer(self.labels_box)
        if image_layer is None or labels_layer is None:
            show_error("Choose an Image layer and a Labels layer with a few strokes per class.")
            return None
        image, labels = layer_array(image_layer), np.asarray(labels_layer.data).copy()
        if image.shape != labels.shape:
            show_error(f"Image {image.shape} and labels {labels.shape} differ in shape.")
            return None
        try:
            config = self.config()
        except ValueError as exc:
            show_error(f"Invalid parameters: {exc}")
            return None
        self.plot.clear()
        self.progress_bar.setRange(0, config.training.steps)
        self.progress_bar.setValue(0)
        self.status.setText("Training …")
        self._set_running(True)
        self.job = start_job(
            train_job,
            image,
            labels,
            config,
            self.model if self.continue_check.isChecked() else None,
            name="Semantic training",
            on_progress=self._on_progress,
            on_result=self._trained,
            on_cancelled=self._trained,
            on_error=self._failed,
            on_finished=self._finished,
            total=config.training.steps,
        )
        return self.job

    def start_predict(self):
        """Segment the chosen image with the current model in a worker thread."""
        layer = self._layer(self.image_box)
        if layer is None or self.model is None:
            show_error("Train or load a model and choose an Image layer first.")
            return None
        image = layer_array(layer)
        self._target = layer
        self.progress_bar.setRange(0, 100)
        self.status.setText("Predicting …")
        self._set_running(True)
        self.job = start_job(
            predict_semantic,
            self.model,
            image,
            is_timeseries=self.frames_check.isChecked(),
            device=self.device_box.currentText(),
            tta=self.tta_check.isChecked(),
            name="Semantic prediction",
            on_progress=self._on_progress,
            on_result=self._show_prediction,
            on_cancelled=self._show_partial,
            on_error=self._failed,
            on_finished=self._finished,
        )
        return self.job

    def stop(self) -> None:
        """Ask the running job to stop (training keeps the model trained so far)."""
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Stopping …")

    # --- callbacks (main thread) --------------------------------------------------
    def _on_progress(self, event) -> None:
        if event.total:
            self.progress_bar.setRange(0, event.total)
            self.progress_bar.setValue(min(event.step, event.total))
        if event.values:
            self.plot.add(event.step, event.values)

    def _trained(self, model) -> None:
        if model is None:
            return
        self.model = model
        if self.job is None:  # the job's end may be handled before its result
            self._set_running(False)
        m = model.meta.get("metrics", {})
        self.status.setText(
            f"Model ready: {model.config.n_classes} classes, {m.get('steps_done', 0)} steps "
            f"({m.get('stop_reason', '')}), best at step {m.get('best_step', 0)}."
        )

    def _show_prediction(self, result) -> None:
        layer = self._target
        name = layer.name if layer is not None else "image"
        scale = getattr(layer, "scale", None)
        spatial = scale[-result.labels.ndim :] if scale is not None else None
        meta = {"cellsight_owned": True}
        self.viewer.add_labels(result.labels, name=f"{name} semantic", scale=spatial, metadata=meta)
        axis = result.probabilities.ndim - self.model.config.unet.ndim - 1  # the class axis
        first = self.model.config.class_offset
        names = [f"{name} P(class {first + k})" for k in range(self.model.config.n_classes)]
        self.viewer.add_image(
            result.probabilities,
            channel_axis=axis,
            name=names,
            scale=spatial,
            visible=False,
            metadata=meta,
        )
        self.status.setText(f"Segmented {name!r}: labels and probabilities added as new layers.")

    def _show_partial(self, partial) -> None:
        if partial is not None:  # the frames finished before the stop
            self._show_prediction(partial)

    # --- model files ---------------------------------------------------------------
    def load_model(self, folder) -> None:
        """Load a semantic model folder and make it the current model."""
        self.model = SemanticModel.load(folder)
        self._trained(self.model)
        self._set_running(False)
        self._guess_frames()
