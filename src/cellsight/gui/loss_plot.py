"""A small live plot of training and validation loss (matplotlib in Qt)."""

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import QTimer

REDRAW_MS = 250


class LossPlot(FigureCanvasQTAgg):
    """Training loss per step and validation loss per check; redraws at most 4x a second."""

    def __init__(self):
        figure = Figure(figsize=(3.2, 2.0), tight_layout=True)
        super().__init__(figure)
        self.ax = figure.add_subplot(111)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.val_steps: list[int] = []
        self.val_losses: list[float] = []
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw_if_dirty)
        self._timer.start()
        self.setMinimumHeight(150)
        self._redraw()

    def clear(self) -> None:
        """Forget all points (a new training run)."""
        self.steps.clear()
        self.losses.clear()
        self.val_steps.clear()
        self.val_losses.clear()
        self._dirty = True

    def add(self, step: int, values: dict) -> None:
        """Record the ``loss`` / ``val_loss`` of one progress event (cheap; drawn later)."""
        if values.get("val_loss") is not None:
            self.val_steps.append(step)
            self.val_losses.append(float(values["val_loss"]))
        elif values.get("loss") is not None:
            self.steps.append(step)
            self.losses.append(float(values["loss"]))
        self._dirty = True

    def _redraw_if_dirty(self) -> None:
        if self._dirty:
            self._redraw()

    def _redraw(self) -> None:
        self._dirty = False
        ax = self.ax
        ax.clear()
        ax.plot(self.steps, self.losses, lw=1, label="training")
        ax.plot(self.val_steps, self.val_losses, "o-", ms=3, lw=1.5, label="validation")
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        ax.tick_params(labelsize=7)
        if self.steps or self.val_steps:
            ax.legend(fontsize=7, loc="upper right")
        self.draw_idle()
