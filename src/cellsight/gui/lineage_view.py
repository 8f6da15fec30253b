"""Lineage tree view: division trees, time on the horizontal axis, linked to the viewer.

Each track is a horizontal line from its first to its last frame, in the track's colour
in the Tracks layer, with its id at its start; a division joins the mother's last point
to each daughter's first. A time axis (frames) runs along the top. The wheel zooms
(around the mouse), dragging pans. Every cell is a dot: clicking one emits
:attr:`LineageView.node_clicked` with its detection row; :meth:`LineageView.highlight`
marks the track of a cell selected elsewhere.
"""

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QBrush, QColor, QFont, QPainter, QPen
from qtpy.QtWidgets import QGraphicsScene, QGraphicsView

from cellsight.core.tracking.lineage import tree_lanes  # the layout lives in core

X_STEP = 12.0  # pixels per frame
Y_STEP = 16.0  # pixels per lane
DOT = 6.0
NORMAL = QColor(160, 160, 160)
HIGHLIGHT = QColor(255, 200, 0)
DIVISION = QColor(90, 160, 255)
AXIS = QColor(200, 200, 200)
TICKS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def tick_step(frames: int, x_step: float = X_STEP, min_gap: float = 40.0) -> int:
    """Frames between labelled ticks of the time axis: labels at least ``min_gap`` px apart."""
    for step in TICKS:
        if step * x_step >= min_gap or step >= frames:
            return step
    return TICKS[-1]


