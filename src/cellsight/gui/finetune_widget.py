"""Dock widget "Fine-tune & review": teach the model your corrections, then check the worst.

Fine-tune runs :func:`cellsight.core.curation.finetune.fine_tune` through ``start_job`` on the
chosen image and corrected Labels layer (the prediction recorded by "Correct labels"
tells which frames / regions were edited). It shows AP@0.5 on held-out corrections
before -> after, lists the model versions (``<name>-ft001`` ...) and makes the new
one active only when it is not worse. The review list (:mod:`cellsight.gui.review_panel`)
ranks objects by the active model's uncertainty.
"""

from pathlib import Path

import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cellsight.config.finetune import FineTuneConfig
from cellsight.config.instances import InstancePredictConfig
from cellsight.core.curation.finetune import fine_tune, model_versions, version_parent
from cellsight.gui.config_form import ConfigForm
from cellsight.gui.layer_utils import layers_of_type
from cellsight.gui.review_panel import ReviewPanel
from cellsight.gui.workers import start_job
from cellsight.models import BUILTIN_MODELS

FOLDER_ITEM = "Model folder…"
PREDICTION_KEY = "cellsight_prediction"  # set by the "Correct labels" dock
FORM_FIELDS = ("region", "steps", "time_limit_minutes", "holdout_fraction")


def finetune_job(image, labels, source, config, prediction, diameter, out_parent,
                 progress, should_stop):
    """Worker: fine-tune on one image's corrections."""
    return fine_tune(image, labels, source, config, predictions=prediction, diameter=diameter,
                     out_parent=out_parent, progress=progress, should_stop=should_stop)


