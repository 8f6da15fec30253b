"""Dock widget "Correct labels": click to segment, merge, split, delete, fill, relabel; edits.

Click to segment (one click per object, refined by more clicks) is in
:mod:`cellsight.gui.click_tool`.

Every tool computes the corrected array with :mod:`cellsight.core.curation.corrections` and writes
only the changed pixels through :func:`apply_labels_edit`, so napari's undo (Ctrl+Z) and
redo work. On a time series (first axis T, from the file's axes or guessed) the tools
change only the time point shown unless "all frames" is checked. Edits are tracked
against the model's prediction (kept in the layer's metadata as ``cellsight_prediction``
by the segmentation docks, or taken here when the dock first sees the layer); the list
follows painting, the tools and undo / redo (throttled).
"""

import napari
import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QCheckBox, QLabel, QLineEdit, QListWidget, QWidget

from cellsight.core.curation import corrections as corr
from cellsight.gui.click_tool import ClickTool
from cellsight.gui.layer_utils import PREDICTION_KEY, add_or_update_labels, apply_labels_edit
from cellsight.gui.toolkit import (
    button_grid,
    form,
    layer_axes_choices,
    layer_chooser,
    scroll_layout,
)

#: ms without a change before the edit list is recomputed (painting stays smooth)
REFRESH_MS = 300
FRAME_TIP = ("On a time series the tools change only the time point shown; check "
             "'all frames' to change every time point.")
TOOLTIPS = {
    "Merge": "Merge the selected ids into one object (the smallest id). " + FRAME_TIP,
    "Split (seed points)": "Split the object under the 'split seeds' points (time point shown).",
    "Split (drawn line)": "Cut the object along the last 'split line' path (time point shown).",
    "Delete": "Delete the selected ids. " + FRAME_TIP,
    "Fill holes": "Fill holes in the selected ids (all objects if none). " + FRAME_TIP,
    "Relabel 1..N": "Renumber the objects 1..N. " + FRAME_TIP,
    "Add selected label": "Add the layer's selected label (the paint colour) to the ids.",
    "Add seed/line layers": "Add a 'split seeds' Points layer and a 'split line' Shapes layer "
                            "for the two split tools.",
    "Set as prediction": "Take the layer as it is now as the model's prediction: later changes "
                         "count as corrections.",
    "Refresh edits": "Recompute the list of edited regions now (it also follows painting and "
                     "undo by itself).",
}
#: keyboard and mouse shortcuts, listed in the dock
SHORTCUTS = ("Shortcuts: Alt+click an object = add its id; Ctrl+Z / Shift+Ctrl+Z = undo / "
             "redo any edit. Click tool: click = object, Shift+click = not part of it, "
             "Ctrl+drag = box, Enter = next object.")


