"""Dock widget "Denoise": Noise2Void trained on the noisy image itself.

Train & denoise runs :func:`cellsight.core.denoise.train_n2v` and then
:func:`cellsight.core.denoise.denoise` through ``start_job``. While it trains, the loss
curve follows the job's progress events and a preview crop (a cellsight-owned layer
placed over the image) shows the current network's output. The denoised image is added
as a NEW layer with the source's contrast. A trained model can be saved, loaded and
applied to other images.

Stop never replaces a model: the first run's stopped model becomes the current one
(there was none), but when a model is already loaded or trained, a stopped run leaves it
active and its files untouched; the stopped model is written to a NEW folder
(``<model>-stopped-NNN`` beside the loaded model's folder, else ``n2v-stopped-NNN`` in the
user model folder, :func:`cellsight.core.curation.finetune.user_models_dir`) and listed
in the Model chooser, from where the user may pick it.

Apply model on a big layer (multiscale / OME-Zarr, dask, > ~256 MP) runs
:func:`cellsight.core.blocks.dense.denoise_blockwise` into a new
``<input>_denoised.ome.zarr`` shown as a lazy layer; with "Visible region only" both
buttons work on the region shown in the canvas, in memory.
"""

from dataclasses import dataclass
from pathlib import Path

import napari
import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QComboBox, QWidget

from cellsight.config.n2v import DenoisePredictConfig, N2VConfig
from cellsight.core.blocks.dense import denoise_blockwise
from cellsight.core.curation.finetune import user_models_dir
from cellsight.core.denoise import N2VModel, PreviewCrop, denoise, train_n2v
from cellsight.core.progress import Cancelled, ProgressEvent
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
from cellsight.gui.layer_utils import owned_layer
from cellsight.gui.loss_plot import LossPlot
from cellsight.gui.workers import warm_up_training
from cellsight.gui.toolkit import (
    ConfigForm,
    JobMixin,
    ModelChooser,
    ModelFilesMixin,
    advanced,
    button_grid,
    device_box,
    form,
    layer_axes_choices,
    layer_chooser,
    scroll_layout,
    user_layer,
)

FIELDS = ("steps", "patch_size", "batch_size", "variant", "patch_size_z")
TRAINED_HERE = "model trained here"


@dataclass(frozen=True)
class StoppedRun:
    """A training run stopped while another model was current: kept aside, not made active."""

    model: N2VModel
    folder: Path  # the NEW folder it was written to


