"""Dock widget "Track cells": link a segmented time-lapse, show tracks and lineage, edit.

Track runs :func:`cellsight.core.tracking.track` through ``start_job``; the result goes
to NEW layers (a Labels layer relabelled by track id and a Tracks layer) and to the
lineage tree dock. Clicking a cell in the tracked labels selects it (its node lights
up in the tree); Ctrl+click a second cell links the first to it. The edit buttons act
on the last two selected cells through :class:`TrackEditor` (undo / redo included),
and the labels, the Tracks layer and the tree are refreshed after every edit.
Export writes the current (edited) tracks as a CTC folder, GEFF or CSV, in the worker.
"""

from dataclasses import replace
from pathlib import Path

import napari
import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from cellsight.config.tracking import TrackingConfig
from cellsight.core.tracking import track
from cellsight.core.tracking.editing import TrackEditor
from cellsight.core.tracking.export import export_tracks
from cellsight.gui.layer_utils import pixel_size
from cellsight.gui.lineage_view import LineageView
from cellsight.gui.toolkit import (
    ConfigForm,
    JobMixin,
    button_grid,
    form,
    layer_chooser,
    time_series_labels,
)
from cellsight.gui.tracks_export import TracksExportPanel

FIELDS = ("solver", "max_distance", "max_gap", "divisions")
FORM_OPTIONS = {"max_distance": {"special": "auto", "suffix": " px"}}
EDIT_ACTIONS = ("Break link", "Link", "Mark division", "Unmark division", "Delete track",
                "Undo", "Redo")
EDIT_TIPS = (
    "Cut the selected cell's track before the selected cell (it starts a new track).",
    "Link the two selected cells (Ctrl+click the second in the tracked labels).",
    "Make the selected cell's track divide into the two selected daughters.",
    "Remove the division at the selected cell: its daughters start their own tracks.",
    "Delete the selected cell's whole track.",
    "Undo the last track edit.",
    "Redo the last undone track edit.",
)


def run_tracking(labels, image, config, progress, should_stop):
    """The job: track (core), in the worker thread."""
    return track(labels, image, config, progress=progress, should_stop=should_stop)


