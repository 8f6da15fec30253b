"""Never freeze (issue 19 item 2): the main thread keeps ticking while a dock works.

A 10 ms QTimer on the main thread records the time between its ticks (QElapsedTimer)
from pressing the button until the result is shown: one short Semantic training on a
crop of the nuclei sample, and one Instance prediction with the built-in model on the
whole 512x512 sample. The gaps' p99 and maximum are printed (``-s``) and must stay within
:data:`P99_MS` / :data:`MAX_MS`; the idle gaps of the same timer are printed for scale.

The bounds are those of an idle 2-core machine. Sharing the cores with other work (the
rest of the test suite, a training run) stretches every gap, so by default the test fails
only on a freeze (p99 > :data:`FREEZE_P99_MS` or a gap > :data:`FREEZE_MAX_MS`) and reports
the target as xfail with its numbers; ``CELLSIGHT_STALL_STRICT=1`` fails on the target.
"""

import os

import numpy as np
import pytest
from qtpy.QtCore import QElapsedTimer, QTimer

from cellsight.gui.workers import labels_warm, training_warm
from cellsight.plugin.samples import load_sample

P99_MS = 17.0
MAX_MS = 50.0
#: first progress report (step and loss) after pressing Train (issue 19 item 1)
FIRST_FEEDBACK_S = 2.0
#: a freeze on any machine, however busy (the targets above are an idle machine's)
FREEZE_P99_MS = 300.0
FREEZE_MAX_MS = 3000.0


class GapMeter:
    """Records the gaps between the ticks of a 10 ms timer on the main thread.

    :meth:`mark` names the moment a phase ends (start-up until the first progress report,
    the work, showing the result), so the gaps can be told apart by phase.
    """

    def __init__(self, interval_ms: int = 10):
        self.gaps: list[float] = []
        self.marks: dict[str, int] = {}
        self._clock = QElapsedTimer()
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.gaps.append(self._clock.nsecsElapsed() / 1e6)
        self._clock.restart()

    def mark(self, name: str) -> None:
        """The phase ``name`` ends now (the first call counts)."""
        self.marks.setdefault(name, len(self.gaps))

    def phases(self) -> str:
        """p99 / max of the gaps of each marked phase and of what followed the last."""
        bounds = sorted(self.marks.items(), key=lambda kv: kv[1])
        parts, start = [], 1
        for name, end in [*bounds, ("showing the result", len(self.gaps))]:
            gaps = np.asarray(self.gaps[start:end + 1])
            if gaps.size:
                parts.append(f"{name}: p99 {np.percentile(gaps, 99):.0f} / max "
                             f"{gaps.max():.0f} ms ({gaps.size} ticks)")
            start = end + 1
        return "; ".join(parts)

    def __enter__(self):
        self._clock.start()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.stop()

    def summary(self) -> tuple[float, float, int]:
        gaps = np.asarray(self.gaps[1:])  # the first tick includes the start-up
        return float(np.percentile(gaps, 99)), float(gaps.max()), len(gaps)


def _watch(meter: GapMeter, widget, result: str) -> QElapsedTimer:
    """Mark the first progress report and the moment ``widget.<result>`` is called.

    Returns a clock started now that stops at the first report with a step (its
    ``first_ms`` attribute, None until then).
    """
    report, done = widget.progress_bar.report, getattr(widget, result)
    clock = QElapsedTimer()
    clock.first_ms = None
    clock.start()

    def reported(*args) -> None:
        meter.mark("start-up")
        if clock.first_ms is None and args and int(args[0]) > 0:  # (step, total)
            clock.first_ms = clock.elapsed()
        report(*args)

    def finished(*args) -> None:
        meter.mark("working")
        done(*args)

    widget.progress_bar.report = reported
    setattr(widget, result, finished)
    return clock


def _idle(qtbot) -> tuple[float, float, int]:
    with GapMeter() as meter:
        qtbot.wait(1000)
    return meter.summary()


