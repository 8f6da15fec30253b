"""A small live plot of training and validation loss (pyqtgraph: cheap on the main thread).

Points are recorded as progress events arrive (a list append); :meth:`LossPlot.flush`,
called once per batch of events (``on_batch`` of the dock's job), pushes them to the two
curves, so the plot is painted in the same window repaint as the progress bar. pyqtgraph
repaints a few hundred points in about a millisecond (matplotlib took 60-1000 ms per
redraw on 2 busy cores); the plot has no grid, whose lines cost ~40 ms a paint.
"""

import numpy as np
import pyqtgraph as pg
from qtpy.QtWidgets import QVBoxLayout, QWidget

class LossPlot(QWidget):
    """Training loss per step and validation loss per check (``view``: the plot)."""

    def __init__(self):
        super().__init__()
        self.view = pg.PlotWidget(background="w")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.val_steps: list[int] = []
        self.val_losses: list[float] = []
        self.setToolTip("Loss during training: lower is better. Validation loss (dots) is "
                        "measured on strokes kept aside; training stops early when it no "
                        "longer improves.")
        item = self.view.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setLabel("bottom", "step")
        item.setLabel("left", "loss")
        # fixed axis sizes and no SI prefixes: new tick labels never change the layout
        # (a relayout costs extra paints of the dock on every update)
        for name, size in (("left", 48), ("bottom", 36)):
            axis = item.getAxis(name)
            axis.enableAutoSIPrefix(False)
            if name == "left":
                axis.setWidth(size)
            else:
                axis.setHeight(size)
        item.addLegend(offset=(-5, 5), labelTextSize="7pt")
        self.train_curve = item.plot([], [], pen=pg.mkPen("#1f77b4", width=1), name="training")
        self.val_curve = item.plot(
            [], [], pen=pg.mkPen("#ff7f0e", width=1.5), symbol="o", symbolSize=5,
            symbolBrush="#ff7f0e", symbolPen=None, name="validation",
        )
        self.setMinimumHeight(150)
        self._dirty = False

    def clear(self) -> None:
        """Forget all points (a new training run)."""
        self.steps.clear()
        self.losses.clear()
        self.val_steps.clear()
        self.val_losses.clear()
        self._update()

    def add(self, step: int, values: dict) -> None:
        """Record the ``loss`` / ``val_loss`` of one progress event (drawn by :meth:`flush`)."""
        if values.get("val_loss") is not None:
            self.val_steps.append(step)
            self.val_losses.append(float(values["val_loss"]))
        elif values.get("loss") is not None:
            self.steps.append(step)
            self.losses.append(float(values["loss"]))
        self._dirty = True

    def flush(self) -> None:
        """Draw the points added since the last call (nothing if none)."""
        if self._dirty:
            self._update()

    def _update(self) -> None:
        self._dirty = False
        self.train_curve.setData(np.asarray(self.steps, float), np.asarray(self.losses, float))
        self.val_curve.setData(np.asarray(self.val_steps, float),
                               np.asarray(self.val_losses, float))