class TrackingWidget(JobMixin, QWidget):
    """Track cells in a labels time series and correct the result."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.editor: TrackEditor | None = None
        self.labels_layer = None
        self.tracks_layer = None
        self.selection: list[int] = []
        self.lineage = LineageView()
        self.lineage.node_clicked.connect(self.go_to_node)
        self._lineage_dock = None
        self.init_jobs(napari_viewer, stop_text="Cancel")
        self._build()

    # --- layout -----------------------------------------------------------------
    def _build(self) -> None:
        self.labels_box = layer_chooser(self.viewer, napari.layers.Labels,
                                        usable=time_series_labels)
        self.image_box = layer_chooser(self.viewer, napari.layers.Image, optional=True)
        self.form = ConfigForm(TrackingConfig(), FIELDS, FORM_OPTIONS)
        grid, self.buttons = button_grid([("Track", self.start_tracking,
                                           "Link the labels of every frame into tracks "
                                           "(with divisions) in a worker.")], columns=1)
        self.track_button = self.buttons.pop("Track")
        self.selection_label = QLabel("Click a cell in the tracked labels to select it.")
        self.selection_label.setWordWrap(True)
        edits, self.buttons = button_grid(
            zip(EDIT_ACTIONS, self._edit_slots(), EDIT_TIPS, strict=True), 2)
        for button in self.buttons.values():
            button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addLayout(form(("Labels", self.labels_box), ("Image (optional)", self.image_box)))
        layout.addLayout(self.form)
        layout.addLayout(grid)
        for widget in (self.stop_button, self.progress_bar, self.status, self.selection_label):
            layout.addWidget(widget)
        layout.addLayout(edits)
        self.export_panel = TracksExportPanel(self.export_to, self._export_name)
        layout.addWidget(self.export_panel)
        layout.addStretch(1)
        self.busy_disables(self.track_button)
        self.labels_box.changed.connect(self._follow_units)
        self._follow_units()

    def _follow_units(self, *args) -> None:
        """Max distance in µm when the labels have a physical pixel size, else in pixels."""
        self.form.set_unit("max_distance", pixel_size(self.labels_box.value))

    def update_buttons(self, running: bool) -> None:
        """Export needs a result and no running job."""
        self.export_panel.button.setEnabled(self.editor is not None and not running)

    def _edit_slots(self) -> tuple:
        return (self.break_link, self.link_selected, self.mark_division, self.unmark_division,
                self.delete_track, self.undo, self.redo)

    # --- tracking ---------------------------------------------------------------
    def config(self) -> TrackingConfig:
        """The parameters currently set in the widget."""
        return self.form.config()

    def start_tracking(self):
        """Read the chosen layers (main thread) and track them in a worker thread."""
        layer = self.labels_box.value
        if layer is None:
            show_error("Choose a Labels layer with a time series to track.")
            return None
        labels = np.asarray(layer.data)
        image = self.image_box.value
        image = None if image is None else np.asarray(image.data)
        self._source = (layer.name, labels)
        return self.run_job(run_tracking, labels, image, self.config(), name="Tracking",
                            status="Tracking …", on_result=self._show_result)

    def cancel(self) -> None:
        """Ask the running job to stop."""
        self.stop()

    def _show_result(self, result) -> None:
        name, labels = self._source
        self.editor = TrackEditor(result, labels)
        self.editor.listeners.append(self._on_edit)
        source = self.viewer.layers[name] if name in self.viewer.layers else None
        scale = source.scale if source is not None else None
        units = {"units": source.units} if source is not None else {}  # microns stay microns
        self.labels_layer = self.viewer.add_labels(
            result.labels, name=f"{name} tracked", scale=scale,
            metadata={"cellsight_owned": True}, **units,
        )
        self.labels_layer.mouse_drag_callbacks.append(self._on_click)
        data, graph, features = self.editor.napari_tracks()
        self.tracks_layer = self.viewer.add_tracks(
            data, graph=graph, features=features, name=f"{name} tracks", scale=scale,
            metadata={"cellsight_owned": True}, **units,
        )
        self.lineage.set_editor(self.editor)
        self._color_tree()
        if self._lineage_dock is None and hasattr(self.viewer, "window"):
            self._lineage_dock = self.viewer.window.add_dock_widget(
                self.lineage, name="Lineage tree", area="bottom"
            )
            self._size_tree_dock()
        for button in self.buttons.values():
            button.setEnabled(True)
        self._update_undo_buttons()
        self.refresh_buttons()  # Export (the job's end may have been handled already)
        n_div = sum(1 for kids in result.children().values() if len(kids) == 2)
        self.status.setText(f"{result.n_tracks} tracks, {n_div} divisions.")

    def _color_tree(self) -> None:
        """Give the tree the Tracks layer's colours (one per track id)."""
        layer = self.tracks_layer
        if layer is None or not len(layer.data):
            return
        ids, first = np.unique(np.asarray(layer.data)[:, 0].astype(int), return_index=True)
        colors = np.asarray(layer.track_colors)
        self.lineage.set_track_colors({int(t): colors[i] for t, i in zip(ids, first,
                                                                          strict=True)})

    def _size_tree_dock(self) -> None:
        """Give the lineage dock a third of the window's height."""
        window = getattr(self.viewer.window, "_qt_window", None)
        if window is None:
            return
        from qtpy.QtCore import Qt

        dock = getattr(self._lineage_dock, "__wrapped__", self._lineage_dock)  # napari proxy
        window = getattr(window, "__wrapped__", window)
        window.resizeDocks([dock], [max(200, window.height() // 3)], Qt.Orientation.Vertical)

    # --- selection --------------------------------------------------------------
    def _on_click(self, layer, event):
        if self.editor is None or layer.mode != "pan_zoom":
            return
        value = layer.get_value(event.position, world=True)
        if not value:
            return
        t = int(self.viewer.dims.current_step[0])
        node = self.editor.node_at(t, int(value))
        if node is None:
            return
        previous = self.selection[-1] if self.selection else None
        self.select(node)
        if "Control" in event.modifiers and previous is not None:
            self._edit(self.editor.link, *sorted((previous, node), key=self._frame))

    def _frame(self, node: int) -> int:
        return int(self.editor.result.detections.t[node])

    def select(self, node: int) -> None:
        """Make ``node`` the latest selected cell: label, tree node and status follow."""
        self.selection = (self.selection + [node])[-2:]
        tid = int(self.editor.result.node_track[node])
        if self.labels_layer is not None:
            self.labels_layer.selected_label = tid
        self.lineage.highlight(node)
        names = [f"track {self.editor.result.node_track[n]} @ frame {self._frame(n)}"
                 for n in self.selection]
        self.selection_label.setText("Selected: " + " -> ".join(names))

    def go_to_node(self, node: int) -> None:
        """Select ``node``, move the viewer to its frame and centre it (tree click)."""
        self.select(node)
        det = self.editor.result.detections
        step = list(self.viewer.dims.current_step)
        step[0] = int(det.t[node])
        self.viewer.dims.current_step = tuple(step)
        scale = np.asarray(self.labels_layer.scale[1:]) if self.labels_layer else 1.0
        centre = det.centroid[node] * scale
        camera = self.viewer.scene.camera if hasattr(self.viewer, "scene") else self.viewer.camera
        camera.center = tuple(float(c) for c in centre[-2:])

    # --- edits ------------------------------------------------------------------
    def _pair(self):
        if len(self.selection) < 2:
            raise ValueError("Select two cells first (click one, then the other).")
        return sorted(self.selection[-2:], key=self._frame)

    def _edit(self, method, *args):
        try:
            method(*args)
        except ValueError as exc:
            show_error(str(exc))

    def _last(self) -> int:
        if not self.selection:
            raise ValueError("Select a cell first.")
        return self.selection[-1]

    def break_link(self):
        """Cut the link into the selected cell."""
        self._edit(lambda: self.editor.break_link(self._last()))

    def link_selected(self):
        """Link the earlier selected cell to the later one."""
        self._edit(lambda: self.editor.link(*self._pair()))

    def mark_division(self):
        """Make the later selected cell a second daughter of the earlier one."""
        self._edit(lambda: self.editor.mark_division(*self._pair()))

    def unmark_division(self):
        """Remove the division of the selected mother (or of the selected daughter's mother)."""

        def act():
            node = self._last()
            if len(self.editor.children(node)) != 2:
                node = int(self.editor.result.parent[node])
            self.editor.unmark_division(node)

        self._edit(act)

    def delete_track(self):
        """Delete the selected cell's whole track."""
        self._edit(lambda: self.editor.delete_track(
            int(self.editor.result.node_track[self._last()])))

    def undo(self):
        """Undo the last edit."""
        self._edit(self.editor.undo)

    def redo(self):
        """Redo the last undone edit."""
        self._edit(self.editor.redo)

    def _on_edit(self, event) -> None:
        self.labels_layer.refresh()
        data, graph, features = self.editor.napari_tracks()
        self.tracks_layer.graph = {}
        self.tracks_layer.data = data
        self.tracks_layer.features = features
        self.tracks_layer.graph = graph
        self._color_tree()
        if self.selection and self.editor.result.node_track[self.selection[-1]] > 0:
            self.select(self.selection.pop())
        self._update_undo_buttons()
        show_info(f"{event.action}: {len(event.nodes)} cells changed track.")

    # --- export -----------------------------------------------------------------
    def _export_name(self) -> str:
        return f"{self._source[0]} tracks" if self.editor is not None else "tracks"

    def export_to(self, path, fmt: str, overwrite: bool = False):
        """Write the current (edited) tracks to ``path`` as ``fmt``, in the worker.

        ``fmt`` is ``"ctc"``, ``"geff"`` or ``"csv"``; the files are those
        ``cellsight track`` writes for the same result. An existing target is
        replaced only with ``overwrite`` (the Export button asks first).
        """
        if self.editor is None or self.running:
            show_error("Nothing to export yet (track first)." if self.editor is None
                       else "Wait for the running job to finish, then export.")
            return None
        result = self.editor.result  # a snapshot: edits may go on while the file is written
        snapshot = replace(result, parent=result.parent.copy(),
                           node_track=result.node_track.copy())
        path = Path(path)
        return self.run_job(export_tracks, snapshot, self.editor.input_labels, path, fmt,
                            overwrite, name="Export tracks", status=f"Writing {path.name} …",
                            on_result=self._exported)

    def _exported(self, path) -> None:
        self.status.setText(f"Tracks written to {path}.")
        show_info(f"Tracks written to {path}.")

    def _update_undo_buttons(self) -> None:
        self.buttons["Undo"].setEnabled(self.editor.can_undo)
        self.buttons["Redo"].setEnabled(self.editor.can_redo)