class CorrectionsWidget(QWidget):
    """Correction tools for a Labels layer, with a list and overlay of what was edited."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.layer_box = layer_chooser(napari_viewer, napari.layers.Labels)
        self.ids_edit = QLineEdit()
        self.ids_edit.setPlaceholderText("e.g. 3, 7 (Alt+click objects to add)")
        self.all_frames_box = QCheckBox("all frames")
        self.all_frames_box.setToolTip(
            "Unchecked (default): on a time series, Merge, Delete, Fill holes and Relabel "
            "change only the time point shown. Checked: every time point."
        )
        self.edits_list = QListWidget()
        self.status = QLabel("")
        self._regions: list = []
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_MS)
        self._refresh_timer.timeout.connect(self.refresh_edits)
        self._watched = None
        self._history = None  # the watched layer's undo / redo state last seen
        self._build()

    # --- layout -----------------------------------------------------------------
    def _build(self) -> None:
        grid, self.buttons = button_grid([
            ("Add selected label", self.add_selected_label),
            ("Merge", self.merge),
            ("Split (seed points)", self.split_seeds),
            ("Split (drawn line)", self.split_line),
            ("Delete", self.delete),
            ("Fill holes", self.fill),
            ("Relabel 1..N", self.relabel),
            ("Add seed/line layers", self.add_helper_layers),
            ("Set as prediction", self.snapshot_prediction),
            ("Refresh edits", self.refresh_edits),
        ], columns=2)
        for text, tip in TOOLTIPS.items():
            self.buttons[text].setToolTip(tip)
        self.edits_list.itemClicked.connect(self._jump_to_edit)
        layout = scroll_layout(self)  # fits a 1280x800 window
        layout.addLayout(form(("Labels layer", self.layer_box), ("Selected ids", self.ids_edit),
                              ("", self.all_frames_box)))
        layout.addLayout(grid)
        self.click_tool = ClickTool(self)
        layout.addWidget(self.click_tool)
        layout.addWidget(QLabel("Edited regions (click to go there)"))
        layout.addWidget(self.edits_list)
        layout.addWidget(self.status)
        shortcuts = QLabel(SHORTCUTS)
        shortcuts.setWordWrap(True)
        layout.addWidget(shortcuts)
        self.layer_box.changed.connect(self._watch_layer)
        self._watch_layer(self.layer_box.value)

    def _watch_layer(self, layer) -> None:
        if layer is self._watched:
            return
        if self._watched is not None:
            self._watched.events.paint.disconnect(self._schedule_refresh)
            self._watched.events.data.disconnect(self._schedule_refresh)
            self._watched.events.set_data.disconnect(self._data_set)
            self._watched.mouse_drag_callbacks.remove(self._alt_click)
        self._watched = layer
        if layer is not None:
            layer.events.paint.connect(self._schedule_refresh)
            layer.events.data.connect(self._schedule_refresh)
            layer.events.set_data.connect(self._data_set)  # also sent by undo / redo
            layer.mouse_drag_callbacks.append(self._alt_click)
            self._history = _history_state(layer)
            if PREDICTION_KEY not in layer.metadata:  # the labels before any correction
                layer.metadata[PREDICTION_KEY] = np.array(layer.data, copy=True)
        self.all_frames_box.setEnabled(self.has_time)

    # --- helpers ----------------------------------------------------------------
    @property
    def layer(self):
        """The Labels layer being corrected (None if there is none or it was removed)."""
        watched = self._watched
        return watched if watched is not None and watched in self.viewer.layers else None

    @property
    def has_time(self) -> bool:
        """Whether the layer is a time series (first axis T: the file's axes, or guessed)."""
        layer = self.layer
        if layer is None or layer.ndim < 3:
            return False
        return layer_axes_choices(layer)[0].startswith("T")

    def current_frame(self) -> int | None:
        """Time point the tools change: the one shown, or None (all frames / no time axis)."""
        if not self.has_time or self.all_frames_box.isChecked():
            return None
        return self._shown_frame()

    def _shown_frame(self) -> int:
        """Index along the layer's time axis of the time point shown in the viewer."""
        layer = self.layer
        t = int(round(float(layer.world_to_data(self.viewer.dims.point)[0])))
        return min(max(t, 0), layer.data.shape[0] - 1)

    def selected_ids(self) -> list[int]:
        """Ids typed in the selection field."""
        text = self.ids_edit.text().replace(";", ",")
        try:
            return [int(t) for t in text.replace(",", " ").split()]
        except ValueError as exc:
            raise ValueError(f"Selected ids must be whole numbers; got {text!r}.") from exc

    def _alt_click(self, layer, event):
        if "Alt" not in {str(m) for m in event.modifiers}:
            return
        value = layer.get_value(event.position, world=True)
        if value:
            self._add_id(int(value))

    def _add_id(self, value: int) -> None:
        ids = self.selected_ids()
        if value and value not in ids:
            ids.append(value)
        self.ids_edit.setText(", ".join(map(str, ids)))

    def add_selected_label(self) -> None:
        """Append the layer's currently selected label to the id list."""
        if self.layer is not None:
            self._add_id(int(self.layer.selected_label))

    def _apply(self, fn, *args, per_frame: bool = False, shown_frame: bool = False) -> None:
        """Apply ``fn(labels, *args)`` to the frame shown (or all) as one undoable edit.

        ``per_frame``: with "all frames", run ``fn`` on each time point separately;
        ``shown_frame``: always the time point shown (tools placed by points / lines).
        """
        if self.layer is None:
            show_error("Correct labels: open or select a Labels layer first.")
            return
        frame = self._shown_frame() if shown_frame and self.has_time else self.current_frame()
        try:
            new = corr.edit_frames(np.asarray(self.layer.data), lambda lab: fn(lab, *args),
                                   frame=frame, per_frame=per_frame and self.has_time)
        except ValueError as exc:
            show_error(f"Correct labels: {exc}")
            return
        n = apply_labels_edit(self.layer, new)
        where = f" in frame {frame}" if frame is not None else ""
        self.status.setText(f"{n} pixels changed{where} (Ctrl+Z undoes)")
        self._schedule_refresh()

    def _points_in_frame(self, kind: str, name: str) -> np.ndarray:
        if name not in self.viewer.layers:
            raise ValueError(f"Add the {name!r} layer first (button 'Add seed/line layers').")
        layer = self.viewer.layers[name]
        pts = layer.data if kind == "Points" else (layer.data[-1] if len(layer.data) else [])
        pts = np.round(np.asarray(pts, float)).astype(int)
        if self.has_time and pts.size:
            t = self._shown_frame()
            pts = pts[pts[:, 0] == t][:, 1:] if kind == "Points" else pts[:, 1:]
        return pts

    # --- tools --------------------------------------------------------------------
    def merge(self) -> None:
        """Merge the selected ids."""
        self._apply(lambda lab: corr.merge_labels(lab, self.selected_ids()))

    def delete(self) -> None:
        """Delete the selected ids."""
        self._apply(lambda lab: corr.delete_labels(lab, self.selected_ids()))

    def fill(self) -> None:
        """Fill holes (selected ids, or all objects when none is selected)."""
        self._apply(lambda lab: corr.fill_holes(lab, self.selected_ids() or None),
                    per_frame=True)

    def relabel(self) -> None:
        """Renumber objects 1..N."""
        self._apply(corr.relabel_sequential)

    def split_seeds(self) -> None:
        """Split the object under the seed points of layer 'split seeds'."""
        def run(lab):
            seeds = self._points_in_frame("Points", "split seeds")
            if len(seeds) < 2:
                raise ValueError("Place at least two points in the 'split seeds' layer.")
            target = int(lab[tuple(seeds[0])])
            return corr.split_label(lab, target, seeds)

        self._apply(run, shown_frame=True)

    def split_line(self) -> None:
        """Split the object crossed by the last path of layer 'split line'."""
        def run(lab):
            line = self._points_in_frame("Shapes", "split line")
            if len(line) < 2:
                raise ValueError("Draw a line or path in the 'split line' layer.")
            ids = self.selected_ids()
            target = ids[0] if ids else int(np.bincount(_under_line(lab, line)).argmax())
            return corr.split_by_line(lab, target, line)

        self._apply(run, shown_frame=True)

    def add_helper_layers(self) -> None:
        """Add the 'split seeds' Points and 'split line' Shapes layers."""
        ndim = self.layer.ndim if self.layer is not None else 2
        if "split seeds" not in self.viewer.layers:
            self.viewer.add_points(np.empty((0, ndim)), name="split seeds", size=6,
                                   face_color="yellow", ndim=ndim)
        if "split line" not in self.viewer.layers:
            self.viewer.add_shapes(name="split line", ndim=ndim, edge_color="cyan",
                                   edge_width=2)

    # --- edit tracking ----------------------------------------------------------------
    def snapshot_prediction(self) -> None:
        """Treat the layer's current content as the model prediction to compare with."""
        if self.layer is not None:
            self.layer.metadata[PREDICTION_KEY] = np.array(self.layer.data, copy=True)
            self.refresh_edits()

    def _schedule_refresh(self, event=None) -> None:
        self._refresh_timer.start()  # restarted by every change: one refresh after a pause

    def _data_set(self, event=None) -> None:
        """Refresh when the undo history changed (undo / redo send only ``set_data``)."""
        state = _history_state(self._watched)
        if state != self._history:
            self._history = state
            self._schedule_refresh()

    def refresh_edits(self) -> None:
        """Recompute the edited regions, their list and the overlay layer."""
        layer = self.layer
        if layer is None:
            return
        if PREDICTION_KEY not in layer.metadata:
            layer.metadata[PREDICTION_KEY] = np.array(layer.data, copy=True)
        prediction = layer.metadata[PREDICTION_KEY]
        data = np.asarray(layer.data)
        if prediction.shape != data.shape:
            show_info("Correct labels: the layer changed shape; taking it as the new prediction.")
            layer.metadata[PREDICTION_KEY] = np.array(data, copy=True)
            prediction = layer.metadata[PREDICTION_KEY]
        mask = corr.edited_mask(prediction, data)
        time_axis = self.has_time
        self._regions = corr.edited_regions(prediction, data, time_axis=time_axis)
        self.edits_list.clear()
        for r in self._regions:
            where = ", ".join(f"{s.start}-{s.stop}" for s in r.bbox)
            frame = f"frame {r.frame}: " if r.frame is not None else ""
            self.edits_list.addItem(f"{frame}{where} ({r.n_pixels} px)")
        add_or_update_labels(
            self.viewer, mask.astype(np.uint8), f"edited regions ({layer.name})",
            metadata={"cellsight_overlay": True}, opacity=0.4, scale=layer.scale,
        )
        self.viewer.layers.selection.active = layer

    def _jump_to_edit(self, item) -> None:
        region = self._regions[self.edits_list.row(item)]
        centre = [(s.start + s.stop) / 2 for s in region.bbox]
        if region.frame is not None:
            centre = [region.frame, *centre]
            self.viewer.dims.set_current_step(0, region.frame)
        world = np.asarray(centre) * np.asarray(self.layer.scale)
        self.viewer.camera.center = tuple(world[-self.viewer.dims.ndisplay:])


def _history_state(layer) -> tuple | None:
    """A cheap token of a Labels layer's undo / redo history (changes at every undo)."""
    undo = getattr(layer, "_undo_history", None)
    redo = getattr(layer, "_redo_history", None)
    if undo is None or redo is None:  # napari without these: refresh at every set_data
        return (object(),)
    return (len(undo), len(redo), id(undo[-1]) if undo else None, id(redo[-1]) if redo else None)


def _under_line(labels: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Label ids under a polyline (for picking the object to cut)."""
    from skimage.draw import line as draw_line

    ids = []
    for (r0, c0), (r1, c1) in zip(line[:-1], line[1:], strict=True):
        rr, cc = draw_line(*map(int, (r0, c0, r1, c1)))
        ok = (rr >= 0) & (rr < labels.shape[0]) & (cc >= 0) & (cc < labels.shape[1])
        ids.extend(labels[rr[ok], cc[ok]].tolist())
    ids = np.asarray([i for i in ids if i > 0], np.int64)
    if ids.size == 0:
        raise ValueError("The drawn line does not cross any object.")
    return ids
