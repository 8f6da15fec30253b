"""Click to segment, the part of the "Correct labels" dock that turns clicks into objects.

With the tool on, on the Labels layer being corrected:

* click inside an object: it appears as a new label (or, clicking inside an existing
  label, that label is re-drawn); more clicks refine it;
* Shift+click: a negative click (this is not part of the object);
* Ctrl+drag: a box around the object is the prompt;
* Enter (or "Next object"): the object is done; the next click starts a new one.

Every step is one undoable edit of the layer (Ctrl+Z). On a (Z, Y, X) stack the object
is followed to the neighbouring slices until it ends; on a time series "Follow to next
frame" seeds the next frame from the current mask, keeping the label (the same cell).
The network runs in a worker on a window around the object (core:
:mod:`cellsight.core.curation.clicks`); objects made by clicks differ from the
prediction, so they count as corrected regions for the Fine-tune dock like painted ones.
"""

from __future__ import annotations

import napari
import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QCheckBox, QGroupBox, QLabel, QVBoxLayout

from cellsight.config.clicks import ClickConfig
from cellsight.core.curation import clicks as core
from cellsight.gui.layer_utils import apply_labels_edit
from cellsight.gui.toolkit import button_grid, form, layer_chooser
from cellsight.gui.workers import start_job

HELP = ("Click inside an object to segment it; more clicks refine it (Shift+click: not "
        "part of it; Ctrl+drag: a box around it). Enter or 'Next object' finishes it. "
        "Ctrl+Z undoes every step.")


def _click_step(session, kind, args, follow_stack, index, progress=None, should_stop=None):
    """Worker: one prompt -> the 2D mask (and, on a stack, the followed masks)."""
    if kind == "box":
        mask = session.add_box(*args)
    else:
        mask = session.add(args)
    followed = None
    if follow_stack is not None and mask.any():
        followed = core.follow_stack(follow_stack, index, mask, session.config, session.model,
                                     normalized=True, should_stop=should_stop)
    return mask, followed


def _normalize(image, config, progress=None, should_stop=None):
    model = core.load_click_model(config.model, config.device)
    return model, core.normalize_image(image, model.config)


