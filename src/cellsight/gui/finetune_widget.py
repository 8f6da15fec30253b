"""Dock widget "Fine-tune & review": teach the model your corrections, then check the worst.

Fine-tune runs :func:`cellsight.core.curation.finetune.fine_tune` through ``start_job`` on the
chosen image and corrected Labels layer (the prediction recorded by "Correct labels"
tells which frames / regions were edited). It shows AP@0.5 on held-out corrections
before -> after, lists the model versions (``<name>-ft001`` ...) and makes the new
one active only when it is not worse. The review list (:mod:`cellsight.gui.review_panel`)
ranks objects by the active model's uncertainty.
"""

from pathlib import Path

import napari
import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QLabel, QListWidget, QWidget

from cellsight.config.finetune import FineTuneConfig
from cellsight.config.instances import InstancePredictConfig
from cellsight.core.curation.finetune import (
    base_name,
    fine_tune,
    model_versions,
    version_parent,
)
from cellsight.gui.review_panel import ReviewPanel
from cellsight.gui.toolkit.models import foreign_package, load_package_asking, start_export
from cellsight.gui.workers import warm_up_training
from cellsight.gui.toolkit import (
    ConfigForm,
    JobMixin,
    ModelChooser,
    advanced,
    button_grid,
    corrected_labels,
    form,
    layer_array,
    layer_chooser,
    layer_mode,
    model_ndim,
    scroll_layout,
    user_layer,
)

PREDICTION_KEY = "cellsight_prediction"  # set by the "Correct labels" dock
FORM_FIELDS = ("region", "steps", "time_limit_minutes", "holdout_fraction")


def finetune_job(image, labels, source, config, prediction, diameter, out_parent,
                 progress, should_stop):
    """Worker: fine-tune on one image's corrections."""
    return fine_tune(image, labels, config, base=source, predictions=prediction, diameter=diameter,
                     out_parent=out_parent, progress=progress, should_stop=should_stop)


def package_finetune_job(image, labels, source, config, trust, out, progress, should_stop):
    """Worker: fine-tune a bioimage.io package from another tool; write a new version."""
    from cellsight.core.bmz.finetune import fine_tune_package

    return fine_tune_package(image, labels, config, package=source, trust=trust, out=out,
                             progress=progress, should_stop=should_stop)


def next_package_version(source) -> Path:
    """The first free ``<stem>-ftNNN.zip`` beside a package."""
    path = Path(source)
    stem = base_name(path.name[:-4] if path.name.lower().endswith(".zip") else path.name)
    n = 1
    while (out := path.parent / f"{stem}-ft{n:03d}.zip").exists():
        n += 1
    return out


