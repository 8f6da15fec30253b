"""Review list of the "Fine-tune & review" dock: uncertain objects first, click to go there.

The panel asks its parent for the model, image and labels, runs
:func:`cellsight.core.curation.review.review_objects` through ``start_job`` and lists the
objects by uncertainty. Clicking an item moves the viewer to the object's frame or
slice, centres the camera on it and selects its label.
"""

import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cellsight.core.curation.review import review_objects
from cellsight.core.segmentation.instance_model import InstanceModel
from cellsight.gui.toolkit import JobMixin

#: most objects shown in the list
MAX_ITEMS = 500


def review_job(source, image, labels, config, n_views, progress, should_stop):
    """Worker: load the model and rank the objects by uncertainty."""
    model = InstanceModel.load(source)
    return review_objects(model, image, labels, config, n_views, progress, should_stop)


class ReviewPanel(JobMixin, QWidget):
    """List the most uncertain objects of a Labels layer; click one to jump to it.

    Parameters
    ----------
    viewer : napari.Viewer
    inputs : callable
        Returns ``(model source, image layer, labels layer, InstancePredictConfig)`` or
        raises ValueError naming what is missing.
    """

    def __init__(self, viewer, inputs):
        super().__init__()
        self.viewer = viewer
        self._inputs = inputs
        self.init_jobs(viewer, "Ranks the objects of the Labels layer, most uncertain first.")
        self.items = []
        self._labels_layer = None
        self.views_box = QSpinBox()
        self.views_box.setRange(2, 6)
        self.views_box.setValue(4)
        self.views_box.setToolTip("Flipped / rotated copies the model predicts; more = "
                                  "steadier ranking, slower.")
        self.review_button = QPushButton("Find uncertain objects")
        self.review_button.setToolTip("Rank the objects of the corrected labels by how much "
                                      "the model's flipped / rotated predictions disagree; "
                                      "click a row to go to that object.")
        self.review_button.clicked.connect(self.start_review)
        self.list = QListWidget()
        self.list.itemClicked.connect(self._jump)
        row = QHBoxLayout()
        for widget in (self.review_button, self.stop_button, QLabel("views"), self.views_box):
            row.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        for widget in (self.progress_bar, self.list, self.status):
            layout.addWidget(widget)
        self.busy_disables(self.review_button, self.views_box)

    def start_review(self):
        """Read the layers (main thread) and rank the objects in a worker."""
        try:
            source, image_layer, labels_layer, config = self._inputs()
        except ValueError as exc:
            show_error(f"Review: {exc}")
            return None
        image = np.asarray(image_layer.data, np.float32)
        labels = np.asarray(labels_layer.data)
        self._labels_layer = labels_layer
        return self.run_job(
            review_job, source, image, labels, config, self.views_box.value(),
            name="Review list", status="Measuring uncertainty …", on_result=self.show_items,
        )

    def show_items(self, result) -> None:
        """Fill the list from a :class:`~cellsight.core.curation.review.ReviewResult`."""
        self.items = result.items[:MAX_ITEMS]
        self.list.clear()
        for it in self.items:
            where = f"frame {it.frame}, " if it.frame is not None else ""
            self.list.addItem(f"object {it.label} ({where}uncertainty {it.score:.3f})")
        worst = int(np.argmax(result.frame_scores)) if result.frame_scores else 0
        extra = (f"; most uncertain frame: {worst} ({result.frame_scores[worst]:.3f})"
                 if len(result.frame_scores) > 1 else "")
        self.status.setText(f"{len(result.items)} objects ranked{extra}. Click one to go there.")

    def _jump(self, item) -> None:
        self.jump_to(self.list.row(item))

    def jump_to(self, row: int) -> None:
        """Show object ``row`` of the list: its frame / slice, centred and selected."""
        it, layer = self.items[row], self._labels_layer
        if layer is None or layer not in self.viewer.layers:
            return
        coords = ([it.frame] if it.frame is not None else []) + list(it.centroid)
        world = np.asarray(layer.data_to_world(coords), float)
        offset = self.viewer.dims.ndim - len(world)
        displayed = set(self.viewer.dims.displayed)
        for axis, value in enumerate(world):
            if axis + offset not in displayed:
                self.viewer.dims.set_point(axis + offset, value)
        centre = [world[a - offset] for a in self.viewer.dims.displayed if a >= offset]
        scene = getattr(self.viewer, "scene", None)  # napari >= 0.9; older: viewer.camera
        camera = scene.camera if scene is not None else self.viewer.camera
        camera.center = tuple(centre)
        layer.selected_label = it.label
        self.viewer.layers.selection.active = layer
