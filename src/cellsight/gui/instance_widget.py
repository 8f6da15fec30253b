"""Dock widget "Instance segmentation": separated nuclei from a model, tuned live.

Predict runs the model once
(:func:`cellsight.core.segmentation.instance_model.predict_instance_maps`) and keeps the
foreground and boundary maps; the seed / mask threshold sliders and the minimum size then
re-run only the watershed
(:func:`cellsight.core.segmentation.instance_model.instances_from_maps`), both through
``start_job``. The result goes to a NEW Labels layer, which later threshold changes update
as one undoable edit (Ctrl+Z) while it holds exactly what the dock wrote. Once the user
edited it (paint, fill, erase, the Correct dock), a slider move or a new prediction never
rewrites it: the new result goes to another NEW layer, ``<name> (thresholds 0.40/0.60)``.
Every layer written keeps its labels as predicted in ``metadata["cellsight_prediction"]``,
which the Correct and Fine-tune docks compare the corrections with.

A big layer (multiscale / OME-Zarr, dask, > ~256 MP; :mod:`cellsight.gui.big_data`) runs
:func:`cellsight.core.blocks.instances.segment_instances_blockwise` instead, into a new
``<input>_nuclei.ome.zarr`` shown as a lazy layer; "Visible region only" predicts just
the region shown in the canvas, in memory.
"""

import napari
import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QWidget

from cellsight.config.instances import InstancePostConfig, InstancePredictConfig
from cellsight.core.bmz.run import PackageModel
from cellsight.core.blocks.instances import segment_instances_blockwise
from cellsight.core.segmentation.instance_model import (
    InstanceModel,
    estimate_diameter,
    instances_from_maps,
    predict_instance_maps,
)
from cellsight.gui.big_data import (
    BigDataBox,
    LiveOutput,
    blockwise_source,
    is_big,
    level0,
    load,
    output_path,
    placed,
    run_blockwise,
    visible_crop,
)
from cellsight.gui.layer_utils import (
    PREDICTION_KEY,
    apply_labels_edit,
    owned_layer,
    physical_size,
    pixel_size,
    record_written,
    user_edited,
    watch_user_edits,
)
from cellsight.gui.toolkit import (
    ConfigForm,
    JobMixin,
    ModelChooser,
    advanced,
    button_grid,
    form,
    layer_array,
    layer_chooser,
    layer_mode,
    model_ndim,
    scroll_layout,
    user_layer,
)
from cellsight.gui.toolkit.models import (
    foreign_package,
    load_package_asking,
    model_post,
    start_export,
)
from cellsight.gui.workers import start_job, warm_up_labels, warm_up_training

PREDICT_FIELDS = ("mode", "diameter", "test_time_augmentation", "device")
POST_FIELDS = ("seed_threshold", "mask_threshold", "min_size", "split_by_shape")
FORM_OPTIONS = {
    "mode": {"labels": {"2d": "2D (Y, X)", "3d": "3D (Z, Y, X)", "t": "T (time series)"}},
    "diameter": {"suffix": " px", "special": "auto"},
    "seed_threshold": {"slider": True},
    "mask_threshold": {"slider": True},
}
#: ms to wait after the last slider move before re-running the watershed
DEBOUNCE_MS = 60
#: most changed pixels a threshold update writes as an undoable edit (larger: replaced)
UNDOABLE_PIXELS = 2**22


def load_model(source: str) -> InstanceModel:
    """Load a built-in model by name or a model folder (worker thread)."""
    return InstanceModel.load(source)


def predict_job(model, source, image, config, progress, should_stop):
    """Worker: load the model if needed, then predict the maps.

    Returns ``(model, maps, diameter)``: the diameter (pixels) the image was taken to
    have, estimated by the model when ``config.estimate_diameter`` (0: the model's own
    scale, no rescaling).
    """
    from cellsight.core.bmz.run import PackageModel, predict_package_maps

    model = model if model is not None else load_model(source)
    image = load(image)
    if isinstance(model, PackageModel):  # a bioimage.io package from another tool
        axes = {"2d": "YX", "3d": "ZYX", "t": None}.get(config.mode)
        maps = predict_package_maps(model, image, axes=axes, device=config.device,
                                    progress=progress, should_stop=should_stop)
        return model, maps, 0.0
    if config.estimate_diameter:  # on the first frame of a series, as the CLI does
        first = image[0] if config.mode == "t" else image
        found = estimate_diameter(model, first, config, should_stop=should_stop)
        config = config.model_copy(update={"diameter": round(found, 1),
                                           "estimate_diameter": False})
    maps = predict_instance_maps(model, image, config, progress, should_stop)
    return model, maps, config.diameter