def _check(what: str, meter: GapMeter, idle, first_s: float = 0.0) -> None:
    p99, top, n = meter.summary()
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    line = (f"{what}: main-thread gaps p99 {p99:.1f} ms, max {top:.1f} ms over {n} ticks "
            f"(idle: p99 {idle[0]:.1f}, max {idle[1]:.1f}; load {load:.2f} per core)")
    if first_s:
        line += f"; first report {first_s:.2f} s after Train"
    print("\n" + line + "\n  by phase: " + meter.phases())
    if p99 <= P99_MS and top <= MAX_MS and first_s <= FIRST_FEEDBACK_S:
        return
    if os.environ.get("CELLSIGHT_STALL_STRICT"):
        pytest.fail(f"{line}; bounds p99 <= {P99_MS} ms, max <= {MAX_MS} ms, first report "
                    f"<= {FIRST_FEEDBACK_S} s")
    # any machine, however busy: a freeze of seconds is a failure
    if p99 > FREEZE_P99_MS or top > FREEZE_MAX_MS:
        pytest.fail(f"{line}: the viewer froze (p99 > {FREEZE_P99_MS} or max > "
                    f"{FREEZE_MAX_MS} ms)")
    pytest.xfail(f"target p99 <= {P99_MS} / max <= {MAX_MS} ms / first report <= "
                 f"{FIRST_FEEDBACK_S} s not met on this machine "
                 f"(load {load:.2f} per core; CELLSIGHT_STALL_STRICT=1 fails on it): {line}")


def test_semantic_training_never_freezes_the_viewer(make_napari_viewer, qtbot):
    from cellsight.gui.semantic_widget import SemanticWidget

    viewer = make_napari_viewer(show=True)
    image = load_sample("nuclei_2d")[:128, :128]
    masks = load_sample("nuclei_2d_masks")[:128, :128]
    strokes = np.zeros(image.shape, np.uint8)
    strokes[::8][masks[::8] == 0] = 1  # background every 8th row
    strokes[1::8][masks[1::8] > 0] = 2  # nuclei
    viewer.add_image(image, name="crop")
    viewer.add_labels(strokes, name="strokes")
    widget = SemanticWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Semantic segmentation")
    widget.training_form.editors["steps"].setValue(40)
    widget.training_form.editors["patch_size"].setValue(64)
    widget.training_form.editors["batch_size"].setValue(2)
    widget.training_form.editors["val_every"].setValue(5)
    widget.network_form.editors["depth"].setValue(2)
    widget.network_form.editors["base_channels"].setValue(8)
    widget.device_box.setCurrentText("cpu")
    # the dock warms torch's lazy imports when it opens (a user sets it up meanwhile)
    qtbot.waitUntil(training_warm.is_set, timeout=60_000)
    qtbot.waitUntil(labels_warm.is_set, timeout=60_000)
    idle = _idle(qtbot)
    with GapMeter() as meter:
        clock = _watch(meter, widget, "_trained")
        job = widget.start_training()
        qtbot.waitUntil(lambda: widget.job is None, timeout=180_000)
    assert job.state == "done" and widget.plot.losses
    assert clock.first_ms is not None
    first = clock.first_ms / 1000
    print(f"\nfirst progress report (step, loss) {first:.2f} s after Train")
    _check("Semantic training (40 steps)", meter, idle, first_s=first)


def test_instance_prediction_never_freezes_the_viewer(make_napari_viewer, qtbot):
    from cellsight.gui.instance_widget import InstanceWidget

    viewer = make_napari_viewer(show=True)
    viewer.add_image(load_sample("nuclei_2d"), name="nuclei")
    widget = InstanceWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Instance segmentation")
    widget.predict_form.editors["device"].setCurrentText("cpu")
    # both started when the dock opened
    qtbot.waitUntil(labels_warm.is_set, timeout=60_000)
    qtbot.waitUntil(training_warm.is_set, timeout=60_000)
    idle = _idle(qtbot)
    with GapMeter() as meter:
        _watch(meter, widget, "_predicted")
        job = widget.start_predict()
        qtbot.waitUntil(lambda: "nuclei instances" in viewer.layers, timeout=180_000)
        qtbot.waitUntil(lambda: widget.ws_job is None and widget.job is None, timeout=60_000)
        qtbot.wait(200)  # the layer's first draw
    assert job.state == "done"
    _check("Instance prediction (512x512, built-in model)", meter, idle)


def test_a_job_slows_napari_activity_spinner(make_napari_viewer, qtbot):
    """The spinner repaints the whole window; at full speed it halved training (Xvfb)."""
    import time

    from cellsight.gui.workers import SPINNER_SPEED, start_job

    viewer = make_napari_viewer(show=True)
    movie = viewer.window._qt_window.statusBar()._activity_item._inProgressIndicator.movie()
    assert movie.speed() == 100
    job = start_job(lambda progress, should_stop: time.sleep(0.2), name="Wait",
                    viewer=viewer)
    assert movie.speed() == SPINNER_SPEED
    qtbot.waitUntil(lambda: not job.is_running, timeout=10_000)