class FineTuneWidget(QWidget):
    """Fine-tune the segmentation model on corrected labels; review uncertain objects."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.job = None
        self.result = None
        self.out_parent: Path | None = None  # None: next to the model (or the user folder)
        self._build()
        self.viewer.layers.events.inserted.connect(self._sync_layers)
        self.viewer.layers.events.removed.connect(self._sync_layers)
        self._sync_layers()
        self._list_versions()

    # --- layout -----------------------------------------------------------------
    def _build(self) -> None:
        self.model_box = QComboBox()
        self.model_box.addItems([f"{n} (built-in)" for n in BUILTIN_MODELS] + [FOLDER_ITEM])
        self.model_box.activated.connect(self._model_chosen)
        self.image_box, self.labels_box = QComboBox(), QComboBox()
        self.diameter_box = QDoubleSpinBox()
        self.diameter_box.setRange(0.0, 2000.0)
        self.diameter_box.setSuffix(" px")
        self.diameter_box.setToolTip("Nucleus diameter used when predicting (0 = the model's "
                                     "own scale); fine-tuning runs at the same scale.")
        form = QFormLayout()
        form.addRow("Model (active)", self.model_box)
        form.addRow("Image", self.image_box)
        form.addRow("Corrected labels", self.labels_box)
        form.addRow("Nucleus diameter", self.diameter_box)
        self.form = ConfigForm(FineTuneConfig(), FORM_FIELDS)
        self.tune_button, self.stop_button = QPushButton("Fine-tune"), QPushButton("Stop")
        self.tune_button.clicked.connect(self.start_fine_tune)
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.tune_button)
        row.addWidget(self.stop_button)
        self.progress_bar = QProgressBar()
        self.status = QLabel("Correct some objects, then Fine-tune.")
        self.status.setWordWrap(True)
        self.versions = QListWidget()
        self.versions.setToolTip("Fine-tuned versions; double-click one to make it active.")
        self.versions.itemDoubleClicked.connect(self._version_chosen)
        self.review = ReviewPanel(self.viewer, self.review_inputs)
        layout = QVBoxLayout(self)
        for part in (form, self.form, row):
            layout.addLayout(part)
        for part in (self.progress_bar, self.status, QLabel("Model versions"), self.versions,
                     QLabel("Review: uncertain objects first"), self.review):
            layout.addWidget(part)

    def _sync_layers(self, event=None) -> None:
        for box, kind in ((self.image_box, "Image"), (self.labels_box, "Labels")):
            current = box.currentText()
            names = [lay.name for lay in layers_of_type(self.viewer, kind)
                     if not lay.metadata.get("cellsight_overlay")]
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            if current in names:
                box.setCurrentText(current)
            box.blockSignals(False)

    def _layer(self, box):
        name = box.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    # --- model and versions ----------------------------------------------------
    def model_source(self) -> str:
        """Built-in name or folder of the active model."""
        text = self.model_box.currentText()
        if text == FOLDER_ITEM:
            return ""
        return text.removesuffix(" (built-in)")

    def set_model_folder(self, folder) -> None:
        """Make the model in ``folder`` the active one."""
        folder = str(folder)
        if self.model_box.findText(folder) < 0:
            self.model_box.insertItem(self.model_box.count() - 1, folder)
        self.model_box.setCurrentText(folder)
        self._list_versions()

    def _model_chosen(self, *args) -> None:
        if self.model_box.currentText() == FOLDER_ITEM:
            folder = QFileDialog.getExistingDirectory(self, "Instance model folder")
            if folder:
                self.set_model_folder(folder)
        self._list_versions()

    def versions_parent(self) -> tuple[Path, str]:
        """(folder that receives new versions, model name)."""
        parent, name = version_parent(self.model_source() or "nuclei")
        return (self.out_parent or parent), name

    def _list_versions(self) -> None:
        parent, name = self.versions_parent()
        active = self.model_source()
        self.versions.clear()
        for folder in model_versions(parent, name):
            mark = "  (active)" if str(folder) == active else ""
            self.versions.addItem(f"{folder}{mark}")

    def _version_chosen(self, item) -> None:
        self.set_model_folder(item.text().replace("  (active)", ""))

    # --- jobs ----------------------------------------------------------------------
    def _read_inputs(self):
        image_layer, labels_layer = self._layer(self.image_box), self._layer(self.labels_box)
        if image_layer is None or labels_layer is None or not self.model_source():
            raise ValueError("choose a model, an Image layer and a Labels layer first.")
        image = np.asarray(image_layer.data)
        if getattr(image_layer, "rgb", False):
            image = image[..., :3].mean(axis=-1)
        return image, labels_layer

    def start_fine_tune(self):
        """Read the layers (main thread) and fine-tune in a worker thread."""
        try:
            image, layer = self._read_inputs()
            config = self.form.config()
        except ValueError as exc:
            show_error(f"Fine-tune: {exc}")
            return None
        prediction = layer.metadata.get(PREDICTION_KEY)
        if prediction is not None and np.shape(prediction) != layer.data.shape:
            prediction = None
        parent, _ = self.versions_parent()
        self._set_running(True)
        self.status.setText("Fine-tuning …")
        self.job = start_job(
            finetune_job, image, np.asarray(layer.data).copy(), self.model_source(), config,
            prediction, self.diameter_box.value(), parent,
            name="Fine-tune", total=config.steps, on_progress=self._on_progress,
            on_result=self._tuned, on_error=lambda exc: self.status.setText(f"Failed: {exc}"),
            on_cancelled=lambda _: self.status.setText("Stopped; the model is unchanged."),
            on_finished=lambda: self._set_running(False),
        )
        return self.job

    def stop(self) -> None:
        """Ask the running fine-tuning to stop (nothing is saved then)."""
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Stopping …")

    def review_inputs(self):
        """(model source, image layer, labels layer, predict config) for the review list."""
        self._read_inputs()
        image_layer, labels_layer = self._layer(self.image_box), self._layer(self.labels_box)
        if labels_layer.data.shape != image_layer.data.shape:
            raise ValueError("the Labels layer and the image differ in shape.")
        spatial = 3 if labels_layer.ndim >= 3 and self._model_is_3d() else 2
        mode = "t" if labels_layer.ndim > spatial else f"{spatial}d"
        return self.model_source(), image_layer, labels_layer, InstancePredictConfig(
            mode=mode, diameter=self.diameter_box.value())

    def _model_is_3d(self) -> bool:
        from cellsight.io.model_folder import read_config
        from cellsight.models import resolve_model

        return read_config(resolve_model(self.model_source()))["unet"]["ndim"] == 3

    # --- callbacks (main thread) --------------------------------------------------------
    def _on_progress(self, event) -> None:
        if event.total:
            self.progress_bar.setRange(0, event.total)
            self.progress_bar.setValue(min(event.step, event.total))
        if event.message and event.message != "training":
            self.status.setText(event.message[0].upper() + event.message[1:] + " …")
        elif "loss" in event.values:
            self.status.setText(f"Fine-tuning: step {event.step} of {event.total}, "
                                f"loss {event.values['loss']:.3f}")

    def _tuned(self, result) -> None:
        self.result = result
        self.status.setText(f"{result.message}. Held out: {result.held_out}.")
        if result.kept == "new" and result.model_dir is not None:
            self.set_model_folder(result.model_dir)
            self._tell_instance_widget(result.model_dir)
        self._list_versions()

    def _tell_instance_widget(self, folder) -> None:
        """Make an open "Instance segmentation" dock use the new model too."""
        from cellsight.gui.instance_widget import InstanceWidget

        docks = getattr(self.viewer.window, "dock_widgets", {}) or {}
        for widget in list(docks.values()):
            if isinstance(widget, InstanceWidget):
                widget.set_model_folder(folder)

    def _set_running(self, running: bool) -> None:
        if not running:
            self.job = None
        self.tune_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
