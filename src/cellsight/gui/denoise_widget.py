"""Dock widget "Denoise": Noise2Void trained on the noisy image itself.

Train & denoise runs :func:`cellsight.core.denoise.train_n2v` and then
:func:`cellsight.core.denoise.denoise` through ``start_job``. While it trains, the loss
curve follows the job's progress events and a preview crop (a cellsight-owned layer
placed over the image) shows the current network's output. Stop keeps the model as
of the last step; the denoised image is added as a NEW layer with the source's
contrast. A trained model can be saved, loaded and applied to other images.
"""

import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cellsight.config.n2v import N2VConfig
from cellsight.core.denoise import N2VModel, PreviewCrop, denoise, train_n2v
from cellsight.core.progress import Cancelled, ProgressEvent
from cellsight.gui.config_form import ConfigForm
from cellsight.gui.layer_utils import layers_of_type, owned_layer
from cellsight.gui.loss_plot import LossPlot
from cellsight.gui.model_files import ModelFilesMixin
from cellsight.gui.workers import start_job

FIELDS = ("steps", "patch_size", "batch_size", "variant", "patch_size_z")
AXES_CHOICES = {
    2: ("YX",),
    3: ("TYX", "ZYX", "CYX"),
    4: ("TZYX", "TCYX", "CZYX"),
    5: ("TCZYX",),
}


def train_and_denoise_job(image, config, axes, device, progress, should_stop):
    """Worker thread: train on ``image``, then denoise it; returns ``(model, denoised)``.

    Previews travel as progress events (``values["preview"]``). A stop during
    training or denoising raises :class:`Cancelled` with the model as ``partial``.
    """

    def on_preview(crop: PreviewCrop) -> None:
        progress(ProgressEvent(crop.step, config.steps, "preview", {"preview": crop}))

    model = train_n2v(image, config, axes=axes, device=device, preview=on_preview,
                      progress=progress, should_stop=should_stop)
    result = apply_job(image, model, axes, device, progress, should_stop)
    return model, result


def apply_job(image, model, axes, device, progress, should_stop):
    """Worker thread: denoise ``image`` with ``model``; a stop keeps the model."""
    try:
        return denoise(image, model, axes=axes, device=device, progress=progress,
                       should_stop=should_stop)
    except Cancelled as exc:
        raise Cancelled("Denoising stopped; the model is kept.", partial=model) from exc


def axes_choices(layer) -> tuple[str, ...]:
    """Axis strings a layer's data may have, the most likely first."""
    rgb = bool(getattr(layer, "rgb", False))
    ndim = len(layer.data.shape)
    choices = AXES_CHOICES.get(ndim - (1 if rgb else 0), ())
    if rgb:
        choices = tuple(c + "C" for c in choices if "C" not in c)
    known = str(layer.metadata.get("axes", "")).upper()
    if len(known) == ndim and known not in choices:
        choices = (known, *choices)
    elif known in choices:
        choices = (known, *(c for c in choices if c != known))
    return choices


