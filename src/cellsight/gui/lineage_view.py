"""Lineage tree view: division trees, time on the horizontal axis, linked to the viewer.

Each track is a horizontal line from its first to its last frame; a division joins the
mother's last point to each daughter's first. Every cell is a dot: clicking one emits
:attr:`LineageView.node_clicked` with its detection row; :meth:`LineageView.highlight`
marks the track of a cell selected elsewhere.
"""

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QBrush, QColor, QPainter, QPen
from qtpy.QtWidgets import QGraphicsScene, QGraphicsView

X_STEP = 12.0  # pixels per frame
Y_STEP = 16.0  # pixels per lane
DOT = 6.0
NORMAL = QColor(160, 160, 160)
HIGHLIGHT = QColor(255, 200, 0)
DIVISION = QColor(90, 160, 255)


def tree_lanes(track_ids, graph: dict[int, list[int]], starts: dict[int, int]) -> dict[int, float]:
    """Vertical lane of every track: leaves in depth-first order, mothers between daughters."""
    children: dict[int, list[int]] = {}
    for child, parents in graph.items():
        children.setdefault(parents[0], []).append(child)
    roots = sorted((t for t in track_ids if t not in graph), key=lambda t: (starts[t], t))
    lanes: dict[int, float] = {}
    next_lane = [0.0]

    def place(tid: int) -> float:
        kids = sorted(children.get(tid, []), key=lambda k: (starts.get(k, 0), k))
        kids = [k for k in kids if k in starts]
        if not kids:
            lanes[tid] = next_lane[0]
            next_lane[0] += 1.0
        else:
            lanes[tid] = float(np.mean([place(k) for k in kids]))
        return lanes[tid]

    for root in roots:
        place(root)
    for tid in track_ids:  # tracks in a cycle-free graph are all placed; keep it safe
        if tid not in lanes:
            lanes[tid] = next_lane[0]
            next_lane[0] += 1.0
    return lanes


class LineageView(QGraphicsView):
    """QGraphicsView of the lineage trees of a :class:`TrackEditor`'s result."""

    node_clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.dots: dict[int, object] = {}  # detection row -> ellipse item
        self.positions: dict[int, tuple[float, float]] = {}
        self.highlighted: int | None = None
        self._editor = None

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
        self._draw_links(result, lanes)
        pen = QPen(NORMAL)
        brush = QBrush(NORMAL)
        for n in alive.tolist():
            x, y = det.t[n] * X_STEP, lanes[int(node_track[n])] * Y_STEP
            item = scene.addEllipse(x - DOT / 2, y - DOT / 2, DOT, DOT, pen, brush)
            item.setData(0, n)
            item.setToolTip(f"track {node_track[n]}, frame {det.t[n]}")
            self.dots[n] = item
            self.positions[n] = (x, y)
        if self.highlighted is not None and self.highlighted in self.dots:
            self.highlight(self.highlighted)

    def _draw_links(self, result, lanes) -> None:
        det, node_track = result.detections, result.node_track
        scene = self.scene()
        for child in np.flatnonzero((result.parent >= 0) & (node_track > 0)).tolist():
            mother = int(result.parent[child])
            if node_track[mother] <= 0:
                continue
            division = node_track[mother] != node_track[child]
            pen = QPen(DIVISION if division else NORMAL, 2 if division else 1.5)
            x0, y0 = det.t[mother] * X_STEP, lanes[int(node_track[mother])] * Y_STEP
            x1, y1 = det.t[child] * X_STEP, lanes[int(node_track[child])] * Y_STEP
            if division:
                scene.addLine(x0, y0, x0, y1, pen)
                scene.addLine(x0, y1, x1, y1, pen)
            else:
                scene.addLine(x0, y0, x1, y1, pen)

    def highlight(self, node: int | None) -> None:
        """Mark the track of detection ``node`` (None clears) and scroll to the node."""
        for item in self.dots.values():
            item.setBrush(QBrush(NORMAL))
            item.setPen(QPen(NORMAL))
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