class LineageView(QGraphicsView):
    """QGraphicsView of the lineage trees of a :class:`TrackEditor`'s result."""

    node_clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setToolTip("Lineage tree: click a cell to go there; wheel zooms, drag pans.")
        self.dots: dict[int, object] = {}  # detection row -> ellipse item
        self.colors: dict[int, QColor] = {}  # track id -> colour (as in the Tracks layer)
        self.labels: dict[int, object] = {}  # track id -> id text item
        self.zoom = 1.0
        self.positions: dict[int, tuple[float, float]] = {}
        self.highlighted: int | None = None
        self._editor = None

    def set_track_colors(self, colors: dict[int, tuple]) -> None:
        """Colour each track like the Tracks layer (track id -> RGBA in 0..1) and redraw."""
        self.colors = {int(t): QColor.fromRgbF(*map(float, c[:4])) for t, c in colors.items()}
        self.rebuild()

    def _color(self, tid: int) -> QColor:
        return self.colors.get(int(tid), NORMAL)

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt override)
        """Zoom around the mouse."""
        steps = event.angleDelta().y() / 120.0
        self.zoom_by(1.25 ** steps)
        event.accept()

    def zoom_by(self, factor: float) -> None:
        """Zoom in (> 1) or out (< 1), within 0.05x to 20x."""
        new = min(max(self.zoom * factor, 0.05), 20.0)
        self.scale(new / self.zoom, new / self.zoom)
        self.zoom = new

    def set_editor(self, editor) -> None:
        """Show ``editor``'s result and redraw after each of its edits."""
        self._editor = editor
        editor.listeners.append(lambda event: self.rebuild())
        self.rebuild()

    def rebuild(self) -> None:
        """Redraw every tree from the editor's current state."""
        scene = self.scene()
        scene.clear()
        self.dots.clear()
        self.positions.clear()
        self.labels.clear()
        if self._editor is None:
            return
        result = self._editor.result
        det, node_track = result.detections, result.node_track
        alive = np.flatnonzero(node_track > 0)
        if alive.size == 0:
            return
        tids = np.unique(node_track[alive]).tolist()
        starts = {t: int(det.t[alive][node_track[alive] == t].min()) for t in tids}
        graph = {k: v for k, v in self._editor.napari_tracks()[1].items()}
        lanes = tree_lanes(tids, graph, starts)
        self._draw_axis(int(det.t[alive].min()), int(det.t[alive].max()), lanes)
        self._draw_links(result, lanes)
        font = QFont()
        font.setPointSizeF(7.0)
        for tid in tids:
            text = scene.addSimpleText(str(tid), font)
            text.setBrush(QBrush(self._color(tid)))
            rect = text.boundingRect()
            text.setPos(starts[tid] * X_STEP - DOT - rect.width(),
                        lanes[tid] * Y_STEP - rect.height() / 2)
            self.labels[tid] = text
        for n in alive.tolist():
            x, y = det.t[n] * X_STEP, lanes[int(node_track[n])] * Y_STEP
            color = self._color(node_track[n])
            item = scene.addEllipse(x - DOT / 2, y - DOT / 2, DOT, DOT, QPen(color),
                                    QBrush(color))
            item.setData(0, n)
            item.setToolTip(f"track {node_track[n]}, frame {det.t[n]}")
            self.dots[n] = item
            self.positions[n] = (x, y)
        if self.highlighted is not None and self.highlighted in self.dots:
            self.highlight(self.highlighted)

    def _draw_axis(self, first: int, last: int, lanes) -> None:
        """Frame ruler above the trees: a tick every frame, a label every few."""
        scene = self.scene()
        top = min(lanes.values()) * Y_STEP - Y_STEP
        pen = QPen(AXIS, 1)
        scene.addLine(first * X_STEP, top, last * X_STEP, top, pen)
        step = tick_step(last - first + 1)
        font = QFont()
        font.setPointSizeF(7.0)
        for t in range(first, last + 1):
            labelled = t % step == 0
            scene.addLine(t * X_STEP, top, t * X_STEP, top - (5 if labelled else 2), pen)
            if labelled:
                text = scene.addSimpleText(str(t), font)
                text.setBrush(QBrush(AXIS))
                rect = text.boundingRect()
                text.setPos(t * X_STEP - rect.width() / 2, top - 6 - rect.height())
        title = scene.addSimpleText("frame", font)
        title.setBrush(QBrush(AXIS))
        title.setPos(first * X_STEP - title.boundingRect().width() - 2 * DOT,
                     top - 6 - title.boundingRect().height())

    def _draw_links(self, result, lanes) -> None:
        det, node_track = result.detections, result.node_track
        scene = self.scene()
        for child in np.flatnonzero((result.parent >= 0) & (node_track > 0)).tolist():
            mother = int(result.parent[child])
            if node_track[mother] <= 0:
                continue
            division = node_track[mother] != node_track[child]
            color = self._color(node_track[child]) if self.colors else (
                DIVISION if division else NORMAL)
            pen = QPen(color, 2 if division else 1.5)
            x0, y0 = det.t[mother] * X_STEP, lanes[int(node_track[mother])] * Y_STEP
            x1, y1 = det.t[child] * X_STEP, lanes[int(node_track[child])] * Y_STEP
            if division:
                scene.addLine(x0, y0, x0, y1, pen)
                scene.addLine(x0, y1, x1, y1, pen)
            else:
                scene.addLine(x0, y0, x1, y1, pen)

    def highlight(self, node: int | None) -> None:
        """Mark the track of detection ``node`` (None clears) and scroll to the node."""
        if self._editor is not None:
            nt = self._editor.result.node_track
            for n, item in self.dots.items():
                color = self._color(nt[n])
                item.setBrush(QBrush(color))
                item.setPen(QPen(color))
        self.highlighted = node
        if node is None or node not in self.dots or self._editor is None:
            return
        nt = self._editor.result.node_track
        for n in np.flatnonzero(nt == nt[node]).tolist():
            if n in self.dots:
                self.dots[n].setBrush(QBrush(HIGHLIGHT))
        self.dots[node].setPen(QPen(Qt.GlobalColor.red, 2))
        self.ensureVisible(self.dots[node])

    def node_at(self, pos) -> int | None:
        """Detection row of the dot under a view position, if any."""
        for item in self.items(pos):
            value = item.data(0)
            if value is not None:
                return int(value)
        return None

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        """Emit :attr:`node_clicked` for a click on a dot; otherwise pan as usual."""
        pos = event.position().toPoint() if hasattr(event, "position") else event.pos()
        node = self.node_at(pos)
        if node is not None and event.button() == Qt.MouseButton.LeftButton:
            self.node_clicked.emit(node)
            event.accept()
            return
        super().mousePressEvent(event)
