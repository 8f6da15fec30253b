"""The live loss plot: cheap to update, drawn once per batch of events, cleared between runs."""

import time

from cellsight.gui.loss_plot import LossPlot


def _points(curve) -> int:
    x = curve.getData()[0]
    return 0 if x is None else len(x)


def test_points_are_drawn_by_flush_and_cleared(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.show()
    for step in range(1, 2001):
        plot.add(step, {"loss": 1.0 / step})
        if step % 100 == 0:
            plot.add(step, {"val_loss": 1.5 / step})
    assert len(plot.losses) == 2000 and len(plot.val_losses) == 20
    assert _points(plot.train_curve) == 0  # recorded only: drawn by flush()
    qtbot.wait(50)
    assert _points(plot.train_curve) == 0  # no timer draws behind the job's back
    start = time.perf_counter()
    plot.flush()
    plot.view.viewport().repaint()
    assert time.perf_counter() - start < 0.5  # matplotlib: 0.35-1 s on 2 busy cores
    assert _points(plot.train_curve) == 2000 and _points(plot.val_curve) == 20
    plot.clear()
    assert not plot.steps and not plot.losses and not plot.val_steps
    assert _points(plot.train_curve) == 0  # the curves stay, empty
    assert plot.train_curve in plot.view.getPlotItem().listDataItems()
    plot.add(1, {"loss": 0.5})
    plot.flush()
    assert _points(plot.train_curve) == 1
