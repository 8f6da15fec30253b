"""Dock widget "Track cells": link a segmented time-lapse, show tracks and lineage, edit.

Track runs :func:`cellsight.core.tracking.track` through ``start_job``; the result goes
to NEW layers (a Labels layer relabelled by track id and a Tracks layer) and to the
lineage tree dock. Clicking a cell in the tracked labels selects it (its node lights
up in the tree); Ctrl+click a second cell links the first to it. The edit buttons act
on the last two selected cells through :class:`TrackEditor` (undo / redo included),
and the labels, the Tracks layer and the tree are refreshed after every edit.
"""

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cellsight.config.tracking import TrackingConfig
from cellsight.core.tracking import track
from cellsight.core.tracking.editing import TrackEditor
from cellsight.gui.layer_utils import layers_of_type
from cellsight.gui.lineage_view import LineageView
from cellsight.gui.workers import start_job

NO_IMAGE = "(none)"


def run_tracking(labels, image, config, progress, should_stop):
    """The job: track (core), in the worker thread."""
    return track(labels, image, config, progress=progress, should_stop=should_stop)


class TrackingWidget(QWidget):
    """Track cells in a labels time series and correct the result."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.job = None
        self.editor: TrackEditor | None = None
        self.labels_layer = None
        self.tracks_layer = None
        self.selection: list[int] = []
        self.lineage = LineageView()
        self.lineage.node_clicked.connect(self.go_to_node)
        self._lineage_dock = None
        self._build()
        self.viewer.layers.events.inserted.connect(self._sync_layers)
        self.viewer.layers.events.removed.connect(self._sync_layers)
        self._sync_layers()

    # --- layout -----------------------------------------------------------------
    def _build(self) -> None:
        self.labels_box, self.image_box = QComboBox(), QComboBox()
        self.solver_box = QComboBox()
        self.solver_box.addItems(["ilp", "greedy"])
        self.distance_spin = QDoubleSpinBox()
        self.distance_spin.setRange(0.0, 1e5)
        self.distance_spin.setSpecialValueText("auto")
        self.gap_spin = QSpinBox()
        self.gap_spin.setRange(0, 10)
        self.gap_spin.setValue(TrackingConfig().max_gap)
        self.division_check = QCheckBox("allow divisions")
        self.division_check.setChecked(True)
        form = QFormLayout()
        form.addRow("Labels", self.labels_box)
        form.addRow("Image (optional)", self.image_box)
        for name, box in (("solver", self.solver_box), ("max_distance", self.distance_spin),
                          ("max_gap", self.gap_spin)):
            title, tip = TrackingConfig.field_help(name)
            box.setToolTip(tip)
            form.addRow(title, box)
        form.addRow("", self.division_check)
        self.track_button = QPushButton("Track")
        self.track_button.clicked.connect(self.start_tracking)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel("")
        self.selection_label = QLabel("Click a cell in the tracked labels to select it.")
        self.selection_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.track_button)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.status)
        layout.addWidget(self.selection_label)
        layout.addLayout(self._edit_buttons())
        layout.addStretch(1)

    def _edit_buttons(self) -> QGridLayout:
        grid = QGridLayout()
        self.buttons = {}
        actions = [
            ("Break link", self.break_link),
            ("Link", self.link_selected),
            ("Mark division", self.mark_division),
            ("Unmark division", self.unmark_division),
            ("Delete track", self.delete_track),
            ("Undo", self.undo),
            ("Redo", self.redo),
        ]
        for k, (text, slot) in enumerate(actions):
            button = QPushButton(text)
            button.clicked.connect(slot)
            button.setEnabled(False)
            grid.addWidget(button, k // 2, k % 2)
            self.buttons[text] = button
        return grid

    def _sync_layers(self, event=None) -> None:
        for box, kind, extra in ((self.labels_box, "Labels", []),
                                 (self.image_box, "Image", [NO_IMAGE])):
            current = box.currentText()
            box.clear()
            box.addItems(extra + [layer.name for layer in layers_of_type(self.viewer, kind)])
            if current:
                box.setCurrentText(current)

    # --- tracking ---------------------------------------------------------------
    def config(self) -> TrackingConfig:
        """The parameters currently set in the widget."""
        return TrackingConfig(
            solver=self.solver_box.currentText(),
            max_distance=self.distance_spin.value(),
            max_gap=self.gap_spin.value(),
            divisions=self.division_check.isChecked(),
        )

    def start_tracking(self):
        """Read the chosen layers (main thread) and track them in a worker thread."""
        name = self.labels_box.currentText()
        if not name or name not in self.viewer.layers:
            show_error("Choose a Labels layer with a time series to track.")
            return None
        labels = np.asarray(self.viewer.layers[name].data)
        image_name = self.image_box.currentText()
        image = None
        if image_name and image_name != NO_IMAGE and image_name in self.viewer.layers:
            image = np.asarray(self.viewer.layers[image_name].data)
        self._source = (name, labels)
        self.track_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("Tracking ...")
        self.job = start_job(
            run_tracking, labels, image, self.config(), name="Tracking",
            on_result=self._show_result, on_finished=self._finished,
            on_error=lambda exc: self.status.setText(f"Failed: {exc}"),
        )
        return self.job

    def cancel(self) -> None:
        """Ask the running job to stop."""
        if self.job is not None:
            self.job.cancel()

    def _finished(self) -> None:
        self.track_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _show_result(self, result) -> None:
        name, labels = self._source
        self.editor = TrackEditor(result, labels)
        self.editor.listeners.append(self._on_edit)
        scale = self.viewer.layers[name].scale if name in self.viewer.layers else None
        self.labels_layer = self.viewer.add_labels(
            result.labels, name=f"{name} tracked", scale=scale,
            metadata={"cellsight_owned": True},
        )
        self.labels_layer.mouse_drag_callbacks.append(self._on_click)
        data, graph, features = self.editor.napari_tracks()
        self.tracks_layer = self.viewer.add_tracks(
            data, graph=graph, features=features, name=f"{name} tracks", scale=scale,
            metadata={"cellsight_owned": True},
        )
        self.lineage.set_editor(self.editor)
        if self._lineage_dock is None and hasattr(self.viewer, "window"):
            self._lineage_dock = self.viewer.window.add_dock_widget(
                self.lineage, name="Lineage tree", area="bottom"
            )
        for button in self.buttons.values():
            button.setEnabled(True)
        self._update_undo_buttons()
        n_div = sum(1 for kids in result.children().values() if len(kids) == 2)
        self.status.setText(f"{result.n_tracks} tracks, {n_div} divisions.")

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
        if self.selection and self.editor.result.node_track[self.selection[-1]] > 0:
            self.select(self.selection.pop())
        self._update_undo_buttons()
        show_info(f"{event.action}: {len(event.nodes)} cells changed track.")

    def _update_undo_buttons(self) -> None:
        self.buttons["Undo"].setEnabled(self.editor.can_undo)
        self.buttons["Redo"].setEnabled(self.editor.can_redo)
