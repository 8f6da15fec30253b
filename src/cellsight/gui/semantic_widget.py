"""Dock widget "Semantic segmentation": paint a few strokes per class, train, predict.

Train runs :func:`cellsight.core.segmentation.semantic.train_semantic` and Predict runs
:func:`cellsight.core.segmentation.semantic.predict_semantic`, both through ``start_job``; the
loss curve and progress bar follow the job's progress events, Stop keeps the model
trained so far, and results go to NEW layers (argmax labels + probability maps).

Predict on a big layer (multiscale / OME-Zarr, dask, > ~256 MP) runs
:func:`cellsight.core.blocks.dense.predict_semantic_blockwise` into a new
``<input>_classes.ome.zarr`` shown as a lazy layer; "Visible region only" predicts just
the region shown in the canvas, in memory.
"""

import napari
import numpy as np
from napari.utils.colormaps import DirectLabelColormap, label_colormap
from napari.utils.notifications import show_error, show_warning
from qtpy.QtWidgets import QCheckBox, QWidget

from cellsight.config.semantic import SemanticConfig, SemanticPredictConfig
from cellsight.core.blocks.dense import predict_semantic_blockwise
from cellsight.core.progress import Cancelled
from cellsight.core.segmentation.semantic import SemanticModel, predict_semantic, train_semantic
from cellsight.gui.big_data import (
    BigDataBox,
    LiveOutput,
    blockwise_source,
    is_big,
    load,
    output_path,
    placed,
    run_blockwise,
    visible_crop,
)
from cellsight.gui.loss_plot import LossPlot
from cellsight.gui.workers import warm_up_labels, warm_up_training
from cellsight.gui.toolkit import (
    ConfigForm,
    JobMixin,
    ModelChooser,
    ModelFilesMixin,
    advanced,
    button_grid,
    device_box,
    form,
    group,
    layer_array,
    layer_chooser,
    layer_mode,
    scroll_layout,
    stroke_layer,
    user_layer,
)

TRAINED_HERE = "model trained here"
IDLE_TEXT = ("Paint a few strokes per class on a Labels layer: 1 = background, 2, 3, ... = "
             "your classes.")
#: more classes than this get a warning before training (a second Train goes ahead)
MANY_CLASSES = 10
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


def predict_job(model, image, config, progress, should_stop):
    """Worker: read the image (a visible-region crop is read here) and predict it."""
    return predict_semantic(model, load(image), config, progress=progress,
                            should_stop=should_stop)


def package_job(model, image, device, progress, should_stop):
    """Worker: run a bioimage.io package from another tool (semantic output)."""
    from cellsight.core.bmz.run import predict_package

    return predict_package(model, load(image), device=device, progress=progress,
                           should_stop=should_stop)


def class_name(k: int, offset: int) -> str:
    """Name of class ``k``: with strokes (offset 1) class 1 is the background."""
    return "background" if offset == 1 and k == 1 else f"class {k}"


def classes_colormap(n_classes: int, offset: int) -> DirectLabelColormap:
    """napari's label colours for classes ``offset..``, the background class transparent."""
    cyclic = label_colormap(n_classes + offset + 1)
    colors = {None: np.zeros(4, np.float32), 0: np.zeros(4, np.float32)}
    for k in range(offset, n_classes + offset):
        colors[k] = np.zeros(4, np.float32) if k == 1 and offset == 1 else cyclic.map(k)
    return DirectLabelColormap(color_dict=colors)


def training_warning(labels: np.ndarray, zero_is_background: bool) -> str:
    """One line if ``labels`` look wrong for a semantic model ("" when they look fine)."""
    ids = np.unique(labels)
    n = int(ids.size if zero_is_background else np.count_nonzero(ids))  # 0: not annotated
    if n > MANY_CLASSES:
        kind = ("they look like instance masks (one id per object), not class strokes"
                if n > 2 * MANY_CLASSES else f"that makes a {n}-class model")
        return (f"The labels hold {n} different ids: {kind}. Paint 1 = background, "
                "2, 3, ... = your classes; press Train again to train anyway.")
    return ""