def blockwise_job(model, source, image, config, blocks, out, post, progress, should_stop):
    """Worker: load the model if needed, then segment ``image`` block by block into ``out``."""
    from cellsight.core.bmz.blocks import predict_package_blockwise

    model = model if model is not None else load_model(source)
    if isinstance(model, PackageModel):  # a bioimage.io package from another tool
        result = run_blockwise(predict_package_blockwise, model, image, blocks=blocks, out=out,
                               post=post, device=config.device, progress=progress,
                               should_stop=should_stop)
    else:
        result = run_blockwise(segment_instances_blockwise, model, image, config, blocks=blocks,
                               out=out, post=post, progress=progress, should_stop=should_stop)
    return model, result


def watershed_job(maps, post, progress, should_stop):
    """Worker: the seeded watershed on kept maps (frame by frame for time series)."""
    return instances_from_maps(maps, post, progress, should_stop)


class InstanceWidget(JobMixin, QWidget):
    """Segment separated nuclei with the built-in model or a model folder."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        warm_up_labels()  # showing the first result does not wait for numba
        warm_up_training()  # torch imported before the first job (which then shares cores)
        self.ws_job = None  # the watershed job (self.job is the prediction)
        self._ws_pending = False
        self.model: InstanceModel | None = None
        self._loaded_from: str | None = None  # source of self.model
        self._requested: str | None = None  # source of the running prediction
        self.maps = None
        self._target = None
        self._result_name: str | None = None
        self._base_name = ""  # result name of the prediction, before any thresholds suffix
        self._writing = False  # the dock is writing into its result layer
        self._origin = None  # level-0 origin of a visible-region prediction
        self.live: LiveOutput | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.rerun_watershed)
        self.init_jobs(napari_viewer, "Pick a model and an image, then Predict.")
        self._build()

    # --- layout ---------------------------------------------------------------
    def _build(self) -> None:
        self.model_box = ModelChooser()
        self.model_box.chosen.connect(self._guess_mode)
        self.model_box.chosen.connect(self._show_model_post)
        self.image_box = layer_chooser(self.viewer, napari.layers.Image, prefer=user_layer)
        self.image_box.changed.connect(self._guess_mode)
        self.image_box.changed.connect(self._follow_units)
        self.predict_form = ConfigForm(InstancePredictConfig(), PREDICT_FIELDS, FORM_OPTIONS)
        self.post_form = ConfigForm(InstancePostConfig(), POST_FIELDS, FORM_OPTIONS)
        self.post_form.changed.connect(self._post_changed)
        grid, buttons = button_grid([
            ("Predict", self.start_predict,
             "Run the model on the chosen image; the sliders below then refine the "
             "result without running the model again."),
            ("Export package…", self.start_export,
             "Write the chosen model as a bioimage.io package (.zip)."),
        ], columns=2)
        self.predict_button, self.export_button = buttons["Predict"], buttons["Export package…"]
        grid.addWidget(self.stop_button, 1, 0)
        layout = scroll_layout(self)
        layout.addLayout(form(("Model", self.model_box), ("Image", self.image_box)))
        layout.addLayout(self.predict_form.take_rows(("diameter",)))
        self.diameter_used = QLabel()
        self.diameter_used.setToolTip("The nucleus diameter of the last prediction: the "
                                      "model's estimate when the diameter is 'auto'.")
        self.diameter_used.setVisible(False)
        layout.addWidget(self.diameter_used)
        self.big = BigDataBox()
        self.advanced = advanced(self.predict_form, self.big.widget)
        layout.addWidget(self.advanced)
        layout.addLayout(grid)
        layout.addLayout(self.post_form)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.fit_width()
        self.busy_disables(self.predict_button, self.export_button)
        self._guess_mode()
        self._follow_units()
        self._show_model_post()

    def _show_model_post(self, *args) -> None:
        """Show the chosen model's own watershed settings (before any prediction)."""
        if self.maps is not None:  # sliders already refine a result: leave them be
            return
        post = model_post(self.model_source())
        if post is not None:
            self.post_form.set_values(post)

    def _follow_units(self, *args) -> None:
        """Diameter in µm when the image layer has a physical pixel size, else in pixels."""
        self.predict_form.set_unit("diameter", pixel_size(self.image_box.value))

    def _guess_mode(self, *args) -> None:
        layer = self.image_box.value
        if layer is None:
            return
        source = self.model_source()
        ndim = self.model.config.unet.ndim if (
            self.model is not None and source == self._loaded_from) else model_ndim(source)
        self.predict_form.set_values({"mode": layer_mode(layer, ndim)})

    # --- model choice ------------------------------------------------------------
    def model_source(self) -> str:
        """Built-in name or folder of the chosen model."""
        return self.model_box.source()

    def set_model_folder(self, folder) -> None:
        """Use the instance model in ``folder`` (loaded at the next Predict)."""
        self.model_box.set_source(folder)
        self._guess_mode()

    def start_export(self):
        """Ask for a file and write the chosen model as a bioimage.io package (worker)."""
        source = self.model_source()
        model = self.model if self.model is not None and source == self._loaded_from else None
        if model is None and source:
            if foreign_package(source):
                show_error(f"{source} is already a bioimage.io package (from another tool).")
                return None
            try:
                model = load_model(source)
            except (OSError, ValueError) as exc:
                show_error(f"Cannot load model: {exc}")
                return None
        return start_export(self, model)

    # --- configuration -------------------------------------------------------------
    def predict_config(self) -> InstancePredictConfig:
        """Prediction parameters currently set; diameter "auto" (0) = estimate it."""
        config = self.predict_form.config()
        return config.model_copy(update={"estimate_diameter": config.diameter == 0})

    def post_config(self) -> InstancePostConfig:
        """Watershed parameters currently set."""
        post = self.post_form.config()
        return post.model_copy(update={
            "seed_threshold": round(post.seed_threshold, 3),
            "mask_threshold": round(post.mask_threshold, 3),
        })

    # --- jobs ------------------------------------------------------------------------
    def start_predict(self):
        """Read the image (main thread) and predict its maps in a worker thread."""
        layer = self.image_box.value
        source = self.model_source()
        if layer is None or not source:
            show_error("Choose a model and an Image layer first.")
            return None
        try:
            config = self.predict_config()
            blocks = self.big.blocks()
            crop = visible_crop(self.viewer, layer) if self.big.visible_only else None
        except ValueError as exc:
            show_error(f"Invalid parameters: {exc}")
            return None
        model = self.model if source == self._loaded_from else None
        if model is None and foreign_package(source):  # asks before its code runs
            try:
                model = load_package_asking(self, source, ("instance",))
            except ValueError as exc:
                show_error(f"Cannot load model: {exc}")
                return None
            if model is None:
                self.status.setText(f"{source} not loaded: its code was not allowed to run.")
                return None
        self._target = layer
        self._requested = source
        self._origin = crop.origin if crop is not None else None
        if crop is None and is_big(layer):
            return self._start_blockwise(layer, model, source, config, blocks)
        data = crop if crop is not None else layer_array(layer)
        return self.run_job(
            predict_job, model, source, data, config,
            name="Instance prediction", status="Predicting …", on_result=self._predicted,
        )

    def _start_blockwise(self, layer, model, source, config, blocks):
        out = output_path(layer, "nuclei")
        self.live = LiveOutput(self.viewer, out, "labels", f"{layer.name} nuclei",
                               placed(layer))
        return self.run_job(
            blockwise_job, model, source, blockwise_source(layer), config, blocks, out,
            self.post_config(), name="Blockwise instance segmentation",
            status=f"Segmenting block by block into {out} …", on_progress=self.live.poll,
            on_result=self._blockwise_done, on_cancelled=self._blockwise_stopped,
        )

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
            viewer=self.viewer,
            on_result=self._show_labels,
            on_error=self.job_failed,
            on_finished=self._ws_finished,
        )
        return self.ws_job

    # --- callbacks (main thread) ------------------------------------------------------
    def _post_changed(self, *args) -> None:
        if self.maps is not None:
            self._debounce.start()

    def show_diameter(self, diameter: float) -> None:
        """Show the nucleus diameter the last prediction used (estimated when "auto")."""
        estimated = self.predict_form.values()["diameter"] == 0
        if diameter > 0:
            text = f"{diameter:.1f} px" + physical_size(self._target, diameter) + (
                " (estimated)" if estimated else "")
        else:
            text = "model's own scale" + (" (nothing found to measure)" if estimated else "")
        self.diameter_used.setText(f"Diameter used: {text}")
        self.diameter_used.setVisible(True)

    def _keep_model(self, model) -> None:
        if model is not self.model:
            self.model, self._loaded_from = model, self._requested
            if not isinstance(model, PackageModel):
                self.post_form.set_values(model.config.postprocessing)

    def _blockwise_done(self, result) -> None:
        model, blockwise = result
        self._keep_model(model)
        self.live.finish(blockwise.path)
        if self.live.layer is not None:  # a lazy reference to the file written, not a copy
            self.live.layer.metadata[PREDICTION_KEY] = level0(self.live.layer)
        self.status.setText(
            f"{blockwise.n_objects} objects ({blockwise.blocks} blocks, "
            f"{blockwise.seconds:.0f} s) written to {blockwise.path}."
        )

    def _blockwise_stopped(self, partial) -> None:
        if self.live is not None:
            self.live.poll()
            self.status.setText(f"Stopped; what was written is in {self.live.path}.partial.")

    def _predicted(self, result) -> None:
        model, maps, diameter = result
        self._keep_model(model)
        self.show_diameter(diameter)
        self.maps = maps
        layer = self._target
        region = " (visible region)" if self._origin is not None else ""
        self._result_name = f"{layer.name if layer is not None else 'image'} instances{region}"
        self._base_name = self._result_name
        self.status.setText("Separating nuclei …")
        self.rerun_watershed()

    def _show_labels(self, labels) -> None:
        post = self.post_config()
        layer, kept = self._result_layer(labels)
        where = placed(self._target, self._origin, labels.ndim) if self._target is not None else {}
        if layer is not None:
            self._write(layer, labels)
            layer.translate = where.get("translate", layer.translate)
        else:
            name = self._result_name or "instances"
            if kept is not None:
                name = (f"{self._base_name or kept} (thresholds {post.seed_threshold:.2f}/"
                        f"{post.mask_threshold:.2f})")
            axes = ("T" if self.maps.has_time else "") + "ZYX"[-(labels.ndim - self.maps.has_time):]
            layer = self.viewer.add_labels(
                labels, name=name, metadata={"cellsight_owned": True, "axes": axes}, **where
            )
            self._result_name = layer.name
            watch_user_edits(layer, lambda: self._writing)
        layer.metadata[PREDICTION_KEY] = np.array(labels, copy=True)
        record_written(layer, labels)
        frames = labels if self.maps.has_time else labels[None]
        count = sum(int(f.max()) for f in frames)
        where = f" in {len(frames)} frames" if self.maps.has_time else ""
        text = (f"{count} objects{where} (seed {post.seed_threshold:.2f}, mask "
                f"{post.mask_threshold:.2f}, min size {post.min_size}); move the sliders "
                "to refine.")
        if kept is not None:
            text = f"Your corrected layer {kept!r} is kept; this is {layer.name!r}. {text}"
        self.status.setText(text)

    def _result_layer(self, labels):
        """(the dock's layer to update or None for a new one, name of an edited layer kept)."""
        layer = owned_layer(self.viewer, self._result_name or "")
        if layer is None:
            return None, None
        if user_edited(layer):  # the user's corrections: never rewritten
            layer.metadata["cellsight_owned"] = False
            return None, layer.name
        if layer.data.shape != labels.shape or layer.data.dtype != labels.dtype:
            return None, None
        return layer, None

    def _write(self, layer, labels) -> None:
        """Update the dock's own layer: one undoable edit, or a replacement if huge."""
        self._writing = True
        try:
            if int(np.count_nonzero(np.asarray(layer.data) != labels)) <= UNDOABLE_PIXELS:
                apply_labels_edit(layer, labels)
            else:
                layer.data = labels
        finally:
            self._writing = False

    def _ws_finished(self) -> None:
        self.ws_job = None
        if self._ws_pending:
            self.rerun_watershed()
