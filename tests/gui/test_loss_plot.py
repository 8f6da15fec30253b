"""The live loss plot: cheap to update, cleared between runs."""

import time

from cellsight.gui.loss_plot import LossPlot


def _points(curve) -> int:
    x = curve.getData()[0]
    return 0 if x is None else len(x)


def test_points_are_drawn_at_most_twice_a_second_and_cleared(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.show()
    for step in range(1, 2001):
        plot.add(step, {"loss": 1.0 / step})
        if step % 100 == 0:
            plot.add(step, {"val_loss": 1.5 / step})
    assert len(plot.losses) == 2000 and len(plot.val_losses) == 20
    assert _points(plot.train_curve) == 0  # drawn later, by the timer
    qtbot.waitUntil(lambda: _points(plot.train_curve) == 2000, timeout=2000)
    start = time.perf_counter()
    plot._update()
    plot.view.viewport().repaint()
    assert time.perf_counter() - start < 0.5  # matplotlib: 0.35-1 s on 2 busy cores
    plot.clear()
    assert not plot.steps and not plot.losses and not plot.val_steps
    assert _points(plot.train_curve) == 0  # the curves stay, empty
    assert plot.train_curve in plot.view.getPlotItem().listDataItems()
    plot.add(1, {"loss": 0.5})
    qtbot.waitUntil(lambda: _points(plot.train_curve) == 1, timeout=2000)