class ClickTool(QGroupBox):
    """Controls and state of click-to-segment for the Correct labels dock ``owner``."""

    def __init__(self, owner):
        super().__init__("Click to segment")
        self.owner = owner
        self.viewer = owner.viewer
        self.image_box = layer_chooser(self.viewer, napari.layers.Image)
        self.on_box = QCheckBox("Click tool on")
        self.on_box.setToolTip(HELP)
        self.follow_box = QCheckBox("follow through slices (3D)")
        self.follow_box.setChecked(True)
        self.follow_box.setToolTip("On a (Z, Y, X) stack, follow the clicked object to the "
                                   "slices above and below until it ends.")
        self.info = QLabel(HELP)
        self.info.setWordWrap(True)
        grid, self.buttons = button_grid([
            ("Next object (Enter)", self.commit),
            ("Follow to next frame", self.follow_next_frame),
        ], columns=2)
        self.buttons["Next object (Enter)"].setToolTip(
            "Finish the object being clicked; the next click starts a new label.")
        self.buttons["Follow to next frame"].setToolTip(
            "Time series: segment the same cell in the next frame from its current mask "
            "(same label), then show that frame.")
        layout = QVBoxLayout(self)
        layout.addLayout(form(("Image", self.image_box), ("", self.on_box),
                              ("", self.follow_box)))
        layout.addLayout(grid)
        layout.addWidget(self.info)
        self.on_box.toggled.connect(self._toggled)
        self.image_box.changed.connect(lambda *_: self._forget_image())
        self.config = ClickConfig()
        self.session: core.ClickSession | None = None
        self.label = 0  # label id of the object being built
        self.plane: tuple = ()  # leading index (frame / slice) of the object
        self.busy = False
        self._queue: list = []
        self._layer = None
        self._drawn = None  # the pixels the object being built holds in the layer
        self._norm = None  # (key, model, normalised image)
        self.last_job = None

    # --- switching on / off -------------------------------------------------------
    def _toggled(self, on: bool) -> None:
        layer = self.owner.layer
        if on and layer is None:
            show_error("Click to segment: choose a Labels layer first.")
            self.on_box.setChecked(False)
            return
        self._detach()
        if on:
            self._layer = layer
            layer.mode = "pan_zoom"
            layer.mouse_drag_callbacks.append(self._mouse)
            layer.bind_key("Enter", lambda _layer: self.commit(), overwrite=True)
            self.viewer.layers.selection.active = layer
            self.info.setText(HELP)
        self.commit()

    def _detach(self) -> None:
        layer = self._layer
        if layer is not None:
            if self._mouse in layer.mouse_drag_callbacks:
                layer.mouse_drag_callbacks.remove(self._mouse)
            layer.bind_key("Enter", None, overwrite=True)
        self._layer = None

    def _forget_image(self) -> None:
        self._norm = None
        self.commit()

    # --- prompts --------------------------------------------------------------------
    def _mouse(self, layer, event):
        mods = {str(m) for m in event.modifiers}
        if "Alt" in mods or not self.on_box.isChecked():
            return
        start = np.asarray(layer.world_to_data(event.position), float)
        box = "Control" in mods
        if box:
            layer.mouse_pan = False
        dragged = False
        yield
        while event.type == "mouse_move":
            dragged = True
            yield
        end = np.asarray(layer.world_to_data(event.position), float)
        if box:
            layer.mouse_pan = True
        if box and dragged:
            self.prompt("box", start, end)
        elif not dragged:
            self.prompt("click", start, negative="Shift" in mods)

    def prompt(self, kind: str, point, end=None, negative: bool = False) -> None:
        """Add a click (``kind="click"``, data coordinates) or a box (``"box"``, two corners)."""
        self._queue.append((kind, np.asarray(point, float), end, negative))
        if not self.busy:
            self._next()

    def _image_plane(self, layer, lead: tuple):
        image_layer = self.image_box.value
        if image_layer is None:
            raise ValueError("Choose the image to segment (Image layer).")
        image = np.asarray(image_layer.data)
        if image_layer.rgb:
            image = image[..., :3].mean(axis=-1)
        if image.shape[-2:] != layer.data.shape[-2:] or image.ndim != layer.ndim:
            raise ValueError(f"The image {image.shape} and the labels {layer.data.shape} "
                             "differ in shape.")
        return image

    def _next(self) -> None:
        if not self._queue:
            self.busy = False
            return
        layer = self.owner.layer
        kind, point, end, negative = self._queue.pop(0)
        if layer is None:
            self._queue.clear()
            return
        try:
            lead = tuple(int(round(v)) for v in point[:-2])
            for axis, v in enumerate(lead):
                if not 0 <= v < layer.data.shape[axis]:
                    raise ValueError("The click is outside the layer.")
            image = self._image_plane(layer, lead)
        except ValueError as exc:
            show_error(f"Click to segment: {exc}")
            self._queue.clear()
            return
        self.busy = True
        key = (id(self.image_box.value), id(self.image_box.value.data), image.shape)
        if self._norm is None or self._norm[0] != key:
            def normalised(result):
                self._norm = (key, *result)
                self._queue.insert(0, (kind, point, end, negative))
                self._next()

            self.last_job = start_job(_normalize, image, self.config, name="Click to segment",
                                      on_result=normalised, on_error=lambda e: self._failed(),
                                      viewer=self.viewer)
            return
        _, model, norm = self._norm
        if self.session is None or lead != self.plane:
            self._start_object(layer, lead, point, norm, model, kind)
        y, x = point[-2:]
        if kind == "box":
            args = (y, x, *end[-2:])
        else:
            args = core.Click(y, x, positive=not negative)
        stack = None
        if layer.ndim == 3 and not self.owner.has_time and self.follow_box.isChecked():
            stack = norm
        self.last_job = start_job(
            _click_step, self.session, kind, args, stack, lead[0] if lead else 0,
            name="Click to segment", on_result=self._show, on_error=lambda e: self._failed(),
            viewer=self.viewer)

    def _start_object(self, layer, lead, point, norm, model, kind) -> None:
        plane = np.asarray(layer.data[lead]) if lead else np.asarray(layer.data)
        y, x = (int(round(v)) for v in point[-2:])
        y = min(max(y, 0), plane.shape[0] - 1)
        x = min(max(x, 0), plane.shape[1] - 1)
        under = int(plane[y, x]) if kind == "click" else 0
        image = norm[lead] if lead else norm
        if under:  # re-draw the label under the first click
            self.label = under
            previous = plane == under
        else:
            self.label = int(np.asarray(layer.data).max()) + 1
            previous = None
        self.session = core.ClickSession(image, self.config, model, normalized=True,
                                         previous=previous)
        self.plane = lead
        self._drawn = previous  # the pixels this object holds in the layer

    def _failed(self) -> None:
        self._queue.clear()
        self.busy = False

    def _show(self, result) -> None:
        mask, followed = result
        layer = self.owner.layer
        if layer is not None:
            data = np.asarray(layer.data)
            if followed is not None:  # a stack: the object on every slice it reaches
                previous = self._drawn if self._drawn is not None and \
                    self._drawn.ndim == 3 else None
                new = core.paint_object(data, followed, self.label, previous)
                self._drawn = followed
            else:  # one image, or one frame / slice: only that plane is compared
                old = data[self.plane] if self.plane else data
                new = core.paint_object(old, mask, self.label, self._drawn)
                self._drawn = mask
            n = (apply_labels_edit(layer, new) if followed is not None
                 else _write_plane(layer, self.plane, old, new))
            where = f" (slices: {int(followed.any(axis=(1, 2)).sum())})" if \
                followed is not None else ""
            state = f"label {self.label}: {int(mask.sum())} px{where}" if mask.any() else \
                "no object found under the click"
            self.owner.status.setText(f"Click to segment: {state}; {n} pixels changed "
                                      "(Ctrl+Z undoes)")
            self.owner._schedule_refresh()
        self._next()

    # --- buttons --------------------------------------------------------------------
    def commit(self) -> None:
        """Finish the object being built; the next click starts a new one."""
        self.session = None
        self.label = 0
        self.plane = ()
        self._drawn = None

    def follow_next_frame(self) -> None:
        """Segment the current object in the next time point (same label) and show it."""
        layer = self.owner.layer
        if layer is None or self.session is None or not self.owner.has_time or self.busy:
            show_error("Follow to next frame: click an object in a time series first.")
            return
        t = self.plane[0] + 1
        if t >= layer.data.shape[0]:
            show_error("Follow to next frame: this is the last frame.")
            return
        _, model, norm = self._norm
        mask = self.session.mask
        self.busy = True

        def done(new_mask):
            self.busy = False
            if not new_mask.any():
                self.owner.status.setText(f"Follow to next frame: label {self.label} ends "
                                          f"at frame {t - 1}.")
                return
            old = np.asarray(layer.data)[t]
            _write_plane(layer, (t,), old,
                         core.paint_object(old, new_mask, self.label, np.zeros_like(new_mask)))
            label = self.label
            self.session = core.ClickSession(norm[t], self.config, model, normalized=True,
                                             previous=new_mask)
            self.label, self.plane, self._drawn = label, (t,), new_mask
            self.viewer.dims.set_current_step(0, t)
            self.owner.status.setText(f"Follow to next frame: label {label} in frame {t}.")
            self.owner._schedule_refresh()

        def run(progress=None, should_stop=None):
            return core.follow(norm[t], mask, self.config, model, normalized=True)

        self.last_job = start_job(run, name="Follow to next frame", on_result=done,
                                  on_error=lambda e: self._failed(), viewer=self.viewer)


def _write_plane(layer, plane: tuple, old: np.ndarray, new: np.ndarray) -> int:
    """Write the changed pixels of one plane of ``layer`` as ONE undoable edit.

    Unlike :func:`apply_labels_edit` it never copies the whole stack (the GUI thread
    stays quick on long time series).
    """
    changed = np.nonzero(new != old)
    if changed[0].size == 0:
        return 0
    index = tuple(np.full(changed[0].size, p) for p in plane) + changed
    layer.data_setitem(index, new[changed].astype(old.dtype))
    return int(changed[0].size)