def stopped_model_dir(parent, name: str) -> Path:
    """Create and return the next free ``<parent>/<name>-stopped-NNN`` folder."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        folder = parent / f"{name}-stopped-{n:03d}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            n += 1


def train_and_denoise_job(image, config, predict, keep_aside=None, *, progress, should_stop):
    """Worker thread: train on ``image``, then denoise it; returns ``(model, denoised)``.

    ``config`` (N2VConfig) trains the model, ``predict`` (DenoisePredictConfig) applies
    it; both use the axes of ``predict``.

    Previews travel as progress events (``values["preview"]``). A stop during
    denoising raises :class:`Cancelled` with the (fully trained) model as ``partial``;
    a stop during training too, unless ``keep_aside`` = ``(parent, name)`` is given
    (another model is current): the stopped model is then saved into a new
    :func:`stopped_model_dir` and ``partial`` is a :class:`StoppedRun`.
    """

    def on_preview(crop: PreviewCrop) -> None:
        progress(ProgressEvent(crop.step, config.steps, "preview", {"preview": crop}))

    image = load(image)
    try:
        model = train_n2v(image, config, axes=predict.axes or None, preview=on_preview,
                          progress=progress, should_stop=should_stop)
    except Cancelled as exc:
        if keep_aside is None or exc.partial is None:
            raise
        folder = stopped_model_dir(*keep_aside)
        exc.partial.save(folder)
        raise Cancelled(f"Training stopped; that model was saved to {folder}.",
                        partial=StoppedRun(exc.partial, folder)) from exc
    result = apply_job(image, model, predict, progress, should_stop)
    return model, result


def apply_job(image, model, predict, progress, should_stop):
    """Worker thread: denoise ``image`` with ``model``; a stop keeps the model."""
    from cellsight.core.bmz.run import PackageModel, predict_package

    try:
        if isinstance(model, PackageModel):  # a bioimage.io package from another tool
            result = predict_package(model, load(image), axes=predict.axes or None,
                                     device=predict.device, progress=progress,
                                     should_stop=should_stop)
            return result.image if result.image is not None else result.output
        return denoise(model, load(image), predict, progress=progress, should_stop=should_stop)
    except Cancelled as exc:
        raise Cancelled("Denoising stopped; the model is kept.", partial=model) from exc


class DenoiseWidget(ModelFilesMixin, JobMixin, QWidget):
    """Train a Noise2Void denoiser on a noisy image and denoise it, with a live preview."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.model: N2VModel | None = None
        self._source = None
        self._origin = None  # level-0 origin of a visible-region crop
        self.live: LiveOutput | None = None
        self.init_jobs(napari_viewer, "Choose a noisy image and press Train & denoise.")
        warm_up_training()  # the first Train reports within a second
        self.form = ConfigForm(N2VConfig(), FIELDS)
        self._build()

    # --- layout -----------------------------------------------------------------
    def _build(self) -> None:
        self.image_box = layer_chooser(self.viewer, napari.layers.Image, prefer=user_layer)
        self.image_box.changed.connect(self._sync_axes)
        self.axes_box, self.device_box = QComboBox(), device_box()
        self.axes_box.setToolTip("T: frames trained on as samples; Z: 3D model; C: channels.")
        self.model_box = ModelChooser(builtins={}, none_text=TRAINED_HERE)
        self.model_box.chosen.connect(self._load_chosen)
        grid, buttons = button_grid([
            ("Train && denoise", self.start,
             "Train a Noise2Void model on the chosen image itself (no clean data needed), "
             "then denoise it into a new layer."),
            ("Apply model", self.start_apply,
             "Denoise the chosen image with the current model (no training)."),
            ("Save model…", self._ask_save, "Save the current model into a folder."),
            ("Export package…", self._ask_export,
             "Write the current model as a bioimage.io package (.zip)."),
        ])
        self.train_button, self.apply_button, self.save_button, self.export_button = (
            buttons.values())
        self.plot = LossPlot()
        layout = scroll_layout(self)
        layout.addLayout(form(("Image", self.image_box), ("Axes", self.axes_box),
                              ("Model", self.model_box)))
        layout.addLayout(self.form.take_rows(("steps",)))
        self.big = BigDataBox()
        self.advanced = advanced(form(("Device", self.device_box)), self.form, self.big.widget)
        layout.addWidget(self.advanced)
        layout.addLayout(grid)
        for widget in (self.stop_button, self.progress_bar, self.status, self.plot):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.fit_width()
        self.busy_disables(self.train_button, self.model_box)
        self._sync_axes()

    def _sync_axes(self, *args) -> None:
        layer = self.image_box.value
        self.axes_box.clear()
        if layer is not None:
            self.axes_box.addItems(layer_axes_choices(layer))

    def update_buttons(self, running: bool) -> None:
        """Apply and Save need a model."""
        from cellsight.core.bmz.run import PackageModel

        self.apply_button.setEnabled(not running and self.model is not None)
        own = self.model is not None and not isinstance(self.model, PackageModel)
        for button in (self.save_button, self.export_button):
            button.setEnabled(not running and own)

    # --- jobs -------------------------------------------------------------------------
    def predict_config(self) -> DenoisePredictConfig:
        """How the model is applied: the chosen axes and device."""
        return DenoisePredictConfig(axes=self.axes_box.currentText(),
                                    device=self.device_box.currentText())

    def _read_input(self, blockwise: bool = False):
        """``(image, DenoisePredictConfig)``: a copy, a Crop or "blockwise" (a big layer)."""
        layer = self.image_box.value
        if layer is None:
            show_error("Choose an Image layer with the noisy image first.")
            return None
        crop = None
        if self.big.visible_only:
            try:
                crop = visible_crop(self.viewer, layer)
            except ValueError as exc:
                show_error(str(exc))
                return None
        elif is_big(layer) and not blockwise:
            show_error(f"Layer {layer.name!r} is big: check Visible region only to train on "
                       "the region shown, then Apply model denoises it block by block.")
            return None
        try:
            predict = self.predict_config()
        except ValueError as exc:
            show_error(f"Invalid parameters: {exc}")
            return None
        self._source = layer
        self._origin = crop.origin if crop is not None else None
        if crop is not None:
            return crop, predict
        if is_big(layer):
            return "blockwise", predict
        return np.array(layer.data, copy=True), predict

    def _launch(self, func, *args, **kwargs):
        self.plot.clear()
        return self.run_job(func, *args, on_progress=self._on_progress,
                            on_batch=self.plot.flush, on_cancelled=self._stopped, **kwargs)

    def start(self):
        """Read the image (main thread), then train and denoise in a worker thread."""
        read = self._read_input()
        if read is None:
            return None
        image, predict = read
        try:
            config = self.form.config(device=self.device_box.currentText())
        except ValueError as exc:
            show_error(f"Invalid parameters: {exc}")
            return None
        return self._launch(
            train_and_denoise_job, image, config, predict, self._keep_aside(),
            name="Noise2Void", on_result=self._done, total=config.steps,
            status="Training … (the preview layer shows the current result)",
        )

    def _keep_aside(self) -> tuple[Path, str] | None:
        """Where a stopped run goes when a model is current: ``(parent, name)``, else None."""
        if self.model is None:
            return None
        source = self.model_box.source()
        if source and Path(source).is_dir():  # beside the loaded model's folder
            folder = Path(source).resolve()
            return folder.parent, folder.name
        return user_models_dir(), "n2v"

    def start_apply(self):
        """Denoise the chosen image with the current model in a worker thread."""
        if self.model is None:
            show_error("Train or load a model first.")
            return None
        read = self._read_input(blockwise=True)
        if read is None:
            return None
        image, predict = read
        if isinstance(image, str):
            return self._start_blockwise(self._source)
        return self._launch(
            apply_job, image, self.model, predict,
            name="Noise2Void denoising", on_result=self._show_result, status="Denoising …",
        )

    def _start_blockwise(self, layer):
        try:
            blocks = self.big.blocks()
        except ValueError as exc:
            show_error(f"Invalid parameters: {exc}")
            return None
        out = output_path(layer, "denoised")
        look = {k: v for k, v in self._placement().items() if k in ("contrast_limits", "colormap")}
        self.live = LiveOutput(self.viewer, out, "image", f"{layer.name} denoised",
                               placed(layer), **look)
        from cellsight.core.bmz.blocks import predict_package_blockwise
        from cellsight.core.bmz.run import PackageModel

        # a bioimage.io package from another tool runs with the image-wide statistics
        func = (predict_package_blockwise if isinstance(self.model, PackageModel)
                else denoise_blockwise)
        return self.run_job(
            run_blockwise, func, self.model, blockwise_source(layer),
            blocks=blocks, out=out, name="Blockwise denoising",
            status=f"Denoising block by block into {out} …", on_progress=self.live.poll,
            on_result=self._blockwise_done, on_cancelled=self._blockwise_stopped,
        )

    # --- callbacks (main thread) --------------------------------------------------
    def _blockwise_done(self, result) -> None:
        self.live.finish(result.path)
        self.status.setText(f"Denoised {result.blocks} blocks ({result.seconds:.0f} s) into "
                            f"{result.path}.")

    def _blockwise_stopped(self, partial) -> None:
        if self.live is not None:
            self.live.poll()
            self.status.setText(f"Stopped; what was written is in {self.live.path}.partial.")

    def _on_progress(self, event) -> None:
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
        if self._origin is not None:  # a visible-region crop
            translate = translate + np.asarray(self._origin[:n], float) * scale
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
        self.model_box.select_none()
        self._show_result(denoised)

    def _show_result(self, denoised) -> None:
        name = f"{self._source.name if self._source is not None else 'image'} denoised"
        name += " (visible region)" if self._origin is not None else ""
        self.viewer.add_image(denoised, name=name, metadata={"cellsight_owned": True},
                              **self._placement())
        if self.model is not None and not hasattr(self.model, "save"):
            self.status.setText(f"Denoised image added as {name!r} (package "
                                f"{self.model.package.descr.name}).")
            self.refresh_buttons()
            return
        steps = self.model.meta.get("steps_done", "?") if self.model else "?"
        self.status.setText(f"Denoised image added as {name!r} (model: {steps} steps).")
        self.refresh_buttons()

    def _stopped(self, partial) -> None:
        if isinstance(partial, tuple):  # stopped just after it finished: a complete run
            self._done(partial)
            return
        if isinstance(partial, StoppedRun):  # another model is current: it stays so
            steps = partial.model.meta.get("steps_done", "?")
            current = self.model.meta.get("steps_done", "?") if self.model else "?"
            self.model_box.add_source(partial.folder)
            self.status.setText(
                f"Stopped at step {steps}: the current model ({current} steps) stays active "
                f"and its files are untouched. The stopped model was saved to "
                f"{partial.folder}; choose it under Model to use it."
            )
        elif partial is not None:  # the first model of the session: nothing is replaced
            self.model = partial
            self.model_box.select_none()
            self.status.setText(
                f"Stopped; the model after {partial.meta.get('steps_done', '?')} steps is kept. "
                "Apply model denoises with it; Save model… writes it."
            )
        self.refresh_buttons()

    # --- model files ---------------------------------------------------------------
    def load_model(self, folder) -> None:
        """Load an N2V model folder or a package and make it the current model.

        A package from another tool whose network is Python code runs only if the user
        allows it (a dialog naming the file and its sha256); No loads nothing.
        """
        from cellsight.gui.toolkit.models import foreign_package, load_package_asking

        if foreign_package(folder):
            model = load_package_asking(self, folder, ("image", "raw"))
            if model is None:
                self.status.setText(f"{folder} not loaded: its code was not allowed to run.")
                return
            self.model = model
            self.model_box.set_source(folder)
            self.status.setText(f"Loaded the package {model.package.descr.name} "
                                f"({model.weights} weights); Apply model denoises with it.")
            self.refresh_buttons()
            return
        self.model = N2VModel.load(folder)
        self.model_box.set_source(folder)
        self.status.setText(f"Loaded N2V model from {folder}.")
        self.refresh_buttons()