def _is_package(model) -> bool:
    from cellsight.core.bmz.run import PackageModel

    return isinstance(model, PackageModel)


class SemanticWidget(ModelFilesMixin, JobMixin, QWidget):
    """Train a U-Net on painted labels and segment images of any size."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.model: SemanticModel | None = None
        self._origin = None  # level-0 origin of a visible-region prediction
        self.live: LiveOutput | None = None
        self._warned = None  # (labels layer, warning) already shown: Train again goes ahead
        self.init_jobs(napari_viewer, IDLE_TEXT)
        warm_up_training()  # the first Train reports within a second
        warm_up_labels()  # showing the first result does not wait for numba
        defaults = SemanticConfig()
        self.data_form = ConfigForm(defaults, ("scale", "soft_targets"))
        self.network_form = ConfigForm(defaults.unet, NETWORK_FIELDS)
        self.training_form = ConfigForm(defaults.training, TRAINING_FIELDS)
        self._build()

    # --- layout -----------------------------------------------------------------
    def _build(self) -> None:
        self.image_box = layer_chooser(self.viewer, napari.layers.Image, prefer=user_layer)
        self.labels_box = layer_chooser(self.viewer, napari.layers.Labels,
                                        usable=stroke_layer, prefer=user_layer)
        self.image_box.changed.connect(self._guess_frames)
        self.model_box = ModelChooser(builtins={}, none_text=TRAINED_HERE)
        self.model_box.chosen.connect(self._load_chosen)
        self.device_box = device_box()
        layout = scroll_layout(self)
        frames, background, continue_, tta = self._checks()
        layout.addLayout(form(("Image", self.image_box), ("Labels (strokes)", self.labels_box),
                              ("Model", self.model_box)))
        layout.addLayout(self.training_form.take_rows(("steps",)))
        layout.addLayout(form(frames, continue_))
        self.big = BigDataBox()
        self.advanced = advanced(
            form(("Device", self.device_box), background, tta), self.data_form,
            group("Network", self.network_form), group("Training", self.training_form),
            self.big.widget,
        )
        layout.addWidget(self.advanced)
        grid, buttons = button_grid([
            ("Train", self.start_training,
             "Train a model on the strokes of the Labels layer (a new model, or the current "
             "one fine-tuned when 'Start from the current model' is checked)."),
            ("Predict", self.start_predict,
             "Segment the chosen image with the current model: class labels and one "
             "probability map per class, as new layers."),
            ("Save model…", self._ask_save, "Save the current model into a folder."),
            ("Export package…", self._ask_export,
             "Write the current model as a bioimage.io package (.zip)."),
        ])
        (self.train_button, self.predict_button, self.save_button,
         self.export_button) = buttons.values()
        layout.addLayout(grid)
        self.plot = LossPlot()
        for widget in (self.stop_button, self.progress_bar, self.status, self.plot):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.fit_width()
        self.busy_disables(self.train_button, self.model_box)
        self._guess_frames()

    def _checks(self) -> list:
        self.frames_check = QCheckBox("Frame by frame (time series / stack)")
        self.frames_check.setToolTip("The first axis is time: a 2D model segments each frame.")
        title, tip = SemanticConfig.field_help("zero_is_background")
        self.background_check = QCheckBox(title)
        self.background_check.setToolTip(tip)
        self.continue_check = QCheckBox("Start from the current model")
        self.continue_check.setToolTip(
            "Fine-tune the trained or loaded model with the new strokes instead of "
            "training a new one (its network settings are kept)."
        )
        self.tta_check = QCheckBox("Test-time augmentation (predict 8x slower)")
        self.tta_check.setToolTip(SemanticPredictConfig.field_help("test_time_augmentation")[1])
        checks = (self.frames_check, self.background_check, self.continue_check, self.tta_check)
        return [("", check) for check in checks]

    def _guess_frames(self, *args) -> None:
        layer = self.image_box.value
        if layer is None:
            return
        if _is_package(self.model):
            model_ndim = len(self.model.spatial)
        else:
            model_ndim = (
                self.model.config.unet.ndim if self.model else self.network_form.values()["ndim"]
            )
        self.frames_check.setChecked(layer_mode(layer, model_ndim) == "t")

    def update_buttons(self, running: bool) -> None:
        """Predict, Save and "start from the current model" need a model."""
        own = self.model is not None and not _is_package(self.model)
        self.save_button.setEnabled(not running and own)
        self.export_button.setEnabled(not running and own)
        self.continue_check.setEnabled(own)
        if not own:
            self.continue_check.setChecked(False)
        if self.model is None:
            self.continue_check.setChecked(False)
        self.predict_button.setEnabled(not running and self.model is not None)

    # --- configuration ------------------------------------------------------------
    def config(self) -> SemanticConfig:
        """The parameters currently set in the widget."""
        return SemanticConfig(
            zero_is_background=self.background_check.isChecked(),
            **self.data_form.values(),
            unet=self.network_form.config(),
            training=self.training_form.config(device=self.device_box.currentText()),
        )

    def predict_config(self) -> SemanticPredictConfig:
        """The prediction parameters currently set in the widget."""
        return SemanticPredictConfig(
            timeseries=self.frames_check.isChecked(),
            device=self.device_box.currentText(),
            test_time_augmentation=self.tta_check.isChecked(),
        )

    # --- jobs -------------------------------------------------------------------------
    def start_training(self):
        """Read image and labels (main thread) and train in a worker thread."""
        image_layer, labels_layer = self.image_box.value, self.labels_box.value
        if image_layer is None or labels_layer is None:
            show_error("Choose an Image layer and a Labels layer with a few strokes per class.")
            return None
        if is_big(image_layer):
            show_error(f"Layer {image_layer.name!r} is too big to train on; paint and train on "
                       "a crop, then Predict on the big layer.")
            return None
        image, labels = layer_array(image_layer), np.asarray(labels_layer.data).copy()
        if image.shape != labels.shape:
            show_error(f"Image {image.shape} and labels {labels.shape} differ in shape.")
            return None
        warning = training_warning(labels, self.background_check.isChecked())
        if warning and self._warned != (labels_layer, warning):
            self._warned = (labels_layer, warning)
            show_warning(warning)
            self.status.setText(warning)
            return None
        try:
            config = self.config()
        except ValueError as exc:
            show_error(f"Invalid parameters: {exc}")
            return None
        self.plot.clear()
        return self.run_job(
            train_job,
            image,
            labels,
            config,
            self.model if self.continue_check.isChecked() else None,
            name="Semantic training",
            status="Training …",
            on_progress=self._on_progress,
            on_batch=self.plot.flush,
            on_result=self._trained,
            on_cancelled=self._trained,
            total=config.training.steps,
        )

    def start_predict(self):
        """Segment the chosen image with the current model in a worker thread."""
        layer = self.image_box.value
        if layer is None or self.model is None:
            show_error("Train or load a model and choose an Image layer first.")
            return None
        try:
            blocks = self.big.blocks()
            crop = visible_crop(self.viewer, layer) if self.big.visible_only else None
        except ValueError as exc:
            show_error(f"Cannot predict: {exc}")
            return None
        self._target = layer
        self._origin = crop.origin if crop is not None else None
        if _is_package(self.model):
            if crop is None and is_big(layer):
                if self.model.kind == "semantic":  # labels block by block, image-wide stats
                    return self._start_blockwise(layer, blocks)
                show_error("This package's output is not class probabilities: it runs on "
                           "layers that fit in memory; check Visible region only.")
                return None
            return self.run_job(
                package_job, self.model, crop if crop is not None else layer_array(layer),
                self.device_box.currentText(), name="Package prediction",
                status="Predicting with the package …", on_result=self._show_package,
            )
        if crop is None and is_big(layer):
            return self._start_blockwise(layer, blocks)
        return self.run_job(
            predict_job,
            self.model,
            crop if crop is not None else layer_array(layer),
            self.predict_config(),
            name="Semantic prediction",
            status="Predicting …",
            on_result=self._show_prediction,
            on_cancelled=self._show_partial,
        )

    def _start_blockwise(self, layer, blocks):
        out = output_path(layer, "classes")
        self.live = LiveOutput(self.viewer, out, "labels", f"{layer.name} classes",
                               placed(layer))
        from cellsight.core.bmz.blocks import predict_package_blockwise

        func = predict_package_blockwise if _is_package(self.model) else predict_semantic_blockwise
        return self.run_job(
            run_blockwise, func, self.model, blockwise_source(layer),
            blocks=blocks, out=out, name="Blockwise semantic prediction",
            status=f"Predicting block by block into {out} …", on_progress=self.live.poll,
            on_result=self._blockwise_done, on_cancelled=self._blockwise_stopped,
        )

    # --- callbacks (main thread) --------------------------------------------------
    def _blockwise_done(self, result) -> None:
        self.live.finish(result.path)
        self.status.setText(f"Classes of {result.blocks} blocks ({result.seconds:.0f} s) "
                            f"written to {result.path}.")

    def _blockwise_stopped(self, partial) -> None:
        if self.live is not None:
            self.live.poll()
            self.status.setText(f"Stopped; what was written is in {self.live.path}.partial.")

    def _on_progress(self, event) -> None:
        if event.values:
            self.plot.add(event.step, event.values)

    def _trained(self, model) -> None:
        if model is None:
            return
        self.model = model
        self.model_box.select_none()
        self.refresh_buttons()
        m = model.meta.get("metrics", {})
        self.status.setText(
            f"Model ready: {model.config.n_classes} classes, {m.get('steps_done', 0)} steps "
            f"({m.get('stop_reason', '')}), best at step {m.get('best_step', 0)}."
        )

    def _show_prediction(self, result) -> None:
        layer = self._target
        name = layer.name if layer is not None else "image"
        where = placed(layer, self._origin, result.labels.ndim) if layer is not None else {}
        region = " (visible region)" if self._origin is not None else ""
        meta = {"cellsight_owned": True}
        n, first = self.model.config.n_classes, self.model.config.class_offset
        self.viewer.add_labels(result.labels, name=f"{name} semantic{region}", metadata=meta,
                               colormap=classes_colormap(n, first), **where)
        axis = result.probabilities.ndim - self.model.config.unet.ndim - 1  # the class axis
        names = [f"{name} P({class_name(first + k, first)})" for k in range(n)]
        self.viewer.add_image(
            result.probabilities,
            channel_axis=axis,
            name=names,
            **where,
            visible=False,
            metadata=meta,
        )
        self.status.setText(f"Segmented {name!r}: labels and probabilities added as new layers.")

    def _show_package(self, result) -> None:
        layer = self._target
        name = layer.name if layer is not None else "image"
        where = placed(layer, self._origin, result.labels.ndim) if layer is not None else {}
        meta = {"cellsight_owned": True}
        self.viewer.add_labels(result.labels, name=f"{name} semantic (package)", metadata=meta,
                               **where)
        axis = result.output.ndim - len(self.model.spatial) - 1
        names = [f"{name} P(class {k + 1})" for k in range(result.output.shape[axis])]
        self.viewer.add_image(result.output, channel_axis=axis, name=names, visible=False,
                              metadata=meta, **where)
        self.status.setText(f"Segmented {name!r} with the package: labels and probabilities "
                            "added as new layers.")

    def _show_partial(self, partial) -> None:
        if partial is not None:  # the frames finished before the stop
            self._show_prediction(partial)

    # --- model files ---------------------------------------------------------------
    def load_model(self, folder) -> None:
        """Load a semantic model folder or package and make it the current model.

        A package from another tool whose network is Python code runs only if the user
        allows it (a dialog naming the file and its sha256); No loads nothing.
        """
        from cellsight.gui.toolkit.models import foreign_package, load_package_asking

        if foreign_package(folder):
            model = load_package_asking(self, folder, ("semantic",))
            if model is None:
                self.status.setText(f"{folder} not loaded: its code was not allowed to run.")
                return
            self.model = model
            self.model_box.set_source(folder)
            self.status.setText(f"Loaded the package {model.package.descr.name} "
                                f"({model.weights} weights).")
            self.refresh_buttons()
            self._guess_frames()
            return
        self.model = SemanticModel.load(folder)
        self._trained(self.model)
        self.model_box.set_source(folder)
        self._guess_frames()