class FineTuneWidget(JobMixin, QWidget):
    """Fine-tune the segmentation model on corrected labels; review uncertain objects."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.result = None
        self.out_parent: Path | None = None  # None: next to the model (or the user folder)
        self.init_jobs(napari_viewer, "Correct some objects, then Fine-tune.")
        warm_up_training()  # the first Train reports within a second
        self._build()
        self._list_versions()

    # --- layout -----------------------------------------------------------------
    def _build(self) -> None:
        self.model_box = ModelChooser()
        self.model_box.chosen.connect(self._list_versions)
        self.image_box = layer_chooser(self.viewer, napari.layers.Image, prefer=user_layer)
        self.labels_box = layer_chooser(self.viewer, napari.layers.Labels,
                                        prefer=corrected_labels)
        self.diameter_form = ConfigForm(InstancePredictConfig(), ("diameter",),
                                        {"diameter": {"suffix": " px",
                                                     "special": "model's own scale"}})
        self.form = ConfigForm(FineTuneConfig(), FORM_FIELDS)
        grid, buttons = button_grid([
            ("Fine-tune", self.start_fine_tune,
             "Train the active model further on the corrected labels; the new version is "
             "kept only if it scores better on the held-out part."),
            ("Export package…", self.start_export,
             "Write the active model as a bioimage.io package (.zip)."),
        ], columns=2)
        self.tune_button, self.export_button = buttons["Fine-tune"], buttons["Export package…"]
        grid.addWidget(self.stop_button, 1, 0)
        self.versions = QListWidget()
        self.versions.setToolTip("Fine-tuned versions; double-click one to make it active.")
        self.versions.itemDoubleClicked.connect(self._version_chosen)
        self.review = ReviewPanel(self.viewer, self.review_inputs)
        layout = scroll_layout(self)
        layout.addLayout(form(("Model (active)", self.model_box), ("Image", self.image_box),
                              ("Corrected labels", self.labels_box)))
        layout.addLayout(self.form.take_rows(("steps",)))
        self.advanced = advanced(self.diameter_form, self.form)
        layout.addWidget(self.advanced)
        layout.addLayout(grid)
        for part in (self.progress_bar, self.status, QLabel("Model versions"), self.versions,
                     QLabel("Review: uncertain objects first"), self.review):
            layout.addWidget(part)
        self.busy_disables(self.tune_button, self.export_button, self.model_box, self.versions)
        self.fit_width()

    def diameter(self) -> float:
        """Nucleus diameter used when predicting; fine-tuning runs at the same scale."""
        return self.diameter_form.values()["diameter"]

    # --- model and versions ----------------------------------------------------
    def model_source(self) -> str:
        """Built-in name or folder of the active model."""
        return self.model_box.source()

    def set_model_folder(self, folder) -> None:
        """Make the model in ``folder`` the active one."""
        self.model_box.set_source(folder)
        self._list_versions()

    def versions_parent(self) -> tuple[Path, str]:
        """(folder that receives new versions, model name)."""
        parent, name = version_parent(self.model_source() or "nuclei")
        return (self.out_parent or parent), name

    def _list_versions(self, *args) -> None:
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
        image_layer, labels_layer = self.image_box.value, self.labels_box.value
        if image_layer is None or labels_layer is None or not self.model_source():
            raise ValueError("choose a model, an Image layer and a Labels layer first.")
        return layer_array(image_layer), labels_layer

    def start_fine_tune(self):
        """Read the layers (main thread) and fine-tune in a worker thread."""
        try:
            image, layer = self._read_inputs()
            config = self.form.config()
        except ValueError as exc:
            show_error(f"Fine-tune: {exc}")
            return None
        if foreign_package(self.model_source()):
            return self._start_package(image, np.asarray(layer.data).copy(), config)
        prediction = layer.metadata.get(PREDICTION_KEY)
        if prediction is not None and np.shape(prediction) != layer.data.shape:
            prediction = None
        parent, _ = self.versions_parent()
        return self.run_job(
            finetune_job, image, np.asarray(layer.data).copy(), self.model_source(), config,
            prediction, self.diameter(), parent,
            name="Fine-tune", status="Fine-tuning …", total=config.steps,
            on_progress=self._on_progress, on_result=self._tuned,
            on_cancelled=lambda _: self.status.setText("Stopped; the model is unchanged."),
        )

    def _start_package(self, image, labels, config):
        """Fine-tune a package from another tool (asks before its code runs)."""
        source = self.model_source()
        try:
            model = load_package_asking(self, source, ("semantic", "instance"))
        except ValueError as exc:
            show_error(f"Fine-tune: {exc}")
            return None
        if model is None:
            self.status.setText(f"{source} not loaded: its code was not allowed to run.")
            return None
        out = next_package_version(source)
        return self.run_job(
            package_finetune_job, image, labels, source, config,
            model.weights == "pytorch_state_dict", out,
            name="Fine-tune package", status=f"Fine-tuning the package into {out.name} …",
            total=config.steps, on_progress=self._on_progress, on_result=self._package_tuned,
            on_cancelled=lambda _: self.status.setText("Stopped; nothing was written."),
        )

    def _package_tuned(self, result) -> None:
        self.result = result
        self.status.setText(f"{result.message}. Held out: {result.held_out}.")
        if result.after >= result.before and result.package is not None:
            self.set_model_folder(result.package)

    def start_export(self):
        """Write the last fine-tuned model (else the active one) as a bioimage.io package."""
        from cellsight.core.segmentation.instance_model import InstanceModel

        model = getattr(self.result, "model", None)
        if model is None:
            source = self.model_source()
            if foreign_package(source):
                show_error(f"{source} is already a bioimage.io package (from another tool).")
                return None
            try:
                model = InstanceModel.load(source or "nuclei")
            except (OSError, ValueError) as exc:
                show_error(f"Cannot load model: {exc}")
                return None
        return start_export(self, model)

    def review_inputs(self):
        """(model source, image layer, labels layer, predict config) for the review list."""
        self._read_inputs()
        image_layer, labels_layer = self.image_box.value, self.labels_box.value
        if labels_layer.data.shape != image_layer.data.shape:
            raise ValueError("the Labels layer and the image differ in shape.")
        mode = layer_mode(labels_layer, model_ndim(self.model_source()))
        return self.model_source(), image_layer, labels_layer, InstancePredictConfig(
            mode=mode, diameter=self.diameter())

    # --- callbacks (main thread) --------------------------------------------------------
    def _on_progress(self, event) -> None:
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