class DenoiseWidget(ModelFilesMixin, QWidget):
    """Train a Noise2Void denoiser on a noisy image and denoise it, with a live preview."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.job = None
        self.model: N2VModel | None = None
        self._source = None
        self.form = ConfigForm(N2VConfig(), FIELDS)
        self._build()
        self.viewer.layers.events.inserted.connect(self._sync_layers)
        self.viewer.layers.events.removed.connect(self._sync_layers)
        self._sync_layers()

    # --- layout -----------------------------------------------------------------
    def _build(self) -> None:
        self.image_box, self.axes_box, self.device_box = QComboBox(), QComboBox(), QComboBox()
        self.image_box.currentTextChanged.connect(self._sync_axes)
        self.axes_box.setToolTip("T: frames trained on as samples; Z: 3D model; C: channels.")
        self.device_box.addItems(["auto", "cpu", "cuda", "mps"])
        data = QFormLayout()
        data.addRow("Image", self.image_box)
        data.addRow("Axes", self.axes_box)
        data.addRow("Device", self.device_box)
        layout = QVBoxLayout(self)
        layout.addLayout(data)
        layout.addLayout(self.form)
        layout.addLayout(self._buttons())
        self.progress_bar = QProgressBar()
        self.status = QLabel("Choose a noisy image and press Train & denoise.")
        self.status.setWordWrap(True)
        self.plot = LossPlot()
        for w in (self.progress_bar, self.status, self.plot):
            layout.addWidget(w)
        layout.addStretch(1)

    def _buttons(self) -> QGridLayout:
        grid = QGridLayout()
        self.train_button = QPushButton("Train && denoise")
        self.stop_button = QPushButton("Stop")
        self.apply_button = QPushButton("Apply model")
        self.save_button = QPushButton("Save model…")
        self.load_button = QPushButton("Load model…")
        slots = ((self.train_button, self.start), (self.stop_button, self.stop),
                 (self.apply_button, self.start_apply), (self.save_button, self._ask_save),
                 (self.load_button, self._ask_load))
        for k, (button, slot) in enumerate(slots):
            button.clicked.connect(slot)
            grid.addWidget(button, k // 3, k % 3)
        self._set_running(False)
        return grid

    def _sync_layers(self, event=None) -> None:
        current = self.image_box.currentText()
        self.image_box.blockSignals(True)
        self.image_box.clear()
        names = [
            layer.name for layer in layers_of_type(self.viewer, "Image")
            if not layer.metadata.get("cellsight_preview")
        ]
        self.image_box.addItems(names)
        if current in names:
            self.image_box.setCurrentText(current)
        self.image_box.blockSignals(False)
        self._sync_axes()

    def _sync_axes(self, *args) -> None:
        layer = self._layer()
        self.axes_box.clear()
        if layer is not None:
            self.axes_box.addItems(axes_choices(layer))

    def _layer(self):
        name = self.image_box.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def _refresh_buttons(self) -> None:
        """Enable the buttons that fit the current state (callbacks may come in any order)."""
        self._set_running(self.job is not None and self.job.is_running)

    def _set_running(self, running: bool) -> None:
        self.train_button.setEnabled(not running)
        self.load_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for button in (self.apply_button, self.save_button):
            button.setEnabled(not running and self.model is not None)

    # --- jobs -------------------------------------------------------------------------
    def _read_input(self):
        layer = self._layer()
        if layer is None:
            show_error("Choose an Image layer with the noisy image first.")
            return None
        if getattr(layer, "multiscale", False):
            show_error(f"Layer {layer.name!r} is multiscale; denoise a single-scale image.")
            return None
        self._source = layer
        return np.array(layer.data, copy=True), self.axes_box.currentText() or None

    def _launch(self, func, *args, name, on_result, total=0):
        self.plot.clear()
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(0)
        self._set_running(True)
        self.job = start_job(
            func, *args, name=name, on_progress=self._on_progress, on_result=on_result,
            on_cancelled=self._stopped, on_error=self._failed, on_finished=self._finished,
            total=total,
        )
        return self.job

    def start(self):
        """Read the image (main thread), then train and denoise in a worker thread."""
        read = self._read_input()
        if read is None:
            return None
        image, axes = read
        try:
            config = self.form.config()
        except ValueError as exc:
            show_error(f"Invalid parameters: {exc}")
            return None
        self.status.setText("Training … (the preview layer shows the current result)")
        return self._launch(
            train_and_denoise_job, image, config, axes, self.device_box.currentText(),
            name="Noise2Void", on_result=self._done, total=config.steps,
        )

    def start_apply(self):
        """Denoise the chosen image with the current model in a worker thread."""
        if self.model is None:
            show_error("Train or load a model first.")
            return None
        read = self._read_input()
        if read is None:
            return None
        image, axes = read
        self.status.setText("Denoising …")
        return self._launch(
            apply_job, image, self.model, axes, self.device_box.currentText(),
            name="Noise2Void denoising", on_result=self._show_result,
        )

    def stop(self) -> None:
        """Ask the running job to stop; the model trained so far is kept."""
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Stopping …")

    # --- callbacks (main thread) --------------------------------------------------
    def _on_progress(self, event) -> None:
        if event.total:
            self.progress_bar.setRange(0, event.total)
            self.progress_bar.setValue(min(event.step, event.total))
        values = event.values or {}
        if "preview" in values:
            self._show_preview(values["preview"])
        elif "loss" in values:
            self.plot.add(event.step, values)

    def _placement(self, origin=None) -> dict:
        layer = self._source
        if layer is None:
            return {}
        n = len(layer.scale)
        scale = np.asarray(layer.scale, float)
        translate = np.asarray(layer.translate, float)
        if origin is not None:
            translate = translate + np.asarray(origin[:n], float) * scale
        kwargs = {"scale": scale, "translate": translate, "rgb": bool(layer.rgb)}
        if not layer.rgb:
            kwargs["contrast_limits"] = list(layer.contrast_limits)
            kwargs["colormap"] = layer.colormap.name
        return kwargs

    def _show_preview(self, crop: PreviewCrop) -> None:
        name = f"{self._source.name if self._source is not None else 'image'} N2V preview"
        layer = owned_layer(self.viewer, name)
        placement = self._placement(crop.origin)
        if layer is not None and layer.data.shape == crop.data.shape:
            layer.data = crop.data
            layer.translate = placement["translate"]
        else:
            meta = {"cellsight_owned": True, "cellsight_preview": True}
            self.viewer.add_image(crop.data, name=name, metadata=meta, **placement)
        self.status.setText(f"Training … preview at step {crop.step}")

    def _done(self, result) -> None:
        self.model, denoised = result
        self._show_result(denoised)

    def _show_result(self, denoised) -> None:
        name = f"{self._source.name if self._source is not None else 'image'} denoised"
        self.viewer.add_image(denoised, name=name, metadata={"cellsight_owned": True},
                              **self._placement())
        steps = self.model.meta.get("steps_done", "?") if self.model else "?"
        self.status.setText(f"Denoised image added as {name!r} (model: {steps} steps).")
        self._refresh_buttons()

    def _stopped(self, model) -> None:
        if model is not None:
            self.model = model
            self.status.setText(
                f"Stopped; the model after {model.meta.get('steps_done', '?')} steps is kept. "
                "Apply model denoises with it; Save model… writes it."
            )
            self._refresh_buttons()

    # --- model files ---------------------------------------------------------------
    def load_model(self, folder) -> None:
        """Load an N2V model folder and make it the current model."""
        self.model = N2VModel.load(folder)
        self.status.setText(f"Loaded N2V model from {folder}.")
        self._set_running(False)
